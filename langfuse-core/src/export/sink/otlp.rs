//! Finished observations as OTLP spans carrying the attributes Langfuse reads (DESIGN §3.1).

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    span, status, ResourceSpans, ScopeSpans, Span, Status,
};
use std::sync::Arc;

use prost::Message;
use serde_json::{Map, Value};

use crate::capture::CapturedValue;
use crate::config::Config;
use crate::observation::{Level, Observation, ObservationType, TraceAttributes};
use crate::timestamp::{rfc3339, unix_nanos};

use crate::diagnostics;
use crate::export::batch::{send_in_batches, Sent};
use crate::export::clip_name;
use crate::export::transport::{Failure, Transport};

use super::{IngestionSink, ProjectLookup, Records, Settle, Sink};

const PATH: &str = "/api/public/otel/v1/traces";

/// The server treats spans of a scope named `langfuse-sdk…` as Langfuse SDK spans; any other
/// scope gets a raw dump of all its attributes in every observation's metadata.
const SCOPE_NAME: &str = "langfuse-sdk";
const SDK_NAME: &str = "langfuse-observe";

pub(crate) struct OtlpEncoder {
    resource: Resource,
    scope: InstrumentationScope,
    environment: Option<String>,
}

impl OtlpEncoder {
    pub(crate) fn new(config: &Config) -> Self {
        let mut attributes = vec![
            string("service.name", config.service_name()),
            string("telemetry.sdk.language", "rust"),
            string("telemetry.sdk.name", SDK_NAME),
            string("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
        ];
        attributes.extend(
            config
                .resource_attributes()
                .iter()
                .map(|(key, value)| string(key, value)),
        );
        if let Some(environment) = config.environment() {
            attributes.push(string("langfuse.environment", environment));
        }
        if let Some(release) = config.release() {
            attributes.push(string("langfuse.release", release));
        }
        Self {
            resource: Resource {
                attributes,
                ..Resource::default()
            },
            scope: InstrumentationScope {
                name: SCOPE_NAME.to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
                attributes: config
                    .public_key()
                    .map(|key| string("public_key", key))
                    .into_iter()
                    .collect(),
                ..InstrumentationScope::default()
            },
            environment: config.environment().map(str::to_owned),
        }
    }

    /// Encodes `observations` as one protobuf `ExportTraceServiceRequest`.
    pub(crate) fn encode<'a>(
        &self,
        observations: impl Iterator<Item = &'a Observation>,
    ) -> Vec<u8> {
        let spans: Vec<Span> = observations.map(|o| self.span(o)).collect();
        let request = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(self.resource.clone()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(self.scope.clone()),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        };
        request.encode_to_vec()
    }

