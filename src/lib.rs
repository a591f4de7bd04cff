//! Langfuse observability for Rust.
//!
//! Every call of an instrumented function shows up in [Langfuse](https://langfuse.com) as a
//! nested trace: inputs, outputs, timing, errors, model and token usage, session and user.
//! Records are handed to a bounded queue and delivered by a worker thread over OTLP (or the
//! legacy batch-ingestion API), so the instrumented program never waits on the network.
//! Without keys, traces are printed to stderr instead.
//!
//! ```no_run
//! use std::time::Duration;
//! use langfuse_observe::{Config, ObservationId, Observation, TraceId};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // LANGFUSE_PUBLIC_KEY, LANGFUSE_SECRET_KEY and LANGFUSE_BASE_URL, or the console.
//!     let _guard = langfuse_observe::init(Config::from_env()?)?;
//!     let mut step = Observation::new(TraceId::random(), ObservationId::random(), "job");
//!     step.output = Some("done".into());
//!     langfuse_observe::exporter().record(step);
//!     Ok(()) // the guard flushes here
//! }
//! ```

pub use langfuse_observe_core::capture::CapturedValue;
pub use langfuse_observe_core::config::{Config, ConfigBuilder, ConfigError, ExporterKind};
pub use langfuse_observe_core::context::{spawn, Context, ContextGuard, FutureExt, WithContext};
pub use langfuse_observe_core::export::{ExportError, Exporter, FlushReport, Stats};
pub use langfuse_observe_core::ids::{IdError, ObservationId, TraceId};
pub use langfuse_observe_core::observation::{
    GenerationDetails, Level, Observation, ObservationType, PromptRef, Score, ScoreValue,
    TraceAttributes,
};
pub use langfuse_observe_core::{
    exporter, flush, flush_blocking, init, init_from_env, shutdown, stats, FlushGuard, InitError,
};
pub use langfuse_observe_macros::observe;

/// A loopback Langfuse server for testing instrumentation (feature `test-server`).
#[cfg(feature = "test-server")]
pub use langfuse_observe_core::testing;

/// Paths used by code that `#[observe]` generates. Not public API: no stability guarantees.
#[doc(hidden)]
pub mod __private {
    pub use langfuse_observe_core::macro_support::*;
}
