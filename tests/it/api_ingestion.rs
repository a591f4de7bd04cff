//! The context API over the legacy batch-ingestion exporter (Langfuse v2 and v3 servers),
//! checked on the loopback server in its v3 mode: trace attributes set deep inside a root
//! generation, also of a continued trace, arrive with `trace-create`; observation and
//! generation updates, events and scores arrive as their own event types.

use std::time::{Duration, UNIX_EPOCH};

use langfuse_observe::{
    config::ExporterKind,
    context::TraceContext,
    observe,
    trace::{
        create_event, score_current_observation, score_current_trace, update_current_generation,
        update_current_observation, update_current_trace, GenerationUpdate, Level, ObservationId,
        ObservationUpdate, PromptRef, TraceId, TraceUpdate,
    },
    Config,
};
use langfuse_observe_testing::TestServer;
use serde_json::json;

use crate::support::observed::{
    assert_child_of, current_observation, current_trace, named, trace_observations, Harness,
};
use crate::support::WAIT;

fn start() -> Harness {
    // The prompt exists in the project: a v3 server links a generation only to a prompt it has.
    let legacy = TestServer::builder()
        .langfuse_v3()
        .prompt("legacy-prompt", 7);
    Harness::start_in(legacy, |server| {
        Config::builder()
            .keys(server.public_key(), server.secret_key())
            .base_url(server.url())
            .exporter(ExporterKind::Ingestion)
    })
}

#[observe]
fn deep_step() -> String {
    assert!(update_current_trace(
        TraceUpdate::new()
            .name("ingested-trace")
            .session_id("session-ingestion")
            .user_id("user-ingestion")
            .tag("legacy")
            .metadata("path", "ingestion")
            .version("9.9")
            .release("rel-ingestion")
            .input(&json!({"q": "trace input"}))
            .output("trace output")
            .public(false)
    ));
    assert!(update_current_observation(
        ObservationUpdate::new()
            .name("deep-step-renamed")
            .metadata("k", "v")
            .level(Level::Warning)
            .status_message("careful")
            .version("step-1")
            .output("explicit step output")
    ));
    assert!(create_event(
        "ingested-event",
        ObservationUpdate::new().input("event input")
    ));
    assert!(score_current_observation("step-score", "fine"));
    current_observation()
}

#[observe(as_type = "generation")]
fn ingested_generation() -> (String, String) {
    assert!(update_current_generation(
        GenerationUpdate::new()
            .model("legacy-model")
            .model_parameter("temperature", 0.5)
            .usage("input", 11)
            .usage("output", 22)
            .cost("total", 0.5)
            .completion_start_time(UNIX_EPOCH + Duration::from_micros(1_760_000_000_000_001))
            .prompt(PromptRef::new("legacy-prompt", 7))
    ));
    assert!(score_current_trace("trace-score", true));
    let step = deep_step();
    (current_trace(), step)
}

#[test]
fn trace_attributes_updates_events_and_scores_arrive_by_batch_ingestion() {
    let test = start();
    let server = &test.server;
    let trace_id = TraceId::random();
    let parent = ObservationId::random().to_string();
    let remote = TraceContext::new(&trace_id.to_string())
        .unwrap()
        .with_parent(&parent)
        .unwrap();
    let (trace, step_id) = remote.run(ingested_generation);
    assert_eq!(trace, trace_id.to_string());

    let observations = trace_observations(server, &trace);
    assert_eq!(observations.len(), 3, "{observations:#?}");
    let generation = named(&observations, "ingested_generation");
    assert_eq!(
        generation.parent_observation_id.as_deref(),
        Some(parent.as_str())
    );
    assert_eq!(generation.observation_type, "GENERATION");
    assert_eq!(generation.model.as_deref(), Some("legacy-model"));
    assert_eq!(
        generation.model_parameters,
        Some(json!({"temperature": 0.5}))
    );
    assert_eq!(
        generation.usage_details,
        Some(json!({"input": 11, "output": 22, "total": 33})),
        "the server adds the total"
    );
    assert_eq!(generation.cost_details, Some(json!({"total": 0.5})));
    assert_eq!(
        generation.completion_start_time,
        Some(UNIX_EPOCH + Duration::from_millis(1_760_000_000_000)),
        "Langfuse keeps milliseconds"
    );
    assert_eq!(generation.prompt_name.as_deref(), Some("legacy-prompt"));
    assert_eq!(generation.prompt_version, Some(7));

    let step = named(&observations, "deep-step-renamed");
    assert_eq!(step.id, step_id);
    assert_child_of(step, generation);
    assert_eq!(step.level, "WARNING");
    assert_eq!(step.status_message.as_deref(), Some("careful"));
    assert_eq!(step.version.as_deref(), Some("step-1"));
    assert_eq!(step.metadata.get("k"), Some(&json!("v")));
    assert_eq!(step.output, Some(json!("explicit step output")));

    let event = named(&observations, "ingested-event");
    assert_eq!(event.observation_type, "EVENT");
    assert_child_of(event, step);
    assert_eq!(event.input, Some(json!("event input")));

    let arrived = server.trace(&trace).unwrap();
    assert_eq!(arrived.name.as_deref(), Some("ingested-trace"));
    assert_eq!(arrived.session_id.as_deref(), Some("session-ingestion"));
    assert_eq!(arrived.user_id.as_deref(), Some("user-ingestion"));
    assert_eq!(arrived.tags, ["legacy"]);
    assert_eq!(arrived.metadata.get("path"), Some(&json!("ingestion")));
    assert_eq!(arrived.version.as_deref(), Some("9.9"));
    assert_eq!(arrived.release.as_deref(), Some("rel-ingestion"));
    assert_eq!(arrived.input, Some(json!({"q": "trace input"})));
    assert_eq!(arrived.output, Some(json!("trace output")));
    assert_eq!(arrived.public, Some(false));

    assert!(server.wait_until(WAIT, |s| s
        .scores()
        .iter()
        .filter(|score| score.trace_id.as_deref() == Some(trace.as_str()))
        .count()
        >= 2));
    let scores: Vec<_> = server
        .scores()
        .into_iter()
        .filter(|score| score.trace_id.as_deref() == Some(trace.as_str()))
        .collect();
    let trace_score = scores.iter().find(|s| s.name == "trace-score").unwrap();
    assert_eq!(trace_score.data_type.as_deref(), Some("BOOLEAN"));
    assert_eq!(trace_score.observation_id, None);
    let step_score = scores.iter().find(|s| s.name == "step-score").unwrap();
    assert_eq!(step_score.data_type.as_deref(), Some("CATEGORICAL"));
    assert_eq!(step_score.observation_id.as_deref(), Some(step_id.as_str()));

    let types: Vec<String> = server
        .requests()
        .into_iter()
        .flat_map(|r| r.event_types)
        .collect();
    for kind in [
        "trace-create",
        "generation-create",
        "generation-update",
        "span-create",
        "span-update",
        "event-create",
        "score-create",
    ] {
        assert!(types.iter().any(|t| t == kind), "no {kind} in {types:?}");
    }
    assert!(
        !server
            .requests()
            .iter()
            .any(|r| r.path == "/api/public/otel/v1/traces"),
        "nothing goes over OTLP with the ingestion exporter"
    );
}
