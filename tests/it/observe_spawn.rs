//! Work handed to another task or thread: `tokio::spawn` of an `async fn` starts a new trace,
//! of a function returning a future keeps the caller as parent (both documented),
//! while `langfuse_observe::context::spawn`, `.in_current_observation()`, `.with_context(..)` and
//! `Context::current()` with `attach()` / `run()` keep the spawned calls children of the
//! observation that spawned them, on tasks, OS threads and `spawn_blocking` threads.

use std::time::Duration;

use langfuse_observe::{
    context::{Context, FutureExt},
    observe,
};

use crate::support::observed::{
    assert_child_of, assert_names, assert_root, current_observation, current_trace, named,
    trace_observations, wait_for_trace, Harness,
};

/// What a spawned call reports about where it ran.
#[derive(Debug)]
struct Seen {
    trace: String,
    observation: String,
}

fn seen() -> Seen {
    Seen {
        trace: current_trace(),
        observation: current_observation(),
    }
}

#[observe]
async fn spawned_async(label: &'static str) -> &'static str {
    tokio::time::sleep(Duration::from_millis(1)).await;
    spawned_leaf(label);
    label
}

#[observe]
fn spawned_leaf(label: &'static str) -> &'static str {
    label
}

/// Reports its own trace and id, so a test can find a call that started a trace of its own.
#[observe]
async fn detached() -> Seen {
    tokio::task::yield_now().await;
    seen()
}

#[observe]
async fn spawns_plainly() -> (String, Seen) {
    // The client carried along is not the observation: the task still starts a trace.
    let client = langfuse_observe::client();
    let inner = tokio::spawn(client.scope(detached())).await.unwrap();
    (current_trace(), inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_spawn_without_helpers_starts_a_new_trace() {
    let test = Harness::start();
    let server = &test.server;
    let (trace, inner) = spawns_plainly().await;
    assert_ne!(inner.trace, trace, "a plain tokio::spawn does not inherit");

    let outer = trace_observations(server, &trace);
    assert_names(&outer, &["spawns_plainly"]);
    assert_root(named(&outer, "spawns_plainly"));

    // The spawned call is the outermost of its own trace, so it flushed when it ended.
    let own = trace_observations(server, &inner.trace);
    assert_names(&own, &["detached"]);
    let detached = named(&own, "detached");
    assert_root(detached);
    assert_eq!(detached.id, inner.observation);
}

/// Builds its future at the call: the observation starts there, under the caller.
#[observe]
fn returns_a_future() -> impl std::future::Future<Output = Seen> + Send {
    async {
        tokio::task::yield_now().await;
        seen()
    }
}

#[observe]
async fn spawns_a_returned_future() -> (String, String, Seen) {
    let inner = tokio::spawn(returns_a_future()).await.unwrap();
    (current_trace(), current_observation(), inner)
}

/// When an observation starts decides what a plain `tokio::spawn` gives: an `async fn` starts
/// at its first poll, on the new task, so it is a trace of its own (above); a function that
/// returns a future starts at the call, in the caller, so it stays the caller's child.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_spawn_of_a_returned_future_keeps_the_caller_as_parent() {
    let test = Harness::start();
    let server = &test.server;
    let (trace, parent, inner) = spawns_a_returned_future().await;
    assert_eq!(
        inner.trace, trace,
        "started at the call, in the caller's trace"
    );
    let observations = wait_for_trace(server, &trace, 2);
    let future = named(&observations, "returns_a_future");
    assert_eq!(
        future.parent_observation_id.as_deref(),
        Some(parent.as_str())
    );
    assert_eq!(
        future.id, inner.observation,
        "current while the spawned task polled it"
    );
}

#[observe]
async fn spawns_with_helper() -> String {
    let handles = [
        langfuse_observe::context::spawn(spawned_async("one")),
        langfuse_observe::context::spawn(spawned_async("two")),
    ];
    for handle in handles {
        handle.await.unwrap();
    }
    current_trace()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn langfuse_spawn_keeps_the_parent() {
    let test = Harness::start();
    let server = &test.server;
    let trace = spawns_with_helper().await;
    let observations = trace_observations(server, &trace);
    assert_names(
        &observations,
        &[
            "spawns_with_helper",
            "spawned_async",
            "spawned_async",
            "spawned_leaf",
            "spawned_leaf",
        ],
    );
    let root = named(&observations, "spawns_with_helper");
    assert_root(root);
    let spawned: Vec<_> = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("spawned_async"))
        .collect();
    for task in &spawned {
        assert_child_of(task, root);
    }
    for leaf in observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("spawned_leaf"))
    {
        let own = spawned.iter().find(|s| s.input == leaf.input).unwrap();
        assert_child_of(leaf, own);
    }
}

#[observe]
async fn spawns_in_current_observation() -> String {
    let plain = tokio::spawn(
        async {
            // Not an observed call itself: the calls inside belong to the spawner.
            spawned_async("carried").await;
            spawned_leaf("carried directly")
        }
        .in_current_observation(),
    );
    let observed = tokio::spawn(spawned_async("wrapped").in_current_observation());
    plain.await.unwrap();
    observed.await.unwrap();
    current_trace()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_current_observation_carries_the_parent_into_tokio_spawn() {
    let test = Harness::start();
    let server = &test.server;
    let trace = spawns_in_current_observation().await;
    let observations = trace_observations(server, &trace);
    assert_eq!(observations.len(), 6, "{observations:#?}");
    let root = named(&observations, "spawns_in_current_observation");
    let by_label = |name: &str, label: &str| {
        observations
            .iter()
            .find(|o| {
                o.name.as_deref() == Some(name)
                    && o.input == Some(serde_json::json!({ "label": label }))
            })
            .unwrap_or_else(|| panic!("no {name}({label}) in {observations:#?}"))
    };
    let carried = by_label("spawned_async", "carried");
    let wrapped = by_label("spawned_async", "wrapped");
    assert_child_of(carried, root);
    assert_child_of(wrapped, root);
    assert_child_of(by_label("spawned_leaf", "carried directly"), root);
    assert_child_of(by_label("spawned_leaf", "carried"), carried);
    assert_child_of(by_label("spawned_leaf", "wrapped"), wrapped);
}

#[observe]
async fn hands_context_over() -> String {
    let context = Context::current();
    // Polled later, by another task, with no observation current there.
    let task = tokio::spawn(spawned_async("handed over").with_context(context));
    task.await.unwrap();
    current_trace()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_context_runs_a_future_under_a_captured_context() {
    let test = Harness::start();
    let server = &test.server;
    let trace = hands_context_over().await;
    let observations = trace_observations(server, &trace);
    assert_names(
        &observations,
        &["hands_context_over", "spawned_async", "spawned_leaf"],
    );
    let root = named(&observations, "hands_context_over");
    let task = named(&observations, "spawned_async");
    assert_child_of(task, root);
    assert_child_of(named(&observations, "spawned_leaf"), task);
}

#[observe]
fn uses_threads() -> String {
    let context = Context::current();
    let attached = std::thread::spawn({
        let context = context.clone();
        move || {
            let _attached = context.attach();
            spawned_leaf("attached")
        }
    });
    let run = std::thread::spawn(move || context.run(|| spawned_leaf("run")));
    // Without a context, a thread's call is the root of its own trace (sent to the client
    // carried along).
    let client = langfuse_observe::client();
    let bare = std::thread::spawn(move || {
        client.run(|| {
            assert!(Context::current().trace_id().is_none());
            detached_sync()
        })
    });
    attached.join().unwrap();
    run.join().unwrap();
    let bare = bare.join().unwrap();
    assert_ne!(bare.trace, current_trace());
    current_trace()
}

#[observe]
fn detached_sync() -> Seen {
    seen()
}

#[test]
fn context_attach_and_run_carry_the_parent_into_std_threads() {
    let test = Harness::start();
    let server = &test.server;
    let trace = uses_threads();
    let observations = trace_observations(server, &trace);
    assert_names(
        &observations,
        &["uses_threads", "spawned_leaf", "spawned_leaf"],
    );
    let root = named(&observations, "uses_threads");
    for leaf in observations.iter().filter(|o| o.id != root.id) {
        assert_child_of(leaf, root);
    }
}

#[test]
fn attach_guard_restores_the_previous_context() {
    let _test = Harness::start();
    assert!(Context::current().trace_id().is_none());
    let (context, trace) = capture_context();
    {
        let _attached = context.attach();
        assert_eq!(Context::current().trace_id().unwrap().to_string(), trace);
    }
    assert!(Context::current().trace_id().is_none());
    assert_eq!(
        context.run(|| Context::current().observation_id()),
        context.observation_id()
    );
    assert!(Context::current().observation_id().is_none());
}

#[observe]
fn capture_context() -> (Context, String) {
    (Context::current(), current_trace())
}

#[observe]
async fn uses_spawn_blocking() -> String {
    let context = Context::current();
    let result = tokio::task::spawn_blocking(move || {
        context.run(|| {
            spawned_leaf("blocking");
            // Async work inside the blocking thread, still under the carried context.
            futures_executor::block_on(async {
                tokio::task::yield_now().await;
                nested_in_blocking().await
            })
        })
    })
    .await
    .unwrap();
    assert_eq!(result, 7);
    current_trace()
}

#[observe]
async fn nested_in_blocking() -> u32 {
    7
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_run_carries_the_parent_into_spawn_blocking() {
    let test = Harness::start();
    let server = &test.server;
    let trace = uses_spawn_blocking().await;
    let observations = trace_observations(server, &trace);
    assert_names(
        &observations,
        &["uses_spawn_blocking", "spawned_leaf", "nested_in_blocking"],
    );
    let root = named(&observations, "uses_spawn_blocking");
    assert_child_of(named(&observations, "spawned_leaf"), root);
    assert_child_of(named(&observations, "nested_in_blocking"), root);
}

#[observe(skip(done))]
async fn spawns_and_leaves(done: tokio::sync::oneshot::Receiver<()>) -> (String, String) {
    // The child outlives its parent: it is still waiting when the parent ends.
    langfuse_observe::context::spawn(outlives_parent(done));
    (current_trace(), current_observation())
}

#[observe(skip(done))]
async fn outlives_parent(done: tokio::sync::oneshot::Receiver<()>) -> &'static str {
    let _ = done.await;
    "finished after the parent"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_child_that_outlives_its_parent_still_arrives_as_its_child() {
    let test = Harness::start();
    let server = &test.server;
    let (release, done) = tokio::sync::oneshot::channel();
    let (trace, parent_id) = spawns_and_leaves(done).await;
    // The parent flushed when it ended, before its child ended.
    let observations = trace_observations(server, &trace);
    assert_names(&observations, &["spawns_and_leaves"]);

    release.send(()).unwrap();
    // Nothing flushes for the child (its parent already did); the interval delivers it.
    let observations = wait_for_trace(server, &trace, 2);
    let child = named(&observations, "outlives_parent");
    assert_eq!(child.parent_observation_id.as_deref(), Some(&*parent_id));
    assert_eq!(
        child.output,
        Some(serde_json::json!("finished after the parent"))
    );
    let parent = named(&observations, "spawns_and_leaves");
    assert!(child.end_time.unwrap() >= parent.end_time.unwrap());
}
