//! The flush at the end of an outermost observation keeps short programs lossless without
//! holding any program hostage: it does not block a thread that runs a Tokio runtime, and it
//! stops waiting as soon as the server is known to be failing. (How long calls take is
//! measured by `benches/observe_slow_server.rs`, not here; these tests look at what had
//! happened by the time the call returned.)

use std::time::Duration;

use langfuse_observe::{observe, Config, Langfuse};
use langfuse_observe_testing::{Faults, TestServer};

use crate::support::exporter::OTLP_PATH;

const WAIT: Duration = Duration::from_secs(30);

#[observe]
fn root() {}

fn attempts(server: &TestServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|request| request.path == OTLP_PATH)
        .count()
}

/// What the client in effect here holds.
fn pending() -> u64 {
    langfuse_observe::stats().pending()
}

#[test]
fn the_root_flush_waits_only_where_waiting_harms_nobody() {
    // Nothing is sent on an interval: only flushes deliver. Retries are seconds apart.
    let server = TestServer::start();
    let config = Config::builder()
        .keys(server.public_key(), server.secret_key())
        .base_url(server.url())
        .flush_interval(Duration::from_secs(3600))
        .root_flush_timeout(Duration::from_secs(5))
        .max_retries(3)
        .retry_backoff(Duration::from_secs(2))
        .build()
        .unwrap();
    let client = Langfuse::new(&config).unwrap();
    let guard = client.flush_guard(config.flush_timeout());
    let _in_effect = client.set_default();

    // A slow but healthy server: a sync root on a plain thread waits for its record...
    server.set_faults(Faults::new().delay_all(Duration::from_millis(500)));
    root();
    assert_eq!(pending(), 0, "the plain thread waited for delivery");

    // ...but not on a thread that runs a Tokio runtime, whose other tasks would stall too.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        root();
        assert_eq!(
            pending(),
            1,
            "the runtime thread handed the record over and went on"
        );
    });
    assert!(langfuse_observe::flush_blocking(WAIT).completed);

    // A failing server: the root stops waiting at the first failure rather than through
    // the retries (the first is two seconds away), and later roots do not wait at all.
    server.set_faults(Faults::new().fail_next(100, 503));
    let before = attempts(&server);
    root();
    assert_eq!(
        attempts(&server),
        before + 1,
        "returned before the first retry"
    );
    assert_eq!(pending(), 1);
    root();
    assert_eq!(pending(), 2, "no wait while the server is failing");
    assert_eq!(attempts(&server), before + 1, "and no request of its own");
    // Delivery goes on once the server recovers; the guard's flush waits for it.
    server.clear_faults();
    drop(guard);
    let stats = langfuse_observe::stats();
    assert_eq!(stats.pending(), 0, "{stats:?}");
    assert_eq!(stats.exported, 4, "{stats:?}");
}
