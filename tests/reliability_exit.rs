//! A program that records observations under roots with `flush = false`, flushes explicitly
//! with `flush_blocking` and then ends with `std::process::exit(0)` (no destructors run)
//! delivers every observation recorded before the flush.
#![allow(clippy::unwrap_used)]

mod example_support;

use example_support::{assert_child_of, run_example};
use langfuse_observe_core::testing::TestServer;
use serde_json::json;

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
