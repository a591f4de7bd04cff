//! `trace_url` without a project id: when the background lookup of the project fails, links
//! keep the form `{base}/trace/{id}`, which Langfuse redirects, and nothing else is affected.

use std::time::Duration;

use langfuse_observe::{
    observe,
    trace::{current_trace_url, trace_url, TraceId},
    Config,
};
use langfuse_observe_testing::{Fault, Route};

use crate::support::observed::{current_trace, trace_observations, Harness};
use crate::support::WAIT;

fn start() -> Harness {
    Harness::start_from(|server| {
        server.add_fault(Fault::status(500).on(Route::Projects).always());
        Config::builder()
            .keys(server.public_key(), server.secret_key())
            .base_url(server.url())
    })
}

#[observe]
fn linked() -> (String, String) {
    (current_trace(), current_trace_url().unwrap())
}

#[test]
fn without_a_project_id_trace_urls_keep_the_short_form() {
    let test = start();
    let server = &test.server;
    assert!(
        server.wait_until(WAIT, |s| s
            .requests()
            .iter()
            .any(|r| r.path == "/api/public/projects" && r.status == Some(500))),
        "the exporter looks the project up once it starts"
    );
    // Give the client time to read the failed answer; the form must not change.
    std::thread::sleep(Duration::from_millis(200));
    let base = server.url();
    let trace = TraceId::random();
    assert_eq!(trace_url(trace), format!("{base}/trace/{trace}"));

    let (id, url) = linked();
    assert_eq!(url, format!("{base}/trace/{id}"));
    // The failed lookup does not hold up the data.
    assert_eq!(trace_observations(server, &id).len(), 1);
}
