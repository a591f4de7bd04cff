//! How a span's fields become an observation: the rules the Langfuse server applies to the
//! attributes of an OTLP span (LANGFUSE_SERVER.md §4.6–§4.13), applied here so that a span
//! bridged from `tracing` shows in Langfuse as it would had it arrived over OTLP from another
//! instrumentation scope.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};

use crate::capture::CapturedValue;
use crate::observation::{
    GenerationDetails, Level, Observation, ObservationType, PromptRef, TraceAttributes,
};

/// A field value as `tracing` recorded it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldValue {
    Text(String),
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
}

impl FieldValue {
    fn as_str(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The value as the server turns any attribute into text: strings as they are, the rest
    /// as JSON.
    pub(crate) fn text(&self) -> String {
        match self {
            Self::Text(text) => text.clone(),
            other => other.json().to_string(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Self::Text(text) => Value::String(text.clone()),
            Self::Int(n) => Value::from(*n),
            Self::UInt(n) => Value::from(*n),
            Self::Float(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, Value::Number),
            Self::Bool(b) => Value::Bool(*b),
        }
    }

    /// As JavaScript's `Number()` reads it: numeric strings count.
    fn number(&self) -> Option<f64> {
        let number = match self {
            Self::Text(text) => text.trim().parse::<f64>().ok()?,
            Self::Int(n) => *n as f64,
            Self::UInt(n) => *n as f64,
            Self::Float(n) => *n,
            Self::Bool(b) => f64::from(u8::from(*b)),
        };
        number.is_finite().then_some(number)
    }

    /// Whether JavaScript would take it as set: not an empty string.
    fn is_set(&self) -> bool {
        !matches!(self, Self::Text(text) if text.is_empty())
    }

    fn is_true(&self) -> bool {
        match self {
            Self::Bool(b) => *b,
            Self::Text(text) => text == "true",
            _ => false,
        }
    }

    /// An input or output value: text stays text, as the server stores strings as sent.
    fn captured(&self) -> CapturedValue {
        match self {
            Self::Text(text) => CapturedValue::text(text.clone()),
            other => CapturedValue::json(&other.json()),
        }
    }
}

/// The fields of one span by name, as recorded so far; a field recorded again replaces its
/// value, as a span attribute set again does.
#[derive(Debug, Default)]
pub(crate) struct Fields {
    values: BTreeMap<&'static str, FieldValue>,
    /// One bit per recorded name ([`key_bit`]): the mapping asks for a hundred names of
    /// which a span has a few, and most are answered here without a search.
    names: u64,
    /// One bit per namespace of recorded names ([`namespace_bit`]), for prefix searches.
    namespaces: u8,
}

/// The namespaces the mapping searches by prefix, one bit each; everything else shares one.
fn namespace_bit(key: &str) -> u8 {
    if key.starts_with("gen_ai.") {
        1
    } else if key.starts_with("langfuse.") {
        2
    } else if key.starts_with("llm.") {
        4
    } else {
        8
    }
}

/// A bit for `key` from its length and two of its bytes: cheap, and spread enough that a
/// dozen recorded names leave most bits clear.
fn key_bit(key: &str) -> u64 {
    let bytes = key.as_bytes();
    let last = bytes.last().copied().unwrap_or(0) as usize;
    let middle = bytes.get(bytes.len() / 2).copied().unwrap_or(0) as usize;
    1 << ((bytes.len() * 7 + last * 3 + middle) % 64)
}

impl Fields {
    pub(crate) fn get(&self, key: &str) -> Option<&FieldValue> {
        if self.names & key_bit(key) == 0 {
            return None;
        }
        self.values.get(key)
    }

    /// The first of `keys` that is set.
    fn first(&self, keys: &[&str]) -> Option<&FieldValue> {
        keys.iter()
            .filter_map(|key| self.get(key))
            .find(|value| value.is_set())
    }

    fn first_text(&self, keys: &[&str]) -> Option<String> {
        self.first(keys).map(FieldValue::text)
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(FieldValue::as_str)
    }

    fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// The fields under `prefix`, with the prefix removed.
    fn under<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a FieldValue)> {
        let searched = self.namespaces & namespace_bit(prefix) != 0;
        searched
            .then(|| self.values.range(prefix..))
            .into_iter()
            .flatten()
            .take_while(move |(key, _)| key.starts_with(prefix))
            .map(move |(key, value)| (&key[prefix.len()..], value))
    }

    /// `key=value` pairs, for an event without a message.
    pub(crate) fn summary(&self) -> String {
        let pairs: Vec<String> = self
            .values
            .iter()
            .map(|(key, value)| format!("{key}={}", value.text()))
            .collect();
        pairs.join(" ")
    }

    fn insert(&mut self, field: &Field, value: FieldValue) {
        self.names |= key_bit(field.name());
        self.namespaces |= namespace_bit(field.name());
        self.values.insert(field.name(), value);
    }
}

/// Records fields into [`Fields`], noting whether one of them carries the first part of a
/// response.
pub(crate) struct Recorder<'a> {
    pub(crate) fields: &'a mut Fields,
    pub(crate) response: bool,
}

