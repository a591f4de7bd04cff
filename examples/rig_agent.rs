//! A rig agent with a tool, traced in Langfuse through its own `tracing` telemetry.
//!
//! rig reports each agent run, model call and tool call as `tracing` spans with OpenTelemetry
//! GenAI fields. One line adds `langfuse_observe::tracing_layer()` to the subscriber, and
//! those spans become observations nested under the `#[observe]` function that runs the agent:
//! AGENT → GENERATION (model, usage, first chunk) → TOOL (arguments, result) → GENERATION,
//! with the session and user set on the trace.
//!
//! The model is a stand-in with OpenAI's chat-completions API on a loopback port, started
//! here, so the example needs no account and no network. Run it with no environment set and
//! the trace tree is printed to stderr; set `LANGFUSE_PUBLIC_KEY`, `LANGFUSE_SECRET_KEY` and
//! `LANGFUSE_BASE_URL` and it goes to Langfuse.
//!
//! ```sh
//! cargo run --example rig_agent --features tracing
//! ```

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures_util::StreamExt;
use langfuse_observe::observe;
use langfuse_observe::trace::{update_current_trace, TraceUpdate};
use rig_core::agent::MultiTurnStreamItem;
use rig_core::client::CompletionClient;
use rig_core::providers::openai;
use rig_core::streaming::{StreamedAssistantContent, StreamingPrompt};
use rig_core::tool::Tool;
use serde::Deserialize;
use serde_json::{json, Value};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The agent's tool.
struct Adder;

#[derive(Deserialize)]
struct AddArgs {
    x: i64,
    y: i64,
}

/// Adding never fails; rig still asks for an error type.
#[derive(Debug)]
struct AddError;

impl std::fmt::Display for AddError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cannot add")
    }
}

impl std::error::Error for AddError {}

impl Tool for Adder {
    const NAME: &'static str = "add";
    type Error = AddError;
    type Args = AddArgs;
    type Output = i64;

    fn description(&self) -> String {
        "Adds two integers".to_owned()
    }

    fn parameters(&self) -> Value {
        json!({
            "type": "object",
            "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
            "required": ["x", "y"]
        })
    }

    async fn call(&self, args: AddArgs) -> Result<i64, AddError> {
        Ok(args.x + args.y)
    }
}

/// Runs the agent on `question` for a user's chat session, printing the answer as it streams.
#[observe(skip(model_url))]
async fn answer(question: &str, model_url: &str) -> Result<String, Box<dyn std::error::Error>> {
    update_current_trace(TraceUpdate::new().session_id("chat-42").user_id("ada"));
    let agent = openai::CompletionsClient::builder()
        .api_key("sk-stand-in")
        .base_url(model_url)
        .build()?
        .agent("gpt-4o-mini")
        .preamble("You add numbers with the add tool.")
        .tool(Adder)
        .build();
    let mut stream = agent.stream_prompt(question).max_turns(3).await;
    let mut text = String::new();
    while let Some(item) = stream.next().await {
        if let MultiTurnStreamItem::StreamAssistantItem(StreamedAssistantContent::Text(chunk)) =
            item?
        {
            text.push_str(&chunk.text);
        }
    }
    Ok(text)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The one line: rig's spans (and any span with GenAI fields) become observations.
    tracing_subscriber::registry()
        .with(langfuse_observe::tracing_layer())
        .init();
    let _guard = langfuse_observe::init(langfuse_observe::Config::from_env()?)?;

    let model_url = start_stand_in_model().await?;
    let reply = answer("What is 2 + 3?", &model_url).await?;
    println!("{reply}");
    Ok(())
}

/// Starts the stand-in model on a loopback port; returns its base URL.
async fn start_stand_in_model() -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/v1", listener.local_addr()?);
    let app = Router::new().route("/v1/chat/completions", post(stand_in_model));
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// Streams a request for the `add` tool, or, once the tool has answered, the final answer;
/// the last chunk carries the token usage, as OpenAI's API does.
async fn stand_in_model(Json(request): Json<Value>) -> Response {
    let chunk = |delta: Value, finish: Value, usage: Value| {
        let mut chunk = json!({
            "id": "chatcmpl-stand-in",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        if !usage.is_null() {
            chunk["usage"] = usage;
        }
        format!("data: {chunk}\n\n")
    };
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let mut events = if messages.iter().any(|m| m["role"] == "tool") {
        vec![
            chunk(
                json!({"role": "assistant", "content": "2 + 3 "}),
                Value::Null,
                Value::Null,
            ),
            chunk(json!({"content": "= 5"}), Value::Null, Value::Null),
            chunk(
                json!({}),
                json!("stop"),
                json!({"prompt_tokens": 70, "completion_tokens": 6, "total_tokens": 76}),
            ),
        ]
    } else {
        vec![
            chunk(
                json!({"role": "assistant", "tool_calls": [{
                    "index": 0, "id": "call_1", "type": "function",
                    "function": {"name": "add", "arguments": "{\"x\":2,\"y\":3}"}
                }]}),
                Value::Null,
                Value::Null,
            ),
            chunk(
                json!({}),
                json!("tool_calls"),
                json!({"prompt_tokens": 50, "completion_tokens": 10, "total_tokens": 60}),
            ),
        ]
    };
    events.push("data: [DONE]\n\n".to_owned());
    let body = async_stream::stream! {
        for event in events {
            yield Ok::<_, Infallible>(event);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    (
        [("content-type", "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}
