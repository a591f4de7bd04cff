//! The Langfuse-shaped view of what arrived (traces, observations and scores as the server
//! stores them) plus the raw facts about each request.
//!
//! Which tables exist depends on the [`ServerMode`]: the legacy tables merged event by event
//! (v3), or one `events_full` row per span with the trace derived at query time (v4). Scores are
//! merged the same way in both.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::SystemTime;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde_json::{Map, Value};

use crate::legacy::{MergeEvent, Table};
use crate::otlp::{self, Export};
use crate::schema::{Content, Entity, Record, ValidEvent};
use crate::time;

/// Which Langfuse deployment the server imitates (LANGFUSE_SERVER.md §0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerMode {
    /// Langfuse 4.16 as it ships: `LANGFUSE_MIGRATION_V4_WRITE_MODE=events_only` with direct
    /// OTLP writes. `/api/public/ingestion` accepts only `score-create` and `sdk-log` (every
    /// other event gets the §3.6 error in the 207); each OTLP span becomes one `events_full` row
    /// with no merge, a re-export replaces the whole row, and a trace is derived from its rows
    /// at query time (§5).
    #[default]
    LangfuseV4,
    /// The v3 line (`legacy` write mode): ingestion accepts every event type, and OTLP spans are
    /// converted into ingestion events (validated with the same schemas) and merged into the
    /// legacy `traces` / `observations` tables (§3.7, §4.14).
    LangfuseV3,
}

impl ServerMode {
    /// The version `GET /api/public/health` reports.
    pub fn version(self) -> &'static str {
        match self {
            ServerMode::LangfuseV4 => "4.16.0",
            ServerMode::LangfuseV3 => "3.112.0",
        }
    }
}

/// A score configuration the project has, for scores sent with a `configId` (§6.2).
///
/// Without a matching configuration the server drops such a score without a word, as Langfuse
/// does; with one, the score takes the configuration's name and must fit its data type, range
/// and categories.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreConfig {
    id: String,
    name: String,
    data_type: String,
    min_value: Option<f64>,
    max_value: Option<f64>,
    categories: Vec<(String, f64)>,
    archived: bool,
}

impl ScoreConfig {
    /// A configuration with this id, name and data type (`NUMERIC`, `CATEGORICAL`, `BOOLEAN` or
    /// `TEXT`).
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        data_type: impl Into<String>,
    ) -> Self {
        ScoreConfig {
            id: id.into(),
            name: name.into(),
            data_type: data_type.into(),
            min_value: None,
            max_value: None,
            categories: Vec::new(),
            archived: false,
        }
    }

    /// The range a NUMERIC score must fall in (either bound may be open).
    pub fn range(mut self, min: Option<f64>, max: Option<f64>) -> Self {
        self.min_value = min;
        self.max_value = max;
        self
    }

    /// A category of a CATEGORICAL configuration: its label and the number stored as the value.
    pub fn category(mut self, label: impl Into<String>, value: f64) -> Self {
        self.categories.push((label.into(), value));
        self
    }

    /// Marks the configuration archived: scores using it are dropped.
    pub fn archived(mut self) -> Self {
        self.archived = true;
        self
    }
}

/// Things the project has besides the data an SDK sends: prompts (for legacy prompt links,
/// §4.13) and score configurations (§6.2).
#[derive(Clone, Debug, Default)]
pub(crate) struct Catalog {
    pub(crate) prompts: crate::prompts::PromptLibrary,
    pub(crate) score_configs: Vec<ScoreConfig>,
}

impl Catalog {
    /// The id of an existing prompt version; version 0 never resolves (inferred).
    pub(crate) fn prompt_id(&self, name: &str, version: i64) -> Option<String> {
        (version != 0 && self.prompts.exists(name, version))
            .then(|| format!("prompt-{name}-{version}"))
    }
}

