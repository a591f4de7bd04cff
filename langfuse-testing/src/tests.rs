//! End-to-end tests: real HTTP requests from reqwest to a running [`TestServer`].

use std::io::Write;
use std::time::{Duration, Instant, UNIX_EPOCH};

use flate2::write::GzEncoder;
use flate2::Compression;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, ArrayValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use serde_json::{json, Value};

use super::*;

const TRACE_ID: [u8; 16] = [0xab; 16];
const ROOT_ID: [u8; 8] = [0x01; 8];
const CHILD_ID: [u8; 8] = [0x02; 8];
const WAIT: Duration = Duration::from_secs(5);

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn s(key: &str, value: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(value.to_owned()))
}

fn string_array(values: &[&str]) -> any_value::Value {
    any_value::Value::ArrayValue(ArrayValue {
        values: values
            .iter()
            .map(|v| AnyValue {
                value: Some(any_value::Value::StringValue((*v).to_owned())),
            })
            .collect(),
    })
}

fn export(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    s("service.name", "tests"),
                    s("langfuse.environment", "staging"),
                    s("langfuse.release", "v1.2.3"),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// A generation inside a root span, carrying every attribute the mapping knows, exported
/// children first like the SDKs do.
fn sample_export() -> ExportTraceServiceRequest {
    let child = Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: CHILD_ID.to_vec(),
        parent_span_id: ROOT_ID.to_vec(),
        name: "llm-call".into(),
        start_time_unix_nano: 1_700_000_000_100_000_000,
        end_time_unix_nano: 1_700_000_000_900_000_000,
        attributes: vec![
            s("langfuse.observation.type", "generation"),
            s(
                "langfuse.observation.input",
                r#"[{"role":"user","content":"hi"}]"#,
            ),
            s("langfuse.observation.output", "hello there"),
            s("langfuse.observation.model.name", "gpt-4o"),
            s(
                "langfuse.observation.model.parameters",
                r#"{"temperature":0.2}"#,
            ),
            s(
                "langfuse.observation.usage_details",
                r#"{"input":3,"output":2}"#,
            ),
            s("langfuse.observation.cost_details", r#"{"total":0.01}"#),
            s(
                "langfuse.observation.completion_start_time",
                "\"2023-11-14T22:13:20.250Z\"",
            ),
            s("langfuse.observation.prompt.name", "greeting"),
            kv(
                "langfuse.observation.prompt.version",
                any_value::Value::IntValue(4),
            ),
            s("langfuse.observation.level", "WARNING"),
            s("langfuse.observation.status_message", "slow"),
            kv(
                "langfuse.observation.metadata.attempt",
                any_value::Value::IntValue(2),
            ),
            kv(
                "langfuse.observation.metadata.cached",
                any_value::Value::BoolValue(false),
            ),
            s("langfuse.observation.metadata.extra", r#"{"k":"v"}"#),
            s("langfuse.version", "7"),
            // StoredTrace attributes may arrive on any span, e.g. set late from a child.
            kv("langfuse.trace.tags", string_array(&["child-tag"])),
            s("langfuse.trace.metadata.from_child", "yes"),
        ],
        ..Default::default()
    };
    let root = Span {
        trace_id: TRACE_ID.to_vec(),
        span_id: ROOT_ID.to_vec(),
        name: "handle-request".into(),
        start_time_unix_nano: 1_700_000_000_000_000_000,
        end_time_unix_nano: 1_700_000_001_000_000_000,
        attributes: vec![
            s("langfuse.observation.type", "agent"),
            s("langfuse.observation.input", r#"{"question":"hi"}"#),
            s("langfuse.observation.output", r#""answer""#),
            s("langfuse.trace.name", "chat"),
            s("user.id", "user-1"),
            s("langfuse.session.id", "session-1"),
            kv("langfuse.trace.tags", string_array(&["a", "b"])),
            kv("langfuse.trace.public", any_value::Value::BoolValue(true)),
            s("langfuse.trace.metadata", r#"{"tier":"pro"}"#),
            s("langfuse.environment", "production"),
        ],
        status: Some(Status {
            code: 2,
            message: "it broke".into(),
        }),
        ..Default::default()
    };
    export(vec![child, root])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).expect("writing to a Vec");
    encoder.finish().expect("finishing a Vec")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a plain HTTP client")
}

/// A request as an SDK would send it: authenticated, with the Langfuse headers.
fn request(
    server: &TestServer,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    client()
        .post(format!("{}{path}", server.url()))
        .basic_auth(server.public_key(), Some(server.secret_key()))
        .header("content-type", content_type)
        .header("x-langfuse-sdk-name", "rust")
        .header("x-langfuse-sdk-version", "0.1.0")
        .header("x-langfuse-public-key", server.public_key())
        .header("x-langfuse-ingestion-version", "4")
        .body(body)
}

fn otlp(server: &TestServer, body: Vec<u8>) -> reqwest::RequestBuilder {
    request(
        server,
        "/api/public/otel/v1/traces",
        "application/x-protobuf",
        body,
    )
}

fn ingestion(server: &TestServer, batch: &Value) -> reqwest::RequestBuilder {
    request(
        server,
        "/api/public/ingestion",
        "application/json",
        batch.to_string().into_bytes(),
    )
}

fn event(envelope_id: &str, event_type: &str, body: Value) -> Value {
    json!({
        "id": envelope_id,
        "timestamp": "2024-01-02T03:04:05.000Z",
        "type": event_type,
        "body": body,
    })
}

const T1: &str = "0123456789abcdef0123456789abcdef";

fn span_create(envelope_id: &str, id: &str) -> Value {
    event(
        envelope_id,
        "span-create",
        json!({"id": id, "traceId": T1, "name": "step", "startTime": "2024-01-02T03:04:05Z"}),
    )
}

async fn json_body(response: reqwest::Response) -> Value {
    let bytes = response.bytes().await.expect("a response body");
    serde_json::from_slice(&bytes).expect("a JSON response body")
}

fn assert_otlp_sample_applied(server: &TestServer) {
    let trace_id = hex(&TRACE_ID);
    let trace = server.trace(&trace_id).expect("the trace exists");
    assert_eq!(trace.name.as_deref(), Some("chat"));
    assert_eq!(trace.user_id.as_deref(), Some("user-1"));
    assert_eq!(trace.session_id.as_deref(), Some("session-1"));
    assert_eq!(trace.tags, ["child-tag", "a", "b"]);
    assert_eq!(
        Value::Object(trace.metadata),
        json!({"tier": "pro", "from_child": "yes"})
    );
    assert_eq!(trace.input, Some(json!({"question": "hi"})));
    assert_eq!(trace.output, Some(json!("answer")));
    assert_eq!(trace.public, Some(true));
    assert_eq!(trace.environment.as_deref(), Some("production"));
    assert_eq!(trace.release.as_deref(), Some("v1.2.3"));
    assert_eq!(server.traces().len(), 1);

    let root = server.observation(&hex(&ROOT_ID)).expect("root stored");
    assert_eq!(root.trace_id, trace_id);
    assert_eq!(root.parent_observation_id, None);
    assert_eq!(root.name.as_deref(), Some("handle-request"));
    assert_eq!(root.observation_type, "AGENT");
    assert_eq!(root.level, "ERROR", "span status ERROR means level ERROR");
    assert_eq!(root.status_message.as_deref(), Some("it broke"));
    assert_eq!(
        root.start_time,
        Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    );
    assert_eq!(
        root.end_time,
        Some(UNIX_EPOCH + Duration::from_secs(1_700_000_001))
    );
    assert_eq!(root.environment.as_deref(), Some("production"));
    assert_eq!(root.writes, 1);

    let child = server.observation(&hex(&CHILD_ID)).expect("child stored");
    assert_eq!(child.parent_observation_id, Some(hex(&ROOT_ID)));
    assert_eq!(child.observation_type, "GENERATION");
    assert_eq!(child.level, "WARNING");
    assert_eq!(child.status_message.as_deref(), Some("slow"));
    assert_eq!(
        child.input,
        Some(json!([{"role": "user", "content": "hi"}]))
    );
    assert_eq!(child.output, Some(json!("hello there")));
    assert_eq!(
        Value::Object(child.metadata),
        json!({"attempt": 2, "cached": false, "extra": {"k": "v"}})
    );
    assert_eq!(child.model.as_deref(), Some("gpt-4o"));
    assert_eq!(child.model_parameters, Some(json!({"temperature": 0.2})));
    assert_eq!(child.usage_details, Some(json!({"input": 3, "output": 2})));
    assert_eq!(child.cost_details, Some(json!({"total": 0.01})));
    assert_eq!(
        child.completion_start_time,
        Some(UNIX_EPOCH + Duration::from_millis(1_700_000_000_250))
    );
    assert_eq!(child.prompt_name.as_deref(), Some("greeting"));
    assert_eq!(child.prompt_version, Some(4));
    assert_eq!(
        child.environment.as_deref(),
        Some("staging"),
        "the resource attribute applies when the span has none"
    );
    assert_eq!(child.version.as_deref(), Some("7"));
}

#[tokio::test]
async fn otlp_protobuf_maps_to_langfuse_fields() {
    let server = TestServer::start();
    let body = sample_export().encode_to_vec();
    let size = body.len();
    let response = otlp(&server, body).send().await.expect("request sent");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("content-type").map(|v| v.as_bytes()),
        Some(&b"application/x-protobuf"[..])
    );
    assert_otlp_sample_applied(&server);

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let recorded = &requests[0];
    assert_eq!(recorded.path, "/api/public/otel/v1/traces");
    assert_eq!(recorded.status, Some(200));
    assert_eq!(recorded.body_bytes, size);
    assert_eq!(recorded.sdk_name.as_deref(), Some("rust"));
    assert_eq!(recorded.sdk_version.as_deref(), Some("0.1.0"));
    assert_eq!(recorded.public_key.as_deref(), Some("pk-lf-test"));
    assert_eq!(recorded.ingestion_version.as_deref(), Some("4"));
    assert_eq!(
        recorded.content_type.as_deref(),
        Some("application/x-protobuf")
    );
    assert_eq!(recorded.content_encoding, None);
    assert_eq!(recorded.span_ids, [hex(&CHILD_ID), hex(&ROOT_ID)]);
    assert!(recorded.header("Authorization").is_some());
    assert_eq!(
        server.otlp_requests(),
        [sample_export()],
        "the accepted export, decoded exactly as sent"
    );
}

#[tokio::test]
async fn otlp_gzipped_protobuf_is_decoded_and_recorded_compressed() {
    let server = TestServer::start();
    let body = gzip(&sample_export().encode_to_vec());
    let size = body.len();
    let response = otlp(&server, body)
        .header("content-encoding", "gzip")
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200);
    assert_otlp_sample_applied(&server);
    let recorded = &server.requests()[0];
    assert_eq!(recorded.body_bytes, size);
    assert_eq!(recorded.content_encoding.as_deref(), Some("gzip"));
    assert_eq!(server.otlp_requests(), [sample_export()], "decompressed");
}

#[tokio::test]
async fn otlp_json_and_repeated_exports() {
    let server = TestServer::start();
    let span = json!({
        "traceId": hex(&TRACE_ID),
        "spanId": hex(&ROOT_ID),
        "name": "json-root",
        "startTimeUnixNano": "1700000000000000000",
        "attributes": [
            {"key": "langfuse.observation.type", "value": {"stringValue": "tool"}},
            {"key": "session.id", "value": {"stringValue": "s"}}
        ]
    });
    let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}).to_string();
    for _ in 0..2 {
        let response = request(
            &server,
            "/api/public/otel/v1/traces",
            "application/json",
            body.clone().into_bytes(),
        )
        .send()
        .await
        .expect("request sent");
        assert_eq!(response.status(), 200);
        assert_eq!(json_body(response).await, json!({}));
    }
    let obs = server.observation(&hex(&ROOT_ID)).expect("stored");
    assert_eq!(obs.observation_type, "TOOL");
    assert_eq!(obs.writes, 2, "a duplicated export is visible");
    let trace = server.trace(&hex(&TRACE_ID)).expect("stored");
    assert_eq!(
        trace.name.as_deref(),
        Some("json-root"),
        "root name fallback"
    );
    assert_eq!(trace.session_id.as_deref(), Some("s"));

    let exports = server.otlp_requests();
    assert_eq!(
        exports.len(),
        2,
        "one per accepted request, duplicates included"
    );
    assert_eq!(exports[0], exports[1]);
    let decoded = &exports[0].resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(decoded.span_id, ROOT_ID);
    assert_eq!(decoded.name, "json-root");
    assert_eq!(
        decoded.attributes[0],
        s("langfuse.observation.type", "tool"),
        "OTLP/JSON lands in the same types as protobuf"
    );
}

