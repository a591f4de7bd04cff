//! Every field of an observation, a generation and a trace lands where Langfuse reads it when
//! exported over OTLP, and the request carries the headers Langfuse expects.

use std::sync::Arc;
use std::time::Duration;

use langfuse_observe::{
    config::ExporterKind,
    export::{GenerationDetails, Observation, TraceAttributes},
    trace::{Level, ObservationId, ObservationType, PromptRef, TraceId},
    Langfuse,
};
use langfuse_observe_testing::opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use langfuse_observe_testing::opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue};
use langfuse_observe_testing::opentelemetry_proto::tonic::trace::v1::Span;
use langfuse_observe_testing::TestServer;
use serde_json::json;

use crate::support::exporter::{
    attr, config, deliver, exporter, instant, otlp_span, requests_to, resource_attr, spans,
    OTLP_PATH,
};
use crate::support::observed::{millis, user_metadata};

/// The sample trace: a root chain carrying the trace attributes, a generation, a failed tool
/// call and one child of every observation type.
struct Sample {
    trace: TraceId,
    root: ObservationId,
    generation: ObservationId,
    failed: ObservationId,
    observations: Vec<Observation>,
}

fn sample() -> Sample {
    let trace = TraceId::random();
    let root_id = ObservationId::random();

    let mut root = Observation::new(trace, root_id, "pipeline");
    root.kind = ObservationType::Chain;
    root.start_time = instant(0);
    root.end_time = instant(2_000_000);
    root.input = Some(json!({"question": "hi", "n": 2}).into());
    root.output = Some("plain answer".into());
    let mut attributes = TraceAttributes::default();
    attributes.name = Some("my-trace".into());
    attributes.user_id = Some("user-1".into());
    attributes.session_id = Some("session-1".into());
    attributes.tags = vec!["alpha".into(), "beta".into()];
    attributes.metadata = json!({"team": "core", "count": 3, "nested": {"x": [1, 2]}})
        .as_object()
        .cloned()
        .unwrap();
    attributes.public = Some(true);
    attributes.input = Some(json!({"q": 1}).into());
    attributes.output = Some("trace output".into());
    attributes.release = Some("r-trace".into());
    attributes.version = Some("v-trace".into());
    root.trace = Some(Arc::new(attributes));

    let generation_id = ObservationId::random();
    let mut generation = Observation::new(trace, generation_id, "llm");
    generation.parent_id = Some(root_id);
    generation.kind = ObservationType::Generation;
    generation.start_time = instant(100);
    generation.end_time = instant(1_000_100);
    generation.input = Some(json!({"messages": [{"role": "user", "content": "hi"}]}).into());
    generation.output = Some("Hello".into());
    generation.metadata = json!({"attempt": 2, "cached": false, "extra": {"k": "v"}, "label": "x"})
        .as_object()
        .cloned()
        .unwrap();
    generation.version = Some("v1".into());
    generation.level = Level::Warning;
    generation.status_message = Some("slow".into());
    let mut details = GenerationDetails::default();
    details.model = Some("gpt-4o".into());
    details.model_parameters = json!({"temperature": 0.2, "max_tokens": 100})
        .as_object()
        .cloned()
        .unwrap();
    details.usage_details.insert("input".into(), 10);
    details.usage_details.insert("output".into(), 20);
    details.usage_details.insert("total".into(), 30);
    details.cost_details.insert("input".into(), 0.25);
    details.cost_details.insert("output".into(), 0.5);
    details.completion_start_time = Some(instant(500_000));
    details.prompt = Some(PromptRef {
        name: "qa".into(),
        version: 3,
    });
    generation.generation = Some(Box::new(details));

    let failed_id = ObservationId::random();
    let mut failed = Observation::new(trace, failed_id, "search");
    failed.parent_id = Some(root_id);
    failed.kind = ObservationType::Tool;
    failed.level = Level::Error;
    failed.status_message = Some("boom".into());

    let mut observations = vec![generation, failed];
    for kind in ObservationType::ALL {
        let mut child = Observation::new(trace, ObservationId::random(), format!("type-{kind}"));
        child.parent_id = Some(root_id);
        child.kind = kind;
        child.level = Level::Debug;
        observations.push(child);
    }
    // Children end before their parent.
    observations.push(root);
    Sample {
        trace,
        root: root_id,
        generation: generation_id,
        failed: failed_id,
        observations,
    }
}

fn start() -> (TestServer, Langfuse) {
    let server = TestServer::start();
    let exporter = exporter(
        config(&server, ExporterKind::Otlp)
            .environment("test-env")
            .release("r-config"),
    );
    (server, exporter)
}