/// A trace as the Langfuse API would show it.
///
/// In [`ServerMode::LangfuseV3`] it is the legacy `traces` row, merged from every trace event
/// (§3.7, §4.14); in [`ServerMode::LangfuseV4`] it is derived from the trace's observation rows
/// (§5.2).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StoredTrace {
    /// The trace id exactly as stored (lower-case hex for protobuf ids, as sent for JSON).
    pub id: String,
    /// v3: immutable after the first event; v4: the earliest start time of its rows.
    pub timestamp: Option<SystemTime>,
    /// v3: merged (root span name as a fallback); v4: latest non-empty `trace_name`, else the
    /// latest non-empty name of a root row.
    pub name: Option<String>,
    /// The user the trace belongs to.
    pub user_id: Option<String>,
    /// The session the trace belongs to.
    pub session_id: Option<String>,
    /// v3: the sorted union of every tag seen; v4: the latest non-empty tag array (no union).
    pub tags: Vec<String>,
    /// v3: merged key by key, every value a string (non-strings JSON-encoded); v4: the
    /// flattened metadata of the latest parentless row.
    pub metadata: Map<String, Value>,
    /// v3: the last truthy input; v4: the input of the latest parentless row. A string that
    /// holds JSON is shown parsed, as the Langfuse API and UI show it.
    pub input: Option<Value>,
    /// Like [`input`](Self::input).
    pub output: Option<Value>,
    /// Always `Some`: v3 stores `public ?? false` per event (a later event without it resets
    /// it); v4 is `true` if any row is public.
    pub public: Option<bool>,
    /// Always `Some`, normalised (§3.5); `default` when none was sent.
    pub environment: Option<String>,
    /// The release of the instrumented program.
    pub release: Option<String>,
    /// The version of the instrumented program.
    pub version: Option<String>,
}

/// An observation (span, generation, event, agent, tool, ...) as the server stores it: a legacy
/// `observations` row (v3) or an `events_full` row (v4).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StoredObservation {
    /// The span id exactly as stored (lower-case hex for protobuf ids), or the body id of an
    /// ingestion event.
    pub id: String,
    /// The trace this observation belongs to (empty if an ingestion event named none).
    pub trace_id: String,
    /// The enclosing observation; `None` for a root span.
    pub parent_observation_id: Option<String>,
    /// The observation's name (`gen_ai.tool.name` wins over the span name, §4.7).
    pub name: Option<String>,
    /// Upper case: `SPAN`, `GENERATION`, `EVENT`, `AGENT`, `TOOL`, `CHAIN`, `RETRIEVER`,
    /// `EVALUATOR`, `GUARDRAIL` or `EMBEDDING` (§4.6).
    pub observation_type: String,
    /// `DEBUG`, `DEFAULT`, `WARNING` or `ERROR`.
    pub level: String,
    /// Why the observation ended the way it did, usually an error message.
    pub status_message: Option<String>,
    /// Input; a string that holds JSON is shown parsed.
    pub input: Option<Value>,
    /// Output; a string that holds JSON is shown parsed.
    pub output: Option<Value>,
    /// Every value is a string. v3: top-level keys merged, non-strings JSON-encoded, with
    /// `resourceAttributes`, `scope` (and `attributes` for scopes other than `langfuse-sdk*`)
    /// as JSON strings; v4: flattened dotted paths such as `resourceAttributes.service.name`.
    pub metadata: Map<String, Value>,
    /// When the observation started (milliseconds).
    pub start_time: Option<SystemTime>,
    /// When it ended; `None` for a legacy EVENT. Missing in a span means "same as the start".
    pub end_time: Option<SystemTime>,
    /// Model name (dropped on legacy SPAN and EVENT rows, §4.11).
    pub model: Option<String>,
    /// Model parameters as an object of strings and numbers.
    pub model_parameters: Option<Value>,
    /// Usage as an object of integers; `total` is added as the sum when absent.
    pub usage_details: Option<Value>,
    /// Cost in USD.
    pub cost_details: Option<Value>,
    /// When a generation produced its first token.
    pub completion_start_time: Option<SystemTime>,
    /// Linked prompt name. v3: only when the prompt exists (see
    /// [`TestServerBuilder::prompt`](crate::TestServerBuilder::prompt)); v4: as sent.
    pub prompt_name: Option<String>,
    /// Linked prompt version, on the same terms as [`prompt_name`](Self::prompt_name).
    pub prompt_version: Option<i64>,
    /// The id of the linked prompt; v4 stores `""` for a prompt that does not exist.
    pub prompt_id: Option<String>,
    /// Always `Some`, normalised; `default` when none was sent.
    pub environment: Option<String>,
    /// The version of the instrumented program.
    pub version: Option<String>,
    /// v4 rows: the trace-level values this span itself carried (§5.1); `None` in v3.
    pub trace_name: Option<String>,
    /// v4 rows: the user id this span carried.
    pub user_id: Option<String>,
    /// v4 rows: the session id this span carried.
    pub session_id: Option<String>,
    /// v4 rows: the tags this span carried.
    pub tags: Vec<String>,
    /// v4 rows: whether this span made the trace public.
    pub public: bool,
    /// v4 rows: the release this span carried.
    pub release: Option<String>,
    /// v4 rows: `langfuse.internal.is_app_root`.
    pub is_app_root: bool,
    /// How many writes made this row: distinct ingestion envelopes and merged spans (v3), or
    /// exports of the span (v4, where each one replaced the row).
    pub writes: usize,
}

