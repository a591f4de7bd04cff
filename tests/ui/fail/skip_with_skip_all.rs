use langfuse_observe::observe;

#[observe(skip(api_key), skip_all)]
fn call(api_key: &str, query: &str) -> usize {
    api_key.len() + query.len()
}

fn main() {
    call("k", "q");
}
