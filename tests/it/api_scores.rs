//! Scores, checked on the loopback server: of the current trace or observation, or of any trace
//! or observation by id; numeric, categorical and boolean values each arrive with their
//! `dataType`; comment, own id and config id; and they travel as `score-create` events to
//! `/api/public/ingestion` although observations go over OTLP.

use std::time::Duration;

use langfuse_observe::{
    config::ConfigBuilder,
    context::TraceContext,
    observe,
    trace::{
        score, score_current_observation, score_current_trace, ObservationId, Score, ScoreValue,
        TraceId,
    },
};
use langfuse_observe_testing::{ScoreConfig, TestServer, TestServerBuilder};
use serde_json::json;

use crate::support::exporter::{INGESTION_PATH, OTLP_PATH};
use crate::support::observed::{
    current_observation, current_trace, named, wait_for_trace, Harness,
};
use crate::support::WAIT;

/// A server whose project has the score configuration the builder test uses (a score with an
/// unknown `configId` is dropped by Langfuse without a word), and a client for it.
fn start() -> Harness {
    Harness::start_in(project(), config)
}

fn project() -> TestServerBuilder {
    TestServer::builder().score_config(
        ScoreConfig::new("config-helpfulness", "helpfulness", "NUMERIC")
            .range(Some(0.0), Some(5.0)),
    )
}

fn config(server: &TestServer) -> ConfigBuilder {
    langfuse_observe::Config::builder()
        .keys(server.public_key(), server.secret_key())
        .base_url(server.url())
}

/// Waits until the trace has at least `n` scores, then returns them all.
fn scores_of(
    server: &TestServer,
    trace: &str,
    n: usize,
) -> Vec<langfuse_observe_testing::StoredScore> {
    let of_trace = |s: &TestServer| {
        s.scores()
            .into_iter()
            .filter(|score| score.trace_id.as_deref() == Some(trace))
            .collect::<Vec<_>>()
    };
    let arrived = server.wait_until(WAIT, |s| of_trace(s).len() >= n);
    let scores = of_trace(server);
    assert!(arrived, "expected {n} scores of {trace}, got {scores:#?}");
    scores
}

fn score_named<'a>(
    scores: &'a [langfuse_observe_testing::StoredScore],
    name: &str,
) -> &'a langfuse_observe_testing::StoredScore {
    let mut found = scores.iter().filter(|s| s.name == name);
    let first = found
        .next()
        .unwrap_or_else(|| panic!("no score named {name:?} in {scores:#?}"));
    assert!(found.next().is_none(), "two scores named {name:?}");
    first
}

// ---------------------------------------------------------------------------------------------
// the current trace and observation

#[observe]
fn judged_step() -> String {
    assert!(score_current_observation("relevance", 0.75));
    assert!(score_current_observation("step-verdict", "on-topic"));
    assert!(score_current_observation("step-ok", false));
    current_observation()
}

#[observe]
fn judged_root() -> (String, String, String) {
    assert!(score_current_trace("accuracy", 0.9));
    assert!(score_current_trace("category", "good"));
    assert!(score_current_trace("passed", true));
    let step = judged_step();
    (current_trace(), current_observation(), step)
}

#[test]
fn scores_of_the_current_trace_and_observation_arrive_with_their_data_type() {
    let test = start();
    let server = &test.server;
    let (trace, root, step) = judged_root();
    let scores = scores_of(server, &trace, 6);
    assert_eq!(scores.len(), 6, "{scores:#?}");

    // As Langfuse stores them: a label in `string_value` (the value is the category's number,
    // 0 without a configuration), a boolean as 1 or 0 with "True" or "False".
    let expected = [
        ("accuracy", None, json!(0.9), None, "NUMERIC"),
        ("category", None, json!(0), Some("good"), "CATEGORICAL"),
        ("passed", None, json!(1), Some("True"), "BOOLEAN"),
        ("relevance", Some(&step), json!(0.75), None, "NUMERIC"),
        (
            "step-verdict",
            Some(&step),
            json!(0),
            Some("on-topic"),
            "CATEGORICAL",
        ),
        ("step-ok", Some(&step), json!(0), Some("False"), "BOOLEAN"),
    ];
    for (name, observation, value, label, data_type) in expected {
        let score = score_named(&scores, name);
        assert_eq!(score.observation_id.as_ref(), observation, "{name}");
        assert_eq!(score.value, value, "{name}");
        assert_eq!(score.string_value.as_deref(), label, "{name}");
        assert_eq!(score.data_type.as_deref(), Some(data_type), "{name}");
        assert_eq!(score.comment, None, "{name}");
    }
    assert_ne!(root, step);
    // The scores point at observations that exist on the server.
    let observations = wait_for_trace(server, &trace, 2);
    assert_eq!(named(&observations, "judged_step").id, step);
    assert_eq!(named(&observations, "judged_root").id, root);
}

