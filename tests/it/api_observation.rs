//! `update_current_observation`, `update_current_generation`, `create_event` and the scoped
//! `observation(name)…run(..)` / `.run_async(..)` API, checked on the loopback server: name,
//! input and output overrides, metadata, typed level, status message and version; model,
//! parameters, usage, cost, completion start time and prompt; events under the current
//! observation; scoped observations that nest, record panics and cancellation.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use langfuse_observe::{
    observe,
    trace::{
        create_event, current_observation_id, observation, update_current_generation,
        update_current_observation, GenerationUpdate, Level, ObservationType, ObservationUpdate,
        PromptRef,
    },
};
use serde_json::json;

use crate::support::observed::{
    assert_child_of, assert_names, assert_root, assert_within, current_observation, current_trace,
    millis, named, trace_observations, user_metadata, wait_for_trace, Harness,
};

// ---------------------------------------------------------------------------------------------
// update_current_observation

#[observe]
fn updated(question: &str) -> String {
    assert!(update_current_observation(
        ObservationUpdate::new()
            .name("renamed-step")
            .input(&json!({"question": "<overridden input>"}))
            .metadata("retries", 2)
            .metadata("source", "cache")
            .level(Level::Warning)
            .status_message("served from a stale cache")
            .version("3.4.5")
    ));
    // A second update merges metadata and changes only what it names.
    assert!(update_current_observation(
        ObservationUpdate::new()
            .metadata("nested", json!({"a": [1, 2]}))
            .metadata("source", "network")
    ));
    format!("answer to {question}")
}

#[observe]
fn updated_root() -> String {
    updated("what?");
    current_trace()
}

#[test]
fn an_observation_update_sets_name_input_metadata_level_status_and_version() {
    let test = Harness::start();
    let server = &test.server;
    let id = updated_root();
    let observations = trace_observations(server, &id);
    assert_names(&observations, &["updated_root", "renamed-step"]);
    let step = named(&observations, "renamed-step");
    assert_child_of(step, named(&observations, "updated_root"));
    assert_eq!(step.input, Some(json!({"question": "<overridden input>"})));
    // Stored as strings: a number in its decimal form, a nested value as its JSON text.
    assert_eq!(
        user_metadata(&step.metadata),
        json!({"retries": "2", "source": "network", "nested": json!({"a": [1, 2]}).to_string()})
    );
    // Next to them, what the server adds: the scope is Langfuse's own, so the server does not
    // dump every span attribute into the metadata as well.
    assert_eq!(step.metadata["scope.name"], json!("langfuse-sdk"));
    assert!(
        step.metadata
            .keys()
            .any(|key| key.starts_with("resourceAttributes.")),
        "{:?}",
        step.metadata
    );
    assert!(
        !step
            .metadata
            .keys()
            .any(|key| key.starts_with("attributes")),
        "{:?}",
        step.metadata
    );
    assert_eq!(step.level, "WARNING");
    assert_eq!(
        step.status_message.as_deref(),
        Some("served from a stale cache")
    );
    assert_eq!(step.version.as_deref(), Some("3.4.5"));
    // Not overridden: the return value is the output.
    assert_eq!(step.output, Some(json!("answer to what?")));
}

#[observe]
fn explicit_output() -> u32 {
    assert!(update_current_observation(
        ObservationUpdate::new().output(&json!({"summary": "set by the body"}))
    ));
    7
}

#[observe]
fn explicit_output_root() -> String {
    assert_eq!(explicit_output(), 7, "the function still returns its value");
    current_trace()
}

/// `ObservationUpdate::output` promises "a later return value is not recorded over it".
#[test]
fn an_output_set_in_the_body_is_not_replaced_by_the_return_value() {
    let test = Harness::start();
    let server = &test.server;
    let id = explicit_output_root();
    let observations = trace_observations(server, &id);
    let step = named(&observations, "explicit_output");
    assert_eq!(step.output, Some(json!({"summary": "set by the body"})));
}

#[observe]
fn explicit_output_async_inner() -> impl std::future::Future<Output = &'static str> {
    async {
        tokio::task::yield_now().await;
        update_current_observation(ObservationUpdate::new().output("set across an await"));
        "returned"
    }
}

