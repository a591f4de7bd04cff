//! An axum server whose handlers are observed: every request becomes a trace (or joins the
//! caller's), with the session and user taken from the request's headers.
//!
//! - A W3C `traceparent` header continues the caller's trace: the handler's observation becomes
//!   a child of the caller's span. An invalid header is logged and the request gets a new trace;
//!   it is never refused for it.
//! - `x-session-id` and `x-user-id` become the trace's session and user.
//! - Handlers use `#[observe(flush = false)]`: a server must not wait for delivery on every
//!   request. Records are sent in the background, and the guard kept by `main` flushes what is
//!   left when the server shuts down (on Ctrl-C).
//!
//! ```sh
//! cargo run --example axum_server            # listens on 127.0.0.1:3000 (PORT to change it)
//! curl -s localhost:3000/chat -H 'content-type: application/json' \
//!     -H 'x-session-id: chat-42' -H 'x-user-id: user-7' \
//!     -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' \
//!     -d '{"message": "What is Langfuse?"}'
//! ```
//!
//! Without keys, traces are printed to stderr; set `LANGFUSE_PUBLIC_KEY`,
//! `LANGFUSE_SECRET_KEY` and `LANGFUSE_BASE_URL` to send them to Langfuse.
//!
//! For tests and CI: `PORT=0` picks a free port (the address is printed on stdout), and
//! `EXIT_AFTER_REQUESTS=n` shuts the server down gracefully after `n` requests.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use langfuse_observe::{
    context::{FutureExt, TraceContext},
    observe,
    trace::{
        current_trace_id, update_current_generation, update_current_trace, GenerationUpdate,
        TraceUpdate,
    },
    Config,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

#[derive(Debug, Deserialize, Serialize)]
struct ChatRequest {
    message: String,
}

#[derive(Debug, Serialize)]
struct ChatResponse {
    reply: String,
    /// For the client to attach feedback (a score) to this trace later.
    trace_id: Option<String>,
}

/// Sent as JSON. Returning it (rather than `Json<ChatResponse>`) from the handler records the
/// handler's output as JSON too.
impl IntoResponse for ChatResponse {
    fn into_response(self) -> Response {
        Json(self).into_response()
    }
}

/// `POST /chat`. Headers are not recorded (they may hold credentials); the body is.
#[observe(flush = false, skip(headers))]
async fn chat(headers: HeaderMap, Json(request): Json<ChatRequest>) -> ChatResponse {
    let mut trace = TraceUpdate::new().tag("axum-server");
    if let Some(session) = header(&headers, "x-session-id") {
        trace = trace.session_id(session);
    }
    if let Some(user) = header(&headers, "x-user-id") {
        trace = trace.user_id(user);
    }
    update_current_trace(trace);

    let reply = generate_reply(&request.message).await;
    ChatResponse {
        reply,
        trace_id: current_trace_id().map(|id| id.to_string()),
    }
}

/// A stand-in for a model call.
#[observe(as_type = "generation")]
async fn generate_reply(message: &str) -> String {
    tokio::time::sleep(Duration::from_millis(10)).await;
    update_current_generation(
        GenerationUpdate::new()
            .model("gpt-4o-mini")
            .usage("input", message.split_whitespace().count() as u64)
            .usage("output", 6),
    );
    format!("You asked: {message}")
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()
}

/// Middleware: runs the rest of the request inside the caller's trace when it sent a valid
/// `traceparent`; otherwise the observed handler starts a new trace.
async fn continue_trace(request: Request, next: Next) -> Response {
    let Some(value) = request.headers().get("traceparent") else {
        return next.run(request).await;
    };
    let parsed = value
        .to_str()
        .map_err(|error| error.to_string())
        .and_then(|value| TraceContext::from_traceparent(value).map_err(|e| e.to_string()));
    match parsed {
        Ok(remote) => next.run(request).with_context(remote.context()).await,
        Err(error) => {
            eprintln!("ignoring the traceparent header, starting a new trace: {error}");
            next.run(request).await
        }
    }
}

/// Testing aid: counts requests down from `EXIT_AFTER_REQUESTS` and triggers shutdown at zero.
struct RequestLimit {
    remaining: AtomicUsize,
    reached: Notify,
}

async fn count_requests(
    State(limit): State<Arc<RequestLimit>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    if limit.remaining.fetch_sub(1, Ordering::SeqCst) == 1 {
        limit.reached.notify_one();
    }
    response
}

/// Completes on Ctrl-C, or once the request limit (if any) is reached.
async fn shutdown_signal(limit: Option<Arc<RequestLimit>>) {
    let limit_reached = async {
        match limit {
            Some(limit) => limit.reached.notified().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = limit_reached => {}
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Keep the guard for the life of the server: dropping it at the end of `main` flushes what
    // the handlers recorded and is not delivered yet.
    let _langfuse = langfuse_observe::init(Config::from_env()?)?;

    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port.parse().map_err(|e| format!("PORT={port:?}: {e}"))?,
        Err(_) => 3000,
    };
    let limit = match std::env::var("EXIT_AFTER_REQUESTS") {
        Ok(n) => {
            let n: usize = n
                .parse()
                .map_err(|e| format!("EXIT_AFTER_REQUESTS={n:?}: {e}"))?;
            Some(Arc::new(RequestLimit {
                remaining: AtomicUsize::new(n),
                reached: Notify::new(),
            }))
        }
        Err(_) => None,
    };

    let mut app = Router::new()
        .route("/chat", post(chat))
        .layer(middleware::from_fn(continue_trace));
    if let Some(limit) = &limit {
        app = app.layer(middleware::from_fn_with_state(
            Arc::clone(limit),
            count_requests,
        ));
    }

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal(limit))
        .await?;
    Ok(())
}
