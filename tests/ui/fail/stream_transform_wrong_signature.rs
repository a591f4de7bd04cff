use langfuse_observe::observe;

fn join(items: Vec<String>) -> String {
    items.concat()
}

#[observe(transform = join)]
fn words() -> impl Iterator<Item = String> {
    vec!["a".to_owned()].into_iter()
}

fn main() {}
