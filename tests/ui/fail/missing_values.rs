use langfuse_observe::observe;

// Options written without their value, or with one they do not take.
#[observe(name, flush, skip_all = true, skip = "query", crate)]
fn call(query: &str) -> usize {
    query.len()
}

#[observe(name = "a" as_type = "tool")]
fn missing_comma() {}

fn main() {
    call("q");
    missing_comma();
}
