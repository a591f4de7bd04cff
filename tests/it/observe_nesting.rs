//! A call of an `#[observe]` function inside another is recorded as its child, whatever the
//! shape: sync in sync, async across `.await`, inside `join!` and `select!` arms, sync inside
//! async, async inside sync through `block_on`, methods and generic functions. Checked against
//! the loopback server, right after the outermost call returns (it flushes before returning).

use std::fmt::Debug;
use std::time::Duration;

use langfuse_observe::observe;
use serde_json::json;

use crate::support::observed::{
    assert_child_of, assert_names, assert_root, assert_within, current_trace, named,
    trace_observations, Harness,
};

// ---------------------------------------------------------------------------------------------
// sync in sync

#[observe]
fn sync_root() -> String {
    sync_child();
    sync_child_with_grandchild();
    current_trace()
}

#[observe]
fn sync_child() -> u32 {
    1
}

#[observe]
fn sync_child_with_grandchild() -> u32 {
    sync_grandchild() + 1
}

#[observe]
fn sync_grandchild() -> u32 {
    2
}

#[test]
fn sync_call_inside_sync_call_is_its_child() {
    let test = Harness::start();
    let server = &test.server;
    let trace = sync_root();
    // The outermost call flushed before returning: no waiting.
    let observations = trace_observations(server, &trace);
    assert_names(
        &observations,
        &[
            "sync_root",
            "sync_child",
            "sync_child_with_grandchild",
            "sync_grandchild",
        ],
    );
    let root = named(&observations, "sync_root");
    let child = named(&observations, "sync_child");
    let middle = named(&observations, "sync_child_with_grandchild");
    let grandchild = named(&observations, "sync_grandchild");
    assert_root(root);
    assert_child_of(child, root);
    assert_child_of(middle, root);
    assert_child_of(grandchild, middle);
    assert_within(child, root);
    assert_within(grandchild, middle);
}

#[observe]
fn recursive(depth: u32) -> u32 {
    if depth == 0 {
        0
    } else {
        recursive(depth - 1) + 1
    }
}

#[observe]
fn recursion_root() -> String {
    recursive(3);
    current_trace()
}

#[test]
fn recursive_calls_form_a_chain() {
    let test = Harness::start();
    let server = &test.server;
    let trace = recursion_root();
    let observations = trace_observations(server, &trace);
    assert_eq!(observations.len(), 5, "{observations:#?}");
    let at_depth = |depth: u32| {
        observations
            .iter()
            .find(|o| o.input == Some(json!({ "depth": depth })))
            .unwrap_or_else(|| panic!("no call with depth {depth}"))
    };
    assert_child_of(at_depth(3), named(&observations, "recursion_root"));
    for depth in 0..3 {
        assert_child_of(at_depth(depth), at_depth(depth + 1));
    }
}

#[test]
fn consecutive_outermost_calls_are_separate_traces() {
    let test = Harness::start();
    let server = &test.server;
    let first = sync_root();
    let second = sync_root();
    assert_ne!(first, second);
    for trace in [first, second] {
        let observations = trace_observations(server, &trace);
        assert_eq!(observations.len(), 4, "{observations:#?}");
        assert_root(named(&observations, "sync_root"));
    }
}

// ---------------------------------------------------------------------------------------------
// async across .await

#[observe]
async fn async_root() -> String {
    let a = async_step(1).await;
    tokio::time::sleep(Duration::from_millis(2)).await;
    let b = async_step(2).await;
    tokio::task::yield_now().await;
    assert_eq!(a + b, 3);
    async_with_grandchild().await;
    current_trace()
}

#[observe]
async fn async_step(n: u32) -> u32 {
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    n
}

