use langfuse_observe::observe;

#[observe(capture_input = false, skip(api_key))]
fn call(api_key: &str, query: &str) -> usize {
    api_key.len() + query.len()
}

#[observe(skip_all, capture_input = false)]
fn call_all(api_key: &str) -> usize {
    api_key.len()
}

fn main() {
    call("k", "q");
    call_all("k");
}
