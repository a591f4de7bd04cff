//! `POST /api/public/ingestion` (§1.1, §3, §6).

use std::time::{Duration, UNIX_EPOCH};

use langfuse_observe_testing::{ScoreConfig, TestServer};
use serde_json::{json, Value};

use crate::common::*;

fn span_create(envelope_id: &str, id: &str) -> Value {
    event(
        envelope_id,
        "span-create",
        json!({"id": id, "traceId": T1, "name": "step", "startTime": "2024-01-02T03:04:05Z"}),
    )
}

fn trace_score(id: &str) -> Value {
    json!({"id": id, "traceId": T1, "name": "accuracy", "value": 0.5})
}

/// The issues of the only error of a 207, parsed from its JSON-encoded `error` string.
fn issues(reply: &Reply) -> Vec<Value> {
    let errors = reply.json()["errors"].clone();
    let error = errors[0]["error"].as_str().expect("a JSON-encoded string");
    serde_json::from_str::<Vec<Value>>(error).expect("an array of zod issues")
}

#[tokio::test]
async fn s3_1_ingestion_rejects_gzip_body_with_plain_invalid_json_before_auth() {
    let server = v3();
    let body = gzip(batch(vec![span_create("e1", "o1")]).to_string().as_bytes());
    let request = client()
        .post(format!("{}{INGESTION}", server.url()))
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(body);
    let reply = send(request).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.body, "Invalid JSON");
    assert!(reply
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/plain")));
    assert!(server.observations().is_empty());
    // Even with valid credentials the body is garbage to the JSON parser.
    let body = gzip(batch(vec![span_create("e1", "o1")]).to_string().as_bytes());
    let reply =
        send(post(&server, INGESTION, "application/json", body).header("content-encoding", "gzip"))
            .await;
    assert_eq!((reply.status, reply.body.as_str()), (400, "Invalid JSON"));
    assert!(server.observations().is_empty());
}

#[tokio::test]
async fn s3_1_ingestion_body_over_4_5mb_gets_plain_413_before_auth() {
    let server = v4();
    let reply = send(
        client()
            .post(format!("{}{INGESTION}", server.url()))
            .header("content-type", "application/json")
            .body(vec![b' '; 4_718_593]),
    )
    .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (413, "Body exceeded 4.5mb limit")
    );
    // Exactly the limit is parsed.
    let mut body = batch(vec![score("e1", trace_score("s1"))])
        .to_string()
        .into_bytes();
    body.resize(4_718_592, b' ');
    let reply = send(post(&server, INGESTION, "application/json", body)).await;
    assert_eq!(reply.status, 207, "{}", reply.body);
    assert_eq!(server.scores().len(), 1);
}

#[tokio::test]
async fn s3_1_ingestion_other_media_types_fail_the_batch_schema_as_a_string() {
    let server = v4();
    let body = batch(vec![score("e1", trace_score("s1"))])
        .to_string()
        .into_bytes();
    let reply = send(post(&server, INGESTION, "text/plain", body)).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body,
        r#"{"message":"Invalid request data","errors":["Invalid input: expected object, received string"]}"#
    );
    assert!(server.scores().is_empty());
    // Parameters after the media type are fine.
    let body = batch(vec![score("e1", trace_score("s1"))])
        .to_string()
        .into_bytes();
    let reply = send(post(
        &server,
        INGESTION,
        "application/json; charset=utf-8",
        body,
    ))
    .await;
    assert_eq!(reply.status, 207);
    assert_eq!(server.scores().len(), 1);
}

#[tokio::test]
async fn s3_1_ingestion_empty_json_body_is_an_empty_object() {
    let server = v4();
    let reply = send(post(&server, INGESTION, "application/json", Vec::new())).await;
    assert_eq!(reply.status, 400);
    assert_eq!(
        reply.body,
        r#"{"message":"Invalid request data","errors":["Invalid input: expected array, received undefined"]}"#
    );
}

#[tokio::test]
async fn s3_2_ingestion_batch_shape_is_checked_after_auth() {
    let server = v4();
    let reply = ingest(&server, &json!({"batch": {}})).await;
    assert_eq!(
        (reply.status, reply.json()["errors"].clone()),
        (
            400,
            json!(["Invalid input: expected array, received object"])
        )
    );
    let reply = ingest(&server, &json!([1])).await;
    assert_eq!(
        reply.json()["errors"],
        json!(["Invalid input: expected object, received array"])
    );
    // Auth comes first: an unauthenticated bad shape is a 401.
    let reply = send(
        client()
            .post(format!("{}{INGESTION}", server.url()))
            .header("content-type", "application/json")
            .body("[1]"),
    )
    .await;
    assert_eq!(reply.status, 401);
}

