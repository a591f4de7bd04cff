//! Decoding OTLP trace exports into Langfuse observations and traces, following the attribute
//! mapping of the Langfuse server (DESIGN §3.1, first match wins).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Map, Value};

use super::model::{ObservationPatch, TracePatch};
use langfuse_observe_core::timestamp::parse_rfc3339;

const OBSERVATION_METADATA: &str = "langfuse.observation.metadata";
const TRACE_METADATA: &str = "langfuse.trace.metadata";
/// `span.status.code` of an error (`STATUS_CODE_ERROR`).
const STATUS_CODE_ERROR: i32 = 2;

pub(crate) fn decode_protobuf(body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    ExportTraceServiceRequest::decode(body).map_err(|e| format!("invalid OTLP protobuf: {e}"))
}

/// OTLP/JSON, through the proto crate's serde support (hex ids, 64-bit integers as strings or
/// numbers, enums as integers, `bytesValue` in base64).
pub(crate) fn decode_json(body: &[u8]) -> Result<ExportTraceServiceRequest, String> {
    serde_json::from_slice::<ExportTraceServiceRequest>(body)
        .map_err(|e| format!("invalid OTLP/JSON: {e}"))
}

/// An id the way Langfuse stores it: the bytes as lower-case hex, whatever their length
/// (LANGFUSE_SERVER.md §4.2).
fn id_text(bytes: &[u8]) -> String {
    const_hex::encode(bytes)
}

/// Span ids of a request in the order they were sent, for [`RecordedRequest`](super::RecordedRequest).
pub(crate) fn span_ids(request: &ExportTraceServiceRequest) -> Vec<String> {
    all_spans(request)
        .map(|(_, span)| id_text(&span.span_id))
        .collect()
}

/// One patch pair per span; applying them in order reproduces what Langfuse would show.
pub(crate) fn to_patches(
    request: &ExportTraceServiceRequest,
) -> Vec<(TracePatch, ObservationPatch)> {
    all_spans(request)
        .map(|(resource, span)| span_patches(resource, span))
        .collect()
}

fn all_spans(
    request: &ExportTraceServiceRequest,
) -> impl Iterator<Item = (Attributes<'_>, &Span)> + '_ {
    request.resource_spans.iter().flat_map(|resource_spans| {
        let resource = Attributes::new(
            resource_spans
                .resource
                .as_ref()
                .map(|r| r.attributes.as_slice())
                .unwrap_or_default(),
        );
        resource_spans
            .scope_spans
            .iter()
            .flat_map(|scope| scope.spans.iter())
            .map(move |span| (resource.clone(), span))
    })
}

/// Attribute lookup by key; the first occurrence of a duplicated key wins, as in the server.
#[derive(Clone)]
struct Attributes<'a> {
    list: &'a [KeyValue],
    by_key: HashMap<&'a str, &'a AnyValue>,
}

impl<'a> Attributes<'a> {
    fn new(list: &'a [KeyValue]) -> Self {
        let mut by_key = HashMap::with_capacity(list.len());
        for kv in list {
            if let Some(value) = &kv.value {
                by_key.entry(kv.key.as_str()).or_insert(value);
            }
        }
        Attributes { list, by_key }
    }

