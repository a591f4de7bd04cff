//! The functions the per-call benchmarks call: the same work under `#[observe]`,
//! `tracing::instrument` (with a layer that records every span) and `fastrace::trace` (with a
//! reporter that discards), and the roots the calls are nested under.

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use langfuse_observe::observe;

#[observe(capture_input = false, capture_output = false)]
pub(crate) fn observed_plain(a: u64, b: u64) -> u64 {
    a.wrapping_mul(b)
}

#[observe]
pub(crate) fn observed_captured(a: u64, b: &str) -> u64 {
    a.wrapping_add(b.len() as u64)
}

#[observe(capture_input = false, capture_output = false)]
pub(crate) async fn observed_plain_async(a: u64, b: u64) -> u64 {
    a.wrapping_mul(b)
}

#[observe]
pub(crate) async fn observed_captured_async(a: u64, b: &str) -> u64 {
    a.wrapping_add(b.len() as u64)
}

/// One benchmarked call: the loop index in, a value to keep alive out.
pub(crate) type Call = fn(u64) -> u64;

#[observe(flush = false, skip_all)]
pub(crate) fn observed_root(iterations: u64, call: Call) -> Duration {
    let start = Instant::now();
    for i in 0..iterations {
        black_box(call(black_box(i)));
    }
    start.elapsed()
}

#[observe(flush = false, skip_all)]
pub(crate) async fn observed_root_async(iterations: u64, captured: bool) -> Duration {
    let start = Instant::now();
    for i in 0..iterations {
        let result = if captured {
            observed_captured_async(black_box(i), black_box("question")).await
        } else {
            observed_plain_async(black_box(i), black_box(7)).await
        };
        black_box(result);
    }
    start.elapsed()
}

#[tracing::instrument(skip_all)]
pub(crate) fn tracing_plain(a: u64, b: u64) -> u64 {
    a.wrapping_mul(b)
}

#[tracing::instrument(ret)]
pub(crate) fn tracing_captured(a: u64, b: &str) -> u64 {
    a.wrapping_add(b.len() as u64)
}

#[tracing::instrument(skip_all)]
pub(crate) async fn tracing_plain_async(a: u64, b: u64) -> u64 {
    a.wrapping_mul(b)
}

#[fastrace::trace]
pub(crate) fn fastrace_plain(a: u64, b: u64) -> u64 {
    a.wrapping_mul(b)
}

#[fastrace::trace(properties = { "a": "{a}", "b": "{b}" })]
pub(crate) fn fastrace_captured(a: u64, b: &str) -> u64 {
    a.wrapping_add(b.len() as u64)
}

#[fastrace::trace]
pub(crate) async fn fastrace_plain_async(a: u64, b: u64) -> u64 {
    a.wrapping_mul(b)
}

/// A `tracing` layer that keeps what a span recorded when it closes.
#[derive(Clone, Default)]
pub(crate) struct SpanRecorder {
    pub(crate) closed: Arc<Mutex<Vec<(&'static str, String)>>>,
}

struct Fields(String);

struct FieldWriter<'a>(&'a mut String);

impl tracing::field::Visit for FieldWriter<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let _ = write!(self.0, "{}={value:?} ", field.name());
    }
}

impl<S> tracing_subscriber::Layer<S> for SpanRecorder
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attributes: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        context: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = String::new();
        attributes.record(&mut FieldWriter(&mut fields));
        if let Some(span) = context.span(id) {
            span.extensions_mut().insert(Fields(fields));
        }
    }

    fn on_close(&self, id: tracing::span::Id, context: tracing_subscriber::layer::Context<'_, S>) {
        if let Some(span) = context.span(&id) {
            let fields = span.extensions_mut().remove::<Fields>().map(|f| f.0);
            let mut closed = self.closed.lock().unwrap_or_else(|p| p.into_inner());
            closed.push((span.name(), fields.unwrap_or_default()));
        }
    }
}

struct DiscardReporter;

impl fastrace::collector::Reporter for DiscardReporter {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        black_box(spans);
    }
}

/// Points the exporter at a held-back loopback server (see `support::init_held_back`) and
/// installs the `tracing` subscriber and the `fastrace` reporter; keep what it returns alive.
pub(crate) fn set_up() -> (
    langfuse_observe_testing::TestServer,
    langfuse_observe::FlushGuard,
    SpanRecorder,
) {
    use tracing_subscriber::layer::SubscriberExt as _;
    let (server, guard) = crate::support::init_held_back();
    let recorder = SpanRecorder::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(recorder.clone()))
        .expect("first subscriber");
    fastrace::set_reporter(DiscardReporter, fastrace::collector::Config::default());
    (server, guard, recorder)
}

impl SpanRecorder {
    /// Delivers what every library recorded so far, outside the timing.
    pub(crate) fn settle(&self) {
        crate::support::settle();
        self.closed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        fastrace::flush();
    }
}
