//! OTLP trace exports, protobuf or JSON, read into one shape the mapping works on
//! (LANGFUSE_SERVER.md §2.1 steps 8–10, §2.2, §4.2, §4.3).
//!
//! The JSON path does not go through the proto crate's serde support: the server takes ids "as
//! sent" (a non-hex string stays what it is), accepts `{high, low}` times and turns `kvlistValue`
//! and `bytesValue` into the JSON text of their wrapper, none of which a typed decode keeps.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message;
use serde_json::{json, Map, Value};

/// Decoded attribute values in their original order; a repeated key is resolved by the reader.
pub(crate) type Attrs = Vec<(String, Value)>;

#[derive(Debug, Default)]
pub(crate) struct Export {
    pub(crate) resources: Vec<ResourceGroup>,
}

#[derive(Debug, Default)]
pub(crate) struct ResourceGroup {
    pub(crate) attributes: Attrs,
    pub(crate) scopes: Vec<ScopeGroup>,
}

#[derive(Debug, Default)]
pub(crate) struct ScopeGroup {
    pub(crate) name: String,
    pub(crate) version: Option<String>,
    pub(crate) attributes: Attrs,
    pub(crate) spans: Vec<SpanIn>,
}

#[derive(Debug, Default)]
pub(crate) struct SpanIn {
    pub(crate) trace_id: String,
    pub(crate) span_id: String,
    pub(crate) parent_span_id: String,
    pub(crate) name: String,
    pub(crate) start_nanos: Option<u128>,
    pub(crate) end_nanos: Option<u128>,
    pub(crate) attributes: Attrs,
    pub(crate) events: Vec<EventIn>,
    /// The status code as sent: a number from protobuf, any JSON from OTLP/JSON.
    pub(crate) status_code: Option<Value>,
    pub(crate) status_message: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct EventIn {
    pub(crate) name: String,
    pub(crate) attributes: Attrs,
}

impl Export {
    pub(crate) fn span_count(&self) -> usize {
        self.spans().count()
    }

