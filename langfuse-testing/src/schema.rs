//! The ingestion event schemas of LANGFUSE_SERVER.md §3.3, §3.5 and §6.1, checked the way zod
//! checks them: every problem becomes an issue (`{code, path, message, …}`) and keys the schema
//! does not list are dropped.
//!
//! A valid event becomes a [`Record`]: the columns it sets, in the server's snake_case names.
//! A key that is absent is "undefined" (it changes nothing in a merge); `null` is an explicit
//! null (it overwrites). Times are milliseconds since the epoch.

use serde_json::{json, Map, Value};

use crate::js::{self, type_name};
use crate::time::{self, Millis};

/// The columns one event sets.
pub(crate) type Record = Map<String, Value>;

/// Which entity an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Entity {
    Trace,
    Observation,
    Score,
}

/// An event that passed its schema.
#[derive(Clone, Debug)]
pub(crate) struct ValidEvent {
    pub(crate) envelope_id: String,
    pub(crate) event_type: String,
    pub(crate) timestamp: Millis,
    pub(crate) content: Content,
}

#[derive(Clone, Debug)]
pub(crate) enum Content {
    /// A trace, observation or score; `record["id"]` is absent when the body had no id.
    Entity(Entity, Record),
    SdkLog(Value),
}

impl ValidEvent {
    /// `*-update` events are merged after every other event (§3.4).
    pub(crate) fn is_update(&self) -> bool {
        self.event_type.ends_with("-update")
    }
}

/// zod's issues for one value.
#[derive(Default)]
struct Issues {
    list: Vec<Value>,
}

impl Issues {
    fn push(&mut self, path: &[&str], mut issue: Map<String, Value>, message: String) {
        issue.insert("path".into(), json!(path));
        issue.insert("message".into(), Value::String(message));
        self.list.push(Value::Object(issue));
    }

    fn invalid_type(&mut self, path: &[&str], expected: &str, got: Option<&Value>) {
        let received = type_name(got);
        let issue = json!({"code": "invalid_type", "expected": expected});
        self.push(
            path,
            object(issue),
            format!("Invalid input: expected {expected}, received {received}"),
        );
    }

    fn custom(&mut self, path: &[&str], message: &str) {
        self.push(path, object(json!({"code": "custom"})), message.to_owned());
    }
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Reads the fields of one body (or envelope), recording issues under `prefix`.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    prefix: &'static str,
    issues: &'a mut Issues,
}