#[observe]
async fn explicit_output_async_root() -> String {
    assert_eq!(explicit_output_async_inner().await, "returned");
    current_trace()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_set_in_an_async_body_is_not_replaced_by_the_return_value() {
    let test = Harness::start();
    let server = &test.server;
    let id = explicit_output_async_root().await;
    let observations = trace_observations(server, &id);
    let step = named(&observations, "explicit_output_async_inner");
    assert_eq!(step.output, Some(json!("set across an await")));
}

#[test]
fn every_level_arrives_typed() {
    let test = Harness::start();
    let server = &test.server;
    let levels = [
        (Level::Debug, "DEBUG"),
        (Level::Default, "DEFAULT"),
        (Level::Warning, "WARNING"),
        (Level::Error, "ERROR"),
    ];
    let id = observation("levels").run(|| {
        for (level, _) in levels {
            observation(format!("level-{}", level.as_str())).run(|| {
                assert!(update_current_observation(
                    ObservationUpdate::new()
                        .level(level)
                        .status_message(format!("status {}", level.as_str()))
                ));
            });
        }
        current_trace()
    });
    let observations = trace_observations(server, &id);
    for (level, wire) in levels {
        let step = named(&observations, &format!("level-{}", level.as_str()));
        assert_eq!(step.level, wire);
        assert_eq!(
            step.status_message.as_deref(),
            Some(format!("status {wire}").as_str())
        );
    }
}

#[observe]
fn returns_err_after_warning() -> Result<u32, String> {
    update_current_observation(ObservationUpdate::new().level(Level::Warning));
    Err("it failed after all".to_owned())
}

#[observe]
fn err_root() -> String {
    let _ = returns_err_after_warning();
    current_trace()
}

#[test]
fn a_returned_error_still_wins_over_a_lower_level_set_earlier() {
    let test = Harness::start();
    let server = &test.server;
    let id = err_root();
    let observations = trace_observations(server, &id);
    let step = named(&observations, "returns_err_after_warning");
    assert_eq!(step.level, "ERROR");
    assert_eq!(step.status_message.as_deref(), Some("it failed after all"));
}

// ---------------------------------------------------------------------------------------------
// update_current_generation

/// A time with microseconds, of which the server keeps the milliseconds.
fn first_token_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(1_750_000_000_654_321)
}

#[observe(as_type = "generation")]
fn llm_call(prompt: &str) -> String {
    assert!(update_current_generation(
        GenerationUpdate::new()
            .model("gpt-4o-mini")
            .model_parameter("temperature", 0.2)
            .model_parameter("max_tokens", 256)
            .usage("input", 42)
            .usage("output", 17)
            .completion_start_time(first_token_time())
            .prompt(PromptRef::new("qa-prompt", 3))
            .observation(
                ObservationUpdate::new()
                    .metadata("provider", "openai")
                    .version("gen-1")
            )
    ));
    // A later update merges usage and cost, and replaces the model.
    assert!(update_current_generation(
        GenerationUpdate::new()
            .model("gpt-4o-mini-2024-07-18")
            .usage("total", 59)
            .cost("input", 0.000_006_3)
            .cost("output", 0.000_010_2)
            .cost("total", 0.000_016_5)
    ));
    format!("echo: {prompt}")
}

#[observe]
fn llm_root() -> String {
    llm_call("hello");
    current_trace()
}