    pub(crate) fn spans(&self) -> impl Iterator<Item = (&ResourceGroup, &ScopeGroup, &SpanIn)> {
        self.resources.iter().flat_map(|resource| {
            resource
                .scopes
                .iter()
                .flat_map(move |scope| scope.spans.iter().map(move |span| (resource, scope, span)))
        })
    }
}

pub(crate) fn decode_protobuf(body: &[u8]) -> Option<ExportTraceServiceRequest> {
    ExportTraceServiceRequest::decode(body).ok()
}

/// The spans of a protobuf export, in the form the mapping reads. A protobuf export cannot fail
/// the structural check (§2.2): its ids are bytes and its collections lists.
pub(crate) fn from_protobuf(request: &ExportTraceServiceRequest) -> Export {
    Export {
        resources: request
            .resource_spans
            .iter()
            .map(|rs| ResourceGroup {
                attributes: rs
                    .resource
                    .as_ref()
                    .map(|r| proto_attrs(&r.attributes))
                    .unwrap_or_default(),
                scopes: rs
                    .scope_spans
                    .iter()
                    .map(|ss| ScopeGroup {
                        name: ss
                            .scope
                            .as_ref()
                            .map(|s| s.name.clone())
                            .unwrap_or_default(),
                        version: ss
                            .scope
                            .as_ref()
                            .map(|s| s.version.clone())
                            .filter(|v| !v.is_empty()),
                        attributes: ss
                            .scope
                            .as_ref()
                            .map(|s| proto_attrs(&s.attributes))
                            .unwrap_or_default(),
                        spans: ss
                            .spans
                            .iter()
                            .map(|span| SpanIn {
                                trace_id: const_hex::encode(&span.trace_id),
                                span_id: const_hex::encode(&span.span_id),
                                parent_span_id: const_hex::encode(&span.parent_span_id),
                                name: span.name.clone(),
                                start_nanos: nonzero(span.start_time_unix_nano),
                                end_nanos: nonzero(span.end_time_unix_nano),
                                attributes: proto_attrs(&span.attributes),
                                events: span
                                    .events
                                    .iter()
                                    .map(|e| EventIn {
                                        name: e.name.clone(),
                                        attributes: proto_attrs(&e.attributes),
                                    })
                                    .collect(),
                                status_code: span.status.as_ref().map(|s| Value::from(s.code)),
                                status_message: span
                                    .status
                                    .as_ref()
                                    .map(|s| s.message.clone())
                                    .filter(|m| !m.is_empty()),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn nonzero(nanos: u64) -> Option<u128> {
    (nanos != 0).then_some(u128::from(nanos))
}

fn proto_attrs(list: &[KeyValue]) -> Attrs {
    list.iter()
        .filter_map(|kv| Some((kv.key.clone(), proto_value(kv.value.as_ref()?)?)))
        .collect()
}

/// §4.3 for protobuf input, where int64 values were decoded into decimal strings.
fn proto_value(value: &AnyValue) -> Option<Value> {
    Some(match value.value.as_ref()? {
        any_value::Value::StringValue(s) => Value::String(s.clone()),
        any_value::Value::BoolValue(b) => Value::Bool(*b),
        any_value::Value::IntValue(i) => Value::from(*i),
        any_value::Value::DoubleValue(d) => double(*d),
        any_value::Value::ArrayValue(array) => Value::Array(
            array
                .values
                .iter()
                .map(|v| proto_value(v).unwrap_or(Value::Null))
                .collect(),
        ),
        _ => Value::String(proto_wrapper(value).to_string()),
    })
}

fn double(d: f64) -> Value {
    serde_json::Number::from_f64(d).map_or_else(
        || {
            Value::String(if d.is_nan() {
                "NaN".into()
            } else {
                d.to_string()
            })
        },
        Value::Number,
    )
}

/// The object the server's protobuf decoder produces for an `AnyValue` (longs as strings, bytes
/// as a Node `Buffer`), whose JSON text becomes the attribute value for kvlists and bytes
/// (inferred from §4.3).
fn proto_wrapper(value: &AnyValue) -> Value {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => json!({"stringValue": s}),
        Some(any_value::Value::BoolValue(b)) => json!({"boolValue": b}),
        Some(any_value::Value::IntValue(i)) => json!({"intValue": i.to_string()}),
        Some(any_value::Value::DoubleValue(d)) => json!({"doubleValue": double(*d)}),
        Some(any_value::Value::ArrayValue(a)) => {
            json!({"arrayValue": {"values": a.values.iter().map(proto_wrapper).collect::<Vec<_>>()}})
        }
        Some(any_value::Value::KvlistValue(list)) => json!({"kvlistValue": {"values":
            list.values.iter().map(|kv| json!({
                "key": kv.key,
                "value": kv.value.as_ref().map_or(Value::Null, proto_wrapper),
            })).collect::<Vec<_>>()}}),
        Some(any_value::Value::BytesValue(bytes)) => {
            json!({"bytesValue": {"type": "Buffer", "data": bytes}})
        }
        _ => json!({}),
    }
}

/// Why an OTLP/JSON body is rejected.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// Not JSON at all.
    Parse,
    /// The §2.2 structural check failed; the text follows `Invalid OTLP trace export: `.
    Structure(String),
}

/// `JSON.parse`, `.resourceSpans`, then the structural check. `Ok(None)` is an empty export.
pub(crate) fn decode_json(body: &[u8]) -> Result<Option<Export>, JsonError> {
    let root: Value = serde_json::from_slice(body).map_err(|_| JsonError::Parse)?;
    let resource_spans = match root.get("resourceSpans") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) if items.is_empty() => return Ok(None),
        Some(value) => value,
    };
    let mut problems = Problems::default();
    let Value::Array(resource_spans) = resource_spans else {
        problems.note("resourceSpans:not_an_array");
        return Err(JsonError::Structure(problems.text()));
    };
    let mut export = Export::default();
    for rs in resource_spans {
        let resource_attrs = rs.get("resource").and_then(|r| r.get("attributes"));
        let mut group = ResourceGroup {
            attributes: problems.attrs(resource_attrs, "resource.attributes"),
            scopes: Vec::new(),
        };
        for ss in problems.array(rs.get("scopeSpans"), "scopeSpans") {
            let scope = ss.get("scope");
            let mut scope_group = ScopeGroup {
                name: scope
                    .and_then(|s| s.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                version: scope
                    .and_then(|s| s.get("version"))
                    .and_then(Value::as_str)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned),
                attributes: problems
                    .attrs(scope.and_then(|s| s.get("attributes")), "scope.attributes"),
                spans: Vec::new(),
            };
            for span in problems.array(ss.get("spans"), "spans") {
                scope_group.spans.push(problems.span(span));
            }
            group.scopes.push(scope_group);
        }
        export.resources.push(group);
    }
    if problems.reasons.is_empty() {
        Ok(Some(export))
    } else {
        Err(JsonError::Structure(
            problems.text_with(export.span_count()),
        ))
    }
}

/// What the structural check found, counted like the server's message.
#[derive(Default)]
struct Problems {
    reasons: Vec<String>,
    invalid_spans: usize,
    /// Whether the span being read has a problem.
    current_bad: bool,
}

impl Problems {
    fn note(&mut self, reason: &str) {
        self.current_bad = true;
        if !self.reasons.iter().any(|r| r == reason) {
            self.reasons.push(reason.to_owned());
        }
    }

    fn text(&self) -> String {
        self.text_with(0)
    }

    fn text_with(&self, spans: usize) -> String {
        format!(
            "{} of {spans} spans failed validation ({}). Hint: send lower-case hex traceId/spanId strings and attributes as [{{key, value}}] arrays (OTLP/JSON uses lowerCamelCase field names). No spans were ingested.",
            self.invalid_spans,
            self.reasons.join(", ")
        )
    }

    /// A collection that must be an array when present.
    fn array<'v>(&mut self, value: Option<&'v Value>, name: &str) -> &'v [Value] {
        match value {
            None | Some(Value::Null) => &[],
            Some(Value::Array(items)) => items,
            Some(_) => {
                self.note(&format!("{name}:not_an_array"));
                &[]
            }
        }
    }

    fn attrs(&mut self, value: Option<&Value>, name: &str) -> Attrs {
        self.array(value, name)
            .iter()
            .filter_map(|kv| {
                let key = kv.get("key")?.as_str()?.to_owned();
                Some((key, json_value(kv.get("value")?)?))
            })
            .collect()
    }

    fn id(&mut self, span: &Value, name: &str, required: bool) -> String {
        let value = span.get(name);
        if !required && value.is_none_or(|v| !crate::js::truthy(v)) {
            return String::new();
        }
        value.and_then(id_text).unwrap_or_else(|| {
            let reason = match value {
                None | Some(Value::Null) => "absent",
                Some(_) => "invalid_type",
            };
            self.note(&format!("{name}:{reason}"));
            String::new()
        })
    }

    fn span(&mut self, span: &Value) -> SpanIn {
        self.current_bad = false;
        let trace_id = self.id(span, "traceId", true);
        let span_id = self.id(span, "spanId", true);
        let parent_span_id = self.id(span, "parentSpanId", false);
        let attributes = self.attrs(span.get("attributes"), "attributes");
        let events = self
            .array(span.get("events"), "events")
            .iter()
            .map(|event| EventIn {
                name: event
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                attributes: self.attrs(event.get("attributes"), "events.attributes"),
            })
            .collect();
        if self.current_bad {
            self.invalid_spans += 1;
        }
        let status = span.get("status");
        SpanIn {
            trace_id,
            span_id,
            parent_span_id,
            name: span
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            start_nanos: span.get("startTimeUnixNano").and_then(nanos),
            end_nanos: span.get("endTimeUnixNano").and_then(nanos),
            attributes,
            events,
            status_code: status.and_then(|s| s.get("code")).cloned(),
            status_message: status
                .and_then(|s| s.get("message"))
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .map(str::to_owned),
        }
    }
}

/// An id from OTLP/JSON: a string exactly as sent; bytes (an array of numbers or a Node `Buffer`
/// object) as lower-case hex. Anything else is invalid (§2.2).
fn id_text(value: &Value) -> Option<String> {
    let bytes = |items: &[Value]| -> Option<String> {
        let bytes: Option<Vec<u8>> = items
            .iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect();
        bytes.map(const_hex::encode)
    };
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => bytes(items),
        Value::Object(map) if map.get("type") == Some(&Value::from("Buffer")) => {
            bytes(map.get("data")?.as_array()?)
        }
        _ => None,
    }
}

/// A time in nanoseconds from a decimal string, a number or a `{high, low}` pair; 0 is missing.
fn nanos(value: &Value) -> Option<u128> {
    let n = match value {
        Value::String(s) => s.trim().parse::<u128>().ok()?,
        Value::Number(n) => n
            .as_u64()
            .map(u128::from)
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u128))?,
        Value::Object(map) => {
            let part = |k: &str| map.get(k).and_then(Value::as_i64).map(|v| v as u32);
            (u128::from(part("high")?) << 32) | u128::from(part("low")?)
        }
        _ => return None,
    };
    (n != 0).then_some(n)
}

