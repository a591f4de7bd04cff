//! The legacy batch-ingestion path, against the test server in its Langfuse v3 mode (a v4
//! server accepts only scores there): every field lands where Langfuse reads it, envelope ids
//! are unique per event, body ids are stable across create and update, every observation type
//! has its own event, and scores (also in OTLP mode) carry their data type.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use langfuse_observe::{
    config::ExporterKind,
    export::{GenerationDetails, Observation, TraceAttributes},
    trace::{Level, ObservationId, ObservationType, PromptRef, Score, ScoreValue, TraceId},
    Langfuse,
};
use langfuse_observe_testing::TestServer;
use serde_json::json;

use crate::support::exporter::{
    assert_accounted, config, deliver, exporter, instant, requests_to, root_with_trace, span,
    spans, INGESTION_PATH, OTLP_PATH,
};
use crate::support::WAIT;

fn start(kind: ExporterKind) -> (TestServer, Langfuse) {
    // The project has the prompt, so a v3 server links generations to it.
    let server = TestServer::builder().langfuse_v3().prompt("qa", 3).start();
    let exporter = exporter(
        config(&server, kind)
            .environment("test-env")
            .release("r-config"),
    );
    (server, exporter)
}

/// `time` at the millisecond precision Langfuse keeps.
fn ms(time: SystemTime) -> SystemTime {
    let since = time.duration_since(UNIX_EPOCH).unwrap();
    UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64)
}

