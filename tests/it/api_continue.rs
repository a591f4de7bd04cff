//! Continuing a trace begun elsewhere, checked on the loopback server: `TraceContext` puts root
//! observations into an existing trace, optionally under a parent observation; ids are
//! validated where they are supplied, and after a rejected id the caller still records (a new
//! trace, or a seeded one) with session and user arriving; seeds give the same id every time;
//! a `traceparent` injected by one service and extracted by another joins both into one trace;
//! trace attributes set deep inside a continued trace reach it.

use std::time::Duration;

use langfuse_observe::{
    context::{traceparent, FutureExt, TraceContext, TraceparentError},
    observe,
    trace::{
        create_event, current_observation_id, current_trace_id, update_current_generation,
        update_current_trace, GenerationUpdate, IdError, ObservationId, ObservationUpdate, TraceId,
        TraceUpdate,
    },
};
use langfuse_observe_testing::{StoredTrace, TestServer};
use serde_json::json;

use crate::support::observed::{
    assert_child_of, assert_names, assert_root, current_observation, current_trace, named,
    trace_observations, wait_for_trace, Harness,
};
use crate::support::WAIT;

fn trace_on_server(server: &TestServer, trace: &str) -> StoredTrace {
    assert!(
        server.wait_until(WAIT, |s| s.trace(trace).is_some()),
        "trace {trace} never arrived"
    );
    server.trace(trace).unwrap()
}

/// A fresh valid trace id as text, as another service would send it.
fn foreign_trace_id() -> String {
    TraceId::random().to_string()
}

// ---------------------------------------------------------------------------------------------
// a root observation inside an existing trace

#[observe]
fn handler(request: &str) -> (String, String) {
    handler_step();
    let _ = request;
    (current_trace(), current_observation())
}

#[observe]
fn handler_step() {}

#[test]
fn observations_under_a_trace_context_join_that_trace_as_roots() {
    let test = Harness::start();
    let server = &test.server;
    let trace = foreign_trace_id();
    let remote = TraceContext::new(&trace).unwrap();
    assert_eq!(remote.trace_id().to_string(), trace);
    assert_eq!(remote.parent_id(), None);
    let (seen_trace, root_id) = remote.run(|| {
        assert_eq!(current_trace_id().unwrap().to_string(), trace);
        assert_eq!(
            current_observation_id(),
            None,
            "no observation of this process yet"
        );
        handler("continue me")
    });
    assert_eq!(seen_trace, trace);
    // The first local observation is the outermost one here: it flushed.
    let observations = trace_observations(server, &trace);
    assert_names(&observations, &["handler", "handler_step"]);
    let root = named(&observations, "handler");
    assert_eq!(root.id, root_id);
    assert_root(root);
    assert_child_of(named(&observations, "handler_step"), root);
}

#[test]
fn observations_under_a_trace_context_with_a_parent_hang_under_that_parent() {
    let test = Harness::start();
    let server = &test.server;
    let trace = foreign_trace_id();
    let parent = ObservationId::random().to_string();
    let remote = TraceContext::new(&trace)
        .unwrap()
        .with_parent(&parent)
        .unwrap();
    assert_eq!(remote.parent_id().unwrap().to_string(), parent);
    let (seen_trace, _) = remote.run(|| {
        assert_eq!(current_observation_id().unwrap().to_string(), parent);
        handler("under a parent")
    });
    assert_eq!(seen_trace, trace);
    let observations = trace_observations(server, &trace);
    assert_names(&observations, &["handler", "handler_step"]);
    let root = named(&observations, "handler");
    assert_eq!(root.parent_observation_id.as_deref(), Some(parent.as_str()));
    assert_child_of(named(&observations, "handler_step"), root);
}

#[observe]
async fn async_handler() -> String {
    tokio::time::sleep(Duration::from_millis(1)).await;
    handler_step();
    current_trace()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_under_a_trace_context_joins_that_trace() {
    let test = Harness::start();
    let server = &test.server;
    let trace = foreign_trace_id();
    let parent = ObservationId::random().to_string();
    let remote = TraceContext::new(&trace)
        .unwrap()
        .with_parent(&parent)
        .unwrap();
    // Spawned elsewhere, as a request handler would be, with the client of this process.
    let handler = async_handler().with_context(remote.context());
    let seen = tokio::spawn(test.client.scope(handler)).await.unwrap();
    assert_eq!(seen, trace);
    let observations = trace_observations(server, &trace);
    assert_names(&observations, &["async_handler", "handler_step"]);
    assert_eq!(
        named(&observations, "async_handler")
            .parent_observation_id
            .as_deref(),
        Some(parent.as_str())
    );
}

#[test]
fn two_roots_under_one_trace_context_are_siblings_of_one_trace() {
    let test = Harness::start();
    let server = &test.server;
    let trace = foreign_trace_id();
    let remote = TraceContext::new(&trace).unwrap();
    let _attached = remote.attach();
    let (_, first) = handler("first");
    let (_, second) = handler("second");
    assert_ne!(first, second);
    let observations = wait_for_trace(server, &trace, 4);
    let roots: Vec<_> = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("handler"))
        .collect();
    assert_eq!(roots.len(), 2);
    for root in roots {
        assert_root(root);
    }
}

