use langfuse_observe::observe;

#[observe(stream)]
fn nothing() {}

fn main() {}