impl<'a> Fields<'a> {
    fn path(&self, key: &'a str) -> Vec<&'a str> {
        if self.prefix.is_empty() {
            vec![key]
        } else {
            vec![self.prefix, key]
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    /// A nullish string of `min..=max` characters.
    fn string(&mut self, key: &'a str, min: usize, max: Option<usize>) -> Option<Value> {
        let path = self.path(key);
        match self.get(key)? {
            Value::Null => Some(Value::Null),
            Value::String(s) => {
                let length = s.encode_utf16().count();
                if length < min {
                    let issue = json!({"code": "too_small", "origin": "string", "minimum": min, "inclusive": true});
                    self.issues.push(
                        &path,
                        object(issue),
                        format!("Too small: expected string to have >={min} characters"),
                    );
                    return None;
                }
                if let Some(max) = max.filter(|&max| length > max) {
                    let issue = json!({"code": "too_big", "origin": "string", "maximum": max, "inclusive": true});
                    self.issues.push(
                        &path,
                        object(issue),
                        format!("Too big: expected string to have <={max} characters"),
                    );
                    return None;
                }
                Some(Value::String(s.clone()))
            }
            other => {
                self.issues.invalid_type(&path, "string", Some(other));
                None
            }
        }
    }

    /// An id: 1–800 characters without a carriage return.
    fn id(&mut self, key: &'a str) -> Option<Value> {
        let value = self.string(key, 1, Some(800))?;
        if value.as_str().is_some_and(|s| s.contains('\r')) {
            let path = self.path(key);
            let issue =
                json!({"code": "invalid_format", "format": "regex", "pattern": "/^[^\\r]*$/"});
            self.issues.push(
                &path,
                object(issue),
                "Invalid string: must match pattern /^[^\\r]*$/".to_owned(),
            );
            return None;
        }
        Some(value)
    }

    fn required_id(&mut self, key: &'a str) -> Option<Value> {
        match self.get(key) {
            None | Some(Value::Null) => {
                let path = self.path(key);
                self.issues.invalid_type(&path, "string", self.get(key));
                None
            }
            Some(_) => self.id(key),
        }
    }

    /// A nullish ISO date-time with `Z` or an offset, as milliseconds.
    fn datetime(&mut self, key: &'a str) -> Option<Value> {
        let path = self.path(key);
        match self.get(key)? {
            Value::Null => Some(Value::Null),
            Value::String(s) => match time::parse_zod_datetime(s) {
                Some(ms) => Some(Value::from(ms)),
                None => {
                    let issue = json!({"code": "invalid_format", "format": "datetime"});
                    self.issues
                        .push(&path, object(issue), "Invalid ISO datetime".to_owned());
                    None
                }
            },
            other => {
                self.issues.invalid_type(&path, "string", Some(other));
                None
            }
        }
    }

    fn boolean(&mut self, key: &'a str) -> Option<Value> {
        let path = self.path(key);
        match self.get(key)? {
            v @ (Value::Null | Value::Bool(_)) => Some(v.clone()),
            other => {
                self.issues.invalid_type(&path, "boolean", Some(other));
                None
            }
        }
    }

    fn one_of(&mut self, key: &'a str, options: &[&str]) -> Option<Value> {
        let path = self.path(key);
        match self.get(key)? {
            Value::Null => Some(Value::Null),
            Value::String(s) if options.contains(&s.as_str()) => Some(Value::String(s.clone())),
            _ => {
                let listed: Vec<String> = options.iter().map(|o| format!("\"{o}\"")).collect();
                let issue = json!({"code": "invalid_value", "values": options});
                self.issues.push(
                    &path,
                    object(issue),
                    format!("Invalid option: expected one of {}", listed.join("|")),
                );
                None
            }
        }
    }

    fn string_array(&mut self, key: &'a str) -> Option<Value> {
        let path = self.path(key);
        match self.get(key)? {
            Value::Null => Some(Value::Null),
            Value::Array(items) if items.iter().all(Value::is_string) => {
                Some(Value::Array(items.clone()))
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    if !item.is_string() {
                        let index = index.to_string();
                        let mut item_path = path.clone();
                        item_path.push(&index);
                        self.issues.invalid_type(&item_path, "string", Some(item));
                    }
                }
                None
            }
            other => {
                self.issues.invalid_type(&path, "array", Some(other));
                None
            }
        }
    }

    /// A nullish integer (a JSON number without a fraction).
    fn integer(&mut self, key: &'a str) -> Option<Value> {
        let path = self.path(key);
        match self.get(key)? {
            Value::Null => Some(Value::Null),
            Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
                Some(js::json_number(n.as_f64().unwrap_or_default()))
            }
            Value::Number(_) => {
                self.issues.invalid_type(&path, "int", self.get(key));
                None
            }
            other => {
                self.issues.invalid_type(&path, "number", Some(other));
                None
            }
        }
    }

    /// Any JSON, `null` included.
    fn any(&self, key: &str) -> Option<Value> {
        self.get(key).cloned()
    }

    /// Metadata as the legacy tables keep it (§3.7): top-level keys with string values, anything
    /// that is not a string JSON-encoded. A root that is not an object is kept under `metadata`
    /// (inferred from the server storing every metadata root it accepts).
    fn metadata(&self, key: &str) -> Option<Value> {
        match self.get(key)? {
            Value::Null => None,
            Value::Object(map) => Some(Value::Object(stringify_values(map))),
            other => Some(json!({"metadata": js::string_of(other)})),
        }
    }
}

/// A map with every value turned into a string the way the legacy tables store metadata.
pub(crate) fn stringify_values(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .map(|(k, v)| (k.clone(), Value::String(js::string_of(v))))
        .collect()
}

/// `PublicEnvironmentName` (§3.5): lower-cased, every leading `langfuse`, `langfuse-` or
/// `langfuse_` removed, cut to 40 characters, and `default` when nothing valid remains.
pub(crate) fn normalize_environment(value: Option<&Value>) -> String {
    let Some(Value::String(text)) = value else {
        return "default".to_owned();
    };
    let mut text = text.to_lowercase();
    while let Some(rest) = text.strip_prefix("langfuse") {
        let rest = rest
            .strip_prefix('-')
            .or_else(|| rest.strip_prefix('_'))
            .unwrap_or(rest);
        text = rest.to_owned();
    }
    let text: String = text.chars().take(40).collect();
    let valid = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if valid {
        text
    } else {
        "default".to_owned()
    }
}

/// The event types `POST /api/public/ingestion` knows (§3.5).
const EVENT_TYPES: &[&str] = &[
    "trace-create",
    "score-create",
    "span-create",
    "span-update",
    "generation-create",
    "generation-update",
    "event-create",
    "agent-create",
    "tool-create",
    "chain-create",
    "retriever-create",
    "evaluator-create",
    "embedding-create",
    "guardrail-create",
    "observation-create",
    "observation-update",
    "sdk-log",
    "dataset-run-item-create",
];

/// The envelope id the 207 answer uses for an event: its `id` if it is a string, else `unknown`.
pub(crate) fn envelope_id_of(raw: &Value) -> String {
    raw.get("id")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned()
}

/// The event type, when it is a string.
pub(crate) fn event_type_of(raw: &Value) -> Option<&str> {
    raw.get("type").and_then(Value::as_str)
}

/// Validates one element of `batch`; the error is the list of zod issues.
pub(crate) fn validate_event(raw: &Value) -> Result<ValidEvent, Vec<Value>> {
    let mut issues = Issues::default();
    let Value::Object(envelope) = raw else {
        issues.invalid_type(&[], "object", Some(raw));
        return Err(issues.list);
    };
    let event_type = match envelope.get("type") {
        Some(Value::String(t)) if EVENT_TYPES.contains(&t.as_str()) => t.clone(),
        _ => {
            let issue = json!({"code": "invalid_union", "errors": [], "note": "No matching discriminator", "discriminator": "type"});
            issues.push(&["type"], object(issue), "Invalid input".to_owned());
            return Err(issues.list);
        }
    };
    let mut fields = Fields {
        map: envelope,
        prefix: "",
        issues: &mut issues,
    };
    let envelope_id = fields.required_id("id");
    let timestamp = match fields.get("timestamp") {
        None | Some(Value::Null) => {
            fields
                .issues
                .invalid_type(&["timestamp"], "string", fields.get("timestamp"));
            None
        }
        Some(_) => fields.datetime("timestamp"),
    };
    let body = match envelope.get("body") {
        Some(Value::Object(body)) => Some(body),
        other => {
            issues.invalid_type(&["body"], "object", other);
            None
        }
    };
    let mut content = body.and_then(|body| body_content(&event_type, body, &mut issues));
    // A trace's `timestamp` and an observation's `startTime` default to the envelope timestamp.
    if let (Some(Content::Entity(entity, record)), Some(Value::Number(ts))) =
        (&mut content, &timestamp)
    {
        let column = match entity {
            Entity::Trace => Some("timestamp"),
            Entity::Observation => Some("start_time"),
            Entity::Score => None,
        };
        if let Some(column) = column {
            if record.get(column).is_none_or(Value::is_null) {
                record.insert(column.to_owned(), Value::Number(ts.clone()));
            }
        }
    }
    match (envelope_id, timestamp, content) {
        (Some(Value::String(envelope_id)), Some(Value::Number(ts)), Some(content))
            if issues.list.is_empty() =>
        {
            Ok(ValidEvent {
                envelope_id,
                event_type,
                timestamp: ts.as_i64().unwrap_or_default(),
                content,
            })
        }
        _ => Err(issues.list),
    }
}

fn body_content(
    event_type: &str,
    body: &Map<String, Value>,
    issues: &mut Issues,
) -> Option<Content> {
    let mut fields = Fields {
        map: body,
        prefix: "body",
        issues,
    };
    match event_type {
        "sdk-log" => {
            // `{"log": <json>}`: the log is required, any JSON.
            match body.get("log") {
                Some(log) => Some(Content::SdkLog(log.clone())),
                None => {
                    fields.issues.invalid_type(&["body", "log"], "json", None);
                    None
                }
            }
        }
        "dataset-run-item-create" => {
            fields.issues.custom(
                &["body"],
                "Dataset run item creation is only allowed for internal usage",
            );
            None
        }
        "trace-create" => Some(Content::Entity(Entity::Trace, trace_body(&mut fields))),
        "score-create" => score_body(&mut fields).map(|r| Content::Entity(Entity::Score, r)),
        _ => observation_body(event_type, &mut fields)
            .map(|r| Content::Entity(Entity::Observation, r)),
    }
}

fn set(record: &mut Record, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        record.insert(key.to_owned(), value);
    }
}