#[tokio::test]
async fn s1_1_ingestion_auth_errors_have_error_then_message() {
    let server = v4();
    let url = format!("{}{INGESTION}", server.url());
    let body = batch(vec![]).to_string();
    let cases = [
        (None, "No authorization header"),
        (
            Some(format!("Basic {}", b64("pk-lf-test:sk-wrong"))),
            "Invalid credentials. Confirm that you've configured the correct host.",
        ),
        (
            Some(format!("Basic {}", b64("no-colon"))),
            "Invalid authorization header. Confirm that you've configured the correct host.",
        ),
        (
            Some(format!("Basic {}", b64("pk-lf-test:"))),
            "Invalid authorization header. Confirm that you've configured the correct host.",
        ),
        (Some("Token abc".to_owned()), "Invalid authorization header"),
    ];
    for (authorization, message) in cases {
        let mut request = client()
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(value) = &authorization {
            request = request.header("authorization", value);
        }
        let reply = send(request).await;
        assert_eq!(reply.status, 401, "{authorization:?}");
        let expected = format!(r#"{{"error":"UnauthorizedError","message":"{message}"}}"#);
        assert_eq!(reply.body, expected, "{authorization:?}");
    }
}

fn b64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test]
async fn s1_1_only_the_secret_key_identifies_the_project() {
    let server = v4();
    let reply = send(
        client()
            .post(format!("{}{INGESTION}", server.url()))
            .header(
                "authorization",
                format!("Basic {}", b64("pk-someone-else:sk-lf-test")),
            )
            .header("content-type", "application/json")
            .body(batch(vec![score("e1", trace_score("s1"))]).to_string()),
    )
    .await;
    assert_eq!(
        reply.status, 207,
        "a public key that does not match is only logged"
    );
    assert_eq!(server.scores().len(), 1);
}

#[tokio::test]
async fn s1_1_bearer_public_key_may_send_only_scores() {
    let server = v3();
    let reply = send(
        client()
            .post(format!("{}{INGESTION}", server.url()))
            .header("authorization", format!("Bearer {}", server.public_key()))
            .header("content-type", "application/json")
            .body(
                batch(vec![
                    span_create("e1", "o1"),
                    score("e2", trace_score("s1")),
                ])
                .to_string(),
            ),
    )
    .await;
    assert_eq!(reply.status, 207);
    assert_eq!(reply.successes(), ["e2"]);
    assert_eq!(
        reply.json()["errors"],
        json!([{"id": "e1", "status": 401, "message": "Authentication error", "error": "Access Scope Denied"}])
    );
    assert!(server.observations().is_empty());
    assert_eq!(server.scores().len(), 1);
}

#[tokio::test]
async fn s3_2_ingestion_method_not_allowed_has_error_then_message() {
    let server = v4();
    let reply = send(client().get(format!("{}{INGESTION}", server.url()))).await;
    assert_eq!(reply.status, 405);
    assert_eq!(
        reply.body,
        r#"{"error":"MethodNotAllowedError","message":"Method not allowed"}"#
    );
}

const EVENTS_ONLY_TEXT: &str = "is not accepted by /api/public/ingestion when LANGFUSE_MIGRATION_V4_WRITE_MODE is events_only. This endpoint only accepts score and log events. Upgrade the client or integration to a v4-compatible SDK or OTLP ingestion path. As a temporary migration bridge, set LANGFUSE_MIGRATION_V4_WRITE_MODE=dual on both the web and worker services and redeploy. Docs: https://langfuse.com/self-hosting/upgrade/upgrade-guides/upgrade-v3-to-v4";

#[tokio::test]
async fn s3_6_v4_ingestion_accepts_only_scores_and_logs_with_the_exact_error() {
    let server = v4();
    let reply = ingest(
        &server,
        &batch(vec![
            span_create("e1", "o1"),
            score("e2", trace_score("s1")),
            event("e3", "trace-create", json!({"id": T1})),
        ]),
    )
    .await;
    assert_eq!(reply.status, 207);
    assert_eq!(reply.successes(), ["e2"]);
    assert_eq!(
        reply.json()["errors"],
        json!([
            {"id": "e1", "status": 400, "message": "Event type not accepted",
             "error": format!("Event type \"span-create\" {EVENTS_ONLY_TEXT}")},
            {"id": "e3", "status": 400, "message": "Event type not accepted",
             "error": format!("Event type \"trace-create\" {EVENTS_ONLY_TEXT}")},
        ])
    );
    assert!(server.observations().is_empty());
    assert!(server.traces().is_empty());
    assert_eq!(
        server.scores().len(),
        1,
        "a mixed batch still processes its scores"
    );
}

