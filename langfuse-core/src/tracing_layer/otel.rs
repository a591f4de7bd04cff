//! The trace id of the OpenTelemetry span that `tracing-opentelemetry` keeps for a `tracing`
//! span, so that a trace begun by a bridged span has the same id in Langfuse as in Tempo or
//! Jaeger.

use std::sync::OnceLock;

use opentelemetry::trace::TraceContextExt;
use tracing::dispatcher::WeakDispatch;
use tracing::span::Id;
use tracing::Dispatch;

use crate::ids::TraceId;

/// The subscriber the layer is part of, through which `tracing-opentelemetry` answers.
#[derive(Debug, Clone, Default)]
pub(crate) struct OtelTraces(OnceLock<WeakDispatch>);

impl OtelTraces {
    pub(crate) fn register(&self, dispatch: &Dispatch) {
        // A layer value serves the first subscriber it is added to.
        let _ = self.0.set(dispatch.downgrade());
    }

    /// The OpenTelemetry trace id of `span`, when `tracing-opentelemetry`'s layer has already
    /// seen it (it is added to the subscriber before this layer). Must be called without a
    /// lock on the span's extensions.
    pub(crate) fn trace_id(&self, span: &Id) -> Option<TraceId> {
        let dispatch = self.0.get()?.upgrade()?;
        let context = tracing_opentelemetry::get_otel_context(span, &dispatch)?;
        let otel_span = context.span();
        let span_context = otel_span.span_context();
        if !span_context.is_valid() {
            return None;
        }
        TraceId::from_bytes(span_context.trace_id().to_bytes()).ok()
    }
}
