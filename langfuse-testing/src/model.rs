//! The Langfuse-shaped view of what arrived: traces, observations and scores as a user would see
//! them in the Langfuse UI, plus the raw facts about each request.
//!
//! Both wire decoders produce patches; this module alone decides how patches merge, so OTLP and
//! batch ingestion behave the same way ("later non-null fields win", tags union, metadata merge).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::SystemTime;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde_json::{Map, Value};

/// A trace as Langfuse shows it, assembled from every span or event that mentioned its id.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StoredTrace {
    /// 32 lowercase hex characters.
    pub id: String,
    /// `langfuse.trace.name`, else the root span's name (OTLP), else `trace-create`'s `name`.
    pub name: Option<String>,
    /// The user the trace belongs to.
    pub user_id: Option<String>,
    /// The session the trace belongs to.
    pub session_id: Option<String>,
    /// Union of all tags received, in first-seen order.
    pub tags: Vec<String>,
    /// All metadata received, merged key by key (later values win).
    pub metadata: Map<String, Value>,
    /// Explicit trace input, else the root observation's input (OTLP).
    pub input: Option<Value>,
    /// Explicit trace output, else the root observation's output (OTLP).
    pub output: Option<Value>,
    /// Whether the trace is shared publicly; `None` when never set.
    pub public: Option<bool>,
    /// `None` when never sent; Langfuse displays such traces under `default`.
    pub environment: Option<String>,
    /// The release of the instrumented program.
    pub release: Option<String>,
    /// The version of the instrumented program.
    pub version: Option<String>,
}

impl StoredTrace {
    fn new(id: String) -> Self {
        StoredTrace {
            id,
            name: None,
            user_id: None,
            session_id: None,
            tags: Vec::new(),
            metadata: Map::new(),
            input: None,
            output: None,
            public: None,
            environment: None,
            release: None,
            version: None,
        }
    }
}

/// An observation (span, generation, event, agent, tool, ...) as Langfuse shows it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StoredObservation {
    /// 16 lowercase hex characters on the OTLP path; whatever the SDK chose on batch ingestion.
    pub id: String,
    /// The trace this observation belongs to.
    pub trace_id: String,
    /// The enclosing observation; `None` for a trace root.
    pub parent_observation_id: Option<String>,
    /// The observation's name.
    pub name: Option<String>,
    /// Uppercase, as Langfuse stores it: `SPAN`, `GENERATION`, `EVENT`, `AGENT`, `TOOL`, `CHAIN`,
    /// `RETRIEVER`, `EVALUATOR`, `GUARDRAIL` or `EMBEDDING`.
    pub observation_type: String,
    /// `DEBUG`, `DEFAULT`, `WARNING` or `ERROR`; `DEFAULT` unless something said otherwise.
    pub level: String,
    /// Why the observation ended the way it did, usually an error message.
    pub status_message: Option<String>,
    /// Input as JSON; a plain string stays a JSON string.
    pub input: Option<Value>,
    /// Output as JSON; a plain string stays a JSON string.
    pub output: Option<Value>,
    /// All metadata received, merged key by key (later values win).
    pub metadata: Map<String, Value>,
    /// When the observation started.
    pub start_time: Option<SystemTime>,
    /// When the observation ended.
    pub end_time: Option<SystemTime>,
    /// Model name of a generation.
    pub model: Option<String>,
    /// Model parameters of a generation.
    pub model_parameters: Option<Value>,
    /// Token or unit usage of a generation.
    pub usage_details: Option<Value>,
    /// Cost of a generation.
    pub cost_details: Option<Value>,
    /// When a generation produced its first token.
    pub completion_start_time: Option<SystemTime>,
    /// Name of the prompt a generation used.
    pub prompt_name: Option<String>,
    /// Version of the prompt a generation used.
    pub prompt_version: Option<i64>,
    /// `None` when never sent; Langfuse displays it as `default`.
    pub environment: Option<String>,
    /// The version of the instrumented program.
    pub version: Option<String>,
    /// How many accepted writes (spans, create and update events) touched this observation, so
    /// duplicated exports are visible; a create followed by an update counts 2.
    pub writes: usize,
}

/// A score attached to a trace or an observation.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StoredScore {
    /// The score's entity id.
    pub id: String,
    /// The trace the score belongs to.
    pub trace_id: Option<String>,
    /// The observation the score belongs to, if any.
    pub observation_id: Option<String>,
    /// The score's name.
    pub name: String,
    /// A JSON number or string.
    pub value: Value,
    /// `NUMERIC`, `CATEGORICAL` or `BOOLEAN`, when the SDK sent one.
    pub data_type: Option<String>,
    /// Free-text comment.
    pub comment: Option<String>,
    /// The score configuration it follows, if any.
    pub config_id: Option<String>,
}

