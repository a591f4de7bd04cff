use langfuse_observe::observe;

#[observe(as_type = "event")]
fn clicked() {}

fn main() {
    clicked();
}
