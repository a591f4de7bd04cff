use langfuse_observe::observe;

type Score = Option<u32>;

#[observe(iterator)]
fn score() -> Score {
    Some(1)
}

fn main() {}