/// A score as the `scores` table keeps it (§6).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StoredScore {
    /// The score's id.
    pub id: String,
    /// The envelope timestamp of its first event (immutable).
    pub timestamp: Option<SystemTime>,
    /// The trace the score belongs to.
    pub trace_id: Option<String>,
    /// The observation the score belongs to, if any.
    pub observation_id: Option<String>,
    /// The session the score belongs to.
    pub session_id: Option<String>,
    /// The dataset run the score belongs to.
    pub dataset_run_id: Option<String>,
    /// The score's name (a configuration's name replaces it; CORRECTION is always `output`).
    pub name: String,
    /// Always a JSON number: the value of NUMERIC, 1/0 for BOOLEAN, the category's number (or 0)
    /// for CATEGORICAL, 0 for TEXT and CORRECTION.
    pub value: Value,
    /// The text of CATEGORICAL and TEXT scores, `"True"`/`"False"` for BOOLEAN.
    pub string_value: Option<String>,
    /// The text of a CORRECTION score.
    pub long_string_value: Option<String>,
    /// Always `Some`: as sent, or inferred (a number is NUMERIC, a string CATEGORICAL).
    pub data_type: Option<String>,
    /// Free-text comment.
    pub comment: Option<String>,
    /// The score configuration it follows, if any.
    pub config_id: Option<String>,
    /// Metadata as sent.
    pub metadata: Option<Value>,
    /// Normalised environment.
    pub environment: String,
    /// `API`, `EVAL` or `ANNOTATION`.
    pub source: String,
}

/// One HTTP request as the server saw it, including those that failed or were dropped.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Request path without the query string.
    pub path: String,
    /// The query string as sent (percent-encoded), if any.
    pub query: Option<String>,
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
    /// was not JSON).
    pub envelope_ids: Vec<String>,
    /// Event types of an ingestion batch, in batch order.
    pub event_types: Vec<String>,
    /// The `metadata` member of an ingestion batch.
    pub batch_metadata: Option<Value>,
    /// Span ids of an OTLP export, in the order they were sent.
    pub span_ids: Vec<String>,
    /// The answer's body (capped at 64 KiB), for checking what a client was told.
    pub response_body: String,
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

/// A string that holds JSON is shown parsed, like the Langfuse API shows stored input.
pub(crate) fn display(value: Option<&Value>) -> Option<Value> {
    match value? {
        Value::Null => None,
        Value::String(s) => {
            Some(serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.clone())))
        }
        other => Some(other.clone()),
    }
}