#[tokio::test]
async fn every_trace_id_gets_a_trace_and_bad_otlp_is_rejected() {
    let server = TestServer::start();
    let bare = Span {
        trace_id: vec![0x11; 16],
        span_id: vec![0x22; 8],
        parent_span_id: vec![0x33; 8],
        name: "continued".into(),
        ..Default::default()
    };
    let response = otlp(&server, export(vec![bare]).encode_to_vec())
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 200);
    let trace = server.trace(&"11".repeat(16)).expect("trace entry exists");
    assert_eq!(
        trace.name, None,
        "a span with a parent does not name the trace"
    );
    assert_eq!(trace.release.as_deref(), Some("v1.2.3"));

    let garbage = otlp(&server, vec![0xff, 0xff, 0xff])
        .send()
        .await
        .expect("request sent");
    assert_eq!(garbage.status(), 400);
    let wrong_type = request(&server, "/api/public/otel/v1/traces", "text/plain", vec![])
        .send()
        .await
        .expect("request sent");
    assert_eq!(wrong_type.status(), 415);
    let bad_gzip = otlp(&server, vec![1, 2, 3])
        .header("content-encoding", "gzip")
        .send()
        .await
        .expect("request sent");
    assert_eq!(bad_gzip.status(), 400);
    let bad_json_id = request(
        &server,
        "/api/public/otel/v1/traces",
        "application/json",
        br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}"#.to_vec(),
    )
    .send()
    .await
    .expect("request sent");
    assert_eq!(bad_json_id.status(), 400);
    assert_eq!(server.observations().len(), 1);
    assert_eq!(
        server.otlp_requests().len(),
        1,
        "rejected bodies are only in requests()"
    );
    assert_eq!(server.requests().len(), 5);
}