/// An event directly under a trace context, before any observation of this process started
/// under it, goes to the client in effect, like the trace's observations would.
#[test]
fn an_event_directly_under_a_trace_context_hangs_under_its_parent() {
    let test = Harness::start();
    let server = &test.server;
    let trace = foreign_trace_id();
    let parent = ObservationId::random().to_string();
    let remote = TraceContext::new(&trace)
        .unwrap()
        .with_parent(&parent)
        .unwrap();
    assert!(remote.run(|| create_event(
        "webhook-received",
        ObservationUpdate::new().input(&json!({"from": "billing"}))
    )));
    let observations = wait_for_trace(server, &trace, 1);
    let event = named(&observations, "webhook-received");
    assert_eq!(event.observation_type, "EVENT");
    assert_eq!(
        event.parent_observation_id.as_deref(),
        Some(parent.as_str())
    );
    assert_eq!(event.input, Some(json!({"from": "billing"})));
}

// ---------------------------------------------------------------------------------------------
// trace attributes in a continued trace

#[observe]
fn continued_child() {
    continued_grandchild();
}

#[observe(as_type = "generation")]
fn continued_grandchild() {
    update_current_generation(GenerationUpdate::new().model("continued-model"));
    assert!(update_current_trace(
        TraceUpdate::new()
            .session_id("session-continued")
            .user_id("user-continued")
            .tag("continued")
            .metadata("hop", 2)
            .name("continued-trace")
    ));
}

#[observe]
fn continued_root() -> String {
    continued_child();
    current_trace()
}

#[test]
fn session_and_user_set_in_a_nested_child_of_a_continued_trace_arrive_on_the_trace() {
    let test = Harness::start();
    let server = &test.server;
    for with_parent in [false, true] {
        let trace = foreign_trace_id();
        let mut remote = TraceContext::new(&trace).unwrap();
        if with_parent {
            remote = remote
                .with_parent(&ObservationId::random().to_string())
                .unwrap();
        }
        assert_eq!(remote.run(continued_root), trace);
        let observations = trace_observations(server, &trace);
        assert_eq!(observations.len(), 3, "{observations:#?}");
        let arrived = trace_on_server(server, &trace);
        assert_eq!(
            arrived.session_id.as_deref(),
            Some("session-continued"),
            "with parent: {with_parent}"
        );
        assert_eq!(arrived.user_id.as_deref(), Some("user-continued"));
        assert_eq!(arrived.tags, ["continued"]);
        assert_eq!(arrived.name.as_deref(), Some("continued-trace"));
        // A v4 trace takes its metadata from its parentless span only: under a remote parent
        // that span is the other service's, so here the metadata shows on the local root.
        let local_root = named(&observations, "continued_root");
        let metadata = if with_parent {
            &local_root.metadata
        } else {
            &arrived.metadata
        };
        assert_eq!(
            metadata.get("hop"),
            Some(&json!("2")),
            "with parent: {with_parent}"
        );
    }
}

#[test]
fn an_update_directly_under_a_trace_context_arrives_with_the_next_observation() {
    let test = Harness::start();
    let server = &test.server;
    let trace = foreign_trace_id();
    let remote = TraceContext::new(&trace).unwrap();
    remote.run(|| {
        // No local observation yet: the update waits for one to carry it.
        assert!(update_current_trace(
            TraceUpdate::new()
                .session_id("session-before-first-observation")
                .user_id("user-before-first-observation")
        ));
        handler("after the update");
    });
    let arrived = trace_on_server(server, &trace);
    assert!(trace_observations(server, &trace).len() >= 2);
    assert_eq!(
        arrived.session_id.as_deref(),
        Some("session-before-first-observation")
    );
    assert_eq!(
        arrived.user_id.as_deref(),
        Some("user-before-first-observation")
    );
}

// ---------------------------------------------------------------------------------------------
// ids validated up front; nothing lost after a rejected id

