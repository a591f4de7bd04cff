//! `LANGFUSE_SAMPLE_RATE=0.5` keeps or drops whole traces, checked on the loopback server: of
//! 200 traces of 4 observations each, every trace that arrives has all 4, about half arrive,
//! and the decision is the OpenTelemetry ratio sampler's on the trace id, so every service (and
//! every SDK) decides the same for a continued trace.

use std::collections::{HashMap, HashSet};

use langfuse_observe::{
    config::ConfigBuilder,
    context::{traceparent, TraceContext},
    observe,
    trace::{update_current_trace, TraceId, TraceUpdate},
};

use crate::support::observed::{current_trace, trace_observations, Harness};
use crate::support::WAIT;

const RATE: f64 = 0.5;
const TRACES: usize = 200;

/// Configured as a user would: the rate comes from `LANGFUSE_SAMPLE_RATE`.
fn start() -> Harness {
    Harness::start_from(|server| {
        let url = server.url();
        let (public, secret) = (
            server.public_key().to_owned(),
            server.secret_key().to_owned(),
        );
        ConfigBuilder::from_lookup(|name| match name {
            "LANGFUSE_SAMPLE_RATE" => Some("0.5".to_owned()),
            "LANGFUSE_PUBLIC_KEY" => Some(public.clone()),
            "LANGFUSE_SECRET_KEY" => Some(secret.clone()),
            "LANGFUSE_BASE_URL" => Some(url.clone()),
            _ => None,
        })
        .unwrap()
    })
}

/// OpenTelemetry's `TraceIdRatioBased`: the lower 64 bits of the id against rate x 2^64.
fn otel_keeps(trace: TraceId, rate: f64) -> bool {
    let bytes = trace.to_bytes();
    let low = u64::from_be_bytes(bytes[8..].try_into().unwrap());
    (low as f64) < rate * 18_446_744_073_709_551_616.0
}

#[observe]
fn sampled_root(i: usize) -> String {
    sampled_child(i);
    sampled_sibling();
    update_current_trace(TraceUpdate::new().session_id("sampling-session"));
    current_trace()
}

#[observe]
fn sampled_child(i: usize) -> usize {
    sampled_grandchild() + i
}

#[observe]
fn sampled_grandchild() -> usize {
    1
}

#[observe]
fn sampled_sibling() {}

#[test]
fn a_sample_rate_of_one_half_keeps_whole_traces_and_about_half_of_them() {
    let test = start();
    let server = &test.server;
    let traces: Vec<String> = (0..TRACES).map(sampled_root).collect();
    assert_eq!(traces.iter().collect::<HashSet<_>>().len(), TRACES);
    assert!(langfuse_observe::flush_blocking(WAIT).completed);

    let mine: HashSet<&str> = traces.iter().map(String::as_str).collect();
    let mut per_trace: HashMap<String, usize> = HashMap::new();
    for observation in server.observations() {
        if mine.contains(observation.trace_id.as_str()) {
            *per_trace.entry(observation.trace_id).or_default() += 1;
        }
    }
    for (trace, count) in &per_trace {
        assert_eq!(*count, 4, "trace {trace} arrived partially: {count} of 4");
        let arrived = server.trace(trace).unwrap();
        assert_eq!(arrived.session_id.as_deref(), Some("sampling-session"));
    }
    let kept = per_trace.len();
    assert!(
        (TRACES / 4..=TRACES * 3 / 4).contains(&kept),
        "kept {kept} of {TRACES} traces at rate {RATE}"
    );
    // No stray records: the traces that were dropped left nothing at all.
    for trace in &traces {
        if !per_trace.contains_key(trace) {
            assert!(server.trace(trace).is_none(), "{trace} left a trace behind");
            assert!(trace_observations(server, trace).is_empty());
        }
    }
    let stats = langfuse_observe::stats();
    assert_eq!(
        stats.dropped, 0,
        "sampled-out records are never counted as dropped: {stats:?}"
    );
}

#[test]
fn the_decision_is_the_opentelemetry_ratio_samplers_so_services_agree() {
    let test = start();
    let server = &test.server;
    let mut kept = 0;
    for i in 0..40 {
        let remote = TraceContext::from_seed(&format!("sampling-seed-{i}"));
        let trace = remote.trace_id();
        let expected = otel_keeps(trace, RATE);
        // Two services continue the same trace; each decides on its own.
        let first = remote.run(|| sampled_root(i));
        let second = TraceContext::from_seed(&format!("sampling-seed-{i}")).run(|| sampled_root(i));
        assert_eq!(first, trace.to_string());
        assert_eq!(second, first);
        assert!(langfuse_observe::flush_blocking(WAIT).completed);
        let count = trace_observations(server, &first).len();
        if expected {
            kept += 1;
            assert_eq!(
                count, 8,
                "trace {first} should be kept whole by both services"
            );
        } else {
            assert_eq!(count, 0, "trace {first} should be dropped by both services");
        }
    }
    assert!(
        kept > 0 && kept < 40,
        "both decisions occur among 40 seeds: {kept}"
    );
}

#[observe]
fn header_of_this_trace() -> (String, String) {
    (current_trace(), traceparent().unwrap())
}

#[test]
fn traceparent_carries_the_sampling_decision() {
    let _test = start();
    let mut seen = HashSet::new();
    for _ in 0..40 {
        let (trace, header) = header_of_this_trace();
        let kept = otel_keeps(TraceId::parse(&trace).unwrap(), RATE);
        let flags = if kept { "01" } else { "00" };
        assert!(
            header.ends_with(&format!("-{flags}")),
            "{header} (kept: {kept})"
        );
        seen.insert(kept);
    }
    assert_eq!(seen.len(), 2, "both decisions occur among 40 traces");
}