#[test]
fn a_generation_update_sets_model_parameters_usage_cost_start_and_prompt() {
    let test = Harness::start();
    let server = &test.server;
    let id = llm_root();
    let observations = trace_observations(server, &id);
    let generation = named(&observations, "llm_call");
    assert_child_of(generation, named(&observations, "llm_root"));
    assert_eq!(generation.observation_type, "GENERATION");
    assert_eq!(generation.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
    assert_eq!(
        generation.model_parameters,
        Some(json!({"temperature": 0.2, "max_tokens": 256}))
    );
    assert_eq!(
        generation.usage_details,
        Some(json!({"input": 42, "output": 17, "total": 59})),
        "usage is whole token counts"
    );
    let cost = generation.cost_details.clone().unwrap();
    for (kind, usd) in [
        ("input", 0.000_006_3),
        ("output", 0.000_010_2),
        ("total", 0.000_016_5),
    ] {
        assert_eq!(cost[kind].as_f64(), Some(usd), "cost {kind} in {cost}");
    }
    assert_eq!(
        generation.completion_start_time,
        Some(millis(first_token_time()))
    );
    assert_eq!(generation.prompt_name.as_deref(), Some("qa-prompt"));
    assert_eq!(generation.prompt_version, Some(3));
    assert_eq!(
        user_metadata(&generation.metadata),
        json!({"provider": "openai"})
    );
    assert_eq!(generation.version.as_deref(), Some("gen-1"));
    assert_eq!(generation.input, Some(json!({"prompt": "hello"})));
    assert_eq!(generation.output, Some(json!("echo: hello")));
}

#[observe]
fn span_that_calls_a_model() -> u32 {
    assert!(update_current_generation(
        GenerationUpdate::new()
            .model("claude-3-haiku")
            .usage("input", 3)
    ));
    1
}

#[observe]
fn span_to_generation_root() -> String {
    span_that_calls_a_model();
    current_trace()
}

#[test]
fn a_generation_update_on_a_span_makes_it_a_generation() {
    let test = Harness::start();
    let server = &test.server;
    let id = span_to_generation_root();
    let observations = trace_observations(server, &id);
    let step = named(&observations, "span_that_calls_a_model");
    assert_eq!(step.observation_type, "GENERATION");
    assert_eq!(step.model.as_deref(), Some("claude-3-haiku"));
    assert_eq!(
        step.usage_details,
        Some(json!({"input": 3, "total": 3})),
        "the server adds the missing total"
    );
    assert_eq!(
        named(&observations, "span_to_generation_root").observation_type,
        "SPAN"
    );
}

#[observe(as_type = "generation")]
fn generation_overrides() -> String {
    assert!(update_current_generation(
        GenerationUpdate::new().model("m").observation(
            ObservationUpdate::new()
                .name("renamed-generation")
                .input(&["overridden", "messages"])
                .level(Level::Debug)
                .status_message("verbose")
        )
    ));
    "out".to_owned()
}

#[observe]
fn generation_overrides_root() -> String {
    generation_overrides();
    current_trace()
}

#[test]
fn a_generation_update_carries_the_observation_fields_too() {
    let test = Harness::start();
    let server = &test.server;
    let id = generation_overrides_root();
    let observations = trace_observations(server, &id);
    let generation = named(&observations, "renamed-generation");
    assert_eq!(generation.observation_type, "GENERATION");
    assert_eq!(generation.input, Some(json!(["overridden", "messages"])));
    assert_eq!(generation.level, "DEBUG");
    assert_eq!(generation.status_message.as_deref(), Some("verbose"));
    assert_eq!(generation.model.as_deref(), Some("m"));
}

// ---------------------------------------------------------------------------------------------
// create_event

#[observe]
fn emits_events() -> String {
    let own = current_observation();
    assert!(create_event(
        "cache-hit",
        ObservationUpdate::new()
            .input(&json!({"key": "q-17"}))
            .output("cached answer")
            .metadata("ttl", 60)
            .level(Level::Debug)
    ));
    nested_event_emitter();
    own
}

#[observe]
fn nested_event_emitter() {
    assert!(create_event(
        "nested-event",
        ObservationUpdate::new().status_message("deeper")
    ));
}

#[observe]
fn event_root() -> (String, String) {
    assert!(create_event("root-event", ObservationUpdate::new()));
    (current_trace(), emits_events())
}

#[test]
fn create_event_records_a_point_in_time_event_under_the_current_observation() {
    let test = Harness::start();
    let server = &test.server;
    let (id, emitter_id) = event_root();
    let observations = trace_observations(server, &id);
    assert_names(
        &observations,
        &[
            "event_root",
            "emits_events",
            "nested_event_emitter",
            "root-event",
            "cache-hit",
            "nested-event",
        ],
    );
    let root = named(&observations, "event_root");
    let emitter = named(&observations, "emits_events");
    assert_eq!(emitter.id, emitter_id);
    let nested = named(&observations, "nested_event_emitter");

    let cache_hit = named(&observations, "cache-hit");
    assert_eq!(cache_hit.observation_type, "EVENT");
    assert_child_of(cache_hit, emitter);
    assert_eq!(cache_hit.input, Some(json!({"key": "q-17"})));
    assert_eq!(cache_hit.output, Some(json!("cached answer")));
    assert_eq!(user_metadata(&cache_hit.metadata), json!({"ttl": "60"}));
    assert_eq!(cache_hit.level, "DEBUG");
    assert_within(cache_hit, emitter);
    let (start, end) = (cache_hit.start_time.unwrap(), cache_hit.end_time.unwrap());
    assert_eq!(start, end, "an event has no duration");

    let root_event = named(&observations, "root-event");
    assert_eq!(root_event.observation_type, "EVENT");
    assert_child_of(root_event, root);

    let nested_event = named(&observations, "nested-event");
    assert_eq!(nested_event.observation_type, "EVENT");
    assert_child_of(nested_event, nested);
    assert_eq!(nested_event.status_message.as_deref(), Some("deeper"));
}

// ---------------------------------------------------------------------------------------------
// scoped observations: observation(name)…run / run_async

#[observe]
fn observed_inside_scope(n: u32) -> u32 {
    n * 2
}

#[test]
fn a_scoped_observation_nests_records_its_type_and_input_and_returns_the_value() {
    let test = Harness::start();
    let server = &test.server;
    let (id, value) = observation("pipeline").run(|| {
        let value = observation("add")
            .as_type(ObservationType::Tool)
            .input(&[1, 2])
            .run(|| {
                let sum = 1 + 2;
                assert!(update_current_observation(
                    ObservationUpdate::new().output(&sum)
                ));
                observed_inside_scope(sum)
            });
        observation("check")
            .as_type(ObservationType::Guardrail)
            .run(|| {
                observation("innermost").run(|| ());
            });
        (current_trace(), value)
    });
    assert_eq!(value, 6);
    // The outermost scoped observation flushed before `run` returned.
    let observations = trace_observations(server, &id);
    assert_names(
        &observations,
        &[
            "pipeline",
            "add",
            "observed_inside_scope",
            "check",
            "innermost",
        ],
    );
    let pipeline = named(&observations, "pipeline");
    let add = named(&observations, "add");
    let check = named(&observations, "check");
    assert_root(pipeline);
    assert_child_of(add, pipeline);
    assert_child_of(check, pipeline);
    assert_child_of(named(&observations, "innermost"), check);
    assert_child_of(named(&observations, "observed_inside_scope"), add);
    assert_within(add, pipeline);
    assert_eq!(pipeline.observation_type, "SPAN");
    assert_eq!(add.observation_type, "TOOL");
    assert_eq!(check.observation_type, "GUARDRAIL");
    assert_eq!(add.input, Some(json!([1, 2])));
    assert_eq!(add.output, Some(json!(3)));
    assert_eq!(pipeline.level, "DEFAULT");
}

#[observe]
fn observed_with_scope_inside() -> String {
    let inner = observation("scoped-child").run(current_observation_id);
    assert!(inner.is_some());
    current_trace()
}

#[test]
fn a_scoped_observation_inside_an_observed_function_is_its_child() {
    let test = Harness::start();
    let server = &test.server;
    let id = observed_with_scope_inside();
    let observations = trace_observations(server, &id);
    assert_child_of(
        named(&observations, "scoped-child"),
        named(&observations, "observed_with_scope_inside"),
    );
}

#[test]
fn a_panic_in_a_scoped_observation_is_recorded_and_goes_on() {
    let test = Harness::start();
    let server = &test.server;
    let mut trace = None;
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        observation("panicking-scope").run(|| {
            trace = Some(current_trace());
            observation("panicking-inner").run(|| -> u32 { panic!("scoped kaboom") })
        })
    }));
    let payload = caught.expect_err("the panic goes on to the caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"scoped kaboom"));
    let id = trace.unwrap();
    // The panicking root flushed before unwinding further.
    let observations = wait_for_trace(server, &id, 2);
    for name in ["panicking-scope", "panicking-inner"] {
        let step = named(&observations, name);
        assert_eq!(step.level, "ERROR", "{name}");
        assert!(
            step.status_message
                .as_deref()
                .is_some_and(|m| m.contains("scoped kaboom")),
            "{name}: {step:#?}"
        );
    }
    assert_child_of(
        named(&observations, "panicking-inner"),
        named(&observations, "panicking-scope"),
    );
}

