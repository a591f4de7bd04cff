//! OTLP/JSON (the `application/json` flavour of OTLP/HTTP) decoded into the protobuf types, so
//! both content types share one mapping to the model.
//!
//! Written by hand because the proto crate's serde support is a feature the SDK does not enable.
//! Follows the OTLP/JSON rules: lowerCamelCase keys, hex trace and span ids, 64-bit integers as
//! strings or numbers, enums as integers or names, `bytesValue` in base64.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use serde_json::Value;

use super::encoding::{base64_decode, hex_decode};

type Result<T> = std::result::Result<T, String>;

pub(crate) fn decode(body: &[u8]) -> Result<ExportTraceServiceRequest> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid OTLP/JSON: {e}"))?;
    Ok(ExportTraceServiceRequest {
        resource_spans: list(&root, "resourceSpans", resource_spans)?,
    })
}

/// Absent and `null` mean empty, as in protobuf.
fn list<T>(object: &Value, key: &str, item: fn(&Value) -> Result<T>) -> Result<Vec<T>> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(item).collect(),
        Some(_) => Err(format!("`{key}` must be an array")),
    }
}

fn string(object: &Value, key: &str) -> Result<String> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

/// 64-bit integers are strings in canonical OTLP/JSON, but numbers are common too.
fn integer<T: TryFrom<i128>>(object: &Value, key: &str) -> Result<T> {
    let wide: i128 = match object.get(key) {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .ok_or_else(|| format!("`{key}` must be an integer"))?,
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| format!("`{key}` must be an integer"))?,
        Some(_) => return Err(format!("`{key}` must be an integer")),
    };
    T::try_from(wide).map_err(|_| format!("`{key}` is out of range"))
}

fn id(object: &Value, key: &str) -> Result<Vec<u8>> {
    let text = string(object, key)?;
    hex_decode(&text).ok_or_else(|| format!("`{key}` must be hex"))
}

fn resource_spans(value: &Value) -> Result<ResourceSpans> {
    let resource = match value.get("resource") {
        None | Some(Value::Null) => None,
        Some(resource) => Some(Resource {
            attributes: list(resource, "attributes", key_value)?,
            ..Default::default()
        }),
    };
    Ok(ResourceSpans {
        resource,
        scope_spans: list(value, "scopeSpans", scope_spans)?,
        schema_url: string(value, "schemaUrl")?,
    })
}

fn scope_spans(value: &Value) -> Result<ScopeSpans> {
    let scope = match value.get("scope") {
        None | Some(Value::Null) => None,
        Some(scope) => Some(InstrumentationScope {
            name: string(scope, "name")?,
            version: string(scope, "version")?,
            attributes: list(scope, "attributes", key_value)?,
            ..Default::default()
        }),
    };
    Ok(ScopeSpans {
        scope,
        spans: list(value, "spans", span)?,
        schema_url: string(value, "schemaUrl")?,
    })
}

fn span(value: &Value) -> Result<Span> {
    let status = match value.get("status") {
        None | Some(Value::Null) => None,
        Some(status) => Some(Status {
            message: string(status, "message")?,
            code: status_code(status.get("code"))?,
        }),
    };
    Ok(Span {
        trace_id: id(value, "traceId")?,
        span_id: id(value, "spanId")?,
        parent_span_id: id(value, "parentSpanId")?,
        trace_state: string(value, "traceState")?,
        flags: integer(value, "flags")?,
        name: string(value, "name")?,
        kind: enum_or_integer(value.get("kind"), "SPAN_KIND_", &SPAN_KINDS)?,
        start_time_unix_nano: integer(value, "startTimeUnixNano")?,
        end_time_unix_nano: integer(value, "endTimeUnixNano")?,
        attributes: list(value, "attributes", key_value)?,
        status,
        ..Default::default()
    })
}

const SPAN_KINDS: [&str; 6] = [
    "UNSPECIFIED",
    "INTERNAL",
    "SERVER",
    "CLIENT",
    "PRODUCER",
    "CONSUMER",
];
const STATUS_CODES: [&str; 3] = ["UNSET", "OK", "ERROR"];

fn status_code(value: Option<&Value>) -> Result<i32> {
    enum_or_integer(value, "STATUS_CODE_", &STATUS_CODES)
}

fn enum_or_integer(value: Option<&Value>, prefix: &str, names: &[&str]) -> Result<i32> {
    match value {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .ok_or_else(|| format!("enum value {n} is out of range")),
        Some(Value::String(s)) => names
            .iter()
            .position(|name| s.strip_prefix(prefix) == Some(name))
            .and_then(|i| i32::try_from(i).ok())
            .ok_or_else(|| format!("unknown enum value `{s}`")),
        Some(other) => Err(format!("enum value {other} must be a number or a name")),
    }
}

