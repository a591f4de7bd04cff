//! A `#[tokio::main]` program whose async observed function panics, so the process exits with
//! the panic, without calling `flush` and without holding the guard from `init`. The failed
//! calls are recorded with level ERROR and the panic message and still reach Langfuse,
//! although the runtime and the process die with the panic.
//!
//! The exporter is set up from the environment on the first observed call:
//!
//! ```sh
//! LANGFUSE_PUBLIC_KEY=pk-lf-… LANGFUSE_SECRET_KEY=sk-lf-… LANGFUSE_BASE_URL=https://… \
//!     cargo run --example exit_after_async_panic   # exits with the panic, status 101
//! ```

use std::time::Duration;

use langfuse_observe::observe;

#[tokio::main]
async fn main() {
    let reply = handle_request("status").await;
    println!("never printed: {reply}");
}

/// The outermost observed call.
#[observe(as_type = "agent")]
async fn handle_request(command: &str) -> String {
    let checked = check(command).await;
    call_backend(&checked).await
}

#[observe(as_type = "guardrail")]
async fn check(command: &str) -> String {
    tokio::task::yield_now().await;
    command.to_owned()
}

#[observe(as_type = "tool")]
async fn call_backend(command: &str) -> String {
    tokio::time::sleep(Duration::from_millis(5)).await;
    panic!("backend unreachable while running {command:?}");
}
