use langfuse_observe::observe;

type Counted = std::ops::Range<u32>;

#[observe(iterator)]
fn counted() -> Counted {
    0..3
}

fn main() {}