impl Recorder<'_> {
    fn insert(&mut self, field: &Field, value: FieldValue) {
        self.response |= is_response_field(field.name());
        self.fields.insert(field, value);
    }
}

/// Both record every kind of value the same way.
macro_rules! visit_into_fields {
    ($target:ty) => {
        impl Visit for $target {
            fn record_str(&mut self, field: &Field, value: &str) {
                self.insert(field, FieldValue::Text(value.to_owned()));
            }

            fn record_i64(&mut self, field: &Field, value: i64) {
                self.insert(field, FieldValue::Int(value));
            }

            fn record_u64(&mut self, field: &Field, value: u64) {
                self.insert(field, FieldValue::UInt(value));
            }

            fn record_f64(&mut self, field: &Field, value: f64) {
                self.insert(field, FieldValue::Float(value));
            }

            fn record_bool(&mut self, field: &Field, value: bool) {
                self.insert(field, FieldValue::Bool(value));
            }

            fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
                self.insert(field, FieldValue::Text(value.to_string()));
            }

            fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
                self.insert(field, FieldValue::Text(format!("{value:?}")));
            }
        }
    };
}

visit_into_fields!(Fields);
visit_into_fields!(Recorder<'_>);

/// Whether a field name marks a span as meant for Langfuse: GenAI semantic conventions,
/// Langfuse's own attributes, or OpenInference's.
pub(crate) fn is_langfuse_field(name: &str) -> bool {
    const PREFIXES: [&str; 4] = ["gen_ai.", "langfuse.", "llm.", "openinference."];
    PREFIXES.iter().any(|prefix| name.starts_with(prefix))
        || matches!(name, "input.value" | "output.value")
}

/// Whether a span reports a streamed completion, whose first response field marks the
/// completion start.
pub(crate) fn is_streaming(span_name: &str, fields: &Fields) -> bool {
    span_name.ends_with("streaming")
        || fields
            .str("gen_ai.operation.name")
            .is_some_and(|operation| operation.ends_with("streaming"))
}

/// Whether `key` carries the first part of a response.
fn is_response_field(key: &str) -> bool {
    matches!(
        key,
        "gen_ai.response.id" | "gen_ai.response.model" | "gen_ai.output.messages"
    )
}

/// Writes what `fields` say about the observation into `record`. What the record already has
/// from the code inside the span (`update_current_*`, an ERROR event) is kept unless a field
/// sets it explicitly, as `langfuse.observation.*` attributes would.
pub(crate) fn apply(
    fields: &Fields,
    span_name: &'static str,
    first_response: Option<SystemTime>,
    record: &mut Observation,
) {
    let kind = observation_type(fields);
    record.kind = kind;
    // A name set from inside the span (`update_current_observation`) is kept.
    if record.name == span_name {
        if let Some(name) =
            fields.first_text(&["gen_ai.tool.name", "logfire.msg", "ai.toolCall.name"])
        {
            record.name = name.into();
        }
    }
    let (input, output) = input_output(fields);
    if let Some(input) = input {
        record.input.get_or_insert(input);
    }
    if let Some(output) = output {
        record.output.get_or_insert(output);
    }
    for (key, value) in observation_metadata(fields) {
        record.metadata.entry(key).or_insert(value);
    }
    if let Some(level) = fields.get("langfuse.observation.level").and_then(level) {
        record.level = level;
    }
    if let Some(message) = fields.first_text(&["langfuse.observation.status_message"]) {
        record.status_message = Some(message);
    }
    if let Some(version) = fields.first_text(&["langfuse.version"]) {
        record.version = Some(version);
    }
    apply_generation(fields, kind, first_response, record);
}

fn apply_generation(
    fields: &Fields,
    kind: ObservationType,
    first_response: Option<SystemTime>,
    record: &mut Observation,
) {
    // The server drops model, usage and cost of an agent's run: its generations carry them.
    let agent = matches!(
        fields.str("gen_ai.operation.name"),
        Some("invoke_agent" | "agent_step")
    );
    let model = (!agent)
        .then(|| {
            fields.first_text(&[
                "langfuse.observation.model.name",
                "gen_ai.response.model",
                "ai.model.id",
                "gen_ai.request.model",
                "llm.response.model",
                "llm.model_name",
                "model",
            ])
        })
        .flatten();
    let usage = if agent { None } else { usage(fields) };
    let cost = if agent { None } else { cost(fields) };
    let parameters = model_parameters(fields);
    let completion_start = fields
        .get("langfuse.observation.completion_start_time")
        .and_then(completion_start)
        .or(first_response.filter(|_| kind == ObservationType::Generation));
    let prompt = (kind == ObservationType::Generation)
        .then(|| prompt(fields))
        .flatten();
    let found = model.is_some()
        || usage.as_ref().is_some_and(|usage| !usage.is_empty())
        || cost.as_ref().is_some_and(|cost| !cost.is_empty())
        || !parameters.is_empty()
        || completion_start.is_some()
        || prompt.is_some();
    if !found {
        return;
    }
    let details = record
        .generation
        .get_or_insert_with(|| Box::new(GenerationDetails::default()));
    if model.is_some() {
        details.model = details.model.take().or(model);
    }
    for (key, value) in parameters {
        details.model_parameters.entry(key).or_insert(value);
    }
    for (key, tokens) in usage.unwrap_or_default() {
        details.usage_details.entry(key).or_insert(tokens);
    }
    for (key, usd) in cost.unwrap_or_default() {
        details.cost_details.entry(key).or_insert(usd);
    }
    details.completion_start_time = details.completion_start_time.or(completion_start);
    details.prompt = details.prompt.take().or(prompt);
}

/// §4.6: the first mapper that returns a type wins.
fn observation_type(fields: &Fields) -> ObservationType {
    use ObservationType as T;
    let from_langfuse = fields
        .str("langfuse.observation.type")
        .and_then(ObservationType::parse);
    let from_openinference = || match fields.str("openinference.span.kind")? {
        "LLM" => Some(T::Generation),
        "CHAIN" => Some(T::Chain),
        "RETRIEVER" => Some(T::Retriever),
        "EMBEDDING" => Some(T::Embedding),
        "AGENT" => Some(T::Agent),
        "TOOL" => Some(T::Tool),
        "GUARDRAIL" => Some(T::Guardrail),
        "EVALUATOR" => Some(T::Evaluator),
        _ => None,
    };
    let from_operation = || match fields.str("gen_ai.operation.name")? {
        "chat" | "completion" | "text_completion" | "generate_content" | "generate" => {
            Some(T::Generation)
        }
        "embeddings" => Some(T::Embedding),
        "invoke_agent" | "create_agent" => Some(T::Agent),
        "execute_tool" => Some(T::Tool),
        _ => None,
    };
    let from_tool =
        || (fields.has("gen_ai.tool.name") || fields.has("gen_ai.tool.call.id")).then_some(T::Tool);
    let from_model = || {
        [
            "langfuse.observation.model.name",
            "gen_ai.request.model",
            "gen_ai.response.model",
            "llm.model_name",
            "model",
        ]
        .iter()
        .any(|key| fields.has(key))
        .then_some(T::Generation)
    };
    from_langfuse
        .or_else(from_openinference)
        .or_else(from_operation)
        .or_else(from_tool)
        .or_else(from_model)
        .unwrap_or(T::Span)
}

/// §4.7: the level aliases; an unknown value sets nothing.
fn level(value: &FieldValue) -> Option<Level> {
    match value.text().trim().to_uppercase().as_str() {
        "DEBUG" | "TRACE" | "VERBOSE" => Some(Level::Debug),
        "DEFAULT" | "INFO" | "LOG" | "NOTICE" | "OK" | "SUCCESS" => Some(Level::Default),
        "WARNING" | "WARN" => Some(Level::Warning),
        "ERROR" | "FATAL" | "CRITICAL" => Some(Level::Error),
        _ => None,
    }
}

/// Input and output pairs read as they are, in the server's order (§4.8 sources 7 to 15).
const IO_PAIRS: [(&str, &str); 6] = [
    ("prompt", "all_messages_events"),
    ("mlflow.spanInputs", "mlflow.spanOutputs"),
    ("traceloop.entity.input", "traceloop.entity.output"),
    ("input.value", "output.value"),
    ("input", "output"),
    ("tool_arguments", "tool_response"),
];

/// Fields read as input or output.
const IO_KEYS: [&str; 22] = [
    "langfuse.observation.input",
    "langfuse.observation.output",
    "langfuse.trace.input",
    "langfuse.trace.output",
    "prompt",
    "all_messages_events",
    "events",
    "mlflow.spanInputs",
    "mlflow.spanOutputs",
    "traceloop.entity.input",
    "traceloop.entity.output",
    "input.value",
    "output.value",
    "input",
    "output",
    "final_result",
    "tool_arguments",
    "tool_response",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
];

type Io = (Option<CapturedValue>, Option<CapturedValue>);

/// §4.8: the first source that yields an input or an output gives both.
fn input_output(fields: &Fields) -> Io {
    let pair = |input: &str, output: &str| -> Option<Io> {
        let input = fields.first(&[input]).map(FieldValue::captured);
        let output = fields.first(&[output]).map(FieldValue::captured);
        (input.is_some() || output.is_some()).then_some((input, output))
    };
    if let Some(found) = pair("langfuse.observation.input", "langfuse.observation.output") {
        return found;
    }
    for (input, output) in IO_PAIRS {
        if let Some(found) = pair(input, output) {
            return found;
        }
    }
    for (input, output) in [
        (
            ("gen_ai.prompt", "gen_ai.prompt."),
            ("gen_ai.completion", "gen_ai.completion."),
        ),
        (
            ("llm.input_messages", "llm.input_messages."),
            ("llm.output_messages", "llm.output_messages."),
        ),
    ] {
        let input = rebuilt(fields, input);
        let output = rebuilt(fields, output);
        if input.is_some() || output.is_some() {
            return (input, output);
        }
    }
    if let Some((input, output)) = pair("gen_ai.input.messages", "gen_ai.output.messages") {
        return (with_system_instructions(fields, input), output);
    }
    pair("gen_ai.tool.call.arguments", "gen_ai.tool.call.result").unwrap_or((None, None))
}

/// The value of flattened keys under `key` (`dotted` is the key and a dot) put back together:
/// the key itself when it is set, else `key.0.role`-style keys as an array of objects, else an
/// object.
fn rebuilt(fields: &Fields, (key, dotted): (&str, &str)) -> Option<CapturedValue> {
    if let Some(whole) = fields.first(&[key]) {
        return Some(whole.captured());
    }
    let parts: Vec<(&str, &FieldValue)> = fields.under(dotted).collect();
    if parts.is_empty() {
        return None;
    }
    fn indexed(key: &str) -> Option<(usize, &str)> {
        let (index, rest) = key.split_once('.')?;
        Some((index.parse::<usize>().ok()?, rest))
    }
    if parts.iter().any(|(key, _)| indexed(key).is_some()) {
        // At most this many slots, as the server rebuilds.
        const MAX_SLOTS: usize = 10_001;
        let mut items: Vec<Map<String, Value>> = Vec::new();
        for (key, value) in &parts {
            let Some((index, rest)) = indexed(key).filter(|(index, _)| *index < MAX_SLOTS) else {
                continue;
            };
            if items.len() <= index {
                items.resize_with(index + 1, Map::new);
            }
            items[index].insert(rest.to_owned(), value.json());
        }
        return Some(CapturedValue::json(&items));
    }
    let object: Map<String, Value> = parts
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value.json()))
        .collect();
    Some(CapturedValue::json(&object))
}

