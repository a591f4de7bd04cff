//! Cost on the calling thread of one `tracing` span with GenAI fields turned into an observation
//! by `tracing_layer()`, next to one `#[observe]` call, to a DEBUG span the layer's filter drops,
//! and to the same span exported by `tracing-opentelemetry` through the OpenTelemetry SDK's
//! batch processor and its OTLP/HTTP exporter (blocking reqwest client on the processor's
//! thread, no runtime needed). Both exporters send to loopback test servers.
//!
//! Spans are timed in chunks of `CHUNK` under one root (an `#[observe]` function for ours, a
//! root span for OpenTelemetry's); between chunks, outside the timing, each exporter is
//! flushed, so the figure is steady-state cost rather than a growing backlog.

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use langfuse_observe::observe;
use langfuse_observe_testing::TestServer;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use tracing::field::Empty;
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

/// Spans timed between flushes.
const CHUNK: u64 = 10_000;

/// One benchmarked unit of work: the loop index in, a value to keep alive out.
type Call = fn(u64) -> u64;

/// A model call as rig reports it: operation and model at the start, usage recorded later.
fn genai_span(i: u64) -> u64 {
    let span = tracing::info_span!(
        "chat",
        gen_ai.operation.name = "chat",
        gen_ai.request.model = "gpt-4o-mini",
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
    );
    let out = span.in_scope(|| black_box(i).wrapping_mul(7));
    span.record("gen_ai.usage.input_tokens", 12);
    span.record("gen_ai.usage.output_tokens", 3);
    out
}

/// Noise under an observation: a DEBUG span the default filter drops.
fn debug_span(i: u64) -> u64 {
    tracing::debug_span!("pool_checkout", id = i).in_scope(|| black_box(i).wrapping_mul(7))
}

#[observe(capture_input = false, capture_output = false)]
fn observed(i: u64) -> u64 {
    black_box(i).wrapping_mul(7)
}

#[observe(flush = false, skip_all)]
fn observed_root(iterations: u64, call: Call) -> Duration {
    timed(iterations, call)
}

fn timed(iterations: u64, call: Call) -> Duration {
    let start = Instant::now();
    for i in 0..iterations {
        black_box(call(black_box(i)));
    }
    start.elapsed()
}

/// Runs `iterations` in chunks of at most `CHUNK`, settling with `settle` between them.
fn chunked(iterations: u64, mut chunk: impl FnMut(u64) -> Duration, settle: impl Fn()) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut left = iterations;
    while left > 0 {
        let calls = left.min(CHUNK);
        elapsed += chunk(calls);
        settle();
        left -= calls;
    }
    elapsed
}

/// `tracing-opentelemetry` with the SDK's batch processor exporting OTLP/HTTP protobuf to
/// `server`, as rig's documentation sets it up (with the HTTP instead of the gRPC exporter).
fn opentelemetry_stack(
    server: &TestServer,
) -> (opentelemetry_sdk::trace::SdkTracerProvider, Dispatch) {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{}/api/public/otel/v1/traces", server.url()))
        .with_headers(
            [("Authorization".to_owned(), server.authorization_header())]
                .into_iter()
                .collect(),
        )
        .build()
        .expect("an OTLP exporter");
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
    let dispatch = Dispatch::new(tracing_subscriber::registry().with(layer));
    (provider, dispatch)
}

fn per_span(c: &mut Criterion) {
    let (_server, _guard) = support::init_held_back();
    let langfuse =
        Dispatch::new(tracing_subscriber::registry().with(langfuse_observe::tracing_layer()));
    let otel_server = TestServer::builder().build_model(false).start();
    let (provider, otel) = opentelemetry_stack(&otel_server);

    let mut group = c.benchmark_group("per_span");
    group.sample_size(20);
    group.bench_function("observe/sync", |b| {
        b.iter_custom(|n| chunked(n, |n| observed_root(n, observed), support::settle));
    });
    for (name, call) in [
        ("layer/genai_span", genai_span as Call),
        ("layer/debug_span_dropped", debug_span),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|n| {
                chunked(
                    n,
                    |n| tracing::dispatcher::with_default(&langfuse, || observed_root(n, call)),
                    support::settle,
                )
            });
        });
    }
    group.bench_function("tracing_opentelemetry/genai_span", |b| {
        b.iter_custom(|n| {
            chunked(
                n,
                |n| {
                    tracing::dispatcher::with_default(&otel, || {
                        tracing::info_span!("root").in_scope(|| timed(n, genai_span))
                    })
                },
                || {
                    let _ = provider.force_flush();
                },
            )
        });
    });
    group.finish();
    let _ = provider.shutdown();
}

criterion_group!(benches, per_span);
criterion_main!(benches);
