//! Projects, health, unknown paths and methods (§9, §1.2), and the server's lifecycle.

use std::sync::Arc;
use std::time::Duration;

use langfuse_observe_testing::{ServerMode, TestServer};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn s9_1_projects_lists_the_keys_project() {
    let server = TestServer::builder().project("p-1", "Project One").start();
    let url = format!("{}/api/public/projects", server.url());
    let reply = send(
        client()
            .get(&url)
            .header("authorization", server.authorization_header()),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.body,
        r#"{"data":[{"id":"p-1","name":"Project One","organization":{"id":"test-organization","name":"test organization"},"metadata":{}}]}"#
    );
    let reply = send(
        client()
            .get(&url)
            .header("authorization", format!("Bearer {}", server.public_key())),
    )
    .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            403,
            r#"{"message":"Invalid API key. Are you using an organization key?"}"#
        )
    );
    let reply = send(client().get(&url)).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (401, r#"{"message":"No authorization header"}"#)
    );
    let reply = send(client().post(&url)).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            405,
            r#"{"message":"Method not allowed","error":"MethodNotAllowedError"}"#
        )
    );
}

#[tokio::test]
async fn s9_3_health_needs_no_auth_and_reports_the_version() {
    for (server, version) in [(v4(), "4.16.0"), (v3(), ServerMode::LangfuseV3.version())] {
        let reply = send(client().get(format!("{}/api/public/health", server.url()))).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json(), json!({"status": "OK", "version": version}));
    }
    assert!(ServerMode::LangfuseV3.version().starts_with("3."));
}

#[tokio::test]
async fn s1_2_unknown_paths_are_404_and_recorded() {
    let server = v4();
    let reply = send(
        client()
            .get(format!("{}/api/public/traces", server.url()))
            .header("authorization", server.authorization_header()),
    )
    .await;
    assert_eq!(reply.status, 404);
    let recorded = server.requests();
    assert_eq!((recorded.len(), recorded[0].status), (1, Some(404)));
}

#[tokio::test]
async fn s0_the_default_mode_is_v4_and_reset_keeps_the_mode() {
    assert_eq!(v4().mode(), ServerMode::LangfuseV4);
    let server = v3();
    assert_eq!(server.mode(), ServerMode::LangfuseV3);
    ingest(
        &server,
        &batch(vec![event("e1", "trace-create", json!({"id": "t"}))]),
    )
    .await;
    server.reset();
    assert!(server.traces().is_empty() && server.requests().is_empty());
    assert_eq!(server.mode(), ServerMode::LangfuseV3);
    let reply = ingest(
        &server,
        &batch(vec![event("e1", "trace-create", json!({"id": "t"}))]),
    )
    .await;
    assert_eq!(reply.successes(), ["e1"]);
    assert_eq!(server.envelope_receipts("e1"), 1, "receipts were reset too");
}

#[test]
fn the_server_works_without_a_runtime_and_outlives_the_callers_runtime() {
    let first = tokio::runtime::Runtime::new().expect("runtime");
    let server = first.block_on(async { TestServer::start() });
    drop(first);
    let second = tokio::runtime::Runtime::new().expect("runtime");
    let status = second.block_on(async {
        otlp_proto(&server, &export(vec![span(ROOT, None, "r", 1, vec![])]))
            .await
            .status
    });
    assert_eq!(status, 200);
    let addr = server.addr();
    drop(server);
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "dropping the server closes its listener"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_wakes_on_arrival_and_gives_up_at_the_deadline() {
    let server = Arc::new(v4());
    assert!(!server.wait_for_scores(1, Duration::from_millis(50)));
    let sender = Arc::clone(&server);
    let sent = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        otlp_proto(&sender, &export(vec![span(ROOT, None, "r", 1, vec![])])).await;
        ingest(
            &sender,
            &batch(vec![score(
                "e1",
                json!({"id": "s", "traceId": T1, "name": "n", "value": 1}),
            )]),
        )
        .await
    });
    let waiter = Arc::clone(&server);
    let waited = tokio::task::spawn_blocking(move || {
        waiter.wait_for_observations(1, WAIT)
            && waiter.wait_for_traces(1, WAIT)
            && waiter.wait_for_scores(1, WAIT)
            && waiter.wait_for_requests(2, WAIT)
    })
    .await
    .expect("waiter finished");
    assert!(waited);
    assert_eq!(sent.await.expect("sender finished").status, 207);
}

#[tokio::test]
async fn without_the_model_exports_are_acknowledged_but_not_kept() {
    let server = TestServer::builder().build_model(false).start();
    let reply = otlp_proto(&server, &export(vec![span(ROOT, None, "r", 1, vec![])])).await;
    assert_eq!(reply.status, 200);
    assert!(server.observations().is_empty() && server.otlp_requests().is_empty());
    let recorded = server.requests();
    assert_eq!((recorded.len(), recorded[0].status), (1, Some(200)));
    assert!(recorded[0].span_ids.is_empty());
    let reply = ingest(
        &server,
        &batch(vec![score(
            "e1",
            json!({"id": "s", "traceId": T1, "name": "n", "value": 1}),
        )]),
    )
    .await;
    assert_eq!(reply.successes(), ["e1"]);
    assert_eq!(server.scores().len(), 1, "ingestion is applied either way");
}