/// Source 18: `gen_ai.system_instructions` goes first into a message array that has no
/// system message.
fn with_system_instructions(
    fields: &Fields,
    input: Option<CapturedValue>,
) -> Option<CapturedValue> {
    let Some(instructions) = fields.first(&["gen_ai.system_instructions"]) else {
        return input;
    };
    let Some(Value::Array(mut messages)) = input.as_ref().map(parsed) else {
        return input;
    };
    if messages
        .iter()
        .any(|message| message.get("role").and_then(Value::as_str) == Some("system"))
    {
        return input;
    }
    let content = match instructions {
        FieldValue::Text(text) => {
            serde_json::from_str(text).unwrap_or_else(|_| instructions.json())
        }
        other => other.json(),
    };
    messages.insert(0, serde_json::json!({"role": "system", "content": content}));
    Some(CapturedValue::json(&messages))
}

/// A value as JSON, text that holds JSON parsed.
fn parsed(value: &CapturedValue) -> Value {
    let json = value.to_json_value();
    match &json {
        Value::String(text) => serde_json::from_str(text).unwrap_or(json),
        _ => json,
    }
}

/// A field holding a JSON object as text, parsed.
fn json_object(fields: &Fields, key: &str) -> Option<Map<String, Value>> {
    match serde_json::from_str(fields.str(key)?) {
        Ok(Value::Object(object)) => Some(object),
        _ => None,
    }
}

