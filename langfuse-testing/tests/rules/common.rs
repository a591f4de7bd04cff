//! Requests built by hand, the way an SDK would send them, and the answers read back raw.

use std::io::Write;
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use langfuse_observe_testing::opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use langfuse_observe_testing::opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use langfuse_observe_testing::opentelemetry_proto::tonic::resource::v1::Resource;
use langfuse_observe_testing::opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status,
};
use langfuse_observe_testing::TestServer;
use prost::Message;
use serde_json::{json, Value};

pub(crate) const WAIT: Duration = Duration::from_secs(5);
pub(crate) const TRACE: [u8; 16] = [0xab; 16];
pub(crate) const ROOT: [u8; 8] = [0x01; 8];
pub(crate) const CHILD: [u8; 8] = [0x02; 8];
pub(crate) const T1: &str = "0123456789abcdef0123456789abcdef";
pub(crate) const INGESTION: &str = "/api/public/ingestion";
pub(crate) const OTLP: &str = "/api/public/otel/v1/traces";

pub(crate) fn v3() -> TestServer {
    TestServer::builder().langfuse_v3().start()
}

pub(crate) fn v4() -> TestServer {
    TestServer::start()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).expect("writing to a Vec");
    encoder.finish().expect("finishing a Vec")
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a plain HTTP client")
}

/// An answer as received.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: String,
}

impl Reply {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The errors of a 207, as `(envelope id, status, message)`.
    pub(crate) fn errors(&self) -> Vec<(String, u64, String)> {
        self.json()["errors"]
            .as_array()
            .expect("errors")
            .iter()
            .map(|e| {
                (
                    e["id"].as_str().unwrap_or_default().to_owned(),
                    e["status"].as_u64().unwrap_or_default(),
                    e["message"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// The envelope ids a 207 reports as successes.
    pub(crate) fn successes(&self) -> Vec<String> {
        self.json()["successes"]
            .as_array()
            .expect("successes")
            .iter()
            .map(|s| {
                assert_eq!(s["status"], 201, "{s}");
                s["id"].as_str().unwrap_or_default().to_owned()
            })
            .collect()
    }
}

pub(crate) async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("request sent");
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        body: response.text().await.expect("a body"),
    }
}

/// A POST with the server's Basic credentials and the SDK headers.
pub(crate) fn post(
    server: &TestServer,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    client()
        .post(format!("{}{path}", server.url()))
        .header("authorization", server.authorization_header())
        .header("content-type", content_type)
        .header("x-langfuse-sdk-name", "rules-test")
        .header("x-langfuse-sdk-version", "0.0.1")
        .body(body)
}

pub(crate) async fn ingest(server: &TestServer, batch: &Value) -> Reply {
    send(post(
        server,
        INGESTION,
        "application/json",
        batch.to_string().into_bytes(),
    ))
    .await
}

pub(crate) fn event(envelope_id: &str, event_type: &str, body: Value) -> Value {
    event_at(envelope_id, event_type, "2024-01-02T03:04:05.000Z", body)
}

pub(crate) fn event_at(envelope_id: &str, event_type: &str, timestamp: &str, body: Value) -> Value {
    json!({"id": envelope_id, "timestamp": timestamp, "type": event_type, "body": body})
}

pub(crate) fn batch(events: Vec<Value>) -> Value {
    json!({"batch": events})
}

pub(crate) fn score(envelope_id: &str, body: Value) -> Value {
    event(envelope_id, "score-create", body)
}

pub(crate) async fn otlp_proto(server: &TestServer, export: &ExportTraceServiceRequest) -> Reply {
    send(post(
        server,
        OTLP,
        "application/x-protobuf",
        export.encode_to_vec(),
    ))
    .await
}

pub(crate) async fn otlp_json(server: &TestServer, body: &Value) -> Reply {
    send(post(
        server,
        OTLP,
        "application/json",
        body.to_string().into_bytes(),
    ))
    .await
}

pub(crate) fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

pub(crate) fn s(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.to_owned()))
}

pub(crate) fn int(key: &str, value: i64) -> KeyValue {
    kv(key, any_value::Value::IntValue(value))
}

pub(crate) fn boolean(key: &str, value: bool) -> KeyValue {
    kv(key, any_value::Value::BoolValue(value))
}

pub(crate) fn strings(key: &str, values: &[&str]) -> KeyValue {
    kv(
        key,
        any_value::Value::ArrayValue(ArrayValue {
            values: values
                .iter()
                .map(|v| AnyValue {
                    value: Some(any_value::Value::StringValue((*v).to_owned())),
                })
                .collect(),
        }),
    )
}

/// A span of [`TRACE`] that starts at `start_ms` and lasts 100 ms.
pub(crate) fn span(
    id: [u8; 8],
    parent: Option<[u8; 8]>,
    name: &str,
    start_ms: u64,
    attributes: Vec<KeyValue>,
) -> Span {
    Span {
        trace_id: TRACE.to_vec(),
        span_id: id.to_vec(),
        parent_span_id: parent.map(|p| p.to_vec()).unwrap_or_default(),
        name: name.to_owned(),
        start_time_unix_nano: start_ms * 1_000_000,
        end_time_unix_nano: (start_ms + 100) * 1_000_000,
        attributes,
        ..Default::default()
    }
}

pub(crate) fn with_status(mut span: Span, code: i32, message: &str) -> Span {
    span.status = Some(Status {
        code,
        message: message.to_owned(),
    });
    span
}

/// An export from the scope `scope` with these resource attributes.
pub(crate) fn export_from(
    scope: &str,
    resource: Vec<KeyValue>,
    spans: Vec<Span>,
) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: scope.to_owned(),
                    version: "1.0.0".to_owned(),
                    attributes: vec![s("public_key", "pk-lf-test")],
                    ..Default::default()
                }),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// An export from a Langfuse SDK scope (`langfuse-sdk-rust`) with a `service.name` resource.
pub(crate) fn export(spans: Vec<Span>) -> ExportTraceServiceRequest {
    export_from("langfuse-sdk-rust", vec![s("service.name", "rules")], spans)
}

/// Exports one root span with these attributes and returns the stored observation.
pub(crate) async fn one_span(
    server: &TestServer,
    attributes: Vec<KeyValue>,
) -> langfuse_observe_testing::StoredObservation {
    let reply = otlp_proto(
        server,
        &export(vec![span(
            ROOT,
            None,
            "root",
            1_700_000_000_000,
            attributes,
        )]),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    server.observation(&hex(&ROOT)).expect("the span is stored")
}

/// The observation metadata value of a key, as a string.
pub(crate) fn meta<'a>(
    observation: &'a langfuse_observe_testing::StoredObservation,
    key: &str,
) -> Option<&'a str> {
    observation.metadata.get(key).and_then(Value::as_str)
}
