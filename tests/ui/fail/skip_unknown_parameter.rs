use langfuse_observe::observe;

#[observe(skip(api_key, x))]
fn call(api_key: &str, query: &str) -> usize {
    api_key.len() + query.len()
}

#[observe(skip(y))]
fn no_parameters() {}

fn main() {
    call("k", "q");
    no_parameters();
}