/// §4.9 for the observation, and every field no rule reads, under `attributes.<name>` (where
/// the server puts the attributes of spans from other instrumentation).
fn observation_metadata(fields: &Fields) -> Map<String, Value> {
    let mut metadata = domain_metadata(
        fields,
        "langfuse.observation.metadata",
        &["langfuse.observation.metadata.", "langfuse.metadata."],
    );
    for (key, value) in &fields.values {
        if !is_read(key) {
            let mut name = String::with_capacity(ATTRIBUTES.len() + key.len());
            name.push_str(ATTRIBUTES);
            name.push_str(key);
            metadata.insert(name, Value::String(value.text()));
        }
    }
    metadata
}

const ATTRIBUTES: &str = "attributes.";

/// Whether a rule of this module reads the field, so that it need not be repeated in the
/// metadata. The system instructions stay there too: they are read only along with messages.
fn is_read(key: &str) -> bool {
    const PREFIXES: [&str; 10] = [
        "langfuse.",
        "gen_ai.usage.",
        "gen_ai.request.",
        "gen_ai.prompt",
        "gen_ai.completion",
        "llm.token_count.",
        "llm.invocation_parameters",
        "llm.input_messages",
        "llm.output_messages",
        "ai.telemetry.metadata",
    ];
    IO_KEYS.contains(&key)
        || matches!(
            key,
            "gen_ai.operation.name"
                | "openinference.span.kind"
                | "gen_ai.tool.name"
                | "gen_ai.tool.call.id"
                | "logfire.msg"
                | "ai.toolCall.name"
                | "gen_ai.response.model"
                | "ai.model.id"
                | "llm.response.model"
                | "llm.model_name"
                | "model"
                | "model_config"
                | "llm.cost.total"
                | "user.id"
                | "session.id"
                | "gen_ai.conversation.id"
        )
        || PREFIXES.iter().any(|prefix| key.starts_with(prefix))
}

