//! Shared helpers of the `#[observe]` integration tests.
//!
//! `#[observe]` records into the process-wide exporter, which `langfuse_observe::init` sets up
//! once per process, and each test binary is one process whose tests run in parallel threads.
//! So every binary starts one loopback server, points the global exporter at it on first use
//! ([`server`] or [`server_with`]), and each test finds its own data by the trace id its root
//! observation reports.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use langfuse_observe::{Config, ConfigBuilder, Context, TraceId};
use langfuse_observe_testing::{StoredObservation, TestServer, TestServerBuilder};
use serde_json::{Map, Value};

/// Generous deadline for data that arrives in the background; never an assertion on speed.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

static SERVER: OnceLock<TestServer> = OnceLock::new();

/// The binary's server, with the global exporter sending to it (set up on first call): OTLP,
/// 50 ms flush interval, fast retries, flush when the outermost observation ends.
///
/// Call it before the first observed call of a test: an observed call made before `init`
/// would set the exporter up from the environment instead.
pub(crate) fn server() -> &'static TestServer {
    server_from(|server| {
        Config::builder()
            .keys(server.public_key(), server.secret_key())
            .base_url(server.url())
    })
}

/// Like [`server`], with the configuration built by the first caller from `build` (which
/// gets the new server, for its URL and keys) and then given the fast test timings.
pub(crate) fn server_from(build: impl FnOnce(&TestServer) -> ConfigBuilder) -> &'static TestServer {
    server_in(TestServer::builder(), build)
}

/// Like [`server_from`], with the server built from `server` (a mode, prompts, score configs).
pub(crate) fn server_in(
    server: TestServerBuilder,
    build: impl FnOnce(&TestServer) -> ConfigBuilder,
) -> &'static TestServer {
    SERVER.get_or_init(|| {
        let server = server.start();
        let config = build(&server)
            .environment("test")
            .flush_interval(Duration::from_millis(50))
            .retry_backoff(Duration::from_millis(10))
            .timeout(Duration::from_secs(5))
            .flush_timeout(Duration::from_secs(20))
            .flush_on_root(true)
            .build()
            .expect("the test configuration is valid");
        let guard = langfuse_observe::init(config).expect("init runs once per test binary");
        // Statics are never dropped; the guard would only flush at a drop that never comes.
        std::mem::forget(guard);
        server
    })
}

/// The trace of the observation current here; panics outside an observed call.
pub(crate) fn current_trace() -> String {
    Context::current()
        .trace_id()
        .as_ref()
        .map(TraceId::to_string)
        .expect("called inside an observed function")
}

/// The id of the observation current here; panics outside an observed call.
pub(crate) fn current_observation() -> String {
    Context::current()
        .observation_id()
        .map(|id| id.to_string())
        .expect("called inside an observed function")
}

/// Every observation of one trace that the server has now.
pub(crate) fn trace_observations(server: &TestServer, trace: &str) -> Vec<StoredObservation> {
    server
        .observations()
        .into_iter()
        .filter(|o| o.trace_id == trace)
        .collect()
}

/// Waits until the trace has at least `n` observations, then returns them all.
pub(crate) fn wait_for_trace(server: &TestServer, trace: &str, n: usize) -> Vec<StoredObservation> {
    let arrived = server.wait_until(WAIT, |s| {
        s.observations()
            .iter()
            .filter(|o| o.trace_id == trace)
            .count()
            >= n
    });
    let observations = trace_observations(server, trace);
    assert!(
        arrived,
        "expected {n} observations of trace {trace}, got {}: {observations:#?}",
        observations.len()
    );
    observations
}

/// The only observation with this name; panics when there is none or more than one.
pub(crate) fn named<'a>(
    observations: &'a [StoredObservation],
    name: &str,
) -> &'a StoredObservation {
    let mut found = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some(name));
    let first = found
        .next()
        .unwrap_or_else(|| panic!("no observation named {name:?} in {observations:#?}"));
    assert!(
        found.next().is_none(),
        "more than one observation named {name:?} in {observations:#?}"
    );
    first
}

