//! The exporter against a loopback Langfuse that misbehaves on purpose: every record still
//! ends up delivered, or counted as failed or dropped, and flush always returns.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use langfuse_observe::config::ExporterKind;
use langfuse_observe_testing::{EventErrors, Faults, TestServer};

use crate::support::exporter::{
    assert_accounted, child_spans, config_for_url, dead_url, exporter, path_of, record_all,
    requests_to, sized_spans, spans, spans_in, start_batched, statuses, INGESTION_PATH, KINDS,
    OTLP_PATH,
};
use crate::support::WAIT;

/// Every id arrived on the server exactly as one observation.
fn assert_delivered(server: &TestServer, ids: &[String]) {
    let observations = server.observations();
    assert_eq!(observations.len(), ids.len(), "{observations:?}");
    for id in ids {
        assert!(server.observation(id).is_some(), "observation {id} arrived");
    }
}

#[test]
fn server_errors_are_retried_until_everything_is_delivered() {
    for kind in KINDS {
        for status in [500, 503] {
            let (server, exporter) = start_batched(kind, |b| b);
            server.set_faults(Faults::new().fail_next(2, status));
            let ids = record_all(&exporter, spans(10));
            let report = exporter.flush_blocking(WAIT);
            assert!(report.completed, "{kind:?} {status}: {report:?}");
            assert_eq!(report.exported, 10);
            assert_eq!(report.pending, 0);
            let stats = assert_accounted(&exporter, 10);
            assert_eq!(stats.exported, 10, "{kind:?} {status}: {stats:?}");
            assert_eq!(stats.failed, 0);
            assert!(stats.retried > 0, "{kind:?} {status}: {stats:?}");
            assert_eq!(
                statuses(&server, path_of(kind)),
                [
                    Some(status),
                    Some(status),
                    Some(if kind == ExporterKind::Otlp { 200 } else { 207 })
                ],
                "{kind:?}"
            );
            if kind == ExporterKind::Otlp {
                // The batch of ten was sent again twice.
                assert_eq!(stats.retried, 20, "{stats:?}");
            }
            assert_delivered(&server, &ids);
        }
    }
}

#[test]
fn ingestion_retry_resends_the_same_envelope_ids() {
    let (server, exporter) = start_batched(ExporterKind::Ingestion, |b| b);
    server.set_faults(Faults::new().fail_next(1, 503));
    let ids = record_all(&exporter, child_spans(5));
    let report = exporter.flush_blocking(WAIT);
    assert!(report.completed, "{report:?}");
    assert_accounted(&exporter, 5);
    let requests = requests_to(&server, INGESTION_PATH);
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0].status, Some(503));
    assert_eq!(requests[1].status, Some(207));
    assert_eq!(
        requests[0].envelope_ids, requests[1].envelope_ids,
        "a retried batch keeps its envelope ids so the server can deduplicate it"
    );
    assert_eq!(requests[0].envelope_ids.len(), 10, "create and update each");
    for id in &requests[0].envelope_ids {
        assert_eq!(server.envelope_receipts(id), 2, "{id}");
    }
    assert_delivered(&server, &ids);
    for id in &ids {
        assert_eq!(
            server.observation(id).unwrap().writes,
            2,
            "applied once each"
        );
    }
}

/// `Stats::retried` counts records ("a record retried twice counts twice"), also on the
/// ingestion path, where one observation travels as two events (create and update).
#[test]
fn ingestion_retried_counts_records_not_events() {
    let (server, exporter) = start_batched(ExporterKind::Ingestion, |b| b);
    server.set_faults(Faults::new().fail_next(1, 503));
    record_all(&exporter, spans(5));
    let report = exporter.flush_blocking(WAIT);
    assert!(report.completed, "{report:?}");
    let stats = assert_accounted(&exporter, 5);
    assert_eq!(stats.exported, 5);
    assert_eq!(
        stats.retried, 5,
        "five records were sent again once each (ten events): {stats:?}"
    );
}

