//! Prompts kept in Langfuse: fetch one by name (the `production` label), compile its
//! `{{variables}}`, and link it to the generation that used it, so Langfuse shows which prompt
//! version produced which answer. Then publish a new version and pick it up at once with
//! `invalidate_prompt`, instead of waiting for the cache's 60 seconds.
//!
//! ```sh
//! cargo run --example prompts
//! ```
//!
//! It needs no account: without `LANGFUSE_BASE_URL` it starts the loopback Langfuse server of
//! `langfuse-observe-testing` and creates the prompt `support/answer` there. With
//! `LANGFUSE_PUBLIC_KEY`, `LANGFUSE_SECRET_KEY` and `LANGFUSE_BASE_URL` set, it uses that
//! project, where `support/answer` should exist; if it does not, the fallback is used and
//! nothing is linked.

use std::time::Duration;

use langfuse_observe::prompt::{Prompt, PromptError};
use langfuse_observe::trace::{update_current_generation, GenerationUpdate};
use langfuse_observe::{observe, Config, Langfuse};
use langfuse_observe_testing::{NewPrompt, TestServer};
use serde_json::json;

const PROMPT: &str = "support/answer";

#[observe(as_type = "generation")]
async fn answer(question: &str) -> Result<String, PromptError> {
    let prompt = langfuse_observe::prompt(PROMPT)
        .fallback("Answer in one sentence: {{question}}")
        .fetch()
        .await?;
    let text = prompt.compile(&json!({ "question": question }));
    let model = prompt.config()["model"].as_str().unwrap_or("gpt-4o-mini");
    // The one call that links the prompt: its exact name and version (a fallback links
    // nothing).
    update_current_generation(GenerationUpdate::new().model(model).prompt(&prompt));
    println!("{}", describe(&prompt));
    // A real program sends `text` to the model here.
    Ok(format!(
        "(the model's answer to: {})",
        text.as_text().unwrap_or_default()
    ))
}

fn describe(prompt: &Prompt) -> String {
    if prompt.is_fallback() {
        format!("prompt {}: the fallback (not linked)", prompt.name())
    } else {
        format!("prompt {} version {}", prompt.name(), prompt.version())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // With no Langfuse project configured, a loopback server stands in for one.
    let local = std::env::var_os("LANGFUSE_BASE_URL")
        .is_none()
        .then(TestServer::start);
    let config = match &local {
        Some(server) => {
            server.create_prompt(
                NewPrompt::text(PROMPT, "Answer in one sentence: {{ question }}")
                    .label("production")
                    .config(json!({"model": "gpt-4o-mini", "temperature": 0.2})),
            );
            Config::builder()
                .keys(server.public_key(), server.secret_key())
                .base_url(server.url())
                .build()?
        }
        None => Config::from_env()?,
    };
    let client = Langfuse::new(&config)?;

    let reply = client.scope(answer("What is Langfuse?")).await?;
    println!("{reply}");

    if let Some(server) = &local {
        // Someone publishes version 2 under `production`; the cached version 1 would be
        // served for up to a minute more, so the program asks for the new one now.
        server.create_prompt(
            NewPrompt::text(PROMPT, "Answer briefly and kindly: {{ question }}")
                .label("production"),
        );
        client.invalidate_prompt(PROMPT);
        let prompt = client.prompt(PROMPT).fetch().await?;
        println!("after invalidation: {}", describe(&prompt));

        client.flush(Duration::from_secs(5)).await;
        for generation in server.observations() {
            if let (Some(name), Some(version)) = (generation.prompt_name, generation.prompt_version)
            {
                let observation = generation.name.unwrap_or_default();
                println!("Langfuse shows {observation} linked to {name} version {version}");
            }
        }
    }
    Ok(())
}