#[tokio::test]
async fn ingestion_merges_create_and_update_and_deduplicates_envelopes() {
    let server = TestServer::start();
    let batch = json!({
        "batch": [
            event("e1", "trace-create", json!({
                "id": T1, "name": "legacy", "userId": "u", "sessionId": "s",
                "tags": ["x"], "metadata": {"a": 1}, "public": false,
                "release": "r", "version": "v", "environment": "dev"
            })),
            event("e2", "generation-create", json!({
                "id": "gen-1", "traceId": T1, "name": "call", "model": "m1",
                "startTime": "2024-01-02T03:04:05Z", "input": {"q": 1},
                "metadata": {"first": true}, "promptName": "p", "promptVersion": 2
            })),
            event("e3", "generation-update", json!({
                "id": "gen-1", "traceId": T1, "endTime": "2024-01-02T03:04:06.5Z",
                "output": "answer", "model": null, "level": "ERROR",
                "statusMessage": "bad", "usageDetails": {"input": 1},
                "costDetails": {"total": 2}, "modelParameters": {"t": 1},
                "completionStartTime": "2024-01-02T03:04:05.5Z",
                "metadata": {"second": true}
            })),
            event("e4", "score-create", json!({
                "id": "score-1", "traceId": T1, "observationId": "gen-1",
                "name": "quality", "value": "good", "dataType": "CATEGORICAL",
                "comment": "nice"
            })),
            event("e5", "sdk-log", json!({"log": "hello"})),
            event("e6", "trace-create", json!({"id": T1, "tags": ["y", "x"], "metadata": {"b": 2}})),
        ],
        "metadata": {"batch_size": 6}
    });
    let response = ingestion(&server, &batch)
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), 207);
    let body = json_body(response).await;
    assert_eq!(body["errors"], json!([]));
    let acknowledged: Vec<_> = body["successes"]
        .as_array()
        .expect("successes")
        .iter()
        .map(|s| (s["id"].clone(), s["status"].clone()))
        .collect();
    assert_eq!(acknowledged.len(), 6);
    assert_eq!(acknowledged[0], (json!("e1"), json!(201)));

    let trace = server.trace(T1).expect("trace stored");
    assert_eq!(trace.name.as_deref(), Some("legacy"));
    assert_eq!(trace.user_id.as_deref(), Some("u"));
    assert_eq!(trace.tags, ["x", "y"]);
    assert_eq!(Value::Object(trace.metadata), json!({"a": 1, "b": 2}));
    assert_eq!(trace.public, Some(false));
    assert_eq!(trace.environment.as_deref(), Some("dev"));

    let generation = server.observation("gen-1").expect("generation stored");
    assert_eq!(generation.observation_type, "GENERATION");
    assert_eq!(generation.name.as_deref(), Some("call"));
    assert_eq!(
        generation.model.as_deref(),
        Some("m1"),
        "null does not erase"
    );
    assert_eq!(generation.input, Some(json!({"q": 1})));
    assert_eq!(generation.output, Some(json!("answer")));
    assert_eq!(generation.level, "ERROR");
    assert_eq!(generation.status_message.as_deref(), Some("bad"));
    assert_eq!(
        Value::Object(generation.metadata.clone()),
        json!({"first": true, "second": true})
    );
    assert_eq!(generation.usage_details, Some(json!({"input": 1})));
    assert_eq!(generation.cost_details, Some(json!({"total": 2})));
    assert_eq!(generation.model_parameters, Some(json!({"t": 1})));
    assert_eq!(generation.prompt_name.as_deref(), Some("p"));
    assert_eq!(generation.prompt_version, Some(2));
    let start = generation.start_time.expect("start time");
    let end = generation.end_time.expect("end time");
    assert_eq!(
        end.duration_since(start).expect("end after start"),
        Duration::from_millis(1500)
    );
    assert_eq!(
        generation.completion_start_time,
        Some(start + Duration::from_millis(500))
    );
    assert_eq!(generation.writes, 2);

    let scores = server.scores();
    assert_eq!(scores.len(), 1);
    assert_eq!(scores[0].value, json!("good"));
    assert_eq!(scores[0].observation_id.as_deref(), Some("gen-1"));
    assert_eq!(scores[0].data_type.as_deref(), Some("CATEGORICAL"));
    assert_eq!(scores[0].comment.as_deref(), Some("nice"));
    assert_eq!(server.sdk_logs(), [json!({"log": "hello"})]);

    // A retry of the whole batch is acknowledged but changes nothing.
    let retry = ingestion(&server, &batch)
        .send()
        .await
        .expect("request sent");
    assert_eq!(retry.status(), 207);
    let retry_body = json_body(retry).await;
    assert_eq!(retry_body["successes"].as_array().map(Vec::len), Some(6));
    assert_eq!(server.observation("gen-1").map(|o| o.writes), Some(2));
    assert_eq!(server.sdk_logs().len(), 1);
    assert_eq!(server.envelope_receipts("e2"), 2);
    assert_eq!(server.envelope_receipts("never-sent"), 0);
    assert!(server.envelope_receipt_counts().values().all(|&n| n == 2));

    let recorded = &server.requests()[0];
    assert_eq!(recorded.envelope_ids, ["e1", "e2", "e3", "e4", "e5", "e6"]);
    assert_eq!(recorded.event_types[1], "generation-create");
    assert_eq!(recorded.batch_metadata, Some(json!({"batch_size": 6})));
}

