//! What the server reads from one span (LANGFUSE_SERVER.md §4.4–§4.10, §4.12): everything both
//! conversion paths share. The paths themselves (legacy events, `events_full` rows) are in
//! [`super::legacy_path`] and [`super::direct_path`].

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::decode::{attrs_to_map, ResourceGroup, ScopeGroup, SpanIn};
use crate::js;
use crate::schema::normalize_environment;
use crate::time::{self, Millis};

/// The scope prefix of Langfuse SDK spans, compared case-sensitively (§4.4).
const LANGFUSE_SCOPE_PREFIX: &str = "langfuse-sdk";

/// Everything read from one span.
#[derive(Debug, Clone)]
pub(crate) struct Extracted {
    pub(crate) trace_id: String,
    pub(crate) span_id: String,
    /// Empty for a root span.
    pub(crate) parent_id: String,
    pub(crate) start: Millis,
    pub(crate) end: Millis,
    pub(crate) name: String,
    /// Upper case, e.g. `GENERATION`.
    pub(crate) kind: &'static str,
    pub(crate) level: &'static str,
    pub(crate) status_message: Option<String>,
    pub(crate) environment: String,
    pub(crate) release: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) model: Option<String>,
    pub(crate) model_parameters: Option<Map<String, Value>>,
    /// The usage object before the schema's integer rule.
    pub(crate) usage: Option<Map<String, Value>>,
    /// The cost object as parsed.
    pub(crate) cost: Option<Map<String, Value>>,
    /// The completion start as the legacy event carries it (unquoted if it was JSON-quoted),
    /// present only when it parses as a date.
    pub(crate) completion_start: Option<Value>,
    /// Prompt name and version as sent (GENERATION only).
    pub(crate) prompt_name: Option<Value>,
    pub(crate) prompt_version: Option<Value>,
    pub(crate) input: Option<Value>,
    pub(crate) output: Option<Value>,
    pub(crate) observation_metadata: Map<String, Value>,
    pub(crate) trace_metadata: Map<String, Value>,
    /// `langfuse.trace.metadata` from the resource (legacy path only).
    pub(crate) resource_trace_metadata: Map<String, Value>,
    /// `metadata.attributes`, for spans of scopes other than `langfuse-sdk*`.
    pub(crate) attributes_dump: Option<Map<String, Value>>,
    pub(crate) resource_attributes: Map<String, Value>,
    pub(crate) scope: Value,
    pub(crate) trace_name: Option<String>,
    pub(crate) user_id: Option<String>,
    pub(crate) session_id: Option<String>,
    pub(crate) tags: Option<Vec<String>>,
    pub(crate) public: bool,
    pub(crate) trace_input: Option<Value>,
    pub(crate) trace_output: Option<Value>,
    pub(crate) as_root: bool,
    pub(crate) is_app_root: bool,
    /// Whether the span carries a trace-update key (§4.14 rule 2).
    pub(crate) has_trace_updates: bool,
}

impl Extracted {
    /// The keys the server adds to every observation's metadata (§4.9): the attribute dump of
    /// a scope that is not `langfuse-sdk`, the resource attributes and the scope. Inserted after
    /// user keys on the legacy path (they win) and before them on the direct path (they lose).
    pub(crate) fn insert_built_in_metadata(&self, metadata: &mut Map<String, Value>) {
        if let Some(dump) = &self.attributes_dump {
            metadata.insert("attributes".into(), Value::Object(dump.clone()));
        }
        metadata.insert(
            "resourceAttributes".into(),
            Value::Object(self.resource_attributes.clone()),
        );
        metadata.insert("scope".into(), self.scope.clone());
    }
}

/// Attribute access with the server's "first non-empty key wins" lookups.
pub(crate) struct Attributes(Map<String, Value>);

fn non_empty(value: &Value) -> bool {
    !matches!(value, Value::Null) && value.as_str() != Some("")
}

