//! `update_current_trace` from inside observed code, checked on the loopback server: every trace
//! field arrives, the last write wins per field, tags accumulate and metadata merges, from any
//! depth of nesting, across `.await` and spawned tasks, whatever the root's type (a root
//! generation included); and outside any observation every API call returns false or `None`,
//! does not panic and sends nothing.

use std::sync::Arc;
use std::time::Duration;

use langfuse_observe::{
    context::{traceparent, Context},
    observe,
    trace::{
        create_event, current_observation_id, current_trace_id, current_trace_url, observation,
        score_current_observation, score_current_trace, update_current_generation,
        update_current_observation, update_current_trace, GenerationUpdate, ObservationType,
        ObservationUpdate, Score, TraceUpdate,
    },
};
use langfuse_observe_testing::{StoredTrace, TestServer};
use serde_json::json;

use crate::support::observed::{
    assert_child_of, assert_root, current_trace, named, trace_observations, user_metadata, Harness,
};
use crate::support::WAIT;

/// The trace as the server shows it, once its root has been flushed.
fn trace_on_server(server: &TestServer, trace: &str) -> StoredTrace {
    assert!(
        server.wait_until(WAIT, |s| s.trace(trace).is_some()),
        "trace {trace} never arrived"
    );
    server.trace(trace).unwrap()
}

// ---------------------------------------------------------------------------------------------
// every field

#[observe]
fn sets_every_field(question: &str) -> String {
    assert!(update_current_trace(
        TraceUpdate::new()
            .name("support-chat")
            .session_id("session-every-field")
            .user_id("user-every-field")
            .tag("beta")
            .tag("rust")
            .metadata("tenant", "acme")
            .metadata("attempt", 2)
            .metadata("flags", json!({"fast": true, "tiers": [1, 2]}))
            .version("2.1.0")
            .release("release-42")
            .input(&json!({"question": "explicit trace input"}))
            .output("explicit trace output")
            .public(true)
            .environment("staging")
    ));
    format!("answer to {question}")
}

#[observe]
fn every_field_root() -> String {
    sets_every_field("why?");
    current_trace()
}

#[test]
fn every_trace_field_arrives() {
    let test = Harness::start();
    let server = &test.server;
    let id = every_field_root();
    let trace = trace_on_server(server, &id);
    assert_eq!(trace.name.as_deref(), Some("support-chat"));
    assert_eq!(trace.session_id.as_deref(), Some("session-every-field"));
    assert_eq!(trace.user_id.as_deref(), Some("user-every-field"));
    assert_eq!(trace.tags, ["beta", "rust"]);
    // Stored as strings: a number in its decimal form, a nested value as its JSON text.
    assert_eq!(
        user_metadata(&trace.metadata),
        json!({
            "tenant": "acme",
            "attempt": "2",
            "flags": json!({"fast": true, "tiers": [1, 2]}).to_string(),
        })
    );
    assert_eq!(trace.version.as_deref(), Some("2.1.0"));
    assert_eq!(trace.release.as_deref(), Some("release-42"));
    assert_eq!(trace.public, Some(true));
    assert_eq!(trace.environment.as_deref(), Some("staging"));
    // An explicit trace input and output reach v2 and v3 servers only (`TraceUpdate::input`
    // says so, and `otlp_mapping` checks them there); a v4 server shows the root
    // observation's (LANGFUSE_SERVER.md §5.2).
    let root = named(&trace_observations(server, &id), "every_field_root").clone();
    assert_eq!(trace.input, root.input);
    assert_eq!(trace.output, Some(json!(id)));
}

#[observe]
fn plain_root(question: &str) -> String {
    let _ = question;
    update_current_trace(TraceUpdate::new().session_id("session-plain"));
    current_trace()
}

#[test]
fn without_explicit_values_the_trace_shows_the_roots_name_and_io_and_the_configured_environment() {
    let test = Harness::start();
    let server = &test.server;
    let id = plain_root("plain?");
    let trace = trace_on_server(server, &id);
    assert_eq!(trace.name.as_deref(), Some("plain_root"));
    assert_eq!(trace.input, Some(json!({"question": "plain?"})));
    assert_eq!(trace.output, Some(json!(id)));
    assert_eq!(trace.environment.as_deref(), Some("test"));
    assert_eq!(
        trace.public,
        Some(false),
        "public only when some span says so"
    );
    assert!(trace.tags.is_empty());
    assert_eq!(trace.session_id.as_deref(), Some("session-plain"));
    assert_eq!(trace.user_id, None);
}

