//! Bounds: a burst far larger than the queue keeps memory under `max_queue_bytes` and counts
//! every refused record as dropped; a record over the per-event limit arrives truncated with a
//! marker instead of being dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use langfuse_observe::{
    config::ExporterKind,
    export::Observation,
    trace::{ObservationId, TraceId},
};
use langfuse_observe_core::capture::TRUNCATION_MARKER;
use langfuse_observe_testing::Faults;
use serde_json::Value;

use crate::support::exporter::{assert_accounted, sized_spans, spans, start_with, KINDS};
use crate::support::WAIT;

const MAX_QUEUE_BYTES: u64 = 100_000;

#[test]
fn a_burst_larger_than_the_queue_stays_bounded_and_counts_drops() {
    const PRODUCED: u64 = 50_000;
    let (server, exporter) = start_with(ExporterKind::Otlp, |b| {
        b.max_queue_items(1_000)
            .max_queue_bytes(MAX_QUEUE_BYTES as usize)
            .flush_at(100)
    });
    server.set_faults(Faults::new().delay_all(Duration::from_millis(20)));

    // Another thread watches the held bytes while the burst runs.
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let exporter = exporter.clone();
        let stop = Arc::clone(&stop);
        let peak = Arc::clone(&peak);
        std::thread::spawn(move || {
            let mut samples = 0u64;
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(exporter.stats().pending_bytes, Ordering::Relaxed);
                samples += 1;
                std::thread::yield_now();
            }
            samples
        })
    };

    let trace = TraceId::random();
    let mut accepted = 0u64;
    for i in 0..PRODUCED {
        let mut observation = Observation::new(trace, ObservationId::random(), "burst");
        observation.input = Some("x".repeat(100).into());
        accepted += u64::from(exporter.record(observation));
        if i % 64 == 0 {
            let held = exporter.stats().pending_bytes;
            assert!(
                held <= MAX_QUEUE_BYTES,
                "{held} bytes held, more than the {MAX_QUEUE_BYTES} allowed"
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();
    assert!(samples > 0);
    let peak = peak.load(Ordering::Relaxed);
    assert!(
        peak <= MAX_QUEUE_BYTES,
        "peak of {peak} bytes held, more than the {MAX_QUEUE_BYTES} allowed"
    );
    assert!(peak > 0, "the sampler saw the queue in use");

    let report = exporter.flush_blocking(WAIT);
    assert!(report.completed, "{report:?}");
    let stats = assert_accounted(&exporter, PRODUCED);
    assert!(
        stats.dropped > 0,
        "the burst overflowed the queue: {stats:?}"
    );
    assert_eq!(stats.failed, 0, "{stats:?}");
    assert_eq!(stats.exported, accepted, "every accepted record arrived");
    assert_eq!(stats.exported + stats.dropped, PRODUCED);
    assert_eq!(stats.pending_bytes, 0, "nothing held after the flush");
    assert_eq!(server.observations().len() as u64, stats.exported);
    server.clear_faults();
}

#[test]
fn a_record_over_the_event_limit_arrives_truncated_with_a_marker() {
    for kind in KINDS {
        let (server, exporter) = start_with(kind, |b| b);
        let trace = TraceId::random();
        let mut text = Observation::new(trace, ObservationId::random(), "huge-text");
        text.input = Some("a".repeat(3_000_000).into());
        text.output = Some("small".into());
        let mut json = Observation::new(trace, ObservationId::random(), "huge-json");
        json.output = Some(serde_json::json!({"blob": "b".repeat(3_000_000)}).into());
        let ids = [text.id.to_string(), json.id.to_string()];
        assert!(exporter.record(text), "{kind:?}: accepted, not dropped");
        assert!(exporter.record(json));

        let report = exporter.flush_blocking(WAIT);
        assert!(report.completed, "{kind:?} {report:?}");
        let stats = assert_accounted(&exporter, 2);
        assert_eq!(stats.exported, 2, "{kind:?} {stats:?}");
        assert_eq!(stats.dropped, 0);

        let text = server.observation(&ids[0]).unwrap();
        let Some(Value::String(input)) = &text.input else {
            panic!("{kind:?}: the input arrived as text, got {:?}", text.input);
        };
        assert!(input.ends_with(TRUNCATION_MARKER), "{kind:?}: marked");
        assert!(input.len() <= 1_000_000, "{kind:?}: {} bytes", input.len());
        assert!(
            input.len() > 500_000,
            "{kind:?}: cut to the limit, not emptied"
        );
        assert_eq!(text.output, Some(Value::String("small".into())), "kept");

        let json = server.observation(&ids[1]).unwrap();
        let Some(Value::String(output)) = &json.output else {
            panic!(
                "{kind:?}: a cut document arrives as text, got {:?}",
                json.output
            );
        };
        assert!(output.starts_with(r#"{"blob":"bbb"#), "{kind:?}");
        assert!(output.ends_with(TRUNCATION_MARKER), "{kind:?}: marked");
        assert!(output.len() <= 1_000_000);
    }
}

/// A batch frees its room in the queue as soon as it settles, not when the whole drain is
/// done: while later batches of a slow server are still on their way, new records fit.
#[test]
fn settled_batches_free_their_room_at_once() {
    let (server, exporter) = start_with(ExporterKind::Otlp, |b| {
        b.max_queue_items(100)
            .flush_at(10)
            .flush_interval(Duration::from_secs(3600))
    });
    server.set_faults(Faults::new().delay_all(Duration::from_millis(300)));
    for observation in spans(100) {
        assert!(exporter.record(observation));
    }
    // The queue is full and the worker sends it ten records at a time.
    assert!(server.wait_until(WAIT, |_| exporter.stats().exported >= 10));
    for observation in spans(10) {
        assert!(
            exporter.record(observation),
            "the first batch's room is free"
        );
    }
    assert!(exporter.flush_blocking(WAIT).completed);
    let stats = assert_accounted(&exporter, 110);
    assert_eq!(stats.dropped, 0, "{stats:?}");
    assert_eq!(stats.exported, 110, "{stats:?}");
}

/// The worker wakes when the waiting records reach a batch's bytes, not only its count or
/// its interval: large records do not wait out the interval while the byte bound fills.
#[test]
fn large_records_wake_the_worker_before_its_interval() {
    let (server, exporter) = start_with(ExporterKind::Otlp, |b| {
        b.flush_at(10_000)
            .flush_interval(Duration::from_secs(3600))
            .max_queue_bytes(8_000_000)
    });
    // 2 MB at most a quarter of the byte bound: the third 900 KB record wakes the worker.
    for observation in sized_spans(3, 900_000) {
        assert!(exporter.record(observation));
    }
    assert!(
        server.wait_for_observations(3, WAIT),
        "delivered without a flush and long before the interval"
    );
}
