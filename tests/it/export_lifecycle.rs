//! Flush and shutdown: delivery after the producing runtime is gone, flush deadlines with a
//! slow server, async flush on both runtime flavours, and records after shutdown.

use std::time::Duration;

use langfuse_observe::{
    config::ExporterKind,
    export::Observation,
    trace::{ObservationId, TraceId},
    Langfuse,
};
use langfuse_observe_testing::{Faults, TestServer};

use crate::support::exporter::{
    assert_accounted, config, exporter, path_of, record_all, requests_to, spans, start,
    start_batched, start_with,
};
use crate::support::WAIT;

#[test]
fn delivers_after_the_producing_runtime_is_dropped() {
    let server = TestServer::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let trace = TraceId::random();
    // The exporter is started inside the runtime and recorded into by its tasks.
    let exporter: Langfuse = runtime.block_on(async {
        let exporter =
            exporter(config(&server, ExporterKind::Otlp).flush_interval(Duration::from_secs(60)));
        let tasks: Vec<_> = (0..20)
            .map(|task| {
                let exporter = exporter.clone();
                tokio::spawn(async move {
                    for i in 0..10 {
                        let name = format!("task-{task}-{i}");
                        assert!(exporter.record(Observation::new(
                            trace,
                            ObservationId::random(),
                            name
                        )));
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        exporter
    });
    drop(runtime);
    assert!(
        requests_to(&server, path_of(ExporterKind::Otlp)).is_empty(),
        "nothing was sent while the runtime lived"
    );

    let report = exporter.flush_blocking(WAIT);
    assert!(report.completed, "{report:?}");
    assert_eq!(report.exported, 200);
    let stats = assert_accounted(&exporter, 200);
    assert_eq!(stats.exported, 200);
    assert_eq!(server.observations().len(), 200);
    assert_eq!(
        server.trace(&trace.to_string()).unwrap().id,
        trace.to_string()
    );
}

#[test]
fn flush_returns_at_its_deadline_and_a_later_flush_completes() {
    let (server, exporter) =
        start_batched(ExporterKind::Otlp, |b| b.timeout(Duration::from_secs(5)));
    server.set_faults(Faults::new().delay_next(1, Duration::from_millis(1_500)));
    let ids = record_all(&exporter, spans(5));

    let report = exporter.flush_blocking(Duration::from_millis(300));
    assert!(
        !report.completed,
        "the server is slower than the deadline: {report:?}"
    );
    assert_eq!(report.pending, 5, "{report:?}");
    assert_eq!(report.exported, 0, "{report:?}");

    let report = exporter.flush_blocking(WAIT);
    assert!(report.completed, "{report:?}");
    assert_eq!(report.pending, 0);
    assert_eq!(report.exported, 5, "{report:?}");
    let stats = assert_accounted(&exporter, 5);
    assert_eq!(stats.exported, 5);
    assert_eq!(stats.retried, 0, "slow is not failed: {stats:?}");
    for id in &ids {
        assert!(server.observation(id).is_some());
    }
}

#[tokio::test]
async fn async_flush_works_on_a_current_thread_runtime() {
    let (server, exporter) = start(ExporterKind::Otlp);
    let ids = record_all(&exporter, spans(10));
    let report = exporter.flush(WAIT).await;
    assert!(report.completed, "{report:?}");
    assert_eq!(report.pending, 0);
    assert_accounted(&exporter, 10);
    assert_eq!(server.observations().len(), ids.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_flush_works_on_a_multi_thread_runtime() {
    let (server, exporter) = start(ExporterKind::Ingestion);
    let trace = TraceId::random();
    let tasks: Vec<_> = (0..4)
        .map(|task| {
            let exporter = exporter.clone();
            tokio::spawn(async move {
                for i in 0..5 {
                    let name = format!("task-{task}-{i}");
                    assert!(exporter.record(Observation::new(
                        trace,
                        ObservationId::random(),
                        name
                    )));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let report = exporter.flush(WAIT).await;
    assert!(report.completed, "{report:?}");
    assert_accounted(&exporter, 20);
    assert_eq!(server.observations().len(), 20);
}

#[tokio::test]
async fn async_flush_returns_at_its_deadline_on_a_current_thread_runtime() {
    let (server, exporter) =
        start_batched(ExporterKind::Otlp, |b| b.timeout(Duration::from_secs(5)));
    server.set_faults(Faults::new().delay_next(1, Duration::from_millis(1_500)));
    record_all(&exporter, spans(3));
    let report = exporter.flush(Duration::from_millis(200)).await;
    assert!(!report.completed, "{report:?}");
    assert_eq!(report.pending, 3);
    let report = exporter.flush(WAIT).await;
    assert!(report.completed, "{report:?}");
    assert_accounted(&exporter, 3);
}

#[test]
fn records_after_shutdown_are_counted_as_dropped() {
    let (server, exporter) = start_batched(ExporterKind::Otlp, |b| b);
    record_all(&exporter, spans(5));
    let report = exporter.shutdown_blocking(WAIT);
    assert!(report.completed, "{report:?}");
    assert_eq!(report.exported, 5, "{report:?}");
    assert_eq!(report.pending, 0);
    assert_eq!(server.observations().len(), 5);

    let late = Observation::new(TraceId::random(), ObservationId::random(), "late");
    assert!(!exporter.record(late), "refused after shutdown");
    let stats = assert_accounted(&exporter, 6);
    assert_eq!(stats.exported, 5);
    assert_eq!(stats.dropped, 1, "{stats:?}");

    // The worker is gone (joined): a flush answers at once instead of waiting.
    let report = exporter.flush_blocking(WAIT);
    assert_eq!(report.pending, 0, "{report:?}");
    assert_eq!(
        requests_to(&server, path_of(ExporterKind::Otlp)).len(),
        1,
        "nothing more was sent after shutdown"
    );
    // A second shutdown is harmless.
    let _ = exporter.shutdown_blocking(Duration::from_millis(100));
}

#[test]
fn shutdown_at_its_deadline_drops_what_was_not_delivered() {
    let (server, exporter) =
        start_batched(ExporterKind::Otlp, |b| b.timeout(Duration::from_secs(5)));
    server.set_faults(Faults::new().delay_all(Duration::from_millis(800)));
    record_all(&exporter, spans(4));
    let report = exporter.shutdown_blocking(Duration::from_millis(200));
    assert_eq!(report.exported, 0, "{report:?}");
    assert_eq!(report.dropped, 4, "abandoned at the deadline: {report:?}");
    assert_eq!(report.pending, 0, "{report:?}");
    let stats = assert_accounted(&exporter, 4);
    assert_eq!(stats.dropped, 4, "{stats:?}");
    assert!(!exporter.record(Observation::new(
        TraceId::random(),
        ObservationId::random(),
        "late"
    )));
    assert_accounted(&exporter, 5);
    // Stop the delay so dropping the server does not wait on it.
    server.clear_faults();
}

/// `FlushReport::completed` says "everything handed over before the flush was settled in
/// time"; records abandoned because the shutdown deadline passed were not.
#[test]
fn a_shutdown_cut_short_by_its_deadline_is_not_completed() {
    let (server, exporter) =
        start_batched(ExporterKind::Otlp, |b| b.timeout(Duration::from_secs(5)));
    server.set_faults(Faults::new().delay_all(Duration::from_millis(800)));
    record_all(&exporter, spans(2));
    let report = exporter.shutdown_blocking(Duration::from_millis(200));
    assert_eq!(report.dropped, 2, "{report:?}");
    assert!(
        !report.completed,
        "records were dropped at the deadline, the shutdown did not complete: {report:?}"
    );
    server.clear_faults();
}

#[tokio::test]
async fn async_shutdown_delivers_and_refuses_later_records() {
    let (server, exporter) = start_with(ExporterKind::Ingestion, |b| b);
    record_all(&exporter, spans(3));
    let report = exporter.shutdown(WAIT).await;
    assert!(report.completed, "{report:?}");
    assert_eq!(report.exported, 3);
    assert!(!exporter.record(Observation::new(
        TraceId::random(),
        ObservationId::random(),
        "late"
    )));
    let stats = assert_accounted(&exporter, 4);
    assert_eq!(stats.dropped, 1);
    assert_eq!(server.observations().len(), 3);
}
