//! The user's program is never slowed by a slow or dead server: the cost of an observed call
//! with the server hanging, or gone, is the same as with it healthy.
//!
//! `#[observe]` uses the global exporter, which is set once per process, so one exporter serves
//! the three groups and the test server behind it changes between them:
//!
//! - `healthy`: the server answers at once;
//! - `hanging`: every data request waits 60 s before an answer (the exporter's timeout is
//!   50 ms, so each request ends in a timeout);
//! - `dead`: the server has been dropped; connections are refused.
//!
//! Each call is a sync observed function nested under a root (root flush off), timed in chunks
//! of `CHUNK` calls like `benches/observe.rs`. Unlike there, the worker is *not* held back:
//! it sends what is queued every 50 ms (and at `FLUSH_AT` records), so during the timed chunk it
//! may be sending to a healthy server, waiting on a hanging one, or failing against a dead one,
//! which is the situation the claim is about.
//!
//! Beside each group, `root/sync/<state>` and `root/async/<state>` time a whole outermost
//! observation with its flush (one child call inside), as a CLI's or job's top-level function
//! would run: against a healthy server it waits for one round trip; once the server is known to
//! be failing it does not wait at all. `concurrent_roots` prints how many requests 100
//! concurrent outermost async calls cause against the healthy server.
//!
//! The queue is kept from filling by settling between chunks (once `SETTLE_AT` records are
//! held), outside the timing: the exporter has `max_retries(0)` and a 50 ms timeout, so against
//! a hanging or dead server a flush ends quickly with the records counted as *failed* (none
//! *dropped*; the queue bound, `max_queue_items`, is far above `SETTLE_AT` plus one chunk).
//! Dropping records at a full queue would make the call cheaper for a reason unrelated to the
//! server, so it is avoided. The exporter's counts are printed at the end of each group; records
//! still held when a group ends settle in the next one.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use langfuse_observe::{config::ExporterKind, export::Stats, observe, Config};
use langfuse_observe_testing::{Faults, TestServer};

/// Calls timed between settles.
const CHUNK: u64 = 10_000;
/// Records per batch: one chunk is one batch, so a settle against a hanging server waits for
/// about one request timeout, not one per batch.
const FLUSH_AT: usize = CHUNK as usize;
/// Records held before a settle. Settling only now and then keeps its wall time from
/// dominating Criterion's warm-up estimate (which counts wall time) in the hanging group.
const SETTLE_AT: u64 = 100_000;
/// The exporter's request timeout: how long a settle waits on a hanging server.
const TIMEOUT: Duration = Duration::from_millis(50);

#[observe(capture_input = false, capture_output = false)]
fn observed_plain(a: u64, b: u64) -> u64 {
    a.wrapping_mul(b)
}

#[observe(flush = false, skip_all)]
fn observed_root(iterations: u64) -> Duration {
    let start = Instant::now();
    for i in 0..iterations {
        black_box(observed_plain(black_box(i), black_box(7)));
    }
    start.elapsed()
}

/// An outermost observation that flushes when it ends, as a CLI's top-level function does.
#[observe(skip_all)]
fn flushing_root(a: u64) -> u64 {
    observed_plain(a, 7)
}

#[observe(skip_all)]
async fn flushing_async_root(a: u64) -> u64 {
    observed_plain(a, 7)
}

/// Times outermost observations with their flush, sync and async, for the current state of
/// the server, in chunks settled like [`chunked`].
fn roots(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>, state: &str) {
    group.bench_function(format!("root/sync/{state}"), |b| {
        b.iter_custom(|iterations| {
            settled_chunks(iterations, |calls| {
                let start = Instant::now();
                for i in 0..calls {
                    black_box(flushing_root(black_box(i)));
                }
                start.elapsed()
            })
        })
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    group.bench_function(format!("root/async/{state}"), |b| {
        b.iter_custom(|iterations| {
            settled_chunks(iterations, |calls| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for i in 0..calls {
                        black_box(flushing_async_root(black_box(i)).await);
                    }
                    start.elapsed()
                })
            })
        })
    });
}

/// Runs `iterations` timed calls in chunks, settling the exporter between them when it holds
/// `SETTLE_AT` records or more.
fn chunked(iterations: u64) -> Duration {
    settled_chunks(iterations, observed_root)
}

/// Times `iterations` calls made by `timed` in chunks of at most `CHUNK`, settling between
/// chunks outside the timing.
fn settled_chunks(iterations: u64, mut timed: impl FnMut(u64) -> Duration) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut left = iterations;
    while left > 0 {
        let calls = left.min(CHUNK);
        elapsed += timed(calls);
        // Settles every record (exported when healthy, failed otherwise) once enough are held.
        if langfuse_observe::stats().pending() >= SETTLE_AT {
            let report = langfuse_observe::flush_blocking(Duration::from_secs(600));
            assert!(report.completed, "{report:?}");
        }
        left -= calls;
    }
    elapsed
}

/// Prints how many requests 100 outermost async calls running at once cause: their flushes
/// share the worker's batches.
fn concurrent_roots(server: &TestServer) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let before = server.requests().len();
    runtime.block_on(async {
        let calls: Vec<_> = (0..100)
            .map(|i| tokio::spawn(flushing_async_root(i)))
            .collect();
        for call in calls {
            call.await.expect("the call completes");
        }
    });
    println!(
        "concurrent_roots: 100 outermost async calls, {} requests",
        server.requests().len() - before
    );
}

fn print_delta(group: &str, before: Stats, after: Stats) {
    println!(
        "{group}: records {}, exported {}, failed {}, dropped {}",
        after.enqueued - before.enqueued,
        after.exported - before.exported,
        after.failed - before.failed,
        after.dropped - before.dropped,
    );
}

fn slow_server(c: &mut Criterion) {
    let server = TestServer::builder().build_model(false).start();
    let config = Config::builder()
        .keys(server.public_key(), server.secret_key())
        .base_url(server.url())
        .exporter(ExporterKind::Otlp)
        .flush_at(FLUSH_AT)
        .flush_interval(Duration::from_millis(50))
        .timeout(TIMEOUT)
        .max_retries(0)
        .retry_backoff(Duration::from_millis(10))
        .max_queue_items(1_000_000)
        .max_queue_bytes(1 << 30)
        .build()
        .expect("valid benchmark config");
    let _guard = langfuse_observe::init(config).expect("first init");

    let mut group = c.benchmark_group("slow_server");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(1));

    let before = langfuse_observe::stats();
    group.bench_function("observe/sync/healthy", |b| b.iter_custom(chunked));
    roots(&mut group, "healthy");
    let after = langfuse_observe::stats();
    print_delta("healthy", before, after);
    concurrent_roots(&server);

    server.set_faults(Faults::new().delay_all(Duration::from_secs(60)));
    let before = after;
    group.bench_function("observe/sync/hanging", |b| b.iter_custom(chunked));
    roots(&mut group, "hanging");
    let after = langfuse_observe::stats();
    print_delta("hanging", before, after);

    // Stop the delays so the server's own shutdown does not wait on them, then take it away.
    server.clear_faults();
    drop(server);
    let before = after;
    group.bench_function("observe/sync/dead", |b| b.iter_custom(chunked));
    roots(&mut group, "dead");
    let after = langfuse_observe::stats();
    print_delta("dead", before, after);

    group.finish();
}

criterion_group!(benches, slow_server);
criterion_main!(benches);
