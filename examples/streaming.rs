//! A streamed LLM answer recorded as one generation.
//!
//! `complete` returns a `Stream` of tokens at once; its generation stays open until the stream
//! is exhausted, so the recorded output is the whole answer, the completion start time is when
//! the first token arrived, and the model and token usage reported with the last chunk (as
//! providers do) land on it. The caller prints each token as it arrives.
//!
//! Run it with no environment set and the trace tree is printed to stderr; set
//! `LANGFUSE_PUBLIC_KEY`, `LANGFUSE_SECRET_KEY` and `LANGFUSE_BASE_URL` and it goes to Langfuse.
//!
//! ```sh
//! cargo run --example streaming
//! cargo run --example streaming -- "Why stream the answer?"
//! ```

use std::io::Write;
use std::time::Duration;

use futures_core::Stream;
use futures_util::StreamExt;
use langfuse_observe::{
    observe,
    trace::{update_current_generation, GenerationUpdate},
};

/// How long the stand-in model takes per token.
const TOKEN_DELAY: Duration = Duration::from_millis(40);

/// A stand-in for a streaming chat-completion call: one token every [`TOKEN_DELAY`].
#[observe(as_type = "generation", name = "llm-stream")]
fn complete(prompt: String) -> impl Stream<Item = String> {
    let answer = format!(
        "Streaming lets the user read the answer to \"{prompt}\" while it is still being written."
    );
    let tokens: Vec<String> = answer.split_inclusive(' ').map(str::to_owned).collect();
    let input_tokens = prompt.split_whitespace().count() as u64;
    let output_tokens = tokens.len() as u64;

    futures_util::stream::unfold(
        tokens.into_iter().peekable(),
        move |mut tokens| async move {
            let token = tokens.next()?;
            tokio::time::sleep(TOKEN_DELAY).await;
            if tokens.peek().is_none() {
                // The last chunk carries the model and the usage: the generation is current
                // while the consumer polls, so this update lands on it.
                update_current_generation(
                    GenerationUpdate::new()
                        .model("gpt-4o-mini")
                        .usage("input", input_tokens)
                        .usage("output", output_tokens),
                );
            }
            Some((token, tokens))
        },
    )
}

/// The caller: shows each token as it arrives, and returns the whole answer.
#[observe(as_type = "chain")]
async fn chat(question: &str) -> std::io::Result<String> {
    let mut tokens = std::pin::pin!(complete(question.to_owned()));
    let mut answer = String::new();
    let mut stdout = std::io::stdout();
    while let Some(token) = tokens.next().await {
        write!(stdout, "{token}")?;
        stdout.flush()?;
        answer.push_str(&token);
    }
    writeln!(stdout)?;
    Ok(answer)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let question = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let question = if question.is_empty() {
        "Why stream an LLM answer?".to_owned()
    } else {
        question
    };
    // The outermost observed call flushes when it returns.
    chat(&question).await?;
    Ok(())
}
