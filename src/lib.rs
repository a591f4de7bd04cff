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
//! The root has what a program sets up; [`trace`] has what code inside an observation calls,
//! [`context`] carries work to other tasks, threads and services, [`config`] and [`export`]
//! hold the settings and delivery types, [`prompt`](mod@prompt) fetches, caches and compiles
//! prompts kept in Langfuse, and [`prelude`] the most used of all of these.
//! Several Langfuse projects in one process, tenants and tests each use a [`Langfuse`]
//! client value. See the README for every option, spawning work, and when data is sent.

pub use langfuse_observe_core::client::Langfuse;
pub use langfuse_observe_core::config::Config;
/// `prompt("name")` requests a prompt kept in Langfuse from the client in effect here, and
/// the `prompt` module has the prompt types: fetching, caching, compiling, linking.
pub use langfuse_observe_core::prompt;
#[cfg(feature = "tracing")]
pub use langfuse_observe_core::tracing_layer::{tracing_layer, TracingLayer};
pub use langfuse_observe_core::{
    client, flush, flush_blocking, init, init_from_env, shutdown, stats, FlushGuard, InitError,
};
pub use langfuse_observe_macros::observe;

/// What code inside an observed function does to its trace and observation: update them,
/// score them, add events, read their ids and links, and open an observation where an
/// attribute does not fit.
pub mod trace {
    pub use langfuse_observe_core::api::{
        create_event, current_observation_id, current_trace_id, current_trace_url, observation,
        score, score_current_observation, score_current_trace, trace_url,
        update_current_generation, update_current_observation, update_current_trace,
        GenerationUpdate, ObservationUpdate, ScopedObservation, TraceUpdate,
    };
    pub use langfuse_observe_core::capture::CapturedValue;
    pub use langfuse_observe_core::ids::{IdError, ObservationId, TraceId};
    pub use langfuse_observe_core::observation::{
        Level, ObservationType, PromptRef, Score, ScoreValue,
    };
}

/// Carrying the current observation, or a client, to work that runs elsewhere: other tasks
/// and threads, and other services (W3C `traceparent`).
pub mod context {
    pub use langfuse_observe_core::client::{ClientGuard, Scoped};
    pub use langfuse_observe_core::context::{
        spawn, traceparent, Context, ContextGuard, FutureExt, TraceContext, TraceparentError,
        WithContext,
    };
}

/// Settings: from `LANGFUSE_*` environment variables or a builder, validated with errors that
/// name the variable.
pub mod config {
    pub use langfuse_observe_core::config::{
        Config, ConfigBuilder, ConfigError, ExporterKind, Mask,
    };
}

/// Delivery: what a flush achieved, a client's counts, and records built by hand for
/// [`Langfuse::record`].
pub mod export {
    pub use langfuse_observe_core::export::{ExportError, FlushReport, Stats};
    pub use langfuse_observe_core::observation::{GenerationDetails, Observation, TraceAttributes};
}

/// What most instrumented code uses: `use langfuse_observe::prelude::*;`.
pub mod prelude {
    pub use crate::context::{Context, FutureExt};
    pub use crate::trace::{
        create_event, score_current_observation, score_current_trace, update_current_generation,
        update_current_observation, update_current_trace, GenerationUpdate, ObservationUpdate,
        TraceUpdate,
    };
    pub use crate::{observe, Config, Langfuse};
}

/// Paths used by code that `#[observe]` generates. Not public API: no stability guarantees.
#[doc(hidden)]
pub mod __private {
    pub use langfuse_observe_core::macro_support::*;
}

/// The README's examples, compiled as doc tests so they cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
