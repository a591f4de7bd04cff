use langfuse_observe::observe;

#[observe(name = "")]
fn answer() -> u32 {
    42
}

#[observe(name = "   ")]
fn blank() {}

fn main() {
    answer();
    blank();
}