#[tokio::test]
async fn s3_6_v4_refused_types_come_after_other_errors_and_unknown_types_say_unknown() {
    let server = v4();
    let reply = ingest(
        &server,
        &batch(vec![
            span_create("e1", "o1"),
            json!({"timestamp": "2024-01-02T03:04:05Z", "body": {}}),
            score("e3", json!({"id": "s", "traceId": T1, "name": "n"})),
        ]),
    )
    .await;
    let errors = reply.errors();
    assert_eq!(
        errors,
        [
            ("e3".to_owned(), 400, "Invalid request data".to_owned()),
            ("e1".to_owned(), 400, "Event type not accepted".to_owned()),
            (
                "unknown".to_owned(),
                400,
                "Event type not accepted".to_owned()
            ),
        ]
    );
    assert_eq!(
        reply.json()["errors"][2]["error"],
        json!(format!("Event type \"unknown\" {EVENTS_ONLY_TEXT}"))
    );
}

#[tokio::test]
async fn s3_5_sdk_log_is_never_listed_in_the_207() {
    for server in [v3(), v4()] {
        let reply = ingest(
            &server,
            &batch(vec![
                event("log-ok", "sdk-log", json!({"log": "hello"})),
                event("log-bad", "sdk-log", json!({})),
                score("e3", trace_score("s1")),
            ]),
        )
        .await;
        assert_eq!(reply.status, 207);
        assert_eq!(reply.successes(), ["e3"]);
        assert!(reply.errors().is_empty(), "{}", reply.body);
        assert_eq!(server.sdk_logs(), [json!({"log": "hello"})]);
    }
}

#[tokio::test]
async fn s3_4_event_without_body_id_is_answered_201_but_not_stored() {
    let server = v3();
    let reply = ingest(
        &server,
        &batch(vec![
            score("e1", json!({"traceId": T1, "name": "n", "value": 1})),
            event("e2", "trace-create", json!({"name": "no id"})),
        ]),
    )
    .await;
    assert_eq!(reply.successes(), ["e1", "e2"]);
    assert!(server.scores().is_empty());
    assert!(server.traces().is_empty());
}

#[tokio::test]
async fn s3_7_schema_errors_are_400_invalid_request_data_with_issues_as_a_string() {
    let server = v3();
    let reply = ingest(
        &server,
        &batch(vec![event(
            "e1",
            "span-create",
            json!({"id": "o", "traceId": T1, "level": "warning"}),
        )]),
    )
    .await;
    assert_eq!(reply.status, 207);
    assert_eq!(
        reply.errors(),
        [("e1".to_owned(), 400, "Invalid request data".to_owned())]
    );
    let issues = issues(&reply);
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0]["path"], json!(["body", "level"]));
    assert_eq!(issues[0]["code"], "invalid_value");
    assert!(server.observations().is_empty());
}

#[tokio::test]
async fn s3_5_levels_are_exactly_upper_case() {
    let server = v3();
    for (level, ok) in [
        ("DEBUG", true),
        ("WARNING", true),
        ("Warning", false),
        ("WARN", false),
    ] {
        let reply = ingest(
            &server,
            &batch(vec![event(
                level,
                "span-create",
                json!({"id": level, "traceId": T1, "level": level}),
            )]),
        )
        .await;
        assert_eq!(reply.errors().is_empty(), ok, "{level}: {}", reply.body);
    }
    assert_eq!(
        server.observation("WARNING").map(|o| o.level),
        Some("WARNING".to_owned())
    );
}

