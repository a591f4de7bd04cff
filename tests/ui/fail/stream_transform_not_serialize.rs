use langfuse_observe::observe;

struct Summary {
    count: usize,
}

fn summarize(items: &[serde_json::Value]) -> Summary {
    Summary { count: items.len() }
}

#[observe(transform = summarize)]
fn numbers() -> impl Iterator<Item = u32> {
    0..3
}

fn main() {
    let _ = Summary { count: 0 }.count;
}