#[test]
fn every_field_lands_where_langfuse_reads_it() {
    let (server, exporter) = start(ExporterKind::Ingestion);
    let trace = TraceId::random();
    let root_id = ObservationId::random();

    let mut root = Observation::new(trace, root_id, "pipeline");
    root.start_time = instant(0);
    root.end_time = instant(2_000_000);
    root.input = Some(json!({"question": "hi"}).into());
    root.output = Some("plain answer".into());
    root.metadata = json!({"attempt": 2, "cached": true, "nested": {"k": [1]}})
        .as_object()
        .cloned()
        .unwrap();
    root.version = Some("v1".into());
    let mut attributes = TraceAttributes::default();
    attributes.name = Some("my-trace".into());
    attributes.user_id = Some("user-1".into());
    attributes.session_id = Some("session-1".into());
    attributes.tags = vec!["alpha".into(), "beta".into()];
    attributes.metadata = json!({"team": "core"}).as_object().cloned().unwrap();
    attributes.public = Some(false);
    attributes.input = Some(json!({"q": 1}).into());
    attributes.output = Some("trace output".into());
    attributes.release = Some("r-trace".into());
    attributes.version = Some("v-trace".into());
    root.trace = Some(Arc::new(attributes));

    let generation_id = ObservationId::random();
    let mut generation = Observation::new(trace, generation_id, "llm");
    generation.parent_id = Some(root_id);
    generation.kind = ObservationType::Generation;
    generation.start_time = instant(100);
    generation.end_time = instant(1_000_100);
    generation.input = Some("prompt text".into());
    generation.output = Some(json!({"answer": 42}).into());
    generation.level = Level::Warning;
    generation.status_message = Some("slow".into());
    let mut details = GenerationDetails::default();
    details.model = Some("gpt-4o".into());
    details.model_parameters = json!({"temperature": 0.2}).as_object().cloned().unwrap();
    details.usage_details.insert("input".into(), 10);
    details.usage_details.insert("output".into(), 20);
    details.cost_details.insert("total".into(), 0.5);
    details.completion_start_time = Some(instant(500_000));
    details.prompt = Some(PromptRef {
        name: "qa".into(),
        version: 3,
    });
    generation.generation = Some(Box::new(details));

    let event_id = ObservationId::random();
    let mut event = Observation::new(trace, event_id, "cache-hit");
    event.parent_id = Some(root_id);
    event.kind = ObservationType::Event;
    event.start_time = instant(200);
    event.end_time = instant(200);
    event.output = Some("hit".into());

    let failed_id = ObservationId::random();
    let mut failed = Observation::new(trace, failed_id, "search");
    failed.parent_id = Some(root_id);
    failed.kind = ObservationType::Tool;
    failed.level = Level::Error;
    failed.status_message = Some("boom".into());

    let other_trace = TraceId::random();
    let mut other = Observation::new(other_trace, ObservationId::random(), "other");
    let mut other_attributes = TraceAttributes::default();
    other_attributes.session_id = Some("session-2".into());
    other.trace = Some(Arc::new(other_attributes));

    deliver(&exporter, vec![generation, event, failed, root, other]);

    let root = server.observation(&root_id.to_string()).unwrap();
    assert_eq!(root.trace_id, trace.to_string());
    assert_eq!(root.parent_observation_id, None);
    assert_eq!(root.name.as_deref(), Some("pipeline"));
    assert_eq!(root.observation_type, "SPAN");
    assert_eq!(root.level, "DEFAULT");
    assert_eq!(root.input, Some(json!({"question": "hi"})));
    assert_eq!(root.output, Some(json!("plain answer")));
    assert_eq!(
        serde_json::Value::Object(root.metadata.clone()),
        json!({"attempt": "2", "cached": "true", "nested": "{\"k\":[1]}"}),
        "Langfuse stores metadata values as strings"
    );
    assert_eq!(root.version.as_deref(), Some("v1"));
    assert_eq!(root.environment.as_deref(), Some("test-env"));
    assert_eq!(root.start_time, Some(ms(instant(0))));
    assert_eq!(root.end_time, Some(ms(instant(2_000_000))));

    let llm = server.observation(&generation_id.to_string()).unwrap();
    assert_eq!(llm.parent_observation_id, Some(root_id.to_string()));
    assert_eq!(llm.observation_type, "GENERATION");
    assert_eq!(llm.level, "WARNING");
    assert_eq!(llm.status_message.as_deref(), Some("slow"));
    assert_eq!(llm.input, Some(json!("prompt text")));
    assert_eq!(llm.output, Some(json!({"answer": 42})));
    assert_eq!(llm.model.as_deref(), Some("gpt-4o"));
    assert_eq!(llm.model_parameters, Some(json!({"temperature": 0.2})));
    assert_eq!(
        llm.usage_details,
        Some(json!({"input": 10, "output": 20, "total": 30}))
    );
    assert_eq!(llm.cost_details, Some(json!({"total": 0.5})));
    assert_eq!(llm.completion_start_time, Some(ms(instant(500_000))));
    assert_eq!(llm.prompt_name.as_deref(), Some("qa"));
    assert_eq!(llm.prompt_version, Some(3));
    assert_eq!(llm.start_time, Some(ms(instant(100))));
    assert_eq!(llm.end_time, Some(ms(instant(1_000_100))));

    let event = server.observation(&event_id.to_string()).unwrap();
    assert_eq!(event.observation_type, "EVENT");
    assert_eq!(event.output, Some(json!("hit")));
    assert_eq!(event.writes, 1, "an event is a single create");

    let failed = server.observation(&failed_id.to_string()).unwrap();
    assert_eq!(failed.level, "ERROR");
    assert_eq!(failed.status_message.as_deref(), Some("boom"));

    let trace = server.trace(&trace.to_string()).unwrap();
    assert_eq!(trace.name.as_deref(), Some("my-trace"));
    assert_eq!(trace.user_id.as_deref(), Some("user-1"));
    assert_eq!(trace.session_id.as_deref(), Some("session-1"));
    assert_eq!(trace.tags, ["alpha", "beta"]);
    assert_eq!(
        serde_json::Value::Object(trace.metadata.clone()),
        json!({"team": "core"})
    );
    assert_eq!(trace.public, Some(false));
    assert_eq!(trace.input, Some(json!({"q": 1})));
    assert_eq!(trace.output, Some(json!("trace output")));
    assert_eq!(trace.release.as_deref(), Some("r-trace"));
    assert_eq!(trace.version.as_deref(), Some("v-trace"));
    assert_eq!(trace.environment.as_deref(), Some("test-env"));

    let other = server.trace(&other_trace.to_string()).unwrap();
    assert_eq!(other.session_id.as_deref(), Some("session-2"));
    assert_eq!(
        other.release.as_deref(),
        Some("r-config"),
        "configured release"
    );

    for request in requests_to(&server, INGESTION_PATH) {
        assert_eq!(request.status, Some(207));
        assert_eq!(request.content_type.as_deref(), Some("application/json"));
        assert_eq!(request.sdk_name.as_deref(), Some("langfuse-observe"));
        assert_eq!(request.public_key.as_deref(), Some(server.public_key()));
        assert_eq!(request.ingestion_version.as_deref(), Some("4"));
        let metadata = request.batch_metadata.as_ref().unwrap();
        assert_eq!(metadata["batch_size"], request.envelope_ids.len());
    }
    assert!(requests_to(&server, OTLP_PATH).is_empty());
}

/// LANGFUSE_SERVER.md §3.5: agents, tools, chains, retrievers, evaluators, embeddings and
/// guardrails have their own `<type>-create` events (with no update event).
#[test]
fn every_observation_type_arrives_as_itself() {
    let (server, exporter) = start(ExporterKind::Ingestion);
    let trace = TraceId::random();
    let root = ObservationId::random();
    let observations: Vec<Observation> = ObservationType::ALL
        .into_iter()
        .map(|kind| {
            let mut observation =
                Observation::new(trace, ObservationId::random(), format!("type-{kind}"));
            observation.kind = kind;
            observation.parent_id = Some(root);
            observation.output = Some("done".into());
            observation
        })
        .collect();
    deliver(&exporter, observations);
    for kind in ObservationType::ALL {
        let name = format!("type-{kind}");
        let observation = server
            .observations()
            .into_iter()
            .find(|o| o.name.as_deref() == Some(name.as_str()))
            .unwrap_or_else(|| panic!("{name} arrived"));
        assert_eq!(observation.observation_type, kind.as_str().to_uppercase());
        assert_eq!(observation.output, Some(json!("done")), "{name}");
        if kind != ObservationType::Event {
            assert!(observation.end_time.is_some(), "{name} has its end");
        }
    }
}