    fn span(&self, observation: &Observation) -> Span {
        let mut attributes = Vec::with_capacity(8);
        attributes.push(string(
            "langfuse.observation.type",
            observation.kind.as_str(),
        ));
        if let Some(input) = &observation.input {
            attributes.push(captured("langfuse.observation.input", input));
        }
        if let Some(output) = &observation.output {
            attributes.push(captured("langfuse.observation.output", output));
        }
        flatten_metadata(
            &mut attributes,
            "langfuse.observation.metadata",
            &observation.metadata,
        );
        if observation.level != Level::Default {
            attributes.push(string(
                "langfuse.observation.level",
                observation.level.as_str(),
            ));
        }
        if let Some(message) = &observation.status_message {
            attributes.push(string("langfuse.observation.status_message", message));
        }
        if let Some(version) = &observation.version {
            attributes.push(string("langfuse.version", version));
        }
        let trace_environment = observation
            .trace
            .as_ref()
            .and_then(|t| t.environment.as_ref());
        if let Some(environment) = trace_environment.or(self.environment.as_ref()) {
            attributes.push(string("langfuse.environment", environment));
        }
        if let Some(generation) = &observation.generation {
            if let Some(model) = &generation.model {
                attributes.push(string("langfuse.observation.model.name", model));
            }
            if !generation.model_parameters.is_empty() {
                attributes.push(json(
                    "langfuse.observation.model.parameters",
                    &generation.model_parameters,
                ));
            }
            if !generation.usage_details.is_empty() {
                attributes.push(json(
                    "langfuse.observation.usage_details",
                    &generation.usage_details,
                ));
            }
            if !generation.cost_details.is_empty() {
                attributes.push(json(
                    "langfuse.observation.cost_details",
                    &generation.cost_details,
                ));
            }
            if let Some(time) = generation.completion_start_time {
                attributes.push(string(
                    "langfuse.observation.completion_start_time",
                    &rfc3339(time),
                ));
            }
            // The server links prompts to generations only.
            let prompt = generation
                .prompt
                .as_ref()
                .filter(|_| observation.kind == ObservationType::Generation);
            if let Some(prompt) = prompt {
                attributes.push(string("langfuse.observation.prompt.name", &prompt.name));
                attributes.push(int(
                    "langfuse.observation.prompt.version",
                    i64::from(prompt.version),
                ));
            }
        }
        if let Some(trace) = &observation.trace {
            trace_attributes(&mut attributes, trace, observation.version.is_none());
        }
        let status = (observation.level == Level::Error).then(|| Status {
            code: status::StatusCode::Error as i32,
            message: observation.status_message.clone().unwrap_or_default(),
        });
        Span {
            trace_id: observation.trace_id.to_bytes().to_vec(),
            span_id: observation.id.to_bytes().to_vec(),
            parent_span_id: observation
                .parent_id
                .map(|parent| parent.to_bytes().to_vec())
                .unwrap_or_default(),
            name: clip_name(&observation.name).to_owned(),
            kind: span::SpanKind::Internal as i32,
            start_time_unix_nano: unix_nanos(observation.start_time),
            end_time_unix_nano: unix_nanos(observation.end_time),
            attributes,
            status,
            ..Span::default()
        }
    }
}

/// Langfuse's OTLP endpoint as a destination: observations as spans, and scores through the
/// batch-ingestion API, which is the only route for them.
pub(crate) struct OtlpSink {
    encoder: OtlpEncoder,
    transport: Arc<Transport>,
    scores: IngestionSink,
    gzip: bool,
    max_batch: usize,
    not_found_hint: &'static str,
}

impl OtlpSink {
    pub(crate) fn new(config: &Config, transport: Arc<Transport>) -> Self {
        Self {
            encoder: OtlpEncoder::new(config),
            scores: IngestionSink::new(config, Arc::clone(&transport)),
            transport,
            gzip: config.gzip(),
            max_batch: config.flush_at(),
            not_found_hint: not_found_hint(config),
        }
    }

    /// Sends `observations` as spans in batches, settling each batch as it is answered.
    async fn send(&self, observations: Vec<(Observation, usize)>, settle: &Settle<'_>) {
        let size = |(_, size): &(Observation, usize)| *size;
        send_in_batches(observations, size, self.max_batch, async |batch, _| {
            let bytes = batch.iter().map(size).sum();
            let body = self
                .encoder
                .encode(batch.iter().map(|(observation, _)| observation));
            let payload = crate::export::payload(
                bytes::Bytes::from(body),
                "application/x-protobuf",
                self.gzip,
                batch.len(),
            );
            let answer = self
                .transport
                .post(PATH, &payload, settle.counters(), Value::is_object)
                .await;
            match answer {
                Ok(_) => settle.settle(batch.len(), 0, bytes),
                Err(Failure::TooLarge) if batch.len() > 1 => return Sent::TooLarge(batch),
                Err(failure) => {
                    self.report(&failure, batch.len());
                    settle.settle(0, batch.len(), bytes);
                }
            }
            Sent::Settled
        })
        .await;
    }

