//! Many observed calls at once do not cross-talk: 1,000 concurrent tasks on a multi-thread
//! runtime, and calls on many OS threads, each produce their own correctly nested tree, with
//! every child in its root's trace under the right parent.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use langfuse_observe::observe;
use langfuse_observe_testing::StoredObservation;
use serde_json::json;

use crate::support::observed::{current_observation, current_trace, Harness};
use crate::support::WAIT;

const TASKS: u64 = 1_000;

/// Root of one task's tree: two children, each with one grandchild. It does not flush when
/// it ends (1,000 roots flushing would only slow the test down); the test flushes once.
#[observe(flush = false)]
async fn task_root(task: u64) -> (String, String) {
    tokio::task::yield_now().await;
    let (a, b) = tokio::join!(task_child(task, 0), task_child(task, 1));
    assert_eq!(a + b, 2 * task + 1);
    (current_trace(), current_observation())
}

#[observe]
async fn task_child(task: u64, index: u64) -> u64 {
    // Vary the interleaving between tasks: some sleep, some only yield.
    if (task + index) % 3 == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    } else {
        tokio::task::yield_now().await;
    }
    task_grandchild(task, index).await + index
}

#[observe]
async fn task_grandchild(task: u64, index: u64) -> u64 {
    tokio::task::yield_now().await;
    let _ = index;
    task
}

/// The inputs a call was made with.
fn input_of(observation: &StoredObservation) -> (u64, Option<u64>) {
    let input = observation.input.as_ref().expect("input recorded");
    (
        input["task"].as_u64().unwrap(),
        input.get("index").and_then(serde_json::Value::as_u64),
    )
}

#[test]
fn a_thousand_concurrent_tasks_produce_a_thousand_separate_trees() {
    let test = Harness::start();
    let server = &test.server;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(8)
        .enable_all()
        .build()
        .unwrap();
    let roots: Vec<(u64, String, String)> = runtime.block_on(async {
        let handles: Vec<_> = (0..TASKS)
            .map(|task| {
                tokio::spawn(
                    test.client
                        .scope(async move { (task, task_root(task).await) }),
                )
            })
            .collect();
        let mut roots = Vec::new();
        for handle in handles {
            let (task, (trace, root)) = handle.await.unwrap();
            roots.push((task, trace, root));
        }
        let report = langfuse_observe::flush(WAIT).await;
        assert!(report.completed, "{report:?}");
        roots
    });

    let distinct: HashSet<&str> = roots.iter().map(|(_, trace, _)| trace.as_str()).collect();
    assert_eq!(distinct.len(), TASKS as usize, "one trace per task");

    let mut by_trace: HashMap<String, Vec<StoredObservation>> = HashMap::new();
    for observation in server.observations() {
        if distinct.contains(observation.trace_id.as_str()) {
            by_trace
                .entry(observation.trace_id.clone())
                .or_default()
                .push(observation);
        }
    }
    assert_eq!(by_trace.len(), TASKS as usize);

    for (task, trace, root_id) in &roots {
        let tree = &by_trace[trace];
        assert_eq!(tree.len(), 5, "task {task}: {tree:#?}");
        let root = tree.iter().find(|o| &o.id == root_id).unwrap();
        assert_eq!(root.name.as_deref(), Some("task_root"));
        assert_eq!(root.parent_observation_id, None);
        assert_eq!(root.input, Some(json!({ "task": task })));
        assert_eq!(root.level, "DEFAULT");

        for index in 0..2 {
            let child = tree
                .iter()
                .find(|o| {
                    o.name.as_deref() == Some("task_child") && input_of(o) == (*task, Some(index))
                })
                .unwrap_or_else(|| panic!("task {task} child {index}: {tree:#?}"));
            assert_eq!(child.parent_observation_id.as_deref(), Some(&**root_id));
            assert_eq!(child.output, Some(json!(task + index)));
            let grandchild = tree
                .iter()
                .find(|o| {
                    o.name.as_deref() == Some("task_grandchild")
                        && input_of(o) == (*task, Some(index))
                })
                .unwrap_or_else(|| panic!("task {task} grandchild {index}: {tree:#?}"));
            assert_eq!(
                grandchild.parent_observation_id.as_deref(),
                Some(child.id.as_str())
            );
            assert_eq!(grandchild.output, Some(json!(task)));
        }
        for observation in tree {
            assert_eq!(&observation.trace_id, trace);
        }
    }

    // The client is this test's own: everything it was handed was delivered.
    let stats = langfuse_observe::stats();
    assert_eq!(stats.failed + stats.dropped, 0, "{stats:?}");
    assert_eq!(stats.exported, stats.enqueued, "{stats:?}");
}

#[observe]
fn thread_root(thread: u64, round: u64) -> (String, String) {
    let a = thread_child(thread, round);
    let b = thread_child(thread, round + 1);
    assert_eq!(a + 1, b);
    (current_trace(), current_observation())
}

#[observe]
fn thread_child(thread: u64, round: u64) -> u64 {
    std::thread::yield_now();
    thread * 1_000 + round
}

#[test]
fn calls_on_many_threads_at_once_stay_in_their_own_trees() {
    const THREADS: u64 = 16;
    const ROUNDS: u64 = 20;
    let test = Harness::start();
    let server = &test.server;
    let threads: Vec<_> = (0..THREADS)
        .map(|thread| {
            let client = test.client.clone();
            std::thread::spawn(move || {
                client.run(|| {
                    (0..ROUNDS)
                        .map(|round| (thread, round, thread_root(thread, round)))
                        .collect::<Vec<_>>()
                })
            })
        })
        .collect();
    let roots: Vec<_> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let distinct: HashSet<&str> = roots.iter().map(|(_, _, (t, _))| t.as_str()).collect();
    assert_eq!(distinct.len(), (THREADS * ROUNDS) as usize);

    // Every root flushed before returning.
    let observations = server.observations();
    for (thread, round, (trace, root_id)) in &roots {
        let tree: Vec<_> = observations
            .iter()
            .filter(|o| &o.trace_id == trace)
            .collect();
        assert_eq!(tree.len(), 3, "{tree:#?}");
        let root = tree.iter().find(|o| &o.id == root_id).unwrap();
        assert_eq!(root.parent_observation_id, None);
        assert_eq!(
            root.input,
            Some(json!({ "thread": thread, "round": round }))
        );
        for child in tree.iter().filter(|o| &o.id != root_id) {
            assert_eq!(child.name.as_deref(), Some("thread_child"));
            assert_eq!(child.parent_observation_id.as_deref(), Some(&**root_id));
            assert_eq!(child.input.as_ref().unwrap()["thread"], json!(thread));
        }
    }
}
