//! Decoding the legacy batch-ingestion JSON (DESIGN §3.2) into model patches, one event at a time
//! so that one malformed event fails alone, as on the real server.

use serde_json::{Map, Value};

use super::model::{ObservationPatch, StoredScore, TracePatch};
use langfuse_observe_core::timestamp::parse_rfc3339;

/// A batch whose envelope structure is readable; event bodies are checked later, one by one.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) events: Vec<Envelope>,
    pub(crate) metadata: Option<Value>,
}

/// One element of `batch`, kept raw so a malformed event can still be reported by its id.
#[derive(Debug)]
pub(crate) struct Envelope {
    pub(crate) id: Option<String>,
    pub(crate) event_type: Option<String>,
    pub(crate) raw: Value,
}

/// What an accepted event does to the model.
#[derive(Debug)]
pub(crate) enum Effect {
    StoredTrace(TracePatch),
    StoredObservation(ObservationPatch),
    StoredScore(StoredScore),
    SdkLog(Value),
}

pub(crate) fn parse_batch(body: &[u8]) -> Result<Batch, String> {
    let root: Value =
        serde_json::from_slice(body).map_err(|e| format!("request body is not JSON: {e}"))?;
    let Value::Object(mut root) = root else {
        return Err("request body must be a JSON object".to_owned());
    };
    let Some(Value::Array(events)) = root.remove("batch") else {
        return Err("`batch` must be an array of events".to_owned());
    };
    let events = events
        .into_iter()
        .map(|raw| Envelope {
            id: raw.get("id").and_then(Value::as_str).map(str::to_owned),
            event_type: raw.get("type").and_then(Value::as_str).map(str::to_owned),
            raw,
        })
        .collect();
    Ok(Batch {
        events,
        metadata: root.remove("metadata"),
    })
}

/// Validates one event and turns it into its effect; the error is the message for the event's
/// entry in the 207 response.
pub(crate) fn decode_event(envelope: &Envelope) -> Result<Effect, String> {
    if envelope.id.as_deref().is_none_or(str::is_empty) {
        return Err("event `id` must be a non-empty string".to_owned());
    }
    match envelope.raw.get("timestamp").and_then(Value::as_str) {
        Some(ts) if parse_rfc3339(ts).is_some() => {}
        _ => return Err("event `timestamp` must be an RFC 3339 string".to_owned()),
    }
    let event_type = envelope
        .event_type
        .as_deref()
        .ok_or("event `type` must be a string")?;
    let body = Body::new(envelope.raw.get("body"))?;
    if event_type == "sdk-log" {
        return Ok(Effect::SdkLog(Value::Object(body.0.clone())));
    }
    if event_type == "trace-create" {
        return trace(&body).map(Effect::StoredTrace);
    }
    if event_type == "score-create" {
        return score(&body).map(Effect::StoredScore);
    }
    let (kind, action) = event_type
        .rsplit_once('-')
        .ok_or_else(|| format!("unknown event type `{event_type}`"))?;
    let observation_type = match kind {
        "span" | "generation" | "agent" | "tool" | "chain" | "retriever" | "evaluator"
        | "guardrail" | "embedding" => kind.to_ascii_uppercase(),
        "event" if action == "create" => "EVENT".to_owned(),
        _ => return Err(format!("unknown event type `{event_type}`")),
    };
    let is_create = match action {
        "create" => true,
        "update" => false,
        _ => return Err(format!("unknown event type `{event_type}`")),
    };
    observation(&body, observation_type, is_create).map(Effect::StoredObservation)
}

/// An event body with typed accessors whose errors name the offending field.
struct Body<'a>(&'a Map<String, Value>);

impl<'a> Body<'a> {
    fn new(body: Option<&'a Value>) -> Result<Self, String> {
        match body {
            Some(Value::Object(map)) => Ok(Body(map)),
            _ => Err("event `body` must be a JSON object".to_owned()),
        }
    }

    /// `null` and absent both mean "not set", as the SDKs send either.
    fn present(&self, key: &str) -> Option<&'a Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, key: &str) -> Result<Option<String>, String> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("body.{key} must be a string")),
        }
    }

    fn required_string(&self, key: &str) -> Result<String, String> {
        self.string(key)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("body.{key} is required"))
    }

    fn json(&self, key: &str) -> Option<Value> {
        self.present(key).cloned()
    }

    fn object(&self, key: &str) -> Result<Map<String, Value>, String> {
        match self.present(key) {
            None => Ok(Map::new()),
            Some(Value::Object(map)) => Ok(map.clone()),
            // Langfuse stores non-object metadata too; keep it visible under a fixed key.
            Some(other) => Ok([("metadata".to_owned(), other.clone())]
                .into_iter()
                .collect()),
        }
    }

    fn time(&self, key: &str) -> Result<Option<std::time::SystemTime>, String> {
        match self.string(key)? {
            None => Ok(None),
            Some(text) => parse_rfc3339(&text)
                .map(Some)
                .ok_or_else(|| format!("body.{key} must be an RFC 3339 timestamp")),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, String> {
        match self.present(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(format!("body.{key} must be a boolean")),
        }
    }

    fn tags(&self) -> Result<Vec<String>, String> {
        match self.present("tags") {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|t| {
                    t.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| "body.tags must be an array of strings".to_owned())
                })
                .collect(),
            Some(_) => Err("body.tags must be an array of strings".to_owned()),
        }
    }

    fn level(&self) -> Result<Option<String>, String> {
        match self.string("level")? {
            None => Ok(None),
            Some(level) => match level.as_str() {
                "DEBUG" | "DEFAULT" | "WARNING" | "ERROR" => Ok(Some(level)),
                _ => Err(format!(
                    "body.level must be DEBUG, DEFAULT, WARNING or ERROR, not `{level}`"
                )),
            },
        }
    }

    fn prompt_version(&self) -> Result<Option<i64>, String> {
        match self.present("promptVersion") {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| "body.promptVersion must be an integer".to_owned()),
            Some(_) => Err("body.promptVersion must be an integer".to_owned()),
        }
    }
}

