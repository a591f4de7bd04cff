//! A mask set with `ConfigBuilder::mask` runs on every input, output and metadata value of
//! observations, events and traces before anything leaves the process: the server, down to the
//! raw OTLP requests, never sees the unmasked text. A mask that panics turns the value into a
//! marker and the program and the export go on.

use langfuse_observe::{
    observe,
    trace::{
        create_event, observation, update_current_generation, update_current_observation,
        update_current_trace, GenerationUpdate, ObservationId, ObservationUpdate, TraceUpdate,
    },
    Config,
};
use langfuse_observe_testing::opentelemetry_proto::tonic::common::v1::any_value;
use langfuse_observe_testing::TestServer;
use serde_json::{json, Value};

use crate::support::observed::{
    current_trace, named, trace_observations, user_metadata, wait_for_trace, Harness,
};

/// Text the mask removes wherever it occurs.
const SECRET: &str = "sk-SECRET-4242";
/// Text the mask panics on.
const POISON: &str = "PANIC-IN-MASK";
const REDACTED: &str = "<redacted>";
const MARKER: &str = "<masked: the mask function panicked>";

fn mask(value: Value) -> Value {
    match value {
        Value::String(text) if text.contains(POISON) => panic!("the mask cannot handle this"),
        Value::String(text) => Value::String(text.replace(SECRET, REDACTED)),
        Value::Array(items) => Value::Array(items.into_iter().map(mask).collect()),
        Value::Object(map) => Value::Object(map.into_iter().map(|(k, v)| (k, mask(v))).collect()),
        other => other,
    }
}

fn start() -> Harness {
    Harness::start_from(|server| {
        Config::builder()
            .keys(server.public_key(), server.secret_key())
            .base_url(server.url())
            .mask(mask)
    })
}

/// A string attribute of one exported span, as the server received it.
fn sent_attribute(server: &TestServer, span_id: &str, key: &str) -> Option<String> {
    let span_id = ObservationId::parse(span_id).unwrap().to_bytes();
    server
        .otlp_requests()
        .iter()
        .flat_map(|export| &export.resource_spans)
        .flat_map(|resource| &resource.scope_spans)
        .flat_map(|scope| &scope.spans)
        .filter(|span| span.span_id == span_id)
        .flat_map(|span| &span.attributes)
        .filter(|attribute| attribute.key == key)
        .find_map(
            |attribute| match attribute.value.as_ref()?.value.as_ref()? {
                any_value::Value::StringValue(text) => Some(text.clone()),
                _ => None,
            },
        )
}

/// A JSON text as a value.
fn parse(json: &str) -> Value {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"))
}

/// Everything the server kept, as text: the Langfuse-shaped model and the raw OTLP exports.
fn everything_on_server(server: &TestServer) -> String {
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}",
        server.traces(),
        server.observations(),
        server.scores(),
        server.otlp_requests()
    )
}

#[observe(as_type = "generation")]
fn call_model(api_key: &str, prompt: &str) -> String {
    update_current_generation(
        GenerationUpdate::new()
            .model("masked-model")
            .observation(ObservationUpdate::new().metadata("auth", format!("Bearer {SECRET}"))),
    );
    format!("the model saw {api_key} and {prompt}")
}

#[observe]
fn leaky_root(user_input: &str) -> String {
    call_model(SECRET, "hello");
    update_current_observation(
        ObservationUpdate::new()
            .metadata("nested", json!({"tokens": [SECRET, "public"]}))
            .metadata("plain", "visible"),
    );
    assert!(update_current_trace(
        TraceUpdate::new()
            .input(&json!({"message": user_input}))
            .output(&format!("reply mentioning {SECRET}"))
            .metadata("credentials", json!({"key": SECRET}))
            .session_id("masking-session")
    ));
    create_event(
        "secret-event",
        ObservationUpdate::new()
            .input(&[SECRET])
            .output(SECRET)
            .metadata("why", SECRET),
    );
    observation("scoped-with-secret").input(&SECRET).run(|| {
        update_current_observation(ObservationUpdate::new().output(&json!({"echo": SECRET})));
    });
    current_trace()
}

