//! Langfuse observability for Rust.
//!
//! Every call of an instrumented function shows up in [Langfuse](https://langfuse.com) as a
//! nested trace: inputs, outputs, timing, errors, model and token usage, session and user.
//! Records are handed to a bounded queue and delivered by a worker thread over OTLP (or the
//! legacy batch-ingestion API), so the instrumented program never waits on the network.
//! Without keys, traces are printed to stderr instead.
//!
//! ```
//! use langfuse_observe::observe;
//!
//! #[observe(as_type = "retriever")]
//! fn retrieve(question: &str) -> Vec<String> {
//!     vec![format!("a document about {question}")]
//! }
//!
//! #[observe(as_type = "generation", skip(api_key))]
//! async fn answer(question: &str, documents: &[String], api_key: &str) -> Result<String, std::io::Error> {
//!     Ok(format!("{question}: {}", documents.join(" ")))
//! }
//!
//! #[observe]
//! async fn pipeline(question: &str) -> Result<String, std::io::Error> {
//!     let documents = retrieve(question); // a child of `pipeline`
//!     answer(question, &documents, "sk-…").await // another child
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Reads LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY and LANGFUSE_BASE_URL; without keys,
//! // traces are printed to stderr. The guard flushes when it is dropped.
//! let _guard = langfuse_observe::init(langfuse_observe::Config::from_env()?)?;
//! let reply = pipeline("what is Langfuse?").await?;
//! assert!(reply.starts_with("what is Langfuse?"));
//! # Ok(())
//! # }
//! ```
//!
//! See the README for every option, spawning work, and when data is sent.

pub use langfuse_observe_core::api::{
    create_event, current_observation_id, current_trace_id, current_trace_url, observation, score,
    score_current_observation, score_current_trace, trace_url, update_current_generation,
    update_current_observation, update_current_trace, GenerationUpdate, ObservationUpdate,
    ScopedObservation, TraceUpdate,
};
pub use langfuse_observe_core::capture::CapturedValue;
pub use langfuse_observe_core::client::{ClientGuard, Langfuse, Scoped};
pub use langfuse_observe_core::config::{Config, ConfigBuilder, ConfigError, ExporterKind, Mask};
pub use langfuse_observe_core::context::{
    spawn, traceparent, Context, ContextGuard, FutureExt, TraceContext, TraceparentError,
    WithContext,
};
pub use langfuse_observe_core::export::{ExportError, FlushReport, Stats};
pub use langfuse_observe_core::ids::{IdError, ObservationId, TraceId};
pub use langfuse_observe_core::observation::{
    GenerationDetails, Level, Observation, ObservationType, PromptRef, Score, ScoreValue,
    TraceAttributes,
};
pub use langfuse_observe_core::{
    client, flush, flush_blocking, init, init_from_env, shutdown, stats, FlushGuard, InitError,
};
pub use langfuse_observe_macros::observe;

/// Paths used by code that `#[observe]` generates. Not public API: no stability guarantees.
#[doc(hidden)]
pub mod __private {
    pub use langfuse_observe_core::macro_support::*;
}

/// The README's examples, compiled as doc tests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