#[test]
fn scores_go_to_batch_ingestion_while_observations_go_over_otlp() {
    let test = start();
    let server = &test.server;
    let (trace, _, _) = judged_root();
    scores_of(server, &trace, 6);
    let requests = server.requests();
    let ingestion: Vec<_> = requests
        .iter()
        .filter(|r| r.path == INGESTION_PATH)
        .collect();
    assert!(!ingestion.is_empty(), "no ingestion request: {requests:#?}");
    for request in &ingestion {
        assert_eq!(request.method, "POST");
        assert_eq!(request.status, Some(207));
        assert!(
            request.event_types.iter().all(|t| t == "score-create"),
            "only scores travel by batch ingestion in OTLP mode: {:?}",
            request.event_types
        );
    }
    assert!(
        requests
            .iter()
            .any(|r| r.path == OTLP_PATH && r.status == Some(200)),
        "observations travel over OTLP"
    );
}

#[observe]
fn builder_scores() -> (String, String) {
    let trace_score = Score::for_current_trace("helpfulness", 4.0)
        .unwrap()
        .comment("clear and short")
        .id("score-helpfulness-fixed-id")
        .config_id("config-helpfulness");
    assert!(score(trace_score));
    let observation_score = Score::for_current_observation("tone", "friendly")
        .unwrap()
        .comment("no sarcasm");
    assert!(score(observation_score));
    (current_trace(), current_observation())
}

#[test]
fn the_score_builder_sets_comment_id_and_config_id() {
    let test = start();
    let server = &test.server;
    let (trace, observation) = builder_scores();
    let scores = scores_of(server, &trace, 2);
    let helpfulness = score_named(&scores, "helpfulness");
    assert_eq!(helpfulness.id, "score-helpfulness-fixed-id");
    assert_eq!(helpfulness.comment.as_deref(), Some("clear and short"));
    assert_eq!(helpfulness.observation_id, None);
    assert_eq!(helpfulness.value, json!(4.0));
    assert_eq!(helpfulness.data_type.as_deref(), Some("NUMERIC"));
    assert_eq!(helpfulness.config_id.as_deref(), Some("config-helpfulness"));
    let tone = score_named(&scores, "tone");
    assert_eq!(tone.observation_id.as_deref(), Some(observation.as_str()));
    assert_eq!(tone.comment.as_deref(), Some("no sarcasm"));
    assert_eq!(tone.data_type.as_deref(), Some("CATEGORICAL"));
    assert_eq!(tone.config_id, None);
    assert_ne!(tone.id, helpfulness.id, "scores get fresh ids by default");
}

// ---------------------------------------------------------------------------------------------
// any trace or observation, by id

#[observe]
fn to_be_scored_later() -> (String, String) {
    (current_trace(), current_observation())
}

#[test]
fn any_trace_or_observation_can_be_scored_by_id_after_it_ended() {
    let test = start();
    let server = &test.server;
    let (trace, observation) = to_be_scored_later();
    let trace_id = TraceId::parse(&trace).unwrap();
    let observation_id = ObservationId::parse(&observation).unwrap();
    // Outside any observation: a score by id needs none.
    assert!(score(
        Score::new(trace_id, "user-feedback", ScoreValue::Boolean(true)).comment("thumbs up")
    ));
    assert!(score(
        Score::new(trace_id, "latency-bucket", "fast".into()).observation(observation_id)
    ));
    assert!(score(Score::new(
        trace_id,
        "quality",
        ScoreValue::Numeric(-1.5)
    )));
    let scores = scores_of(server, &trace, 3);
    let feedback = score_named(&scores, "user-feedback");
    assert_eq!(feedback.value, json!(1));
    assert_eq!(feedback.data_type.as_deref(), Some("BOOLEAN"));
    assert_eq!(feedback.comment.as_deref(), Some("thumbs up"));
    assert_eq!(feedback.observation_id, None);
    let bucket = score_named(&scores, "latency-bucket");
    assert_eq!(bucket.observation_id.as_deref(), Some(observation.as_str()));
    assert_eq!(bucket.string_value.as_deref(), Some("fast"));
    assert_eq!(bucket.data_type.as_deref(), Some("CATEGORICAL"));
    let quality = score_named(&scores, "quality");
    assert_eq!(quality.value, json!(-1.5));
    assert_eq!(quality.data_type.as_deref(), Some("NUMERIC"));
}