#[test]
fn the_server_never_sees_the_unmasked_text() {
    let test = start();
    let server = &test.server;
    let trace = leaky_root(&format!("my key is {SECRET}"));
    let observations = wait_for_trace(server, &trace, 4);
    let everything = everything_on_server(server);
    assert!(
        !everything.contains(SECRET),
        "the secret reached the server:\n{everything}"
    );
    assert!(!server.otlp_requests().is_empty());

    let root = named(&observations, "leaky_root");
    assert_eq!(
        root.input,
        Some(json!({"user_input": format!("my key is {REDACTED}")}))
    );
    assert_eq!(
        root.metadata["nested"],
        json!(json!({"tokens": [REDACTED, "public"]}).to_string())
    );
    assert_eq!(
        root.metadata["plain"],
        json!("visible"),
        "the rest is untouched"
    );

    let generation = named(&observations, "call_model");
    assert_eq!(
        generation.input,
        Some(json!({"api_key": REDACTED, "prompt": "hello"}))
    );
    assert_eq!(
        generation.output,
        Some(json!(format!("the model saw {REDACTED} and hello")))
    );
    assert_eq!(
        generation.metadata["auth"],
        json!(format!("Bearer {REDACTED}"))
    );
    assert_eq!(generation.model.as_deref(), Some("masked-model"));

    let event = named(&observations, "secret-event");
    assert_eq!(event.input, Some(json!([REDACTED])));
    assert_eq!(event.output, Some(json!(REDACTED)));
    assert_eq!(event.metadata["why"], json!(REDACTED));

    let scoped = named(&observations, "scoped-with-secret");
    assert_eq!(scoped.input, Some(json!(REDACTED)));
    assert_eq!(scoped.output, Some(json!({"echo": REDACTED})));

    let arrived = server.trace(&trace).unwrap();
    assert_eq!(
        arrived.metadata["credentials"],
        json!(json!({"key": REDACTED}).to_string())
    );
    assert_eq!(arrived.session_id.as_deref(), Some("masking-session"));
    // A v4 server shows the root's input and output as the trace's and ignores the explicit
    // trace input and output, so those are checked as they were sent.
    assert_eq!(
        sent_attribute(server, &root.id, "langfuse.trace.input").map(|text| parse(&text)),
        Some(json!({"message": format!("my key is {REDACTED}")}))
    );
    assert_eq!(
        sent_attribute(server, &root.id, "langfuse.trace.output"),
        Some(format!("reply mentioning {REDACTED}"))
    );
}

#[observe]
fn poisoned_child(text: &str) -> String {
    update_current_observation(
        ObservationUpdate::new()
            .metadata("bad", POISON)
            .metadata("ok", 1),
    );
    format!("{text} and {POISON} again")
}

#[observe]
fn poisoned_root() -> String {
    let out = poisoned_child(POISON);
    assert!(
        out.ends_with("again"),
        "the program's own values are untouched"
    );
    update_current_trace(
        TraceUpdate::new()
            .metadata("trace-bad", POISON)
            .user_id("user-after-a-panicking-mask"),
    );
    current_trace()
}

#[test]
fn a_panicking_mask_turns_the_value_into_a_marker_and_export_goes_on() {
    let test = start();
    let server = &test.server;
    let trace = poisoned_root();
    // Flushed by the root: the panics on the worker thread did not stop delivery.
    let observations = trace_observations(server, &trace);
    assert_eq!(observations.len(), 2, "{observations:#?}");
    let child = named(&observations, "poisoned_child");
    assert_eq!(child.input, Some(json!(MARKER)));
    assert_eq!(child.output, Some(json!(MARKER)));
    assert_eq!(user_metadata(&child.metadata), json!({"masked": MARKER}));
    let arrived = server.trace(&trace).unwrap();
    assert_eq!(
        arrived.user_id.as_deref(),
        Some("user-after-a-panicking-mask")
    );
    assert_eq!(arrived.metadata.get("masked"), Some(&json!(MARKER)));
    let everything = everything_on_server(server);
    assert!(
        !everything.contains(POISON),
        "unmasked text reached the server"
    );

    // The worker survived: later records still arrive.
    let next = leaky_root("after the panics");
    assert!(wait_for_trace(server, &next, 4).len() >= 4);
}
