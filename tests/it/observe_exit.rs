//! A short program that never calls `flush` and holds no guard still delivers everything it
//! recorded: the outermost observed function flushes when it ends. Proved with separate
//! processes — the `exit_after_*` examples — run against the loopback server, with a flush
//! interval so long that nothing but that final flush can deliver before the process exits.

use langfuse_observe_testing::{StoredObservation, TestServer};
use serde_json::json;

use crate::support::example::run_example;
use crate::support::observed::{assert_child_of, named};

/// Everything the server received; the process has exited, so nothing more will come.
fn received(server: &TestServer) -> Vec<StoredObservation> {
    server.observations()
}

#[test]
fn async_program_delivers_everything_when_main_returns_at_once() {
    let server = TestServer::start();
    let output = run_example("exit_after_async", &server);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("The answer is 42"));

    let observations = received(&server);
    assert_eq!(observations.len(), 3, "{observations:#?}");
    let root = named(&observations, "answer_question");
    let retrieve = named(&observations, "retrieve");
    let generate = named(&observations, "generate");
    assert_eq!(root.parent_observation_id, None);
    assert_child_of(retrieve, root);
    assert_child_of(generate, root);
    assert_eq!(root.observation_type, "CHAIN");
    assert_eq!(retrieve.observation_type, "RETRIEVER");
    assert_eq!(generate.observation_type, "GENERATION");
    assert_eq!(root.input, Some(json!({"question": "What is 6 x 7?"})));
    assert_eq!(
        retrieve.output,
        Some(json!(["a document about What is 6 x 7?"]))
    );
    assert_eq!(
        root.output,
        Some(json!("What is 6 x 7? The answer is 42 (from 1 documents)."))
    );
    assert!(observations.iter().all(|o| o.level == "DEFAULT"));
    assert!(observations.iter().all(|o| o.end_time.is_some()));
}

#[test]
fn sync_program_delivers_everything_when_main_returns_at_once() {
    let server = TestServer::start();
    let output = run_example("exit_after_sync", &server);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "3 lines, 6 words"
    );

    let observations = received(&server);
    assert_eq!(observations.len(), 5, "{observations:#?}");
    let root = named(&observations, "summarize");
    assert_eq!(root.parent_observation_id, None);
    assert_eq!(root.output, Some(json!("3 lines, 6 words")));
    let counts: Vec<_> = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("count_words"))
        .collect();
    assert_eq!(counts.len(), 3);
    for count in counts {
        assert_child_of(count, root);
        assert_eq!(count.observation_type, "TOOL");
        assert_eq!(count.output, Some(json!(2)));
    }
    let report = named(&observations, "format_report");
    assert_child_of(report, root);
    assert_eq!(report.input, Some(json!({"lines": 3, "words": 6})));
}

#[test]
fn program_that_panics_in_an_observed_function_delivers_the_error() {
    let server = TestServer::start();
    let output = run_example("exit_after_panic", &server);
    assert!(!output.status.success(), "the panic ends the process");
    assert_eq!(output.status.code(), Some(101), "Rust's panic exit status");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("item 0 cannot be processed"), "{stderr}");
    assert!(!String::from_utf8_lossy(&output.stdout).contains("never printed"));

    let observations = received(&server);
    // The batch and the three items up to the failing one.
    assert_eq!(observations.len(), 4, "{observations:#?}");
    let root = named(&observations, "process_batch");
    assert_eq!(root.parent_observation_id, None);
    assert_eq!(root.input, Some(json!({"items": [3, 1, 0, 2]})));
    assert_eq!(root.level, "ERROR");
    let message = root.status_message.as_deref().unwrap();
    assert!(message.contains("item 0 cannot be processed"), "{message}");
    assert_eq!(root.output, None);

    let items: Vec<_> = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("process_item"))
        .collect();
    assert_eq!(items.len(), 3);
    for item in items {
        assert_child_of(item, root);
        if item.input == Some(json!({"item": 0})) {
            assert_eq!(item.level, "ERROR");
            let message = item.status_message.as_deref().unwrap();
            assert!(message.contains("item 0 cannot be processed"), "{message}");
            assert_eq!(item.output, None);
        } else {
            assert_eq!(item.level, "DEFAULT");
            assert!(item.output.is_some());
        }
    }
}

#[test]
fn async_program_that_panics_in_an_observed_function_delivers_the_error() {
    let server = TestServer::start();
    let output = run_example("exit_after_async_panic", &server);
    assert_eq!(
        output.status.code(),
        Some(101),
        "the panic ends the process"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("backend unreachable"), "{stderr}");

    let observations = received(&server);
    assert_eq!(observations.len(), 3, "{observations:#?}");
    let root = named(&observations, "handle_request");
    let check = named(&observations, "check");
    let backend = named(&observations, "call_backend");
    assert_eq!(root.parent_observation_id, None);
    assert_child_of(check, root);
    assert_child_of(backend, root);
    assert_eq!(check.level, "DEFAULT");
    assert_eq!(check.output, Some(json!("status")));
    for failed in [root, backend] {
        assert_eq!(failed.level, "ERROR", "{:?}", failed.name);
        let message = failed.status_message.as_deref().unwrap();
        assert!(
            message.contains("backend unreachable while running \"status\""),
            "{message}"
        );
    }
}