impl Attributes {
    pub(crate) fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| non_empty(v))
    }

    fn first(&self, keys: &[&str]) -> Option<&Value> {
        keys.iter().find_map(|k| self.get(k))
    }

    /// The first non-empty value, as a string (non-strings JSON-encoded).
    fn first_string(&self, keys: &[&str]) -> Option<String> {
        self.first(keys).map(js::string_of)
    }

    fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a Value)> {
        self.0
            .iter()
            .filter_map(move |(k, v)| Some((k.strip_prefix(prefix)?, v)))
    }

    fn is_true(&self, key: &str) -> bool {
        matches!(self.get(key), Some(Value::Bool(true))) || self.get(key) == Some(&json!("true"))
    }
}

fn parse_json_text(value: &Value) -> Option<Value> {
    match value {
        Value::String(s) => serde_json::from_str(s).ok(),
        _ => None,
    }
}

pub(crate) fn extract(resource: &ResourceGroup, scope: &ScopeGroup, span: &SpanIn) -> Extracted {
    let attrs = Attributes(attrs_to_map(&span.attributes));
    let resource_attrs = Attributes(attrs_to_map(&resource.attributes));
    let langfuse_scope = scope.name.starts_with(LANGFUSE_SCOPE_PREFIX);

    let start = span.start_nanos.or(span.end_nanos).map(nanos_to_millis);
    let end = span.end_nanos.or(span.start_nanos).map(nanos_to_millis);
    let now = time::now_millis();
    let (start, end) = (start.unwrap_or(now), end.unwrap_or(now));

    let kind = observation_type(&attrs, &resource_attrs, scope);
    let (input, output) = input_output(&attrs, span);
    let mut observation_metadata = domain_metadata(
        &attrs,
        "langfuse.observation.metadata",
        true,
        &[
            "langfuse.observation.metadata.",
            "langfuse.metadata.",
            "ai.telemetry.metadata.",
        ],
    );
    let input = move_tools(&mut observation_metadata, input);

    let agent_operation = matches!(
        attrs.get("gen_ai.operation.name").and_then(Value::as_str),
        Some("invoke_agent" | "agent_step")
    );
    let generation = kind == "GENERATION";
    let telemetry_prompt = attrs
        .get("ai.telemetry.metadata.langfusePrompt")
        .and_then(parse_json_text);
    let prompt_part = |keys: &[&str], member: &str| {
        attrs
            .first(keys)
            .cloned()
            .or_else(|| telemetry_prompt.as_ref()?.get(member).cloned())
    };

    Extracted {
        trace_id: span.trace_id.clone(),
        span_id: span.span_id.clone(),
        parent_id: span.parent_span_id.clone(),
        start,
        end,
        name: attrs
            .first_string(&[
                "gen_ai.tool.name",
                "genkit:name",
                "logfire.msg",
                "ai.toolCall.name",
            ])
            .unwrap_or_else(|| span.name.clone()),
        kind,
        level: level(&attrs, span),
        status_message: attrs
            .first_string(&["langfuse.observation.status_message"])
            .or_else(|| span.status_message.clone()),
        environment: environment(&attrs, &resource_attrs),
        release: attrs
            .first_string(&["langfuse.release"])
            .or_else(|| resource_attrs.first_string(&["langfuse.release"])),
        version: attrs
            .first_string(&["langfuse.version"])
            .or_else(|| resource_attrs.first_string(&["service.version"])),
        model: (!agent_operation)
            .then(|| {
                attrs.first_string(&[
                    "langfuse.observation.model.name",
                    "gen_ai.response.model",
                    "ai.model.id",
                    "gen_ai.request.model",
                    "llm.response.model",
                    "llm.model_name",
                    "model",
                ])
            })
            .flatten(),
        model_parameters: model_parameters(&attrs),
        usage: (!agent_operation).then(|| usage(&attrs)).flatten(),
        cost: (!agent_operation).then(|| cost(&attrs)).flatten(),
        completion_start: completion_start(&attrs),
        prompt_name: generation
            .then(|| {
                prompt_part(
                    &["langfuse.observation.prompt.name", "langfuse.prompt.name"],
                    "name",
                )
            })
            .flatten(),
        prompt_version: generation
            .then(|| {
                prompt_part(
                    &[
                        "langfuse.observation.prompt.version",
                        "langfuse.prompt.version",
                    ],
                    "version",
                )
            })
            .flatten(),
        input,
        output,
        observation_metadata,
        trace_metadata: domain_metadata(
            &attrs,
            "langfuse.trace.metadata",
            true,
            &["langfuse.trace.metadata.", "langfuse.metadata."],
        ),
        resource_trace_metadata: domain_metadata(
            &resource_attrs,
            "langfuse.trace.metadata",
            false,
            &["langfuse.trace.metadata."],
        ),
        attributes_dump: (!langfuse_scope).then(|| attributes_dump(&attrs)),
        resource_attributes: resource_attrs.0.clone(),
        scope: json!({
            "name": scope.name,
            "version": scope.version,
            "attributes": attrs_to_map(&scope.attributes),
        }),
        trace_name: attrs.first_string(&["langfuse.trace.name"]),
        user_id: attrs.first_string(&[
            "langfuse.user.id",
            "user.id",
            "langfuse.observation.metadata.langfuse_user_id",
            "langfuse.trace.metadata.langfuse_user_id",
            "ai.telemetry.metadata.userId",
        ]),
        session_id: attrs.first_string(&[
            "langfuse.session.id",
            "session.id",
            "gen_ai.conversation.id",
            "langfuse.observation.metadata.langfuse_session_id",
            "langfuse.trace.metadata.langfuse_session_id",
            "ai.telemetry.metadata.sessionId",
        ]),
        tags: tags(&attrs),
        public: ["langfuse.trace.public", "langfuse.public"]
            .iter()
            .find(|k| attrs.get(k).is_some())
            .is_some_and(|k| attrs.is_true(k)),
        trace_input: attrs.get("langfuse.trace.input").cloned(),
        trace_output: attrs.get("langfuse.trace.output").cloned(),
        as_root: attrs.is_true("langfuse.internal.as_root"),
        is_app_root: attrs.is_true("langfuse.internal.is_app_root"),
        has_trace_updates: has_trace_updates(&attrs),
    }
}

