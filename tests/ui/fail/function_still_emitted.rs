use langfuse_observe::observe;

// The attribute is wrong, but the function is still emitted unchanged: the only error is the
// attribute's, not a cascade of "cannot find function" or type errors in its callers.
#[observe(as_type = "spam")]
fn answer(question: &str) -> Result<usize, String> {
    Ok(question.len())
}

struct Service;

impl Service {
    #[observe(skip(missing))]
    async fn call(&self, value: u32) -> u32 {
        value
    }
}

fn main() {
    let length: usize = answer("?").unwrap_or(0);
    assert_eq!(length, 1);
    let _future = Service.call(1);
}
