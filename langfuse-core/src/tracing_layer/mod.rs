//! `tracing` spans as observations: the spans that Rust LLM frameworks (rig, genai) emit with
//! OpenTelemetry GenAI fields, and your own, join the same traces as `#[observe]` functions.
//!
//! Install the layer once:
//!
//! ```
//! use tracing_subscriber::layer::SubscriberExt;
//! use tracing_subscriber::util::SubscriberInitExt;
//!
//! tracing_subscriber::registry()
//!     .with(langfuse_observe_core::tracing_layer::tracing_layer())
//!     .init();
//! ```
//!
//! **Which spans.** A span becomes an observation when its callsite declares a field named
//! `gen_ai.*`, `langfuse.*`, `llm.*`, `openinference.*`, `input.value` or `output.value` (a
//! field declared `Empty` and recorded later counts), or when it has a parent observation and
//! its level is INFO or more severe. A span that is not kept leaves no gap: its children hang
//! under its nearest kept ancestor. [`TracingLayer`]'s methods widen or narrow the rule.
//!
//! **Where in the tree.** A span with an explicit parent hangs under that parent's observation
//! (or its nearest kept ancestor's); any other span under the observation current where it
//! starts. While a kept span is entered, its observation is current: `#[observe]` functions
//! called inside become its children and `update_current_*` and scores apply to it.
//!
//! **Fields.** When the span closes, its fields are mapped by the rules the Langfuse server
//! applies to OTLP span attributes: type from `langfuse.observation.type`,
//! `openinference.span.kind` or `gen_ai.operation.name`; model, parameters, usage, cost,
//! input and output, tool calls, level, prompt; session, user, tags and other trace
//! attributes. Fields no rule reads are kept in the observation's metadata under
//! `attributes.<name>`, where Langfuse shows the attributes of spans from other
//! instrumentation. An ERROR event inside a kept span sets its level to ERROR with the
//! event's message.
//!
//! **Ids.** A kept span that starts a trace gets a random trace id; with the
//! `tracing-opentelemetry` feature, and `tracing_opentelemetry`'s layer added to the
//! subscriber *before* this one, it takes the trace id of its OpenTelemetry span instead, so
//! the trace has the same id in Langfuse as in Tempo or Jaeger. Spans under an observation
//! belong to that observation's trace.
//!
//! **Delivery.** Observations go through the same client, queue and worker as `#[observe]`.
//! A kept span that starts a trace does not flush when it closes (it closes wherever its last
//! handle drops, often inside a runtime's poll); the worker's interval, the guard from `init`
//! and the exit hook deliver it. Spans started on the export thread, and their descendants,
//! are never recorded.

mod filter;
mod layer;
mod mapping;
#[cfg(feature = "tracing-opentelemetry")]
mod otel;

use tracing::level_filters::LevelFilter;
use tracing::span::Id;

use crate::ids::TraceId;
use filter::Filter;

/// A `tracing_subscriber` layer that records selected spans as Langfuse observations.
///
/// ```
/// use tracing::level_filters::LevelFilter;
/// use tracing_subscriber::layer::SubscriberExt;
///
/// let layer = langfuse_observe_core::tracing_layer::tracing_layer()
///     // also keep `my_app` spans at DEBUG and more severe, wherever they are
///     .keep_target("my_app", LevelFilter::DEBUG)
///     // never keep spans of the database driver, even under an observation
///     .drop_target("sqlx")
///     // keep only spans meant for Langfuse under observations, no plain INFO spans
///     .nested_level(LevelFilter::OFF);
/// let subscriber = tracing_subscriber::registry().with(layer);
/// tracing::subscriber::with_default(subscriber, || {
///     let _span = tracing::info_span!("chat", gen_ai.operation.name = "chat").entered();
/// });
/// ```
#[derive(Debug, Clone, Default)]
#[must_use = "a layer does nothing until it is added to a subscriber"]
pub struct TracingLayer {
    filter: Filter,
    #[cfg(feature = "tracing-opentelemetry")]
    otel: otel::OtelTraces,
}

/// The layer with the default filter: spans with GenAI, Langfuse or OpenInference fields, and
/// spans at INFO or more severe under an observation.
pub fn tracing_layer() -> TracingLayer {
    TracingLayer::default()
}

impl TracingLayer {
    /// Also keeps spans whose target is `target` or a module under it (`my_app` matches
    /// `my_app::db`), at `level` or more severe, wherever they are: such a span without a
    /// parent observation starts a trace.
    pub fn keep_target(mut self, target: impl Into<String>, level: LevelFilter) -> Self {
        self.filter.keep_target(target.into(), level);
        self
    }

    /// Never keeps spans whose target is `target` or a module under it, whatever their fields.
    /// Their children hang under the nearest kept ancestor.
    pub fn drop_target(mut self, target: impl Into<String>) -> Self {
        self.filter.drop_target(target.into());
        self
    }

    /// How verbose a span without Langfuse fields may be and still be kept when it has a
    /// parent observation (INFO by default; `LevelFilter::OFF` keeps none of them,
    /// `LevelFilter::TRACE` all).
    pub fn nested_level(mut self, level: LevelFilter) -> Self {
        self.filter.nested_level(level);
        self
    }

    /// The trace id a kept span without a parent observation starts its trace with: the one
    /// `tracing-opentelemetry` gave it, if that layer is in the subscriber.
    #[cfg(feature = "tracing-opentelemetry")]
    fn new_trace_id(&self, span: &Id) -> Option<TraceId> {
        self.otel.trace_id(span)
    }

    #[cfg(not(feature = "tracing-opentelemetry"))]
    fn new_trace_id(&self, _span: &Id) -> Option<TraceId> {
        None
    }
}