/// One HTTP request as the server saw it, including those that failed or were dropped.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Request path without the query string.
    pub path: String,
    /// Status returned; `None` when the connection was dropped by a fault.
    pub status: Option<u16>,
    /// Body size in bytes as received (compressed, if it was sent compressed).
    pub body_bytes: usize,
    /// `x-langfuse-sdk-name`.
    pub sdk_name: Option<String>,
    /// `x-langfuse-sdk-version`.
    pub sdk_version: Option<String>,
    /// `x-langfuse-public-key`.
    pub public_key: Option<String>,
    /// `x-langfuse-ingestion-version`.
    pub ingestion_version: Option<String>,
    /// `content-type`.
    pub content_type: Option<String>,
    /// `content-encoding`.
    pub content_encoding: Option<String>,
    /// Every header, names lowercased, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Envelope ids of an ingestion batch, in batch order (empty for other routes or when the body
    /// could not be decoded).
    pub envelope_ids: Vec<String>,
    /// Event types of an ingestion batch, in batch order.
    pub event_types: Vec<String>,
    /// The `metadata` member of an ingestion batch.
    pub batch_metadata: Option<Value>,
    /// Span ids (hex) of an OTLP export, in the order they were sent.
    pub span_ids: Vec<String>,
}

impl RecordedRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What one span or event says about a trace.
#[derive(Debug, Default)]
pub(crate) struct TracePatch {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    /// Applied only while the trace has no name, so an explicit name always wins.
    pub(crate) fallback_name: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) session_id: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) metadata: Map<String, Value>,
    pub(crate) input: Option<Value>,
    pub(crate) output: Option<Value>,
    /// Applied only while the trace has no input, so an explicit input always wins.
    pub(crate) fallback_input: Option<Value>,
    pub(crate) fallback_output: Option<Value>,
    pub(crate) public: Option<bool>,
    pub(crate) environment: Option<String>,
    pub(crate) release: Option<String>,
    pub(crate) version: Option<String>,
}

/// What one span or create/update event says about an observation.
#[derive(Debug, Default)]
pub(crate) struct ObservationPatch {
    pub(crate) id: String,
    pub(crate) trace_id: Option<String>,
    pub(crate) parent_observation_id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) observation_type: Option<String>,
    /// Used when the patch creates the observation and carries no explicit type, e.g. an
    /// `span-update` that arrives before its create.
    pub(crate) default_type: String,
    pub(crate) level: Option<String>,
    pub(crate) status_message: Option<String>,
    pub(crate) input: Option<Value>,
    pub(crate) output: Option<Value>,
    pub(crate) metadata: Map<String, Value>,
    pub(crate) start_time: Option<SystemTime>,
    pub(crate) end_time: Option<SystemTime>,
    pub(crate) model: Option<String>,
    pub(crate) model_parameters: Option<Value>,
    pub(crate) usage_details: Option<Value>,
    pub(crate) cost_details: Option<Value>,
    pub(crate) completion_start_time: Option<SystemTime>,
    pub(crate) prompt_name: Option<String>,
    pub(crate) prompt_version: Option<i64>,
    pub(crate) environment: Option<String>,
    pub(crate) version: Option<String>,
}

/// Why a patch could not be applied.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ApplyError {
    MissingTraceId,
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::MissingTraceId => {
                f.write_str("traceId is required for an observation the server has not seen")
            }
        }
    }
}

/// Everything the server has recorded. Lives behind one mutex so a request's model changes and
/// its request record become visible together.
#[derive(Debug, Default)]
pub(crate) struct Store {
    traces: Vec<StoredTrace>,
    trace_index: HashMap<String, usize>,
    observations: Vec<StoredObservation>,
    observation_index: HashMap<String, usize>,
    scores: Vec<StoredScore>,
    score_index: HashMap<String, usize>,
    requests: Vec<RecordedRequest>,
    envelope_receipts: HashMap<String, usize>,
    accepted_envelopes: HashSet<String>,
    sdk_logs: Vec<Value>,
    /// Accepted OTLP exports as decoded, kept only while the model is built.
    otlp_requests: Vec<ExportTraceServiceRequest>,
}

fn set_if_some<T>(slot: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *slot = value;
    }
}

impl Store {
    pub(crate) fn traces(&self) -> &[StoredTrace] {
        &self.traces
    }

    pub(crate) fn trace(&self, id: &str) -> Option<&StoredTrace> {
        self.trace_index.get(id).map(|&i| &self.traces[i])
    }

