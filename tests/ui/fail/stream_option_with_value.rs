use langfuse_observe::observe;

#[observe(stream = true)]
fn numbers() -> std::pin::Pin<Box<dyn futures_core::Stream<Item = u32>>> {
    Box::pin(futures_util::stream::iter(0..3))
}

fn main() {}