#[tokio::test]
async fn ingestion_reports_malformed_events_and_rejects_malformed_requests() {
    let server = TestServer::start();
    let batch = json!({"batch": [
        span_create("ok", "span-1"),
        event("bad-time", "span-create", json!({"id": "span-2", "traceId": T1, "startTime": "soon"})),
        event("orphan", "span-update", json!({"id": "span-3"})),
        json!({"type": "span-create", "timestamp": "2024-01-02T03:04:05Z", "body": {"id": "x"}}),
    ]});
    let body = json_body(ingestion(&server, &batch).send().await.expect("sent")).await;
    assert_eq!(body["successes"], json!([{"id": "ok", "status": 201}]));
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 3);
    assert_eq!(errors[0]["id"], "bad-time");
    assert_eq!(errors[0]["status"], 400);
    assert!(errors[0]["message"]
        .as_str()
        .is_some_and(|m| m.contains("startTime")));
    assert_eq!(errors[0]["error"], "Bad Request");
    assert!(errors[1]["message"]
        .as_str()
        .is_some_and(|m| m.contains("traceId")));
    assert_eq!(server.observations().len(), 1);

    // An event that failed can be retried under the same envelope id and then applies.
    let fixed =
        json!({"batch": [event("orphan", "span-update", json!({"id": "span-3", "traceId": T1}))]});
    let body = json_body(ingestion(&server, &fixed).send().await.expect("sent")).await;
    assert_eq!(body["successes"], json!([{"id": "orphan", "status": 201}]));
    assert!(server.observation("span-3").is_some());

    let not_json = request(
        &server,
        "/api/public/ingestion",
        "application/json",
        b"{".to_vec(),
    )
    .send()
    .await
    .expect("sent");
    assert_eq!(not_json.status(), 400);
    let no_batch = ingestion(&server, &json!({"events": []}))
        .send()
        .await
        .expect("sent");
    assert_eq!(no_batch.status(), 400);

    let gzipped = request(
        &server,
        "/api/public/ingestion",
        "application/json; charset=utf-8",
        gzip(
            json!({"batch": [span_create("gz", "span-gz")]})
                .to_string()
                .as_bytes(),
        ),
    )
    .header("content-encoding", "gzip")
    .send()
    .await
    .expect("sent");
    assert_eq!(gzipped.status(), 207);
    assert!(server.observation("span-gz").is_some());
}

