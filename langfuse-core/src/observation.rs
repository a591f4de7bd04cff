//! The in-memory records handed to the exporter: finished observations, the trace attributes
//! they carry, and scores.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde_json::{Map, Value};

use crate::capture::CapturedValue;
use crate::config::Mask;
use crate::ids::{ObservationId, TraceId};

/// What kind of step an observation is; Langfuse renders each type differently.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ObservationType {
    /// A unit of work (the default).
    #[default]
    Span,
    /// A call to a model, with model name, parameters and usage.
    Generation,
    /// A point in time, without duration.
    Event,
    /// An agent deciding which steps to take.
    Agent,
    /// A tool called by an agent or model.
    Tool,
    /// A chain linking several steps.
    Chain,
    /// A retrieval step, such as a vector store lookup.
    Retriever,
    /// A step that evaluates another step's output.
    Evaluator,
    /// A safety or policy check.
    Guardrail,
    /// A call to an embedding model.
    Embedding,
}

impl ObservationType {
    /// Every type, in the order Langfuse documents them.
    pub const ALL: [ObservationType; 10] = [
        Self::Span,
        Self::Generation,
        Self::Event,
        Self::Agent,
        Self::Tool,
        Self::Chain,
        Self::Retriever,
        Self::Evaluator,
        Self::Guardrail,
        Self::Embedding,
    ];

    /// The lowercase name used on the wire (`"span"`, `"generation"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Span => "span",
            Self::Generation => "generation",
            Self::Event => "event",
            Self::Agent => "agent",
            Self::Tool => "tool",
            Self::Chain => "chain",
            Self::Retriever => "retriever",
            Self::Evaluator => "evaluator",
            Self::Guardrail => "guardrail",
            Self::Embedding => "embedding",
        }
    }

    /// Parses the lowercase wire name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

impl fmt::Display for ObservationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Severity of an observation; `Error` marks it red in Langfuse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Verbose detail.
    Debug,
    /// Normal (the default).
    #[default]
    Default,
    /// Something unusual, such as a cancelled call.
    Warning,
    /// A failure.
    Error,
}

impl Level {
    /// The uppercase name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "DEBUG",
            Self::Default => "DEFAULT",
            Self::Warning => "WARNING",
            Self::Error => "ERROR",
        }
    }
}

/// A prompt managed in Langfuse that a generation used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PromptRef {
    /// The prompt's name.
    pub name: String,
    /// The prompt's version.
    pub version: u32,
}

impl PromptRef {
    /// A link to version `version` of the prompt `name`. A fetched
    /// [`Prompt`](crate::prompt::Prompt) gives its own with `link()`.
    pub fn new(name: impl Into<String>, version: u32) -> Self {
        Self {
            name: name.into(),
            version,
        }
    }
}

/// What only a generation has: model, parameters, usage and cost.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct GenerationDetails {
    /// The model name, e.g. `"gpt-4o"`.
    pub model: Option<String>,
    /// Parameters such as temperature or max tokens.
    pub model_parameters: Map<String, Value>,
    /// Token counts by kind (`"input"`, `"output"`, `"total"`, or provider-specific keys).
    pub usage_details: BTreeMap<String, u64>,
    /// Costs in USD by kind.
    pub cost_details: BTreeMap<String, f64>,
    /// When the first token arrived.
    pub completion_start_time: Option<SystemTime>,
    /// The managed prompt used.
    pub prompt: Option<PromptRef>,
}

/// Attributes of the whole trace. Any observation may carry them; the last value set wins.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct TraceAttributes {
    /// The trace's name (else the root observation's name).
    pub name: Option<String>,
    /// The end user the trace belongs to.
    pub user_id: Option<String>,
    /// The session (conversation, thread) the trace belongs to.
    pub session_id: Option<String>,
    /// Tags for filtering.
    pub tags: Vec<String>,
    /// Metadata, merged by key.
    pub metadata: Map<String, Value>,
    /// The application version.
    pub version: Option<String>,
    /// The release, overriding the configured one.
    pub release: Option<String>,
    /// The trace's input (else the root observation's).
    pub input: Option<CapturedValue>,
    /// The trace's output (else the root observation's).
    pub output: Option<CapturedValue>,
    /// Whether the trace can be viewed through a public link.
    pub public: Option<bool>,
    /// The environment (e.g. `production`), overriding the configured one for this trace.
    pub environment: Option<String>,
}