    pub(crate) fn observations(&self) -> &[StoredObservation] {
        &self.observations
    }

    pub(crate) fn observation(&self, id: &str) -> Option<&StoredObservation> {
        self.observation_index
            .get(id)
            .map(|&i| &self.observations[i])
    }

    pub(crate) fn scores(&self) -> &[StoredScore] {
        &self.scores
    }

    pub(crate) fn requests(&self) -> &[RecordedRequest] {
        &self.requests
    }

    pub(crate) fn sdk_logs(&self) -> &[Value] {
        &self.sdk_logs
    }

    pub(crate) fn otlp_requests(&self) -> &[ExportTraceServiceRequest] {
        &self.otlp_requests
    }

    pub(crate) fn push_otlp_request(&mut self, request: ExportTraceServiceRequest) {
        self.otlp_requests.push(request);
    }

    pub(crate) fn envelope_receipts(&self, id: &str) -> usize {
        self.envelope_receipts.get(id).copied().unwrap_or(0)
    }

    pub(crate) fn envelope_receipt_counts(&self) -> BTreeMap<String, usize> {
        self.envelope_receipts
            .iter()
            .map(|(id, n)| (id.clone(), *n))
            .collect()
    }

    /// Counts every arrival, whatever the request's fate, so retries are visible as receipts > 1.
    pub(crate) fn record_request(&mut self, request: RecordedRequest) {
        for id in &request.envelope_ids {
            *self.envelope_receipts.entry(id.clone()).or_insert(0) += 1;
        }
        self.requests.push(request);
    }

    pub(crate) fn is_accepted(&self, envelope_id: &str) -> bool {
        self.accepted_envelopes.contains(envelope_id)
    }

    pub(crate) fn mark_accepted(&mut self, envelope_id: String) {
        self.accepted_envelopes.insert(envelope_id);
    }

    pub(crate) fn push_sdk_log(&mut self, log: Value) {
        self.sdk_logs.push(log);
    }

    fn trace_mut(&mut self, id: &str) -> &mut StoredTrace {
        let index = match self.trace_index.get(id) {
            Some(&i) => i,
            None => {
                self.traces.push(StoredTrace::new(id.to_owned()));
                self.trace_index
                    .insert(id.to_owned(), self.traces.len() - 1);
                self.traces.len() - 1
            }
        };
        &mut self.traces[index]
    }

    pub(crate) fn apply_trace(&mut self, patch: TracePatch) {
        let trace = self.trace_mut(&patch.id);
        set_if_some(&mut trace.name, patch.name);
        if trace.name.is_none() {
            trace.name = patch.fallback_name;
        }
        set_if_some(&mut trace.user_id, patch.user_id);
        set_if_some(&mut trace.session_id, patch.session_id);
        for tag in patch.tags {
            if !trace.tags.contains(&tag) {
                trace.tags.push(tag);
            }
        }
        trace.metadata.extend(patch.metadata);
        set_if_some(&mut trace.input, patch.input);
        set_if_some(&mut trace.output, patch.output);
        if trace.input.is_none() {
            trace.input = patch.fallback_input;
        }
        if trace.output.is_none() {
            trace.output = patch.fallback_output;
        }
        set_if_some(&mut trace.public, patch.public);
        set_if_some(&mut trace.environment, patch.environment);
        set_if_some(&mut trace.release, patch.release);
        set_if_some(&mut trace.version, patch.version);
    }

