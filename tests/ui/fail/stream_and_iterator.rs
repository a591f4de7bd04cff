use langfuse_observe::observe;

type Numbers = Box<dyn Iterator<Item = u32>>;

#[observe(stream, iterator)]
fn numbers() -> Numbers {
    Box::new(0..3)
}

fn main() {}
