//! Overload keeps traces whole: when the export queue is nearly full, new traces are refused
//! as a whole (and counted as dropped) instead of losing the roots of traces whose children got
//! through, which Langfuse would show as orphaned fragments.

use std::collections::HashMap;
use std::time::Duration;

use langfuse_observe::{observe, Config, Langfuse};
use langfuse_observe_testing::{Faults, TestServer};

const TRACES: usize = 3_000;
const PER_TRACE: usize = 5;

#[observe]
fn step(n: usize) -> usize {
    n + 1
}

#[observe(flush = false)]
fn request(n: usize) -> usize {
    (0..PER_TRACE - 1).map(step).sum::<usize>() + n
}

#[test]
fn a_burst_loses_whole_traces_never_their_roots() {
    let server = TestServer::builder().build_model(true).start();
    let config = Config::builder()
        .keys(server.public_key(), server.secret_key())
        .base_url(server.url())
        .max_queue_items(1_000)
        .flush_at(100)
        .flush_interval(Duration::from_millis(50))
        .build()
        .unwrap();
    let client = Langfuse::new(&config).unwrap();
    let guard = client.flush_guard(config.flush_timeout());
    server.set_faults(Faults::new().delay_all(Duration::from_millis(20)));
    let burst: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || client.run(|| (0..TRACES / 4).map(request).sum::<usize>()))
        })
        .collect();
    for thread in burst {
        thread.join().unwrap();
    }
    server.clear_faults();
    drop(guard);

    let stats = client.stats();
    assert_eq!(stats.pending(), 0, "{stats:?}");
    assert_eq!(stats.enqueued, (TRACES * PER_TRACE) as u64, "{stats:?}");
    assert_eq!(stats.exported + stats.dropped, stats.enqueued, "{stats:?}");
    assert!(stats.dropped > 0, "the burst overran the queue: {stats:?}");

    let mut traces: HashMap<String, Vec<_>> = HashMap::new();
    for observation in server.observations() {
        traces
            .entry(observation.trace_id.clone())
            .or_default()
            .push(observation);
    }
    assert!(!traces.is_empty());
    let whole = traces
        .values()
        .filter(|observations| {
            observations.len() == PER_TRACE
                && observations.iter().any(|o| {
                    o.parent_observation_id.is_none() && o.name.as_deref() == Some("request")
                })
        })
        .count();
    assert_eq!(
        whole,
        traces.len(),
        "every trace that arrived arrived whole"
    );
    assert_eq!(whole * PER_TRACE, stats.exported as usize, "{stats:?}");
}
