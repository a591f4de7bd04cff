use langfuse_observe::observe;

#[observe(capture_input = "yes")]
fn call(query: &str) -> usize {
    query.len()
}

#[observe(name = call_name)]
fn call_name() {}

fn main() {
    call("q");
    call_name();
}
