//! Simulated failures (§10.5, §1.4) and the transport faults SDK tests need.

use std::time::{Duration, Instant};

use langfuse_observe_testing::{EventErrors, Fault, Faults, Route, TestServer};
use prost::Message;
use serde_json::json;

use crate::common::*;

fn one_root() -> langfuse_observe_testing::opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest{
    export(vec![span(ROOT, None, "root", 1_700_000_000_000, vec![])])
}

fn a_score() -> serde_json::Value {
    batch(vec![score(
        "e1",
        json!({"id": "s1", "traceId": T1, "name": "n", "value": 1}),
    )])
}

#[tokio::test]
async fn s10_5_rate_limit_has_retry_after_x_ratelimit_headers_and_body() {
    let server = v4();
    server.add_fault(Fault::rate_limited(7).times(2));
    for _ in 0..2 {
        let reply = otlp_proto(&server, &one_root()).await;
        assert_eq!(reply.status, 429);
        assert_eq!(reply.header("retry-after"), Some("7"));
        assert_eq!(reply.header("x-ratelimit-limit"), Some("1000"));
        assert_eq!(reply.header("x-ratelimit-remaining"), Some("0"));
        assert!(reply.header("x-ratelimit-reset").is_some());
        let body = reply.json();
        assert_eq!(
            (body["message"].clone(), body["code"].clone()),
            (json!("Rate limit exceeded"), json!("rate_limited"))
        );
        assert_eq!(body["details"]["retryAfterSeconds"], 7);
        assert_eq!(
            (
                body["details"]["limit"].clone(),
                body["details"]["remaining"].clone()
            ),
            (json!(1000), json!(0))
        );
        assert!(body["details"]["resetAt"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')));
    }
    assert!(server.observations().is_empty());
    assert_eq!(otlp_proto(&server, &one_root()).await.status, 200);
    assert_eq!(server.observations().len(), 1);
}

#[tokio::test]
async fn s10_5_500_has_the_route_specific_body() {
    let server = v4();
    server.set_faults(
        Faults::new()
            .fail_next_on(Route::Otlp, 1, 500)
            .fail_next_on(Route::Ingestion, 1, 500),
    );
    let reply = otlp_proto(&server, &one_root()).await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json()["message"], "Internal Server Error");
    assert!(reply.json()["error"].is_string());
    let reply = ingest(&server, &a_score()).await;
    assert_eq!(reply.status, 500);
    assert_eq!(reply.json()["message"], "Invalid request data");
    assert!(reply.json()["errors"]
        .as_array()
        .is_some_and(|e| e.len() == 1));
    assert!(
        server.observations().is_empty()
            && server.scores().is_empty()
            && server.otlp_requests().is_empty()
    );
    assert_eq!(
        server.envelope_receipts("e1"),
        1,
        "a faulted request is still recorded"
    );
}

#[tokio::test]
async fn s10_5_401_and_403_have_the_auth_texts_in_the_route_shape() {
    let server = v4();
    server.set_faults(
        Faults::new()
            .fail_next(1, 401)
            .fail_next(1, 401)
            .fail_next(1, 403)
            .fail_next(1, 403),
    );
    let reply = otlp_proto(&server, &one_root()).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            401,
            r#"{"message":"Invalid credentials. Confirm that you've configured the correct host."}"#
        )
    );
    let reply = ingest(&server, &a_score()).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            401,
            r#"{"error":"UnauthorizedError","message":"Invalid credentials. Confirm that you've configured the correct host."}"#
        )
    );
    let reply = otlp_proto(&server, &one_root()).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            403,
            r#"{"message":"Ingestion suspended: Usage threshold exceeded. Please upgrade your plan.","error":"ForbiddenError"}"#
        )
    );
    let reply = ingest(&server, &a_score()).await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.json()["message"],
        "Ingestion suspended: Usage threshold exceeded. Please upgrade your plan."
    );
}

