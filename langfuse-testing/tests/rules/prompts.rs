//! `GET /api/public/v2/prompts/{name}` (§7.1) and its faults.

use std::time::Duration;

use langfuse_observe_testing::{Fault, Faults, NewPrompt, Route, TestServer};
use serde_json::json;

use crate::common::*;

fn url(server: &TestServer, encoded_name: &str, query: &str) -> String {
    format!(
        "{}/api/public/v2/prompts/{encoded_name}{query}",
        server.url()
    )
}

async fn get(server: &TestServer, encoded_name: &str, query: &str) -> Reply {
    send(
        client()
            .get(url(server, encoded_name, query))
            .header("authorization", server.authorization_header()),
    )
    .await
}

#[tokio::test]
async fn s7_1_a_text_prompt_is_the_stored_row_with_its_computed_fields() {
    let server = TestServer::builder().project("p-1", "one").start();
    let version = server.create_prompt(
        NewPrompt::text("qa", "Answer {{question}}")
            .label("production")
            .config(json!({"temperature": 0.2}))
            .tags(["support"])
            .commit_message("first"),
    );
    assert_eq!(version, 1);
    let reply = get(&server, "qa", "").await;
    assert_eq!(reply.status, 200);
    let body = reply.json();
    assert_eq!(body["name"], "qa");
    assert_eq!(body["version"], 1);
    assert_eq!(body["type"], "text");
    assert_eq!(body["prompt"], "Answer {{question}}");
    assert_eq!(body["config"], json!({"temperature": 0.2}));
    assert_eq!(body["labels"], json!(["production", "latest"]));
    assert_eq!(body["tags"], json!(["support"]));
    assert_eq!(body["commitMessage"], "first");
    assert_eq!(body["isActive"], true);
    assert_eq!(body["projectId"], "p-1");
    assert_eq!(body["resolutionGraph"], serde_json::Value::Null);
    for field in ["id", "createdAt", "updatedAt", "createdBy"] {
        assert!(body[field].is_string(), "{field} in {body}");
    }
}

#[tokio::test]
async fn s7_1_a_chat_prompt_keeps_messages_and_placeholders() {
    let server = TestServer::start();
    let messages = json!([
        {"role": "system", "content": "You help {{user}}."},
        {"type": "placeholder", "name": "history"},
    ]);
    server.create_prompt(NewPrompt::chat("chat", messages.clone()).label("production"));
    let body = get(&server, "chat", "").await.json();
    assert_eq!(
        (body["type"].clone(), body["prompt"].clone()),
        (json!("chat"), messages)
    );
}

#[tokio::test]
async fn s7_1_without_label_or_version_production_is_served_and_latest_is_the_newest() {
    let server = TestServer::start();
    server.create_prompt(NewPrompt::text("qa", "one").label("production"));
    server.create_prompt(NewPrompt::text("qa", "two"));
    assert_eq!(get(&server, "qa", "").await.json()["prompt"], "one");
    assert_eq!(
        get(&server, "qa", "?label=latest").await.json()["prompt"],
        "two"
    );
    assert_eq!(
        get(&server, "qa", "?version=2").await.json()["prompt"],
        "two"
    );
    // Moving the label changes what the default serves.
    assert!(server.label_prompt("qa", 2, ["production"]));
    let body = get(&server, "qa", "").await.json();
    assert_eq!(
        (body["version"].clone(), body["isActive"].clone()),
        (json!(2), json!(true))
    );
    assert_eq!(
        get(&server, "qa", "?version=1").await.json()["labels"],
        json!([])
    );
}

#[tokio::test]
async fn s7_1_the_name_is_percent_decoded_including_slashes() {
    let server = TestServer::start();
    server.create_prompt(NewPrompt::text("team/qa prompt", "in a folder").label("production"));
    let reply = get(&server, "team%2Fqa%20prompt", "").await;
    assert_eq!(
        (reply.status, reply.json()["prompt"].clone()),
        (200, json!("in a folder"))
    );
    // An encoded name is one segment; a raw `/` is another route, which does not exist.
    assert_eq!(get(&server, "team/qa%20prompt", "").await.status, 404);
    let label = get(&server, "team%2Fqa%20prompt", "?label=production").await;
    assert_eq!(label.status, 200);
}

#[tokio::test]
async fn s7_1_not_found_names_the_prompt_and_the_label_or_version() {
    let server = TestServer::start();
    let reply = get(&server, "a%2Fb", "").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            404,
            r#"{"message":"Prompt not found: 'a/b' with label 'production'","error":"LangfuseNotFoundError"}"#
        )
    );
    let reply = get(&server, "a", "?version=3").await;
    assert_eq!(
        reply.json()["message"],
        "Prompt not found: 'a' with version 3"
    );
    let reply = get(&server, "a", "?label=staging").await;
    assert_eq!(
        reply.json()["message"],
        "Prompt not found: 'a' with label 'staging'"
    );
}

