//! `#[observe]` on `main` itself, with `init` inside it: the trace `main` opens goes to the
//! client that `init` makes, `main` included, whatever was set up before.
//!
//! ```sh
//! LANGFUSE_PUBLIC_KEY=pk-lf-… LANGFUSE_SECRET_KEY=sk-lf-… cargo run --example init_in_main
//! ```

use langfuse_observe::{observe, Config};

#[observe(as_type = "retriever")]
async fn retrieve(question: &str) -> Vec<String> {
    vec![format!("a document about {question}")]
}

#[tokio::main(flavor = "current_thread")]
#[observe]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _guard = langfuse_observe::init(Config::from_env()?)?;
    let documents = retrieve("what is Langfuse?").await;
    println!("{}", documents.join("\n"));
    Ok(())
}