#[test]
fn a_trace_that_never_reached_this_process_can_be_scored() {
    let test = start();
    let server = &test.server;
    let foreign = TraceId::from_seed("score-a-foreign-trace");
    assert!(score(
        Score::new(foreign, "external-eval", ScoreValue::Numeric(0.1))
            .observation(ObservationId::from_seed("foreign-step"))
    ));
    let scores = scores_of(server, &foreign.to_string(), 1);
    let eval = score_named(&scores, "external-eval");
    assert_eq!(
        eval.observation_id.as_deref(),
        Some(
            ObservationId::from_seed("foreign-step")
                .to_string()
                .as_str()
        )
    );
}

#[test]
fn scores_with_the_same_id_update_each_other() {
    let test = start();
    let server = &test.server;
    let trace = TraceId::random();
    for value in [0.1, 0.2, 0.3] {
        assert!(score(
            Score::new(trace, "evolving", ScoreValue::Numeric(value)).id("evolving-score-id")
        ));
        // One batch per score, so the server sees them as three separate writes.
        assert!(langfuse_observe::flush_blocking(WAIT).completed);
        // Writes of one id are ordered by their timestamp, in whole milliseconds: a loopback
        // round trip can take less, and two writes in one millisecond come in either order.
        std::thread::sleep(Duration::from_millis(2));
    }
    let scores = scores_of(server, &trace.to_string(), 1);
    assert_eq!(scores.len(), 1, "{scores:#?}");
    assert_eq!(scores[0].id, "evolving-score-id");
    assert_eq!(scores[0].value, json!(0.3));
}

// ---------------------------------------------------------------------------------------------
// continued traces

#[observe]
fn continued_scorer() -> String {
    assert!(score_current_trace("continued-trace-score", 1.0));
    assert!(score_current_observation("continued-step-score", 2.0));
    current_observation()
}

#[test]
fn scores_inside_a_continued_trace_go_to_that_trace() {
    let test = start();
    let server = &test.server;
    let remote = TraceContext::from_seed("scores-in-a-continued-trace")
        .with_parent(&ObservationId::from_seed("remote-parent").to_string())
        .unwrap();
    let step = remote.run(continued_scorer);
    let trace = remote.trace_id().to_string();
    let scores = scores_of(server, &trace, 2);
    assert_eq!(
        score_named(&scores, "continued-trace-score").observation_id,
        None
    );
    assert_eq!(
        score_named(&scores, "continued-step-score")
            .observation_id
            .as_deref(),
        Some(step.as_str())
    );
}

/// A score directly under a trace context, before any observation of this process started
/// under it, goes to the client in effect, like the trace's observations would.
#[test]
fn under_a_continued_trace_without_parent_only_the_trace_can_be_scored() {
    let test = Harness::start_in(project(), config);
    let server = &test.server;
    let remote = TraceContext::from_seed("scores-without-a-parent");
    let trace = remote.trace_id().to_string();
    let (on_trace, on_observation, builder) = remote.run(|| {
        (
            score_current_trace("parentless-trace-score", 0.5),
            score_current_observation("parentless-observation-score", 0.5),
            Score::for_current_observation("parentless-builder", 0.5),
        )
    });
    assert!(on_trace);
    assert!(!on_observation, "there is no current observation to score");
    assert!(builder.is_none());
    let scores = scores_of(server, &trace, 1);
    assert!(langfuse_observe::flush_blocking(WAIT).completed);
    let scores_now: Vec<_> = server
        .scores()
        .into_iter()
        .filter(|s| s.trace_id.as_deref() == Some(trace.as_str()))
        .collect();
    assert_eq!(scores_now, scores, "nothing else was sent");
    assert_eq!(scores[0].name, "parentless-trace-score");
}
