//! Capturing a large value costs what its kept part does: serialization stops at the 1 MB
//! capture limit, so a 20 MB argument costs about as much as a 1 MB one.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use langfuse_observe::trace::CapturedValue;

/// About `bytes` of JSON: numbers of 20 digits and a comma each.
fn numbers(bytes: usize) -> Vec<u64> {
    vec![u64::MAX; bytes / 21]
}

fn capture_large(c: &mut Criterion) {
    let mut group = c.benchmark_group("capture_large");
    group.sample_size(20);
    for megabytes in [1, 20] {
        let value = numbers(megabytes * 1_000_000);
        group.bench_function(format!("serialize/{megabytes}MB"), |b| {
            b.iter(|| CapturedValue::json(black_box(&value)))
        });
        let text = "x".repeat(megabytes * 1_000_000);
        group.bench_function(format!("text/{megabytes}MB"), |b| {
            b.iter(|| CapturedValue::json(black_box(&text)))
        });
    }
    group.finish();
}

criterion_group!(benches, capture_large);
criterion_main!(benches);