#[tokio::test]
async fn credentials_are_checked_on_every_route() {
    let server = TestServer::start_with("pk-lf-custom", "sk-lf-custom");
    assert_eq!(server.public_key(), "pk-lf-custom");
    let batch = json!({"batch": [span_create("e1", "span-1")]});
    let url = format!("{}/api/public/ingestion", server.url());

    let wrong = client()
        .post(&url)
        .basic_auth("pk-lf-custom", Some("sk-lf-wrong"))
        .header("content-type", "application/json")
        .body(batch.to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(wrong.status(), 401);
    let body = json_body(wrong).await;
    assert!(body["message"].is_string());
    let missing = client()
        .post(&url)
        .header("content-type", "application/json")
        .body(batch.to_string())
        .send()
        .await
        .expect("sent");
    assert_eq!(missing.status(), 401);
    let projects_unauthorized = client()
        .get(format!("{}/api/public/projects", server.url()))
        .send()
        .await
        .expect("sent");
    assert_eq!(projects_unauthorized.status(), 401);
    assert!(server.observations().is_empty());
    assert_eq!(
        server.envelope_receipts("e1"),
        2,
        "rejected arrivals still count"
    );

    let projects = client()
        .get(format!("{}/api/public/projects", server.url()))
        .header("authorization", server.authorization_header())
        .send()
        .await
        .expect("sent");
    assert_eq!(projects.status(), 200);
    assert_eq!(
        json_body(projects).await,
        json!({"data": [{"id": "test-project", "name": "test"}]})
    );

    let unknown = client()
        .get(format!("{}/api/public/traces", server.url()))
        .basic_auth("pk-lf-custom", Some("sk-lf-custom"))
        .send()
        .await
        .expect("sent");
    assert_eq!(unknown.status(), 404);
    let statuses: Vec<_> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [Some(401), Some(401), Some(401), Some(200), Some(404)]
    );
}

