//! Per-item cost of an observed stream or iterator next to the same plain one: a function
//! returning `impl Iterator<Item = u64>` / `impl Stream<Item = u64>` over `N` items, drained by
//! the caller, with output capture off (`capture_output = false`: the observation is entered
//! around each item, nothing is buffered) and on (every item is captured for the output).
//!
//! One benchmark iteration is one sequence of `N` items, created and drained under an observed
//! root with root flush off, so each observed sequence is one child observation; its start and
//! end are included, spread over its `N` items. Criterion reports elements per second
//! (`Throughput::Elements(N)`); the time per item is the time per iteration divided by `N`.
//! Streams are polled by hand with a no-op waker: every poll is ready, so no runtime is timed.
//!
//! As in `benches/observe.rs`, iterations run in chunks; between chunks, outside the timing,
//! the exporter is flushed, and the worker is otherwise held back (no batch threshold, a long
//! interval) so it does not compete with the measured thread.

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures_util::stream::{self, Stream};
use langfuse_observe::observe;

/// Items per sequence.
const N: u64 = 1_000;

/// Sequences timed between flushes: a million items, and a thousand observations to deliver.
const CHUNK: u64 = 1_000;

fn plain_iter(n: u64) -> impl Iterator<Item = u64> {
    0..n
}

#[observe(capture_input = false, capture_output = false)]
fn observed_iter_no_capture(n: u64) -> impl Iterator<Item = u64> {
    0..n
}

#[observe(capture_input = false)]
fn observed_iter_capture(n: u64) -> impl Iterator<Item = u64> {
    0..n
}

fn plain_stream(n: u64) -> impl Stream<Item = u64> {
    stream::iter(0..n)
}

#[observe(capture_input = false, capture_output = false)]
fn observed_stream_no_capture(n: u64) -> impl Stream<Item = u64> {
    stream::iter(0..n)
}

#[observe(capture_input = false)]
fn observed_stream_capture(n: u64) -> impl Stream<Item = u64> {
    stream::iter(0..n)
}

/// Drains an iterator, keeping every item alive.
fn drain_iter(items: impl Iterator<Item = u64>) -> u64 {
    let mut sum = 0u64;
    for item in items {
        sum = sum.wrapping_add(black_box(item));
    }
    sum
}

/// Drains a stream whose every poll is ready, keeping every item alive.
fn drain_stream(items: impl Stream<Item = u64>) -> u64 {
    let mut items = pin!(items);
    let mut cx = Context::from_waker(Waker::noop());
    let mut sum = 0u64;
    loop {
        match items.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some(item)) => sum = sum.wrapping_add(black_box(item)),
            Poll::Ready(None) => return sum,
            Poll::Pending => unreachable!("`stream::iter` is always ready"),
        }
    }
}

/// One benchmarked sequence: created with `N` items and drained.
type Sequence = fn() -> u64;

/// Runs `sequences` sequences under one observed root (so each observed sequence is a child,
/// and the root does not flush); returns the time they took.
#[observe(flush = false, skip_all)]
fn observed_root(sequences: u64, sequence: Sequence) -> Duration {
    let start = Instant::now();
    for _ in 0..sequences {
        black_box(sequence());
    }
    start.elapsed()
}

/// Runs one sequence under a root that does not flush, as the timed ones run: an outermost
/// observed stream would flush at its end, and its last poll would wait for that.
#[observe(flush = false, skip_all)]
fn checked(sequence: Sequence) -> u64 {
    sequence()
}

/// Runs `iterations` sequences in chunks of at most `CHUNK`, settling the exporter between
/// chunks; returns the time spent in the chunks.
fn chunked(iterations: u64, sequence: Sequence) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut left = iterations;
    while left > 0 {
        let sequences = left.min(CHUNK);
        elapsed += observed_root(sequences, sequence);
        support::settle();
        left -= sequences;
    }
    elapsed
}

fn per_item(c: &mut Criterion) {
    let (_server, _guard) = support::init_held_back();

    let mut group = c.benchmark_group("per_item");
    group
        .throughput(Throughput::Elements(N))
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    let cases: [(&str, Sequence); 6] = [
        ("iterator/plain", || drain_iter(plain_iter(N))),
        ("iterator/observed/no_capture", || {
            drain_iter(observed_iter_no_capture(N))
        }),
        ("iterator/observed/capture", || {
            drain_iter(observed_iter_capture(N))
        }),
        ("stream/plain", || drain_stream(plain_stream(N))),
        ("stream/observed/no_capture", || {
            drain_stream(observed_stream_no_capture(N))
        }),
        ("stream/observed/capture", || {
            drain_stream(observed_stream_capture(N))
        }),
    ];
    for (name, sequence) in cases {
        assert_eq!(
            checked(sequence),
            N * (N - 1) / 2,
            "{name} yields every item"
        );
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| chunked(iterations, sequence));
        });
    }
    group.finish();
}

criterion_group!(benches, per_item);
criterion_main!(benches);