#[tokio::test]
async fn fault_html_sign_in_page_with_a_2xx_status() {
    let server = v4();
    server.add_fault(Fault::html_sign_in_page(200));
    let reply = otlp_proto(&server, &one_root()).await;
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/html")));
    assert!(reply.body.contains("Sign in"), "{}", reply.body);
    assert!(server.observations().is_empty(), "nothing was accepted");
}

#[tokio::test]
async fn fault_echo_headers_repeats_the_authorization_header() {
    let server = v4();
    server.add_fault(Fault::echo_headers(400));
    let reply = otlp_proto(&server, &one_root()).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.body.contains(&server.authorization_header()),
        "{}",
        reply.body
    );
    assert!(server.observations().is_empty(), "nothing was accepted");
}

#[tokio::test]
async fn fault_redirects_carry_a_location() {
    let server = v4();
    for status in [301, 302, 303, 307, 308] {
        server.add_fault(Fault::redirect(status, "/moved/api/public/otel/v1/traces"));
        let reply = otlp_proto(&server, &one_root()).await;
        assert_eq!(reply.status, status);
        assert_eq!(
            reply.header("location"),
            Some("/moved/api/public/otel/v1/traces")
        );
    }
    assert!(server.observations().is_empty());
    // A client that follows the redirect to a path this server has lands on a 404.
    server.add_fault(Fault::redirect(307, format!("{}/elsewhere", server.url())));
    let following = reqwest::Client::new();
    let response = following
        .post(format!("{}{OTLP}", server.url()))
        .header("authorization", server.authorization_header())
        .header("content-type", "application/x-protobuf")
        .body(one_root().encode_to_vec())
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 404);
    assert_eq!(
        server.requests().last().map(|r| r.path.clone()).as_deref(),
        Some("/elsewhere")
    );
}

#[test]
#[should_panic(expected = "not a redirect status")]
fn fault_redirect_needs_a_redirect_status() {
    let _ = Fault::redirect(200, "/x");
}

#[tokio::test]
async fn fault_huge_body_has_exactly_the_requested_size() {
    let server = v4();
    server.add_fault(Fault::huge_body(500, 1 << 20));
    let reply = otlp_proto(&server, &one_root()).await;
    assert_eq!((reply.status, reply.body.len()), (500, 1 << 20));
    let recorded = server.requests();
    assert_eq!(
        recorded[0].response_body.len(),
        64 * 1024,
        "the record keeps 64 KiB"
    );
}

#[tokio::test]
async fn fault_not_found_answers_404_on_every_route() {
    let server = v4();
    server.add_fault(Fault::not_found().always());
    assert_eq!(otlp_proto(&server, &one_root()).await.status, 404);
    assert_eq!(ingest(&server, &a_score()).await.status, 404);
    let projects = send(
        client()
            .get(format!("{}/api/public/projects", server.url()))
            .header("authorization", server.authorization_header()),
    )
    .await;
    assert_eq!(projects.status, 404);
    let health = send(client().get(format!("{}/api/public/health", server.url()))).await;
    assert_eq!(health.status, 404);
    assert!(server.observations().is_empty() && server.scores().is_empty());
    server.clear_faults();
    assert_eq!(otlp_proto(&server, &one_root()).await.status, 200);
}

#[tokio::test]
async fn fault_status_can_target_a_route_and_wears_out() {
    let server = v4();
    server.set_faults(
        Faults::new()
            .fail_next_on(Route::Otlp, 1, 503)
            .fail_next(2, 502),
    );
    assert_eq!(ingest(&server, &a_score()).await.status, 502);
    assert_eq!(otlp_proto(&server, &one_root()).await.status, 503);
    assert_eq!(otlp_proto(&server, &one_root()).await.status, 502);
    assert!(server.faults().rules().is_empty());
    assert_eq!(ingest(&server, &a_score()).await.status, 207);
    let statuses: Vec<_> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(502), Some(503), Some(502), Some(207)]);
    assert_eq!(server.scores().len(), 1);
}

