//! Clients as values: each test here has its own server and client in one process. A trace
//! goes to the client in effect where its root starts (`run`, `scope`, `set_default`, else
//! the process default), and everything of the trace follows its root: children, events,
//! updates and scores. `init` may be called at any time, also inside an open observation.

use std::collections::HashSet;
use std::time::Duration;

use langfuse_observe::{
    observe,
    trace::{
        create_event, current_trace_id, score_current_trace, update_current_trace,
        ObservationUpdate, TraceUpdate,
    },
    Config, Langfuse,
};
use langfuse_observe_testing::TestServer;

use crate::support::process::{assert_child_passes, is_child};

const WAIT: Duration = Duration::from_secs(20);

fn config(server: &TestServer) -> Config {
    Config::builder()
        .keys(server.public_key(), server.secret_key())
        .base_url(server.url())
        .flush_interval(Duration::from_millis(20))
        .retry_backoff(Duration::from_millis(10))
        .flush_on_root(true)
        .build()
        .unwrap()
}

fn client(server: &TestServer) -> Langfuse {
    Langfuse::new(&config(server)).unwrap()
}

/// The distinct trace ids a server has received observations of.
fn traces(server: &TestServer) -> HashSet<String> {
    server
        .observations()
        .into_iter()
        .map(|o| o.trace_id)
        .collect()
}

#[observe]
fn child(n: u32) -> u32 {
    create_event("checkpoint", ObservationUpdate::new());
    n + 1
}

#[observe]
async fn request(n: u32) -> String {
    child(n);
    tokio::task::yield_now().await;
    child(n + 1);
    update_current_trace(TraceUpdate::new().user_id(format!("user-{n}")));
    score_current_trace("quality", f64::from(n));
    current_trace_id().unwrap().to_string()
}

#[test]
fn run_sends_what_starts_inside_to_its_client() {
    let server = TestServer::start();
    let client = client(&server);
    let trace = client.run(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(request(1))
    });
    assert!(client.flush_blocking(WAIT).completed);
    let observations = server.observations();
    // The root, two children and their two events.
    assert_eq!(observations.len(), 5, "{observations:#?}");
    assert!(observations.iter().all(|o| o.trace_id == trace));
    assert_eq!(server.scores().len(), 1);
    assert_eq!(
        server.trace(&trace).unwrap().user_id.as_deref(),
        Some("user-1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_follows_a_future_across_await_and_threads() {
    let server = TestServer::start();
    let client = client(&server);
    let trace = tokio::spawn(client.scope(request(2))).await.unwrap();
    assert!(client.flush(WAIT).await.completed);
    assert_eq!(traces(&server), HashSet::from([trace]));
    assert_eq!(server.observations().len(), 5);
}

#[test]
fn set_default_holds_for_the_thread_until_the_guard_drops() {
    let inside = TestServer::start();
    let client = client(&inside);
    let guard = client.set_default();
    let first = langfuse_observe::trace::observation("first").run(|| current_trace_id().unwrap());
    drop(guard);
    assert!(client.flush_blocking(WAIT).completed);
    assert_eq!(traces(&inside), HashSet::from([first.to_string()]));
}

/// A trace stays with its root's client: work inside it that puts another client in effect
/// still records to the root's, and so do its scores.
#[test]
fn a_trace_stays_with_the_client_of_its_root() {
    let first = TestServer::start();
    let second = TestServer::start();
    let (a, b) = (client(&first), client(&second));
    let trace = a.run(|| {
        langfuse_observe::trace::observation("root").run(|| {
            b.run(|| child(1));
            score_current_trace("kept", true);
            current_trace_id().unwrap().to_string()
        })
    });
    assert!(a.flush_blocking(WAIT).completed);
    assert!(b.flush_blocking(WAIT).completed);
    assert_eq!(first.observations().len(), 3, "root, child, event");
    assert_eq!(traces(&first), HashSet::from([trace]));
    assert_eq!(first.scores().len(), 1);
    assert!(second.observations().is_empty());
    assert!(second.scores().is_empty());
}

/// Two projects in one process, 64 concurrent requests on a multi-thread runtime: each
/// trace arrives whole at its own project, and nothing at the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_projects_in_one_process_get_exactly_their_own_traces() {
    let first = TestServer::start_with("pk-lf-first", "sk-lf-first");
    let second = TestServer::start_with("pk-lf-second", "sk-lf-second");
    let clients = [client(&first), client(&second)];
    let tasks: Vec<_> = (0..64u32)
        .map(|n| {
            let client = &clients[(n % 2) as usize];
            let task = tokio::spawn(client.scope(request(n)));
            (n % 2, task)
        })
        .collect();
    let mut expected = [HashSet::new(), HashSet::new()];
    for (project, task) in tasks {
        expected[project as usize].insert(task.await.unwrap());
    }
    for client in &clients {
        assert!(client.flush(WAIT).await.completed);
    }
    for (server, expected) in [&first, &second].into_iter().zip(&expected) {
        assert_eq!(expected.len(), 32);
        assert_eq!(&traces(server), expected);
        assert_eq!(server.observations().len(), 32 * 5);
        assert_eq!(server.scores().len(), 32);
        assert!(server.scores().iter().all(|score| score
            .trace_id
            .as_ref()
            .is_some_and(|id| expected.contains(id))));
        assert!(server.traces().iter().all(|trace| trace
            .user_id
            .as_deref()
            .is_some_and(|user| user.starts_with("user-"))));
    }
    for client in &clients {
        let stats = client.stats();
        assert_eq!(stats.enqueued, 32 * 6, "{stats:?}");
        assert_eq!(stats.exported, stats.enqueued, "{stats:?}");
    }
}