#[observe]
async fn awaited_child(n: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    n + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_future_nests_across_await_points() {
    let test = Harness::start();
    let server = &test.server;
    let (id, value) = observation("fetch")
        .as_type(ObservationType::Retriever)
        .input("query")
        .run_async(async {
            let a = awaited_child(1).await;
            tokio::task::yield_now().await;
            let b = observation("post-process")
                .run_async(async {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    update_current_observation(ObservationUpdate::new().output("processed"));
                    awaited_child(a).await
                })
                .await;
            (current_trace(), b)
        })
        .await;
    assert_eq!(value, 3);
    let observations = trace_observations(server, &id);
    assert_names(
        &observations,
        &["fetch", "awaited_child", "post-process", "awaited_child"],
    );
    let fetch = named(&observations, "fetch");
    let post = named(&observations, "post-process");
    assert_root(fetch);
    assert_eq!(fetch.observation_type, "RETRIEVER");
    assert_eq!(fetch.input, Some(json!("query")));
    assert_child_of(post, fetch);
    assert_eq!(post.output, Some(json!("processed")));
    for child in observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("awaited_child"))
    {
        let parent = if child.input == Some(json!({"n": 1})) {
            fetch
        } else {
            post
        };
        assert_child_of(child, parent);
    }
}

#[observe]
async fn cancelling_parent() -> String {
    let timed_out = tokio::time::timeout(
        Duration::from_millis(20),
        observation("too-slow").run_async(async {
            awaited_child(0).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }),
    )
    .await;
    assert!(timed_out.is_err());
    current_trace()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_future_dropped_before_completion_ends_as_cancelled() {
    let test = Harness::start();
    let server = &test.server;
    let id = cancelling_parent().await;
    let observations = trace_observations(server, &id);
    assert_names(
        &observations,
        &["cancelling_parent", "too-slow", "awaited_child"],
    );
    let slow = named(&observations, "too-slow");
    assert_child_of(slow, named(&observations, "cancelling_parent"));
    assert_eq!(slow.level, "WARNING");
    assert!(
        slow.status_message
            .as_deref()
            .is_some_and(|m| m.contains("cancelled")),
        "{slow:#?}"
    );
    assert_eq!(named(&observations, "awaited_child").level, "DEFAULT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_scoped_root_still_arrives() {
    let test = Harness::start();
    let server = Arc::clone(&test.server);
    let (sender, receiver) = tokio::sync::oneshot::channel();
    let timed_out = tokio::time::timeout(
        Duration::from_millis(20),
        observation("cancelled-root").run_async(async move {
            sender.send(current_trace()).unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        }),
    )
    .await;
    assert!(timed_out.is_err());
    let id = receiver.await.unwrap();
    // A cancelled root does not flush; the exporter's interval delivers it.
    let observations = tokio::task::spawn_blocking(move || wait_for_trace(&server, &id, 1))
        .await
        .unwrap();
    let root = named(&observations, "cancelled-root");
    assert_eq!(root.level, "WARNING");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_scoped_future_is_recorded_and_goes_on() {
    let test = Harness::start();
    let server = Arc::clone(&test.server);
    let (sender, receiver) = std::sync::mpsc::channel();
    let task = tokio::spawn(test.client.scope(observation("panicking-future").run_async(
        async move {
            sender.send(current_trace()).unwrap();
            tokio::task::yield_now().await;
            if receiver_is_alive() {
                panic!("async kaboom");
            }
        },
    )));
    let error = task.await.expect_err("the task panicked");
    assert!(error.is_panic());
    let id = receiver.recv().unwrap();
    let observations = tokio::task::spawn_blocking(move || wait_for_trace(&server, &id, 1))
        .await
        .unwrap();
    let step = named(&observations, "panicking-future");
    assert_eq!(step.level, "ERROR");
    assert!(
        step.status_message
            .as_deref()
            .is_some_and(|m| m.contains("async kaboom")),
        "{step:#?}"
    );
}

/// Keeps the compiler from seeing that the panic above always happens.
fn receiver_is_alive() -> bool {
    std::hint::black_box(true)
}

#[test]
fn a_scoped_observation_with_flush_false_does_not_block_but_still_arrives() {
    let test = Harness::start();
    let server = &test.server;
    let id = observation("no-flush-root").flush(false).run(current_trace);
    let observations = wait_for_trace(server, &id, 1);
    assert_root(named(&observations, "no-flush-root"));
}
