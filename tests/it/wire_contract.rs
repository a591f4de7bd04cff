//! What the SDK puts on the wire, checked against a test server that reads requests the way
//! the Langfuse server does (`LANGFUSE_SERVER.md`). Each test names the rule of that contract
//! it checks; each fails against an SDK that breaks the rule.

use std::sync::Arc;
use std::time::Duration;

use langfuse_observe::{
    config::{ConfigBuilder, ExporterKind},
    export::TraceAttributes,
    trace::{ObservationId, Score, ScoreValue, TraceId},
};
use langfuse_observe_testing::opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use langfuse_observe_testing::{Fault, Faults, TestServer};

use crate::support::example::{example_against, run_example};
use crate::support::exporter::{
    assert_accounted, attr, config, exporter, record_all, requests_to, resource_attr, span, spans,
    start_batched, INGESTION_PATH, KINDS, OTLP_PATH,
};
use crate::support::process::run_child;
use crate::support::WAIT;

fn text(value: Option<&Any>) -> Option<&str> {
    match value {
        Some(Any::StringValue(text)) => Some(text),
        _ => None,
    }
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// §3.1 / §11.2: the ingestion route never undoes `Content-Encoding`, so a gzip body is
/// `400 Invalid JSON` and the score is lost. With default settings (gzip on), scores must
/// still arrive: only OTLP bodies are compressed.
#[test]
fn s3_1_scores_travel_uncompressed_while_otlp_is_gzipped() {
    let (server, exporter) = start_batched(ExporterKind::Otlp, |b| b);
    let root = span(TraceId::random(), "scored");
    let trace = root.trace_id;
    record_all(&exporter, vec![root]);
    assert!(exporter.score(Score::new(trace, "accuracy", ScoreValue::Numeric(0.9))));
    let report = exporter.flush_blocking(WAIT);
    assert!(report.completed, "{report:?}");
    let stats = assert_accounted(&exporter, 2);
    assert_eq!(stats.exported, 2, "{stats:?}");
    assert_eq!(server.scores().len(), 1, "the score was stored");
    let ingestion = requests_to(&server, INGESTION_PATH);
    assert_eq!(ingestion.len(), 1, "{ingestion:?}");
    assert_eq!(ingestion[0].content_encoding, None);
    assert_eq!(
        ingestion[0].content_type.as_deref(),
        Some("application/json")
    );
    let otlp = requests_to(&server, OTLP_PATH);
    assert_eq!(otlp[0].content_encoding.as_deref(), Some("gzip"));
}

/// §3.1: with `LANGFUSE_EXPORTER=ingestion` against a server that accepts observations there
/// (v3), every event arrives, uncompressed, whatever `LANGFUSE_GZIP` says.
#[test]
fn s3_1_the_ingestion_exporter_never_compresses() {
    let (server, exporter) = start_batched(ExporterKind::Ingestion, |b| b.gzip(true));
    let observations = spans(3);
    let trace = observations[0].trace_id;
    record_all(&exporter, observations);
    assert!(exporter.score(Score::new(trace, "ok", ScoreValue::Boolean(true))));
    assert!(exporter.flush_blocking(WAIT).completed);
    let stats = assert_accounted(&exporter, 4);
    assert_eq!(stats.exported, 4, "{stats:?}");
    assert_eq!(server.observations().len(), 3);
    assert_eq!(server.scores().len(), 1);
    for request in requests_to(&server, INGESTION_PATH) {
        assert_eq!(request.content_encoding, None, "{request:?}");
    }
}

/// §4.4 / §11.6: spans of a scope not named `langfuse-sdk…` get a raw dump of their
/// attributes in `metadata.attributes`. The scope carries the version and `public_key`; the
/// resource says what sent the spans (§4.5).
#[test]
fn s4_4_spans_carry_the_langfuse_sdk_scope_and_a_rust_resource() {
    let server = TestServer::start();
    let exporter = exporter(
        config(&server, ExporterKind::Otlp)
            .service_name("checkout")
            .resource_attribute("service.namespace", "shop"),
    );
    let mut observation = span(TraceId::random(), "step");
    observation.metadata.insert("k".into(), "v".into());
    let id = observation.id.to_string();
    record_all(&exporter, vec![observation]);
    assert!(exporter.flush_blocking(WAIT).completed);
    assert_accounted(&exporter, 1);

    let export = &server.otlp_requests()[0];
    let scope_spans = &export.resource_spans[0].scope_spans[0];
    let scope = scope_spans.scope.as_ref().unwrap();
    assert_eq!(scope.name, "langfuse-sdk");
    assert_eq!(scope.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(
        text(attr(&scope.attributes, "public_key")),
        Some(server.public_key())
    );
    assert_eq!(
        text(resource_attr(export, "telemetry.sdk.language")),
        Some("rust")
    );
    assert_eq!(
        text(resource_attr(export, "telemetry.sdk.name")),
        Some("langfuse-observe")
    );
    assert_eq!(
        text(resource_attr(export, "service.name")),
        Some("checkout")
    );
    assert_eq!(
        text(resource_attr(export, "service.namespace")),
        Some("shop")
    );

    let stored = server.observation(&id).unwrap();
    assert!(
        !stored.metadata.contains_key("attributes"),
        "no raw attribute dump: {:?}",
        stored.metadata
    );
    assert_eq!(stored.metadata.get("k"), Some(&"v".into()));
}

/// §4.5: `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` reach the resource as
/// OpenTelemetry users expect.
#[test]
fn s4_5_otel_environment_variables_reach_the_resource() {
    let server = TestServer::start();
    let lookup = |name: &str| match name {
        "OTEL_RESOURCE_ATTRIBUTES" => Some("service.name=billing,team=ml%20ops".to_owned()),
        _ => None,
    };
    let builder = ConfigBuilder::from_lookup(lookup)
        .unwrap()
        .keys(server.public_key(), server.secret_key())
        .base_url(server.url())
        .exporter(ExporterKind::Otlp);
    let exporter = exporter(builder);
    record_all(&exporter, spans(1));
    assert!(exporter.flush_blocking(WAIT).completed);
    let export = &server.otlp_requests()[0];
    assert_eq!(text(resource_attr(export, "service.name")), Some("billing"));
    assert_eq!(text(resource_attr(export, "team")), Some("ml ops"));
}

/// §4.14 / §3.5: on the ingestion API a trace is one `trace-create`, which carries its name,
/// input and output (the root's unless set) and its attributes, also when no code ever
/// updated the trace.
#[test]
fn s3_5_ingestion_sends_one_trace_create_per_trace_from_its_root() {
    let (server, exporter) = start_batched(ExporterKind::Ingestion, |b| b);
    let trace = TraceId::random();
    let mut root = span(trace, "pipeline");
    let mut children = Vec::new();
    let mut attributes = TraceAttributes::default();
    attributes.session_id = Some("session-7".into());
    attributes.tags = vec!["a".into(), "b".into()];
    let attributes = Arc::new(attributes);
    for name in ["retrieve", "answer"] {
        let mut child = span(trace, name);
        child.parent_id = Some(root.id);
        child.trace = Some(Arc::clone(&attributes));
        children.push(child);
    }
    root.trace = Some(attributes);
    root.input = Some("the question".into());
    root.output = Some("the answer".into());
    let untouched = span(TraceId::random(), "never-updated");
    let untouched_trace = untouched.trace_id.to_string();
    children.push(root);
    children.push(untouched);
    record_all(&exporter, children);
    assert!(exporter.flush_blocking(WAIT).completed);
    assert_eq!(assert_accounted(&exporter, 4).exported, 4);

    let trace_creates: usize = requests_to(&server, INGESTION_PATH)
        .iter()
        .flat_map(|request| &request.event_types)
        .filter(|kind| *kind == "trace-create")
        .count();
    assert_eq!(trace_creates, 2, "one per trace");
    let stored = server.trace(&trace.to_string()).unwrap();
    assert_eq!(stored.name.as_deref(), Some("pipeline"));
    assert_eq!(stored.input, Some("the question".into()));
    assert_eq!(stored.output, Some("the answer".into()));
    assert_eq!(stored.session_id.as_deref(), Some("session-7"));
    assert_eq!(stored.tags, ["a", "b"]);
    assert_eq!(stored.environment.as_deref(), Some("test"));
    let untouched = server.trace(&untouched_trace).unwrap();
    assert_eq!(untouched.name.as_deref(), Some("never-updated"));
}

/// §3.6: a v4 server refuses every ingestion event but scores with a 400 per event. The SDK
/// counts them failed without retrying, and says once what to do.
#[test]
fn s3_6_a_v4_server_refusing_observations_is_reported_once_and_not_retried() {
    let server = TestServer::start();
    let exporter =
        exporter(config(&server, ExporterKind::Ingestion).flush_interval(Duration::from_secs(60)));
    // Enough refusals that the 207 listing them is several hundred kilobytes: it must still be
    // read whole, or the accepted score in the same batch would be lost with the rest.
    let observations = spans(300);
    let trace = observations[0].trace_id;
    record_all(&exporter, observations);
    assert!(exporter.score(Score::new(trace, "kept", ScoreValue::Numeric(1.0))));
    assert!(exporter.flush_blocking(WAIT).completed);
    let stats = assert_accounted(&exporter, 301);
    assert_eq!(stats.failed, 300, "{stats:?}");
    assert_eq!(stats.exported, 1, "the score is accepted: {stats:?}");
    assert_eq!(stats.retried, 0, "{stats:?}");
    assert!(
        server.envelope_receipt_counts().values().all(|&n| n == 1),
        "no event was sent twice"
    );
    assert_eq!(server.scores().len(), 1);

    let mut command = example_against("exit_after_sync", &server);
    command.env("LANGFUSE_EXPORTER", "ingestion");
    let output = command.output().unwrap();
    let stderr = stderr_of(&output);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        stderr.matches("LANGFUSE_EXPORTER=otlp").count(),
        1,
        "said once: {stderr}"
    );
    assert!(server.observations().is_empty());
}

/// §11.20: only Langfuse's own answer counts as delivered; a proxy's HTML sign-in page with
/// status 200 is a failure that says to check the URL.
#[test]
fn s11_20_a_2xx_that_is_not_langfuse_is_not_counted_as_exported() {
    for kind in KINDS {
        let (server, exporter) = start_batched(kind, |b| b.max_retries(0));
        server.set_faults(Faults::new().with(Fault::html_sign_in_page(200).always()));
        record_all(&exporter, spans(3));
        let report = exporter.flush_blocking(WAIT);
        assert!(report.completed, "{kind:?} {report:?}");
        let stats = assert_accounted(&exporter, 3);
        assert_eq!(stats.exported, 0, "{kind:?} {stats:?}");
        assert_eq!(stats.failed, 3, "{kind:?} {stats:?}");
    }
    let server = TestServer::start();
    server.set_faults(Faults::new().with(Fault::html_sign_in_page(200).always()));
    let stderr = stderr_of(&run_example("exit_after_sync", &server));
    assert!(
        stderr.contains(
            "the response did not come from Langfuse; check LANGFUSE_BASE_URL and any proxy"
        ),
        "{stderr}"
    );
}

/// A 301, 302 or 303 turns a POST into a GET without a body: the SDK stops there and names
/// the `Location`; 307 and 308 keep the body and are followed.
#[test]
fn redirects_that_would_drop_the_body_fail_and_name_their_location() {
    for status in [301, 302, 303] {
        let (server, exporter) = start_batched(ExporterKind::Otlp, |b| b);
        server.set_faults(Faults::new().with(Fault::redirect(status, "/sign-in").always()));
        record_all(&exporter, spans(2));
        assert!(exporter.flush_blocking(WAIT).completed);
        let stats = assert_accounted(&exporter, 2);
        assert_eq!(stats.failed, 2, "{status}: {stats:?}");
        assert_eq!(
            requests_to(&server, OTLP_PATH).len(),
            1,
            "{status}: not followed, not retried"
        );
    }
    for status in [307, 308] {
        let (server, exporter) = start_batched(ExporterKind::Otlp, |b| b);
        server.set_faults(Faults::new().with(Fault::redirect(status, OTLP_PATH).times(1)));
        record_all(&exporter, spans(2));
        assert!(exporter.flush_blocking(WAIT).completed);
        let stats = assert_accounted(&exporter, 2);
        assert_eq!(
            stats.exported, 2,
            "{status}: followed with the body: {stats:?}"
        );
        assert_eq!(server.observations().len(), 2);
    }
    let server = TestServer::start();
    let location = format!("{}/sign-in", server.url());
    server.set_faults(Faults::new().with(Fault::redirect(302, &location).always()));
    let stderr = stderr_of(&run_example("exit_after_sync", &server));
    assert!(
        stderr.contains(&location),
        "the Location is named: {stderr}"
    );
}

/// Set in the child process of [`a_huge_answer_is_read_only_in_part`]: the server to send to.
const CHILD_SERVER: &str = "WIRE_CONTRACT_HUGE_ANSWER_SERVER";

/// The SDK reads at most about 64 KiB of an answer: a 400 MB error page must not be buffered
/// by the worker. The exporter runs in a child process (this test binary again), so that its
/// peak memory is its own and not the test server's.
#[test]
fn a_huge_answer_is_read_only_in_part() {
    let server = TestServer::start();
    server.set_faults(Faults::new().with(Fault::huge_body(400, 400 << 20).always()));
    let output = run_child("wire_contract::huge_answer_child", |command| {
        command
            .env(CHILD_SERVER, server.url())
            .env("LANGFUSE_PUBLIC_KEY", server.public_key())
            .env("LANGFUSE_SECRET_KEY", server.secret_key());
    });
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", stderr_of(&output));
    let peak_kib: u64 = stdout
        .lines()
        .find_map(|line| line.split("peak-rss-kib: ").nth(1))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("the child reports its peak memory: {stdout}"));
    assert!(
        peak_kib < 100 * 1024,
        "the child's peak memory was {peak_kib} KiB"
    );
    assert!(!requests_to(&server, OTLP_PATH).is_empty());
}

