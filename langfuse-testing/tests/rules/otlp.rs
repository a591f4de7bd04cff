//! `POST /api/public/otel/v1/traces` (§2, §4.2).

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use flate2::write::DeflateEncoder;
use flate2::Compression;
use prost::Message;
use serde_json::json;

use crate::common::*;

fn one_root() -> langfuse_observe_testing::opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest{
    export(vec![span(ROOT, None, "root", 1_700_000_000_000, vec![])])
}

fn json_span(trace_id: serde_json::Value, span_id: serde_json::Value) -> serde_json::Value {
    json!({"traceId": trace_id, "spanId": span_id, "name": "j",
           "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000100000000"})
}

fn json_export(spans: Vec<serde_json::Value>) -> serde_json::Value {
    json!({"resourceSpans": [{"scopeSpans": [{"scope": {"name": "langfuse-sdk-rust"}, "spans": spans}]}]})
}

#[tokio::test]
async fn s2_1_otlp_requires_basic_auth_with_message_only_bodies() {
    let server = v4();
    let body = one_root().encode_to_vec();
    let url = format!("{}{OTLP}", server.url());
    let reply = send(
        client()
            .post(&url)
            .header("content-type", "application/x-protobuf")
            .body(body.clone()),
    )
    .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (401, r#"{"message":"No authorization header"}"#)
    );
    let reply = send(
        client()
            .post(&url)
            .header("authorization", format!("Bearer {}", server.public_key()))
            .header("content-type", "application/x-protobuf")
            .body(body),
    )
    .await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.body,
        r#"{"message":"Access denied - insufficient permissions for this endpoint"}"#
    );
    assert!(server.observations().is_empty());
}

#[tokio::test]
async fn s2_1_otlp_method_not_allowed_has_message_then_error() {
    let server = v4();
    let reply = send(client().get(format!("{}{OTLP}", server.url()))).await;
    assert_eq!(reply.status, 405);
    assert_eq!(
        reply.body,
        r#"{"message":"Method not allowed","error":"MethodNotAllowedError"}"#
    );
}

#[tokio::test]
async fn s2_1_otlp_gunzips_when_content_encoding_contains_gzip() {
    let server = v4();
    for encoding in ["gzip", "x-gzip"] {
        let body = gzip(&one_root().encode_to_vec());
        let reply = send(
            post(&server, OTLP, "application/x-protobuf", body)
                .header("content-encoding", encoding),
        )
        .await;
        assert_eq!(reply.status, 200, "{encoding}: {}", reply.body);
    }
    assert_eq!(
        server.otlp_requests(),
        [one_root(), one_root()],
        "decompressed"
    );
    let reply = send(
        post(&server, OTLP, "application/x-protobuf", vec![1, 2, 3])
            .header("content-encoding", "gzip"),
    )
    .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (400, r#"{"error":"Failed to decompress request body"}"#)
    );
}

#[tokio::test]
async fn s2_1_otlp_other_encodings_are_not_undone_and_fail_to_parse() {
    let server = v4();
    let deflate = |bytes: &[u8]| {
        let mut encoder = DeflateEncoder::new(Vec::new(), Compression::fast());
        encoder.write_all(bytes).expect("writing to a Vec");
        encoder.finish().expect("finishing a Vec")
    };
    let reply = send(
        post(
            &server,
            OTLP,
            "application/x-protobuf",
            deflate(&one_root().encode_to_vec()),
        )
        .header("content-encoding", "deflate"),
    )
    .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (400, r#"{"error":"Failed to parse OTel Protobuf Trace"}"#)
    );
    let reply = send(
        post(
            &server,
            OTLP,
            "application/json",
            deflate(json_export(vec![]).to_string().as_bytes()),
        )
        .header("content-encoding", "deflate"),
    )
    .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (400, r#"{"error":"Failed to parse OTel JSON Trace"}"#)
    );
    assert!(server.observations().is_empty());
}

#[tokio::test]
async fn s2_1_otlp_content_type_must_contain_protobuf_or_json() {
    let server = v4();
    for content_type in ["text/plain", "application/octet-stream", ""] {
        let reply = send(post(
            &server,
            OTLP,
            content_type,
            one_root().encode_to_vec(),
        ))
        .await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (400, r#"{"error":"Invalid content type"}"#),
            "{content_type:?}"
        );
    }
    let reply = send(post(
        &server,
        OTLP,
        "Application/X-Protobuf; charset=binary",
        one_root().encode_to_vec(),
    ))
    .await;
    assert_eq!(reply.status, 200, "lower-cased and contained");
    let body = json_export(vec![json_span(json!(hex(&TRACE)), json!(hex(&CHILD)))])
        .to_string()
        .into_bytes();
    let reply = send(post(&server, OTLP, "application/json; charset=utf-8", body)).await;
    assert_eq!(reply.status, 200);
    assert_eq!(server.observations().len(), 2);
}

#[tokio::test]
async fn s2_1_otlp_empty_export_is_200_empty_object_even_with_a_bad_version() {
    let server = v4();
    let empty = langfuse_observe_testing::opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::default();
    let reply = send(
        post(
            &server,
            OTLP,
            "application/x-protobuf",
            empty.encode_to_vec(),
        )
        .header("x-langfuse-ingestion-version", "9"),
    )
    .await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "{}"));
    // snake_case JSON has no `resourceSpans`, so it is "empty" too and silently stores nothing.
    let snake = json!({"resource_spans": [{"scope_spans": [{"spans": [json_span(json!(hex(&TRACE)), json!(hex(&ROOT)))]}]}]});
    let reply = otlp_json(&server, &snake).await;
    assert_eq!((reply.status, reply.body.as_str()), (200, "{}"));
    assert!(server.observations().is_empty());
}

