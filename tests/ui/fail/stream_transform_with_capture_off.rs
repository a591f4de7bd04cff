use langfuse_observe::observe;

fn join(items: &[serde_json::Value]) -> usize {
    items.len()
}

#[observe(transform = join, capture_output = false)]
fn numbers() -> impl Iterator<Item = u32> {
    0..3
}

fn main() {}
