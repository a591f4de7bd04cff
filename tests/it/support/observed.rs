//! A test's own server and client for `#[observe]` and the context API, and the checks on
//! what the server stored.
//!
//! `#[observe]` records to the client in effect where a trace's root starts. A [`Harness`]
//! puts its client in effect on the thread that starts it, the test's, which is also where
//! `#[tokio::test]` polls the test's body (in either flavour). A root started anywhere else,
//! on a spawned task or another thread, needs the client carried there with
//! `client.scope(..)` or `client.run(..)`. Each test finds its own data by the trace id its
//! root observation reports.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use langfuse_observe::{
    config::ConfigBuilder,
    context::{ClientGuard, Context},
    trace::TraceId,
    Config, Langfuse,
};
use langfuse_observe_testing::{StoredObservation, TestServer, TestServerBuilder};
use serde_json::{Map, Value};

use super::WAIT;

/// A test's own loopback server and a client sending to it, in effect on the thread that
/// started the harness until it is dropped.
pub(crate) struct Harness {
    // Dropped first: the thread's previous client is back while the client and the server
    // still run.
    _in_effect: ClientGuard,
    pub(crate) client: Langfuse,
    /// Shared, for waits on a blocking thread of an async test.
    pub(crate) server: Arc<TestServer>,
}

impl Harness {
    /// A server and a client for it: OTLP, 50 ms flush interval, fast retries, flush when
    /// the outermost observation ends.
    pub(crate) fn start() -> Self {
        Self::start_from(|server| {
            Config::builder()
                .keys(server.public_key(), server.secret_key())
                .base_url(server.url())
        })
    }

    /// Like [`start`](Self::start), with the configuration built by `build` (which gets the
    /// new server, for its URL and keys) and then given the fast test timings.
    pub(crate) fn start_from(build: impl FnOnce(&TestServer) -> ConfigBuilder) -> Self {
        Self::start_in(TestServer::builder(), build)
    }

    /// Like [`start_from`](Self::start_from), with the server built from `server` (a mode,
    /// prompts, score configs).
    pub(crate) fn start_in(
        server: TestServerBuilder,
        build: impl FnOnce(&TestServer) -> ConfigBuilder,
    ) -> Self {
        let server = server.start();
        let client = Langfuse::new(&test_config(build(&server))).expect("the client starts");
        Self {
            _in_effect: client.set_default(),
            client,
            server: Arc::new(server),
        }
    }
}

/// `build` with the fast test timings: 50 ms flush interval, 10 ms retry backoff, flush when
/// the outermost observation ends, environment `test`.
fn test_config(build: ConfigBuilder) -> Config {
    build
        .environment("test")
        .flush_interval(Duration::from_millis(50))
        .retry_backoff(Duration::from_millis(10))
        .timeout(Duration::from_secs(5))
        .flush_timeout(Duration::from_secs(20))
        .flush_on_root(true)
        .build()
        .expect("the test configuration is valid")
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
#[track_caller]
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
