//! Every option of `#[observe]`, alone and combined.

use langfuse_observe::observe;

/// A crate that re-exports the facade, as a library built on it would.
mod reexport {
    pub use langfuse_observe;
}

#[observe(name = "custom name")]
fn named() -> u32 {
    1
}

#[observe(as_type = "span")]
fn span() {}

#[observe(as_type = "generation")]
fn generation(prompt: &str) -> String {
    prompt.to_uppercase()
}

#[observe(as_type = "agent")]
fn agent() {}

#[observe(as_type = "tool")]
fn tool() {}

#[observe(as_type = "chain")]
fn chain() {}

#[observe(as_type = "retriever")]
fn retriever(query: &str) -> Vec<String> {
    vec![query.to_owned()]
}

#[observe(as_type = "evaluator")]
fn evaluator() -> f64 {
    0.5
}

#[observe(as_type = "guardrail")]
fn guardrail(text: &str) -> Result<(), String> {
    if text.contains("secret") {
        return Err("blocked".into());
    }
    Ok(())
}

#[observe(as_type = "embedding")]
async fn embedding(text: &str) -> Vec<f32> {
    vec![text.len() as f32]
}

#[observe(capture_input = false)]
fn no_input(password: &str) -> usize {
    password.len()
}

#[observe(capture_output = false)]
fn no_output(count: u32) -> Result<String, String> {
    Ok("x".repeat(count as usize))
}

#[observe(capture_input = true, capture_output = true)]
fn explicit_defaults(value: u8) -> u8 {
    value
}

#[observe(capture_input = false, capture_output = false)]
fn nothing_captured(secret: String) -> String {
    secret
}

#[observe(skip(api_key, client))]
fn skipped(api_key: &str, client: &Client, query: &str) -> String {
    format!("{}{}{query}", api_key.len(), client.base)
}

#[observe(skip(api_key))]
async fn skipped_async(api_key: String, query: String) -> String {
    api_key + &query
}

#[observe(skip(a, c))]
fn skipped_patterns((a, b): (u8, u8), Client { base: c }: Client) -> u8 {
    a + b + c
}

/// Raw identifiers are recorded and skipped by their plain name (`type`, `match`).
#[observe(skip(match))]
fn raw_names(r#type: &str, r#match: u8) -> String {
    format!("{type}{match}", type = r#type, match = r#match)
}

#[observe(skip_all)]
fn all_skipped(api_key: &str, query: &str) -> usize {
    api_key.len() + query.len()
}

#[observe(flush = false)]
fn no_flush() {}

#[observe(flush = true)]
fn flush() {}

#[observe(crate = reexport::langfuse_observe)]
fn through_reexport(value: u32) -> u32 {
    value
}

#[observe(crate = ::langfuse_observe)]
async fn through_absolute_path(value: u32) -> u32 {
    value
}

#[observe(
    name = "everything",
    as_type = "generation",
    capture_output = false,
    skip(prompt),
    flush = false,
    crate = reexport::langfuse_observe,
)]
#[track_caller]
fn everything(prompt: &str, temperature: f32) -> Result<String, String> {
    if temperature < 0.0 {
        return Err("negative temperature".into());
    }
    Ok(prompt.to_owned())
}

struct Client {
    base: u8,
}

impl Client {
    #[observe(name = "client.call", as_type = "tool", skip(token))]
    fn call(&self, token: &str, path: &str) -> String {
        format!("{}{token}{path}", self.base)
    }
}

// Both orders of `#[observe]` and `#[tokio::main]` work; this one observes the whole program.
#[observe(name = "options.main")]
#[tokio::main]
async fn main() {
    assert_eq!(named(), 1);
    span();
    assert_eq!(generation("hi"), "HI");
    agent();
    tool();
    chain();
    assert_eq!(retriever("q"), ["q"]);
    assert_eq!(evaluator(), 0.5);
    assert!(guardrail("a secret").is_err());
    assert_eq!(embedding("abc").await, [3.0]);
    assert_eq!(no_input("pw"), 2);
    assert_eq!(no_output(2).as_deref(), Ok("xx"));
    assert_eq!(explicit_defaults(3), 3);
    assert_eq!(nothing_captured("s".into()), "s");
    let client = Client { base: 1 };
    assert_eq!(skipped("key", &client, "q"), "31q");
    assert_eq!(skipped_async("k".into(), "q".into()).await, "kq");
    assert_eq!(skipped_patterns((1, 2), Client { base: 3 }), 6);
    assert_eq!(all_skipped("ab", "c"), 3);
    assert_eq!(raw_names("t", 1), "t1");
    no_flush();
    flush();
    assert_eq!(through_reexport(4), 4);
    assert_eq!(through_absolute_path(5).await, 5);
    assert_eq!(everything("p", 1.0).as_deref(), Ok("p"));
    assert!(everything("p", -1.0).is_err());
    assert_eq!(client.call("t", "/p"), "1t/p");
}
