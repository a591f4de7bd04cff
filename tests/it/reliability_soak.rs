//! Soak: a million observations from 64 concurrent tasks into one exporter while the test
//! server misbehaves over time (5xx bursts, 429 with `Retry-After: 1`, answers slower than the
//! timeout, dropped connections, a 30-second outage). At the end every record is counted exactly
//! once as exported, failed or dropped, nothing is pending, the bytes held never went over
//! `max_queue_bytes`, and on the ingestion path no event was applied twice.
//!
//! Run with `cargo test --test it reliability_soak -- --nocapture` to see the figures.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use langfuse_observe::{
    config::ExporterKind,
    export::Observation,
    trace::{ObservationId, TraceId},
    Langfuse,
};
use langfuse_observe_testing::{Fault, Faults, TestServer};

use crate::support::exporter::{config, exporter, path_of, requests_to};

const TASKS: u64 = 64;
const MAX_QUEUE_ITEMS: usize = 200_000;
const MAX_QUEUE_BYTES: u64 = 128 * 1024 * 1024;
/// The exporter's request timeout; the slow answers are longer than this.
const TIMEOUT: Duration = Duration::from_millis(500);

/// One step of the fault schedule: at this many seconds after the start, this plan.
type Step = (f64, Option<Faults>);

/// What one soak run is made of.
struct Soak {
    kind: ExporterKind,
    produced: u64,
    /// Records each task hands over between pauses.
    chunk: u64,
    /// Pause after each chunk, which spreads production over the fault schedule.
    pause: Duration,
    schedule: Vec<Step>,
    build_model: bool,
}

/// What a run measured.
struct Outcome {
    server: TestServer,
    exporter: Langfuse,
    peak_bytes: u64,
}

fn outage() -> Faults {
    Faults::new().with(Fault::status(503).always())
}

fn run(soak: &Soak) -> Outcome {
    let mut server = TestServer::builder().build_model(soak.build_model);
    if soak.kind == ExporterKind::Ingestion {
        // Only a v3 server accepts observations on the ingestion API.
        server = server.langfuse_v3();
    }
    let server = server.start();
    let exporter = exporter(
        config(&server, soak.kind)
            .flush_at(2_000)
            .flush_interval(Duration::from_millis(100))
            .max_queue_items(MAX_QUEUE_ITEMS)
            .max_queue_bytes(MAX_QUEUE_BYTES as usize)
            .timeout(TIMEOUT)
            .retry_backoff(Duration::from_millis(50))
            .max_retries(6),
    );
    let started = Instant::now();

    // Watches the bytes held while the run lasts.
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let exporter = exporter.clone();
        let stop = Arc::clone(&stop);
        let peak = Arc::clone(&peak);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(exporter.stats().pending_bytes, Ordering::Relaxed);
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };

    // Switches the server's faults on schedule (a thread of its own, below).
    let controller = soak.schedule.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let per_task = soak.produced / TASKS;
    assert_eq!(per_task * TASKS, soak.produced);
    let accepted = std::thread::scope(|scope| {
        let faults = scope.spawn(|| {
            for (at, plan) in &controller {
                let at = Duration::from_secs_f64(*at);
                if let Some(wait) = at.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
                match plan {
                    Some(plan) => server.set_faults(plan.clone()),
                    None => server.clear_faults(),
                }
            }
        });
        let accepted = runtime.block_on(async {
            let tasks: Vec<_> = (0..TASKS)
                .map(|task| {
                    let exporter = exporter.clone();
                    let (chunk, pause) = (soak.chunk, soak.pause);
                    tokio::spawn(async move {
                        let trace = TraceId::random();
                        let mut accepted = 0u64;
                        for i in 0..per_task {
                            let mut observation =
                                Observation::new(trace, ObservationId::random(), "soak");
                            observation.input = Some(format!("task {task} record {i}").into());
                            accepted += u64::from(exporter.record(observation));
                            if (i + 1) % chunk == 0 {
                                tokio::time::sleep(pause).await;
                            }
                        }
                        accepted
                    })
                })
                .collect();
            let mut accepted = 0;
            for task in tasks {
                accepted += task.await.unwrap();
            }
            accepted
        });
        faults.join().unwrap();
        accepted
    });
    let produced_in = started.elapsed();
    server.clear_faults();

    let report = exporter.flush_blocking(Duration::from_secs(120));
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let wall = started.elapsed();
    assert!(report.completed, "{:?}: {report:?}", soak.kind);

    let stats = exporter.stats();
    let peak_bytes = peak.load(Ordering::Relaxed);
    println!(
        "soak {:?}: produced {} (accepted {accepted}), exported {}, failed {}, dropped {}, \
         retried {}, peak pending bytes {peak_bytes} (limit {MAX_QUEUE_BYTES}), \
         production {produced_in:.1?}, wall {wall:.1?}",
        soak.kind, soak.produced, stats.exported, stats.failed, stats.dropped, stats.retried,
    );
    assert_eq!(stats.enqueued, soak.produced, "{stats:?}");
    assert_eq!(
        stats.exported + stats.failed + stats.dropped,
        soak.produced,
        "every record exported, failed or dropped, exactly: {stats:?}"
    );
    assert_eq!(stats.pending(), 0, "{stats:?}");
    assert_eq!(stats.pending_bytes, 0, "{stats:?}");
    assert_eq!(
        stats.exported + stats.failed,
        accepted,
        "every accepted record was sent: {stats:?}"
    );
    assert_eq!(stats.dropped, soak.produced - accepted, "{stats:?}");
    assert!(peak_bytes > 0, "the sampler saw the queue in use");
    assert!(
        peak_bytes <= MAX_QUEUE_BYTES,
        "peak of {peak_bytes} bytes held, more than the {MAX_QUEUE_BYTES} allowed"
    );
    assert!(stats.retried > 0, "the faults caused retries: {stats:?}");
    Outcome {
        server,
        exporter,
        peak_bytes,
    }
}