#[tokio::test]
async fn s3_3_datetimes_need_z_or_an_offset() {
    let server = v3();
    let reply = ingest(
        &server,
        &batch(vec![
            event_at(
                "no-zone",
                "span-create",
                "2024-01-02T03:04:05",
                json!({"id": "a", "traceId": T1}),
            ),
            event(
                "body-no-zone",
                "span-create",
                json!({"id": "b", "traceId": T1, "startTime": "2024-01-02T03:04:05.123"}),
            ),
            event(
                "offset",
                "span-create",
                json!({"id": "c", "traceId": T1, "startTime": "2024-01-02T05:04:05.123456+02:00"}),
            ),
        ]),
    )
    .await;
    let failed: Vec<String> = reply.errors().into_iter().map(|e| e.0).collect();
    assert_eq!(failed, ["no-zone", "body-no-zone"]);
    assert_eq!(reply.successes(), ["offset"]);
    let start = server.observation("c").and_then(|o| o.start_time);
    assert_eq!(
        start,
        Some(UNIX_EPOCH + Duration::from_millis(1_704_164_645_123)),
        "offset applied, cut to ms"
    );
}

#[tokio::test]
async fn s3_5_prompt_name_and_integer_version_go_together() {
    let server = TestServer::builder()
        .langfuse_v3()
        .prompt("greeting", 3)
        .start();
    let generation = |envelope: &str, id: &str, extra: Value| {
        let mut body = json!({"id": id, "traceId": T1});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            body[k] = v;
        }
        event(envelope, "generation-create", body)
    };
    let reply = ingest(
        &server,
        &batch(vec![
            generation("name-only", "g1", json!({"promptName": "greeting"})),
            generation(
                "string-version",
                "g2",
                json!({"promptName": "greeting", "promptVersion": "3"}),
            ),
            generation(
                "float-version",
                "g3",
                json!({"promptName": "greeting", "promptVersion": 3.5}),
            ),
            generation(
                "both",
                "g4",
                json!({"promptName": "greeting", "promptVersion": 3}),
            ),
        ]),
    )
    .await;
    let failed: Vec<String> = reply.errors().into_iter().map(|e| e.0).collect();
    assert_eq!(failed, ["name-only", "string-version", "float-version"]);
    let linked = server.observation("g4").expect("stored");
    assert_eq!(
        (linked.prompt_name.as_deref(), linked.prompt_version),
        (Some("greeting"), Some(3))
    );
    assert!(server.observation("g1").is_none());
}

#[tokio::test]
async fn s4_13_legacy_prompt_link_is_kept_only_when_the_prompt_exists() {
    let server = v3();
    let reply = ingest(
        &server,
        &batch(vec![event(
            "e1",
            "generation-create",
            json!({"id": "g", "traceId": T1, "promptName": "missing", "promptVersion": 1}),
        )]),
    )
    .await;
    assert_eq!(reply.successes(), ["e1"], "validated and queued");
    let stored = server.observation("g").expect("stored");
    assert_eq!(
        (stored.prompt_name, stored.prompt_version, stored.prompt_id),
        (None, None, None)
    );
}

#[tokio::test]
async fn s3_5_trace_name_is_at_most_1000_characters() {
    let server = v3();
    let reply = ingest(
        &server,
        &batch(vec![
            event(
                "long",
                "trace-create",
                json!({"id": "t1", "name": "x".repeat(1001)}),
            ),
            event(
                "limit",
                "trace-create",
                json!({"id": "t2", "name": "x".repeat(1000)}),
            ),
        ]),
    )
    .await;
    assert_eq!(
        reply.errors().into_iter().map(|e| e.0).collect::<Vec<_>>(),
        ["long"]
    );
    assert_eq!(issues(&reply)[0]["code"], "too_big");
    assert!(server.trace("t1").is_none());
    assert!(server.trace("t2").is_some());
}

#[tokio::test]
async fn s3_3_ids_are_1_to_800_characters() {
    let server = v3();
    let long = "x".repeat(801);
    let reply = ingest(
        &server,
        &batch(vec![
            event(&long, "trace-create", json!({"id": "t1"})),
            event("e2", "trace-create", json!({"id": ""})),
            event("e3", "trace-create", json!({"id": "x".repeat(800)})),
        ]),
    )
    .await;
    let failed: Vec<String> = reply.errors().into_iter().map(|e| e.0).collect();
    assert_eq!(failed, [long, "e2".to_owned()]);
    assert_eq!(server.traces().len(), 1);
}

#[tokio::test]
async fn s3_5_event_create_drops_end_time_and_unknown_keys_are_stripped() {
    let server = v3();
    ingest(
        &server,
        &batch(vec![
            event("e1", "event-create", json!({"id": "ev", "traceId": T1, "startTime": "2024-01-02T03:04:05Z", "endTime": "2024-01-02T03:04:06Z"})),
            event("e2", "span-create", json!({"id": "sp", "traceId": T1, "model": "gpt", "usageDetails": {"input": 1}, "whatever": 1})),
        ]),
    )
    .await;
    let event = server.observation("ev").expect("stored");
    assert_eq!(event.observation_type, "EVENT");
    assert_eq!(event.end_time, None);
    let span = server.observation("sp").expect("stored");
    assert_eq!(
        (span.model, span.usage_details),
        (None, None),
        "not in the span schema"
    );
}