#[tokio::test]
async fn status_faults_fail_without_applying_and_can_target_a_route() {
    let server = TestServer::start();
    server.set_faults(
        Faults::new()
            .fail_next_on(Route::Otlp, 1, 500)
            .fail_next(1, 503)
            .fail_next(1, 408)
            .fail_next(1, 400),
    );
    let batch = json!({"batch": [span_create("e1", "span-1")]});
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let response = ingestion(&server, &batch).send().await.expect("sent");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [503, 408, 400], "the OTLP-only fault is skipped");
    assert!(server.observations().is_empty());
    assert_eq!(server.envelope_receipts("e1"), 3);

    let response = otlp(&server, sample_export().encode_to_vec())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 500);
    let body = json_body(response).await;
    assert_eq!(body["error"], "Internal Server Error");
    assert!(server.observations().is_empty());
    assert!(server.traces().is_empty());
    assert!(
        server.otlp_requests().is_empty(),
        "a failed export is not kept"
    );
    assert!(server.faults().rules().is_empty());

    let response = ingestion(&server, &batch).send().await.expect("sent");
    assert_eq!(response.status(), 207);
    assert_eq!(server.observations().len(), 1);
    let statuses: Vec<_> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [Some(503), Some(408), Some(400), Some(500), Some(207)]
    );
}

