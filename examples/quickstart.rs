//! A small retrieval-augmented pipeline, recorded as one trace by `#[observe]`.
//!
//! Run it with no environment set and the trace tree is printed to stderr; set
//! `LANGFUSE_PUBLIC_KEY`, `LANGFUSE_SECRET_KEY` and `LANGFUSE_BASE_URL` and it goes to Langfuse.
//!
//! ```sh
//! cargo run --example quickstart
//! ```

use langfuse_observe::{
    observe,
    trace::{update_current_generation, update_current_trace, GenerationUpdate, TraceUpdate},
};

#[observe(as_type = "retriever")]
fn retrieve(question: &str) -> Vec<&'static str> {
    let corpus = [
        "Langfuse records traces of LLM applications.",
        "A trace holds nested observations: spans, generations, tool calls.",
        "Rust is a systems programming language.",
    ];
    let words: Vec<&str> = question
        .split_whitespace()
        .filter(|word| word.len() > 4)
        .collect();
    corpus
        .into_iter()
        .filter(|document| words.iter().any(|word| document.contains(word)))
        .collect()
}

#[observe(as_type = "generation")]
async fn answer(question: &str, documents: &[&str]) -> String {
    // A stand-in for a model call.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    update_current_generation(
        GenerationUpdate::new()
            .model("gpt-4o-mini")
            .model_parameter("temperature", 0.2)
            .usage("input", 42)
            .usage("output", 17),
    );
    format!(
        "{question} → {} (from {} documents)",
        documents.join(" "),
        documents.len()
    )
}

#[observe(as_type = "tool")]
fn cite_sources(documents: &[&str]) -> Result<Vec<String>, String> {
    if documents.is_empty() {
        return Err("no source to cite".to_owned());
    }
    Ok((1..=documents.len()).map(|n| format!("doc-{n}")).collect())
}

#[observe(as_type = "chain")]
async fn rag_pipeline(question: &str) -> String {
    update_current_trace(
        TraceUpdate::new()
            .session_id("chat-42")
            .user_id("user-7")
            .tag("quickstart"),
    );
    let documents = retrieve(question);
    let text = answer(question, &documents).await;
    let sources = cite_sources(&documents).unwrap_or_default();
    format!("{text} [{}]", sources.join(", "))
}

#[tokio::main]
async fn main() {
    // The outermost observed call flushes when it returns: nothing to set up, nothing lost.
    let reply = rag_pipeline("What does Langfuse record in a trace?").await;
    println!("{reply}");
}
