//! A program that records observations under roots with `flush = false`, flushes explicitly
//! with `flush_blocking` and then ends with `std::process::exit(0)` (no destructors run)
//! delivers every observation recorded before the flush. And a program whose outermost observed
//! function returns a stream or an iterator, consumed to its end right before `main` returns,
//! delivers the generation and what nested under it: the generation's end flushes.

use langfuse_observe_testing::TestServer;
use serde_json::json;

use crate::support::example::run_example;
use crate::support::observed::{assert_child_of, named};

#[test]
fn explicit_flush_before_process_exit_delivers_everything() {
    let server = TestServer::start();
    let output = run_example("exit_after_explicit_flush", &server);
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("processed 6 items"), "{stdout}");
    assert!(stdout.contains("flush completed: true"), "{stdout}");

    // The process has exited: nothing more will come.
    let observations = server.observations();
    assert_eq!(
        observations.len(),
        9,
        "3 roots and 6 children: {observations:#?}"
    );
    let roots: Vec<_> = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("process_batch"))
        .collect();
    assert_eq!(roots.len(), 3);
    for root in &roots {
        assert_eq!(root.parent_observation_id, None);
        assert_eq!(root.observation_type, "CHAIN");
        let batch = root.input.as_ref().unwrap()["batch"].as_u64().unwrap();
        assert_eq!(root.output, Some(json!(batch)));
        let children: Vec<_> = observations
            .iter()
            .filter(|o| o.parent_observation_id.as_deref() == Some(root.id.as_str()))
            .collect();
        assert_eq!(children.len() as u64, batch, "children of batch {batch}");
        for child in children {
            assert_eq!(child.name.as_deref(), Some("handle_item"));
            assert_eq!(child.observation_type, "TOOL");
            assert_child_of(child, root);
        }
    }
    assert!(observations.iter().all(|o| o.end_time.is_some()));
}

/// Checks what `exit_after_stream` or `exit_after_iterator` delivered: the outermost
/// generation `complete`, ended, with the joined tokens as output and a completion start time
/// within its span, and the retriever call made while the consumer pulled the first token
/// nested under it.
fn assert_streamed_generation_delivered(example: &str, answer: &str) {
    let server = TestServer::start();
    let output = run_example(example, &server);
    assert!(output.status.success());
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), answer);

    // The process has exited: nothing more will come.
    let observations = server.observations();
    assert_eq!(
        observations.len(),
        2,
        "the generation and its child: {observations:#?}"
    );
    let generation = named(&observations, "complete");
    assert_eq!(generation.parent_observation_id, None);
    assert_eq!(generation.observation_type, "GENERATION");
    assert_eq!(generation.level, "DEFAULT");
    assert_eq!(generation.input, Some(json!({"prompt": "Say hello"})));
    assert_eq!(generation.output, Some(json!(answer)));
    let start = generation.start_time.expect("generation start time");
    let end = generation
        .end_time
        .expect("the stream's end ends the generation");
    let first_token = generation
        .completion_start_time
        .expect("the first token's time as completion start time");
    assert!(
        start <= first_token && first_token <= end,
        "completion start {first_token:?} outside {start:?}..{end:?}"
    );

    let lookup = named(&observations, "lookup_context");
    assert_child_of(lookup, generation);
    assert_eq!(lookup.observation_type, "RETRIEVER");
    assert_eq!(lookup.level, "DEFAULT");
    assert_eq!(lookup.input, Some(json!({"query": "Say hello"})));
    assert_eq!(lookup.output, Some(json!("context for Say hello")));
    assert!(lookup.end_time.is_some());
}

#[test]
fn async_program_consuming_an_observed_stream_delivers_everything() {
    assert_streamed_generation_delivered("exit_after_stream", "Hello, stream!");
}

#[test]
fn sync_program_consuming_an_observed_iterator_delivers_everything() {
    assert_streamed_generation_delivered("exit_after_iterator", "Hello, iterator!");
}
