use langfuse_observe::observe;

struct Client;

impl Client {
    // The receiver is never recorded, so it cannot be skipped.
    #[observe(skip(self, token))]
    fn call(&self, token: &str) -> usize {
        token.len()
    }
}

fn main() {
    Client.call("t");
}