/// §4.9 steps 1 and 2: the JSON object (or `langfuse.metadata`), then the flat keys.
fn domain_metadata(
    fields: &Fields,
    object_key: &str,
    flat_prefixes: &[&str],
) -> Map<String, Value> {
    let mut metadata = if fields.has(object_key) {
        json_object(fields, object_key)
    } else {
        json_object(fields, "langfuse.metadata")
    }
    .unwrap_or_default();
    for prefix in flat_prefixes {
        for (key, value) in fields.under(prefix) {
            if !key.is_empty() {
                metadata.insert(key.to_owned(), value.json());
            }
        }
    }
    metadata
}

/// §4.7: the JSON object, else the same from OpenInference or `model_config`, else the
/// `gen_ai.request.*` keys but the model; strings and numbers kept, the rest as JSON text.
fn model_parameters(fields: &Fields) -> Map<String, Value> {
    let raw: Map<String, Value> = json_object(fields, "langfuse.observation.model.parameters")
        .or_else(|| json_object(fields, "llm.invocation_parameters"))
        .or_else(|| json_object(fields, "model_config"))
        .unwrap_or_else(|| {
            ["gen_ai.request.", "llm.invocation_parameters."]
                .iter()
                .flat_map(|prefix| fields.under(prefix))
                .filter(|(key, _)| *key != "model" && !key.ends_with(".model"))
                .map(|(key, value)| (key.to_owned(), value.json()))
                .collect()
        });
    raw.into_iter()
        .map(|(key, value)| match value {
            Value::String(_) | Value::Number(_) => (key, value),
            other => (key, Value::String(other.to_string())),
        })
        .collect()
}

/// Token counts the server accepts: whole, non-negative numbers.
fn tokens(value: f64) -> Option<u64> {
    (value >= 0.0 && value.fract() == 0.0 && value < u64::MAX as f64).then_some(value as u64)
}

/// §4.7 and §4.12: `usage_details`, else the generic `gen_ai.usage.*` and
/// `llm.token_count.*` rule.
fn usage(fields: &Fields) -> Option<BTreeMap<String, u64>> {
    if let Some(value) = fields.get("langfuse.observation.usage_details") {
        let Some(text) = value.as_str() else {
            return Some(BTreeMap::new());
        };
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(object)) => {
                return Some(
                    object
                        .into_iter()
                        .filter_map(|(key, value)| Some((key, tokens(value.as_f64()?)?)))
                        .collect(),
                )
            }
            Ok(_) => return Some(BTreeMap::new()),
            // Invalid JSON falls through to the generic rule.
            Err(_) => {}
        }
    }
    generic_usage(fields)
}

