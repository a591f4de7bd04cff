//! A loopback model with OpenAI's chat-completions API, for driving a real LLM framework (rig)
//! without network. Offered tools, it first asks for `add(2, 3)`; after the tool's result, or
//! without tools, it answers. Streamed requests are answered in chunks, the usage in the last.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

/// The model name the fake reports in its answers.
pub(crate) const MODEL: &str = "fake-model-2026";

/// Token counts (prompt, completion) of the turn that asks for the tool.
pub(crate) const TOOL_CALL_USAGE: (u64, u64) = (50, 10);
/// Token counts of the answer after the tool's result.
pub(crate) const ANSWER_USAGE: (u64, u64) = (70, 6);
/// Token counts of an answer without tools.
pub(crate) const PLAIN_USAGE: (u64, u64) = (12, 3);
/// The answer after the tool's result.
pub(crate) const ANSWER: &str = "2 + 3 = 5";
/// The answer without tools, streamed in two chunks.
pub(crate) const PLAIN_ANSWER: &str = "Hello";

/// Pause between streamed chunks, so that the first chunk arrives measurably before the end.
pub(crate) const CHUNK_PAUSE: Duration = Duration::from_millis(40);

/// A running fake model; stops when dropped.
pub(crate) struct FakeModel {
    addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl FakeModel {
    /// Starts the fake on a loopback port, on a thread of its own.
    pub(crate) fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking socket");
        let addr = listener.local_addr().expect("the bound address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the fake model");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
                let app = Router::new().route("/v1/chat/completions", post(complete));
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        Self { addr, _stop: stop }
    }

    /// The base URL to give an OpenAI-compatible client.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

fn usage((prompt, completion): (u64, u64)) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    })
}

/// What the model does next in a conversation.
enum Turn {
    CallTool,
    Answer(&'static str, (u64, u64)),
}

fn next_turn(request: &Value) -> Turn {
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let offered_tools = request["tools"].as_array().is_some_and(|t| !t.is_empty());
    if messages.iter().any(|m| m["role"] == "tool") {
        Turn::Answer(ANSWER, ANSWER_USAGE)
    } else if offered_tools {
        Turn::CallTool
    } else {
        Turn::Answer(PLAIN_ANSWER, PLAIN_USAGE)
    }
}

const TOOL_CALL_ID: &str = "call_add_1";
const TOOL_ARGUMENTS: &str = r#"{"x":2,"y":3}"#;

async fn complete(Json(request): Json<Value>) -> Response {
    let turn = next_turn(&request);
    if request["stream"] == json!(true) {
        return streamed(turn);
    }
    let (message, finish, tokens) = match turn {
        Turn::Answer(text, tokens) => (
            json!({"role": "assistant", "content": text}),
            "stop",
            tokens,
        ),
        Turn::CallTool => (
            json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{
                    "id": TOOL_CALL_ID,
                    "type": "function",
                    "function": {"name": "add", "arguments": TOOL_ARGUMENTS}
                }]
            }),
            "tool_calls",
            TOOL_CALL_USAGE,
        ),
    };
    Json(json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": usage(tokens),
    }))
    .into_response()
}

fn streamed(turn: Turn) -> Response {
    let chunk = |delta: Value, finish: Value, usage: Value| {
        let mut chunk = json!({
            "id": "chatcmpl-fake-stream",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        if !usage.is_null() {
            chunk["usage"] = usage;
        }
        format!("data: {chunk}\n\n")
    };
    let mut events = match turn {
        Turn::Answer(text, tokens) => {
            let (head, tail) = text.split_at(text.len() / 2);
            vec![
                chunk(
                    json!({"role": "assistant", "content": head}),
                    Value::Null,
                    Value::Null,
                ),
                chunk(json!({"content": tail}), Value::Null, Value::Null),
                chunk(json!({}), json!("stop"), usage(tokens)),
            ]
        }
        Turn::CallTool => vec![
            chunk(
                json!({"role": "assistant", "tool_calls": [{
                    "index": 0, "id": TOOL_CALL_ID, "type": "function",
                    "function": {"name": "add", "arguments": ""}
                }]}),
                Value::Null,
                Value::Null,
            ),
            chunk(
                json!({"tool_calls": [{"index": 0, "function": {"arguments": TOOL_ARGUMENTS}}]}),
                Value::Null,
                Value::Null,
            ),
            chunk(json!({}), json!("tool_calls"), usage(TOOL_CALL_USAGE)),
        ],
    };
    events.push("data: [DONE]\n\n".to_owned());
    let body = async_stream::stream! {
        for event in events {
            yield Ok::<_, std::convert::Infallible>(event);
            tokio::time::sleep(CHUNK_PAUSE).await;
        }
    };
    (
        [(header::CONTENT_TYPE, "text/event-stream")],
        Body::from_stream(body),
    )
        .into_response()
}
