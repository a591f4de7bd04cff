//! Set-up shared by the per-call and per-item benchmarks.

use std::time::Duration;

use langfuse_observe::{config::ExporterKind, Config, FlushGuard};
use langfuse_observe_testing::TestServer;

/// Points the global exporter at a loopback server that decodes but keeps nothing, with the
/// worker held back (no batch threshold, a long interval) so it does not compete with the
/// measured thread; benchmarks drain it with [`settle`] outside their timing.
pub(crate) fn init_held_back() -> (TestServer, FlushGuard) {
    let server = TestServer::builder().build_model(false).start();
    let config = Config::builder()
        .keys(server.public_key(), server.secret_key())
        .base_url(server.url())
        .exporter(ExporterKind::Otlp)
        .flush_at(100_000_000)
        .flush_interval(Duration::from_secs(3600))
        .max_queue_items(50_000_000)
        .max_queue_bytes(usize::MAX / 2)
        .build()
        .expect("valid benchmark config");
    let guard = langfuse_observe::init(config).expect("first init");
    (server, guard)
}

/// Delivers what was recorded so far, outside the timing.
pub(crate) fn settle() {
    let report = langfuse_observe::flush_blocking(Duration::from_secs(600));
    assert!(report.completed, "{report:?}");
}