fn text(record: &Record, column: &str) -> Option<String> {
    record
        .get(column)
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn at(record: &Record, column: &str) -> Option<SystemTime> {
    record
        .get(column)
        .and_then(Value::as_i64)
        .map(time::to_system_time)
}

/// Usage as stored: a `total` is added as the sum of every key when absent (§3.5).
pub(crate) fn usage_with_total(usage: Option<&Value>) -> Option<Value> {
    let Some(Value::Object(map)) = usage else {
        return None;
    };
    if map.is_empty() {
        return None;
    }
    let mut map = map.clone();
    if !map.contains_key("total") {
        let sum: f64 = map.values().filter_map(Value::as_f64).sum();
        map.insert("total".into(), crate::js::json_number(sum));
    }
    Some(Value::Object(map))
}

/// Cost as stored: `total` as sent, or `input + output` when only those were sent (§3.5).
pub(crate) fn cost_with_total(cost: Option<&Value>) -> Option<Value> {
    let Some(Value::Object(map)) = cost else {
        return None;
    };
    if map.is_empty() {
        return None;
    }
    let mut map = map.clone();
    if !map.contains_key("total") && map.keys().all(|k| k == "input" || k == "output") {
        let sum: f64 = map.values().filter_map(Value::as_f64).sum();
        map.insert("total".into(), crate::js::json_number(sum));
    }
    Some(Value::Object(map))
}

fn legacy_observation(record: &Record, writes: usize, catalog: &Catalog) -> StoredObservation {
    let prompt = match (
        text(record, "prompt_name"),
        record.get("prompt_version").and_then(Value::as_i64),
    ) {
        (Some(name), Some(version)) => catalog
            .prompt_id(&name, version)
            .map(|id| (name, version, id)),
        _ => None,
    };
    StoredObservation {
        id: text(record, "id").unwrap_or_default(),
        trace_id: text(record, "trace_id").unwrap_or_default(),
        parent_observation_id: text(record, "parent_observation_id"),
        name: text(record, "name"),
        observation_type: text(record, "type").unwrap_or_else(|| "SPAN".into()),
        level: text(record, "level").unwrap_or_else(|| "DEFAULT".into()),
        status_message: text(record, "status_message"),
        input: display(record.get("input")),
        output: display(record.get("output")),
        metadata: match record.get("metadata") {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        },
        start_time: at(record, "start_time"),
        end_time: at(record, "end_time"),
        model: text(record, "model"),
        model_parameters: record
            .get("model_parameters")
            .filter(|v| !v.is_null())
            .cloned(),
        usage_details: usage_with_total(record.get("usage_details")),
        cost_details: cost_with_total(record.get("cost_details")),
        completion_start_time: at(record, "completion_start_time"),
        prompt_name: prompt.as_ref().map(|p| p.0.clone()),
        prompt_version: prompt.as_ref().map(|p| p.1),
        prompt_id: prompt.map(|p| p.2),
        environment: text(record, "environment"),
        version: text(record, "version"),
        trace_name: None,
        user_id: None,
        session_id: None,
        tags: Vec::new(),
        public: false,
        release: None,
        is_app_root: false,
        writes,
    }
}

fn legacy_trace(record: &Record) -> StoredTrace {
    StoredTrace {
        id: text(record, "id").unwrap_or_default(),
        timestamp: at(record, "timestamp"),
        name: text(record, "name"),
        user_id: text(record, "user_id"),
        session_id: text(record, "session_id"),
        tags: match record.get("tags") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        },
        metadata: match record.get("metadata") {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        },
        input: display(record.get("input")),
        output: display(record.get("output")),
        public: Some(
            record
                .get("public")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        ),
        environment: Some(text(record, "environment").unwrap_or_else(|| "default".into())),
        release: text(record, "release"),
        version: text(record, "version"),
    }
}

fn stored_score(record: &Record) -> StoredScore {
    StoredScore {
        id: text(record, "id").unwrap_or_default(),
        timestamp: at(record, "timestamp"),
        trace_id: text(record, "trace_id"),
        observation_id: text(record, "observation_id"),
        session_id: text(record, "session_id"),
        dataset_run_id: text(record, "dataset_run_id"),
        name: text(record, "name").unwrap_or_default(),
        value: record.get("value").cloned().unwrap_or(Value::from(0)),
        string_value: text(record, "string_value"),
        long_string_value: text(record, "long_string_value"),
        data_type: text(record, "data_type"),
        comment: text(record, "comment"),
        config_id: text(record, "config_id"),
        metadata: record.get("metadata").cloned(),
        environment: text(record, "environment").unwrap_or_else(|| "default".into()),
        source: text(record, "source").unwrap_or_else(|| "API".into()),
    }
}

