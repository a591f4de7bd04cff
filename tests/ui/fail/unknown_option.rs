use langfuse_observe::observe;

#[observe(nmae = "x")]
fn answer() -> u32 {
    42
}

fn main() {
    answer();
}