#[test]
fn invalid_trace_ids_are_rejected_where_they_are_supplied() {
    let upper = "4BF92F3577B34DA6A3CE929D0E0E4736";
    for bad in [
        "bad",
        "",
        upper,
        "4bf92f3577b34da6a3ce929d0e0e473",
        "4bf92f3577b34da6a3ce929d0e0e47361",
        "4bf92f3577b34da6a3ce929d0e0e473g",
        "00000000000000000000000000000000",
        "4bf92f35-77b3-4da6-a3ce-929d0e0e4736",
    ] {
        let error = TraceContext::new(bad).expect_err(bad);
        let message = error.to_string();
        assert!(message.contains("trace id"), "{bad:?}: {message}");
    }
    assert!(matches!(
        TraceContext::new("bad"),
        Err(IdError::Length { found: 3, .. })
    ));
    assert!(matches!(
        TraceContext::new("00000000000000000000000000000000"),
        Err(IdError::Zero { .. })
    ));
    let valid = TraceContext::new(&foreign_trace_id()).unwrap();
    for bad in [
        "xyz",
        "",
        "00F067AA0BA902B7",
        "0000000000000000",
        "00f067aa0ba902b",
    ] {
        let error = valid.with_parent(bad).expect_err(bad);
        assert!(error.to_string().contains("observation id"), "{bad:?}");
    }
}

#[observe]
fn request_with_identity(session: &str, user: &str) -> String {
    assert!(update_current_trace(
        TraceUpdate::new().session_id(session).user_id(user)
    ));
    handler_step();
    current_trace()
}

#[test]
fn after_a_rejected_id_the_caller_still_records_in_a_new_trace() {
    let test = Harness::start();
    let server = &test.server;
    let incoming = "not-a-trace-id";
    let trace = match TraceContext::new(incoming) {
        Ok(remote) => remote.run(|| request_with_identity("session-new-trace", "user-new-trace")),
        // The error is reported at the call; the work goes on in a trace of its own.
        Err(_) => request_with_identity("session-new-trace", "user-new-trace"),
    };
    assert_ne!(trace, incoming);
    assert_eq!(trace_observations(server, &trace).len(), 2);
    let arrived = trace_on_server(server, &trace);
    assert_eq!(arrived.session_id.as_deref(), Some("session-new-trace"));
    assert_eq!(arrived.user_id.as_deref(), Some("user-new-trace"));
}

#[test]
fn after_a_rejected_id_the_caller_can_continue_a_trace_seeded_from_it() {
    let test = Harness::start();
    let server = &test.server;
    let incoming = "req-7f3a/ticket#1234 (not hex)";
    let remote = TraceContext::new(incoming).unwrap_or_else(|error| {
        assert!(error.to_string().contains("trace id"));
        TraceContext::from_seed(incoming)
    });
    assert_eq!(remote.trace_id(), TraceId::from_seed(incoming));
    let trace = remote.run(|| request_with_identity("session-seeded", "user-seeded"));
    assert_eq!(trace, TraceId::from_seed(incoming).to_string());
    assert_eq!(trace_observations(server, &trace).len(), 2);
    let arrived = trace_on_server(server, &trace);
    assert_eq!(arrived.session_id.as_deref(), Some("session-seeded"));
    assert_eq!(arrived.user_id.as_deref(), Some("user-seeded"));
}

#[test]
fn seeded_trace_ids_match_the_other_sdks() {
    // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223 b00361a396177a9cb410ff61f20015ad.
    assert_eq!(
        TraceContext::from_seed("abc").trace_id().to_string(),
        "ba7816bf8f01cfea414140de5dae2223"
    );
    assert_eq!(
        ObservationId::from_seed("abc").to_string(),
        "ba7816bf8f01cfea"
    );
    assert_eq!(
        TraceContext::from_seed("abc"),
        TraceContext::from_seed("abc")
    );
    assert_ne!(
        TraceContext::from_seed("abc").trace_id(),
        TraceContext::from_seed("abd").trace_id()
    );
}

#[test]
fn two_traces_with_the_same_seed_get_the_same_id() {
    let test = Harness::start();
    let server = &test.server;
    let seed = format!("conversation-{}", TraceId::random());
    let first = TraceContext::from_seed(&seed).run(|| handler("first turn").0);
    let second = TraceContext::from_seed(&seed).run(|| handler("second turn").0);
    assert_eq!(first, second);
    assert_eq!(first, TraceId::from_seed(&seed).to_string());
    let observations = wait_for_trace(server, &first, 4);
    let inputs: Vec<_> = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("handler"))
        .map(|o| o.input.clone().unwrap())
        .collect();
    assert_eq!(inputs.len(), 2);
    assert!(inputs.contains(&json!({"request": "first turn"})));
    assert!(inputs.contains(&json!({"request": "second turn"})));
}