fn nanos_to_millis(nanos: u128) -> Millis {
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

/// §4.6: the first mapper that returns a type wins.
fn observation_type(attrs: &Attributes, resource: &Attributes, scope: &ScopeGroup) -> &'static str {
    let text = |key: &str| attrs.get(key).and_then(Value::as_str);
    let langfuse_type = text("langfuse.observation.type");
    // The special case of old Python SDKs (§4.4): a `span` carrying generation attributes.
    let old_python = scope.name == "langfuse-sdk"
        && resource
            .get("telemetry.sdk.language")
            .and_then(Value::as_str)
            == Some("python")
        && scope.version.as_deref().is_none_or(version_at_most_3_3);
    let generation_attributes = [
        "langfuse.observation.model.name",
        "langfuse.observation.usage_details",
        "langfuse.observation.cost_details",
    ]
    .iter()
    .any(|k| attrs.get(k).is_some());
    if old_python && langfuse_type == Some("span") && generation_attributes {
        return "GENERATION";
    }
    let from_langfuse = match langfuse_type {
        Some("span") => Some("SPAN"),
        Some("generation") => Some("GENERATION"),
        Some("event") => Some("EVENT"),
        Some("embedding") => Some("EMBEDDING"),
        Some("agent") => Some("AGENT"),
        Some("tool") => Some("TOOL"),
        Some("chain") => Some("CHAIN"),
        Some("retriever") => Some("RETRIEVER"),
        Some("guardrail") => Some("GUARDRAIL"),
        Some("evaluator") => Some("EVALUATOR"),
        _ => None,
    };
    let from_openinference = || match text("openinference.span.kind") {
        Some("LLM") => Some("GENERATION"),
        Some("CHAIN") => Some("CHAIN"),
        Some("RETRIEVER") => Some("RETRIEVER"),
        Some("EMBEDDING") => Some("EMBEDDING"),
        Some("AGENT") => Some("AGENT"),
        Some("TOOL") => Some("TOOL"),
        Some("GUARDRAIL") => Some("GUARDRAIL"),
        Some("EVALUATOR") => Some("EVALUATOR"),
        _ => None,
    };
    let from_operation = || match text("gen_ai.operation.name") {
        Some("chat" | "completion" | "text_completion" | "generate_content" | "generate") => {
            Some("GENERATION")
        }
        Some("embeddings") => Some("EMBEDDING"),
        Some("invoke_agent" | "create_agent") => Some("AGENT"),
        Some("execute_tool") => Some("TOOL"),
        _ => None,
    };
    let from_tool = || {
        ["gen_ai.tool.name", "gen_ai.tool.call.id"]
            .iter()
            .any(|k| attrs.get(k).is_some())
            .then_some("TOOL")
    };
    let from_model = || {
        [
            "langfuse.observation.model.name",
            "gen_ai.request.model",
            "gen_ai.response.model",
            "llm.model_name",
            "model",
        ]
        .iter()
        .any(|k| attrs.get(k).is_some())
        .then_some("GENERATION")
    };
    from_langfuse
        .or_else(from_openinference)
        .or_else(from_operation)
        .or_else(from_tool)
        .or_else(from_model)
        .unwrap_or("SPAN")
}