// ---------------------------------------------------------------------------------------------
// merging: last write wins per field, tags accumulate, metadata merges

#[observe]
fn merging_child() {
    assert!(update_current_trace(
        TraceUpdate::new()
            .name("second name")
            .tag("b")
            .tag("c")
            .metadata("child", true)
            .metadata("shared", "from child")
    ));
    merging_grandchild();
}

#[observe]
fn merging_grandchild() {
    assert!(update_current_trace(
        TraceUpdate::new()
            .user_id("user-from-grandchild")
            .tag("a")
            .metadata("grandchild", 3)
    ));
}

#[observe]
fn merging_root() -> String {
    assert!(update_current_trace(
        TraceUpdate::new()
            .name("first name")
            .session_id("session-first")
            .user_id("user-first")
            .version("1.0")
            .tag("a")
            .tag("b")
            .metadata("root", 1)
            .metadata("shared", "from root")
    ));
    merging_child();
    // After the children: this write is the last one for these fields.
    assert!(update_current_trace(
        TraceUpdate::new()
            .session_id("session-last")
            .version("1.1")
            .tag("d")
            .tag("a")
    ));
    current_trace()
}

#[test]
fn last_write_wins_per_field_tags_accumulate_and_metadata_merges() {
    let test = Harness::start();
    let server = &test.server;
    let id = merging_root();
    let trace = trace_on_server(server, &id);
    assert_eq!(trace.name.as_deref(), Some("second name"));
    assert_eq!(trace.session_id.as_deref(), Some("session-last"));
    assert_eq!(trace.user_id.as_deref(), Some("user-from-grandchild"));
    assert_eq!(trace.version.as_deref(), Some("1.1"));
    // The server shows only the latest tag list and the root's metadata, with no merging of
    // its own: the accumulating and merging is the SDK's, on every span it sends.
    assert_eq!(
        trace.tags,
        ["a", "b", "c", "d"],
        "tags accumulate once each"
    );
    assert_eq!(
        user_metadata(&trace.metadata),
        json!({"root": "1", "child": "true", "grandchild": "3", "shared": "from child"})
    );
}

#[observe]
fn repeated_root() -> String {
    for i in 0..5 {
        update_current_trace(
            TraceUpdate::new()
                .name(format!("name-{i}"))
                .metadata(format!("key-{i}"), i)
                .metadata("counter", i),
        );
    }
    current_trace()
}

#[test]
fn repeated_updates_in_one_observation_keep_the_last_value() {
    let test = Harness::start();
    let server = &test.server;
    let id = repeated_root();
    let trace = trace_on_server(server, &id);
    assert_eq!(trace.name.as_deref(), Some("name-4"));
    assert_eq!(
        user_metadata(&trace.metadata),
        json!({"key-0": "0", "key-1": "1", "key-2": "2", "key-3": "3", "key-4": "4", "counter": "4"})
    );
}

// ---------------------------------------------------------------------------------------------
// depth of nesting

#[observe]
fn level(depth: u32) {
    if depth == 0 {
        assert!(update_current_trace(
            TraceUpdate::new()
                .session_id("session-deep")
                .user_id("user-deep")
                .tag("deep")
                .metadata("depth", "leaf")
        ));
    } else {
        level(depth - 1);
    }
}

#[observe]
fn deep_root() -> String {
    level(6);
    current_trace()
}

#[test]
fn an_update_from_the_deepest_call_reaches_the_trace() {
    let test = Harness::start();
    let server = &test.server;
    let id = deep_root();
    let observations = trace_observations(server, &id);
    assert_eq!(observations.len(), 8, "{observations:#?}");
    let trace = trace_on_server(server, &id);
    assert_eq!(trace.session_id.as_deref(), Some("session-deep"));
    assert_eq!(trace.user_id.as_deref(), Some("user-deep"));
    assert_eq!(trace.tags, ["deep"]);
    assert_eq!(user_metadata(&trace.metadata), json!({"depth": "leaf"}));
}

