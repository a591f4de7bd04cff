//! The direct path (`processToEvent` → `createEventRecord`, §4.1, §5): one `events_full` row per
//! span, not validated against the ingestion schemas, and the trace view derived from the rows
//! at query time (§5.2).

use serde_json::{Map, Value};

use super::decode::Export;
use super::mapping::extract;
use crate::js;
use crate::model::{
    cost_with_total, display, usage_with_total, Catalog, StoredObservation, StoredTrace,
};
use crate::schema::integer_usage;
use crate::time;

pub(crate) fn rows(export: &Export, catalog: &Catalog) -> Vec<StoredObservation> {
    export
        .spans()
        .map(|(resource, scope, span)| {
            let span = extract(resource, scope, span);
            // Built-in keys first, then observation and trace metadata: user keys override.
            let mut metadata = Map::new();
            span.insert_built_in_metadata(&mut metadata);
            metadata.extend(span.observation_metadata.clone());
            metadata.extend(span.trace_metadata.clone());
            let prompt_name = span.prompt_name.as_ref().map(js::string_of);
            let prompt_version = span
                .prompt_version
                .as_ref()
                .and_then(|v| match v {
                    Value::Number(n) => n.as_f64().map(|f| f.trunc()),
                    // The cast is exact for every value parseInt keeps below 2^53.
                    #[allow(clippy::cast_precision_loss)]
                    other => js::parse_int(&js::string_of(other)).map(|i| i as f64),
                })
                .filter(|v| (0.0..=65535.0).contains(v))
                // In range, so the cast is exact.
                .map(|v| v as i64);
            let prompt_id = prompt_name.as_ref().map(|name| {
                prompt_version
                    .and_then(|version| catalog.prompt_id(name, version))
                    .unwrap_or_default()
            });
            StoredObservation {
                id: span.span_id,
                trace_id: span.trace_id,
                parent_observation_id: Some(span.parent_id).filter(|p| !p.is_empty()),
                name: Some(span.name),
                observation_type: span.kind.to_owned(),
                level: span.level.to_owned(),
                status_message: span.status_message,
                input: display(span.input.as_ref()),
                output: display(span.output.as_ref()),
                metadata: flatten(&metadata),
                start_time: Some(time::to_system_time(span.start)),
                end_time: Some(time::to_system_time(span.end)),
                model: span.model,
                model_parameters: span.model_parameters.map(Value::Object),
                usage_details: usage_with_total(
                    span.usage
                        .map(|u| Value::Object(integer_usage(&u)))
                        .as_ref(),
                ),
                // Inferred: the direct path passes the parsed cost on without filtering.
                cost_details: cost_with_total(span.cost.map(Value::Object).as_ref()),
                completion_start_time: span
                    .completion_start
                    .as_ref()
                    .and_then(time::parse_js_date)
                    .map(time::to_system_time),
                prompt_name,
                prompt_version,
                prompt_id,
                environment: Some(span.environment),
                version: span.version,
                trace_name: span.trace_name,
                user_id: span.user_id,
                session_id: span.session_id,
                tags: span.tags.unwrap_or_default(),
                public: span.public,
                release: span.release,
                is_app_root: span.is_app_root,
                writes: 1,
            }
        })
        .collect()
}

/// `metadata_names` / `metadata_values`: dotted paths to string values; arrays, numbers and
/// other non-strings as JSON text.
fn flatten(metadata: &Map<String, Value>) -> Map<String, Value> {
    fn walk(prefix: &str, value: &Value, out: &mut Map<String, Value>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, inner) in map {
                    let path = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&path, inner, out);
                }
            }
            other => {
                out.insert(prefix.to_owned(), Value::String(js::string_of(other)));
            }
        }
    }
    let mut out = Map::new();
    for (key, value) in metadata {
        walk(key, value, &mut out);
    }
    out
}

/// §5.2 over the rows of one trace, each with its write sequence (`event_ts`).
pub(crate) fn trace_view(trace_id: &str, mut rows: Vec<(u64, &StoredObservation)>) -> StoredTrace {
    // Latest first.
    rows.sort_by_key(|(written, _)| std::cmp::Reverse(*written));
    let latest = |pick: &dyn Fn(&StoredObservation) -> Option<String>| {
        rows.iter()
            .find_map(|(_, row)| pick(row).filter(|v| !v.is_empty()))
    };
    let parentless = rows
        .iter()
        .map(|(_, row)| *row)
        .find(|row| row.parent_observation_id.is_none());
    let name = latest(&|row| row.trace_name.clone()).or_else(|| {
        latest(&|row| {
            (row.parent_observation_id.is_none() || row.is_app_root)
                .then(|| row.name.clone())
                .flatten()
        })
    });
    StoredTrace {
        id: trace_id.to_owned(),
        timestamp: rows.iter().filter_map(|(_, row)| row.start_time).min(),
        name,
        user_id: latest(&|row| row.user_id.clone()),
        session_id: latest(&|row| row.session_id.clone()),
        tags: rows
            .iter()
            .find(|(_, row)| !row.tags.is_empty())
            .map(|(_, row)| row.tags.clone())
            .unwrap_or_default(),
        metadata: parentless
            .map(|row| row.metadata.clone())
            .unwrap_or_default(),
        input: parentless.and_then(|row| row.input.clone()),
        output: parentless.and_then(|row| row.output.clone()),
        public: Some(rows.iter().any(|(_, row)| row.public)),
        environment: Some(
            latest(&|row| row.environment.clone()).unwrap_or_else(|| "default".into()),
        ),
        release: latest(&|row| row.release.clone()),
        version: latest(&|row| row.version.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn s4_9_events_full_metadata_is_flattened_to_strings() {
        let metadata = json!({"a": {"b": 1}, "list": [1, 2], "s": "x", "n": 2.5})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            Value::Object(flatten(&metadata)),
            json!({"a.b": "1", "list": "[1,2]", "s": "x", "n": "2.5"})
        );
    }
}
