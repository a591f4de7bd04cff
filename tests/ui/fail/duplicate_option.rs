use langfuse_observe::observe;

#[observe(name = "first", as_type = "tool", name = "second")]
fn answer() -> u32 {
    42
}

fn main() {
    answer();
}