fn key_value(value: &Value) -> Result<KeyValue> {
    Ok(KeyValue {
        key: string(value, "key")?,
        value: match value.get("value") {
            None | Some(Value::Null) => None,
            Some(v) => Some(any_value(v)?),
        },
        ..Default::default()
    })
}

fn any_value(value: &Value) -> Result<AnyValue> {
    let Some(object) = value.as_object() else {
        return Err("an attribute value must be an object".to_owned());
    };
    let Some((kind, inner)) = object.iter().find(|(_, v)| !v.is_null()) else {
        return Ok(AnyValue { value: None });
    };
    let decoded = match kind.as_str() {
        "stringValue" => any_value::Value::StringValue(
            inner
                .as_str()
                .ok_or("`stringValue` must be a string")?
                .to_owned(),
        ),
        "boolValue" => {
            any_value::Value::BoolValue(inner.as_bool().ok_or("`boolValue` must be a bool")?)
        }
        "intValue" => any_value::Value::IntValue(integer(value, "intValue")?),
        "doubleValue" => any_value::Value::DoubleValue(match inner {
            Value::Number(n) => n.as_f64().ok_or("`doubleValue` must be a number")?,
            // Non-finite doubles can only be written as strings in JSON.
            Value::String(s) => s
                .parse()
                .map_err(|_| "`doubleValue` must be a number".to_owned())?,
            _ => return Err("`doubleValue` must be a number".to_owned()),
        }),
        "arrayValue" => any_value::Value::ArrayValue(ArrayValue {
            values: list(inner, "values", any_value)?,
        }),
        "kvlistValue" => any_value::Value::KvlistValue(KeyValueList {
            values: list(inner, "values", key_value)?,
        }),
        "bytesValue" => any_value::Value::BytesValue(
            inner
                .as_str()
                .and_then(base64_decode)
                .ok_or("`bytesValue` must be base64")?,
        ),
        other => return Err(format!("unknown attribute value kind `{other}`")),
    };
    Ok(AnyValue {
        value: Some(decoded),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_canonical_otlp_json() {
        let body = serde_json::json!({
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
                        "kind": "SPAN_KIND_INTERNAL",
                        "startTimeUnixNano": "1700000000000000000",
                        "endTimeUnixNano": 1_700_000_001_000_000_000u64,
                        "attributes": [
                            {"key": "n", "value": {"intValue": "5"}},
                            {"key": "d", "value": {"doubleValue": 1.5}},
                            {"key": "b", "value": {"boolValue": true}},
                            {"key": "raw", "value": {"bytesValue": "AQI="}},
                            {"key": "tags", "value": {"arrayValue": {"values": [
                                {"stringValue": "a"}
                            ]}}},
                            {"key": "kv", "value": {"kvlistValue": {"values": [
                                {"key": "x", "value": {"stringValue": "y"}}
                            ]}}}
                        ],
                        "status": {"code": "STATUS_CODE_ERROR", "message": "bad"}
                    }]
                }]
            }]
        });
        let request = decode(body.to_string().as_bytes()).expect("valid OTLP/JSON");
        let resource = &request.resource_spans[0];
        let span = &resource.scope_spans[0].spans[0];
        assert_eq!(span.trace_id, (1u8..=16).collect::<Vec<_>>());
        assert_eq!(span.span_id, (0x11u8..=0x18).collect::<Vec<_>>());
        assert!(span.parent_span_id.is_empty());
        assert_eq!(span.kind, 1);
        assert_eq!(span.start_time_unix_nano, 1_700_000_000_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_700_000_001_000_000_000);
        assert_eq!(span.attributes.len(), 6);
        assert_eq!(
            span.attributes[0].value,
            Some(AnyValue {
                value: Some(any_value::Value::IntValue(5))
            })
        );
        assert_eq!(
            span.attributes[3].value,
            Some(AnyValue {
                value: Some(any_value::Value::BytesValue(vec![1, 2]))
            })
        );
        assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
        assert_eq!(
            resource.resource.as_ref().map(|r| r.attributes.len()),
            Some(1)
        );
    }

    #[test]
    fn reports_what_is_wrong() {
        let bad_id = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"xyz"}]}]}]}"#;
        let err = decode(bad_id.as_bytes()).expect_err("not hex");
        assert!(err.contains("traceId"), "{err}");
        assert!(decode(b"{").is_err());
        assert!(decode(br#"{"resourceSpans":{}}"#).is_err());
    }
}