/// The child of [`a_huge_answer_is_read_only_in_part`]; does nothing when run on its own.
#[test]
#[ignore = "run in a child process by a_huge_answer_is_read_only_in_part"]
fn huge_answer_child() {
    let Ok(url) = std::env::var(CHILD_SERVER) else {
        return;
    };
    let exporter = exporter(
        langfuse_observe::Config::builder()
            .keys(
                std::env::var("LANGFUSE_PUBLIC_KEY").unwrap(),
                std::env::var("LANGFUSE_SECRET_KEY").unwrap(),
            )
            .base_url(url)
            .exporter(ExporterKind::Otlp)
            .timeout(Duration::from_secs(30)),
    );
    record_all(&exporter, spans(2));
    assert!(exporter.flush_blocking(Duration::from_secs(60)).completed);
    assert_eq!(assert_accounted(&exporter, 2).failed, 2);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let peak = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| {
            value
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .unwrap();
    println!("peak-rss-kib: {peak}");
}

/// Langfuse answers at the root of its address: a base URL with a path gets 404 on every
/// route, and the message says to remove the path rather than to switch exporters.
#[test]
fn a_404_under_a_base_url_path_says_to_remove_the_path() {
    let server = TestServer::start();
    let mut command = example_against("exit_after_sync", &server);
    command.env("LANGFUSE_BASE_URL", format!("{}/api", server.url()));
    let stderr = stderr_of(&command.output().unwrap());
    assert!(
        stderr.contains("remove the path from LANGFUSE_BASE_URL"),
        "{stderr}"
    );
    assert!(!stderr.contains("LANGFUSE_EXPORTER=ingestion"), "{stderr}");
    assert!(server.observations().is_empty());
}

/// §1.4: a `Retry-After` longer than the flush deadline is cut to it, so a flush still sees
/// the batch delivered instead of waiting for an hour.
#[test]
fn s1_4_retry_after_is_capped_by_the_flush_deadline() {
    let (server, exporter) = start_batched(ExporterKind::Otlp, |b| {
        b.flush_timeout(Duration::from_secs(1))
    });
    server.set_faults(Faults::new().rate_limit_next(1, 3600));
    record_all(&exporter, spans(2));
    let report = exporter.flush_blocking(WAIT);
    assert!(report.completed, "{report:?}");
    assert_eq!(assert_accounted(&exporter, 2).exported, 2);
    assert_eq!(requests_to(&server, OTLP_PATH).len(), 2);
}

/// §11.22: a score Langfuse would refuse or silently drop is refused here, where the caller
/// can see it.
#[test]
fn s11_22_scores_langfuse_would_refuse_are_not_sent() {
    let (server, exporter) = start_batched(ExporterKind::Otlp, |b| b);
    let trace = TraceId::random();
    assert!(!exporter.score(Score::new(trace, "nan", ScoreValue::Numeric(f64::NAN))));
    assert!(!exporter.score(Score::new(trace, " ", ScoreValue::Numeric(1.0))));
    let mut no_id = Score::new(trace, "no-id", ScoreValue::Numeric(1.0));
    no_id.id.clear();
    assert!(!exporter.score(no_id));
    let good =
        Score::new(trace, "good", ScoreValue::Numeric(1.0)).observation(ObservationId::random());
    assert!(exporter.score(good));
    assert!(exporter.flush_blocking(WAIT).completed);
    assert_eq!(assert_accounted(&exporter, 1).exported, 1);
    assert_eq!(server.scores().len(), 1);
}