fn trace_body(fields: &mut Fields<'_>) -> Record {
    let mut record = Record::new();
    set(&mut record, "id", fields.id("id"));
    set(&mut record, "timestamp", fields.datetime("timestamp"));
    set(&mut record, "name", fields.string("name", 0, Some(1000)));
    for (column, key) in [
        ("user_id", "userId"),
        ("session_id", "sessionId"),
        ("release", "release"),
        ("version", "version"),
    ] {
        set(&mut record, column, fields.string(key, 0, None));
    }
    // `externalId` passes the schema but has no column of its own.
    fields.string("externalId", 0, None);
    set(&mut record, "input", fields.any("input"));
    set(&mut record, "output", fields.any("output"));
    set(&mut record, "metadata", fields.metadata("metadata"));
    set(&mut record, "tags", fields.string_array("tags"));
    // Stored as `public ?? false`, per event, so a later event without it resets it (§3.7).
    let public = fields.boolean("public");
    record.insert(
        "public".into(),
        Value::Bool(public.and_then(|p| p.as_bool()).unwrap_or(false)),
    );
    record.insert(
        "environment".into(),
        Value::String(normalize_environment(fields.get("environment"))),
    );
    record
}

const OBSERVATION_TYPES: &[&str] = &["SPAN", "GENERATION", "EVENT"];

