use langfuse_observe::observe;

#[observe(as_type = "Generation")]
fn answer() -> u32 {
    42
}

fn main() {
    answer();
}