#[tokio::test]
async fn s2_2_otlp_structural_errors_reject_the_whole_batch() {
    let server = v4();
    let good = json_span(json!(hex(&TRACE)), json!(hex(&ROOT)));
    let mut no_trace = json_span(json!(null), json!(hex(&CHILD)));
    no_trace.as_object_mut().expect("object").remove("traceId");
    let reply = otlp_json(&server, &json_export(vec![good.clone(), no_trace])).await;
    assert_eq!(reply.status, 400);
    let error = reply.json()["error"]
        .as_str()
        .expect("error text")
        .to_owned();
    assert!(error.starts_with("Invalid OTLP trace export: "), "{error}");
    assert!(error.contains("traceId:absent"), "{error}");
    assert!(error.contains("No spans were ingested"), "{error}");
    assert!(
        server.observations().is_empty(),
        "the valid span is rejected with the batch"
    );

    let mut object_attributes = good.clone();
    object_attributes["attributes"] = json!({"k": {"stringValue": "v"}});
    let reply = otlp_json(&server, &json_export(vec![object_attributes])).await;
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"]
        .as_str()
        .is_some_and(|e| e.contains("attributes:not_an_array")));
    assert!(server.observations().is_empty());
}

#[tokio::test]
async fn s2_2_otlp_ids_may_be_strings_byte_arrays_or_buffers_but_not_numbers() {
    let server = v4();
    let spans = vec![
        json_span(json!("AB"), json!("not-hex")),
        json_span(json!([1, 2]), json!({"type": "Buffer", "data": [255]})),
    ];
    let reply = otlp_json(&server, &json_export(spans)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let first = server
        .observation("not-hex")
        .expect("a JSON id is used exactly as sent");
    assert_eq!(first.trace_id, "AB", "no case change (§4.2)");
    assert_eq!(
        server.observation("ff").map(|o| o.trace_id),
        Some("0102".to_owned())
    );
    let reply = otlp_json(
        &server,
        &json_export(vec![json_span(json!(12), json!(hex(&ROOT)))]),
    )
    .await;
    assert_eq!(reply.status, 400);
    assert!(reply.json()["error"]
        .as_str()
        .is_some_and(|e| e.contains("traceId:invalid_type")));
}

#[tokio::test]
async fn s2_1_ingestion_version_header_uses_parse_int_and_at_most_4() {
    let server = v4();
    for (value, ok) in [
        ("4", true),
        ("4.0", true),
        ("4abc", true),
        ("3", true),
        ("0", true),
        ("", true),
        ("5", false),
        ("abc", false),
    ] {
        let reply = send(
            post(
                &server,
                OTLP,
                "application/x-protobuf",
                one_root().encode_to_vec(),
            )
            .header("x-langfuse-ingestion-version", value),
        )
        .await;
        if ok {
            assert_eq!(reply.status, 200, "{value:?}: {}", reply.body);
        } else {
            assert_eq!(reply.status, 400, "{value:?}");
            assert_eq!(
                reply.json(),
                json!({"error": format!("Unsupported x-langfuse-ingestion-version: \"{value}\". Maximum supported: \"4\".")})
            );
        }
    }
    assert_eq!(server.observation(&hex(&ROOT)).map(|o| o.writes), Some(6));
}

#[tokio::test]
async fn s2_1_otlp_success_is_a_json_object_never_a_protobuf_body() {
    let server = v4();
    let reply = otlp_proto(&server, &one_root()).await;
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json")));
    let body = reply.json();
    assert!(
        body.is_object() && body.as_object().is_some_and(|o| !o.is_empty()),
        "{body}"
    );
    assert!(body.get("partialSuccess").is_none());
}

#[tokio::test]
async fn s2_1_decoded_exports_are_kept_and_rejected_ones_are_not() {
    let server = v4();
    otlp_proto(&server, &one_root()).await;
    send(post(
        &server,
        OTLP,
        "application/x-protobuf",
        vec![0xff, 0xff],
    ))
    .await;
    assert_eq!(server.otlp_requests(), [one_root()]);
    let recorded = server.requests();
    assert_eq!(recorded.len(), 2);
    assert_eq!(recorded[0].span_ids, [hex(&ROOT)]);
    assert_eq!(recorded[1].status, Some(400));
    assert_eq!(
        recorded[1].response_body,
        r#"{"error":"Failed to parse OTel Protobuf Trace"}"#
    );
}

#[tokio::test]
async fn s4_2_protobuf_ids_are_lower_hex_of_any_length() {
    let server = v4();
    let mut odd = span(ROOT, None, "odd", 1_700_000_000_000, vec![]);
    odd.trace_id = vec![0xAB, 0xCD, 0x01];
    odd.span_id = vec![0x0F; 3];
    otlp_proto(&server, &export(vec![odd])).await;
    let stored = server.observation("0f0f0f").expect("three-byte id");
    assert_eq!(stored.trace_id, "abcd01");
}

#[tokio::test]
async fn s4_2_times_are_cut_to_milliseconds_and_a_missing_end_is_the_start() {
    let server = v4();
    let mut precise = span(ROOT, None, "precise", 0, vec![]);
    precise.start_time_unix_nano = 1_700_000_000_123_456_789;
    precise.end_time_unix_nano = 0;
    otlp_proto(&server, &export(vec![precise])).await;
    let stored = server.observation(&hex(&ROOT)).expect("stored");
    let start = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    assert_eq!(stored.start_time, Some(start));
    assert_eq!(stored.end_time, Some(start));
}
