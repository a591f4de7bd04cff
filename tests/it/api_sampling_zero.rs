//! A sample rate of 0 keeps nothing: no observation, trace, event or score of any trace
//! reaches the server, and instrumented code runs and returns as usual.

use langfuse_observe::{
    context::{traceparent, TraceContext},
    observe,
    trace::{
        create_event, current_trace_id, observation, score_current_observation,
        score_current_trace, update_current_generation, update_current_observation,
        update_current_trace, GenerationUpdate, ObservationUpdate, TraceUpdate,
    },
    Config,
};

use crate::support::observed::Harness;
use crate::support::WAIT;

fn start() -> Harness {
    Harness::start_from(|server| {
        Config::builder()
            .keys(server.public_key(), server.secret_key())
            .base_url(server.url())
            .sample_rate(0.0)
    })
}

#[observe(as_type = "generation")]
fn dropped_generation(prompt: &str) -> String {
    update_current_generation(GenerationUpdate::new().model("m").usage("input", 1));
    update_current_observation(ObservationUpdate::new().metadata("k", 1));
    format!("echo: {prompt}")
}

#[observe]
fn dropped_root(n: u32) -> (u32, String) {
    let echo = dropped_generation("hi");
    update_current_trace(TraceUpdate::new().session_id("s").user_id("u"));
    create_event("dropped-event", ObservationUpdate::new());
    observation("dropped-scope").run(|| ());
    (n + 1, echo)
}

#[observe]
async fn dropped_async(n: u32) -> u32 {
    tokio::task::yield_now().await;
    n * 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sample_rate_of_zero_sends_no_observation_and_changes_no_result() {
    let test = start();
    let server = &test.server;
    for n in 0..50 {
        assert_eq!(dropped_root(n), (n + 1, "echo: hi".to_owned()));
        assert_eq!(dropped_async(n).await, n * 2);
    }
    TraceContext::from_seed("continued-at-rate-zero").run(|| dropped_root(0));
    let client = test.client.clone();
    let flush = tokio::task::spawn_blocking(move || client.flush_blocking(WAIT))
        .await
        .unwrap();
    assert!(flush.completed);
    assert!(
        server.observations().is_empty(),
        "{:#?}",
        server.observations()
    );
    // Scores are another test's concern; apart from them nothing was sent.
    let scored: Vec<Option<String>> = server.scores().into_iter().map(|s| s.trace_id).collect();
    let traces: Vec<_> = server
        .traces()
        .into_iter()
        .filter(|t| !scored.contains(&Some(t.id.clone())))
        .collect();
    assert!(traces.is_empty(), "{traces:#?}");
    for request in server.requests() {
        assert!(
            request.path == "/api/public/projects"
                || request.event_types.iter().all(|t| t == "score-create"),
            "nothing but the project lookup (and scores) was sent: {request:#?}"
        );
    }
}

#[observe]
fn scores_in_a_dropped_trace() -> String {
    // Still inside an observation: the calls work, the trace just is not kept.
    assert!(current_trace_id().is_some());
    score_current_trace("dropped-trace-score", 1.0);
    score_current_observation("dropped-observation-score", "label");
    traceparent().unwrap()
}

/// Scores of a sampled-out trace would point at a trace Langfuse never receives; the other
/// SDKs sample scores by their trace id with the same sampler.
#[test]
fn a_sample_rate_of_zero_sends_no_score_of_a_dropped_trace() {
    let test = start();
    let server = &test.server;
    let header = scores_in_a_dropped_trace();
    assert!(
        header.ends_with("-00"),
        "the header says not sampled: {header}"
    );
    assert!(langfuse_observe::flush_blocking(WAIT).completed);
    assert!(
        server.scores().is_empty(),
        "scores of sampled-out traces were sent: {:#?}",
        server.scores()
    );
}