fn version_at_most_3_3(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| js::parse_int(p).unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    major < 3 || (major == 3 && minor <= 3)
}

/// §4.7 level: an explicit level (through the alias table) beats the status; a status counts as
/// an error only when its code is the number 2.
fn level(attrs: &Attributes, span: &SpanIn) -> &'static str {
    let explicit = attrs
        .get("langfuse.observation.level")
        .map(|v| js::string_of(v).trim().to_uppercase());
    let aliased = match explicit.as_deref() {
        Some("DEBUG" | "TRACE" | "VERBOSE") => Some("DEBUG"),
        Some("DEFAULT" | "INFO" | "LOG" | "NOTICE" | "OK" | "SUCCESS") => Some("DEFAULT"),
        Some("WARNING" | "WARN") => Some("WARNING"),
        Some("ERROR" | "FATAL" | "CRITICAL") => Some("ERROR"),
        _ => None,
    };
    aliased.unwrap_or_else(|| {
        let error = span
            .status_code
            .as_ref()
            .and_then(Value::as_f64)
            .is_some_and(|code| code == 2.0);
        if error {
            "ERROR"
        } else {
            "DEFAULT"
        }
    })
}

/// §4.5: for each key in order, the span attribute and then the resource attribute.
fn environment(attrs: &Attributes, resource: &Attributes) -> String {
    let found = [
        "langfuse.environment",
        "deployment.environment.name",
        "deployment.environment",
    ]
    .iter()
    .find_map(|k| attrs.get(k).or_else(|| resource.get(k)));
    normalize_environment(found)
}

/// §4.9 steps 1 and 2 for one domain.
fn domain_metadata(
    attrs: &Attributes,
    object_key: &str,
    with_shared: bool,
    flat_prefixes: &[&str],
) -> Map<String, Value> {
    let object = attrs.get(object_key).or_else(|| {
        with_shared
            .then(|| attrs.get("langfuse.metadata"))
            .flatten()
    });
    let mut metadata = match object.and_then(parse_json_text) {
        Some(Value::Object(map)) => map,
        // Inferred: a top-level array is spread into the keys "0", "1", ...
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), v))
            .collect(),
        _ => Map::new(),
    };
    for prefix in flat_prefixes {
        for (key, value) in attrs.with_prefix(prefix) {
            let excluded = *prefix == "ai.telemetry.metadata."
                && matches!(key, "userId" | "sessionId" | "tags" | "langfusePrompt");
            if !excluded && !key.is_empty() {
                metadata.insert(key.to_owned(), value.clone());
            }
        }
    }
    metadata
}

