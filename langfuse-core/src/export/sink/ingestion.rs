//! The legacy batch-ingestion API (DESIGN §3.2): scores always, observations when configured.
//!
//! Each event is serialized once, with a fresh envelope id, so a retry resends the very same
//! bytes and the server can deduplicate it. A finished span or generation becomes a create
//! event (identity, start, input) and an update event (end, output, level, usage) with the same
//! body id, which also lets it carry up to twice the per-event limit without truncation; the
//! other types have no update event on the server, so they travel as one create. The first
//! observation of a trace in this process also sends the trace's one `trace-create`.
//!
//! A v4 server (LANGFUSE_SERVER.md §3.6) accepts only scores here; observations sent to it
//! are refused with a message that this module recognises and reports once.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::capture::CapturedValue;
use crate::config::Config;
use crate::diagnostics;
use crate::ids::{ObservationId, TraceId};
use crate::observation::{
    GenerationDetails, Level, Observation, ObservationType, Score, ScoreValue, TraceAttributes,
};
use crate::timestamp::rfc3339;

use crate::export::batch::{send_in_batches, Sent};
use crate::export::clip_name;
use crate::export::queue::Counters;
use crate::export::transport::{Failure, Transport};

use super::{ProjectLookup, Records, Settle, Sink};

pub(crate) const PATH: &str = "/api/public/ingestion";

/// One serialized event, and the index of the record it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    envelope_id: String,
    kind: &'static str,
    json: String,
    pub(crate) owner: usize,
}

impl Event {
    pub(crate) fn json(&self) -> &str {
        &self.json
    }
}

#[derive(Serialize)]
struct Envelope<'a, B> {
    id: &'a str,
    timestamp: String,
    #[serde(rename = "type")]
    kind: &'static str,
    body: B,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TraceBody<'a> {
    id: TraceId,
    timestamp: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    tags: &'a [String],
    #[serde(skip_serializing_if = "Map::is_empty")]
    metadata: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<&'a CapturedValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a CapturedValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    release: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<&'a str>,
}

/// The start side of an observation: who it is, where it sits, what went in.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody<'a> {
    id: ObservationId,
    trace_id: TraceId,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_observation_id: Option<ObservationId>,
    name: &'a str,
    start_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    input: Option<&'a CapturedValue>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    metadata: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_parameters: Option<&'a Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_version: Option<u32>,
}

/// The end side of an observation, for its update event.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UpdateBody<'a> {
    id: ObservationId,
    trace_id: TraceId,
    #[serde(flatten)]
    end: EndFields<'a>,
}

/// What came out and how it went.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EndFields<'a> {
    /// `None` for a point event, which has no end on the server.
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<&'a CapturedValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    level: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_details: Option<&'a std::collections::BTreeMap<String, u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cost_details: Option<&'a std::collections::BTreeMap<String, f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    completion_start_time: Option<String>,
}

/// A type without an update event on the server carries everything at once.
#[derive(Serialize)]
struct WholeBody<'a> {
    #[serde(flatten)]
    create: CreateBody<'a>,
    #[serde(flatten)]
    end: EndFields<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ScoreBody<'a> {
    id: &'a str,
    trace_id: TraceId,
    #[serde(skip_serializing_if = "Option::is_none")]
    observation_id: Option<ObservationId>,
    name: &'a str,
    value: Value,
    data_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    config_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<&'a str>,
}

pub(crate) struct IngestionEncoder {
    environment: Option<String>,
    release: Option<String>,
    public_key: Option<String>,
}