#[test]
fn envelope_ids_are_unique_and_body_ids_stable_across_create_and_update() {
    let (server, exporter) = start(ExporterKind::Ingestion);
    let trace = TraceId::random();
    let root = root_with_trace(trace, "root");
    let root_id = root.id;
    let mut observations = vec![root];
    for i in 0..30 {
        let mut child = span(trace, format!("child-{i}"));
        child.parent_id = Some(root_id);
        observations.push(child);
    }
    let mut generation = span(trace, "llm");
    generation.kind = ObservationType::Generation;
    generation.parent_id = Some(root_id);
    let generation_id = generation.id.to_string();
    observations.push(generation);
    let ids: Vec<String> = observations.iter().map(|o| o.id.to_string()).collect();
    deliver(&exporter, observations);
    // A second flush in the same run: ids stay unique across batches.
    let mut more = spans(5);
    let second_root = more[0].id;
    for child in &mut more[1..] {
        child.parent_id = Some(second_root);
    }
    let more_ids: Vec<String> = more.iter().map(|o| o.id.to_string()).collect();
    for observation in more {
        assert!(exporter.record(observation));
    }
    assert!(exporter.flush_blocking(WAIT).completed);

    let requests = requests_to(&server, INGESTION_PATH);
    let envelopes: Vec<&String> = requests.iter().flat_map(|r| &r.envelope_ids).collect();
    // 37 observations: create + update each, and one trace-create for each of the 2 traces.
    assert_eq!(envelopes.len(), 37 * 2 + 2);
    let unique: HashSet<&String> = envelopes.iter().copied().collect();
    assert_eq!(unique.len(), envelopes.len(), "one envelope id per event");
    let types: Vec<&String> = requests.iter().flat_map(|r| &r.event_types).collect();
    for expected in [
        "trace-create",
        "span-create",
        "span-update",
        "generation-create",
        "generation-update",
    ] {
        assert!(types.iter().any(|t| *t == expected), "{expected} sent");
    }
    for id in ids.iter().chain(&more_ids) {
        let observation = server.observation(id).unwrap();
        assert_eq!(
            observation.writes, 2,
            "{id}: create and update, one body id"
        );
        assert!(observation.start_time.is_some() && observation.end_time.is_some());
    }
    assert_eq!(
        server.observation(&generation_id).unwrap().observation_type,
        "GENERATION",
        "the update did not retype it"
    );
}

#[test]
fn scores_in_otlp_mode_travel_through_ingestion_with_their_data_type() {
    let (server, exporter) = start(ExporterKind::Otlp);
    let trace = TraceId::random();
    let span = span(trace, "scored");
    let span_id = span.id;
    assert!(exporter.record(span));
    let mut numeric = Score::new(trace, "accuracy", ScoreValue::Numeric(0.75));
    numeric.observation_id = Some(span_id);
    numeric.comment = Some("close enough".into());
    let categorical = Score::new(trace, "tone", ScoreValue::Categorical("friendly".into()));
    let boolean = Score::new(trace, "correct", ScoreValue::Boolean(true));
    let ids = [
        numeric.id.clone(),
        categorical.id.clone(),
        boolean.id.clone(),
    ];
    for score in [numeric, categorical, boolean] {
        assert!(exporter.score(score));
    }
    let report = exporter.flush_blocking(WAIT);
    assert!(report.completed, "{report:?}");
    let stats = assert_accounted(&exporter, 4);
    assert_eq!(stats.exported, 4);

    let otlp = requests_to(&server, OTLP_PATH);
    assert_eq!(otlp.iter().map(|r| r.span_ids.len()).sum::<usize>(), 1);
    let ingestion = requests_to(&server, INGESTION_PATH);
    assert!(!ingestion.is_empty());
    for request in &ingestion {
        assert!(request.event_types.iter().all(|t| t == "score-create"));
    }

    let scores = server.scores();
    assert_eq!(scores.len(), 3);
    let by_name = |name: &str| scores.iter().find(|s| s.name == name).unwrap().clone();
    let accuracy = by_name("accuracy");
    assert_eq!(accuracy.id, ids[0]);
    assert_eq!(accuracy.data_type.as_deref(), Some("NUMERIC"));
    assert_eq!(accuracy.value, json!(0.75));
    assert_eq!(accuracy.trace_id, Some(trace.to_string()));
    assert_eq!(accuracy.observation_id, Some(span_id.to_string()));
    assert_eq!(accuracy.comment.as_deref(), Some("close enough"));
    let tone = by_name("tone");
    assert_eq!(tone.id, ids[1]);
    assert_eq!(tone.data_type.as_deref(), Some("CATEGORICAL"));
    assert_eq!(tone.string_value.as_deref(), Some("friendly"));
    assert_eq!(tone.observation_id, None);
    let correct = by_name("correct");
    assert_eq!(correct.id, ids[2]);
    assert_eq!(correct.data_type.as_deref(), Some("BOOLEAN"));
    assert_eq!(correct.value, json!(1));
    assert_eq!(correct.string_value.as_deref(), Some("True"));
}