/// The link every server resolves, once the project lookup has answered.
#[tokio::test]
async fn trace_url_resolved_waits_for_the_project() {
    let server = TestServer::builder().project("project-7", "seven").start();
    let client = client(&server);
    let trace = langfuse_observe::trace::TraceId::random();
    let url = client.trace_url_resolved(trace).await.unwrap();
    assert_eq!(
        url,
        format!("{}/project/project-7/traces/{trace}", server.url())
    );
    assert_eq!(client.trace_url(trace), url);
}

/// The child of [`init_inside_an_open_observation_takes_over_the_rest_of_its_trace`].
const INIT_CHILD: &str =
    "client::init_inside_an_open_observation_takes_over_the_rest_of_its_trace_child";

/// The only test here that uses the process default. It runs alone in a child process, so
/// that the default it replaces is nobody else's: every other test of this binary puts its
/// own client in effect, but would still see a default that `init` replaced under it.
#[test]
fn init_inside_an_open_observation_takes_over_the_rest_of_its_trace() {
    assert_child_passes(INIT_CHILD, |_| {});
}

#[test]
#[ignore = "run in a child process by init_inside_an_open_observation_takes_over_the_rest_of_its_trace"]
fn init_inside_an_open_observation_takes_over_the_rest_of_its_trace_child() {
    if !is_child(INIT_CHILD) {
        return;
    }
    let before = TestServer::start();
    let after = TestServer::start();
    let first = langfuse_observe::init(config(&before)).unwrap();
    let trace = langfuse_observe::trace::observation("main").run(|| {
        child(1);
        // Not an error with an observation open: the default is replaced.
        let _second = langfuse_observe::init(config(&after)).unwrap();
        child(2);
        current_trace_id().unwrap().to_string()
    });
    drop(first);
    assert!(after.wait_for_observations(3, WAIT));
    // What ended before `init` went to the first client; the rest, `main` included, to the
    // second.
    let names = |server: &TestServer| {
        let mut names: Vec<_> = server
            .observations()
            .into_iter()
            .map(|o| (o.trace_id, o.name.unwrap_or_default()))
            .collect();
        names.sort();
        names
    };
    let named = |names: &[&str]| -> Vec<(String, String)> {
        names
            .iter()
            .map(|n| (trace.clone(), (*n).to_owned()))
            .collect()
    };
    assert_eq!(names(&before), named(&["checkpoint", "child"]));
    assert_eq!(names(&after), named(&["checkpoint", "child", "main"]));
}