impl IngestionEncoder {
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            environment: config.environment().map(str::to_owned),
            release: config.release().map(str::to_owned),
            public_key: config.public_key().map(str::to_owned),
        }
    }

    fn push<B: Serialize>(
        out: &mut Vec<Event>,
        owner: usize,
        kind: &'static str,
        time: SystemTime,
        body: B,
    ) {
        let envelope_id = uuid::Uuid::new_v4().to_string();
        let envelope = Envelope {
            id: &envelope_id,
            timestamp: rfc3339(time),
            kind,
            body,
        };
        match serde_json::to_string(&envelope) {
            Ok(json) => out.push(Event {
                envelope_id,
                kind,
                json,
                owner,
            }),
            // Bodies hold only strings, numbers and already-serialized JSON.
            Err(error) => {
                diagnostics::warn("encode", format_args!("could not encode {kind}: {error}"))
            }
        }
    }

    /// The events for one finished observation: the trace's `trace-create` when this is its
    /// first observation in this process, then the observation's own events.
    pub(crate) fn observation(
        &self,
        observation: &Observation,
        owner: usize,
        out: &mut Vec<Event>,
    ) {
        let is_root = observation.parent_id.is_none();
        // A continued trace belongs to the service it came from; only attributes set here
        // are this process's to send.
        if is_root || (observation.remote_parent && observation.trace.is_some()) {
            let none = TraceAttributes::default();
            let trace = observation.trace.as_deref().unwrap_or(&none);
            let body = self.trace_body(observation, trace, is_root);
            Self::push(out, owner, "trace-create", observation.start_time, body);
        }
        let generation = observation.generation.as_deref();
        let is_generation = observation.kind == ObservationType::Generation;
        let prompt = generation
            .and_then(|g| g.prompt.as_ref())
            .filter(|_| is_generation);
        let create = CreateBody {
            id: observation.id,
            trace_id: observation.trace_id,
            parent_observation_id: observation.parent_id,
            name: clip_name(&observation.name),
            start_time: rfc3339(observation.start_time),
            input: observation.input.as_ref(),
            metadata: &observation.metadata,
            version: observation.version.as_deref(),
            environment: self.environment_of(observation),
            model: generation.and_then(|g| g.model.as_deref()),
            model_parameters: generation
                .map(|g| &g.model_parameters)
                .filter(|parameters| !parameters.is_empty()),
            prompt_name: prompt.map(|p| p.name.as_str()),
            prompt_version: prompt.map(|p| p.version),
        };
        let end = EndFields {
            end_time: (observation.kind != ObservationType::Event)
                .then(|| rfc3339(observation.end_time)),
            output: observation.output.as_ref(),
            level: (observation.level != Level::Default).then(|| observation.level.as_str()),
            status_message: observation.status_message.as_deref(),
            usage_details: generation
                .map(|g| &g.usage_details)
                .filter(|u| !u.is_empty()),
            cost_details: generation
                .map(|g| &g.cost_details)
                .filter(|c| !c.is_empty()),
            completion_start_time: generation
                .and_then(|g: &GenerationDetails| g.completion_start_time)
                .map(rfc3339),
        };
        let (create_kind, update_kind) = match observation.kind {
            ObservationType::Span => ("span-create", "span-update"),
            ObservationType::Generation => ("generation-create", "generation-update"),
            ObservationType::Event => ("event-create", ""),
            ObservationType::Agent => ("agent-create", ""),
            ObservationType::Tool => ("tool-create", ""),
            ObservationType::Chain => ("chain-create", ""),
            ObservationType::Retriever => ("retriever-create", ""),
            ObservationType::Evaluator => ("evaluator-create", ""),
            ObservationType::Guardrail => ("guardrail-create", ""),
            ObservationType::Embedding => ("embedding-create", ""),
        };
        if update_kind.is_empty() {
            let body = WholeBody { create, end };
            Self::push(out, owner, create_kind, observation.start_time, body);
            return;
        }
        Self::push(out, owner, create_kind, observation.start_time, create);
        let update = UpdateBody {
            id: observation.id,
            trace_id: observation.trace_id,
            end,
        };
        Self::push(out, owner, update_kind, observation.end_time, update);
    }

    fn environment_of<'a>(&'a self, observation: &'a Observation) -> Option<&'a str> {
        observation
            .trace
            .as_ref()
            .and_then(|trace| trace.environment.as_deref())
            .or(self.environment.as_deref())
    }

    /// The trace as this observation knows it; the root also lends the trace its name, input
    /// and output where the program set none.
    fn trace_body<'a>(
        &'a self,
        observation: &'a Observation,
        trace: &'a TraceAttributes,
        is_root: bool,
    ) -> TraceBody<'a> {
        let root = |own: Option<&'a CapturedValue>| own.filter(|_| is_root);
        TraceBody {
            id: observation.trace_id,
            timestamp: rfc3339(observation.start_time),
            name: trace
                .name
                .as_deref()
                .or_else(|| is_root.then_some(&*observation.name))
                .map(clip_name),
            user_id: trace.user_id.as_deref(),
            session_id: trace.session_id.as_deref(),
            tags: &trace.tags,
            metadata: &trace.metadata,
            input: trace.input.as_ref().or(root(observation.input.as_ref())),
            output: trace.output.as_ref().or(root(observation.output.as_ref())),
            public: trace.public,
            release: trace.release.as_deref().or(self.release.as_deref()),
            version: trace.version.as_deref(),
            environment: self.environment_of(observation),
        }
    }

    pub(crate) fn score(&self, score: &Score, owner: usize, out: &mut Vec<Event>) {
        let value = match &score.value {
            ScoreValue::Numeric(number) => {
                serde_json::Number::from_f64(*number).map_or(Value::Null, Value::Number)
            }
            ScoreValue::Categorical(label) => Value::String(label.clone()),
            ScoreValue::Boolean(flag) => Value::from(u8::from(*flag)),
        };
        let body = ScoreBody {
            id: &score.id,
            trace_id: score.trace_id,
            observation_id: score.observation_id,
            name: &score.name,
            value,
            data_type: score.value.data_type(),
            comment: score.comment.as_deref(),
            config_id: score.config_id.as_deref(),
            environment: self.environment.as_deref(),
        };
        Self::push(out, owner, "score-create", score.timestamp, body);
    }

    fn request_body(&self, events: &[Event]) -> Bytes {
        let mut body =
            String::with_capacity(events.iter().map(|e| e.json.len() + 1).sum::<usize>() + 200);
        body.push_str("{\"batch\":[");
        for (i, event) in events.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&event.json);
        }
        body.push_str("],\"metadata\":");
        let metadata = serde_json::json!({
            "batch_size": events.len(),
            "sdk_name": "langfuse-observe",
            "sdk_version": env!("CARGO_PKG_VERSION"),
            "sdk_integration": "rust",
            "public_key": self.public_key,
        });
        body.push_str(&metadata.to_string());
        body.push('}');
        Bytes::from(body)
    }
}