#[tokio::test]
async fn s3_5_environment_is_normalised() {
    let server = v3();
    ingest(
        &server,
        &batch(vec![
            event(
                "e1",
                "trace-create",
                json!({"id": "t1", "environment": "Langfuse-Prod"}),
            ),
            event(
                "e2",
                "trace-create",
                json!({"id": "t2", "environment": "not valid!"}),
            ),
            event("e3", "trace-create", json!({"id": "t3"})),
        ]),
    )
    .await;
    let env = |id: &str| server.trace(id).and_then(|t| t.environment);
    assert_eq!(env("t1").as_deref(), Some("prod"));
    assert_eq!(env("t2").as_deref(), Some("default"));
    assert_eq!(env("t3").as_deref(), Some("default"));
}

#[tokio::test]
async fn s3_5_usage_integers_only_total_added_and_cost_non_negative() {
    let server = v3();
    ingest(
        &server,
        &batch(vec![event(
            "e1",
            "generation-create",
            json!({"id": "g", "traceId": T1,
                   "usageDetails": {"input": 3, "output": 2, "half": 2.5, "neg": -1, "text": "4"},
                   "costDetails": {"input": 0.5, "output": -1, "note": "x"}}),
        )]),
    )
    .await;
    let generation = server.observation("g").expect("stored");
    assert_eq!(
        generation.usage_details,
        Some(json!({"input": 3, "output": 2, "text": 4, "total": 9}))
    );
    assert_eq!(
        generation.cost_details,
        Some(json!({"input": 0.5, "total": 0.5}))
    );
}

#[tokio::test]
async fn s3_5_openai_usage_shape_subtracts_details() {
    let server = v3();
    ingest(
        &server,
        &batch(vec![event(
            "e1",
            "generation-create",
            json!({"id": "g", "traceId": T1, "usageDetails": {
                "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                "prompt_tokens_details": {"cached_tokens": 4},
                "completion_tokens_details": {"reasoning_tokens": 1}}}),
        )]),
    )
    .await;
    assert_eq!(
        server.observation("g").and_then(|g| g.usage_details),
        Some(
            json!({"input": 6, "input_cached_tokens": 4, "output": 4, "output_reasoning_tokens": 1, "total": 15})
        )
    );
}

#[tokio::test]
async fn s3_7_v3_merge_keeps_first_immutables_and_later_values() {
    let server = v3();
    ingest(
        &server,
        &batch(vec![
            event_at("e1", "trace-create", "2024-01-02T03:04:05Z", json!({"id": "t", "name": "first", "environment": "a", "release": "r1", "userId": "u"})),
            event_at("e2", "trace-create", "2024-01-02T03:04:06Z", json!({"id": "t", "name": "second", "environment": "b", "release": null})),
        ]),
    )
    .await;
    let trace = server.trace("t").expect("stored");
    assert_eq!(trace.name.as_deref(), Some("second"), "a later value wins");
    assert_eq!(
        trace.environment.as_deref(),
        Some("a"),
        "environment is immutable"
    );
    assert_eq!(
        trace.timestamp,
        Some(UNIX_EPOCH + Duration::from_secs(1_704_164_645)),
        "timestamp too"
    );
    assert_eq!(trace.release, None, "an explicit null overwrites");
    assert_eq!(
        trace.user_id.as_deref(),
        Some("u"),
        "an absent value does not"
    );
}

#[tokio::test]
async fn s3_7_v3_tags_union_sorted_and_metadata_merged_as_strings() {
    let server = v3();
    ingest(
        &server,
        &batch(vec![
            event_at(
                "e1",
                "trace-create",
                "2024-01-02T03:04:05Z",
                json!({"id": "t", "tags": ["b", "a"], "metadata": {"n": 1, "keep": "x"}}),
            ),
            event_at(
                "e2",
                "trace-create",
                "2024-01-02T03:04:06Z",
                json!({"id": "t", "tags": ["c", "a"], "metadata": {"n": {"deep": [1]}}}),
            ),
        ]),
    )
    .await;
    let trace = server.trace("t").expect("stored");
    assert_eq!(trace.tags, ["a", "b", "c"]);
    assert_eq!(
        Value::Object(trace.metadata),
        json!({"n": "{\"deep\":[1]}", "keep": "x"})
    );
}