impl TraceAttributes {
    /// Whether no attribute is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    fn estimated_size(&self) -> usize {
        [
            &self.name,
            &self.user_id,
            &self.session_id,
            &self.version,
            &self.release,
            &self.environment,
        ]
        .into_iter()
        .map(|field| field.as_ref().map_or(0, String::len))
        .sum::<usize>()
            + self.tags.iter().map(String::len).sum::<usize>()
            + map_size(&self.metadata)
            + self.input.as_ref().map_or(0, CapturedValue::len)
            + self.output.as_ref().map_or(0, CapturedValue::len)
    }
}

/// One finished observation, ready for export.
///
/// ```
/// use std::time::SystemTime;
/// use langfuse_observe_core::ids::{ObservationId, TraceId};
/// use langfuse_observe_core::observation::{Observation, ObservationType};
///
/// let mut step = Observation::new(TraceId::random(), ObservationId::random(), "retrieve");
/// step.kind = ObservationType::Retriever;
/// step.end_time = SystemTime::now();
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Observation {
    /// The trace it belongs to.
    pub trace_id: TraceId,
    /// Its own id.
    pub id: ObservationId,
    /// The enclosing observation; `None` for the trace's root.
    pub parent_id: Option<ObservationId>,
    /// Whether `parent_id` is an observation of another service, as in a trace continued from
    /// a `traceparent` header: this observation is then the first of the trace in this process.
    pub remote_parent: bool,
    /// Its name, by default the function's name.
    pub name: Cow<'static, str>,
    /// Its type.
    pub kind: ObservationType,
    /// When it started.
    pub start_time: SystemTime,
    /// When it ended.
    pub end_time: SystemTime,
    /// The recorded input.
    pub input: Option<CapturedValue>,
    /// The recorded output.
    pub output: Option<CapturedValue>,
    /// Metadata by key.
    pub metadata: Map<String, Value>,
    /// Its severity.
    pub level: Level,
    /// A message explaining the level, such as an error's text.
    pub status_message: Option<String>,
    /// The application version.
    pub version: Option<String>,
    /// Model, usage and cost, for generations.
    pub generation: Option<Box<GenerationDetails>>,
    /// Trace attributes this observation delivers.
    pub trace: Option<Arc<TraceAttributes>>,
}

impl Observation {
    /// A span named `name` that starts and ends now; set the other fields as needed.
    pub fn new(trace_id: TraceId, id: ObservationId, name: impl Into<Cow<'static, str>>) -> Self {
        let now = SystemTime::now();
        Self {
            trace_id,
            id,
            parent_id: None,
            remote_parent: false,
            name: name.into(),
            kind: ObservationType::Span,
            start_time: now,
            end_time: now,
            input: None,
            output: None,
            metadata: Map::new(),
            level: Level::Default,
            status_message: None,
            version: None,
            generation: None,
            trace: None,
        }
    }

    /// Approximate bytes this record occupies and sends; used for queue and batch limits.
    pub fn estimated_size(&self) -> usize {
        const FIXED: usize = 160;
        FIXED
            + self.name.len()
            + self.input.as_ref().map_or(0, CapturedValue::len)
            + self.output.as_ref().map_or(0, CapturedValue::len)
            + map_size(&self.metadata)
            + self.status_message.as_ref().map_or(0, String::len)
            + self.version.as_ref().map_or(0, String::len)
            + self.generation.as_ref().map_or(0, |g| {
                g.model.as_ref().map_or(0, String::len)
                    + map_size(&g.model_parameters)
                    + 24 * (g.usage_details.len() + g.cost_details.len())
            })
            + self.trace.as_ref().map_or(0, |t| t.estimated_size())
    }

    /// Cuts input, output and metadata (its own and the trace's it carries), largest first and
    /// at most by half at a time, until the record fits in `max_bytes`
    /// or nothing is left to cut. Cut values end with
    /// [`TRUNCATION_MARKER`](crate::capture::TRUNCATION_MARKER). Returns whether anything was cut.
    pub fn truncate_to(&mut self, max_bytes: usize) -> bool {
        let mut cut = false;
        loop {
            let size = self.estimated_size();
            if size <= max_bytes {
                return cut;
            }
            let excess = size - max_bytes;
            let trace = self.trace.as_deref();
            let sizes = [
                self.input.as_ref().map_or(0, CapturedValue::len),
                self.output.as_ref().map_or(0, CapturedValue::len),
                map_size(&self.metadata),
                trace
                    .and_then(|t| t.input.as_ref())
                    .map_or(0, CapturedValue::len),
                trace
                    .and_then(|t| t.output.as_ref())
                    .map_or(0, CapturedValue::len),
                trace.map_or(0, |t| map_size(&t.metadata)),
            ];
            let (largest, &field_size) = sizes
                .iter()
                .enumerate()
                .max_by_key(|(_, size)| **size)
                .unwrap_or((0, &0));
            // At most half of the largest field at a time, so that two large fields share
            // the cut instead of the first one losing everything.
            let keep = field_size.saturating_sub(excess).max(field_size / 2);
            let shrunk = match largest {
                0 => self.input.as_mut().is_some_and(|v| v.truncate(keep)),
                1 => self.output.as_mut().is_some_and(|v| v.truncate(keep)),
                2 => truncate_metadata(&mut self.metadata, keep),
                field => {
                    // Shared with the other records of the trace: this one gets its own copy.
                    let trace = self.trace.as_mut().map(Arc::make_mut);
                    trace.is_some_and(|trace| match field {
                        3 => trace.input.as_mut().is_some_and(|v| v.truncate(keep)),
                        4 => trace.output.as_mut().is_some_and(|v| v.truncate(keep)),
                        _ => truncate_metadata(&mut trace.metadata, keep),
                    })
                }
            };
            if !shrunk {
                return cut;
            }
            cut = true;
        }
    }
}

