//! Values that cannot be recorded as they are never break an observed function: NaN and
//! infinities, maps with non-string keys, deeply nested values, a 50 MB string, bytes that are
//! not UTF-8, a `Debug` that panics, a `Serialize` that fails or panics. Each is passed as an
//! argument and returned from an `#[observe]` function; the function behaves and returns as
//! without instrumentation, and its observation still reaches the server, with a placeholder
//! or a truncated value carrying a marker where the value could not be kept.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::path::PathBuf;

use langfuse_observe::observe;
use langfuse_observe_core::capture::TRUNCATION_MARKER;
use langfuse_observe_testing::{StoredObservation, TestServer};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::support::observed::{current_trace, named, wait_for_trace, Harness};

/// Waits for the trace of `root` (returned by the root function) and returns the observation
/// named `name` in it.
fn observed(server: &TestServer, trace: &str, name: &str) -> StoredObservation {
    let observations = wait_for_trace(server, trace, 2);
    named(&observations, name).clone()
}

/// The argument `arg` of the recorded input object.
fn input_arg<'a>(observation: &'a StoredObservation, arg: &str) -> &'a Value {
    let input = observation.input.as_ref().expect("an input");
    input
        .get(arg)
        .unwrap_or_else(|| panic!("no argument {arg:?} in {input}"))
}

fn text(value: &Value) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("expected text, got {value}"))
}