fn trace(body: &Body<'_>) -> Result<TracePatch, String> {
    Ok(TracePatch {
        id: body.required_string("id")?,
        name: body.string("name")?,
        user_id: body.string("userId")?,
        session_id: body.string("sessionId")?,
        tags: body.tags()?,
        metadata: body.object("metadata")?,
        input: body.json("input"),
        output: body.json("output"),
        public: body.bool("public")?,
        environment: body.string("environment")?,
        release: body.string("release")?,
        version: body.string("version")?,
        ..Default::default()
    })
}

fn observation(
    body: &Body<'_>,
    observation_type: String,
    is_create: bool,
) -> Result<ObservationPatch, String> {
    Ok(ObservationPatch {
        id: body.required_string("id")?,
        trace_id: body.string("traceId")?,
        parent_observation_id: body.string("parentObservationId")?,
        name: body.string("name")?,
        // An update must not turn a generation into a span; it only types what it creates.
        observation_type: is_create.then(|| observation_type.clone()),
        default_type: observation_type,
        level: body.level()?,
        status_message: body.string("statusMessage")?,
        input: body.json("input"),
        output: body.json("output"),
        metadata: body.object("metadata")?,
        start_time: body.time("startTime")?,
        end_time: body.time("endTime")?,
        model: body.string("model")?,
        model_parameters: body.json("modelParameters"),
        usage_details: body.json("usageDetails"),
        cost_details: body.json("costDetails"),
        completion_start_time: body.time("completionStartTime")?,
        prompt_name: body.string("promptName")?,
        prompt_version: body.prompt_version()?,
        environment: body.string("environment")?,
        version: body.string("version")?,
    })
}

fn score(body: &Body<'_>) -> Result<StoredScore, String> {
    let value = match body.present("value") {
        Some(v @ (Value::Number(_) | Value::String(_))) => v.clone(),
        _ => return Err("body.value must be a number or a string".to_owned()),
    };
    let data_type = body.string("dataType")?;
    if let Some(dt) = &data_type {
        if !matches!(dt.as_str(), "NUMERIC" | "CATEGORICAL" | "BOOLEAN") {
            return Err(format!(
                "body.dataType must be NUMERIC, CATEGORICAL or BOOLEAN, not `{dt}`"
            ));
        }
    }
    Ok(StoredScore {
        id: body.required_string("id")?,
        trace_id: body.string("traceId")?,
        observation_id: body.string("observationId")?,
        name: body.required_string("name")?,
        value,
        data_type,
        comment: body.string("comment")?,
        config_id: body.string("configId")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(event_type: &str, body: Value) -> Envelope {
        let raw = json!({
            "id": "env-1",
            "timestamp": "2024-01-02T03:04:05.000Z",
            "type": event_type,
            "body": body,
        });
        Envelope {
            id: Some("env-1".into()),
            event_type: Some(event_type.into()),
            raw,
        }
    }

    #[test]
    fn observation_events_carry_their_type() {
        let create = decode_event(&envelope(
            "tool-create",
            json!({"id": "o", "traceId": "t", "startTime": "2024-01-02T03:04:05Z",
                   "promptVersion": 3, "level": "WARNING"}),
        ));
        let Ok(Effect::StoredObservation(patch)) = create else {
            panic!("expected an observation, got {create:?}");
        };
        assert_eq!(patch.observation_type.as_deref(), Some("TOOL"));
        assert_eq!(patch.prompt_version, Some(3));
        assert_eq!(patch.level.as_deref(), Some("WARNING"));
        assert!(patch.start_time.is_some());

        let update = decode_event(&envelope("generation-update", json!({"id": "o"})));
        let Ok(Effect::StoredObservation(patch)) = update else {
            panic!("expected an observation, got {update:?}");
        };
        assert_eq!(patch.observation_type, None);
        assert_eq!(patch.default_type, "GENERATION");
    }

    #[test]
    fn malformed_events_name_the_problem() {
        let cases = [
            ("span-create", json!({"traceId": "t"}), "body.id"),
            (
                "span-create",
                json!({"id": "o", "startTime": "yesterday"}),
                "startTime",
            ),
            ("span-create", json!({"id": "o", "level": "LOUD"}), "level"),
            ("event-update", json!({"id": "o"}), "unknown event type"),
            ("frobnicate", json!({"id": "o"}), "unknown event type"),
            (
                "score-create",
                json!({"id": "s", "name": "n", "value": [1]}),
                "body.value",
            ),
            ("score-create", json!({"id": "s", "value": 1}), "body.name"),
            ("trace-create", json!({"id": "t", "tags": "x"}), "body.tags"),
            ("trace-create", json!("not an object"), "body"),
        ];
        for (event_type, body, expected) in cases {
            let err = decode_event(&envelope(event_type, body)).expect_err(event_type);
            assert!(err.contains(expected), "{event_type}: {err}");
        }
    }

    #[test]
    fn batch_structure_is_checked_before_events() {
        assert!(parse_batch(b"nope").is_err());
        assert!(parse_batch(br#"{"batch": {}}"#).is_err());
        let batch = parse_batch(br#"{"batch": [{"id": 1}], "metadata": {"sdk": "x"}}"#)
            .expect("structurally valid");
        assert_eq!(batch.events.len(), 1);
        assert_eq!(batch.events[0].id, None);
        assert_eq!(batch.metadata, Some(json!({"sdk": "x"})));
    }
}
