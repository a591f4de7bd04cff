//! Code the export worker runs for the user, a `mask`, may call observed functions and even
//! flush: it is not recorded (the worker would feed itself its own output) and a flush from
//! there returns at once (the worker cannot answer a flush while it waits for one).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use langfuse_observe::{observe, Config, Langfuse};

use crate::support::observed::{current_trace, trace_observations, Harness};

static MASKED: AtomicUsize = AtomicUsize::new(0);

/// A helper the mask calls: observed, as helpers in a user's code base often are.
#[observe]
fn redact(text: &str) -> String {
    text.replace("secret", "******")
}

/// Flushes `own`, the client whose worker runs this mask.
fn mask(value: serde_json::Value, own: &Mutex<Option<Langfuse>>) -> serde_json::Value {
    MASKED.fetch_add(1, Ordering::Relaxed);
    let own = own.lock().unwrap().clone();
    let report = own
        .expect("the client is known before it records")
        .flush_blocking(Duration::from_secs(30));
    assert!(!report.completed || report.pending == 0, "{report:?}");
    let redacted = redact(&value.to_string());
    serde_json::from_str(&redacted).unwrap_or(value)
}

#[observe]
fn handle(input: &str) -> String {
    let _ = input;
    current_trace()
}

#[test]
fn observed_code_and_flushes_in_a_mask_neither_record_nor_stall() {
    let own = Arc::new(Mutex::new(None));
    let test = Harness::start_from(|server| {
        let own = Arc::clone(&own);
        Config::builder()
            .keys(server.public_key(), server.secret_key())
            .base_url(server.url())
            .mask(move |value| mask(value, &own))
    });
    *own.lock().unwrap() = Some(test.client.clone());
    let server = &test.server;
    // The outermost call flushes; before this change the mask's flush waited on the worker
    // running it, and the flush never returned.
    let trace = handle("a secret");
    let observations = trace_observations(server, &trace);
    assert_eq!(observations.len(), 1, "only `handle`: {observations:#?}");
    assert!(MASKED.load(Ordering::Relaxed) > 0, "the mask ran");
    assert_eq!(
        observations[0].input,
        Some(serde_json::json!({"input": "a ******"}))
    );
    assert!(
        server
            .observations()
            .iter()
            .all(|o| o.name.as_deref() != Some("redact")),
        "nothing the mask did was recorded"
    );
    let stats = langfuse_observe::stats();
    assert_eq!(stats.pending(), 0, "{stats:?}");
    assert_eq!(stats.exported, stats.enqueued, "{stats:?}");
    // The client holds the mask, which holds the client: let go of it.
    own.lock().unwrap().take();
}
