//! A server with a client that tests hand records to directly (fast retries), sample
//! observations, and the accounting check that every exporter test ends with: each record
//! produced was exported, failed or dropped, none is pending.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use langfuse_observe::{
    config::{ConfigBuilder, ExporterKind},
    export::{Observation, Stats, TraceAttributes},
    trace::{ObservationId, TraceId},
    Config, Langfuse,
};
use langfuse_observe_testing::opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use langfuse_observe_testing::opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use langfuse_observe_testing::opentelemetry_proto::tonic::trace::v1::Span;
use langfuse_observe_testing::{RecordedRequest, TestServer};

use super::WAIT;

/// Both exporters that talk to a server.
pub(crate) const KINDS: [ExporterKind; 2] = [ExporterKind::Otlp, ExporterKind::Ingestion];

/// Route paths as the server records them.
pub(crate) const OTLP_PATH: &str = "/api/public/otel/v1/traces";
pub(crate) const INGESTION_PATH: &str = "/api/public/ingestion";

/// A configuration for `server` with fast retries: 10 ms backoff, 500 ms request timeout,
/// 50 ms flush interval, environment `test`.
pub(crate) fn config(server: &TestServer, kind: ExporterKind) -> ConfigBuilder {
    config_for_url(
        &server.url(),
        server.public_key(),
        server.secret_key(),
        kind,
    )
}

/// Like [`config`], for any base URL and keys.
pub(crate) fn config_for_url(
    url: &str,
    public_key: &str,
    secret_key: &str,
    kind: ExporterKind,
) -> ConfigBuilder {
    Config::builder()
        .keys(public_key, secret_key)
        .base_url(url)
        .exporter(kind)
        .environment("test")
        .retry_backoff(Duration::from_millis(10))
        .timeout(Duration::from_millis(500))
        .flush_interval(Duration::from_millis(50))
}

/// Starts an exporter from a builder.
pub(crate) fn exporter(builder: ConfigBuilder) -> Langfuse {
    let config = builder.build().expect("the test configuration is valid");
    Langfuse::new(&config).expect("the exporter starts")
}

/// A fresh server and an exporter of `kind` configured for it with the fast defaults.
pub(crate) fn start(kind: ExporterKind) -> (TestServer, Langfuse) {
    start_with(kind, |builder| builder)
}

/// A fresh server and an exporter of `kind`, with `adjust` applied to the fast defaults.
pub(crate) fn start_with(
    kind: ExporterKind,
    adjust: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
) -> (TestServer, Langfuse) {
    let server = server_for(kind);
    let exporter = exporter(adjust(config(&server, kind)));
    (server, exporter)
}

/// A server that accepts what an exporter of `kind` sends: observations on the ingestion API
/// need a Langfuse v3 server, since v4 (the default) accepts only scores there.
pub(crate) fn server_for(kind: ExporterKind) -> TestServer {
    match kind {
        ExporterKind::Ingestion => TestServer::builder().langfuse_v3().start(),
        _ => TestServer::start(),
    }
}

/// Like [`start_with`], with a flush interval so long that nothing is sent before an explicit
/// flush: every record produced before it travels in one batch (up to `flush_at`).
pub(crate) fn start_batched(
    kind: ExporterKind,
    adjust: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
) -> (TestServer, Langfuse) {
    start_with(kind, |builder| {
        adjust(builder.flush_interval(Duration::from_secs(60)))
    })
}

/// A base URL where nothing listens: a port that was bound and released.
pub(crate) fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("bound address");
    drop(listener);
    format!("http://{addr}")
}

/// A fixed instant with whole microseconds, so both wire formats carry it exactly.
pub(crate) fn instant(offset_micros: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456 + offset_micros)
}

/// A small span with a JSON input and a text output.
pub(crate) fn span(trace: TraceId, name: impl Into<String>) -> Observation {
    let mut observation = Observation::new(trace, ObservationId::random(), name.into());
    observation.input = Some(serde_json::json!({"question": "what is 6 x 7?"}).into());
    observation.output = Some("42".into());
    observation
}

/// `n` small spans of one trace, named `span-0`, `span-1`, ...
pub(crate) fn spans(n: usize) -> Vec<Observation> {
    let trace = TraceId::random();
    (0..n).map(|i| span(trace, format!("span-{i}"))).collect()
}

/// `n` small spans of one trace under a parent that is not among them, so that on the
/// ingestion API each travels as exactly its create and update events (only a trace's root
/// also sends the trace).
pub(crate) fn child_spans(n: usize) -> Vec<Observation> {
    let parent = ObservationId::random();
    let mut children = spans(n);
    for child in &mut children {
        child.parent_id = Some(parent);
    }
    children
}