    fn get(&self, key: &str) -> Option<&'a AnyValue> {
        self.by_key.get(key).copied()
    }

    /// Scalars other than strings are rendered, since ids sometimes arrive as numbers.
    fn string(&self, key: &str) -> Option<String> {
        match self.get(key)?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            any_value::Value::IntValue(i) => Some(i.to_string()),
            any_value::Value::DoubleValue(d) => Some(d.to_string()),
            any_value::Value::BoolValue(b) => Some(b.to_string()),
            _ => None,
        }
    }

    fn json(&self, key: &str) -> Option<Value> {
        self.get(key).map(json_attribute)
    }

    fn bool(&self, key: &str) -> Option<bool> {
        match self.get(key)?.value.as_ref()? {
            any_value::Value::BoolValue(b) => Some(*b),
            any_value::Value::StringValue(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// `<prefix>` as a JSON object merged with every `<prefix>.<key>` attribute.
    fn metadata(&self, prefix: &str) -> Map<String, Value> {
        let mut metadata = match self.json(prefix) {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let dotted = format!("{prefix}.");
        let mut flattened = Map::new();
        for kv in self.list {
            if let (Some(key), Some(value)) = (kv.key.strip_prefix(&dotted), &kv.value) {
                flattened
                    .entry(key.to_owned())
                    .or_insert_with(|| json_attribute(value));
            }
        }
        // A flattened key is the more specific statement, so it beats the object's member.
        metadata.extend(flattened);
        metadata
    }
}

/// Typed values stay typed; strings hold JSON unless they do not parse, in which case the SDK sent
/// a plain string raw.
fn json_attribute(value: &AnyValue) -> Value {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => parse_json_or_string(s),
        _ => any_value_to_json(value),
    }
}

fn parse_json_or_string(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

fn any_value_to_json(value: &AnyValue) -> Value {
    match &value.value {
        None | Some(any_value::Value::StringValueStrindex(_)) => Value::Null,
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(d.to_string())),
        Some(any_value::Value::ArrayValue(array)) => {
            Value::Array(array.values.iter().map(any_value_to_json).collect())
        }
        Some(any_value::Value::KvlistValue(list)) => Value::Object(
            list.values
                .iter()
                .map(|kv| {
                    let value = kv.value.as_ref().map_or(Value::Null, any_value_to_json);
                    (kv.key.clone(), value)
                })
                .collect(),
        ),
        Some(any_value::Value::BytesValue(bytes)) => Value::String(const_hex::encode(bytes)),
    }
}

fn nanos_to_time(nanos: u64) -> Option<SystemTime> {
    (nanos != 0).then(|| UNIX_EPOCH + Duration::from_nanos(nanos))
}

/// Tags are a native string array; a JSON-encoded array or a single string are accepted too.
fn tags(attributes: &Attributes<'_>) -> Vec<String> {
    let Some(value) = attributes.get("langfuse.trace.tags") else {
        return Vec::new();
    };
    let json = match &value.value {
        Some(any_value::Value::StringValue(s)) => parse_json_or_string(s),
        _ => any_value_to_json(value),
    };
    match json {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|item| match item {
                Value::String(s) => Some(s),
                Value::Null => None,
                other => Some(other.to_string()),
            })
            .collect(),
        Value::String(s) => vec![s],
        _ => Vec::new(),
    }
}

/// The Python SDK sends the time as a JSON-encoded string (quotes included); raw strings and
/// unix nanoseconds are accepted too.
fn completion_start_time(attributes: &Attributes<'_>) -> Option<SystemTime> {
    match attributes.json("langfuse.observation.completion_start_time")? {
        Value::String(s) => parse_rfc3339(&s),
        Value::Number(n) => n.as_u64().and_then(nanos_to_time),
        _ => None,
    }
}

fn prompt_version(attributes: &Attributes<'_>) -> Option<i64> {
    match attributes.json("langfuse.observation.prompt.version")? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn span_patches(resource: Attributes<'_>, span: &Span) -> (TracePatch, ObservationPatch) {
    let attrs = Attributes::new(&span.attributes);
    let trace_id = id_text(&span.trace_id);
    let is_root = span.parent_span_id.is_empty();
    let either = |key: &str| attrs.string(key).or_else(|| resource.string(key));

    let status = span.status.as_ref();
    let status_is_error = status.is_some_and(|s| s.code == STATUS_CODE_ERROR);
    let status_message = attrs
        .string("langfuse.observation.status_message")
        .or_else(|| status.map(|s| s.message.clone()).filter(|m| !m.is_empty()));
    let level = attrs
        .string("langfuse.observation.level")
        .map(|l| l.to_ascii_uppercase())
        .or_else(|| status_is_error.then(|| "ERROR".to_owned()));

    let input = attrs.json("langfuse.observation.input");
    let output = attrs.json("langfuse.observation.output");
    let environment = either("langfuse.environment");
    let release = either("langfuse.release");
    let version = either("langfuse.version");

    let observation = ObservationPatch {
        id: id_text(&span.span_id),
        trace_id: Some(trace_id.clone()),
        parent_observation_id: (!is_root).then(|| id_text(&span.parent_span_id)),
        name: Some(span.name.clone()),
        observation_type: attrs
            .string("langfuse.observation.type")
            .map(|t| t.to_ascii_uppercase()),
        default_type: "SPAN".to_owned(),
        level,
        status_message,
        input: input.clone(),
        output: output.clone(),
        metadata: attrs.metadata(OBSERVATION_METADATA),
        start_time: nanos_to_time(span.start_time_unix_nano),
        end_time: nanos_to_time(span.end_time_unix_nano),
        model: attrs.string("langfuse.observation.model.name"),
        model_parameters: attrs.json("langfuse.observation.model.parameters"),
        usage_details: attrs.json("langfuse.observation.usage_details"),
        cost_details: attrs.json("langfuse.observation.cost_details"),
        completion_start_time: completion_start_time(&attrs),
        prompt_name: attrs.string("langfuse.observation.prompt.name"),
        prompt_version: prompt_version(&attrs),
        environment: environment.clone(),
        version: version.clone(),
    };

    let trace = TracePatch {
        id: trace_id,
        name: attrs.string("langfuse.trace.name"),
        fallback_name: is_root.then(|| span.name.clone()),
        user_id: attrs
            .string("user.id")
            .or_else(|| attrs.string("langfuse.user.id")),
        session_id: attrs
            .string("session.id")
            .or_else(|| attrs.string("langfuse.session.id")),
        tags: tags(&attrs),
        metadata: attrs.metadata(TRACE_METADATA),
        input: attrs.json("langfuse.trace.input"),
        output: attrs.json("langfuse.trace.output"),
        fallback_input: if is_root { input } else { None },
        fallback_output: if is_root { output } else { None },
        public: attrs.bool("langfuse.trace.public"),
        environment,
        release,
        version,
    };
    (trace, observation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::ArrayValue;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};
    use serde_json::json;

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.to_owned(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn s(key: &str, value: &str) -> KeyValue {
        kv(key, any_value::Value::StringValue(value.to_owned()))
    }

    fn request(resource: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn maps_values_like_the_langfuse_server() {
        let span = Span {
            trace_id: vec![0xab; 16],
            span_id: vec![1; 8],
            parent_span_id: vec![2; 8],
            name: "child".into(),
            attributes: vec![
                s("langfuse.observation.input", "not json"),
                s("langfuse.observation.output", r#"{"ok":true}"#),
                s("langfuse.observation.metadata", r#"{"a":1,"b":"x"}"#),
                kv(
                    "langfuse.observation.metadata.b",
                    any_value::Value::IntValue(2),
                ),
                s("langfuse.observation.metadata.c", "[1,2]"),
                s("langfuse.observation.metadata.d", "plain"),
                s("langfuse.observation.prompt.version", "7"),
                s(
                    "langfuse.observation.completion_start_time",
                    "\"2024-01-02T03:04:05Z\"",
                ),
                s("langfuse.trace.tags", r#"["x","y"]"#),
                s("langfuse.trace.public", "true"),
                kv("user.id", any_value::Value::IntValue(42)),
                s("langfuse.user.id", "ignored"),
                s("langfuse.environment", "span-env"),
            ],
            status: Some(Status {
                code: STATUS_CODE_ERROR,
                message: "boom".into(),
            }),
            ..Default::default()
        };
        let req = request(
            vec![
                s("langfuse.environment", "resource-env"),
                s("langfuse.release", "r1"),
            ],
            vec![span],
        );
        let (trace, obs) = to_patches(&req).pop().expect("one span");
        assert_eq!(obs.input, Some(json!("not json")));
        assert_eq!(obs.output, Some(json!({"ok": true})));
        assert_eq!(
            Value::Object(obs.metadata),
            json!({"a": 1, "b": 2, "c": [1, 2], "d": "plain"}),
            "a flattened key wins over the JSON object's member"
        );
        assert_eq!(obs.level.as_deref(), Some("ERROR"));
        assert_eq!(obs.status_message.as_deref(), Some("boom"));
        assert_eq!(obs.prompt_version, Some(7));
        assert_eq!(
            obs.completion_start_time,
            parse_rfc3339("2024-01-02T03:04:05Z")
        );
        assert_eq!(
            obs.parent_observation_id.as_deref(),
            Some("0202020202020202")
        );
        assert_eq!(obs.environment.as_deref(), Some("span-env"));
        assert_eq!(trace.id, "ab".repeat(16));
        assert_eq!(trace.tags, vec!["x".to_owned(), "y".to_owned()]);
        assert_eq!(trace.public, Some(true));
        assert_eq!(trace.user_id.as_deref(), Some("42"));
        assert_eq!(trace.release.as_deref(), Some("r1"));
        assert_eq!(trace.fallback_name, None, "only a root names the trace");
    }

    #[test]
    fn decodes_otlp_json_with_the_proto_crate() {
        let body = json!({
            "resourceSpans": [{
                "resource": {"attributes": [
                    {"key": "langfuse.release", "value": {"stringValue": "r1"}}
                ]},
                "scopeSpans": [{
                    "scope": {"name": "langfuse-observe"},
                    "spans": [{
                        "traceId": "0102030405060708090A0B0C0D0E0F10",
                        "spanId": "1112131415161718",
                        "name": "work",
                        "kind": 1,
                        "startTimeUnixNano": "1700000000000000000",
                        "endTimeUnixNano": 1_700_000_001_000_000_000u64,
                        "attributes": [
                            {"key": "n", "value": {"intValue": "5"}},
                            {"key": "raw", "value": {"bytesValue": "AQI="}}
                        ],
                        "status": {"code": 2, "message": "bad"}
                    }]
                }]
            }]
        });
        let request = decode_json(body.to_string().as_bytes()).expect("valid OTLP/JSON");
        let span = &request.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.trace_id, (1u8..=16).collect::<Vec<_>>());
        assert_eq!(span.span_id, (0x11u8..=0x18).collect::<Vec<_>>());
        assert!(span.parent_span_id.is_empty());
        assert_eq!(span.kind, 1);
        assert_eq!(span.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_700_000_001_000_000_000);
        assert_eq!(
            span.attributes[0].value,
            Some(AnyValue {
                value: Some(any_value::Value::IntValue(5))
            })
        );
        let (trace, obs) = to_patches(&request).pop().expect("one span");
        assert_eq!(trace.id, "0102030405060708090a0b0c0d0e0f10");
        assert_eq!(obs.id, "1112131415161718");
        assert_eq!(obs.level.as_deref(), Some("ERROR"));
        assert_eq!(trace.release.as_deref(), Some("r1"));
        assert_eq!(
            Attributes::new(&span.attributes)
                .get("raw")
                .map(any_value_to_json),
            Some(json!("0102")),
            "bytes arrive base64-encoded and are shown as hex"
        );

        let bad_id = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}"#;
        let err = decode_json(bad_id.as_bytes()).expect_err("not hex");
        assert!(err.starts_with("invalid OTLP/JSON"), "{err}");
        assert!(decode_json(b"{").is_err());
        assert!(decode_json(br#"{"resourceSpans":{}}"#).is_err());
    }

    #[test]
    fn ids_that_are_not_valid_are_still_shown_as_hex() {
        assert_eq!(id_text(&[0xab; 16]), "ab".repeat(16));
        assert_eq!(id_text(&[0; 16]), "0".repeat(32), "all zero");
        assert_eq!(id_text(&[0x0f, 0xa0]), "0fa0", "wrong length");
        assert_eq!(id_text(&[0x01; 8]), "01".repeat(8));
        assert_eq!(id_text(&[0; 8]), "0".repeat(16), "all zero");
        assert_eq!(id_text(&[]), "", "absent");
    }

    #[test]
    fn native_array_tags_and_root_fallbacks() {
        let tags = any_value::Value::ArrayValue(ArrayValue {
            values: vec![AnyValue {
                value: Some(any_value::Value::StringValue("t".into())),
            }],
        });
        let span = Span {
            trace_id: vec![1; 16],
            span_id: vec![3; 8],
            name: "root".into(),
            attributes: vec![
                kv("langfuse.trace.tags", tags),
                s("langfuse.observation.input", "\"quoted\""),
                s("langfuse.observation.level", "warning"),
            ],
            status: Some(Status {
                code: STATUS_CODE_ERROR,
                message: String::new(),
            }),
            ..Default::default()
        };
        let (trace, obs) = to_patches(&request(vec![], vec![span]))
            .pop()
            .expect("one span");
        assert_eq!(trace.tags, vec!["t".to_owned()]);
        assert_eq!(trace.fallback_name.as_deref(), Some("root"));
        assert_eq!(trace.fallback_input, Some(json!("quoted")));
        assert_eq!(
            obs.level.as_deref(),
            Some("WARNING"),
            "the attribute wins over the status"
        );
        assert_eq!(obs.status_message, None);
        assert_eq!(obs.parent_observation_id, None);
    }
}