#[tokio::test]
async fn s3_7_v3_input_and_output_are_the_last_truthy_values() {
    let server = v3();
    ingest(
        &server,
        &batch(vec![
            event_at(
                "e1",
                "span-create",
                "2024-01-02T03:04:05Z",
                json!({"id": "o", "traceId": T1, "input": {"q": 1}, "output": "first"}),
            ),
            event_at(
                "e2",
                "span-update",
                "2024-01-02T03:04:06Z",
                json!({"id": "o", "input": "", "output": null}),
            ),
        ]),
    )
    .await;
    let observation = server.observation("o").expect("stored");
    assert_eq!(observation.input, Some(json!({"q": 1})));
    assert_eq!(observation.output, Some(json!("first")));
}

#[tokio::test]
async fn s3_7_v3_trace_public_is_reset_by_a_later_event_without_it() {
    let server = v3();
    ingest(
        &server,
        &batch(vec![
            event_at(
                "e1",
                "trace-create",
                "2024-01-02T03:04:05Z",
                json!({"id": "t", "public": true}),
            ),
            event_at(
                "e2",
                "trace-create",
                "2024-01-02T03:04:06Z",
                json!({"id": "t", "name": "later"}),
            ),
        ]),
    )
    .await;
    assert_eq!(server.trace("t").and_then(|t| t.public), Some(false));
}

#[tokio::test]
async fn s3_4_updates_merge_after_creates_by_envelope_timestamp() {
    let server = v3();
    ingest(
        &server,
        &batch(vec![
            event_at(
                "u",
                "span-update",
                "2024-01-02T03:04:05Z",
                json!({"id": "o", "name": "from update"}),
            ),
            event_at(
                "c",
                "span-create",
                "2024-01-02T03:04:05Z",
                json!({"id": "o", "traceId": T1, "name": "from create"}),
            ),
        ]),
    )
    .await;
    assert_eq!(
        server.observation("o").and_then(|o| o.name).as_deref(),
        Some("from update"),
        "on a tie the create is merged first"
    );
    ingest(
        &server,
        &batch(vec![
            event_at(
                "c2",
                "span-create",
                "2024-01-02T03:04:09Z",
                json!({"id": "p", "traceId": T1, "name": "late create"}),
            ),
            event_at(
                "u2",
                "span-update",
                "2024-01-02T03:04:05Z",
                json!({"id": "p", "name": "early update"}),
            ),
        ]),
    )
    .await;
    assert_eq!(
        server.observation("p").and_then(|o| o.name).as_deref(),
        Some("late create"),
        "the merge follows envelope timestamps"
    );
}

#[tokio::test]
async fn s3_7_end_before_start_is_clamped_to_start() {
    let server = v3();
    ingest(
        &server,
        &batch(vec![event(
            "e1",
            "span-create",
            json!({"id": "o", "traceId": T1,
            "startTime": "2024-01-02T03:04:05Z", "endTime": "2024-01-02T03:04:01Z"}),
        )]),
    )
    .await;
    let observation = server.observation("o").expect("stored");
    assert_eq!(observation.end_time, observation.start_time);
}

#[tokio::test]
async fn s3_4_a_retried_envelope_id_does_not_duplicate() {
    let server = v3();
    let request = batch(vec![
        span_create("e1", "o"),
        event_at(
            "e2",
            "span-update",
            "2024-01-02T03:04:06Z",
            json!({"id": "o", "output": "done"}),
        ),
    ]);
    for _ in 0..2 {
        let reply = ingest(&server, &request).await;
        assert_eq!(
            reply.successes(),
            ["e1", "e2"],
            "a retry is acknowledged again"
        );
    }
    assert_eq!(server.observation("o").map(|o| o.writes), Some(2));
    assert_eq!(server.envelope_receipts("e1"), 2);
    // The same event under a new envelope id is a new write.
    ingest(&server, &batch(vec![span_create("e3", "o")])).await;
    assert_eq!(server.observation("o").map(|o| o.writes), Some(3));
}

