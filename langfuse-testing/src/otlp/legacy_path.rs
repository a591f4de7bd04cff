//! The legacy conversion (`processToIngestionEvents`, §4.1, §4.11, §4.14): each span becomes a
//! `<type>-create` event validated with the ingestion schemas (an invalid one is dropped), plus a
//! full, update or shallow `trace-create` event.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Map, Value};

use super::decode::Export;
use super::mapping::{extract, Extracted};
use crate::legacy::MergeEvent;
use crate::schema::{validate_event, Content};
use crate::time;

/// The events one export produces.
#[derive(Debug, Default)]
pub(crate) struct Converted {
    /// Observation events, merged directly into the stored rows.
    pub(crate) observations: Vec<MergeEvent>,
    /// Trace events grouped per trace id; each group is one blob (§3.4).
    pub(crate) traces: Vec<(String, Vec<MergeEvent>)>,
}

/// The processor gives every event a fresh envelope id, so a re-exported span is a new write.
fn envelope_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("otel-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Runs an event through the ingestion schema, as the worker does; `None` when it fails.
fn validated(event_type: &str, timestamp: i64, body: Value) -> Option<MergeEvent> {
    let raw = json!({
        "id": envelope_id(),
        "type": event_type,
        "timestamp": time::iso(timestamp),
        "body": body,
    });
    let valid = validate_event(&raw).ok()?;
    let Content::Entity(_, record) = valid.content else {
        return None;
    };
    Some(MergeEvent {
        envelope_id: valid.envelope_id,
        timestamp: valid.timestamp,
        is_create: true,
        record,
    })
}

pub(crate) fn convert(export: &Export, seen: &mut HashSet<String>) -> Converted {
    let spans: Vec<Extracted> = export
        .spans()
        .map(|(resource, scope, span)| extract(resource, scope, span))
        .collect();
    // The Redis key of a trace is set by the first batch that contains it.
    let new_traces: Vec<String> = spans
        .iter()
        .filter(|s| !seen.contains(&s.trace_id))
        .map(|s| s.trace_id.clone())
        .collect();
    let mut converted = Converted::default();
    let mut full_or_update: HashSet<String> = HashSet::new();
    for span in &spans {
        if let Some(event) = observation_event(span) {
            converted.observations.push(event);
        }
        let trace_body = if span.parent_id.is_empty() || span.as_root {
            Some(full_trace(span))
        } else if span.has_trace_updates {
            Some(trace_update(span))
        } else {
            None
        };
        if let Some(body) = trace_body {
            full_or_update.insert(span.trace_id.clone());
            if let Some(event) = validated("trace-create", span.start, body) {
                push_trace(&mut converted, &span.trace_id, event);
            }
        }
    }
    for trace_id in new_traces {
        if seen.insert(trace_id.clone()) && !full_or_update.contains(&trace_id) {
            let span = spans
                .iter()
                .filter(|s| s.trace_id == trace_id)
                .min_by_key(|s| s.start);
            if let Some(span) = span {
                let body = json!({"id": trace_id, "timestamp": time::iso(span.start),
                                  "environment": span.environment});
                if let Some(event) = validated("trace-create", span.start, body) {
                    push_trace(&mut converted, &trace_id, event);
                }
            }
        }
    }
    converted
}

fn push_trace(converted: &mut Converted, trace_id: &str, event: MergeEvent) {
    match converted.traces.iter_mut().find(|(id, _)| id == trace_id) {
        Some((_, group)) => group.push(event),
        None => converted.traces.push((trace_id.to_owned(), vec![event])),
    }
}

fn insert(body: &mut Map<String, Value>, key: &str, value: Option<impl Into<Value>>) {
    if let Some(value) = value {
        body.insert(key.to_owned(), value.into());
    }
}

fn observation_event(span: &Extracted) -> Option<MergeEvent> {
    let mut metadata = span.resource_trace_metadata.clone();
    metadata.extend(span.observation_metadata.clone());
    span.insert_built_in_metadata(&mut metadata);
    let mut body = Map::new();
    body.insert("id".into(), json!(span.span_id));
    body.insert("traceId".into(), json!(span.trace_id));
    if !span.parent_id.is_empty() {
        body.insert("parentObservationId".into(), json!(span.parent_id));
    }
    body.insert("name".into(), json!(span.name));
    body.insert("startTime".into(), json!(time::iso(span.start)));
    body.insert("endTime".into(), json!(time::iso(span.end)));
    body.insert("level".into(), json!(span.level));
    body.insert("environment".into(), json!(span.environment));
    body.insert("metadata".into(), Value::Object(metadata));
    insert(&mut body, "statusMessage", span.status_message.clone());
    insert(&mut body, "version", span.version.clone());
    insert(&mut body, "input", span.input.clone());
    insert(&mut body, "output", span.output.clone());
    insert(&mut body, "model", span.model.clone());
    insert(&mut body, "modelParameters", span.model_parameters.clone());
    insert(&mut body, "usageDetails", span.usage.clone());
    insert(&mut body, "costDetails", span.cost.clone());
    insert(
        &mut body,
        "completionStartTime",
        span.completion_start.clone(),
    );
    insert(&mut body, "promptName", span.prompt_name.clone());
    insert(&mut body, "promptVersion", span.prompt_version.clone());
    let event_type = format!("{}-create", span.kind.to_ascii_lowercase());
    validated(&event_type, span.start, Value::Object(body))
}

/// Fields every trace event made from a span carries.
fn trace_common(span: &Extracted, metadata: Map<String, Value>) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("id".into(), json!(span.trace_id));
    body.insert("timestamp".into(), json!(time::iso(span.start)));
    body.insert("metadata".into(), Value::Object(metadata));
    body.insert("environment".into(), json!(span.environment));
    insert(&mut body, "userId", span.user_id.clone());
    insert(&mut body, "sessionId", span.session_id.clone());
    insert(&mut body, "tags", span.tags.clone());
    if span.public {
        body.insert("public".into(), Value::Bool(true));
    }
    body
}