/// Replaces `metadata` by `{"truncated": "<its JSON, cut>"}` when that is smaller; keys count,
/// so huge keys are cut too.
fn truncate_metadata(metadata: &mut Map<String, Value>, keep: usize) -> bool {
    const KEY: &str = "truncated";
    let before = map_size(metadata);
    let mut whole = CapturedValue::json(&*metadata);
    whole.truncate(keep.saturating_sub(KEY.len() + 6));
    let replacement = Map::from_iter([(KEY.to_owned(), Value::String(whole.as_str().to_owned()))]);
    if map_size(&replacement) >= before {
        return false;
    }
    *metadata = replacement;
    true
}

impl Observation {
    /// Runs the user's mask over every input, output and metadata value of this record and of
    /// the trace attributes it carries. A panicking mask replaces the value with a marker.
    pub(crate) fn mask(&mut self, mask: &Mask) {
        mask_value(mask, &mut self.input);
        mask_value(mask, &mut self.output);
        mask_map(mask, &mut self.metadata);
        if let Some(trace) = self.trace.as_mut() {
            let trace = Arc::make_mut(trace);
            mask_value(mask, &mut trace.input);
            mask_value(mask, &mut trace.output);
            mask_map(mask, &mut trace.metadata);
        }
    }
}

const MASK_FAILED: &str = "<masked: the mask function panicked>";

fn apply_mask(mask: &Mask, value: Value) -> Value {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| mask(value)))
        .unwrap_or_else(|_| Value::String(MASK_FAILED.to_owned()))
}

fn mask_value(mask: &Mask, value: &mut Option<CapturedValue>) {
    if let Some(captured) = value.as_mut() {
        *captured = CapturedValue::json(&apply_mask(mask, captured.to_json_value()));
    }
}

fn mask_map(mask: &Mask, map: &mut Map<String, Value>) {
    if map.is_empty() {
        return;
    }
    let object = Value::Object(std::mem::take(map));
    *map = match apply_mask(mask, object) {
        Value::Object(masked) => masked,
        other => Map::from_iter([("masked".to_owned(), other)]),
    };
}

/// How a score's value is typed in Langfuse.
#[derive(Clone, Debug, PartialEq)]
pub enum ScoreValue {
    /// A number (`dataType` NUMERIC).
    Numeric(f64),
    /// A label (`dataType` CATEGORICAL).
    Categorical(String),
    /// True or false (`dataType` BOOLEAN, sent as 1 or 0).
    Boolean(bool),
}

/// The value as a person reads it: `0.8`, `true`, `"helpful"`.
impl fmt::Display for ScoreValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Numeric(number) => write!(f, "{number}"),
            Self::Categorical(label) => write!(f, "{label:?}"),
            Self::Boolean(flag) => write!(f, "{flag}"),
        }
    }
}

impl ScoreValue {
    /// The `dataType` name on the wire.
    pub fn data_type(&self) -> &'static str {
        match self {
            Self::Numeric(_) => "NUMERIC",
            Self::Categorical(_) => "CATEGORICAL",
            Self::Boolean(_) => "BOOLEAN",
        }
    }
}

/// An evaluation attached to a trace or one of its observations.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Score {
    /// The score's id; scores with the same id update each other.
    pub id: String,
    /// The scored trace.
    pub trace_id: TraceId,
    /// The scored observation, if the score is not about the whole trace.
    pub observation_id: Option<ObservationId>,
    /// The score's name, e.g. `"relevance"`.
    pub name: String,
    /// Its value.
    pub value: ScoreValue,
    /// A free-text comment.
    pub comment: Option<String>,
    /// The id of a score configuration defined in Langfuse.
    pub config_id: Option<String>,
    /// When it was recorded.
    pub timestamp: SystemTime,
}