#[observe]
async fn async_leaf(label: &'static str) {
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    update_current_trace(TraceUpdate::new().tag(label).metadata(label, label.len()));
}

#[observe]
async fn async_middle() {
    tokio::join!(async_leaf("left"), async_leaf("right"));
    update_current_trace(TraceUpdate::new().user_id("user-async"));
}

#[observe]
async fn async_root() -> String {
    tokio::task::yield_now().await;
    async_middle().await;
    let task = langfuse_observe::context::spawn(async {
        tokio::time::sleep(Duration::from_millis(1)).await;
        update_current_trace(TraceUpdate::new().session_id("session-from-task"))
    });
    assert!(task.await.unwrap());
    current_trace()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn updates_across_await_join_and_spawned_tasks_reach_the_trace() {
    let test = Harness::start();
    let server = Arc::clone(&test.server);
    let id = async_root().await;
    let trace = tokio::task::spawn_blocking(move || trace_on_server(&server, &id))
        .await
        .unwrap();
    assert_eq!(trace.session_id.as_deref(), Some("session-from-task"));
    assert_eq!(trace.user_id.as_deref(), Some("user-async"));
    let mut tags = trace.tags.clone();
    tags.sort();
    assert_eq!(tags, ["left", "right"]);
    assert_eq!(
        user_metadata(&trace.metadata),
        json!({"left": "4", "right": "5"})
    );
}

#[observe]
fn thread_root() -> String {
    let context = Context::current();
    std::thread::spawn(move || {
        let _attached = context.attach();
        assert!(update_current_trace(
            TraceUpdate::new().user_id("user-from-thread")
        ));
    })
    .join()
    .unwrap();
    current_trace()
}

#[test]
fn an_update_from_a_thread_carrying_the_context_reaches_the_trace() {
    let test = Harness::start();
    let server = &test.server;
    let id = thread_root();
    let trace = trace_on_server(server, &id);
    assert_eq!(trace.user_id.as_deref(), Some("user-from-thread"));
}

// ---------------------------------------------------------------------------------------------
// the root's type

#[observe(as_type = "generation")]
fn generation_root(prompt: &str) -> String {
    update_current_generation(GenerationUpdate::new().model("gpt-4o-mini"));
    assert!(update_current_trace(
        TraceUpdate::new()
            .session_id("session-generation-root")
            .user_id("user-generation-root")
            .tag("generation-root")
            .metadata("root", "generation")
    ));
    let _ = prompt;
    current_trace()
}

#[test]
fn a_root_generation_delivers_the_trace_attributes() {
    let test = Harness::start();
    let server = &test.server;
    let id = generation_root("hi");
    let observations = trace_observations(server, &id);
    let root = named(&observations, "generation_root");
    assert_root(root);
    assert_eq!(root.observation_type, "GENERATION");
    assert_eq!(root.model.as_deref(), Some("gpt-4o-mini"));
    let trace = trace_on_server(server, &id);
    assert_eq!(trace.session_id.as_deref(), Some("session-generation-root"));
    assert_eq!(trace.user_id.as_deref(), Some("user-generation-root"));
    assert_eq!(trace.tags, ["generation-root"]);
    assert_eq!(
        user_metadata(&trace.metadata),
        json!({"root": "generation"})
    );
}

#[observe(as_type = "tool")]
fn nested_tool() {
    update_current_trace(TraceUpdate::new().user_id("user-from-tool"));
}

#[observe(as_type = "agent")]
fn agent_root() -> String {
    nested_tool();
    current_trace()
}

#[test]
fn an_agent_root_with_the_update_in_a_tool_delivers_the_trace_attributes() {
    let test = Harness::start();
    let server = &test.server;
    let id = agent_root();
    let observations = trace_observations(server, &id);
    let root = named(&observations, "agent_root");
    assert_eq!(root.observation_type, "AGENT");
    assert_child_of(named(&observations, "nested_tool"), root);
    assert_eq!(
        trace_on_server(server, &id).user_id.as_deref(),
        Some("user-from-tool")
    );
}

#[test]
fn every_observation_type_as_root_delivers_the_trace_attributes() {
    let test = Harness::start();
    let server = &test.server;
    for kind in ObservationType::ALL {
        let name = format!("typed-root-{kind}");
        let session = format!("session-{kind}");
        let id = observation(name.clone()).as_type(kind).run(|| {
            assert!(update_current_trace(
                TraceUpdate::new()
                    .session_id(session.clone())
                    .user_id("typed-user")
                    .tag(kind.as_str())
            ));
            current_trace()
        });
        let observations = trace_observations(server, &id);
        let root = named(&observations, &name);
        assert_root(root);
        assert_eq!(root.observation_type, kind.as_str().to_uppercase());
        let trace = trace_on_server(server, &id);
        assert_eq!(
            trace.session_id.as_deref(),
            Some(session.as_str()),
            "{kind}"
        );
        assert_eq!(trace.user_id.as_deref(), Some("typed-user"), "{kind}");
        assert_eq!(trace.tags, [kind.as_str()], "{kind}");
    }
}

// ---------------------------------------------------------------------------------------------
// outside any observation

/// Names no test sends from inside an observation, so finding them on the server means an
/// outside call sent something.
const OUTSIDE: &str = "outside-marker";

#[test]
fn outside_any_observation_every_call_returns_false_or_none_and_sends_nothing() {
    let test = Harness::start();
    let server = &test.server;
    assert!(Context::current().trace_id().is_none());

    assert!(!update_current_trace(
        TraceUpdate::new()
            .name(OUTSIDE)
            .session_id(OUTSIDE)
            .user_id(OUTSIDE)
            .tag(OUTSIDE)
    ));
    assert!(!update_current_observation(
        ObservationUpdate::new().name(OUTSIDE).output(OUTSIDE)
    ));
    assert!(!update_current_generation(
        GenerationUpdate::new()
            .model(OUTSIDE)
            .usage("input", 1)
            .observation(ObservationUpdate::new().name(OUTSIDE))
    ));
    assert!(!create_event(OUTSIDE, ObservationUpdate::new()));
    assert!(!score_current_trace(OUTSIDE, 1.0));
    assert!(!score_current_observation(OUTSIDE, "label"));
    assert!(Score::for_current_trace(OUTSIDE, true).is_none());
    assert!(Score::for_current_observation(OUTSIDE, 0.5).is_none());
    assert_eq!(current_trace_id(), None);
    assert_eq!(current_observation_id(), None);
    assert_eq!(current_trace_url(), None);
    assert_eq!(traceparent(), None);
    // Calling twice (the warning is printed once) changes nothing either.
    assert!(!update_current_trace(
        TraceUpdate::new().session_id(OUTSIDE)
    ));
    assert!(!create_event(OUTSIDE, ObservationUpdate::new()));

    // Everything sent before this point has arrived once this flush completes.
    assert!(langfuse_observe::flush_blocking(WAIT).completed);
    let leaked = |text: &str| text.contains(OUTSIDE);
    for trace in server.traces() {
        assert!(
            ![&trace.name, &trace.session_id, &trace.user_id]
                .into_iter()
                .flatten()
                .any(|t| leaked(t))
                && !trace.tags.iter().any(|t| leaked(t)),
            "an outside call reached trace {trace:#?}"
        );
    }
    for observation in server.observations() {
        assert!(
            !observation.name.as_deref().is_some_and(leaked)
                && !observation.model.as_deref().is_some_and(leaked),
            "an outside call recorded {observation:#?}"
        );
    }
    assert!(
        !server.scores().iter().any(|s| leaked(&s.name)),
        "an outside call sent a score"
    );
}

#[observe]
fn ends_before_the_update() -> (String, Context) {
    (current_trace(), Context::current())
}

/// Invariant 2 of DESIGN.md: nothing is lost silently. An update through a context whose
/// observations have all ended is delivered, or the call says it was not applied.
#[test]
fn an_update_after_the_traces_observations_ended_is_delivered_or_reported_as_not_applied() {
    let test = Harness::start();
    let server = &test.server;
    let (id, context) = ends_before_the_update();
    let applied =
        context.run(|| update_current_trace(TraceUpdate::new().user_id("user-after-the-end")));
    assert!(langfuse_observe::flush_blocking(WAIT).completed);
    if applied {
        assert!(
            server.wait_until(WAIT, |s| s
                .trace(&id)
                .is_some_and(|t| t.user_id.as_deref() == Some("user-after-the-end"))),
            "update_current_trace returned true, but the user id never arrived: {:#?}",
            server.trace(&id)
        );
    }
}