fn observation_body(event_type: &str, fields: &mut Fields<'_>) -> Option<Record> {
    let kind = event_type
        .strip_suffix("-create")
        .or_else(|| event_type.strip_suffix("-update"))
        .unwrap_or(event_type);
    let legacy = kind == "observation";
    let mut record = Record::new();
    if legacy {
        set(&mut record, "id", fields.id("id"));
        match fields.one_of("type", OBSERVATION_TYPES) {
            Some(Value::String(t)) => {
                record.insert("type".into(), Value::String(t));
            }
            _ if event_type.ends_with("-create") => {
                // Inferred: a legacy create without a type is a span.
                record.insert("type".into(), Value::from("SPAN"));
            }
            _ => {}
        }
    } else {
        set(&mut record, "id", fields.required_id("id"));
        record.insert("type".into(), Value::String(kind.to_ascii_uppercase()));
    }
    set(&mut record, "trace_id", fields.id("traceId"));
    set(&mut record, "name", fields.string("name", 0, None));
    set(&mut record, "start_time", fields.datetime("startTime"));
    set(&mut record, "metadata", fields.metadata("metadata"));
    set(&mut record, "input", fields.any("input"));
    set(&mut record, "output", fields.any("output"));
    set(
        &mut record,
        "level",
        fields.one_of("level", &["DEBUG", "DEFAULT", "WARNING", "ERROR"]),
    );
    set(
        &mut record,
        "status_message",
        fields.string("statusMessage", 0, None),
    );
    set(&mut record, "version", fields.string("version", 0, None));
    set(
        &mut record,
        "parent_observation_id",
        fields.string("parentObservationId", 0, None),
    );
    // The legacy `observation-*` bodies have no environment field, so their rows get `default`.
    let environment = if legacy {
        None
    } else {
        fields.get("environment")
    };
    record.insert(
        "environment".into(),
        Value::String(normalize_environment(environment)),
    );
    if kind != "event" {
        // `event-create` has no `endTime`; one that is sent is dropped with the unknown keys.
        set(&mut record, "end_time", fields.datetime("endTime"));
    }
    if kind != "span" && kind != "event" {
        generation_fields(fields, &mut record, !legacy);
    }
    Some(record)
}