/// The `tools` trap of §4.9: a metadata key `tools` holding named tool definitions moves into
/// the input.
fn move_tools(metadata: &mut Map<String, Value>, input: Option<Value>) -> Option<Value> {
    let tools = match metadata.get("tools") {
        Some(Value::Array(items)) => Value::Array(items.clone()),
        // Inferred: a JSON-encoded list (as the SDKs send metadata values) counts too.
        Some(text @ Value::String(_)) => match parse_json_text(text) {
            Some(list @ Value::Array(_)) => list,
            _ => return input,
        },
        _ => return input,
    };
    let named = |tool: &Value| {
        tool.get("name").is_some_and(Value::is_string)
            || tool
                .get("function")
                .and_then(|f| f.get("name"))
                .is_some_and(Value::is_string)
    };
    let all_named = tools
        .as_array()
        .is_some_and(|t| !t.is_empty() && t.iter().all(named));
    if !all_named {
        return input;
    }
    metadata.remove("tools");
    let structured = input
        .as_ref()
        .map(|i| parse_json_text(i).unwrap_or_else(|| i.clone()));
    Some(match structured {
        Some(Value::Array(messages)) => json!({"messages": messages, "tools": tools}),
        Some(Value::Object(mut object)) => {
            object.insert("tools".into(), tools);
            Value::Object(object)
        }
        Some(Value::String(prompt)) => json!({"prompt": prompt, "tools": tools}),
        Some(other) => json!({"prompt": other, "tools": tools}),
        None => json!({"tools": tools}),
    })
}

/// The bare attribute pairs of §4.8 this server reads, in the server's order.
const IO_PAIRS: &[(&str, &str)] = &[
    ("prompt", "all_messages_events"),
    ("mlflow.spanInputs", "mlflow.spanOutputs"),
    ("traceloop.entity.input", "traceloop.entity.output"),
    ("input.value", "output.value"),
    ("input", "output"),
    ("tool_arguments", "tool_response"),
];

/// Keys that are read as input or output and so are left out of `metadata.attributes`.
const IO_KEYS: &[&str] = &[
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
    "pydantic_ai.all_messages",
    "final_result",
    "tool_arguments",
    "tool_response",
    "gen_ai.input.messages",
    "gen_ai.output.messages",
    "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result",
];

const DUMP_EXCLUDED_PREFIXES: &[&str] = &[
    "gen_ai.prompt",
    "gen_ai.completion",
    "llm.input_messages",
    "llm.output_messages",
    "langfuse.trace.metadata",
    "langfuse.observation.metadata",
    "ai.telemetry.metadata",
];

/// §4.8, stopping at the first source that yields an input or an output. Sources 2, 4–9, 14,
/// 16 and 17 (framework-specific ones) are not simulated.
fn input_output(attrs: &Attributes, span: &SpanIn) -> (Option<Value>, Option<Value>) {
    let pair = |input_key: &str, output_key: &str| {
        let input = attrs.get(input_key).cloned();
        let output = attrs.get(output_key).cloned();
        (input.is_some() || output.is_some()).then_some((input, output))
    };
    if let Some(found) = pair("langfuse.observation.input", "langfuse.observation.output") {
        return found;
    }
    // Source 3: the inference-details span event.
    for event in &span.events {
        if event.name == "gen_ai.client.inference.operation.details" {
            let event_attrs = Attributes(attrs_to_map(&event.attributes));
            let input = event_attrs.get("gen_ai.input.messages").cloned();
            let output = event_attrs.get("gen_ai.output.messages").cloned();
            if input.is_some() || output.is_some() {
                return (input, output);
            }
        }
    }
    for (input_key, output_key) in IO_PAIRS {
        if let Some(found) = pair(input_key, output_key) {
            return found;
        }
    }
    if let Some((input, output)) = pair("gen_ai.input.messages", "gen_ai.output.messages") {
        return (with_system_instructions(attrs, input), output);
    }
    pair("gen_ai.tool.call.arguments", "gen_ai.tool.call.result").unwrap_or((None, None))
}

