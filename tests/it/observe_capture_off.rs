//! `LANGFUSE_OBSERVE_DECORATOR_IO_CAPTURE_ENABLED=false` turns input and output capture off for
//! every `#[observe]` function whose trace goes to the client configured with it: observations,
//! their nesting, names, types and errors still arrive, but no argument or return value does.

use langfuse_observe::{config::ConfigBuilder, observe};

use crate::support::observed::{
    assert_child_of, current_trace, named, trace_observations, Harness,
};

/// A server, and a client for it configured from variables as a user's environment would set
/// them, capture turned off.
fn start() -> Harness {
    Harness::start_from(|server| {
        let variables = [
            ("LANGFUSE_PUBLIC_KEY", server.public_key().to_owned()),
            ("LANGFUSE_SECRET_KEY", server.secret_key().to_owned()),
            ("LANGFUSE_BASE_URL", server.url()),
            (
                "LANGFUSE_OBSERVE_DECORATOR_IO_CAPTURE_ENABLED",
                "false".to_owned(),
            ),
        ];
        let builder = ConfigBuilder::from_lookup(|name| {
            variables
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.clone())
        })
        .unwrap();
        assert!(!builder.clone().build().unwrap().capture_io());
        builder
    })
}

#[observe(as_type = "chain")]
fn pipeline(question: &str, top_k: usize) -> String {
    let documents = retrieve(question, top_k);
    let _ = validate(&documents);
    format!("answer from {} documents", documents.len())
}

#[observe(as_type = "retriever")]
fn retrieve(query: &str, top_k: usize) -> Vec<String> {
    (0..top_k).map(|i| format!("{query} #{i}")).collect()
}

#[observe(as_type = "guardrail")]
fn validate(documents: &[String]) -> Result<(), String> {
    Err(format!("{} documents is too few", documents.len()))
}

#[observe]
fn capture_off_root() -> String {
    pipeline("secret question", 2);
    current_trace()
}

#[test]
fn no_input_or_output_is_recorded_but_observations_still_arrive() {
    let test = start();
    let server = &test.server;
    let trace = capture_off_root();
    let observations = trace_observations(server, &trace);
    assert_eq!(observations.len(), 4, "{observations:#?}");
    for observation in &observations {
        assert_eq!(observation.input, None, "{:?}", observation.name);
        assert_eq!(observation.output, None, "{:?}", observation.name);
    }
    let root = named(&observations, "capture_off_root");
    let pipeline = named(&observations, "pipeline");
    let retrieve = named(&observations, "retrieve");
    let validate = named(&observations, "validate");
    assert_child_of(pipeline, root);
    assert_child_of(retrieve, pipeline);
    assert_child_of(validate, pipeline);
    assert_eq!(pipeline.observation_type, "CHAIN");
    assert_eq!(retrieve.observation_type, "RETRIEVER");
    // An error is not input or output: its level and message are still recorded.
    assert_eq!(validate.level, "ERROR");
    assert_eq!(
        validate.status_message.as_deref(),
        Some("2 documents is too few")
    );

    // Nor does the trace show the root's input or output.
    let recorded = server.trace(&trace).unwrap();
    assert_eq!((recorded.input, recorded.output), (None, None));
}

#[observe]
async fn async_capture_off(secret: String) -> String {
    tokio::task::yield_now().await;
    secret.to_uppercase()
}

#[tokio::test]
async fn async_functions_capture_nothing_either() {
    let test = start();
    let server = &test.server;
    async_capture_off("hush".to_owned()).await;
    // Find it by name: its trace id is not needed to show nothing was captured.
    let observations: Vec<_> = server
        .observations()
        .into_iter()
        .filter(|o| o.name.as_deref() == Some("async_capture_off"))
        .collect();
    assert_eq!(observations.len(), 1);
    assert_eq!(observations[0].input, None);
    assert_eq!(observations[0].output, None);
}