#[derive(Deserialize, Default)]
struct BatchResponse {
    #[serde(default)]
    errors: Vec<EventError>,
}

#[derive(Deserialize)]
struct EventError {
    id: String,
    status: u16,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    error: Option<Value>,
}

/// Langfuse answers every batch it got as far as reading with `{successes, errors}`.
fn is_batch_answer(answer: &Value) -> bool {
    ["successes", "errors"]
        .iter()
        .any(|key| answer.get(key).is_some_and(Value::is_array))
}

fn retryable(status: u16) -> bool {
    matches!(status, 408 | 429 | 500..=599)
}

/// The batch-ingestion API as a destination: observations (for v2 and v3 servers) and scores.
pub(crate) struct IngestionSink {
    encoder: IngestionEncoder,
    transport: Arc<Transport>,
    max_batch: usize,
    /// Whether a v4 server's refusal of observations was reported already.
    refusal_reported: AtomicBool,
}

impl IngestionSink {
    pub(crate) fn new(config: &Config, transport: Arc<Transport>) -> Self {
        Self {
            encoder: IngestionEncoder::new(config),
            transport,
            max_batch: config.flush_at(),
            refusal_reported: AtomicBool::new(false),
        }
    }

    /// Sends `observations` and `scores` (each with the queue bytes it holds) as events and
    /// settles every record once all its events are answered.
    pub(crate) async fn send(
        &self,
        observations: &[(Observation, usize)],
        scores: &[(Score, usize)],
        settle: &Settle<'_>,
    ) {
        let owners = observations.len() + scores.len();
        if owners == 0 {
            return;
        }
        let mut events = Vec::new();
        for (owner, (observation, _)) in observations.iter().enumerate() {
            self.encoder.observation(observation, owner, &mut events);
        }
        for (owner, (score, _)) in scores.iter().enumerate() {
            self.encoder
                .score(score, observations.len() + owner, &mut events);
        }
        let failed = self.deliver(events, owners, settle.counters()).await;
        let sizes = observations.iter().map(|(_, size)| size);
        let sizes = sizes.chain(scores.iter().map(|(_, size)| size));
        let (mut exported, mut failures, mut bytes) = (0, 0, 0);
        for (failed, size) in failed.into_iter().zip(sizes) {
            if failed {
                failures += 1;
            } else {
                exported += 1;
            }
            bytes += size;
        }
        settle.settle(exported, failures, bytes);
    }