fn generation_fields(fields: &mut Fields<'_>, record: &mut Record, with_prompt: bool) {
    set(
        record,
        "completion_start_time",
        fields.datetime("completionStartTime"),
    );
    set(record, "model", fields.string("model", 0, None));
    set(record, "model_parameters", model_parameters(fields));
    let (usage, usage_cost) = deprecated_usage(fields);
    let usage_details = usage_details(fields);
    set(record, "usage_details", usage_details.or(usage));
    set(record, "cost_details", cost_details(fields).or(usage_cost));
    if with_prompt {
        let name = fields.string("promptName", 0, None);
        let version = fields.integer("promptVersion");
        let has = |v: &Option<Value>| v.as_ref().is_some_and(|v| !v.is_null());
        if has(&name) != has(&version) {
            let issue = json!({"code": "custom"});
            fields
                .issues
                .push(&["body"], object(issue), "Invalid input".to_owned());
        }
        set(record, "prompt_name", name);
        set(record, "prompt_version", version);
    }
}

/// `modelParameters`: an object whose values are strings, numbers, booleans, string arrays,
/// string records or null.
fn model_parameters(fields: &mut Fields<'_>) -> Option<Value> {
    let value = fields.get("modelParameters")?;
    let valid_member = |v: &Value| match v {
        Value::Null | Value::String(_) | Value::Number(_) | Value::Bool(_) => true,
        Value::Array(items) => items.iter().all(Value::is_string),
        Value::Object(map) => map.values().all(Value::is_string),
    };
    match value {
        Value::Null => Some(Value::Null),
        Value::Object(map) if map.values().all(valid_member) => Some(value.clone()),
        Value::Object(_) => {
            let issue = json!({"code": "invalid_union", "errors": []});
            fields.issues.push(
                &["body", "modelParameters"],
                object(issue),
                "Invalid input".to_owned(),
            );
            None
        }
        other => {
            fields
                .issues
                .invalid_type(&["body", "modelParameters"], "record", Some(other));
            None
        }
    }
}

/// The deprecated `usage` object, as `(usage_details, cost_details)`.
fn deprecated_usage(fields: &mut Fields<'_>) -> (Option<Value>, Option<Value>) {
    let Some(Value::Object(usage)) = fields.get("usage") else {
        if let Some(other) = fields.get("usage").filter(|v| !v.is_null()) {
            fields
                .issues
                .invalid_type(&["body", "usage"], "object", Some(other));
        }
        return (None, None);
    };
    let mut details = Map::new();
    let mut cost = Map::new();
    let mut integer = |key: &str, into: &str, details: &mut Map<String, Value>| match usage.get(key)
    {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_f64().is_some_and(|f| f.fract() == 0.0) => {
            details.insert(into.to_owned(), n.clone().into());
        }
        Some(other) => fields
            .issues
            .invalid_type(&["body", "usage", key], "int", Some(other)),
    };
    for (key, into) in [
        ("input", "input"),
        ("output", "output"),
        ("total", "total"),
        ("promptTokens", "input"),
        ("completionTokens", "output"),
        ("totalTokens", "total"),
    ] {
        integer(key, into, &mut details);
    }
    for (key, into) in [
        ("inputCost", "input"),
        ("outputCost", "output"),
        ("totalCost", "total"),
    ] {
        if let Some(Value::Number(n)) = usage.get(key) {
            cost.insert(into.to_owned(), n.clone().into());
        }
    }
    let some = |map: Map<String, Value>| (!map.is_empty()).then_some(Value::Object(map));
    (some(details), some(cost))
}

/// `usageDetails` in the three shapes of §3.5, in order.
fn usage_details(fields: &mut Fields<'_>) -> Option<Value> {
    let map = match fields.get("usageDetails")? {
        Value::Object(map) => map,
        Value::Null => return None,
        other => {
            fields
                .issues
                .invalid_type(&["body", "usageDetails"], "object", Some(other));
            return None;
        }
    };
    let openai = |input: &str, output: &str| -> Option<Map<String, Value>> {
        let input_details = format!("{input}_details");
        let output_details = format!("{output}_details");
        let allowed = [
            input,
            output,
            "total_tokens",
            &input_details,
            &output_details,
        ];
        if !map.keys().all(|k| allowed.contains(&k.as_str())) {
            return None;
        }
        let count = |key: &str| map.get(key).and_then(Value::as_f64);
        let (mut input_count, mut output_count, total) =
            (count(input)?, count(output)?, count("total_tokens")?);
        let mut out = Map::new();
        for (details_key, prefix, subtract_from) in [
            (&input_details, "input", &mut input_count),
            (&output_details, "output", &mut output_count),
        ] {
            if let Some(Value::Object(details)) = map.get(details_key.as_str()) {
                for (k, v) in details {
                    if let Some(n) = v.as_f64() {
                        out.insert(format!("{prefix}_{k}"), js::json_number(n));
                        *subtract_from = (*subtract_from - n).max(0.0);
                    }
                }
            }
        }
        out.insert("input".into(), js::json_number(input_count));
        out.insert("output".into(), js::json_number(output_count));
        out.insert("total".into(), js::json_number(total));
        Some(out)
    };
    let converted = openai("prompt_tokens", "completion_tokens")
        .or_else(|| openai("input_tokens", "output_tokens"))
        .unwrap_or_else(|| integer_usage(map));
    (!converted.is_empty()).then_some(Value::Object(converted))
}

