//! With the `tracing-opentelemetry` feature, a trace begun by a bridged span takes the trace id
//! that `tracing-opentelemetry` gave the same span, so Langfuse and an OpenTelemetry backend
//! show the same trace id; spans under it, bridged or `#[observe]`, stay in that trace.

use langfuse_observe::observe;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

use crate::support::observed::{
    assert_child_of, assert_root, current_trace, named, wait_for_trace, Harness,
};

#[observe]
fn observed_step() -> String {
    current_trace()
}

#[test]
fn a_trace_begun_by_a_span_takes_its_opentelemetry_trace_id() {
    let test = Harness::start();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let _tracing = tracing::subscriber::set_default(
        tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("it")))
            .with(langfuse_observe::tracing_layer()),
    );
    let span = tracing::info_span!("agent_run", gen_ai.operation.name = "invoke_agent");
    let otel_trace = span.context().span().span_context().trace_id().to_string();
    let (trace, inner) = span.in_scope(|| {
        let _chat = tracing::info_span!("chat", gen_ai.operation.name = "chat").entered();
        (current_trace(), observed_step())
    });
    drop(span);
    assert_eq!(
        trace, otel_trace,
        "the Langfuse trace id is the OpenTelemetry one"
    );
    assert_eq!(inner, otel_trace);
    let observations = wait_for_trace(&test.server, &trace, 3);
    let agent = named(&observations, "agent_run");
    assert_root(agent);
    let chat = named(&observations, "chat");
    assert_child_of(chat, agent);
    assert_child_of(named(&observations, "observed_step"), chat);
}
