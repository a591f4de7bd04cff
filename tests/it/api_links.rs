//! Ids and links from inside observed code, checked on the loopback server: the current trace
//! and observation ids are those the server shows; `trace_url` is `{base}/trace/{id}` until the
//! project id has been looked up in the background (the server answers that lookup late here)
//! and `{base}/project/{project}/traces/{id}` from then on.

use std::time::{Duration, Instant};

use langfuse_observe::{
    observe,
    trace::{current_observation_id, current_trace_id, current_trace_url, trace_url, TraceId},
    Config,
};
use langfuse_observe_testing::{Fault, Route};

use crate::support::observed::{assert_child_of, named, trace_observations, Harness};
use crate::support::WAIT;

/// How late the server answers the project lookup: long enough that the first check below
/// runs before the answer, well inside the exporter's 5 s request timeout.
const LOOKUP_DELAY: Duration = Duration::from_secs(3);

fn start() -> Harness {
    Harness::start_from(|server| {
        server.add_fault(Fault::delay(LOOKUP_DELAY).on(Route::Projects));
        Config::builder()
            .keys(server.public_key(), server.secret_key())
            .base_url(server.url())
    })
}

#[derive(Debug)]
struct Seen {
    trace: TraceId,
    observation: String,
    url: String,
}

#[observe]
fn linked_child() -> Seen {
    Seen {
        trace: current_trace_id().unwrap(),
        observation: current_observation_id().unwrap().to_string(),
        url: current_trace_url().unwrap(),
    }
}

#[observe]
fn linked_root() -> (Seen, Seen) {
    let child = linked_child();
    let root = Seen {
        trace: current_trace_id().unwrap(),
        observation: current_observation_id().unwrap().to_string(),
        url: current_trace_url().unwrap(),
    };
    (root, child)
}

#[test]
fn trace_url_has_the_short_form_until_the_project_is_known_then_the_project_form() {
    let test = start();
    let server = &test.server;
    let base = server.url();
    let trace = TraceId::random();
    // The lookup started with the exporter, and the server holds its answer back.
    assert_eq!(trace_url(trace), format!("{base}/trace/{trace}"));

    let deadline = Instant::now() + WAIT;
    let long = format!("{base}/project/test-project/traces/{trace}");
    while trace_url(trace) != long && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(trace_url(trace), long);
    let lookups: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/public/projects")
        .collect();
    assert_eq!(lookups.len(), 1, "looked up once: {lookups:#?}");
    assert_eq!(lookups[0].method, "GET");
    assert_eq!(lookups[0].status, Some(200));

    // Inside observed code, the current trace's link has the project form too.
    let (root, _) = linked_root();
    assert_eq!(
        root.url,
        format!("{base}/project/test-project/traces/{}", root.trace)
    );
}

#[test]
fn current_ids_inside_observed_functions_are_the_ids_the_server_shows() {
    let test = start();
    let server = &test.server;
    let (root, child) = linked_root();
    assert_eq!(root.trace, child.trace);
    assert_ne!(root.observation, child.observation);
    let trace = root.trace.to_string();
    assert_eq!(trace.len(), 32);
    assert_eq!(root.observation.len(), 16);
    let observations = trace_observations(server, &trace);
    assert_eq!(observations.len(), 2, "{observations:#?}");
    let root_seen = named(&observations, "linked_root");
    let child_seen = named(&observations, "linked_child");
    assert_eq!(root_seen.id, root.observation);
    assert_eq!(child_seen.id, child.observation);
    assert_child_of(child_seen, root_seen);
    // Both links name the same trace, in whichever form applied when they were made.
    for seen in [&root, &child] {
        assert!(
            seen.url == trace_url(root.trace)
                || seen.url == format!("{}/trace/{trace}", server.url()),
            "{seen:?}"
        );
        assert!(seen.url.ends_with(&trace), "{seen:?}");
    }
}