/// The third `usageDetails` shape: integers ≥ 0 kept, numeric strings through `parseInt`,
/// everything else dropped without a word.
pub(crate) fn integer_usage(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter_map(|(k, v)| {
            let n = match v {
                Value::Number(n) => n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0)?,
                Value::String(s) => {
                    // The cast is exact: JavaScript numbers this large are integers anyway.
                    #[allow(clippy::cast_precision_loss)]
                    let parsed = js::parse_int(s)? as f64;
                    parsed
                }
                _ => return None,
            };
            (n >= 0.0).then(|| (k.clone(), js::json_number(n)))
        })
        .collect()
}

/// `costDetails`: only numbers ≥ 0 are kept; nothing left means absent.
fn cost_details(fields: &mut Fields<'_>) -> Option<Value> {
    match fields.get("costDetails")? {
        Value::Object(map) => {
            let kept = non_negative_numbers(map);
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        Value::Null => None,
        other => {
            fields
                .issues
                .invalid_type(&["body", "costDetails"], "object", Some(other));
            None
        }
    }
}

pub(crate) fn non_negative_numbers(map: &Map<String, Value>) -> Map<String, Value> {
    map.iter()
        .filter(|(_, v)| v.as_f64().is_some_and(|f| f >= 0.0))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

const SCORE_TARGET_MESSAGE: &str = "Provide exactly one of the following: traceId (with optional observationId), sessionId or datasetRunId. ObservationId requires traceId.";

fn score_body(fields: &mut Fields<'_>) -> Option<Record> {
    let mut record = Record::new();
    set(&mut record, "id", fields.id("id"));
    match fields.get("name") {
        Some(Value::String(_)) => set(&mut record, "name", fields.string("name", 1, None)),
        other => fields
            .issues
            .invalid_type(&["body", "name"], "string", other),
    }
    for (column, key) in [
        ("trace_id", "traceId"),
        ("session_id", "sessionId"),
        ("dataset_run_id", "datasetRunId"),
        ("observation_id", "observationId"),
        ("comment", "comment"),
        ("config_id", "configId"),
        ("queue_id", "queueId"),
        ("execution_trace_id", "executionTraceId"),
    ] {
        set(&mut record, column, fields.string(key, 0, None));
    }
    let data_type = fields.one_of(
        "dataType",
        &["NUMERIC", "CATEGORICAL", "BOOLEAN", "TEXT", "CORRECTION"],
    );
    set(
        &mut record,
        "source",
        fields
            .one_of("source", &["API", "EVAL", "ANNOTATION"])
            .filter(|v| !v.is_null())
            .or_else(|| Some(Value::from("API"))),
    );
    if let Some(metadata) = fields.get("metadata").filter(|m| !m.is_null()) {
        record.insert("metadata".into(), metadata.clone());
    }
    record.insert(
        "environment".into(),
        Value::String(normalize_environment(fields.get("environment"))),
    );
    let value = fields.get("value");
    let data_type = data_type.as_ref().and_then(Value::as_str);
    let value_ok = match (data_type, value) {
        (_, None | Some(Value::Null)) => {
            fields
                .issues
                .invalid_type(&["body", "value"], "number", value);
            false
        }
        (Some("NUMERIC"), Some(Value::Number(_)))
        | (Some("CATEGORICAL" | "CORRECTION"), Some(Value::String(_)))
        | (None, Some(Value::Number(_) | Value::String(_))) => true,
        (Some("BOOLEAN"), Some(Value::Number(n))) => {
            let ok = matches!(n.as_f64(), Some(f) if f == 0.0 || f == 1.0);
            if !ok {
                fields.issues.custom(
                    &["body", "value"],
                    "Value must be a number equal to either 0 or 1 for data type BOOLEAN",
                );
            }
            ok
        }
        (Some("TEXT"), Some(Value::String(s))) => {
            let length = s.encode_utf16().count();
            let ok = (1..=500).contains(&length);
            if !ok {
                fields.issues.custom(
                    &["body", "value"],
                    "Value must be a string of 1 to 500 characters for data type TEXT",
                );
            }
            ok
        }
        (Some(expected), Some(other)) => {
            let wanted = if expected == "NUMERIC" || expected == "BOOLEAN" {
                "number"
            } else {
                "string"
            };
            fields.issues.custom(
                &["body", "value"],
                &format!(
                    "Value must be a {wanted} for data type {expected}, received {}",
                    type_name(Some(other))
                ),
            );
            false
        }
        (None, Some(other)) => {
            fields
                .issues
                .invalid_type(&["body", "value"], "number", Some(other));
            false
        }
    };
    if value_ok {
        set(&mut record, "value", value.cloned());
    }
    if let Some(data_type) = data_type {
        record.insert("data_type".into(), Value::from(data_type));
    }
    if data_type == Some("CORRECTION") && record.get("config_id").is_some_and(|c| !c.is_null()) {
        fields.issues.custom(
            &["body", "configId"],
            "Corrections must not have a configId",
        );
    }
    let present = |column: &str| record.get(column).is_some_and(|v| !v.is_null());
    let targets = ["trace_id", "session_id", "dataset_run_id"]
        .iter()
        .filter(|c| present(c))
        .count();
    if targets != 1 || (present("observation_id") && !present("trace_id")) {
        fields.issues.custom(&["body"], SCORE_TARGET_MESSAGE);
    }
    Some(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event_type: &str, body: Value) -> Value {
        json!({"id": "e", "type": event_type, "timestamp": "2024-01-02T03:04:05Z", "body": body})
    }

    fn messages(result: Result<ValidEvent, Vec<Value>>) -> Vec<String> {
        result
            .expect_err("invalid")
            .iter()
            .map(|i| i["message"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn s3_5_environment_normalisation() {
        let cases = [
            (json!("Production"), "production"),
            (json!("langfuse-langfuse_dev"), "dev"),
            (json!("langfuse"), "default"),
            (json!("has space"), "default"),
            (json!(7), "default"),
            (json!("a".repeat(50)), &"a".repeat(40)),
        ];
        for (value, expected) in cases {
            assert_eq!(normalize_environment(Some(&value)), expected, "{value}");
        }
        assert_eq!(normalize_environment(None), "default");
    }

    #[test]
    fn s3_5_usage_details_shapes() {
        let usage = |details: Value| {
            let valid = validate_event(&event(
                "generation-create",
                json!({"id": "g", "usageDetails": details}),
            ))
            .expect("valid");
            match valid.content {
                Content::Entity(_, record) => record.get("usage_details").cloned(),
                Content::SdkLog(_) => None,
            }
        };
        assert_eq!(
            usage(
                json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                          "prompt_tokens_details": {"cached_tokens": 4}})
            ),
            Some(json!({"input": 6, "output": 5, "total": 15, "input_cached_tokens": 4}))
        );
        assert_eq!(
            usage(json!({"input_tokens": 3, "output_tokens": 2, "total_tokens": 5})),
            Some(json!({"input": 3, "output": 2, "total": 5}))
        );
        assert_eq!(
            usage(json!({"input": 3, "output": 2.5, "bad": -1, "s": "7", "n": {"x": 1}})),
            Some(json!({"input": 3, "s": 7}))
        );
        assert_eq!(
            usage(json!({"output": 2.5})),
            None,
            "nothing left is absent"
        );
    }

    #[test]
    fn s3_3_unknown_event_type_is_a_discriminator_issue() {
        assert_eq!(
            messages(validate_event(&event("span-delete", json!({})))),
            ["Invalid input"]
        );
    }
}
