use langfuse_observe::observe;

#[observe(stream)]
fn numbers() -> impl Iterator<Item = u32> {
    0..3
}

#[observe(iterator)]
fn boxed() -> std::pin::Pin<Box<dyn futures_core::Stream<Item = u32>>> {
    Box::pin(futures_util::stream::iter(0..3))
}

fn main() {}