/// §4.3 for OTLP/JSON: the `AnyValue` object as sent.
fn json_value(value: &Value) -> Option<Value> {
    let Value::Object(map) = value else {
        return None;
    };
    if let Some(s) = map.get("stringValue") {
        return Some(s.clone());
    }
    if let Some(b) = map.get("boolValue") {
        return Some(b.clone());
    }
    if let Some(i) = map.get("intValue") {
        return Some(match i {
            Value::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| i.clone()),
            Value::Object(parts) => {
                let part = |k: &str| parts.get(k).and_then(Value::as_i64).unwrap_or(0);
                Value::from((part("high") << 32) | (part("low") & 0xffff_ffff))
            }
            other => other.clone(),
        });
    }
    if let Some(d) = map.get("doubleValue") {
        return Some(match d {
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => double(f),
                _ => d.clone(),
            },
            other => other.clone(),
        });
    }
    if let Some(array) = map.get("arrayValue") {
        let values = array
            .get("values")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|v| json_value(v).unwrap_or(Value::Null))
                    .collect()
            })
            .unwrap_or_default();
        return Some(Value::Array(values));
    }
    if map.is_empty() {
        return None;
    }
    Some(Value::String(Value::Object(map.clone()).to_string()))
}

/// Attributes by key; a repeated key keeps its last value.
pub(crate) fn attrs_to_map(attrs: &Attrs) -> Map<String, Value> {
    attrs.iter().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s4_3_attribute_values_are_decoded_like_the_server() {
        let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": [{
            "traceId": "ABC", "spanId": [1, 255],
            "attributes": [
                {"key": "i", "value": {"intValue": "5"}},
                {"key": "d", "value": {"doubleValue": "2.5"}},
                {"key": "nan", "value": {"doubleValue": "NaN"}},
                {"key": "a", "value": {"arrayValue": {"values": [{"stringValue": "x"}]}}},
                {"key": "kv", "value": {"kvlistValue": {"values": []}}},
                {"key": "i", "value": {"intValue": 6}}
            ]
        }]}]}]});
        let export = decode_json(body.to_string().as_bytes())
            .expect("valid")
            .expect("not empty");
        let (_, _, span) = export.spans().next().expect("one span");
        assert_eq!(span.trace_id, "ABC", "a JSON id is used as sent");
        assert_eq!(span.span_id, "01ff", "bytes become hex");
        let attrs = attrs_to_map(&span.attributes);
        assert_eq!(attrs["i"], json!(6), "the last occurrence wins");
        assert_eq!(attrs["d"], json!(2.5));
        assert_eq!(attrs["nan"], json!("NaN"));
        assert_eq!(attrs["a"], json!(["x"]));
        assert_eq!(attrs["kv"], json!(r#"{"kvlistValue":{"values":[]}}"#));
    }

    #[test]
    fn s4_2_times_accept_strings_numbers_and_high_low() {
        assert_eq!(
            nanos(&json!("1700000000000000000")),
            Some(1_700_000_000_000_000_000)
        );
        assert_eq!(nanos(&json!(5)), Some(5));
        assert_eq!(nanos(&json!({"high": 1, "low": 2})), Some((1 << 32) | 2));
        assert_eq!(nanos(&json!("0")), None);
    }
}