#[observe]
async fn async_with_grandchild() {
    tokio::time::sleep(Duration::from_millis(1)).await;
    async_step(3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn async_call_is_a_child_across_await_points() {
    let test = Harness::start();
    let server = &test.server;
    let trace = async_root().await;
    let observations = trace_observations(server, &trace);
    assert_names(
        &observations,
        &[
            "async_root",
            "async_step",
            "async_step",
            "async_with_grandchild",
            "async_step",
        ],
    );
    let root = named(&observations, "async_root");
    let middle = named(&observations, "async_with_grandchild");
    assert_root(root);
    assert_child_of(middle, root);
    for n in 1..=3 {
        let step = observations
            .iter()
            .find(|o| o.input == Some(json!({ "n": n })))
            .unwrap();
        assert_eq!(step.output, Some(json!(n)));
        if n == 3 {
            assert_child_of(step, middle);
        } else {
            assert_child_of(step, root);
        }
        assert_within(step, root);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn async_nesting_also_holds_on_a_current_thread_runtime() {
    let test = Harness::start();
    let server = &test.server;
    let trace = async_root().await;
    let observations = trace_observations(server, &trace);
    assert_eq!(observations.len(), 5, "{observations:#?}");
    let root = named(&observations, "async_root");
    for step in observations.iter().filter(|o| o.id != root.id) {
        assert_eq!(step.trace_id, trace);
        assert!(step.parent_observation_id.is_some());
    }
}

// ---------------------------------------------------------------------------------------------
// join! and select!

/// A branch that yields between its own children, so the branches of a `join!` interleave.
#[observe]
async fn branch(label: &'static str) -> &'static str {
    leaf(label).await;
    tokio::task::yield_now().await;
    leaf(label).await;
    label
}

#[observe]
async fn leaf(label: &'static str) -> &'static str {
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    label
}

#[observe]
async fn joined() -> String {
    // Observed branches, and plain async blocks whose calls belong to `joined` itself.
    let (a, b, c) = tokio::join!(branch("a"), branch("b"), async {
        leaf("c").await;
        tokio::task::yield_now().await;
        leaf("c").await
    });
    assert_eq!((a, b, c), ("a", "b", "c"));
    current_trace()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_in_join_arms_are_children_of_their_arm_not_of_siblings() {
    let test = Harness::start();
    let server = &test.server;
    let trace = joined().await;
    let observations = trace_observations(server, &trace);
    // joined + 2 branches + 2 leaves each + 2 leaves of the plain block
    assert_eq!(observations.len(), 9, "{observations:#?}");
    let root = named(&observations, "joined");
    assert_root(root);
    let branches: Vec<_> = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("branch"))
        .collect();
    assert_eq!(branches.len(), 2);
    for branch in &branches {
        assert_child_of(branch, root);
    }
    for leaf in observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("leaf"))
    {
        let label = leaf.input.as_ref().unwrap()["label"].as_str().unwrap();
        if label == "c" {
            assert_child_of(leaf, root);
        } else {
            let own = branches
                .iter()
                .find(|b| b.input == Some(json!({ "label": label })))
                .unwrap();
            assert_child_of(leaf, own);
            assert_within(leaf, own);
        }
    }
}

#[observe]
async fn slow_arm() -> u32 {
    leaf("slow").await;
    tokio::time::sleep(Duration::from_secs(30)).await;
    1
}

#[observe]
async fn fast_arm() -> u32 {
    leaf("fast").await;
    2
}

#[observe]
async fn after_select(winner: u32) -> u32 {
    winner
}

#[observe]
async fn selecting() -> String {
    let winner = tokio::select! {
        v = slow_arm() => v,
        v = fast_arm() => after_select(v).await,
    };
    assert_eq!(winner, 2);
    current_trace()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_in_select_arms_are_children_of_the_enclosing_call() {
    let test = Harness::start();
    let server = &test.server;
    let trace = selecting().await;
    let observations = trace_observations(server, &trace);
    assert_names(
        &observations,
        &[
            "selecting",
            "slow_arm",
            "fast_arm",
            "after_select",
            "leaf",
            "leaf",
        ],
    );
    let root = named(&observations, "selecting");
    let slow = named(&observations, "slow_arm");
    let fast = named(&observations, "fast_arm");
    assert_child_of(slow, root);
    assert_child_of(fast, root);
    assert_child_of(named(&observations, "after_select"), root);
    for leaf in observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("leaf"))
    {
        match leaf.input.as_ref().unwrap()["label"].as_str().unwrap() {
            "slow" => assert_child_of(leaf, slow),
            "fast" => assert_child_of(leaf, fast),
            other => panic!("unexpected leaf {other}"),
        }
    }
    // The losing arm was dropped before it completed.
    assert_eq!(slow.level, "WARNING");
    assert_eq!(fast.level, "DEFAULT");
    assert_within(slow, root);
}

// ---------------------------------------------------------------------------------------------
// sync inside async, async inside sync

#[observe]
async fn async_calls_sync() -> String {
    tokio::task::yield_now().await;
    sync_child_with_grandchild();
    tokio::time::sleep(Duration::from_millis(1)).await;
    sync_child();
    current_trace()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_call_inside_async_call_is_its_child() {
    let test = Harness::start();
    let server = &test.server;
    let trace = async_calls_sync().await;
    let observations = trace_observations(server, &trace);
    assert_names(
        &observations,
        &[
            "async_calls_sync",
            "sync_child_with_grandchild",
            "sync_grandchild",
            "sync_child",
        ],
    );
    let root = named(&observations, "async_calls_sync");
    let middle = named(&observations, "sync_child_with_grandchild");
    assert_child_of(middle, root);
    assert_child_of(named(&observations, "sync_child"), root);
    assert_child_of(named(&observations, "sync_grandchild"), middle);
}

#[observe]
fn sync_blocks_on_futures_executor() -> String {
    let n = futures_executor::block_on(async {
        let a = async_without_timer(1).await;
        a + async_without_timer(2).await
    });
    assert_eq!(n, 3);
    current_trace()
}

/// An async function that needs no Tokio reactor, for executors other than Tokio's.
#[observe]
async fn async_without_timer(n: u32) -> u32 {
    std::future::ready(()).await;
    n
}

#[test]
fn async_call_inside_sync_call_via_futures_block_on_is_its_child() {
    let test = Harness::start();
    let server = &test.server;
    let trace = sync_blocks_on_futures_executor();
    let observations = trace_observations(server, &trace);
    assert_eq!(observations.len(), 3, "{observations:#?}");
    let root = named(&observations, "sync_blocks_on_futures_executor");
    assert_root(root);
    for o in observations.iter().filter(|o| o.id != root.id) {
        assert_eq!(o.name.as_deref(), Some("async_without_timer"));
        assert_child_of(o, root);
    }
}

#[observe]
fn sync_blocks_on_tokio() -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        async_step(1).await;
        async_with_grandchild().await;
    });
    current_trace()
}

#[test]
fn async_call_inside_sync_call_via_tokio_block_on_is_its_child() {
    let test = Harness::start();
    let server = &test.server;
    let trace = sync_blocks_on_tokio();
    let observations = trace_observations(server, &trace);
    assert_names(
        &observations,
        &[
            "sync_blocks_on_tokio",
            "async_step",
            "async_with_grandchild",
            "async_step",
        ],
    );
    let root = named(&observations, "sync_blocks_on_tokio");
    let middle = named(&observations, "async_with_grandchild");
    assert_child_of(middle, root);
    for step in observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("async_step"))
    {
        match step.input.as_ref().unwrap()["n"].as_u64().unwrap() {
            1 => assert_child_of(step, root),
            3 => assert_child_of(step, middle),
            n => panic!("unexpected step {n}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// methods and generic functions

struct Agent {
    name: String,
}

impl Agent {
    #[observe(as_type = "agent")]
    fn run(&self, task: &str) -> String {
        let plan = self.plan(task);
        let done = futures_executor::block_on(self.act(plan.len()));
        Self::summarize(done);
        current_trace()
    }

    #[observe]
    fn plan(&self, task: &str) -> Vec<String> {
        vec![format!("{}: {task}", self.name)]
    }

    #[observe(as_type = "tool")]
    async fn act(&self, steps: usize) -> usize {
        std::future::ready(steps).await
    }

    #[observe]
    fn summarize(done: usize) -> String {
        format!("{done} done")
    }
}

#[test]
fn method_calls_nest_like_functions() {
    let test = Harness::start();
    let server = &test.server;
    let agent = Agent {
        name: "planner".to_owned(),
    };
    let trace = agent.run("write tests");
    let observations = trace_observations(server, &trace);
    assert_names(&observations, &["run", "plan", "act", "summarize"]);
    let root = named(&observations, "run");
    assert_root(root);
    assert_eq!(root.observation_type, "AGENT");
    for name in ["plan", "act", "summarize"] {
        assert_child_of(named(&observations, name), root);
    }
    assert_eq!(
        named(&observations, "plan").output,
        Some(json!(["planner: write tests"]))
    );
    assert_eq!(named(&observations, "act").observation_type, "TOOL");
}

#[observe]
fn generic_identity<T: serde::Serialize + Clone>(value: T) -> T {
    value.clone()
}

/// Captured through the bound it has: `Debug`.
#[observe]
fn generic_debug<T: Debug>(value: T) -> String {
    format!("{value:?}")
}

#[observe]
async fn generic_async<T>(items: Vec<T>) -> usize
where
    T: serde::Serialize + Send,
{
    tokio::task::yield_now().await;
    items.len()
}

#[observe]
async fn generic_root() -> String {
    generic_identity(7_u8);
    generic_identity("text");
    generic_debug(Some(5));
    generic_async(vec![1, 2, 3]).await;
    generic_async(vec!["x"]).await;
    current_trace()
}

#[tokio::test]
async fn generic_function_calls_nest_per_instantiation() {
    let test = Harness::start();
    let server = &test.server;
    let trace = generic_root().await;
    let observations = trace_observations(server, &trace);
    assert_names(
        &observations,
        &[
            "generic_root",
            "generic_identity",
            "generic_identity",
            "generic_debug",
            "generic_async",
            "generic_async",
        ],
    );
    let root = named(&observations, "generic_root");
    for o in observations.iter().filter(|o| o.id != root.id) {
        assert_child_of(o, root);
    }
    let inputs: Vec<_> = observations
        .iter()
        .filter(|o| o.id != root.id)
        .filter_map(|o| o.input.clone())
        .collect();
    for expected in [
        json!({"value": 7}),
        json!({"value": "text"}),
        json!({"value": "Some(5)"}),
        json!({"items": [1, 2, 3]}),
        json!({"items": ["x"]}),
    ] {
        assert!(inputs.contains(&expected), "{expected} in {inputs:?}");
    }
}