fn generic_usage(fields: &Fields) -> Option<BTreeMap<String, u64>> {
    let mut raw: BTreeMap<&str, f64> = BTreeMap::new();
    for prefix in ["gen_ai.usage.", "llm.token_count."] {
        for (key, value) in fields.under(prefix) {
            if key == "cost" {
                continue;
            }
            if let Some(number) = value.number() {
                raw.entry(key).or_insert(number);
            }
        }
    }
    if raw.is_empty() {
        return None;
    }
    let take = |keys: &[&str]| keys.iter().find_map(|key| raw.get(key).copied());
    let input = take(&["prompt_tokens", "input_tokens", "prompt"]);
    let output = take(&["completion_tokens", "output_tokens", "completion"]);
    let total = take(&["total_tokens", "total"]);
    let cached = take(&[
        "cache_read.input_tokens",
        "cache_read_input_tokens",
        "cache_read_tokens",
        "details.cache_read_tokens",
        "details.cache_read_input_tokens",
        "prompt_details.cache_read",
        "input_cached_tokens",
    ]);
    let creation = take(&[
        "cache_creation.input_tokens",
        "cache_creation_input_tokens",
        "cache_write_tokens",
        "details.cache_write_tokens",
        "details.cache_creation_input_tokens",
        "input_cache_creation",
    ]);
    let reasoning = take(&[
        "reasoning.output_tokens",
        "completion_details.reasoning",
        "output_reasoning_tokens",
    ]);
    let audio = take(&["completion_details.audio", "output_audio_tokens"]);
    let mut usage = BTreeMap::new();
    let mut put = |key: &str, value: Option<f64>| {
        if let Some(count) = value.and_then(tokens) {
            usage.insert(key.to_owned(), count);
        }
    };
    put(
        "input",
        input.map(|i| (i - cached.unwrap_or(0.0) - creation.unwrap_or(0.0)).max(0.0)),
    );
    put(
        "output",
        output.map(|o| (o - reasoning.unwrap_or(0.0) - audio.unwrap_or(0.0)).max(0.0)),
    );
    put("total", total);
    put("input_cached_tokens", cached);
    put("input_cache_creation", creation);
    put("output_reasoning_tokens", reasoning);
    put("output_audio_tokens", audio);
    for (key, value) in &raw {
        if !is_usage_key(key) {
            let name = key.strip_prefix("details.").unwrap_or(key);
            if let Some(count) = tokens(*value) {
                usage.entry(name.to_owned()).or_insert(count);
            }
        }
    }
    Some(usage)
}

/// Whether the generic usage rule reads `key` into one of Langfuse's own names.
fn is_usage_key(key: &str) -> bool {
    matches!(
        key,
        "prompt_tokens"
            | "input_tokens"
            | "prompt"
            | "completion_tokens"
            | "output_tokens"
            | "completion"
            | "total_tokens"
            | "total"
            | "cache_read.input_tokens"
            | "cache_read_input_tokens"
            | "cache_read_tokens"
            | "details.cache_read_tokens"
            | "details.cache_read_input_tokens"
            | "prompt_details.cache_read"
            | "input_cached_tokens"
            | "cache_creation.input_tokens"
            | "cache_creation_input_tokens"
            | "cache_write_tokens"
            | "details.cache_write_tokens"
            | "details.cache_creation_input_tokens"
            | "input_cache_creation"
            | "reasoning.output_tokens"
            | "completion_details.reasoning"
            | "output_reasoning_tokens"
            | "completion_details.audio"
            | "output_audio_tokens"
    )
}

/// §4.7: `cost_details`, then `gen_ai.usage.cost`, then `llm.cost.total`; numbers ≥ 0 only.
fn cost(fields: &Fields) -> Option<BTreeMap<String, f64>> {
    let usd = |value: f64| (value.is_finite() && value >= 0.0).then_some(value);
    if let Some(object) = json_object(fields, "langfuse.observation.cost_details") {
        return Some(
            object
                .into_iter()
                .filter_map(|(key, value)| Some((key, usd(value.as_f64()?)?)))
                .collect(),
        );
    }
    let total = ["gen_ai.usage.cost", "llm.cost.total"]
        .iter()
        .find_map(|key| fields.get(key).and_then(FieldValue::number))?;
    Some(BTreeMap::from([("total".to_owned(), usd(total)?)]))
}

/// §4.7: an RFC 3339 date, bare or JSON-quoted as the official SDKs send it.
fn completion_start(value: &FieldValue) -> Option<SystemTime> {
    let text = value.as_str()?;
    let unquoted = serde_json::from_str::<String>(text).ok();
    crate::timestamp::parse_rfc3339(unquoted.as_deref().unwrap_or(text))
}

