use langfuse_observe::observe;

#[observe(stream)]
fn count() -> u32 {
    1
}

fn main() {}