#[test]
fn a_non_retryable_status_counts_records_failed_without_retrying() {
    for kind in KINDS {
        let (server, exporter) = start_batched(kind, |b| b);
        server.set_faults(Faults::new().fail_next(1, 400));
        record_all(&exporter, spans(6));
        let report = exporter.flush_blocking(WAIT);
        assert!(report.completed, "{kind:?} {report:?}");
        assert_eq!(report.failed, 6, "{kind:?} {report:?}");
        let stats = assert_accounted(&exporter, 6);
        assert_eq!(stats.failed, 6, "{kind:?} {stats:?}");
        assert_eq!(stats.exported, 0);
        assert_eq!(stats.dropped, 0);
        assert_eq!(stats.retried, 0, "a 400 is not retried: {stats:?}");
        assert_eq!(statuses(&server, path_of(kind)), [Some(400)], "{kind:?}");
        assert!(server.observations().is_empty());
    }
}

#[test]
fn rate_limit_waits_for_retry_after_then_delivers() {
    for kind in KINDS {
        let (server, exporter) = start_batched(kind, |b| b);
        server.set_faults(Faults::new().rate_limit_next(1, 1));
        let started = Instant::now();
        let ids = record_all(&exporter, spans(4));
        let report = exporter.flush_blocking(WAIT);
        let elapsed = started.elapsed();
        assert!(report.completed, "{kind:?} {report:?}");
        let stats = assert_accounted(&exporter, 4);
        assert_eq!(stats.exported, 4, "{kind:?} {stats:?}");
        assert!(stats.retried > 0, "{kind:?} {stats:?}");
        assert_eq!(statuses(&server, path_of(kind))[0], Some(429), "{kind:?}");
        assert!(
            elapsed >= Duration::from_millis(990),
            "{kind:?}: the retry honoured Retry-After: 1 (waited {elapsed:?}), not the 10 ms backoff"
        );
        assert_delivered(&server, &ids);
    }
}

#[test]
fn a_too_large_batch_is_split_in_halves_and_delivered() {
    for kind in KINDS {
        // Measure the body of the whole batch first, then allow three quarters of it.
        let full = {
            let (server, exporter) = start_batched(kind, |b| b.gzip(false));
            record_all(&exporter, sized_spans(20, 1_000));
            assert!(exporter.flush_blocking(WAIT).completed);
            let requests = requests_to(&server, path_of(kind));
            assert_eq!(requests.len(), 1, "{kind:?}: one batch: {requests:?}");
            requests[0].body_bytes
        };
        let limit = full * 3 / 4;
        let (server, exporter) = start_batched(kind, |b| b.gzip(false));
        server.set_faults(Faults::new().max_body_bytes(limit));
        let ids = record_all(&exporter, sized_spans(20, 1_000));
        let report = exporter.flush_blocking(WAIT);
        assert!(report.completed, "{kind:?} {report:?}");
        let stats = assert_accounted(&exporter, 20);
        assert_eq!(stats.exported, 20, "{kind:?} {stats:?}");
        assert_eq!(stats.failed, 0, "{kind:?} {stats:?}");
        let requests = requests_to(&server, path_of(kind));
        assert_eq!(requests[0].status, Some(413), "{kind:?} {requests:?}");
        assert_eq!(
            requests.len(),
            3,
            "{kind:?}: the whole batch, then two halves"
        );
        for half in &requests[1..] {
            assert!(half.status.is_some_and(|s| s < 300), "{half:?}");
            assert!(half.body_bytes <= limit);
        }
        if kind == ExporterKind::Otlp {
            assert_eq!(requests[1].span_ids.len(), 10);
            assert_eq!(requests[2].span_ids.len(), 10);
        }
        assert_delivered(&server, &ids);
    }
}

#[test]
fn an_answer_slower_than_the_timeout_is_retried_and_delivered() {
    for kind in KINDS {
        let (server, exporter) = start_batched(kind, |b| b.timeout(Duration::from_millis(300)));
        server.set_faults(Faults::new().delay_next(1, Duration::from_millis(900)));
        let ids = record_all(&exporter, spans(5));
        let report = exporter.flush_blocking(WAIT);
        assert!(report.completed, "{kind:?} {report:?}");
        let stats = assert_accounted(&exporter, 5);
        assert_eq!(stats.exported, 5, "{kind:?} {stats:?}");
        assert_eq!(stats.failed, 0);
        assert!(stats.retried > 0, "{kind:?} {stats:?}");
        assert_delivered(&server, &ids);
    }
}