// ---------------------------------------------------------------------------------------------
// traceparent: inject in one service, extract in another

/// Service A: handles a request and calls service B, sending the `traceparent` header.
#[observe]
fn service_a() -> (String, String) {
    let header = call_service_b();
    (current_trace(), header)
}

/// The outgoing call of service A: the header names this observation as the parent.
#[observe]
fn call_service_b() -> String {
    let header = traceparent().unwrap();
    let for_b = header.clone();
    // Service B runs elsewhere, knowing only the header, and sends to the same project.
    let client_of_b = langfuse_observe::client();
    std::thread::spawn(move || client_of_b.run(|| service_b_entry(&for_b)))
        .join()
        .unwrap();
    header
}

fn service_b_entry(header: &str) {
    let remote = TraceContext::from_traceparent(header).unwrap();
    remote.run(service_b);
}

#[observe]
fn service_b() {
    service_b_step();
    assert!(update_current_trace(
        TraceUpdate::new().user_id("user-from-service-b")
    ));
}

#[observe]
fn service_b_step() {}

#[test]
fn traceparent_injected_by_one_service_and_extracted_by_another_makes_one_trace() {
    let test = Harness::start();
    let server = &test.server;
    let (trace, header) = service_a();
    let fields: Vec<&str> = header.split('-').collect();
    assert_eq!(fields.len(), 4, "{header}");
    assert_eq!(fields[0], "00");
    assert_eq!(fields[1], trace);
    assert_eq!(fields[3], "01", "a sampled trace");

    // B's root flushed on its own thread; A's root flushed when it returned.
    let observations = wait_for_trace(server, &trace, 4);
    assert_names(
        &observations,
        &["service_a", "call_service_b", "service_b", "service_b_step"],
    );
    let a = named(&observations, "service_a");
    let call = named(&observations, "call_service_b");
    let b = named(&observations, "service_b");
    assert_root(a);
    assert_child_of(call, a);
    assert_eq!(
        fields[2], call.id,
        "the header names the calling observation"
    );
    assert_child_of(b, call);
    assert_child_of(named(&observations, "service_b_step"), b);
    assert_eq!(
        trace_on_server(server, &trace).user_id.as_deref(),
        Some("user-from-service-b"),
        "service B's trace update reaches the shared trace"
    );
}

#[test]
fn traceparent_round_trips() {
    let trace = TraceId::random();
    let parent = ObservationId::random();
    let header = TraceContext::new(&trace.to_string())
        .unwrap()
        .with_parent(&parent.to_string())
        .unwrap()
        .run(|| traceparent().unwrap());
    assert_eq!(header, format!("00-{trace}-{parent}-01"));
    let extracted = TraceContext::from_traceparent(&header).unwrap();
    assert_eq!(extracted.trace_id(), trace);
    assert_eq!(extracted.parent_id(), Some(parent));
    // Without a parent there is nothing to name in the header.
    assert_eq!(
        TraceContext::new(&trace.to_string())
            .unwrap()
            .run(traceparent),
        None
    );
}

#[test]
fn malformed_traceparent_headers_are_rejected() {
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = "00f067aa0ba902b7";
    assert!(TraceContext::from_traceparent(&format!("00-{trace}-{parent}-01")).is_ok());
    assert!(TraceContext::from_traceparent(&format!(" 00-{trace}-{parent}-00 ")).is_ok());
    for bad in [
        String::new(),
        "garbage".to_owned(),
        format!("01-{trace}-{parent}-01"),
        format!("00-{trace}-{parent}"),
        format!("00-{trace}-{parent}-01-extra"),
        format!("00-{trace}-{parent}-1"),
        format!("00-{trace}-{parent}-zz"),
    ] {
        assert!(
            matches!(
                TraceContext::from_traceparent(&bad),
                Err(TraceparentError::Format(_))
            ),
            "{bad:?}"
        );
    }
    for bad in [
        format!("00-{}-{parent}-01", trace.to_uppercase()),
        format!("00-00000000000000000000000000000000-{parent}-01"),
        format!("00-{trace}-0000000000000000-01"),
        format!("00-{trace}-{}-01", &parent[1..]),
    ] {
        assert!(
            matches!(
                TraceContext::from_traceparent(&bad),
                Err(TraceparentError::Id(_))
            ),
            "{bad:?}"
        );
    }
}