    /// Sends `events` and returns, for each of the `owners` records, whether it failed.
    ///
    /// Per-event errors in a 207 answer are logged with the server's message; only events that
    /// failed with a retryable status are sent again, with their original envelope ids.
    async fn deliver(&self, events: Vec<Event>, owners: usize, counters: &Counters) -> Vec<bool> {
        let mut failed = vec![false; owners];
        let transport = &self.transport;
        let size = |event: &Event| event.json.len() + 1;
        send_in_batches(
            events,
            size,
            self.max_batch,
            async |batch: Vec<Event>, round| {
                // Never gzipped: this route parses the body as JSON without undoing
                // Content-Encoding.
                let payload = crate::export::payload(
                    self.encoder.request_body(&batch),
                    "application/json",
                    false,
                    distinct_owners(&batch),
                );
                match transport
                    .post(PATH, &payload, counters, is_batch_answer)
                    .await
                {
                    Ok(answer) => {
                        let response: BatchResponse =
                            serde_json::from_value(answer).unwrap_or_default();
                        let errors: HashMap<&str, &EventError> =
                            response.errors.iter().map(|e| (e.id.as_str(), e)).collect();
                        let mut again = Vec::new();
                        for event in batch {
                            let Some(error) = errors.get(event.envelope_id.as_str()) else {
                                continue;
                            };
                            if retryable(error.status) && round < transport.max_retries() {
                                again.push(event);
                                continue;
                            }
                            failed[event.owner] = true;
                            if refused_by_v4_server(error) {
                                report_refusal(&self.refusal_reported, event.kind);
                                continue;
                            }
                            diagnostics::warn(
                                "event-rejected",
                                format_args!(
                                    "Langfuse rejected a {} event (HTTP {}): {}",
                                    event.kind,
                                    error.status,
                                    error_text(error)
                                ),
                            );
                        }
                        if !again.is_empty() {
                            Counters::add(&counters.retried, distinct_owners(&again));
                            tokio::time::sleep(transport.backoff_delay(round)).await;
                        }
                        Sent::Again(again)
                    }
                    Err(Failure::TooLarge) if batch.len() > 1 => Sent::TooLarge(batch),
                    Err(failure) => {
                        if !matches!(failure, Failure::Unauthorized(_)) {
                            diagnostics::warn(
                                "ingestion-failed",
                                format_args!(
                                    "{} ingestion events could not be delivered: {}",
                                    batch.len(),
                                    failure.describe()
                                ),
                            );
                        }
                        for event in batch {
                            failed[event.owner] = true;
                        }
                        Sent::Settled
                    }
                }
            },
        )
        .await;
        failed
    }
}

impl Sink for IngestionSink {
    async fn deliver(&mut self, records: Records, settle: &Settle<'_>) {
        self.send(&records.observations, &records.scores, settle)
            .await;
    }

    fn project_id(&self) -> Option<ProjectLookup> {
        Some(Box::pin(self.transport.project_id()))
    }
}