#[test]
fn answers_that_always_time_out_count_records_failed() {
    for kind in KINDS {
        let (server, exporter) = start_batched(kind, |b| {
            b.timeout(Duration::from_millis(200)).max_retries(1)
        });
        server.set_faults(Faults::new().delay_all(Duration::from_millis(600)));
        record_all(&exporter, spans(5));
        let report = exporter.flush_blocking(WAIT);
        assert!(
            report.completed,
            "{kind:?}: every record settled: {report:?}"
        );
        assert_eq!(report.failed, 5, "{kind:?} {report:?}");
        let stats = assert_accounted(&exporter, 5);
        assert_eq!(stats.failed, 5, "{kind:?} {stats:?}");
        assert_eq!(stats.dropped, 0);
        assert!(stats.retried > 0, "{kind:?} {stats:?}");
        // Stop the delays so dropping the server does not wait on them.
        server.clear_faults();
    }
}

#[test]
fn a_dropped_connection_is_retried_and_delivered() {
    for kind in KINDS {
        let (server, exporter) = start_batched(kind, |b| b);
        server.set_faults(Faults::new().drop_next(2));
        let ids = record_all(&exporter, spans(7));
        let report = exporter.flush_blocking(WAIT);
        assert!(report.completed, "{kind:?} {report:?}");
        let stats = assert_accounted(&exporter, 7);
        assert_eq!(stats.exported, 7, "{kind:?} {stats:?}");
        assert!(stats.retried > 0, "{kind:?} {stats:?}");
        let seen = statuses(&server, path_of(kind));
        assert_eq!(&seen[..2], [None, None], "{kind:?}: two dropped: {seen:?}");
        if kind == ExporterKind::Otlp {
            let dropped: Vec<_> = requests_to(&server, OTLP_PATH)
                .into_iter()
                .filter(|r| r.status.is_none())
                .collect();
            assert_eq!(stats.retried, spans_in(&dropped) as u64, "{stats:?}");
        }
        assert_delivered(&server, &ids);
    }
}

#[test]
fn wrong_keys_count_every_record_failed() {
    for kind in KINDS {
        let server = TestServer::start();
        let exporter = exporter(
            config_for_url(&server.url(), "pk-lf-wrong", "sk-lf-wrong", kind)
                .flush_interval(Duration::from_secs(60)),
        );
        record_all(&exporter, spans(4));
        let report = exporter.flush_blocking(WAIT);
        assert!(report.completed, "{kind:?} {report:?}");
        assert_eq!(report.failed, 4, "{kind:?} {report:?}");
        let stats = assert_accounted(&exporter, 4);
        assert_eq!(stats.failed, 4, "{kind:?} {stats:?}");
        assert_eq!(stats.dropped, 0, "nothing is dropped silently: {stats:?}");
        assert_eq!(stats.retried, 0, "rejected keys are not retried: {stats:?}");
        assert_eq!(statuses(&server, path_of(kind)), [Some(401)], "{kind:?}");
        assert!(server.observations().is_empty());
    }
}

#[test]
fn server_down_counts_records_failed_and_flush_returns() {
    for kind in KINDS {
        let exporter = exporter(
            config_for_url(&dead_url(), "pk-lf-test", "sk-lf-test", kind)
                .max_retries(2)
                .flush_interval(Duration::from_secs(60)),
        );
        record_all(&exporter, spans(3));
        let report = exporter.flush_blocking(WAIT);
        assert!(
            report.completed,
            "{kind:?}: failures settle records: {report:?}"
        );
        assert_eq!(report.failed, 3, "{kind:?} {report:?}");
        let stats = assert_accounted(&exporter, 3);
        assert_eq!(stats.failed, 3, "{kind:?} {stats:?}");
        assert!(stats.retried > 0, "{kind:?}: connection errors are retried");
    }
}