#[test]
fn a_million_records_under_faults_are_all_accounted_for() {
    let soak = Soak {
        kind: ExporterKind::Otlp,
        produced: 1_000_000,
        chunk: 125,
        pause: Duration::from_millis(400),
        schedule: vec![
            (3.0, Some(Faults::new().fail_next(4, 503).fail_next(2, 500))),
            (6.0, Some(Faults::new().rate_limit_next(2, 1))),
            (
                9.0,
                Some(Faults::new().delay_next(2, Duration::from_millis(1_200))),
            ),
            (12.0, Some(Faults::new().drop_next(4))),
            (15.0, Some(outage())),
            (45.0, None),
        ],
        build_model: false,
    };
    let Outcome {
        server,
        exporter,
        peak_bytes,
    } = run(&soak);
    let stats = exporter.stats();
    // The server keeps no spans without its model; each acknowledged request carried at most
    // `flush_at` of the exported records.
    let acknowledged = requests_to(&server, path_of(soak.kind))
        .iter()
        .filter(|request| request.status == Some(200))
        .count() as u64;
    assert!(
        acknowledged * 2_000 >= stats.exported,
        "{acknowledged} requests: {stats:?}"
    );
    assert!(
        stats.failed > 0,
        "the outage outlasted the retries of some batches: {stats:?}"
    );
    assert!(stats.dropped > 0, "the outage filled the queue: {stats:?}");
    assert!(peak_bytes <= MAX_QUEUE_BYTES);
}

#[test]
fn ingestion_under_faults_applies_no_event_twice() {
    let soak = Soak {
        kind: ExporterKind::Ingestion,
        produced: 200_000,
        chunk: 125,
        pause: Duration::from_millis(300),
        schedule: vec![
            (1.0, Some(Faults::new().fail_next(3, 503))),
            (2.0, Some(Faults::new().rate_limit_next(1, 1))),
            (
                3.5,
                Some(Faults::new().delay_next(2, Duration::from_millis(1_200))),
            ),
            (5.0, Some(Faults::new().drop_next(3))),
            (6.0, Some(outage())),
            (11.0, None),
        ],
        build_model: true,
    };
    let Outcome {
        server, exporter, ..
    } = run(&soak);
    let stats = exporter.stats();
    let observations = server.observations();
    // Each observation travels as a create and an update event; the server applies an envelope
    // id once however often it arrives, and counts the writes it applied.
    for observation in &observations {
        assert!(
            observation.writes <= 2,
            "an event was applied twice: {observation:?}"
        );
    }
    assert!(stats.exported > 0, "the server accepted records: {stats:?}");
    let whole = observations.iter().filter(|o| o.writes == 2).count() as u64;
    assert!(
        whole >= stats.exported,
        "every exported record arrived whole: {whole} < {stats:?}"
    );
    assert!(
        observations.len() as u64 <= stats.exported + stats.failed,
        "nothing dropped reached the server: {} > {stats:?}",
        observations.len()
    );
    let receipts = server.envelope_receipt_counts();
    let resent = receipts.values().filter(|&&n| n > 1).count();
    println!(
        "soak Ingestion: {} envelopes, {resent} received more than once, {} observations on the \
         server ({whole} whole)",
        receipts.len(),
        observations.len()
    );
    assert!(
        resent as u64 <= 2 * stats.retried,
        "only retried events arrive twice: {resent} envelopes, {stats:?}"
    );
}
