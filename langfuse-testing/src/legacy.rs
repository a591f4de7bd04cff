//! The legacy `traces` / `observations` tables and the `scores` table: events merged per entity
//! (LANGFUSE_SERVER.md §3.4, §3.7, §6).
//!
//! Like the real server, an entity keeps every event it ever received in "blobs" named after the
//! envelope id of the first event of each request's group, and each merge replays all of them on
//! top of the row already stored. A retried envelope id overwrites its blob, so it never counts
//! twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Map, Value};

use crate::js;
use crate::schema::{Entity, Record};
use crate::time::Millis;

/// One event as the merge sees it.
#[derive(Clone, Debug)]
pub(crate) struct MergeEvent {
    pub(crate) envelope_id: String,
    pub(crate) timestamp: Millis,
    pub(crate) is_create: bool,
    pub(crate) record: Record,
}

#[derive(Debug, Default)]
struct Stored {
    row: Option<Record>,
    blobs: BTreeMap<String, Vec<MergeEvent>>,
    /// Envelope ids of events merged directly (OTLP observations), which have no blob.
    direct: BTreeSet<String>,
}

impl Stored {
    fn writes(&self) -> usize {
        let mut ids: BTreeSet<&str> = self.direct.iter().map(String::as_str).collect();
        for events in self.blobs.values() {
            ids.extend(events.iter().map(|e| e.envelope_id.as_str()));
        }
        ids.len()
    }
}

/// Every entity of one kind.
#[derive(Debug, Default)]
pub(crate) struct Table {
    entities: HashMap<String, Stored>,
}

impl Table {
    /// Stores a request's group of events for one entity as the blob named after its first
    /// envelope id, then merges every blob on top of the stored row. Returns the new row.
    pub(crate) fn store_group(
        &mut self,
        entity: Entity,
        id: &str,
        group: Vec<MergeEvent>,
    ) -> &Record {
        let stored = self.entry(id);
        if let Some(first) = group.first() {
            stored.blobs.insert(first.envelope_id.clone(), group);
        }
        let mut events: Vec<&MergeEvent> = stored.blobs.values().flatten().collect();
        // At merge time events are ordered by envelope timestamp; creates first on a tie.
        events.sort_by_key(|e| (e.timestamp, !e.is_create));
        let row = merge(entity, stored.row.take(), events.iter().map(|e| &e.record));
        stored.row.insert(row)
    }

    /// Merges one event directly into the stored row, without a blob (OTLP observations).
    pub(crate) fn merge_direct(&mut self, entity: Entity, id: &str, event: MergeEvent) -> &Record {
        let stored = self.entry(id);
        stored.direct.insert(event.envelope_id);
        let row = merge(entity, stored.row.take(), std::iter::once(&event.record));
        stored.row.insert(row)
    }

    fn entry(&mut self, id: &str) -> &mut Stored {
        self.entities.entry(id.to_owned()).or_default()
    }

    pub(crate) fn row(&self, id: &str) -> Option<(&Record, usize)> {
        let stored = self.entities.get(id)?;
        Some((stored.row.as_ref()?, stored.writes()))
    }
}

fn immutable(entity: Entity, column: &str) -> bool {
    match entity {
        Entity::Trace => matches!(column, "id" | "timestamp" | "environment"),
        Entity::Observation => matches!(column, "id" | "trace_id" | "start_time" | "environment"),
        Entity::Score => matches!(column, "id" | "timestamp" | "trace_id" | "environment"),
    }
}

/// `mergeRecords` / `overwriteObject` (§3.7).
fn merge<'a>(
    entity: Entity,
    row: Option<Record>,
    events: impl Iterator<Item = &'a Record>,
) -> Record {
    let mut out = row.unwrap_or_default();
    for record in events {
        for (column, value) in record {
            if immutable(entity, column) && out.contains_key(column) {
                continue;
            }
            match column.as_str() {
                "tags" => {
                    let mut tags: BTreeSet<String> = strings(out.get("tags"));
                    tags.extend(strings(Some(value)));
                    out.insert(
                        "tags".into(),
                        Value::Array(tags.into_iter().map(Value::String).collect()),
                    );
                }
                "metadata" => {
                    let mut merged = match out.remove("metadata") {
                        Some(Value::Object(map)) => map,
                        _ => Map::new(),
                    };
                    if let Value::Object(map) = value {
                        merged.extend(map.clone());
                    }
                    out.insert("metadata".into(), Value::Object(merged));
                }
                "input" | "output" => {
                    if js::truthy(value) {
                        out.insert(column.clone(), value.clone());
                    }
                }
                _ => {
                    let empty_object = value.as_object().is_some_and(Map::is_empty);
                    if !empty_object {
                        out.insert(column.clone(), value.clone());
                    }
                }
            }
        }
    }
    if entity == Entity::Observation {
        if let (Some(start), Some(end)) = (
            out.get("start_time").and_then(Value::as_i64),
            out.get("end_time").and_then(Value::as_i64),
        ) {
            if end < start {
                out.insert("end_time".into(), Value::from(start));
            }
        }
    }
    out
}

fn strings(value: Option<&Value>) -> BTreeSet<String> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => BTreeSet::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(id: &str, timestamp: Millis, is_create: bool, record: Value) -> MergeEvent {
        MergeEvent {
            envelope_id: id.into(),
            timestamp,
            is_create,
            record: record.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn s3_7_merge_rules() {
        let mut table = Table::default();
        table.store_group(
            Entity::Trace,
            "t",
            vec![event(
                "e1",
                10,
                true,
                json!({"id": "t", "timestamp": 10, "environment": "a", "name": "first",
                       "tags": ["b"], "metadata": {"x": "1"}, "input": "in", "release": "r"}),
            )],
        );
        let row = table.store_group(
            Entity::Trace,
            "t",
            vec![event(
                "e2",
                20,
                true,
                json!({"timestamp": 20, "environment": "b", "name": "second", "tags": ["a"],
                       "metadata": {"y": "2"}, "input": "", "release": null, "user_id": {}}),
            )],
        );
        assert_eq!(row["timestamp"], 10, "immutable");
        assert_eq!(row["environment"], "a", "immutable");
        assert_eq!(row["name"], "second", "later wins");
        assert_eq!(row["tags"], json!(["a", "b"]), "union, sorted");
        assert_eq!(row["metadata"], json!({"x": "1", "y": "2"}));
        assert_eq!(row["input"], "in", "last truthy");
        assert_eq!(row["release"], Value::Null, "explicit null overwrites");
        assert!(!row.contains_key("user_id"), "an empty object does not");
    }

    #[test]
    fn s3_4_retried_envelope_overwrites_its_blob() {
        let mut table = Table::default();
        let group = || vec![event("e1", 1, true, json!({"id": "o", "name": "n"}))];
        table.store_group(Entity::Observation, "o", group());
        table.store_group(Entity::Observation, "o", group());
        assert_eq!(table.row("o").map(|(_, writes)| writes), Some(1));
    }

    #[test]
    fn s3_7_end_before_start_is_clamped() {
        let mut table = Table::default();
        let row = table.store_group(
            Entity::Observation,
            "o",
            vec![event(
                "e",
                1,
                true,
                json!({"start_time": 50, "end_time": 40}),
            )],
        );
        assert_eq!(row["end_time"], 50);
    }
}