/// `n` spans with an input of about `input_bytes` bytes each.
pub(crate) fn sized_spans(n: usize, input_bytes: usize) -> Vec<Observation> {
    let trace = TraceId::random();
    (0..n)
        .map(|i| {
            let mut observation = span(trace, format!("span-{i}"));
            observation.input = Some("x".repeat(input_bytes).into());
            observation
        })
        .collect()
}

/// A span that carries trace attributes (session and user).
pub(crate) fn root_with_trace(trace: TraceId, name: &str) -> Observation {
    let mut root = span(trace, name.to_owned());
    let mut attributes = TraceAttributes::default();
    attributes.session_id = Some("session-1".into());
    attributes.user_id = Some("user-1".into());
    root.trace = Some(Arc::new(attributes));
    root
}

/// Records `observations`, flushes, and checks every one was exported.
pub(crate) fn deliver(exporter: &Langfuse, observations: Vec<Observation>) {
    let n = observations.len() as u64;
    record_all(exporter, observations);
    let report = exporter.flush_blocking(WAIT);
    assert!(report.completed, "{report:?}");
    let stats = assert_accounted(exporter, n);
    assert_eq!(stats.exported, n, "{stats:?}");
}

/// Records every observation and returns their ids; each must be accepted.
pub(crate) fn record_all(exporter: &Langfuse, observations: Vec<Observation>) -> Vec<String> {
    observations
        .into_iter()
        .map(|observation| {
            let id = observation.id.to_string();
            assert!(exporter.record(observation), "the exporter accepted {id}");
            id
        })
        .collect()
}

/// The invariant every test checks: nothing pending, and every record produced is counted
/// exactly once as exported, failed or dropped.
pub(crate) fn assert_accounted(exporter: &Langfuse, produced: u64) -> Stats {
    let stats = exporter.stats();
    assert_eq!(stats.pending(), 0, "nothing may stay pending: {stats:?}");
    assert_eq!(
        stats.enqueued, produced,
        "every record was handed over: {stats:?}"
    );
    assert_eq!(
        stats.exported + stats.failed + stats.dropped,
        produced,
        "every record is exported, failed or dropped: {stats:?}"
    );
    stats
}

/// Requests to one route.
pub(crate) fn requests_to(server: &TestServer, path: &str) -> Vec<RecordedRequest> {
    server
        .requests()
        .into_iter()
        .filter(|request| request.path == path)
        .collect()
}

/// The statuses of the requests to one route, in the order they finished.
pub(crate) fn statuses(server: &TestServer, path: &str) -> Vec<Option<u16>> {
    requests_to(server, path)
        .iter()
        .map(|request| request.status)
        .collect()
}

/// The path an exporter of `kind` sends observations to.
pub(crate) fn path_of(kind: ExporterKind) -> &'static str {
    match kind {
        ExporterKind::Ingestion => INGESTION_PATH,
        _ => OTLP_PATH,
    }
}

/// How many spans these OTLP requests carried.
pub(crate) fn spans_in(requests: &[RecordedRequest]) -> usize {
    requests.iter().map(|request| request.span_ids.len()).sum()
}

/// The value of the first attribute with this key in an OTLP attribute list (the first one wins,
/// as in Langfuse); `None` when absent or empty.
pub(crate) fn attr<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|value| value.value.as_ref())
}

/// A resource attribute of an OTLP export, from the first resource that has it.
pub(crate) fn resource_attr<'a>(
    export: &'a ExportTraceServiceRequest,
    key: &str,
) -> Option<&'a any_value::Value> {
    export
        .resource_spans
        .iter()
        .filter_map(|resource_spans| resource_spans.resource.as_ref())
        .find_map(|resource| attr(&resource.attributes, key))
}

/// Every span of an OTLP export, in the order it was sent.
pub(crate) fn otlp_spans(export: &ExportTraceServiceRequest) -> impl Iterator<Item = &Span> {
    export
        .resource_spans
        .iter()
        .flat_map(|resource_spans| &resource_spans.scope_spans)
        .flat_map(|scope_spans| &scope_spans.spans)
}

/// The span with this name in an OTLP export; panics when there is none.
pub(crate) fn otlp_span<'a>(export: &'a ExportTraceServiceRequest, name: &str) -> &'a Span {
    otlp_spans(export)
        .find(|span| span.name == name)
        .unwrap_or_else(|| panic!("no span named {name} in {export:?}"))
}
