//! A plain, synchronous `fn main` whose outermost observed function returns an iterator:
//! `main` consumes the iterator to its end and returns at once, without calling `flush` and
//! without holding the guard from `init`. The generation stays open until the iterator is
//! exhausted and, as the outermost observation, flushes (blocking briefly) when it ends, so
//! the generation (with the joined tokens as output and the completion start time) and the
//! call nested under it while the iterator was advanced reach Langfuse before the process
//! exits.
//!
//! The exporter is set up from the environment on the first observed call:
//!
//! ```sh
//! LANGFUSE_PUBLIC_KEY=pk-lf-… LANGFUSE_SECRET_KEY=sk-lf-… LANGFUSE_BASE_URL=https://… \
//!     cargo run --example exit_after_iterator
//! ```

use langfuse_observe::observe;

/// The tokens the stand-in model yields.
const TOKENS: [&str; 4] = ["Hello", ", ", "iterator", "!"];

fn main() {
    let answer: String = complete("Say hello".to_owned()).collect();
    println!("{answer}");
    // main returns here: no flush, no guard.
}

/// The outermost observed call: a generation that ends, and flushes, when its iterator is
/// exhausted.
#[observe(as_type = "generation")]
fn complete(prompt: String) -> impl Iterator<Item = String> {
    TOKENS.iter().enumerate().map(move |(index, token)| {
        if index == 0 {
            // Made while the consumer advances the iterator: nests under the generation.
            lookup_context(&prompt);
        }
        (*token).to_owned()
    })
}

#[observe(as_type = "retriever")]
fn lookup_context(query: &str) -> String {
    format!("context for {query}")
}