/// Every observation with this name.
pub(crate) fn all_named<'a>(
    observations: &'a [StoredObservation],
    name: &str,
) -> Vec<&'a StoredObservation> {
    observations
        .iter()
        .filter(|o| o.name.as_deref() == Some(name))
        .collect()
}

/// Asserts that `child` is a direct child of `parent`, in the same trace.
#[track_caller]
pub(crate) fn assert_child_of(child: &StoredObservation, parent: &StoredObservation) {
    assert_eq!(
        child.parent_observation_id.as_deref(),
        Some(parent.id.as_str()),
        "{:?} should be a child of {:?}",
        child.name,
        parent.name
    );
    assert_eq!(
        child.trace_id, parent.trace_id,
        "{:?} changed trace",
        child.name
    );
}

/// Asserts that `observation` is the root of its trace.
#[track_caller]
pub(crate) fn assert_root(observation: &StoredObservation) {
    assert_eq!(
        observation.parent_observation_id, None,
        "{:?} should be a trace root",
        observation.name
    );
}

/// Asserts the trace holds exactly these names (in any order, with repeats counted).
#[track_caller]
pub(crate) fn assert_names(observations: &[StoredObservation], expected: &[&str]) {
    let mut names: Vec<&str> = observations
        .iter()
        .map(|o| o.name.as_deref().unwrap_or("<unnamed>"))
        .collect();
    names.sort_unstable();
    let mut expected = expected.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected, "observations of the trace");
}

/// Asserts the observation ended no earlier than it started, and within `parent`'s time span.
#[track_caller]
pub(crate) fn assert_within(child: &StoredObservation, parent: &StoredObservation) {
    let (start, end) = times(child);
    let (parent_start, parent_end) = times(parent);
    assert!(
        parent_start <= start && end <= parent_end,
        "{:?} ({start:?}..{end:?}) should lie within {:?} ({parent_start:?}..{parent_end:?})",
        child.name,
        parent.name
    );
}

/// Start and end time; asserts both are present and in order.
#[track_caller]
pub(crate) fn times(
    observation: &StoredObservation,
) -> (std::time::SystemTime, std::time::SystemTime) {
    let start = observation.start_time.expect("a start time");
    let end = observation.end_time.expect("an end time");
    assert!(end >= start, "{:?} ends before it starts", observation.name);
    (start, end)
}

/// The distinct trace ids among these observations.
pub(crate) fn trace_ids(observations: &[StoredObservation]) -> HashSet<&str> {
    observations.iter().map(|o| o.trace_id.as_str()).collect()
}

/// The metadata keys the server adds to every observation on its own (LANGFUSE_SERVER.md §4.4,
/// §4.9): the resource attributes, the instrumentation scope, and for scopes other than
/// `langfuse-sdk` a dump of all span attributes. On v4 they arrive flattened, as
/// `resourceAttributes.<key>`, `scope.<key>` and `attributes.<key>`.
const SERVER_METADATA_KEYS: [&str; 3] = ["resourceAttributes", "scope", "attributes"];

/// The metadata the instrumented code set: `metadata` (of an observation or a trace) without
/// the keys the server adds itself, as an object for comparing with `json!`. The server keeps
/// every value as a string, so the expected values are strings too.
pub(crate) fn user_metadata(metadata: &Map<String, Value>) -> Value {
    let added = |key: &str| {
        SERVER_METADATA_KEYS.iter().any(|prefix| {
            key.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
        })
    };
    Value::Object(
        metadata
            .iter()
            .filter(|(key, _)| !added(key))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
    )
}

/// `time` cut to whole milliseconds, the precision the server keeps (LANGFUSE_SERVER.md §4.2):
/// what an instant taken in the test looks like next to a stored time.
pub(crate) fn millis(time: SystemTime) -> SystemTime {
    let since_epoch = time.duration_since(UNIX_EPOCH).expect("a time after 1970");
    time - Duration::from_nanos(u64::from(since_epoch.subsec_nanos() % 1_000_000))
}
