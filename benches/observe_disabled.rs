//! Cost of an observed call with tracing disabled (`LANGFUSE_TRACING_ENABLED=false`), next to
//! the same function without the attribute. Its own binary, because the exporter is set once
//! per process.

use std::hint::black_box;
use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};
use langfuse_observe::{observe, Config};

fn plain(a: u64, b: u64) -> u64 {
    a.wrapping_mul(b)
}

#[observe]
fn observed(a: u64, b: u64) -> u64 {
    a.wrapping_mul(b)
}

async fn plain_async(a: u64, b: u64) -> u64 {
    a.wrapping_mul(b)
}

#[observe]
async fn observed_async(a: u64, b: u64) -> u64 {
    a.wrapping_mul(b)
}

/// Polls a future that completes at once: no executor in the figure.
fn poll_once<F: std::future::Future>(future: F) -> F::Output {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => unreachable!("the benchmarked futures never wait"),
    }
}

fn disabled(c: &mut Criterion) {
    let config = Config::builder()
        .enabled(false)
        .build()
        .expect("valid config");
    let _guard = langfuse_observe::init(config).expect("first init");
    let mut group = c.benchmark_group("disabled");
    group.bench_function("plain_fn", |b| b.iter(|| plain(black_box(3), black_box(7))));
    group.bench_function("observe/sync", |b| {
        b.iter(|| observed(black_box(3), black_box(7)))
    });
    // Awaited in a loop inside one future, as the enabled benchmarks call them.
    group.bench_function("plain_async_fn", |b| {
        b.iter_custom(|iterations| {
            poll_once(async {
                let start = Instant::now();
                for i in 0..iterations {
                    black_box(plain_async(black_box(i), black_box(7)).await);
                }
                start.elapsed()
            })
        })
    });
    group.bench_function("observe/async", |b| {
        b.iter_custom(|iterations| {
            poll_once(async {
                let start = Instant::now();
                for i in 0..iterations {
                    black_box(observed_async(black_box(i), black_box(7)).await);
                }
                start.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, disabled);
criterion_main!(benches);