/// The text a v4 server (`events_only`) gives every event type but scores and logs.
fn refused_by_v4_server(error: &EventError) -> bool {
    matches!(&error.error, Some(Value::String(text)) if text.contains("only accepts score and log events"))
}

fn report_refusal(reported: &AtomicBool, kind: &str) {
    diagnostics::error_once(
        reported,
        format_args!(
            "this Langfuse server (v4) accepts only scores on /api/public/ingestion and refused \
             a {kind} event: observations sent with LANGFUSE_EXPORTER=ingestion are lost. Use \
             LANGFUSE_EXPORTER=otlp (the default) for this server; the ingestion exporter is \
             for Langfuse v2 and v3 servers. Refused records are counted as failed in stats()."
        ),
    );
}

/// Records behind `events`: `retried` counts records, and one record is several events.
fn distinct_owners(events: &[Event]) -> usize {
    let mut owners: Vec<usize> = events.iter().map(|event| event.owner).collect();
    owners.sort_unstable();
    owners.dedup();
    owners.len()
}

fn error_text(error: &EventError) -> String {
    let message = error.message.as_deref().unwrap_or("no message");
    match &error.error {
        Some(Value::String(detail)) => format!("{message}: {detail}"),
        Some(detail) if !detail.is_null() => format!("{message}: {detail}"),
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::{PromptRef, ScoreValue};
    use std::sync::Arc;

    fn encoder() -> IngestionEncoder {
        IngestionEncoder {
            environment: Some("test".into()),
            release: Some("r1".into()),
            public_key: None,
        }
    }

    fn parse(event: &Event) -> Value {
        serde_json::from_str(&event.json).unwrap()
    }

    #[test]
    fn an_observation_becomes_create_and_update_with_one_body_id() {
        let mut obs = Observation::new(TraceId::random(), ObservationId::random(), "llm");
        obs.kind = ObservationType::Generation;
        obs.input = Some(CapturedValue::text("hi"));
        obs.output = Some(CapturedValue::json(&serde_json::json!({"a": 1})));
        obs.level = Level::Error;
        obs.status_message = Some("boom".into());
        let mut generation = GenerationDetails {
            model: Some("gpt".into()),
            prompt: Some(PromptRef {
                name: "p".into(),
                version: 2,
            }),
            ..GenerationDetails::default()
        };
        generation.usage_details.insert("input".into(), 3);
        obs.generation = Some(Box::new(generation));
        obs.trace = Some(Arc::new(TraceAttributes {
            session_id: Some("s".into()),
            ..TraceAttributes::default()
        }));
        obs.parent_id = Some(ObservationId::random());
        let mut events = Vec::new();
        encoder().observation(&obs, 0, &mut events);
        assert_eq!(
            events[0].kind, "generation-create",
            "a child sends no trace-create, even when it carries trace attributes"
        );
        obs.parent_id = None;
        events.clear();
        encoder().observation(&obs, 0, &mut events);
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            ["trace-create", "generation-create", "generation-update"]
        );
        let [trace, create, update] = [parse(&events[0]), parse(&events[1]), parse(&events[2])];
        assert_eq!(trace["body"]["sessionId"], "s");
        assert_eq!(trace["body"]["release"], "r1");
        assert_eq!(trace["body"]["name"], "llm", "the root names the trace");
        assert_eq!(
            trace["body"]["input"], "hi",
            "the root's input is the trace's"
        );
        assert_eq!(trace["body"]["output"]["a"], 1);
        assert_eq!(create["body"]["id"], update["body"]["id"]);
        assert_ne!(
            create["id"], update["id"],
            "each event has its own envelope id"
        );
        assert_eq!(create["body"]["input"], "hi");
        assert_eq!(create["body"]["promptVersion"], 2);
        assert_eq!(create["body"]["environment"], "test");
        assert_eq!(update["body"]["output"]["a"], 1);
        assert_eq!(update["body"]["level"], "ERROR");
        assert_eq!(update["body"]["usageDetails"]["input"], 3);
    }

    #[test]
    fn types_without_an_update_event_travel_whole_in_their_own_create() {
        let mut obs = Observation::new(TraceId::random(), ObservationId::random(), "search");
        obs.parent_id = Some(ObservationId::random());
        obs.output = Some(CapturedValue::text("found"));
        obs.generation = Some(Box::new(GenerationDetails {
            prompt: Some(PromptRef {
                name: "p".into(),
                version: 1,
            }),
            ..GenerationDetails::default()
        }));
        for (kind, event_type) in [
            (ObservationType::Tool, "tool-create"),
            (ObservationType::Agent, "agent-create"),
            (ObservationType::Embedding, "embedding-create"),
        ] {
            obs.kind = kind;
            let mut events = Vec::new();
            encoder().observation(&obs, 0, &mut events);
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].kind, event_type);
            let body = &parse(&events[0])["body"];
            assert_eq!(body["output"], "found");
            assert!(body["endTime"].is_string());
            assert!(
                body.get("promptName").is_none(),
                "prompts link generations only"
            );
        }
        obs.kind = ObservationType::Event;
        let mut events = Vec::new();
        encoder().observation(&obs, 0, &mut events);
        let body = &parse(&events[0])["body"];
        assert_eq!(events[0].kind, "event-create");
        assert!(body.get("endTime").is_none(), "an event has no end");
    }

    #[test]
    fn a_root_without_trace_attributes_still_sends_its_trace_once() {
        let mut root = Observation::new(TraceId::random(), ObservationId::random(), "job");
        root.input = Some(CapturedValue::text("in"));
        let mut events = Vec::new();
        encoder().observation(&root, 0, &mut events);
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["trace-create", "span-create", "span-update"]);
        let trace = parse(&events[0]);
        assert_eq!(trace["body"]["name"], "job");
        assert_eq!(trace["body"]["input"], "in");
        assert_eq!(trace["body"]["environment"], "test");

        // The first observation here of a trace continued from elsewhere sends only what
        // was set here, and only when something was.
        let mut continued = Observation::new(root.trace_id, ObservationId::random(), "step");
        continued.parent_id = Some(ObservationId::random());
        continued.remote_parent = true;
        events.clear();
        encoder().observation(&continued, 0, &mut events);
        assert_eq!(events[0].kind, "span-create");
        continued.trace = Some(Arc::new(TraceAttributes {
            user_id: Some("u".into()),
            ..TraceAttributes::default()
        }));
        events.clear();
        encoder().observation(&continued, 0, &mut events);
        let trace = parse(&events[0]);
        assert_eq!(events[0].kind, "trace-create");
        assert_eq!(trace["body"]["userId"], "u");
        assert!(trace["body"].get("name").is_none());
    }

    #[test]
    fn names_are_cut_to_what_langfuse_accepts() {
        let long = "n".repeat(1500);
        let obs = Observation::new(TraceId::random(), ObservationId::random(), long);
        let mut events = Vec::new();
        encoder().observation(&obs, 0, &mut events);
        for event in &events[..2] {
            let name = parse(event)["body"]["name"].as_str().unwrap().to_owned();
            assert_eq!(name.chars().count(), 1000);
        }
    }

    #[test]
    fn scores_carry_their_data_type() {
        let trace = TraceId::random();
        let mut events = Vec::new();
        for value in [
            ScoreValue::Numeric(0.5),
            ScoreValue::Categorical("good".into()),
            ScoreValue::Boolean(true),
        ] {
            encoder().score(&Score::new(trace, "q", value), 0, &mut events);
        }
        let bodies: Vec<Value> = events.iter().map(|e| parse(e)["body"].clone()).collect();
        assert_eq!(bodies[0]["value"], 0.5);
        assert_eq!(bodies[0]["dataType"], "NUMERIC");
        assert_eq!(bodies[1]["value"], "good");
        assert_eq!(bodies[1]["dataType"], "CATEGORICAL");
        assert_eq!(bodies[2]["value"], 1);
        assert_eq!(bodies[2]["dataType"], "BOOLEAN");
    }
}