impl Score {
    /// A score of the trace `trace_id` with a fresh id.
    pub fn new(trace_id: TraceId, name: impl Into<String>, value: ScoreValue) -> Self {
        Self {
            id: uuid::Uuid::new_v4().to_string(),
            trace_id,
            observation_id: None,
            name: name.into(),
            value,
            comment: None,
            config_id: None,
            timestamp: SystemTime::now(),
        }
    }

    /// Why Langfuse would refuse this score, if it would: the server requires a name and a
    /// value that fits the data type, and drops a score without an id.
    pub(crate) fn problem(&self) -> Option<&'static str> {
        if self.name.trim().is_empty() {
            return Some("it has no name");
        }
        if self.id.is_empty() {
            return Some("its id is empty");
        }
        match &self.value {
            ScoreValue::Numeric(value) if !value.is_finite() => {
                Some("its value is not a finite number")
            }
            _ => None,
        }
    }

    /// Approximate bytes this record occupies and sends.
    pub fn estimated_size(&self) -> usize {
        const FIXED: usize = 200;
        FIXED
            + self.name.len()
            + self.comment.as_ref().map_or(0, String::len)
            + match &self.value {
                ScoreValue::Categorical(label) => label.len(),
                _ => 0,
            }
    }
}

fn map_size(map: &Map<String, Value>) -> usize {
    if map.is_empty() {
        return 0;
    }
    map.iter()
        .map(|(key, value)| key.len() + 4 + value_size(value))
        .sum()
}

fn value_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 8,
        Value::String(text) => text.len() + 2,
        Value::Array(items) => items.iter().map(|item| value_size(item) + 1).sum::<usize>() + 2,
        Value::Object(map) => map_size(map) + 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::TRUNCATION_MARKER;

    #[test]
    fn types_round_trip_through_their_wire_names() {
        for kind in ObservationType::ALL {
            assert_eq!(ObservationType::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(ObservationType::parse("SPAN"), None);
    }

    #[test]
    fn score_values_read_as_values() {
        let shown: Vec<String> = [
            ScoreValue::Numeric(0.8),
            ScoreValue::Boolean(true),
            ScoreValue::Categorical("rag".into()),
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        assert_eq!(shown, ["0.8", "true", "\"rag\""]);
    }

    #[test]
    fn truncation_reaches_the_trace_input_and_output_the_record_carries() {
        let mut obs = Observation::new(TraceId::random(), ObservationId::random(), "step");
        let trace = Arc::new(TraceAttributes {
            input: Some(CapturedValue::text("t".repeat(10_000))),
            output: Some(CapturedValue::text("u".repeat(3_000))),
            ..TraceAttributes::default()
        });
        obs.trace = Some(Arc::clone(&trace));
        assert!(obs.truncate_to(4_000));
        assert!(obs.estimated_size() <= 4_000);
        let carried = obs.trace.as_ref().unwrap();
        assert!(carried
            .input
            .as_ref()
            .unwrap()
            .as_str()
            .ends_with(TRUNCATION_MARKER));
        assert_eq!(
            trace.input.as_ref().unwrap().len(),
            10_000,
            "the other records of the trace keep their own copy"
        );
    }

    #[test]
    fn truncation_cuts_the_largest_field_first() {
        let mut obs = Observation::new(TraceId::random(), ObservationId::random(), "big");
        obs.input = Some(CapturedValue::text("i".repeat(5_000)));
        obs.output = Some(CapturedValue::text("o".repeat(500)));
        obs.metadata
            .insert("k".into(), Value::String("m".repeat(300)));
        assert!(obs.truncate_to(2_000));
        assert!(obs.estimated_size() <= 2_000);
        let input = obs.input.as_ref().unwrap().as_str();
        assert!(input.ends_with(TRUNCATION_MARKER));
        assert_eq!(
            obs.output.as_ref().unwrap().len(),
            500,
            "smaller fields are kept"
        );
        assert!(!obs.truncate_to(2_000), "already fits");
    }

    #[test]
    fn truncation_reaches_metadata_when_it_is_the_largest() {
        let mut obs = Observation::new(TraceId::random(), ObservationId::random(), "meta");
        obs.metadata
            .insert("blob".into(), Value::String("x".repeat(10_000)));
        assert!(obs.truncate_to(1_000));
        assert!(obs.estimated_size() <= 1_000);
        assert!(obs.metadata["truncated"]
            .as_str()
            .unwrap()
            .ends_with(TRUNCATION_MARKER));
    }
}
