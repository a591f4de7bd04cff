//! A `#[tokio::main]` program whose outermost observed function returns a stream: `main`
//! consumes the stream to its end and returns at once, without calling `flush` and without
//! holding the guard from `init`. The generation stays open until the stream is exhausted and,
//! as the outermost observation, flushes when it ends, so the generation (with the joined
//! tokens as output and the completion start time) and the call nested under it while the
//! stream was polled reach Langfuse even though the runtime and the process are torn down at
//! once.
//!
//! The exporter is set up from the environment on the first observed call:
//!
//! ```sh
//! LANGFUSE_PUBLIC_KEY=pk-lf-… LANGFUSE_SECRET_KEY=sk-lf-… LANGFUSE_BASE_URL=https://… \
//!     cargo run --example exit_after_stream
//! ```

use std::time::Duration;

use futures_core::Stream;
use futures_util::StreamExt;
use langfuse_observe::observe;

/// The tokens the stand-in model streams.
const TOKENS: [&str; 4] = ["Hello", ", ", "stream", "!"];

#[tokio::main]
async fn main() {
    let mut tokens = std::pin::pin!(complete("Say hello".to_owned()));
    let mut answer = String::new();
    while let Some(token) = tokens.next().await {
        answer.push_str(&token);
    }
    println!("{answer}");
    // main returns here: no flush, no guard.
}

/// The outermost observed call: a generation that ends, and flushes, when its stream is
/// exhausted.
#[observe(as_type = "generation")]
fn complete(prompt: String) -> impl Stream<Item = String> {
    futures_util::stream::unfold(0, move |index| {
        let prompt = prompt.clone();
        async move {
            let token = *TOKENS.get(index)?;
            if index == 0 {
                // Made while the consumer polls the stream: nests under the generation.
                lookup_context(&prompt).await;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            Some((token.to_owned(), index + 1))
        }
    })
}

#[observe(as_type = "retriever")]
async fn lookup_context(query: &str) -> String {
    tokio::time::sleep(Duration::from_millis(2)).await;
    format!("context for {query}")
}