#[tokio::test]
async fn s7_1_both_version_and_label_is_a_400() {
    let server = TestServer::start();
    server.create_prompt(NewPrompt::text("qa", "x").label("production"));
    let reply = get(&server, "qa", "?version=1&label=production").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            400,
            r#"{"message":"Cannot specify both version and label","error":"InvalidRequestError"}"#
        )
    );
    let reply = get(&server, "qa", "?version=one").await;
    assert_eq!(
        (reply.status, reply.json()["message"].clone()),
        (400, json!("Invalid request data"))
    );
}

#[tokio::test]
async fn s7_1_basic_auth_only_a_bearer_key_gets_403() {
    let server = TestServer::start();
    server.create_prompt(NewPrompt::text("qa", "x").label("production"));
    let reply = send(
        client()
            .get(url(&server, "qa", ""))
            .header("authorization", format!("Bearer {}", server.public_key())),
    )
    .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            403,
            r#"{"message":"Access denied - need to use basic auth with secret key to GET prompts","error":"ForbiddenError"}"#
        )
    );
    let reply = send(client().get(url(&server, "qa", ""))).await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (401, r#"{"message":"No authorization header"}"#)
    );
    let reply = send(client().post(url(&server, "qa", ""))).await;
    assert_eq!(reply.status, 405);
}

#[tokio::test]
async fn s4_13_created_prompts_are_linked_on_the_legacy_path() {
    // A v3 server links a generation only to a prompt version the project has; one created
    // through the test API counts, as one registered on the builder does.
    let server = TestServer::builder().langfuse_v3().start();
    server.create_prompt(NewPrompt::text("qa", "x"));
    let batch = json!({"batch": [{
        "id": "e1", "timestamp": "2024-01-01T00:00:00Z", "type": "generation-create",
        "body": {"id": "g1", "traceId": "t1", "promptName": "qa", "promptVersion": 1,
                 "startTime": "2024-01-01T00:00:00Z"}
    }, {
        "id": "e2", "timestamp": "2024-01-01T00:00:00Z", "type": "generation-create",
        "body": {"id": "g2", "traceId": "t1", "promptName": "qa", "promptVersion": 2,
                 "startTime": "2024-01-01T00:00:00Z"}
    }]});
    let reply = send(
        client()
            .post(format!("{}/api/public/ingestion", server.url()))
            .header("authorization", server.authorization_header())
            .header("content-type", "application/json")
            .body(batch.to_string()),
    )
    .await;
    assert_eq!(reply.status, 207);
    let linked = server.observation("g1").expect("stored");
    assert_eq!(
        (linked.prompt_name.as_deref(), linked.prompt_version),
        (Some("qa"), Some(1))
    );
    let unknown = server.observation("g2").expect("stored");
    assert_eq!(unknown.prompt_name, None);
}

#[tokio::test]
async fn s10_5_faults_on_the_prompt_route_have_the_route_shapes() {
    let server = TestServer::start();
    server.create_prompt(NewPrompt::text("qa", "x").label("production"));
    server.set_faults(
        Faults::new()
            .fail_next_on(Route::Prompts, 1, 404)
            .fail_next_on(Route::Prompts, 1, 401)
            .fail_next_on(Route::Prompts, 1, 500)
            .with(Fault::rate_limited(2).on(Route::Prompts)),
    );
    let reply = get(&server, "qa", "?label=staging").await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            404,
            r#"{"message":"Prompt not found: 'qa' with label 'staging'","error":"LangfuseNotFoundError"}"#
        )
    );
    let reply = get(&server, "qa", "").await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.json()["message"],
        "Invalid credentials. Confirm that you've configured the correct host."
    );
    let reply = get(&server, "qa", "").await;
    assert_eq!(
        (reply.status, reply.json()["message"].clone()),
        (500, json!("Internal Server Error"))
    );
    let reply = get(&server, "qa", "").await;
    assert_eq!(
        (reply.status, reply.header("retry-after")),
        (429, Some("2"))
    );
    assert_eq!(get(&server, "qa", "").await.status, 200);
    // Unrouted faults are for the data routes; they never hit a prompt fetch.
    server.set_faults(Faults::new().fail_next(1, 500));
    assert_eq!(get(&server, "qa", "").await.status, 200);
}

#[tokio::test]
async fn fault_a_hanging_prompt_route_answers_late() {
    let server = TestServer::start();
    server.create_prompt(NewPrompt::text("qa", "x").label("production"));
    server.add_fault(Fault::delay(Duration::from_secs(30)).on(Route::Prompts));
    let quick = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .expect("a client");
    let result = quick
        .get(url(&server, "qa", ""))
        .header("authorization", server.authorization_header())
        .send()
        .await;
    assert!(result.is_err_and(|error| error.is_timeout()));
    // The delay was used up by that request: the next one is answered at once.
    assert!(server.faults().rules().is_empty());
    assert_eq!(get(&server, "qa", "").await.status, 200);
}