/// Per-event errors of a 207 answer with a retryable status: only those events are sent
/// again, with their original envelope ids.
#[test]
fn retryable_event_errors_resend_only_those_events() {
    for status in [500, 429] {
        let (server, exporter) = start_batched(ExporterKind::Ingestion, |b| b);
        // Four spans are eight events: create0 update0 create1 update1 ...
        server.set_faults(
            Faults::new().event_errors_next(
                1,
                EventErrors::at_positions([1, 4])
                    .with_status(status)
                    .with_message("try again"),
            ),
        );
        let ids = record_all(&exporter, child_spans(4));
        let report = exporter.flush_blocking(WAIT);
        assert!(report.completed, "{status}: {report:?}");
        let stats = assert_accounted(&exporter, 4);
        assert_eq!(stats.exported, 4, "{status}: {stats:?}");
        assert_eq!(stats.failed, 0);
        assert_eq!(
            stats.retried, 2,
            "{status}: two events of two records: {stats:?}"
        );
        let requests = requests_to(&server, INGESTION_PATH);
        assert_eq!(requests.len(), 2, "{status}: {requests:?}");
        let first = &requests[0].envelope_ids;
        assert_eq!(first.len(), 8);
        assert_eq!(
            requests[1].envelope_ids,
            [first[1].clone(), first[4].clone()],
            "{status}: only the failed events, with their original envelope ids"
        );
        let receipts: BTreeMap<String, usize> = server.envelope_receipt_counts();
        for (position, id) in first.iter().enumerate() {
            let expected = if position == 1 || position == 4 { 2 } else { 1 };
            assert_eq!(receipts[id], expected, "{status}: position {position}");
        }
        assert_delivered(&server, &ids);
        for id in &ids {
            assert_eq!(server.observation(id).unwrap().writes, 2, "{status}: {id}");
        }
    }
}

/// Per-event errors with a status retrying cannot fix: the records those events belong to are
/// failed, the others exported, nothing is sent twice.
#[test]
fn non_retryable_event_errors_fail_only_their_records() {
    let (server, exporter) = start_batched(ExporterKind::Ingestion, |b| b);
    // update of span-0 and create of span-1.
    server.set_faults(
        Faults::new().event_errors_next(
            1,
            EventErrors::at_positions([1, 2])
                .with_status(400)
                .with_message("invalid"),
        ),
    );
    let ids = record_all(&exporter, child_spans(4));
    let report = exporter.flush_blocking(WAIT);
    assert!(report.completed, "{report:?}");
    assert_eq!(report.failed, 2, "{report:?}");
    assert_eq!(report.exported, 2, "{report:?}");
    let stats = assert_accounted(&exporter, 4);
    assert_eq!(stats.failed, 2, "{stats:?}");
    assert_eq!(stats.exported, 2, "{stats:?}");
    assert_eq!(stats.retried, 0);
    assert_eq!(statuses(&server, INGESTION_PATH), [Some(207)]);
    assert!(server.envelope_receipt_counts().values().all(|&n| n == 1));
    for id in &ids[2..] {
        assert_eq!(
            server.observation(id).unwrap().writes,
            2,
            "{id} arrived whole"
        );
    }
}

/// Scores travel through the ingestion API also in OTLP mode, with the same per-event retry.
#[test]
fn otlp_mode_scores_survive_event_errors() {
    use langfuse_observe::trace::{Score, ScoreValue, TraceId};
    let (server, exporter) = start_batched(ExporterKind::Otlp, |b| b);
    server.set_faults(
        Faults::new().event_errors_next(1, EventErrors::at_positions([0]).with_status(503)),
    );
    let trace = TraceId::random();
    for i in 0..3 {
        assert!(exporter.score(Score::new(trace, format!("s{i}"), ScoreValue::Numeric(1.0))));
    }
    let report = exporter.flush_blocking(WAIT);
    assert!(report.completed, "{report:?}");
    let stats = assert_accounted(&exporter, 3);
    assert_eq!(stats.exported, 3, "{stats:?}");
    assert_eq!(stats.retried, 1, "{stats:?}");
    assert_eq!(server.scores().len(), 3);
    let requests = requests_to(&server, INGESTION_PATH);
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].envelope_ids,
        [requests[0].envelope_ids[0].clone()]
    );
}