#[tokio::test]
async fn rate_limit_sends_retry_after() {
    let server = TestServer::start();
    server.add_fault(Fault::rate_limited(7).times(2));
    for _ in 0..2 {
        let response = otlp(&server, sample_export().encode_to_vec())
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 429);
        assert_eq!(
            response.headers().get("retry-after").map(|v| v.as_bytes()),
            Some(&b"7"[..])
        );
    }
    assert!(server.observations().is_empty());
    let response = otlp(&server, sample_export().encode_to_vec())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert_eq!(server.observations().len(), 2);
}

#[tokio::test]
async fn body_limit_applies_to_the_compressed_size() {
    let server = TestServer::builder()
        .faults(Faults::new().max_body_bytes(300))
        .start();
    let raw = sample_export().encode_to_vec();
    assert!(
        raw.len() > 300,
        "the sample must exceed the limit uncompressed"
    );
    let too_large = otlp(&server, raw.clone()).send().await.expect("sent");
    assert_eq!(too_large.status(), 413);
    assert!(server.observations().is_empty());

    // Repetitive input compresses well below the limit.
    let repetitive = export(
        (0..20u8)
            .map(|i| Span {
                trace_id: TRACE_ID.to_vec(),
                span_id: vec![i + 1; 8],
                name: "same".into(),
                ..Default::default()
            })
            .collect(),
    )
    .encode_to_vec();
    assert!(repetitive.len() > 300);
    let compressed = gzip(&repetitive);
    assert!(
        compressed.len() <= 300,
        "compressed to {}",
        compressed.len()
    );
    let accepted = otlp(&server, compressed)
        .header("content-encoding", "gzip")
        .send()
        .await
        .expect("sent");
    assert_eq!(accepted.status(), 200);
    assert_eq!(server.observations().len(), 20);
    assert_eq!(
        server
            .requests()
            .iter()
            .map(|r| r.status)
            .collect::<Vec<_>>(),
        [Some(413), Some(200)]
    );
}

#[tokio::test]
async fn delayed_requests_still_apply() {
    let server = TestServer::start();
    server.set_faults(Faults::new().delay_next(1, Duration::from_millis(200)));
    let started = Instant::now();
    let response = otlp(&server, sample_export().encode_to_vec())
        .send()
        .await
        .expect("sent");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(response.status(), 200);
    assert_eq!(server.observations().len(), 2);

    // A client that gives up early sees a timeout; the server still records the request.
    server.add_fault(Fault::delay(Duration::from_millis(300)).on(Route::Ingestion));
    let timed_out = ingestion(&server, &json!({"batch": []}))
        .timeout(Duration::from_millis(50))
        .send()
        .await;
    assert!(timed_out.is_err_and(|e| e.is_timeout()));
    assert!(server.wait_for_requests(2, WAIT));
}

#[tokio::test]
async fn dropped_connections_give_client_errors_and_apply_nothing() {
    let server = TestServer::start();
    server.set_faults(Faults::new().drop_next(2));
    let batch = json!({"batch": [span_create("e1", "span-1")]});
    for _ in 0..2 {
        let result = ingestion(&server, &batch).send().await;
        let error = result.expect_err("the connection is closed without an answer");
        assert!(!error.is_status(), "{error}");
    }
    assert!(server.observations().is_empty());
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.status.is_none()));
    assert_eq!(requests[0].envelope_ids, ["e1"]);

    let response = ingestion(&server, &batch).send().await.expect("sent");
    assert_eq!(response.status(), 207);
    assert_eq!(server.envelope_receipts("e1"), 3);
    assert_eq!(server.observation("span-1").map(|o| o.writes), Some(1));
}

