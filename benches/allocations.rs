//! Heap allocations per call on the caller's thread, for the calls `benches/observe.rs` times:
//! `#[observe]`, `tracing::instrument` and `fastrace::trace`, nested under one root. Counted
//! by an allocator that wraps the system's, in a binary of its own so that counting does not
//! slow the timed benchmarks. Run with `cargo bench --bench allocations`.

#[path = "support/calls.rs"]
mod calls;
#[path = "support/mod.rs"]
mod support;

use std::alloc::System;
use std::hint::black_box;

use calls::*;
use fastrace::future::FutureExt as _;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use tracing::Instrument as _;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// A named way of making `CALLS` calls under one root.
type Case<'a> = (&'static str, Box<dyn Fn() + 'a>);

/// Calls per count: the root's own allocations are spread over them.
const CALLS: u64 = 10_000;

/// Allocations and bytes per call of `run`, which makes `CALLS` calls under one root.
fn per_call(run: impl FnOnce()) -> (f64, f64) {
    let region = Region::new(GLOBAL);
    run();
    let change = region.change();
    (
        change.allocations as f64 / CALLS as f64,
        change.bytes_allocated as f64 / CALLS as f64,
    )
}

fn main() {
    let (_server, _guard, recorder) = set_up();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let sync_calls = |call: Call| move || black_box(observed_root(CALLS, call)).as_nanos();
    let cases: Vec<Case<'_>> = vec![
        (
            "observe/sync/no_capture",
            Box::new(|| {
                sync_calls(|i| observed_plain(i, 7))();
            }),
        ),
        (
            "observe/sync/capture",
            Box::new(|| {
                sync_calls(|i| observed_captured(i, "question"))();
            }),
        ),
        (
            "observe/async/no_capture",
            Box::new(|| {
                runtime.block_on(observed_root_async(CALLS, false));
            }),
        ),
        (
            "observe/async/capture",
            Box::new(|| {
                runtime.block_on(observed_root_async(CALLS, true));
            }),
        ),
        (
            "tracing/sync/no_capture",
            Box::new(|| {
                tracing::info_span!("root").in_scope(|| {
                    for i in 0..CALLS {
                        black_box(tracing_plain(black_box(i), 7));
                    }
                })
            }),
        ),
        (
            "tracing/sync/capture",
            Box::new(|| {
                tracing::info_span!("root").in_scope(|| {
                    for i in 0..CALLS {
                        black_box(tracing_captured(black_box(i), "question"));
                    }
                })
            }),
        ),
        (
            "tracing/async/no_capture",
            Box::new(|| {
                let calls = async {
                    for i in 0..CALLS {
                        black_box(tracing_plain_async(black_box(i), 7).await);
                    }
                };
                runtime.block_on(calls.instrument(tracing::info_span!("root")));
            }),
        ),
        (
            "fastrace/async/no_capture",
            Box::new(|| {
                let root = fastrace::Span::root("root", fastrace::prelude::SpanContext::random());
                let calls = async {
                    for i in 0..CALLS {
                        black_box(fastrace_plain_async(black_box(i), 7).await);
                    }
                };
                runtime.block_on(calls.in_span(root));
            }),
        ),
        (
            "fastrace/sync/no_capture",
            Box::new(|| {
                let root = fastrace::Span::root("root", fastrace::prelude::SpanContext::random());
                let _parent = root.set_local_parent();
                for i in 0..CALLS {
                    black_box(fastrace_plain(black_box(i), 7));
                }
            }),
        ),
        (
            "fastrace/sync/capture",
            Box::new(|| {
                let root = fastrace::Span::root("root", fastrace::prelude::SpanContext::random());
                let _parent = root.set_local_parent();
                for i in 0..CALLS {
                    black_box(fastrace_captured(black_box(i), "question"));
                }
            }),
        ),
    ];
    println!("| per call | allocations | bytes |");
    println!("|---|---|---|");
    for (name, run) in &cases {
        // Once to warm up thread-locals and buffers, then counted.
        run();
        recorder.settle();
        let (allocations, bytes) = per_call(run);
        recorder.settle();
        println!("| {name} | {allocations:.2} | {bytes:.0} |");
    }
}