/// §6.2: what the worker does to a score before merging it; `None` drops it silently.
fn inflate_score(mut record: Record, catalog: &Catalog) -> Option<Record> {
    let source = text(&record, "source").unwrap_or_else(|| "API".into());
    let config_id = text(&record, "config_id");
    let mut data_type = text(&record, "data_type");
    if source == "ANNOTATION" && config_id.is_none() && data_type.as_deref() != Some("CORRECTION") {
        return None;
    }
    let value = record.get("value").cloned().unwrap_or(Value::Null);
    let mut category_value = None;
    if let Some(config_id) = &config_id {
        let config = catalog.score_configs.iter().find(|c| &c.id == config_id)?;
        if config.archived || data_type.as_ref().is_some_and(|d| d != &config.data_type) {
            return None;
        }
        record.insert("name".into(), Value::String(config.name.clone()));
        data_type = Some(config.data_type.clone());
        if let Some(number) = value.as_f64() {
            if config.min_value.is_some_and(|min| number < min)
                || config.max_value.is_some_and(|max| number > max)
            {
                return None;
            }
        }
        if config.data_type == "CATEGORICAL" {
            let label = value.as_str()?;
            category_value = Some(config.categories.iter().find(|(l, _)| l == label)?.1);
        }
    }
    let data_type = data_type.unwrap_or_else(|| {
        if value.is_number() {
            "NUMERIC".into()
        } else {
            "CATEGORICAL".into()
        }
    });
    let (number, string_value, long) = match data_type.as_str() {
        "BOOLEAN" => {
            let yes = value.as_f64() == Some(1.0);
            (
                Value::from(u8::from(yes)),
                Some(if yes { "True" } else { "False" }.to_owned()),
                None,
            )
        }
        "CATEGORICAL" => (
            category_value.map_or(Value::from(0), crate::js::json_number),
            value.as_str().map(str::to_owned),
            None,
        ),
        "TEXT" => (Value::from(0), value.as_str().map(str::to_owned), None),
        "CORRECTION" => {
            record.insert("name".into(), Value::from("output"));
            (Value::from(0), None, value.as_str().map(str::to_owned))
        }
        _ => (value.clone(), None, None),
    };
    record.insert("value".into(), number);
    record.insert("data_type".into(), Value::String(data_type));
    if let Some(s) = string_value {
        record.insert("string_value".into(), Value::String(s));
    }
    if let Some(s) = long {
        record.insert("long_string_value".into(), Value::String(s));
    }
    Some(record)
}

/// An ordered list with an index, for the views the query API returns.
#[derive(Debug)]
struct View<T> {
    items: Vec<T>,
    index: HashMap<String, usize>,
}

impl<T> Default for View<T> {
    fn default() -> Self {
        View {
            items: Vec::new(),
            index: HashMap::new(),
        }
    }
}

impl<T> View<T> {
    /// Replaces or appends the item; returns its index and whether it is new.
    fn upsert(&mut self, key: String, item: T) -> (usize, bool) {
        match self.index.get(&key) {
            Some(&i) => {
                self.items[i] = item;
                (i, false)
            }
            None => {
                self.items.push(item);
                self.index.insert(key, self.items.len() - 1);
                (self.items.len() - 1, true)
            }
        }
    }

    fn get(&self, key: &str) -> Option<&T> {
        self.index.get(key).map(|&i| &self.items[i])
    }
}

/// Everything the server has recorded. Lives behind one mutex so a request's model changes and
/// its request record become visible together.
#[derive(Debug)]
pub(crate) struct Store {
    mode: ServerMode,
    traces: View<StoredTrace>,
    /// Keyed by id (v3) or by trace id, span id and start time (v4).
    observations: View<StoredObservation>,
    /// Observation id to the row last written with it.
    latest_observation: HashMap<String, usize>,
    scores: View<StoredScore>,
    legacy_traces: Table,
    legacy_observations: Table,
    legacy_scores: Table,
    /// v4: the write sequence of each row (`event_ts`), by row index.
    row_written: HashMap<usize, u64>,
    /// v4: the row indexes of each trace.
    trace_rows: HashMap<String, Vec<usize>>,
    writes: u64,
    /// v3: trace ids some OTLP batch already contained (the server's 10-minute Redis key).
    seen_traces: HashSet<String>,
    requests: Vec<RecordedRequest>,
    envelope_receipts: HashMap<String, usize>,
    sdk_logs: Vec<Value>,
    otlp_requests: Vec<ExportTraceServiceRequest>,
}

