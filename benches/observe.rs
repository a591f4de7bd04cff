//! Cost of one observed call on the caller's thread, nested under one root, with root flush off;
//! next to the same function under `tracing::instrument` (with a subscriber that records every
//! span) and under `fastrace::trace` (with a collector).
//!
//! Calls are timed in chunks of `CHUNK` under a fresh root; between chunks, outside the timing,
//! the exporter is flushed. The worker is otherwise held back (no batch threshold, a long
//! interval): on a 2-core machine a busy worker and test server would compete with the measured
//! thread, and records piling up unexported would measure page faults instead of calls. The
//! figure is what an instrumented program pays per call in steady state; export throughput is
//! measured by `benches/export.rs`. Each library gets the same treatment.

#[path = "support/calls.rs"]
mod calls;
#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use calls::*;
use criterion::{criterion_group, criterion_main, Criterion};
use tracing::Instrument as _;

/// Calls timed between flushes; large enough that the flush's own cost is outside the figure.
const CHUNK: u64 = 10_000;

/// Runs `iterations` timed calls in chunks of at most `CHUNK`, each under a new root made by
/// `chunk`, settling the exporters between chunks; returns the time spent in the chunks.
fn chunked(
    iterations: u64,
    recorder: &SpanRecorder,
    mut chunk: impl FnMut(u64) -> Duration,
) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut left = iterations;
    while left > 0 {
        let calls = left.min(CHUNK);
        elapsed += chunk(calls);
        recorder.settle();
        left -= calls;
    }
    elapsed
}

fn per_call(c: &mut Criterion) {
    let (_server, _guard, recorder) = set_up();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");

    let mut group = c.benchmark_group("per_call");
    group
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    let sync_cases: [(&str, Call); 2] = [
        ("observe/sync/no_capture", |i| observed_plain(i, 7)),
        ("observe/sync/capture", |i| observed_captured(i, "question")),
    ];
    for (name, call) in sync_cases {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| chunked(iterations, &recorder, |n| observed_root(n, call)));
        });
    }
    for (name, captured) in [
        ("observe/async/no_capture", false),
        ("observe/async/capture", true),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                chunked(iterations, &recorder, |n| {
                    runtime.block_on(observed_root_async(n, captured))
                })
            });
        });
    }

    let tracing_cases: [(&str, Call); 2] = [
        ("tracing/sync/no_capture", |i| tracing_plain(i, 7)),
        ("tracing/sync/capture", |i| tracing_captured(i, "question")),
    ];
    for (name, call) in tracing_cases {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                chunked(iterations, &recorder, |n| {
                    tracing::info_span!("root").in_scope(|| {
                        let start = Instant::now();
                        for i in 0..n {
                            black_box(call(black_box(i)));
                        }
                        start.elapsed()
                    })
                })
            });
        });
    }
    group.bench_function("tracing/async/no_capture", |b| {
        b.iter_custom(|iterations| {
            chunked(iterations, &recorder, |n| {
                let work = async {
                    let start = Instant::now();
                    for i in 0..n {
                        black_box(tracing_plain_async(black_box(i), black_box(7)).await);
                    }
                    start.elapsed()
                };
                runtime.block_on(work.instrument(tracing::info_span!("root")))
            })
        });
    });

    let fastrace_cases: [(&str, Call); 2] = [
        ("fastrace/sync/no_capture", |i| fastrace_plain(i, 7)),
        ("fastrace/sync/capture", |i| {
            fastrace_captured(i, "question")
        }),
    ];
    for (name, call) in fastrace_cases {
        group.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                chunked(iterations, &recorder, |n| {
                    let root =
                        fastrace::Span::root("root", fastrace::prelude::SpanContext::random());
                    let _parent = root.set_local_parent();
                    let start = Instant::now();
                    for i in 0..n {
                        black_box(call(black_box(i)));
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.bench_function("fastrace/async/no_capture", |b| {
        b.iter_custom(|iterations| {
            use fastrace::future::FutureExt as _;
            chunked(iterations, &recorder, |n| {
                let root = fastrace::Span::root("root", fastrace::prelude::SpanContext::random());
                let work = async {
                    let start = Instant::now();
                    for i in 0..n {
                        black_box(fastrace_plain_async(black_box(i), black_box(7)).await);
                    }
                    start.elapsed()
                };
                runtime.block_on(work.in_span(root))
            })
        });
    });
    group.finish();
}

criterion_group!(benches, per_call);
criterion_main!(benches);