/// §4.14 rule 1: a root span (or `langfuse.internal.as_root`) makes a full trace event.
fn full_trace(span: &Extracted) -> Value {
    let mut metadata = span.resource_trace_metadata.clone();
    metadata.extend(span.trace_metadata.clone());
    metadata.extend(span.observation_metadata.clone());
    span.insert_built_in_metadata(&mut metadata);
    let mut body = trace_common(span, metadata);
    body.insert(
        "name".into(),
        json!(span.trace_name.clone().unwrap_or_else(|| span.name.clone())),
    );
    insert(
        &mut body,
        "input",
        span.trace_input.clone().or_else(|| span.input.clone()),
    );
    insert(
        &mut body,
        "output",
        span.trace_output.clone().or_else(|| span.output.clone()),
    );
    insert(&mut body, "version", span.version.clone());
    insert(&mut body, "release", span.release.clone());
    Value::Object(body)
}

/// §4.14 rule 2: a span with trace-update keys makes an update; release and version are sent
/// as `null` when neither the span nor the resource has them.
fn trace_update(span: &Extracted) -> Value {
    let mut metadata = span.resource_trace_metadata.clone();
    metadata.extend(span.trace_metadata.clone());
    metadata.insert(
        "resourceAttributes".into(),
        Value::Object(span.resource_attributes.clone()),
    );
    metadata.insert("scope".into(), span.scope.clone());
    let mut body = trace_common(span, metadata);
    insert(&mut body, "name", span.trace_name.clone());
    insert(&mut body, "input", span.trace_input.clone());
    insert(&mut body, "output", span.trace_output.clone());
    body.insert("version".into(), json!(span.version));
    body.insert("release".into(), json!(span.release));
    Value::Object(body)
}