/// Source 18: `gen_ai.system_instructions` goes first into a message array without a system
/// message.
fn with_system_instructions(attrs: &Attributes, input: Option<Value>) -> Option<Value> {
    let Some(instructions) = attrs.get("gen_ai.system_instructions") else {
        return input;
    };
    let parsed = input.as_ref().and_then(|i| match i {
        Value::Array(_) => Some(i.clone()),
        other => parse_json_text(other),
    });
    match parsed {
        Some(Value::Array(mut messages))
            if !messages
                .iter()
                .any(|m| m.get("role") == Some(&json!("system"))) =>
        {
            let content = parse_json_text(instructions).unwrap_or_else(|| instructions.clone());
            messages.insert(0, json!({"role": "system", "content": content}));
            Some(Value::Array(messages))
        }
        _ => input,
    }
}

/// `metadata.attributes` for scopes other than `langfuse-sdk*` (§4.4).
fn attributes_dump(attrs: &Attributes) -> Map<String, Value> {
    attrs
        .0
        .iter()
        .filter(|(k, _)| {
            !IO_KEYS.contains(&k.as_str())
                && !DUMP_EXCLUDED_PREFIXES.iter().any(|p| k.starts_with(p))
        })
        .map(|(k, v)| (k.clone(), Value::String(js::string_of(v))))
        .collect()
}

/// Model parameters (§4.7): values that are strings or numbers are kept, the rest JSON-encoded.
fn model_parameters(attrs: &Attributes) -> Option<Map<String, Value>> {
    let object = |key: &str| match attrs.get(key).and_then(parse_json_text) {
        Some(Value::Object(map)) => Some(map),
        _ => None,
    };
    let raw = object("langfuse.observation.model.parameters")
        .or_else(|| object("llm.invocation_parameters"))
        .or_else(|| object("model_config"))
        .unwrap_or_else(|| {
            ["gen_ai.request.", "llm.invocation_parameters."]
                .iter()
                .flat_map(|prefix| attrs.with_prefix(prefix))
                .filter(|(k, _)| *k != "model" && !k.ends_with(".model"))
                .map(|(k, v)| (k.to_owned(), v.clone()))
                .collect()
        });
    let kept: Map<String, Value> = raw
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(_) | Value::Number(_) => (k, v),
            other => (k, Value::String(other.to_string())),
        })
        .collect();
    (!kept.is_empty()).then_some(kept)
}

/// Usage (§4.7, §4.12): `usage_details` when it is there, else the generic `gen_ai.usage.*` and
/// `llm.token_count.*` rule.
fn usage(attrs: &Attributes) -> Option<Map<String, Value>> {
    if let Some(value) = attrs.get("langfuse.observation.usage_details") {
        match value {
            Value::String(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(map)) => return Some(map),
                Ok(_) => return Some(Map::new()),
                // Invalid JSON falls through to the generic rule.
                Err(_) => {}
            },
            _ => return Some(Map::new()),
        }
    }
    generic_usage(attrs)
}

