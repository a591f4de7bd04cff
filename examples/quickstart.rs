//! A small retrieval-augmented pipeline recorded as one trace.
//!
//! Run it with no environment set and the trace tree is printed to stderr; set
//! `LANGFUSE_PUBLIC_KEY`, `LANGFUSE_SECRET_KEY` and `LANGFUSE_BASE_URL` and it goes to Langfuse.
//!
//! ```sh
//! cargo run --example quickstart
//! ```

use std::sync::Arc;
use std::time::SystemTime;

use langfuse_observe::{
    Config, GenerationDetails, Observation, ObservationId, ObservationType, TraceAttributes,
    TraceId,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _guard = langfuse_observe::init(Config::from_env()?)?;
    let exporter = langfuse_observe::exporter();

    let trace_id = TraceId::random();
    let root_id = ObservationId::random();
    let started = SystemTime::now();
    let question = "What does Langfuse record?";

    let mut retrieve = step(trace_id, root_id, "retrieve", ObservationType::Retriever);
    retrieve.input = Some(question.into());
    let documents = ["Langfuse records traces.", "Traces hold observations."];
    retrieve.output = Some(serde_json::json!(documents).into());
    exporter.record(finish(retrieve));

    let mut answer = step(trace_id, root_id, "answer", ObservationType::Generation);
    answer.input = Some(serde_json::json!([{ "role": "user", "content": question }]).into());
    let text = "Traces of nested observations: inputs, outputs, timing and usage.";
    answer.output = Some(text.into());
    let mut generation = GenerationDetails::default();
    generation.model = Some("gpt-4o-mini".into());
    generation.usage_details = [("input".to_owned(), 42), ("output".to_owned(), 17)].into();
    answer.generation = Some(Box::new(generation));
    exporter.record(finish(answer));

    let mut cite = step(trace_id, root_id, "cite_sources", ObservationType::Tool);
    cite.input = Some(serde_json::json!({ "documents": 2 }).into());
    cite.output = Some(serde_json::json!(["doc-1", "doc-2"]).into());
    exporter.record(finish(cite));

    let mut root = Observation::new(trace_id, root_id, "rag_pipeline");
    root.kind = ObservationType::Chain;
    root.start_time = started;
    root.input = Some(serde_json::json!({ "question": question }).into());
    root.output = Some(text.into());
    let mut trace = TraceAttributes::default();
    trace.session_id = Some("session-42".into());
    trace.user_id = Some("user-7".into());
    trace.tags = vec!["quickstart".into()];
    root.trace = Some(Arc::new(trace));
    exporter.record(finish(root));
    Ok(())
}

fn step(
    trace: TraceId,
    parent: ObservationId,
    name: &'static str,
    kind: ObservationType,
) -> Observation {
    let mut observation = Observation::new(trace, ObservationId::random(), name);
    observation.parent_id = Some(parent);
    observation.kind = kind;
    observation
}

fn finish(mut observation: Observation) -> Observation {
    observation.end_time = SystemTime::now();
    observation
}
