//! What is still pending when a process exits is delivered by the function the SDK runs at
//! exit: after `main` returns, on `std::process::exit` and after a panic out of `main`. Each
//! case runs `examples/exit_without_flush.rs` as its own process, with a one-hour flush
//! interval and no flush of its own, against a loopback server the test starts.

use langfuse_observe_testing::TestServer;

use crate::support::example::{example_against, run_example_with};
use crate::support::exporter::dead_url;

fn names(server: &TestServer) -> Vec<String> {
    let mut names: Vec<String> = server
        .observations()
        .into_iter()
        .filter_map(|observation| observation.name)
        .collect();
    names.sort();
    names
}

#[test]
fn records_pending_when_main_returns_are_delivered() {
    let server = TestServer::start();
    let output = run_example_with("exit_without_flush", &server, &["return"]);
    assert!(output.status.success());
    assert_eq!(
        names(&server),
        ["handle", "handle", "handle", "step", "step", "step"]
    );
}

/// The exit also waits for the last delivery of a client whose last handle was dropped.
#[test]
fn records_of_a_dropped_client_are_delivered_at_exit() {
    let server = TestServer::start();
    let output = run_example_with("exit_without_flush", &server, &["dropped-client"]);
    assert!(output.status.success());
    assert_eq!(
        names(&server),
        ["handle", "handle", "handle", "step", "step", "step"]
    );
}

#[test]
fn records_pending_at_process_exit_are_delivered() {
    let server = TestServer::start();
    let output = run_example_with("exit_without_flush", &server, &["exit"]);
    assert_eq!(output.status.code(), Some(0));
    // The job itself never ended, so it has no record; the steps that did are delivered.
    assert_eq!(names(&server), ["step", "step"]);
}

/// An `async fn` polled when the process exits has its observation current on that thread,
/// which the exit ends, so that it arrives too, saying so.
#[test]
fn an_async_call_the_process_exits_in_arrives_unfinished_with_its_steps() {
    let server = TestServer::start();
    let output = run_example_with("exit_without_flush", &server, &["exit-async"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(names(&server), ["async_job", "step", "step"]);
    let job = server
        .observations()
        .into_iter()
        .find(|o| o.name.as_deref() == Some("async_job"))
        .expect("the job arrived");
    assert_eq!(job.level, "WARNING");
    assert_eq!(
        job.status_message.as_deref(),
        Some("unfinished: the process exited while it ran")
    );
}

#[test]
fn records_pending_when_main_panics_are_delivered() {
    let server = TestServer::start();
    let output = run_example_with("exit_without_flush", &server, &["panic"]);
    assert_eq!(output.status.code(), Some(101));
    assert_eq!(names(&server), ["handle", "step"]);
}

#[test]
fn an_outermost_call_cancelled_by_a_timeout_is_delivered_with_its_children() {
    let server = TestServer::start();
    let output = run_example_with("exit_without_flush", &server, &["cancelled"]);
    assert!(output.status.success());
    assert_eq!(names(&server), ["slow_job", "step"]);
    let job = server
        .observations()
        .into_iter()
        .find(|observation| observation.name.as_deref() == Some("slow_job"))
        .unwrap();
    assert_eq!(job.level, "WARNING");
    assert!(job
        .status_message
        .is_some_and(|message| message.contains("cancelled")));
}

#[test]
fn the_exit_delivery_can_be_turned_off() {
    let server = TestServer::start();
    let mut command = example_against("exit_without_flush", &server);
    command.arg("return").env("LANGFUSE_FLUSH_AT_EXIT", "false");
    let output = command.output().unwrap();
    assert!(output.status.success());
    assert!(
        server.observations().is_empty(),
        "nothing flushed, so nothing arrived"
    );
}

#[test]
fn what_cannot_be_delivered_at_exit_is_reported_with_a_count_and_a_reason() {
    let server = TestServer::start();
    let dead = dead_url();
    let mut command = example_against("exit_without_flush", &server);
    command
        .arg("return")
        .env("LANGFUSE_BASE_URL", &dead)
        .env("LANGFUSE_FLUSH_TIMEOUT", "2");
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|line| line.contains("not delivered at exit"))
        .unwrap_or_else(|| panic!("one line says what was lost: {stderr}"));
    assert!(line.contains("6 records"), "{line}");
    assert!(line.contains(&dead), "the reason names the server: {line}");
}

/// A program that keeps the guard from `init` (the scores example) against a dead server: the
/// guard's flush says what it could not deliver, and the exit delivery does not wait again for
/// the same records.
#[test]
fn the_guard_reports_what_it_could_not_deliver_and_exit_does_not_wait_again() {
    let server = TestServer::start();
    let dead = dead_url();
    let mut command = example_against("scores", &server);
    command
        .env("LANGFUSE_BASE_URL", &dead)
        .env("LANGFUSE_FLUSH_TIMEOUT", "2");
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        stderr.matches("not delivered by the guard's flush").count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("not delivered at exit"), "{stderr}");
}