#[test]
fn observation_fields_land_where_langfuse_reads_them() {
    let (server, exporter) = start();
    let sample = sample();
    let count = sample.observations.len();
    deliver(&exporter, sample.observations);
    assert_eq!(server.observations().len(), count);

    let root = server.observation(&sample.root.to_string()).unwrap();
    assert_eq!(root.trace_id, sample.trace.to_string());
    assert_eq!(root.parent_observation_id, None);
    assert_eq!(root.name.as_deref(), Some("pipeline"));
    assert_eq!(root.observation_type, "CHAIN");
    assert_eq!(root.level, "DEFAULT");
    assert_eq!(root.input, Some(json!({"question": "hi", "n": 2})));
    assert_eq!(root.output, Some(json!("plain answer")));
    // The server keeps milliseconds of every time.
    assert_eq!(root.start_time, Some(millis(instant(0))));
    assert_eq!(root.end_time, Some(millis(instant(2_000_000))));
    assert_eq!(root.environment.as_deref(), Some("test-env"));

    let llm = server.observation(&sample.generation.to_string()).unwrap();
    assert_eq!(
        llm.parent_observation_id,
        Some(sample.root.to_string()),
        "parent id"
    );
    assert_eq!(llm.observation_type, "GENERATION");
    assert_eq!(llm.level, "WARNING");
    assert_eq!(llm.status_message.as_deref(), Some("slow"));
    assert_eq!(
        llm.input,
        Some(json!({"messages": [{"role": "user", "content": "hi"}]}))
    );
    assert_eq!(llm.output, Some(json!("Hello")));
    // Stored as strings: scalars in their text form, a nested value as its JSON text.
    assert_eq!(
        user_metadata(&llm.metadata),
        json!({
            "attempt": "2",
            "cached": "false",
            "extra": json!({"k": "v"}).to_string(),
            "label": "x",
        })
    );
    assert_eq!(llm.version.as_deref(), Some("v1"));
    assert_eq!(llm.environment.as_deref(), Some("test-env"));
    assert_eq!(llm.model.as_deref(), Some("gpt-4o"));
    assert_eq!(
        llm.model_parameters,
        Some(json!({"temperature": 0.2, "max_tokens": 100}))
    );
    assert_eq!(
        llm.usage_details,
        Some(json!({"input": 10, "output": 20, "total": 30}))
    );
    assert_eq!(
        llm.cost_details,
        Some(json!({"input": 0.25, "output": 0.5, "total": 0.75})),
        "the server adds input + output as the total"
    );
    assert_eq!(llm.completion_start_time, Some(millis(instant(500_000))));
    assert_eq!(llm.prompt_name.as_deref(), Some("qa"));
    assert_eq!(llm.prompt_version, Some(3));
    assert_eq!(llm.start_time, Some(millis(instant(100))));
    assert_eq!(llm.end_time, Some(millis(instant(1_000_100))));

    let failed = server.observation(&sample.failed.to_string()).unwrap();
    assert_eq!(failed.level, "ERROR");
    assert_eq!(failed.status_message.as_deref(), Some("boom"));
    assert_eq!(failed.observation_type, "TOOL");

    for kind in ObservationType::ALL {
        let name = format!("type-{kind}");
        let child = server
            .observations()
            .into_iter()
            .find(|o| o.name.as_deref() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{name} arrived"));
        assert_eq!(
            child.observation_type,
            kind.as_str().to_ascii_uppercase(),
            "{name}"
        );
        assert_eq!(child.level, "DEBUG", "{name}");
        assert_eq!(child.parent_observation_id, Some(sample.root.to_string()));
    }
}

#[test]
fn trace_attributes_land_on_the_trace() {
    let (server, exporter) = start();
    let sample = sample();
    // A second trace without its own release: the configured one applies.
    let other = TraceId::random();
    let mut plain = Observation::new(other, ObservationId::random(), "plain-root");
    plain.input = Some("just text".into());
    let mut observations = sample.observations;
    observations.push(plain);
    deliver(&exporter, observations);

    let trace = server.trace(&sample.trace.to_string()).unwrap();
    assert_eq!(trace.name.as_deref(), Some("my-trace"));
    assert_eq!(trace.user_id.as_deref(), Some("user-1"));
    assert_eq!(trace.session_id.as_deref(), Some("session-1"));
    assert_eq!(trace.tags, ["alpha", "beta"]);
    assert_eq!(
        user_metadata(&trace.metadata),
        json!({"team": "core", "count": "3", "nested": json!({"x": [1, 2]}).to_string()})
    );
    assert_eq!(trace.public, Some(true));
    assert_eq!(trace.release.as_deref(), Some("r-trace"));
    assert_eq!(trace.version.as_deref(), Some("v-trace"));
    assert_eq!(trace.environment.as_deref(), Some("test-env"));

    let other = server.trace(&other.to_string()).unwrap();
    assert_eq!(
        other.name.as_deref(),
        Some("plain-root"),
        "root span names it"
    );
    assert_eq!(other.release.as_deref(), Some("r-config"));
    assert_eq!(other.environment.as_deref(), Some("test-env"));
    assert_eq!(other.input, Some(json!("just text")), "root input");

    // The explicit trace input and output travel as `langfuse.trace.input`/`output`: a v4
    // server ignores them and shows the root span's (LANGFUSE_SERVER.md §5.2), a v3 server
    // prefers them (§4.14).
    assert_eq!(trace.input, Some(json!({"question": "hi", "n": 2})));
    assert_eq!(trace.output, Some(json!("plain answer")));
    let legacy = TestServer::builder().langfuse_v3().start();
    let to_legacy = crate::support::exporter::exporter(config(&legacy, ExporterKind::Otlp));
    let again = self::sample();
    deliver(&to_legacy, again.observations);
    let trace = legacy.trace(&again.trace.to_string()).unwrap();
    assert_eq!(trace.input, Some(json!({"q": 1})));
    assert_eq!(trace.output, Some(json!("trace output")));
    assert_eq!(trace.name.as_deref(), Some("my-trace"));
    assert_eq!(trace.session_id.as_deref(), Some("session-1"));
}

#[test]
fn requests_carry_the_langfuse_headers() {
    for gzip in [true, false] {
        let server = TestServer::start();
        let exporter = exporter(config(&server, ExporterKind::Otlp).gzip(gzip));
        deliver(&exporter, spans(2));
        let requests = requests_to(&server, OTLP_PATH);
        assert!(!requests.is_empty());
        for request in requests {
            assert_eq!(request.method, "POST");
            assert_eq!(request.status, Some(200));
            assert_eq!(request.sdk_name.as_deref(), Some("langfuse-observe"));
            assert_eq!(
                request.sdk_version.as_deref(),
                Some(env!("CARGO_PKG_VERSION"))
            );
            assert_eq!(request.public_key.as_deref(), Some(server.public_key()));
            assert_eq!(request.ingestion_version.as_deref(), Some("4"));
            assert_eq!(
                request.content_type.as_deref(),
                Some("application/x-protobuf")
            );
            assert_eq!(
                request.content_encoding.as_deref(),
                gzip.then_some("gzip"),
                "gzip {gzip}"
            );
            assert_eq!(
                request.header("authorization"),
                Some(server.authorization_header().as_str())
            );
        }
    }
}

/// A string attribute holding a JSON document, parsed.
fn json_attr(span: &Span, key: &str) -> serde_json::Value {
    match attr(&span.attributes, key) {
        Some(Any::StringValue(text)) => {
            serde_json::from_str(text).unwrap_or_else(|e| panic!("{key} is not JSON ({e}): {text}"))
        }
        other => panic!("{key} is a JSON string, got {other:?}"),
    }
}

/// A span attribute as an owned value, for comparisons.
fn span_attr(span: &Span, key: &str) -> Option<Any> {
    attr(&span.attributes, key).cloned()
}

/// A native OTLP array of strings.
fn string_array(items: &[&str]) -> Any {
    Any::ArrayValue(ArrayValue {
        values: items
            .iter()
            .map(|item| AnyValue {
                value: Some(Any::StringValue((*item).to_owned())),
            })
            .collect(),
    })
}

/// What the server model cannot tell apart: plain strings travel raw (not JSON-quoted),
/// metadata scalars keep their type, nested values are JSON, tags are a string array, and an
/// error sets the span status too. Checked on the export exactly as the server decoded it.
#[test]
fn values_are_encoded_like_the_python_sdk_sends_them() {
    let server = TestServer::start();
    let exporter = exporter(
        config(&server, ExporterKind::Otlp)
            .gzip(false)
            .environment("test-env")
            .release("r-config")
            .flush_interval(Duration::from_secs(60)),
    );
    let sample = sample();
    deliver(&exporter, sample.observations);
    let requests = requests_to(&server, OTLP_PATH);
    assert_eq!(requests.len(), 1, "one batch");
    assert_eq!(requests[0].status, Some(200));
    assert_eq!(
        requests[0].content_type.as_deref(),
        Some("application/x-protobuf")
    );
    assert_eq!(requests[0].content_encoding, None);
    let exports = server.otlp_requests();
    assert_eq!(exports.len(), 1, "one export accepted");
    let export = &exports[0];

    let str_attr = |value: &str| Some(Any::StringValue(value.to_owned()));
    assert_eq!(
        resource_attr(export, "langfuse.environment").cloned(),
        str_attr("test-env")
    );
    assert_eq!(
        resource_attr(export, "langfuse.release").cloned(),
        str_attr("r-config")
    );

    let root = otlp_span(export, "pipeline");
    assert_eq!(root.trace_id, sample.trace.to_bytes());
    assert_eq!(root.span_id, sample.root.to_bytes());
    assert!(root.parent_span_id.is_empty(), "the root has no parent");
    assert_eq!(
        json_attr(root, "langfuse.observation.input"),
        json!({"question": "hi", "n": 2}),
        "a structured value is a JSON string"
    );
    assert_eq!(
        span_attr(root, "langfuse.observation.output"),
        str_attr("plain answer"),
        "a plain string is sent raw, not JSON-quoted"
    );
    assert_eq!(
        span_attr(root, "langfuse.trace.tags"),
        Some(string_array(&["alpha", "beta"])),
        "tags are a native string array"
    );
    assert_eq!(
        span_attr(root, "langfuse.trace.public"),
        Some(Any::BoolValue(true))
    );
    assert_eq!(
        span_attr(root, "langfuse.trace.metadata.count"),
        Some(Any::IntValue(3))
    );
    assert_eq!(
        span_attr(root, "langfuse.trace.output"),
        str_attr("trace output")
    );
    assert_eq!(span_attr(root, "user.id"), str_attr("user-1"));
    assert_eq!(span_attr(root, "session.id"), str_attr("session-1"));
    assert_eq!(
        root.start_time_unix_nano, 1_700_000_000_123_456_000,
        "start time in unix nanoseconds"
    );
    assert_eq!(root.end_time_unix_nano, 1_700_000_002_123_456_000);
    assert!(
        root.status.as_ref().is_none_or(|status| status.code != 2),
        "no error status on a span that did not fail: {:?}",
        root.status
    );

    let llm = otlp_span(export, "llm");
    assert_eq!(llm.parent_span_id, sample.root.to_bytes());
    assert_eq!(
        span_attr(llm, "langfuse.observation.type"),
        str_attr("generation")
    );
    assert_eq!(
        span_attr(llm, "langfuse.observation.metadata.attempt"),
        Some(Any::IntValue(2)),
        "integers stay typed"
    );
    assert_eq!(
        span_attr(llm, "langfuse.observation.metadata.cached"),
        Some(Any::BoolValue(false)),
        "booleans stay typed"
    );
    assert_eq!(
        json_attr(llm, "langfuse.observation.metadata.extra"),
        json!({"k": "v"}),
        "nested values are JSON"
    );
    assert_eq!(
        span_attr(llm, "langfuse.observation.metadata.label"),
        str_attr("x")
    );
    assert_eq!(
        span_attr(llm, "langfuse.observation.output"),
        str_attr("Hello")
    );
    assert_eq!(
        span_attr(llm, "langfuse.environment"),
        str_attr("test-env"),
        "environment on every span"
    );
    assert_eq!(
        span_attr(llm, "langfuse.observation.model.name"),
        str_attr("gpt-4o")
    );
    assert_eq!(
        json_attr(llm, "langfuse.observation.usage_details"),
        json!({"input": 10, "output": 20, "total": 30})
    );
    assert_eq!(
        json_attr(llm, "langfuse.observation.model.parameters"),
        json!({"temperature": 0.2, "max_tokens": 100})
    );
    assert_eq!(
        json_attr(llm, "langfuse.observation.cost_details"),
        json!({"input": 0.25, "output": 0.5})
    );
    assert_eq!(
        span_attr(llm, "langfuse.observation.prompt.name"),
        str_attr("qa")
    );
    assert!(
        matches!(
            attr(&llm.attributes, "langfuse.observation.prompt.version"),
            Some(Any::IntValue(3)) | Some(Any::StringValue(_))
        ),
        "{:?}",
        attr(&llm.attributes, "langfuse.observation.prompt.version")
    );
    assert!(
        matches!(
            attr(&llm.attributes, "langfuse.observation.completion_start_time"),
            Some(Any::StringValue(time)) if time.contains("2023-11-14T22:13:20.623456")
        ),
        "completion start time in ISO 8601: {:?}",
        attr(
            &llm.attributes,
            "langfuse.observation.completion_start_time"
        )
    );

    let failed = otlp_span(export, "search");
    assert_eq!(
        span_attr(failed, "langfuse.observation.level"),
        str_attr("ERROR")
    );
    assert_eq!(
        span_attr(failed, "langfuse.observation.status_message"),
        str_attr("boom")
    );
    assert_eq!(
        failed
            .status
            .as_ref()
            .map(|status| (status.code, status.message.as_str())),
        Some((2, "boom")),
        "an error sets the span status (code 2) with the message"
    );
}