#[track_caller]
fn assert_placeholder(value: &Value, contains: &str) {
    let text = text(value);
    assert!(
        text.starts_with('<') && text.contains(contains),
        "expected a placeholder mentioning {contains:?}, got {text:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// NaN and infinities

#[observe]
fn floats_in(values: Vec<f64>) -> usize {
    values.iter().filter(|v| !v.is_finite()).count()
}

#[observe]
fn floats_out() -> (f64, f64, f64) {
    (f64::NAN, f64::INFINITY, f64::NEG_INFINITY)
}

#[observe]
fn floats_root() -> String {
    assert_eq!(floats_in(vec![f64::NAN, f64::INFINITY, 1.5]), 2);
    let (nan, inf, neg) = floats_out();
    assert!(nan.is_nan() && inf == f64::INFINITY && neg == f64::NEG_INFINITY);
    current_trace()
}

#[test]
fn nan_and_infinities_are_recorded_as_null() {
    let test = Harness::start();
    let server = &test.server;
    let trace = floats_root();
    let observations = wait_for_trace(server, &trace, 3);
    let input = named(&observations, "floats_in");
    assert_eq!(
        input_arg(input, "values"),
        &serde_json::json!([null, null, 1.5])
    );
    assert_eq!(input.output, Some(serde_json::json!(2)));
    let output = named(&observations, "floats_out");
    assert_eq!(output.output, Some(serde_json::json!([null, null, null])));
}

// ---------------------------------------------------------------------------------------------
// maps with non-string keys

#[observe]
fn tuple_keys(map: HashMap<(u8, u8), u8>) -> HashMap<(u8, u8), u8> {
    map.into_iter().map(|((a, b), v)| ((b, a), v + 1)).collect()
}

#[observe]
fn tuple_keys_root() -> String {
    let out = tuple_keys([((1, 2), 3)].into());
    assert_eq!(out, HashMap::from([((2, 1), 4)]));
    current_trace()
}

#[test]
fn maps_with_non_string_keys_become_placeholders() {
    let test = Harness::start();
    let server = &test.server;
    let trace = tuple_keys_root();
    let observation = observed(server, &trace, "tuple_keys");
    assert_placeholder(input_arg(&observation, "map"), "unserializable");
    assert_placeholder(observation.output.as_ref().unwrap(), "unserializable");
}

#[observe]
fn int_keys(map: BTreeMap<u32, &'static str>) -> BTreeMap<u32, &'static str> {
    map
}

#[observe]
fn int_keys_root() -> String {
    assert_eq!(
        int_keys([(7, "seven")].into()),
        BTreeMap::from([(7, "seven")])
    );
    current_trace()
}

#[test]
fn maps_with_integer_keys_are_recorded_with_string_keys() {
    let test = Harness::start();
    let server = &test.server;
    let trace = int_keys_root();
    let observation = observed(server, &trace, "int_keys");
    assert_eq!(
        input_arg(&observation, "map"),
        &serde_json::json!({"7": "seven"})
    );
    assert_eq!(observation.output, Some(serde_json::json!({"7": "seven"})));
}

// ---------------------------------------------------------------------------------------------
// deep nesting

/// A recursive value; `Serialize` and `Debug` recurse once per level.
#[derive(Serialize, Debug)]
enum Nest {
    Leaf,
    Node(Box<Nest>),
}

impl Nest {
    fn deep(depth: usize) -> Nest {
        let mut nest = Nest::Leaf;
        for _ in 0..depth {
            nest = Nest::Node(Box::new(nest));
        }
        nest
    }

    fn depth(&self) -> usize {
        let mut depth = 0;
        let mut nest = self;
        while let Nest::Node(inner) = nest {
            depth += 1;
            nest = inner;
        }
        depth
    }
}

impl Drop for Nest {
    /// Iterative, so the test's own values never overflow the stack when dropped.
    fn drop(&mut self) {
        let mut next = match self {
            Nest::Node(inner) => std::mem::replace(&mut **inner, Nest::Leaf),
            Nest::Leaf => return,
        };
        while let Nest::Node(inner) = &mut next {
            next = std::mem::replace(&mut **inner, Nest::Leaf);
        }
    }
}

/// Only `Debug`: captured through its (recursive) `Debug`.
#[derive(Debug)]
struct DebugNest(#[allow(dead_code)] Nest);

/// Deep enough to overflow a 2 MiB stack if capture recursed once per level without limit:
/// serialization stops at a depth limit and `Debug` at a stack budget, so the value becomes a
/// placeholder or a cut text instead.
const DEPTH: usize = 10_000;

/// Deep enough to exercise the recursion, shallow enough for serde_json's default recursion
/// limit (128) when the server parses the record.
const SHALLOW: usize = 100;

#[observe]
fn nested_in(nest: Nest) -> usize {
    nest.depth()
}

#[observe]
fn nested_out(depth: usize) -> Nest {
    Nest::deep(depth)
}

#[observe]
fn nested_debug(nest: DebugNest) -> DebugNest {
    nest
}

#[observe]
fn nested_root(depth: usize) -> String {
    assert_eq!(nested_in(Nest::deep(depth)), depth);
    assert_eq!(nested_out(depth).depth(), depth);
    assert_eq!(nested_debug(DebugNest(Nest::deep(depth))).0.depth(), depth);
    current_trace()
}

#[test]
fn nested_values_are_recorded() {
    let test = Harness::start();
    let server = &test.server;
    let trace = nested_root(SHALLOW);
    let observations = wait_for_trace(server, &trace, 4);
    let input = named(&observations, "nested_in");
    let mut value = input_arg(input, "nest");
    let mut depth = 0;
    while let Some(inner) = value.get("Node") {
        depth += 1;
        value = inner;
    }
    assert_eq!((depth, value), (SHALLOW, &serde_json::json!("Leaf")));
    assert!(named(&observations, "nested_out").output.is_some());
    let debug = named(&observations, "nested_debug");
    assert!(text(debug.output.as_ref().unwrap()).starts_with("DebugNest(Node(Node("));
}

#[test]
fn deeply_nested_values_do_not_overflow_the_stack() {
    let test = Harness::start();
    let server = &test.server;
    let trace = nested_root(DEPTH);
    let observations = wait_for_trace(server, &trace, 4);
    for name in ["nested_in", "nested_out", "nested_debug"] {
        let observation = named(&observations, name);
        assert!(observation.input.is_some() || name == "nested_out");
        assert!(observation.output.is_some(), "{name} has an output");
    }
}

#[observe]
fn nested_json(value: Value) -> Value {
    value
}

#[observe]
fn nested_json_root() -> String {
    let mut value = Value::Null;
    for _ in 0..DEPTH {
        value = Value::Array(vec![value]);
    }
    let out = nested_json(value);
    assert!(out.is_array());
    // serde_json's `Value` drops recursively; keep it off this stack.
    std::mem::forget(out);
    current_trace()
}

#[test]
fn deeply_nested_json_values_do_not_overflow_the_stack() {
    let test = Harness::start();
    let server = &test.server;
    let trace = nested_json_root();
    let observation = observed(server, &trace, "nested_json");
    assert!(observation.input.is_some());
    assert!(observation.output.is_some());
}

// ---------------------------------------------------------------------------------------------
// a 50 MB string

const HUGE: usize = 50 * 1024 * 1024;

#[observe]
fn huge_in(text: String) -> usize {
    text.len()
}

#[observe]
fn huge_out() -> String {
    "y".repeat(HUGE)
}

#[observe]
fn huge_root() -> String {
    assert_eq!(huge_in("x".repeat(HUGE)), HUGE);
    assert_eq!(huge_out().len(), HUGE);
    current_trace()
}

#[test]
fn a_50_mb_string_is_truncated_with_a_marker() {
    let test = Harness::start();
    let server = &test.server;
    let trace = huge_root();
    let observations = wait_for_trace(server, &trace, 3);

    let input = named(&observations, "huge_in");
    let recorded = text(input.input.as_ref().unwrap());
    assert!(recorded.ends_with(TRUNCATION_MARKER), "input is marked");
    assert!(recorded.contains("xxxx") && recorded.len() < 2_000_000);
    assert_eq!(input.output, Some(serde_json::json!(HUGE)));

    let output = named(&observations, "huge_out");
    let recorded = text(output.output.as_ref().unwrap());
    assert!(recorded.ends_with(TRUNCATION_MARKER), "output is marked");
    assert!(recorded.starts_with("yyyy") && recorded.len() < 2_000_000);
}

// ---------------------------------------------------------------------------------------------
// every other field: a 5 MB error message, a 10 MB trace input, a serialized 20 MB argument

#[derive(Debug)]
struct HugeError(String);

impl std::fmt::Display for HugeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HugeError {}

#[observe]
fn huge_error() -> Result<(), HugeError> {
    Err(HugeError("e".repeat(5 * 1024 * 1024)))
}

#[observe]
fn huge_list(values: Vec<u64>) -> usize {
    values.len()
}

#[observe]
fn huge_fields_root() -> String {
    langfuse_observe::trace::update_current_trace(
        langfuse_observe::trace::TraceUpdate::new().input(&"t".repeat(10 * 1024 * 1024)),
    );
    assert!(huge_error().is_err());
    assert_eq!(huge_list(vec![u64::MAX; 1_000_000]), 1_000_000);
    current_trace()
}

#[test]
fn every_field_is_kept_within_the_per_record_limit() {
    let test = Harness::start();
    let server = &test.server;
    let trace = huge_fields_root();
    let observations = wait_for_trace(server, &trace, 3);
    let error = named(&observations, "huge_error");
    let message = error.status_message.as_deref().unwrap();
    assert!(
        message.ends_with(TRUNCATION_MARKER),
        "the message is marked"
    );
    assert!(message.len() <= 100_000, "{} bytes", message.len());
    // The argument was cut to 1 MB while it was captured; the record, which also carries the
    // trace input, was then cut to fit its limit, the input object with it.
    let list = named(&observations, "huge_list");
    let recorded = list
        .input
        .as_ref()
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(recorded.ends_with(TRUNCATION_MARKER), "the input is marked");
    assert!(recorded.len() <= 1_000_000, "{} bytes", recorded.len());
    // Every request stayed within the limits the SDK keeps to (1 MB per record, about 2.5 MB
    // per batch), although the trace input alone was ten times the record limit.
    for request in server.requests() {
        assert!(request.body_bytes < 3_000_000, "{request:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// bytes that are not UTF-8

const NOT_UTF8: &[u8] = &[0x66, 0x6f, 0xff, 0xfe, 0x6f];

/// `Debug` only, printing replacement characters.
struct Lossy(Vec<u8>);

impl std::fmt::Debug for Lossy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

#[cfg(unix)]
fn not_utf8_os() -> OsString {
    use std::os::unix::ffi::OsStringExt;
    OsString::from_vec(NOT_UTF8.to_vec())
}

#[cfg(not(unix))]
fn not_utf8_os() -> OsString {
    OsString::from("fo\u{fffd}o")
}

#[observe]
fn bytes_in(bytes: Vec<u8>, os: OsString, path: PathBuf, lossy: Lossy) -> usize {
    bytes.len() + os.len() + path.as_os_str().len() + lossy.0.len()
}

#[observe]
fn bytes_out() -> (Vec<u8>, OsString) {
    (NOT_UTF8.to_vec(), not_utf8_os())
}

#[observe]
fn path_out() -> PathBuf {
    PathBuf::from(not_utf8_os())
}

#[observe]
fn lossy_out() -> Lossy {
    Lossy(NOT_UTF8.to_vec())
}

#[observe]
fn bytes_root() -> String {
    let n = NOT_UTF8.len();
    let total = bytes_in(
        NOT_UTF8.to_vec(),
        not_utf8_os(),
        PathBuf::from(not_utf8_os()),
        Lossy(NOT_UTF8.to_vec()),
    );
    assert_eq!(total, 4 * n);
    assert_eq!(bytes_out(), (NOT_UTF8.to_vec(), not_utf8_os()));
    assert_eq!(path_out(), PathBuf::from(not_utf8_os()));
    assert_eq!(lossy_out().0, NOT_UTF8);
    current_trace()
}

#[test]
fn bytes_that_are_not_utf8_are_recorded_or_replaced() {
    let test = Harness::start();
    let server = &test.server;
    let trace = bytes_root();
    let observations = wait_for_trace(server, &trace, 5);

    let input = named(&observations, "bytes_in");
    assert_eq!(
        input_arg(input, "bytes"),
        &serde_json::json!([0x66, 0x6f, 0xff, 0xfe, 0x6f])
    );
    assert!(!input_arg(input, "os").is_null());
    #[cfg(unix)]
    assert_placeholder(input_arg(input, "path"), "unserializable");
    assert_eq!(text(input_arg(input, "lossy")), "fo\u{fffd}\u{fffd}o");

    let output = named(&observations, "bytes_out");
    assert_eq!(
        output.output.as_ref().unwrap()[0],
        serde_json::json!([0x66, 0x6f, 0xff, 0xfe, 0x6f])
    );
    #[cfg(unix)]
    assert_placeholder(
        named(&observations, "path_out").output.as_ref().unwrap(),
        "unserializable",
    );
    assert_eq!(
        named(&observations, "lossy_out").output,
        Some(serde_json::json!("fo\u{fffd}\u{fffd}o"))
    );
}

// ---------------------------------------------------------------------------------------------
// a Debug that panics, a Serialize that fails, a Serialize that panics

/// `Debug` only, and it panics.
struct PanickyDebug(u32);

impl std::fmt::Debug for PanickyDebug {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("Debug of PanickyDebug panicked on purpose")
    }
}

/// `Serialize` that returns an error.
struct FailingSerialize(u32);

impl Serialize for FailingSerialize {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("refused on purpose"))
    }
}

/// `Serialize` that panics halfway through a map.
struct PanickySerialize(u32);

impl Serialize for PanickySerialize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("first", &self.0)?;
        panic!("Serialize of PanickySerialize panicked on purpose")
    }
}

#[observe]
fn panicky_debug(value: PanickyDebug) -> PanickyDebug {
    PanickyDebug(value.0 + 1)
}

#[observe]
fn failing_serialize(value: FailingSerialize) -> FailingSerialize {
    FailingSerialize(value.0 + 1)
}

#[observe]
fn panicky_serialize(value: PanickySerialize, after: u32) -> PanickySerialize {
    PanickySerialize(value.0 + after)
}

#[observe]
fn misbehaving_root() -> String {
    assert_eq!(panicky_debug(PanickyDebug(1)).0, 2);
    assert_eq!(failing_serialize(FailingSerialize(1)).0, 2);
    assert_eq!(panicky_serialize(PanickySerialize(1), 5).0, 6);
    current_trace()
}

#[test]
fn misbehaving_debug_and_serialize_become_placeholders() {
    let test = Harness::start();
    let server = &test.server;
    let trace = misbehaving_root();
    let observations = wait_for_trace(server, &trace, 4);

    let debug = named(&observations, "panicky_debug");
    assert_placeholder(input_arg(debug, "value"), "panicked");
    assert_placeholder(debug.output.as_ref().unwrap(), "panicked");

    let failing = named(&observations, "failing_serialize");
    assert_placeholder(input_arg(failing, "value"), "refused on purpose");
    assert_placeholder(failing.output.as_ref().unwrap(), "refused on purpose");

    let panicky = named(&observations, "panicky_serialize");
    assert_placeholder(input_arg(panicky, "value"), "panicked");
    assert_eq!(
        input_arg(panicky, "after"),
        &serde_json::json!(5),
        "the arguments after a panicking one are still recorded"
    );
    assert_placeholder(panicky.output.as_ref().unwrap(), "panicked");
    assert!(observations.iter().all(|o| o.level == "DEFAULT"));
}