fn generic_usage(attrs: &Attributes) -> Option<Map<String, Value>> {
    let mut raw: BTreeMap<String, f64> = BTreeMap::new();
    for prefix in ["gen_ai.usage.", "llm.token_count."] {
        for (key, value) in attrs.with_prefix(prefix) {
            if key == "cost" {
                continue;
            }
            if let Some(n) = js::number(value) {
                raw.entry(key.to_owned()).or_insert(n);
            }
        }
    }
    if raw.is_empty() {
        return None;
    }
    let mut used: Vec<&str> = Vec::new();
    let mut take_first = |keys: &[&'static str]| {
        used.extend(keys);
        keys.iter().find_map(|k| raw.get(*k).copied())
    };
    let input = take_first(&["prompt_tokens", "input_tokens", "prompt"]);
    let output = take_first(&["completion_tokens", "output_tokens", "completion"]);
    let total = take_first(&["total_tokens", "total"]);
    let cached = take_first(&[
        "cache_read.input_tokens",
        "cache_read_input_tokens",
        "cache_read_tokens",
        "details.cache_read_tokens",
        "details.cache_read_input_tokens",
        "prompt_details.cache_read",
        "input_cached_tokens",
    ]);
    let creation = take_first(&[
        "cache_creation.input_tokens",
        "cache_creation_input_tokens",
        "cache_write_tokens",
        "details.cache_write_tokens",
        "details.cache_creation_input_tokens",
        "input_cache_creation",
    ]);
    let reasoning = take_first(&[
        "reasoning.output_tokens",
        "completion_details.reasoning",
        "output_reasoning_tokens",
    ]);
    let audio = take_first(&["completion_details.audio", "output_audio_tokens"]);
    let mut out = Map::new();
    let mut put = |key: &str, value: Option<f64>| {
        if let Some(v) = value {
            out.insert(key.to_owned(), js::json_number(v));
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
        if !used.contains(&key.as_str()) {
            let name = key.strip_prefix("details.").unwrap_or(key);
            out.entry(name.to_owned())
                .or_insert_with(|| js::json_number(*value));
        }
    }
    Some(out)
}

/// Cost (§4.7): `cost_details`, then `gen_ai.usage.cost`, then `llm.cost.total`.
fn cost(attrs: &Attributes) -> Option<Map<String, Value>> {
    if let Some(Value::Object(map)) = attrs
        .get("langfuse.observation.cost_details")
        .and_then(parse_json_text)
    {
        return Some(map);
    }
    ["gen_ai.usage.cost", "llm.cost.total"]
        .iter()
        .find_map(|k| attrs.get(k).and_then(js::number))
        .map(|total| {
            [("total".to_owned(), js::json_number(total))]
                .into_iter()
                .collect()
        })
}

/// §4.7 completion start: a JSON-quoted ISO string is unquoted; the value counts only when it
/// parses as a date.
fn completion_start(attrs: &Attributes) -> Option<Value> {
    let raw = attrs.get("langfuse.observation.completion_start_time")?;
    let candidate = match parse_json_text(raw) {
        Some(inner @ Value::String(_)) => inner,
        _ => raw.clone(),
    };
    time::parse_js_date(&candidate).map(|_| candidate)
}

/// Tags (§4.7): a string array; a `[`-string parsed as a JSON array; a string with commas split
/// and trimmed; any other string as one tag.
fn tags(attrs: &Attributes) -> Option<Vec<String>> {
    let value = attrs.first(&[
        "langfuse.trace.tags",
        "langfuse.tags",
        "langfuse.observation.metadata.langfuse_tags",
        "langfuse.trace.metadata.langfuse_tags",
        "ai.telemetry.metadata.tags",
        "tag.tags",
    ])?;
    let element = |v: &Value| js::string_of(v);
    Some(match value {
        Value::Array(items) => items.iter().map(element).collect(),
        Value::String(s) if s.starts_with('[') => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(items)) => items.iter().map(element).collect(),
            _ => vec![s.clone()],
        },
        Value::String(s) if s.contains(',') => s
            .split(',')
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect(),
        other => vec![element(other)],
    })
}

/// §4.14 rule 2: the keys that make a span send a trace update, when truthy.
fn has_trace_updates(attrs: &Attributes) -> bool {
    const KEYS: &[&str] = &[
        "langfuse.trace.name",
        "langfuse.trace.input",
        "langfuse.trace.output",
        "user.id",
        "session.id",
        "langfuse.trace.public",
        "langfuse.trace.tags",
        "langfuse.user.id",
        "langfuse.session.id",
        "langfuse.observation.metadata.langfuse_user_id",
        "langfuse.observation.metadata.langfuse_session_id",
        "langfuse.observation.metadata.langfuse_tags",
        "langfuse.trace.metadata.langfuse_user_id",
        "langfuse.trace.metadata.langfuse_session_id",
        "langfuse.trace.metadata.langfuse_tags",
        "ai.telemetry.metadata.userId",
        "ai.telemetry.metadata.sessionId",
        "ai.telemetry.metadata.tags",
        "tag.tags",
    ];
    KEYS.iter().any(|k| attrs.0.get(*k).is_some_and(js::truthy))
        || attrs
            .0
            .iter()
            .any(|(k, v)| k.starts_with("langfuse.trace.metadata") && js::truthy(v))
}