impl Store {
    pub(crate) fn new(mode: ServerMode) -> Self {
        Store {
            mode,
            traces: View::default(),
            observations: View::default(),
            latest_observation: HashMap::new(),
            scores: View::default(),
            legacy_traces: Table::default(),
            legacy_observations: Table::default(),
            legacy_scores: Table::default(),
            row_written: HashMap::new(),
            trace_rows: HashMap::new(),
            writes: 0,
            seen_traces: HashSet::new(),
            requests: Vec::new(),
            envelope_receipts: HashMap::new(),
            sdk_logs: Vec::new(),
            otlp_requests: Vec::new(),
        }
    }

    pub(crate) fn mode(&self) -> ServerMode {
        self.mode
    }

    pub(crate) fn traces(&self) -> &[StoredTrace] {
        &self.traces.items
    }

    pub(crate) fn trace(&self, id: &str) -> Option<&StoredTrace> {
        self.traces.get(id)
    }

    pub(crate) fn observations(&self) -> &[StoredObservation] {
        &self.observations.items
    }

    pub(crate) fn observation(&self, id: &str) -> Option<&StoredObservation> {
        self.latest_observation
            .get(id)
            .map(|&i| &self.observations.items[i])
    }

    pub(crate) fn scores(&self) -> &[StoredScore] {
        &self.scores.items
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

    pub(crate) fn push_sdk_log(&mut self, log: Value) {
        self.sdk_logs.push(log);
    }

    pub(crate) fn push_otlp_request(&mut self, request: ExportTraceServiceRequest) {
        self.otlp_requests.push(request);
    }

    /// Applies events that passed their schema and carry a body id (§3.4): updates after
    /// everything else, each part by envelope timestamp, then one blob per entity.
    pub(crate) fn apply_events(&mut self, events: Vec<ValidEvent>, catalog: &Catalog) {
        let mut events = events;
        events.sort_by_key(|e| (e.is_update(), e.timestamp));
        let mut groups: Vec<((Entity, String), Vec<MergeEvent>)> = Vec::new();
        let mut group_of: HashMap<(Entity, String), usize> = HashMap::new();
        for event in events {
            let is_create = !event.is_update();
            let Content::Entity(entity, record) = event.content else {
                continue;
            };
            let Some(id) = text(&record, "id") else {
                continue;
            };
            let record = match entity {
                Entity::Score => {
                    let mut record = record;
                    record.insert("timestamp".into(), Value::from(event.timestamp));
                    match inflate_score(record, catalog) {
                        Some(record) => record,
                        None => continue,
                    }
                }
                _ => record,
            };
            let merge_event = MergeEvent {
                envelope_id: event.envelope_id,
                timestamp: event.timestamp,
                is_create,
                record,
            };
            let key = (entity, id);
            match group_of.get(&key) {
                Some(&i) => groups[i].1.push(merge_event),
                None => {
                    group_of.insert(key.clone(), groups.len());
                    groups.push((key, vec![merge_event]));
                }
            }
        }
        for ((entity, id), group) in groups {
            self.store_group(entity, &id, group, catalog);
        }
    }

    fn store_group(&mut self, entity: Entity, id: &str, group: Vec<MergeEvent>, catalog: &Catalog) {
        match entity {
            Entity::Trace => {
                let row = self.legacy_traces.store_group(entity, id, group);
                self.traces.upsert(id.to_owned(), legacy_trace(row));
            }
            Entity::Observation => {
                self.legacy_observations.store_group(entity, id, group);
                self.refresh_legacy_observation(id, catalog);
            }
            Entity::Score => {
                let row = self.legacy_scores.store_group(entity, id, group);
                self.scores.upsert(id.to_owned(), stored_score(row));
            }
        }
    }

    fn refresh_legacy_observation(&mut self, id: &str, catalog: &Catalog) {
        if let Some((row, writes)) = self.legacy_observations.row(id) {
            let (index, _) = self
                .observations
                .upsert(id.to_owned(), legacy_observation(row, writes, catalog));
            self.latest_observation.insert(id.to_owned(), index);
        }
    }

    /// Converts an accepted OTLP export the way the mode's write path does (§4.1).
    pub(crate) fn apply_otlp(&mut self, export: &Export, catalog: &Catalog) {
        match self.mode {
            ServerMode::LangfuseV3 => self.apply_otlp_legacy(export, catalog),
            ServerMode::LangfuseV4 => self.apply_otlp_direct(export, catalog),
        }
    }

    fn apply_otlp_legacy(&mut self, export: &Export, catalog: &Catalog) {
        let converted = otlp::legacy_path::convert(export, &mut self.seen_traces);
        for event in converted.observations {
            let Some(id) = text(&event.record, "id") else {
                continue;
            };
            self.legacy_observations
                .merge_direct(Entity::Observation, &id, event);
            self.refresh_legacy_observation(&id, catalog);
        }
        for (trace_id, group) in converted.traces {
            self.store_group(Entity::Trace, &trace_id, group, catalog);
        }
    }

    fn apply_otlp_direct(&mut self, export: &Export, catalog: &Catalog) {
        let mut touched: Vec<String> = Vec::new();
        for row in otlp::direct_path::rows(export, catalog) {
            let key = format!("{}\u{0}{}\u{0}{:?}", row.trace_id, row.id, row.start_time);
            let writes = self
                .observations
                .get(&key)
                .map_or(1, |previous| previous.writes + 1);
            let (id, trace_id) = (row.id.clone(), row.trace_id.clone());
            let (index, new) = self
                .observations
                .upsert(key, StoredObservation { writes, ..row });
            self.latest_observation.insert(id, index);
            self.writes += 1;
            self.row_written.insert(index, self.writes);
            if new {
                self.trace_rows
                    .entry(trace_id.clone())
                    .or_default()
                    .push(index);
            }
            if !touched.contains(&trace_id) {
                touched.push(trace_id);
            }
        }
        for trace_id in touched {
            let rows: Vec<(u64, &StoredObservation)> = self.trace_rows[&trace_id]
                .iter()
                .map(|&i| (self.row_written[&i], &self.observations.items[i]))
                .collect();
            let trace = otlp::direct_path::trace_view(&trace_id, rows);
            self.traces.upsert(trace_id, trace);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn score(record: Value, catalog: &Catalog) -> Option<Record> {
        inflate_score(record.as_object().cloned().unwrap_or_default(), catalog)
    }

    #[test]
    fn s6_2_scores_are_inflated_per_data_type() {
        let catalog = Catalog::default();
        let boolean = score(json!({"value": 1, "data_type": "BOOLEAN"}), &catalog).expect("kept");
        assert_eq!(boolean["value"], 1);
        assert_eq!(boolean["string_value"], "True");
        let inferred = score(json!({"value": "good"}), &catalog).expect("kept");
        assert_eq!(inferred["data_type"], "CATEGORICAL");
        assert_eq!(inferred["value"], 0);
        assert_eq!(inferred["string_value"], "good");
        assert_eq!(
            score(json!({"value": 1, "source": "ANNOTATION"}), &catalog),
            None,
            "annotation without config"
        );
        assert_eq!(
            score(json!({"value": 1, "config_id": "missing"}), &catalog),
            None,
            "unknown config"
        );
    }

    #[test]
    fn s6_2_a_config_renames_and_bounds_the_score() {
        let catalog = Catalog {
            score_configs: vec![
                ScoreConfig::new("c", "Config name", "NUMERIC").range(Some(0.0), Some(1.0))
            ],
            ..Catalog::default()
        };
        let kept = score(
            json!({"name": "n", "value": 0.5, "config_id": "c"}),
            &catalog,
        )
        .expect("fits");
        assert_eq!(kept["name"], "Config name");
        assert_eq!(score(json!({"value": 2, "config_id": "c"}), &catalog), None);
        assert_eq!(
            score(
                json!({"value": 1, "config_id": "c", "data_type": "BOOLEAN"}),
                &catalog
            ),
            None
        );
    }
}