#[tokio::test]
async fn s3_5_dataset_run_item_create_is_always_rejected() {
    let server = v3();
    let reply = ingest(
        &server,
        &batch(vec![event(
            "e1",
            "dataset-run-item-create",
            json!({"id": "x"}),
        )]),
    )
    .await;
    assert_eq!(
        reply.errors(),
        [("e1".to_owned(), 400, "Invalid request data".to_owned())]
    );
    assert_eq!(
        issues(&reply)[0]["message"],
        "Dataset run item creation is only allowed for internal usage"
    );
}

#[tokio::test]
async fn s3_4_v3_observation_events_alone_make_no_trace_inferred() {
    let server = v3();
    ingest(&server, &batch(vec![span_create("e1", "o")])).await;
    assert!(server.observation("o").is_some());
    assert!(server.traces().is_empty());
}

#[tokio::test]
async fn s6_1_scores_are_accepted_in_both_modes() {
    for server in [v3(), v4()] {
        let reply = ingest(&server, &batch(vec![score("e1", trace_score("s1"))])).await;
        assert_eq!(reply.successes(), ["e1"], "{:?}", server.mode());
        assert_eq!(server.scores().len(), 1);
    }
}

#[tokio::test]
async fn s6_1_exactly_one_score_target_and_observation_only_with_trace() {
    let server = v4();
    let target = "Provide exactly one of the following: traceId (with optional observationId), sessionId or datasetRunId. ObservationId requires traceId.";
    let cases = [
        json!({"id": "a", "name": "n", "value": 1}),
        json!({"id": "b", "name": "n", "value": 1, "traceId": T1, "sessionId": "s"}),
        json!({"id": "c", "name": "n", "value": 1, "sessionId": "s", "observationId": "o"}),
    ];
    for body in cases {
        let reply = ingest(&server, &batch(vec![score("e", body.clone())])).await;
        assert_eq!(reply.errors().len(), 1, "{body}");
        assert!(
            issues(&reply).iter().any(|i| i["message"] == target),
            "{body}: {}",
            reply.body
        );
    }
    let reply = ingest(
        &server,
        &batch(vec![score(
            "ok",
            json!({"id": "d", "name": "n", "value": 1, "sessionId": "s"}),
        )]),
    )
    .await;
    assert_eq!(reply.successes(), ["ok"]);
    assert_eq!(server.scores().len(), 1);
    assert_eq!(server.scores()[0].session_id.as_deref(), Some("s"));
}

#[tokio::test]
async fn s6_1_boolean_values_are_0_or_1_and_stored_as_true_false() {
    let server = v4();
    let reply = ingest(
        &server,
        &batch(vec![
            score(
                "two",
                json!({"id": "a", "traceId": T1, "name": "n", "value": 2, "dataType": "BOOLEAN"}),
            ),
            score(
                "one",
                json!({"id": "b", "traceId": T1, "name": "n", "value": 1, "dataType": "BOOLEAN"}),
            ),
            score(
                "zero",
                json!({"id": "c", "traceId": T1, "name": "n", "value": 0, "dataType": "BOOLEAN"}),
            ),
        ]),
    )
    .await;
    assert_eq!(
        reply.errors().into_iter().map(|e| e.0).collect::<Vec<_>>(),
        ["two"]
    );
    let scores = server.scores();
    assert_eq!(
        (scores[0].value.clone(), scores[0].string_value.as_deref()),
        (json!(1), Some("True"))
    );
    assert_eq!(
        (scores[1].value.clone(), scores[1].string_value.as_deref()),
        (json!(0), Some("False"))
    );
}

#[tokio::test]
async fn s6_1_value_type_must_match_data_type() {
    let server = v4();
    let reply = ingest(
        &server,
        &batch(vec![
            score("num", json!({"id": "a", "traceId": T1, "name": "n", "value": "x", "dataType": "NUMERIC"})),
            score("cat", json!({"id": "b", "traceId": T1, "name": "n", "value": 1, "dataType": "CATEGORICAL"})),
            score("text", json!({"id": "c", "traceId": T1, "name": "n", "value": "", "dataType": "TEXT"})),
            score("missing", json!({"id": "d", "traceId": T1, "name": "n"})),
            score("ok", json!({"id": "e", "traceId": T1, "name": "n", "value": "fine", "dataType": "TEXT"})),
        ]),
    )
    .await;
    let failed: Vec<String> = reply.errors().into_iter().map(|e| e.0).collect();
    assert_eq!(failed, ["num", "cat", "text", "missing"]);
    let text = &server.scores()[0];
    assert_eq!(
        (text.value.clone(), text.string_value.as_deref()),
        (json!(0), Some("fine"))
    );
}