    fn report(&self, failure: &Failure, records: usize) {
        match failure {
            // Reported once, where the keys were rejected.
            Failure::Unauthorized(_) => {}
            Failure::Rejected(status, _) if status.as_u16() == 404 => diagnostics::warn(
                "otlp-404",
                format_args!(
                    "{} answered 404, so {records} observations were not delivered: {}",
                    self.transport.url(PATH),
                    self.not_found_hint
                ),
            ),
            _ => diagnostics::warn(
                "otlp-failed",
                format_args!(
                    "{records} observations could not be delivered: {}",
                    failure.describe()
                ),
            ),
        }
    }
}

impl Sink for OtlpSink {
    async fn deliver(&mut self, records: Records, settle: &Settle<'_>) {
        self.send(records.observations, settle).await;
        self.scores.send(&[], &records.scores, settle).await;
    }

    fn project_id(&self) -> Option<ProjectLookup> {
        Some(Box::pin(self.transport.project_id()))
    }
}

/// What to do about a 404 from the OTLP route: Langfuse answers there from its root, so a
/// base URL with a path is the likely cause; without one, the server predates OTLP.
fn not_found_hint(config: &Config) -> &'static str {
    if config.base_url().path() == "/" {
        "this Langfuse server has no OTLP endpoint (it is older than v3); set \
         LANGFUSE_EXPORTER=ingestion to use the batch-ingestion API instead"
    } else {
        "Langfuse's API is at the root of its address: remove the path from LANGFUSE_BASE_URL"
    }
}

fn trace_attributes(out: &mut Vec<KeyValue>, trace: &TraceAttributes, version_free: bool) {
    if let Some(name) = &trace.name {
        out.push(string("langfuse.trace.name", clip_name(name)));
    }
    if let Some(user) = &trace.user_id {
        out.push(string("user.id", user));
    }
    if let Some(session) = &trace.session_id {
        out.push(string("session.id", session));
    }
    if !trace.tags.is_empty() {
        let values = trace
            .tags
            .iter()
            .map(|tag| AnyValue {
                value: Some(any_value::Value::StringValue(tag.clone())),
            })
            .collect();
        out.push(attribute(
            "langfuse.trace.tags",
            any_value::Value::ArrayValue(ArrayValue { values }),
        ));
    }
    if let Some(public) = trace.public {
        out.push(attribute(
            "langfuse.trace.public",
            any_value::Value::BoolValue(public),
        ));
    }
    flatten_metadata(out, "langfuse.trace.metadata", &trace.metadata);
    if let Some(input) = &trace.input {
        out.push(captured("langfuse.trace.input", input));
    }
    if let Some(output) = &trace.output {
        out.push(captured("langfuse.trace.output", output));
    }
    if let Some(release) = &trace.release {
        out.push(string("langfuse.release", release));
    }
    // One attribute carries both versions; the observation's own version wins.
    if let (Some(version), true) = (&trace.version, version_free) {
        out.push(string("langfuse.version", version));
    }
}

/// One attribute per key, as the Python SDK sends metadata: scalars typed, the rest as JSON.
fn flatten_metadata(out: &mut Vec<KeyValue>, prefix: &str, metadata: &Map<String, Value>) {
    for (key, value) in metadata {
        let value = match value {
            Value::Bool(flag) => any_value::Value::BoolValue(*flag),
            Value::Number(number) => match number.as_i64() {
                Some(integer) => any_value::Value::IntValue(integer),
                None => any_value::Value::DoubleValue(number.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(text) => any_value::Value::StringValue(text.clone()),
            other => any_value::Value::StringValue(other.to_string()),
        };
        out.push(attribute(&format!("{prefix}.{key}"), value));
    }
}

fn attribute(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn string(key: &str, value: &str) -> KeyValue {
    attribute(key, any_value::Value::StringValue(value.to_owned()))
}

fn int(key: &str, value: i64) -> KeyValue {
    attribute(key, any_value::Value::IntValue(value))
}

fn captured(key: &str, value: &CapturedValue) -> KeyValue {
    string(key, value.as_str())
}

fn json(key: &str, value: &impl serde::Serialize) -> KeyValue {
    captured(key, &CapturedValue::json(value))
}