/// §4.13: a prompt name and version, both needed, for generations only.
fn prompt(fields: &Fields) -> Option<PromptRef> {
    let name = fields.first_text(&["langfuse.observation.prompt.name", "langfuse.prompt.name"])?;
    let version = fields
        .first(&[
            "langfuse.observation.prompt.version",
            "langfuse.prompt.version",
        ])?
        .number()?;
    let version = u32::try_from(tokens(version)?).ok()?;
    Some(PromptRef { name, version })
}

/// What a span says about its whole trace (§4.7, §4.14): applied to the trace's attributes,
/// which the observations of the trace deliver.
pub(crate) fn trace_update(fields: &Fields) -> Option<impl FnOnce(&mut TraceAttributes)> {
    let name = fields.first_text(&["langfuse.trace.name"]);
    let user_id = fields.first_text(&[
        "langfuse.user.id",
        "user.id",
        "langfuse.observation.metadata.langfuse_user_id",
        "langfuse.trace.metadata.langfuse_user_id",
    ]);
    let session_id = fields.first_text(&[
        "langfuse.session.id",
        "session.id",
        "gen_ai.conversation.id",
        "langfuse.observation.metadata.langfuse_session_id",
        "langfuse.trace.metadata.langfuse_session_id",
    ]);
    let tags = tags(fields);
    let public = ["langfuse.trace.public", "langfuse.public"]
        .iter()
        .find_map(|key| fields.get(key))
        .map(FieldValue::is_true);
    let metadata = domain_metadata(
        fields,
        "langfuse.trace.metadata",
        &["langfuse.trace.metadata.", "langfuse.metadata."],
    );
    let input = fields
        .first(&["langfuse.trace.input"])
        .map(FieldValue::captured);
    let output = fields
        .first(&["langfuse.trace.output"])
        .map(FieldValue::captured);
    let environment = fields.first_text(&["langfuse.environment"]);
    let release = fields.first_text(&["langfuse.release"]);
    let any = name.is_some()
        || user_id.is_some()
        || session_id.is_some()
        || tags.is_some()
        || public == Some(true)
        || !metadata.is_empty()
        || input.is_some()
        || output.is_some()
        || environment.is_some()
        || release.is_some();
    any.then_some(move |trace: &mut TraceAttributes| {
        let set = |field: &mut Option<String>, value: Option<String>| {
            if value.is_some() {
                *field = value;
            }
        };
        set(&mut trace.name, name);
        set(&mut trace.user_id, user_id);
        set(&mut trace.session_id, session_id);
        set(&mut trace.environment, environment);
        set(&mut trace.release, release);
        if let Some(tags) = tags {
            for tag in tags {
                if !trace.tags.contains(&tag) {
                    trace.tags.push(tag);
                }
            }
        }
        if public == Some(true) {
            trace.public = Some(true);
        }
        trace.metadata.extend(metadata);
        if input.is_some() {
            trace.input = input;
        }
        if output.is_some() {
            trace.output = output;
        }
    })
}