    /// Creates the observation on first sight (and its trace), otherwise merges into it.
    pub(crate) fn apply_observation(&mut self, patch: ObservationPatch) -> Result<(), ApplyError> {
        let index = match self.observation_index.get(&patch.id) {
            Some(&i) => i,
            None => {
                let trace_id = patch.trace_id.clone().ok_or(ApplyError::MissingTraceId)?;
                self.observations.push(StoredObservation {
                    id: patch.id.clone(),
                    trace_id,
                    parent_observation_id: None,
                    name: None,
                    observation_type: patch.default_type.clone(),
                    level: "DEFAULT".to_owned(),
                    status_message: None,
                    input: None,
                    output: None,
                    metadata: Map::new(),
                    start_time: None,
                    end_time: None,
                    model: None,
                    model_parameters: None,
                    usage_details: None,
                    cost_details: None,
                    completion_start_time: None,
                    prompt_name: None,
                    prompt_version: None,
                    environment: None,
                    version: None,
                    writes: 0,
                });
                self.observation_index
                    .insert(patch.id.clone(), self.observations.len() - 1);
                self.observations.len() - 1
            }
        };
        if let Some(trace_id) = &patch.trace_id {
            // Langfuse lists a trace for every trace id an observation points at.
            self.trace_mut(trace_id);
        }
        let obs = &mut self.observations[index];
        if let Some(trace_id) = patch.trace_id {
            obs.trace_id = trace_id;
        }
        set_if_some(&mut obs.parent_observation_id, patch.parent_observation_id);
        set_if_some(&mut obs.name, patch.name);
        if let Some(kind) = patch.observation_type {
            obs.observation_type = kind;
        }
        if let Some(level) = patch.level {
            obs.level = level;
        }
        set_if_some(&mut obs.status_message, patch.status_message);
        set_if_some(&mut obs.input, patch.input);
        set_if_some(&mut obs.output, patch.output);
        obs.metadata.extend(patch.metadata);
        set_if_some(&mut obs.start_time, patch.start_time);
        set_if_some(&mut obs.end_time, patch.end_time);
        set_if_some(&mut obs.model, patch.model);
        set_if_some(&mut obs.model_parameters, patch.model_parameters);
        set_if_some(&mut obs.usage_details, patch.usage_details);
        set_if_some(&mut obs.cost_details, patch.cost_details);
        set_if_some(&mut obs.completion_start_time, patch.completion_start_time);
        set_if_some(&mut obs.prompt_name, patch.prompt_name);
        set_if_some(&mut obs.prompt_version, patch.prompt_version);
        set_if_some(&mut obs.environment, patch.environment);
        set_if_some(&mut obs.version, patch.version);
        obs.writes += 1;
        Ok(())
    }

    /// Scores are upserted by id, like the Langfuse server does.
    pub(crate) fn apply_score(&mut self, score: StoredScore) {
        if let Some(trace_id) = &score.trace_id {
            self.trace_mut(trace_id);
        }
        match self.score_index.get(&score.id) {
            Some(&i) => self.scores[i] = score,
            None => {
                self.score_index.insert(score.id.clone(), self.scores.len());
                self.scores.push(score);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn later_non_null_fields_win_and_collections_merge() {
        let mut store = Store::default();
        store
            .apply_observation(ObservationPatch {
                id: "o1".into(),
                trace_id: Some("t1".into()),
                name: Some("first".into()),
                observation_type: Some("GENERATION".into()),
                default_type: "SPAN".into(),
                input: Some(json!({"q": 1})),
                metadata: [("a".to_owned(), json!(1))].into_iter().collect(),
                ..Default::default()
            })
            .expect("trace id given");
        store
            .apply_observation(ObservationPatch {
                id: "o1".into(),
                output: Some(json!("done")),
                default_type: "SPAN".into(),
                metadata: [("b".to_owned(), json!(2))].into_iter().collect(),
                ..Default::default()
            })
            .expect("observation exists");
        let obs = store.observation("o1").expect("stored");
        assert_eq!(obs.name.as_deref(), Some("first"));
        assert_eq!(obs.observation_type, "GENERATION");
        assert_eq!(obs.input, Some(json!({"q": 1})));
        assert_eq!(obs.output, Some(json!("done")));
        assert_eq!(
            obs.metadata,
            json!({"a": 1, "b": 2})
                .as_object()
                .cloned()
                .expect("object")
        );
        assert_eq!(obs.level, "DEFAULT");
        assert_eq!(obs.writes, 2);
        assert!(store.trace("t1").is_some());
    }

    #[test]
    fn unknown_observation_without_trace_id_is_rejected() {
        let mut store = Store::default();
        let result = store.apply_observation(ObservationPatch {
            id: "o1".into(),
            ..Default::default()
        });
        assert_eq!(result, Err(ApplyError::MissingTraceId));
        assert!(store.observations().is_empty());
    }

    #[test]
    fn explicit_trace_fields_beat_fallbacks_in_either_order() {
        let mut store = Store::default();
        store.apply_trace(TracePatch {
            id: "t".into(),
            fallback_name: Some("root".into()),
            fallback_input: Some(json!("root input")),
            tags: vec!["a".into()],
            ..Default::default()
        });
        store.apply_trace(TracePatch {
            id: "t".into(),
            name: Some("explicit".into()),
            input: Some(json!("explicit input")),
            tags: vec!["b".into(), "a".into()],
            ..Default::default()
        });
        store.apply_trace(TracePatch {
            id: "t".into(),
            fallback_name: Some("root again".into()),
            fallback_input: Some(json!("root input again")),
            ..Default::default()
        });
        let trace = store.trace("t").expect("stored");
        assert_eq!(trace.name.as_deref(), Some("explicit"));
        assert_eq!(trace.input, Some(json!("explicit input")));
        assert_eq!(trace.tags, vec!["a".to_owned(), "b".to_owned()]);
    }
}
