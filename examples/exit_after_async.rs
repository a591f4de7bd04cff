//! A `#[tokio::main]` program that ends right after its observed work, without calling
//! `flush` and without holding the guard from `init`: the outermost observed function flushes
//! when it returns, so every observation reaches Langfuse even though the runtime and the
//! process are torn down at once.
//!
//! The exporter is set up from the environment on the first observed call:
//!
//! ```sh
//! LANGFUSE_PUBLIC_KEY=pk-lf-… LANGFUSE_SECRET_KEY=sk-lf-… LANGFUSE_BASE_URL=https://… \
//!     cargo run --example exit_after_async
//! ```

use std::time::Duration;

use langfuse_observe::observe;

#[tokio::main]
async fn main() {
    let answer = answer_question("What is 6 x 7?").await;
    println!("{answer}");
    // main returns here: no flush, no guard.
}

/// The outermost observed call: its end flushes everything recorded under it.
#[observe(as_type = "chain")]
async fn answer_question(question: &str) -> String {
    let documents = retrieve(question).await;
    generate(question, &documents).await
}

#[observe(as_type = "retriever")]
async fn retrieve(query: &str) -> Vec<String> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    vec![format!("a document about {query}")]
}

#[observe(as_type = "generation")]
async fn generate(question: &str, documents: &[String]) -> String {
    tokio::time::sleep(Duration::from_millis(5)).await;
    format!(
        "{question} The answer is 42 (from {} documents).",
        documents.len()
    )
}