/// §4.7 tags: a string array as JSON text, a comma-separated list, or one tag.
fn tags(fields: &Fields) -> Option<Vec<String>> {
    let value = fields.first(&[
        "langfuse.trace.tags",
        "langfuse.tags",
        "langfuse.observation.metadata.langfuse_tags",
        "langfuse.trace.metadata.langfuse_tags",
    ])?;
    let text = value.text();
    if text.starts_with('[') {
        if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&text) {
            return Some(
                items
                    .iter()
                    .map(|item| match item {
                        Value::String(tag) => tag.clone(),
                        other => other.to_string(),
                    })
                    .collect(),
            );
        }
    }
    if text.contains(',') {
        return Some(
            text.split(',')
                .map(str::trim)
                .filter(|tag| !tag.is_empty())
                .map(str::to_owned)
                .collect(),
        );
    }
    Some(vec![text])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ObservationId, TraceId};

    fn fields(pairs: &[(&'static str, FieldValue)]) -> Fields {
        let mut fields = Fields::default();
        for (key, value) in pairs {
            fields.names |= key_bit(key);
            fields.namespaces |= namespace_bit(key);
            fields.values.insert(key, value.clone());
        }
        fields
    }

    fn text(value: &str) -> FieldValue {
        FieldValue::Text(value.to_owned())
    }

    fn mapped(pairs: &[(&'static str, FieldValue)]) -> Observation {
        let mut record = Observation::new(TraceId::random(), ObservationId::random(), "x");
        apply(&fields(pairs), "span", None, &mut record);
        record
    }

    #[test]
    fn cached_tokens_are_taken_out_of_the_input() {
        let usage = generic_usage(&fields(&[
            ("gen_ai.usage.input_tokens", FieldValue::UInt(100)),
            ("gen_ai.usage.cache_read.input_tokens", FieldValue::UInt(30)),
            ("gen_ai.usage.output_tokens", text("7")),
            ("gen_ai.usage.details.custom", FieldValue::Int(2)),
        ]))
        .unwrap();
        assert_eq!(usage["input"], 70);
        assert_eq!(usage["input_cached_tokens"], 30);
        assert_eq!(usage["output"], 7);
        assert_eq!(usage["custom"], 2);
    }

    #[test]
    fn an_explicit_type_beats_the_operation_and_an_unknown_one_falls_through() {
        let explicit = mapped(&[
            ("langfuse.observation.type", text("retriever")),
            ("gen_ai.operation.name", text("chat")),
        ]);
        assert_eq!(explicit.kind, ObservationType::Retriever);
        let unknown = mapped(&[
            ("langfuse.observation.type", text("Generation")),
            ("gen_ai.tool.call.id", text("c1")),
        ]);
        assert_eq!(unknown.kind, ObservationType::Tool);
    }

    #[test]
    fn flattened_prompts_are_rebuilt_into_arrays() {
        let record = mapped(&[
            ("gen_ai.prompt.0.role", text("user")),
            ("gen_ai.prompt.0.content", text("hi")),
            ("gen_ai.prompt.1.role", text("assistant")),
        ]);
        assert_eq!(
            record.input.unwrap().to_json_value(),
            serde_json::json!([{"role": "user", "content": "hi"}, {"role": "assistant"}])
        );
    }

    #[test]
    fn a_bare_model_field_makes_a_generation_and_a_cost_field_its_total() {
        let record = mapped(&[
            ("model", text("local-llm")),
            ("gen_ai.usage.cost", FieldValue::Float(0.25)),
        ]);
        assert_eq!(record.kind, ObservationType::Generation);
        let details = record.generation.unwrap();
        assert_eq!(details.model.as_deref(), Some("local-llm"));
        assert_eq!(details.cost_details["total"], 0.25);
    }

    #[test]
    fn usage_details_that_are_not_json_fall_through_to_the_generic_rule() {
        let record = mapped(&[
            ("langfuse.observation.usage_details", text("{not json")),
            ("gen_ai.usage.input_tokens", FieldValue::UInt(9)),
        ]);
        assert_eq!(record.generation.unwrap().usage_details["input"], 9);
        let not_an_object = mapped(&[
            ("langfuse.observation.usage_details", text("[1]")),
            ("gen_ai.usage.input_tokens", FieldValue::UInt(9)),
        ]);
        assert!(
            not_an_object.generation.is_none(),
            "JSON that is not an object gives {{}}"
        );
    }

    #[test]
    fn model_parameters_keep_strings_and_numbers_and_encode_the_rest() {
        let record = mapped(&[
            ("gen_ai.request.model", text("m")),
            ("gen_ai.request.temperature", FieldValue::Float(0.5)),
            ("gen_ai.request.stream", FieldValue::Bool(true)),
            ("gen_ai.request.stop", text("END")),
        ]);
        let parameters = record.generation.unwrap().model_parameters;
        assert_eq!(
            Value::Object(parameters),
            serde_json::json!({"temperature": 0.5, "stream": "true", "stop": "END"})
        );
    }

    #[test]
    fn trace_fields_update_the_trace_attributes() {
        let fields = fields(&[
            ("langfuse.trace.public", FieldValue::Bool(true)),
            ("langfuse.trace.metadata.team", text("search")),
            ("gen_ai.conversation.id", text("conv-1")),
            ("user.id", text("u-9")),
        ]);
        let mut trace = TraceAttributes::default();
        trace_update(&fields).expect("trace fields")(&mut trace);
        assert_eq!(trace.public, Some(true));
        assert_eq!(trace.metadata["team"], "search");
        assert_eq!(trace.session_id.as_deref(), Some("conv-1"));
        assert_eq!(trace.user_id.as_deref(), Some("u-9"));
        assert!(trace_update(&Fields::default()).is_none());
    }

    #[test]
    fn tags_read_as_json_lists_comma_lists_or_one_tag() {
        let of = |value: &str| tags(&fields(&[("langfuse.trace.tags", text(value))])).unwrap();
        assert_eq!(of(r#"["a","b"]"#), ["a", "b"]);
        assert_eq!(of("a, b ,"), ["a", "b"]);
        assert_eq!(of("solo"), ["solo"]);
    }
}