#[tokio::test]
async fn injected_event_errors_fail_only_the_selected_events() {
    let server = TestServer::start();
    server.set_faults(
        Faults::new().event_errors_next(
            1,
            EventErrors::at_positions([0])
                .or_type("score-create")
                .with_status(429)
                .with_message("slow down"),
        ),
    );
    let score = event(
        "e3",
        "score-create",
        json!({"id": "s1", "traceId": T1, "name": "n", "value": 1, "dataType": "NUMERIC"}),
    );
    let batch = json!({"batch": [span_create("e1", "span-1"), span_create("e2", "span-2"), score]});
    let body = json_body(ingestion(&server, &batch).send().await.expect("sent")).await;
    assert_eq!(body["successes"], json!([{"id": "e2", "status": 201}]));
    assert_eq!(
        body["errors"],
        json!([
            {"id": "e1", "status": 429, "message": "slow down", "error": "Too Many Requests"},
            {"id": "e3", "status": 429, "message": "slow down", "error": "Too Many Requests"},
        ])
    );
    assert!(server.observation("span-1").is_none());
    assert!(server.observation("span-2").is_some());
    assert!(server.scores().is_empty());

    // The fault is used up: resending applies the failed events, not the accepted one again.
    let body = json_body(ingestion(&server, &batch).send().await.expect("sent")).await;
    assert_eq!(body["errors"], json!([]));
    assert!(server.observation("span-1").is_some());
    assert_eq!(server.observation("span-2").map(|o| o.writes), Some(1));
    assert_eq!(server.scores().len(), 1);
}

#[test]
fn works_without_a_runtime_and_outlives_the_callers_runtime() {
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let server = first.block_on(async { TestServer::start() });
    drop(first);

    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let status = second.block_on(async {
        otlp(&server, sample_export().encode_to_vec())
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    assert_eq!(status.ok(), Some(200));
    assert!(server.url().starts_with("http://127.0.0.1:"));
    assert!(!server.url().ends_with('/'));

    let addr = server.addr();
    drop(server);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "dropping the server closes its listener"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_wakes_on_arrival_and_gives_up_at_the_deadline() {
    let server = std::sync::Arc::new(TestServer::start());
    assert!(!server.wait_for_observations(1, Duration::from_millis(50)));

    let sender = std::sync::Arc::clone(&server);
    let send = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let batch = json!({"batch": [span_create("e1", "span-1"), event(
            "e2",
            "score-create",
            json!({"id": "s1", "traceId": T1, "name": "n", "value": 1}),
        )]});
        ingestion(&sender, &batch).send().await.map(|r| r.status())
    });
    let waiter = std::sync::Arc::clone(&server);
    let waited = tokio::task::spawn_blocking(move || {
        waiter.wait_for_observations(1, WAIT)
            && waiter.wait_for_scores(1, WAIT)
            && waiter.wait_for_traces(1, WAIT)
            && waiter.wait_for_requests(1, WAIT)
    })
    .await
    .expect("waiter finished");
    assert!(waited);
    assert_eq!(
        send.await.expect("sender finished").ok(),
        Some(reqwest::StatusCode::MULTI_STATUS)
    );
}

#[tokio::test]
async fn reset_clears_data_but_keeps_faults() {
    let server = TestServer::start();
    let batch = json!({"batch": [span_create("e1", "span-1")]});
    ingestion(&server, &batch).send().await.expect("sent");
    otlp(&server, sample_export().encode_to_vec())
        .send()
        .await
        .expect("sent");
    assert_eq!(server.otlp_requests().len(), 1);
    server.set_faults(Faults::new().fail_next(1, 500).max_body_bytes(1 << 20));
    server.reset();
    assert!(server.observations().is_empty());
    assert!(server.otlp_requests().is_empty());
    assert!(server.traces().is_empty());
    assert!(server.requests().is_empty());
    assert_eq!(server.envelope_receipts("e1"), 0);
    assert_eq!(server.faults().rules().len(), 1);
    assert_eq!(server.faults().body_limit(), Some(1 << 20));

    let failed = ingestion(&server, &batch).send().await.expect("sent");
    assert_eq!(failed.status(), 500);
    // Deduplication memory was reset too, so the same envelope applies again.
    let applied = ingestion(&server, &batch).send().await.expect("sent");
    assert_eq!(applied.status(), 207);
    assert_eq!(server.observation("span-1").map(|o| o.writes), Some(1));
    server.clear_faults();
    assert_eq!(server.faults(), Faults::new());
}

#[tokio::test]
async fn without_the_model_exports_are_acknowledged_but_not_kept() {
    let server = TestServer::builder().build_model(false).start();
    let response = otlp(&server, sample_export().encode_to_vec())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    assert!(server.observations().is_empty());
    assert!(server.otlp_requests().is_empty());
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].status, Some(200));
    assert!(requests[0].span_ids.is_empty());
}