#[tokio::test]
async fn fault_body_limit_answers_413_and_compares_the_size_as_sent() {
    let server = TestServer::builder()
        .faults(Faults::new().max_body_bytes(300))
        .start();
    let big = export(
        (0..20u8)
            .map(|i| span([i + 1; 8], None, "same", 1, vec![]))
            .collect(),
    );
    let raw = big.encode_to_vec();
    assert!(raw.len() > 300);
    let reply = send(post(&server, OTLP, "application/x-protobuf", raw.clone())).await;
    assert_eq!(reply.status, 413);
    let compressed = gzip(&raw);
    assert!(compressed.len() <= 300, "{}", compressed.len());
    let reply = send(
        post(&server, OTLP, "application/x-protobuf", compressed)
            .header("content-encoding", "gzip"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(server.observations().len(), 20);
    let mut large = a_score();
    large["metadata"] = json!("x".repeat(400));
    let reply = ingest(&server, &large).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (413, "Body exceeded 4.5mb limit")
    );
}

#[tokio::test]
async fn fault_delay_still_applies_and_drop_connection_applies_nothing() {
    let server = v4();
    server.set_faults(
        Faults::new()
            .delay_next(1, Duration::from_millis(200))
            .drop_next(1),
    );
    let started = Instant::now();
    let result = post(
        &server,
        OTLP,
        "application/x-protobuf",
        one_root().encode_to_vec(),
    )
    .send()
    .await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert!(
        result.is_err_and(|e| !e.is_status()),
        "dropped without an answer"
    );
    assert_eq!(server.requests()[0].status, None);
    assert_eq!(server.requests()[0].span_ids, [hex(&ROOT)]);
    assert!(server.observations().is_empty());
    server.add_fault(Fault::delay(Duration::from_millis(100)));
    assert_eq!(otlp_proto(&server, &one_root()).await.status, 200);
    assert_eq!(server.observations().len(), 1);
}

#[tokio::test]
async fn fault_event_errors_fail_only_the_selected_events() {
    let server = v4();
    server.set_faults(
        Faults::new().event_errors_next(
            1,
            EventErrors::at_positions([0])
                .with_status(503)
                .with_message("slow down"),
        ),
    );
    let request = batch(vec![
        score(
            "e1",
            json!({"id": "s1", "traceId": T1, "name": "n", "value": 1}),
        ),
        score(
            "e2",
            json!({"id": "s2", "traceId": T1, "name": "n", "value": 1}),
        ),
    ]);
    let reply = ingest(&server, &request).await;
    assert_eq!(reply.successes(), ["e2"]);
    assert_eq!(
        reply.json()["errors"],
        json!([{"id": "e1", "status": 503, "message": "slow down", "error": "Service Unavailable"}])
    );
    assert_eq!(server.scores().len(), 1);
    let reply = ingest(&server, &request).await;
    assert_eq!(reply.successes(), ["e1", "e2"]);
    assert_eq!(server.scores().len(), 2);
}

#[tokio::test]
async fn faults_spare_the_project_lookup_and_health_unless_aimed_at_them() {
    let server = v4();
    server.set_faults(
        Faults::new()
            .fail_next(1, 500)
            .fail_next_on(Route::Projects, 1, 503),
    );
    let projects = format!("{}/api/public/projects", server.url());
    let reply = send(
        client()
            .get(&projects)
            .header("authorization", server.authorization_header()),
    )
    .await;
    assert_eq!(reply.status, 503);
    let reply = send(
        client()
            .get(&projects)
            .header("authorization", server.authorization_header()),
    )
    .await;
    assert_eq!(
        reply.status, 200,
        "the unrouted fault waits for a data route"
    );
    assert_eq!(
        send(client().get(format!("{}/api/public/health", server.url())))
            .await
            .status,
        200
    );
    assert_eq!(otlp_proto(&server, &one_root()).await.status, 500);
}
