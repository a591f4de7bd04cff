//! Rayon's work stealing: a thread waiting inside an observed call (for a job another worker
//! took) runs other queued jobs meanwhile, on the same stack, where that call is current. The
//! supported path is to hand rayon every closure under the context it was made in
//! (`Context::current()` then `context.run(..)`), which the stolen job then runs under too.

use std::sync::mpsc;
use std::time::Duration;

use langfuse_observe::{context::Context, observe, Langfuse};

use crate::support::observed::{
    assert_child_of, assert_root, current_trace, named, wait_for_trace, Harness,
};

/// How a job is handed to rayon.
#[derive(Clone, Copy)]
enum Handing {
    /// As the README says: under the context current where the job was made.
    UnderItsContext,
    /// A bare closure.
    Bare,
}

fn spawn_job(handing: Handing, job: impl FnOnce() + Send + 'static) {
    match handing {
        Handing::UnderItsContext => {
            let context = Context::current();
            rayon::spawn(move || context.run(job));
        }
        Handing::Bare => rayon::spawn(job),
    }
}

/// An unrelated request, made on no observation at all; reports its trace.
#[observe]
fn unrelated_request(traces: mpsc::Sender<String>) {
    traces.send(current_trace()).unwrap();
}

#[observe]
fn quick_half() {}

#[observe]
fn slow_half() {}

/// Runs `rayon::join` so that this thread must wait for the half another worker took, while
/// that worker queues the unrelated request where only this thread is free to run it.
#[observe]
fn waiting_call(handing: Handing, traces: mpsc::Sender<String>) -> String {
    let context = &Context::current();
    let (started_tx, started_rx) = mpsc::channel();
    let (ran_tx, ran_rx) = mpsc::channel::<String>();
    rayon::join(
        move || {
            // Not done until the other worker has taken the second half.
            started_rx.recv().unwrap();
            context.run(quick_half);
        },
        move || {
            started_tx.send(()).unwrap();
            let (relay_tx, relay_rx) = mpsc::channel();
            // Queued on this busy worker: the thread waiting in `join` steals it.
            spawn_job(handing, move || unrelated_request(relay_tx));
            let unrelated = relay_rx.recv_timeout(Duration::from_secs(20)).unwrap();
            ran_tx.send(unrelated).unwrap();
            context.run(slow_half);
        },
    );
    traces.send(ran_rx.recv().unwrap()).unwrap();
    current_trace()
}

/// Runs the waiting call in a pool of its own, with `client` in effect on the pool thread that
/// runs it, and so on the thread that steals the unrelated request.
fn run_in_pool(client: &Langfuse, handing: Handing) -> (String, String) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let (traces_tx, traces_rx) = mpsc::channel();
    let trace = pool.install(|| client.run(|| waiting_call(handing, traces_tx)));
    (trace, traces_rx.recv().unwrap())
}

#[test]
fn a_stolen_job_handed_over_under_its_context_starts_its_own_trace() {
    let test = Harness::start();
    let server = &test.server;
    let (trace, unrelated) = run_in_pool(&test.client, Handing::UnderItsContext);
    assert_ne!(
        unrelated, trace,
        "the unrelated request joined the waiting call's trace"
    );
    let observations = wait_for_trace(server, &trace, 3);
    let root = named(&observations, "waiting_call");
    assert_root(root);
    assert_child_of(named(&observations, "quick_half"), root);
    assert_child_of(named(&observations, "slow_half"), root);
    let own = wait_for_trace(server, &unrelated, 1);
    assert_root(named(&own, "unrelated_request"));
}

/// What the README warns about: a bare closure carries no context, so a job stolen by a
/// thread waiting inside an observed call runs under that call.
#[test]
fn a_bare_stolen_job_runs_under_the_waiting_call() {
    let test = Harness::start();
    let server = &test.server;
    let (trace, unrelated) = run_in_pool(&test.client, Handing::Bare);
    assert_eq!(unrelated, trace);
    let observations = wait_for_trace(server, &trace, 4);
    assert_child_of(
        named(&observations, "unrelated_request"),
        named(&observations, "waiting_call"),
    );
}
