//! Export throughput to the loopback test server, and bytes per observation on the wire.
//!
//! Each iteration records a burst of small observations (name, JSON input, text output, one
//! metadata key, session and user on the trace) and flushes, so the figure is sustained
//! end-to-end throughput: recording, encoding, compression, HTTP and the server's decoding.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use langfuse_observe::{
    config::ExporterKind,
    export::{Observation, TraceAttributes},
    trace::{ObservationId, TraceId},
    Config, Langfuse,
};
use langfuse_observe_testing::TestServer;

const BURST: u64 = 20_000;

fn small_observation(trace: &Arc<TraceAttributes>, i: u64) -> Observation {
    let trace_id = TraceId::random();
    let mut observation = Observation::new(trace_id, ObservationId::random(), "handle_request");
    observation.input = Some(serde_json::json!({ "question": "what is langfuse?", "n": i }).into());
    observation.output = Some("an observability platform".into());
    observation.metadata.insert("attempt".into(), 1.into());
    observation.trace = Some(Arc::clone(trace));
    observation
}

fn config(server: &TestServer, kind: ExporterKind, gzip: bool) -> Config {
    Config::builder()
        .keys(server.public_key(), server.secret_key())
        .base_url(server.url())
        .exporter(kind)
        .gzip(gzip)
        .flush_at(1_000)
        .max_queue_items(10 * BURST as usize)
        .build()
        .expect("valid benchmark config")
}

fn export(c: &mut Criterion) {
    let mut group = c.benchmark_group("export");
    group.throughput(Throughput::Elements(BURST));
    group.sample_size(10);
    let mut attributes = TraceAttributes::default();
    attributes.session_id = Some("session-1".into());
    attributes.user_id = Some("user-1".into());
    let attributes = Arc::new(attributes);
    for kind in [ExporterKind::Otlp, ExporterKind::Ingestion] {
        // The server decodes every request with the official proto types (or serde) but skips
        // building its model, so the figure measures this SDK rather than the test fixture.
        let mut server = TestServer::builder().build_model(false);
        if kind == ExporterKind::Ingestion {
            // Only a v3 server accepts observations on the ingestion API.
            server = server.langfuse_v3();
        }
        let server = server.start();
        let exporter = Langfuse::new(&config(&server, kind, true)).expect("exporter starts");
        group.bench_function(format!("{kind}"), |b| {
            b.iter_custom(|iterations| {
                let mut elapsed = Duration::ZERO;
                for _ in 0..iterations {
                    server.reset();
                    let start = Instant::now();
                    for i in 0..BURST {
                        exporter.record(small_observation(&attributes, i));
                    }
                    let report = exporter.flush_blocking(Duration::from_secs(120));
                    elapsed += start.elapsed();
                    assert!(report.completed, "{report:?}");
                }
                elapsed
            });
        });
        for gzip in [true, false] {
            report_wire_size(&server, &config(&server, kind, gzip), &attributes);
        }
    }
    group.finish();
}

/// Prints the bytes per observation on the wire, which criterion has no unit for.
fn report_wire_size(server: &TestServer, config: &Config, trace: &Arc<TraceAttributes>) {
    let exporter = Langfuse::new(config).expect("exporter starts");
    server.reset();
    for i in 0..BURST {
        exporter.record(small_observation(trace, i));
    }
    let report = exporter.shutdown_blocking(Duration::from_secs(120));
    assert!(report.completed, "{report:?}");
    let bytes: usize = server.requests().iter().map(|r| r.body_bytes).sum();
    eprintln!(
        "export/{}: {:.1} bytes per observation on the wire ({}), {} requests for {BURST}",
        config.exporter(),
        bytes as f64 / BURST as f64,
        if config.gzip() {
            "gzip"
        } else {
            "uncompressed"
        },
        server.requests().len(),
    );
}

criterion_group!(benches, export);
criterion_main!(benches);
