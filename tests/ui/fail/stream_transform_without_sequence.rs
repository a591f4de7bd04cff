use langfuse_observe::observe;

fn join(items: &[serde_json::Value]) -> usize {
    items.len()
}

#[observe(transform = join)]
fn total(n: u32) -> Vec<u32> {
    (0..n).collect()
}

fn main() {}