#[tokio::test]
async fn s6_2_data_type_is_inferred_and_the_timestamp_is_the_envelope_timestamp() {
    let server = v4();
    ingest(
        &server,
        &batch(vec![
            event_at(
                "e1",
                "score-create",
                "2024-01-02T03:04:05Z",
                json!({"id": "num", "traceId": T1, "name": "n", "value": 0.5}),
            ),
            event_at(
                "e2",
                "score-create",
                "2024-01-02T03:04:05Z",
                json!({"id": "cat", "traceId": T1, "name": "n", "value": "good"}),
            ),
        ]),
    )
    .await;
    ingest(
        &server,
        &batch(vec![event_at("e3", "score-create", "2024-01-02T04:00:00Z", json!({"id": "num", "traceId": T1, "name": "renamed", "value": 0.7, "environment": "prod"}))]),
    )
    .await;
    let scores = server.scores();
    assert_eq!(scores[0].data_type.as_deref(), Some("NUMERIC"));
    assert_eq!(
        scores[0].timestamp,
        Some(UNIX_EPOCH + Duration::from_secs(1_704_164_645)),
        "immutable"
    );
    assert_eq!(
        (scores[0].name.as_str(), scores[0].value.clone()),
        ("renamed", json!(0.7)),
        "later wins"
    );
    assert_eq!(scores[0].environment, "default", "environment is immutable");
    assert_eq!(scores[1].data_type.as_deref(), Some("CATEGORICAL"));
    assert_eq!(
        (scores[1].value.clone(), scores[1].string_value.as_deref()),
        (json!(0), Some("good"))
    );
}

#[tokio::test]
async fn s6_2_a_score_with_an_unknown_config_is_dropped_silently() {
    let server = TestServer::builder()
        .score_config(ScoreConfig::new("cfg", "Helpfulness", "NUMERIC").range(Some(0.0), Some(1.0)))
        .start();
    let reply = ingest(
        &server,
        &batch(vec![
            score("unknown", json!({"id": "a", "traceId": T1, "name": "n", "value": 0.5, "configId": "nope"})),
            score("out-of-range", json!({"id": "b", "traceId": T1, "name": "n", "value": 5, "configId": "cfg"})),
            score("known", json!({"id": "c", "traceId": T1, "name": "n", "value": 0.5, "configId": "cfg"})),
            score("annotation", json!({"id": "d", "traceId": T1, "name": "n", "value": 0.5, "source": "ANNOTATION"})),
        ]),
    )
    .await;
    assert_eq!(
        reply.successes(),
        ["unknown", "out-of-range", "known", "annotation"],
        "201 only means queued"
    );
    let scores = server.scores();
    assert_eq!(scores.len(), 1);
    assert_eq!(
        scores[0].name, "Helpfulness",
        "the config's name replaces the score's"
    );
    assert_eq!(scores[0].config_id.as_deref(), Some("cfg"));
}

#[tokio::test]
async fn s3_5_deprecated_usage_is_converted_to_usage_and_cost_details() {
    let server = v3();
    ingest(
        &server,
        &batch(vec![
            event("e1", "generation-create", json!({"id": "g1", "traceId": T1, "usage": {"promptTokens": 3, "completionTokens": 2, "totalTokens": 5}})),
            event("e2", "generation-create", json!({"id": "g2", "traceId": T1, "usage": {"input": 1, "output": 1, "unit": "TOKENS", "inputCost": 0.1, "outputCost": 0.2}})),
            event("e3", "generation-create", json!({"id": "g3", "traceId": T1, "usage": {}})),
        ]),
    )
    .await;
    let stored = |id: &str| server.observation(id).expect("stored");
    assert_eq!(
        stored("g1").usage_details,
        Some(json!({"input": 3, "output": 2, "total": 5}))
    );
    assert_eq!(
        stored("g2").cost_details,
        Some(json!({"input": 0.1, "output": 0.2, "total": 0.30000000000000004}))
    );
    assert_eq!(
        stored("g3").usage_details,
        None,
        "an empty object counts as absent"
    );
}

#[tokio::test]
async fn s3_7_an_event_without_a_string_id_is_reported_as_unknown() {
    let server = v3();
    let reply = ingest(&server, &batch(vec![json!({"id": 7, "type": "span-create", "timestamp": "2024-01-02T03:04:05Z", "body": {"id": "o"}})])).await;
    assert_eq!(
        reply.errors(),
        [("unknown".to_owned(), 400, "Invalid request data".to_owned())]
    );
}
