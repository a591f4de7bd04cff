//! How `#[observe]` records calls that fail or do not finish: `Err(e)` gives level ERROR with
//! the error's Display (Debug when it has none) as status message; a panic gives ERROR with
//! the panic message and still propagates; a future dropped before completion gives WARNING
//! with a "cancelled" status; early `return` and `?` still record their output or error. In
//! every case the caller gets exactly what the function returned.

use std::fmt;
use std::num::ParseIntError;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::Duration;

use langfuse_observe::observe;
use serde_json::json;

use crate::support::observed::{
    assert_child_of, assert_names, assert_root, current_observation, current_trace, named,
    trace_observations, wait_for_trace, Harness,
};

/// An error with `Display` (and the `Debug` every error has).
#[derive(Debug)]
struct Refused {
    code: u16,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused with code {}", self.code)
    }
}

impl std::error::Error for Refused {}

/// An error type with `Debug` only.
#[derive(Debug, PartialEq)]
enum DebugOnlyError {
    TooLarge { limit: u32 },
}

/// An error whose `Display` says nothing: the type's name stands in.
#[derive(Debug)]
struct Silent;

impl fmt::Display for Silent {
    fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Err(e)

#[observe]
fn display_error(code: u16) -> Result<u32, Refused> {
    Err(Refused { code })
}

#[observe]
fn debug_error(value: u32) -> Result<u32, DebugOnlyError> {
    if value > 10 {
        Err(DebugOnlyError::TooLarge { limit: 10 })
    } else {
        Ok(value)
    }
}

#[observe]
fn silent_error() -> Result<(), Silent> {
    Err(Silent)
}

#[observe]
fn boxed_error() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    Err("a boxed message".into())
}

#[observe]
fn io_error() -> std::io::Result<Vec<u8>> {
    std::fs::read("/this/path/does/not/exist/langfuse-observe")
}

#[observe]
async fn async_error(code: u16) -> Result<String, Refused> {
    tokio::task::yield_now().await;
    Err(Refused { code })
}

#[observe]
async fn error_root() -> String {
    assert_eq!(display_error(503).unwrap_err().code, 503);
    assert_eq!(debug_error(11), Err(DebugOnlyError::TooLarge { limit: 10 }));
    assert_eq!(debug_error(3), Ok(3));
    assert!(silent_error().is_err());
    assert_eq!(boxed_error().unwrap_err().to_string(), "a boxed message");
    assert!(io_error().is_err());
    assert_eq!(async_error(418).await.unwrap_err().code, 418);
    current_trace()
}

#[tokio::test]
async fn returned_errors_are_level_error_with_their_message() {
    let test = Harness::start();
    let server = &test.server;
    let trace = error_root().await;
    let observations = trace_observations(server, &trace);
    assert_eq!(observations.len(), 8, "{observations:#?}");

    let expect_error = |name: &str, message: &str| {
        let observation = named(&observations, name);
        assert_eq!(observation.level, "ERROR", "{name}");
        assert_eq!(
            observation.status_message.as_deref(),
            Some(message),
            "{name}"
        );
        assert_eq!(
            observation.output, None,
            "{name}: an error is not an output"
        );
    };
    expect_error("display_error", "refused with code 503");
    expect_error("boxed_error", "a boxed message");
    expect_error("async_error", "refused with code 418");

    let debug = observations
        .iter()
        .find(|o| o.name.as_deref() == Some("debug_error") && o.level == "ERROR")
        .unwrap();
    assert_eq!(
        debug.status_message.as_deref(),
        Some("TooLarge { limit: 10 }")
    );
    let fine = observations
        .iter()
        .find(|o| o.name.as_deref() == Some("debug_error") && o.level != "ERROR")
        .unwrap();
    assert_eq!(fine.level, "DEFAULT");
    assert_eq!(fine.output, Some(json!(3)));
    assert_eq!(fine.status_message, None);

    let silent = named(&observations, "silent_error");
    assert_eq!(silent.level, "ERROR");
    assert!(
        silent.status_message.as_deref().unwrap().contains("Silent"),
        "an empty message is replaced by the type's name: {:?}",
        silent.status_message
    );
    let io = named(&observations, "io_error");
    assert_eq!(io.level, "ERROR");
    assert!(!io.status_message.as_deref().unwrap().is_empty());

    // The caller handled every error: the root itself did not fail.
    assert_eq!(named(&observations, "error_root").level, "DEFAULT");
}

// ---------------------------------------------------------------------------------------------
// early return and ?

#[observe]
fn early_return(n: u32) -> &'static str {
    if n > 5 {
        return "big";
    }
    "small"
}

#[observe]
fn question_mark(text: &str) -> Result<u32, ParseIntError> {
    let value: u32 = text.trim().parse()?;
    Ok(value * 2)
}

#[observe]
fn question_mark_option(values: &[u32]) -> Option<u32> {
    let first = values.first()?;
    Some(first + 1)
}

#[observe]
fn question_mark_converts(text: &str) -> Result<u32, Box<dyn std::error::Error>> {
    let value: u32 = text.parse()?;
    if value == 0 {
        return Err("zero is not allowed".into());
    }
    Ok(value)
}

#[observe]
#[track_caller]
fn track_caller_question(text: &str) -> Result<u32, ParseIntError> {
    if text.is_empty() {
        return Ok(0);
    }
    let value: u32 = text.parse()?;
    Ok(value + 1)
}

#[observe]
async fn async_early_exits(text: &'static str) -> Result<u32, ParseIntError> {
    tokio::task::yield_now().await;
    if text == "none" {
        return Ok(0);
    }
    let value: u32 = text.parse()?;
    tokio::task::yield_now().await;
    Ok(value + 100)
}

#[observe]
async fn exits_root() -> String {
    assert_eq!(early_return(9), "big");
    assert_eq!(early_return(1), "small");
    assert_eq!(question_mark(" 21 "), Ok(42));
    assert!(question_mark("x").is_err());
    assert_eq!(question_mark_option(&[]), None);
    assert_eq!(question_mark_option(&[4]), Some(5));
    assert!(question_mark_converts("y").is_err());
    assert_eq!(
        question_mark_converts("0").unwrap_err().to_string(),
        "zero is not allowed"
    );
    assert_eq!(question_mark_converts("8").unwrap(), 8);
    assert_eq!(track_caller_question(""), Ok(0));
    assert_eq!(track_caller_question("4"), Ok(5));
    assert!(track_caller_question("z").is_err());
    assert_eq!(async_early_exits("none").await, Ok(0));
    assert_eq!(async_early_exits("2").await, Ok(102));
    assert!(async_early_exits("q").await.is_err());
    current_trace()
}

#[tokio::test]
async fn early_return_and_question_mark_record_output_or_error() {
    let test = Harness::start();
    let server = &test.server;
    let trace = exits_root().await;
    let observations = trace_observations(server, &trace);
    let call = |name: &str, input: serde_json::Value| {
        observations
            .iter()
            .find(|o| o.name.as_deref() == Some(name) && o.input.as_ref() == Some(&input))
            .unwrap_or_else(|| panic!("no {name}({input}) in {observations:#?}"))
    };
    let ok = |name: &str, input: serde_json::Value, output: serde_json::Value| {
        let observation = call(name, input);
        assert_eq!(observation.level, "DEFAULT", "{name}");
        assert_eq!(observation.output, Some(output), "{name}");
    };
    let failed = |name: &str, input: serde_json::Value, message: &str| {
        let observation = call(name, input);
        assert_eq!(observation.level, "ERROR", "{name}");
        assert_eq!(
            observation.status_message.as_deref(),
            Some(message),
            "{name}"
        );
    };
    const INVALID: &str = "invalid digit found in string";

    ok("early_return", json!({"n": 9}), json!("big"));
    ok("early_return", json!({"n": 1}), json!("small"));
    ok("question_mark", json!({"text": " 21 "}), json!(42));
    failed("question_mark", json!({"text": "x"}), INVALID);
    ok("question_mark_option", json!({"values": [4]}), json!(5));
    let none = call("question_mark_option", json!({"values": []}));
    assert_eq!(none.level, "DEFAULT", "None is a value, not an error");
    failed("question_mark_converts", json!({"text": "y"}), INVALID);
    failed(
        "question_mark_converts",
        json!({"text": "0"}),
        "zero is not allowed",
    );
    ok("question_mark_converts", json!({"text": "8"}), json!(8));
    ok("track_caller_question", json!({"text": ""}), json!(0));
    ok("track_caller_question", json!({"text": "4"}), json!(5));
    failed("track_caller_question", json!({"text": "z"}), INVALID);
    ok("async_early_exits", json!({"text": "none"}), json!(0));
    ok("async_early_exits", json!({"text": "2"}), json!(102));
    failed("async_early_exits", json!({"text": "q"}), INVALID);
}

// ---------------------------------------------------------------------------------------------
// panics

/// Where a panicking call reports its trace before it panics.
type Slot = Mutex<Option<(String, String)>>;

fn remember(slot: &Slot) {
    *slot.lock().unwrap() = Some((current_trace(), current_observation()));
}

fn take(slot: &Slot) -> (String, String) {
    slot.lock()
        .unwrap()
        .take()
        .expect("the call reported its trace")
}

/// The payload of a caught panic as text.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

#[observe(skip(slot))]
fn panics_at_root(slot: &Slot, code: u32) -> u32 {
    remember(slot);
    if code > 0 {
        panic!("boom number {code}");
    }
    code
}

#[test]
fn a_panic_is_recorded_as_error_and_still_propagates() {
    let test = Harness::start();
    let server = &test.server;
    let slot = Slot::default();
    let caught = catch_unwind(AssertUnwindSafe(|| panics_at_root(&slot, 7)));
    let payload = caught.expect_err("the panic propagates to the caller");
    assert_eq!(panic_text(&*payload), "boom number 7");

    let (trace, id) = take(&slot);
    // The outermost call flushed before the panic went on.
    let observations = trace_observations(server, &trace);
    assert_eq!(observations.len(), 1, "{observations:#?}");
    let observation = &observations[0];
    assert_eq!(observation.id, id);
    assert_eq!(observation.level, "ERROR");
    let message = observation.status_message.as_deref().unwrap();
    assert!(message.contains("boom number 7"), "{message}");
    assert_eq!(observation.input, Some(json!({"code": 7})));
    assert_eq!(observation.output, None);
    assert!(observation.end_time.is_some());
}

#[observe(skip(slot))]
fn outer_of_panic(slot: &Slot) -> u32 {
    remember(slot);
    before_panic();
    inner_panic("deep failure") + 1
}

#[observe]
fn before_panic() -> &'static str {
    "fine"
}

#[observe]
fn inner_panic(reason: &str) -> u32 {
    panic!("{reason} in inner_panic")
}

#[test]
fn a_nested_panic_marks_every_call_it_unwinds_through() {
    let test = Harness::start();
    let server = &test.server;
    let slot = Slot::default();
    let payload = catch_unwind(AssertUnwindSafe(|| outer_of_panic(&slot))).unwrap_err();
    assert_eq!(panic_text(&*payload), "deep failure in inner_panic");

    let (trace, _) = take(&slot);
    let observations = trace_observations(server, &trace);
    assert_names(
        &observations,
        &["outer_of_panic", "before_panic", "inner_panic"],
    );
    let outer = named(&observations, "outer_of_panic");
    let inner = named(&observations, "inner_panic");
    assert_child_of(inner, outer);
    assert_eq!(named(&observations, "before_panic").level, "DEFAULT");
    for observation in [outer, inner] {
        assert_eq!(observation.level, "ERROR", "{:?}", observation.name);
        let message = observation.status_message.as_deref().unwrap();
        assert!(message.contains("deep failure in inner_panic"), "{message}");
    }
}

#[observe]
fn catches_child_panic() -> String {
    let caught = catch_unwind(|| inner_panic("caught"));
    assert!(caught.is_err());
    // The context was restored after the unwind: this is still a child of the root.
    before_panic();
    current_trace()
}

#[test]
fn a_panic_caught_inside_the_parent_leaves_the_parent_intact() {
    let test = Harness::start();
    let server = &test.server;
    let trace = catches_child_panic();
    let observations = trace_observations(server, &trace);
    let root = named(&observations, "catches_child_panic");
    let inner = named(&observations, "inner_panic");
    let after = named(&observations, "before_panic");
    assert_eq!(root.level, "DEFAULT");
    assert_eq!(inner.level, "ERROR");
    assert_child_of(inner, root);
    assert_child_of(after, root);
}

#[observe(skip(slot))]
async fn async_panics(slot: &'static Slot) -> u32 {
    remember(slot);
    tokio::task::yield_now().await;
    async_inner_panic().await
}

#[observe]
async fn async_inner_panic() -> u32 {
    tokio::task::yield_now().await;
    panic!("async boom")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_panic_is_recorded_as_error_and_reaches_the_join_handle() {
    static SLOT: Slot = Mutex::new(None);
    let test = Harness::start();
    let server = &test.server;
    let error = tokio::spawn(test.client.scope(async_panics(&SLOT)))
        .await
        .unwrap_err();
    assert!(error.is_panic());
    assert_eq!(panic_text(&*error.into_panic()), "async boom");

    let (trace, _) = take(&SLOT);
    let observations = wait_for_trace(server, &trace, 2);
    let outer = named(&observations, "async_panics");
    let inner = named(&observations, "async_inner_panic");
    assert_child_of(inner, outer);
    for observation in [outer, inner] {
        assert_eq!(observation.level, "ERROR", "{:?}", observation.name);
        let message = observation.status_message.as_deref().unwrap();
        assert!(message.contains("async boom"), "{message}");
    }
}

// ---------------------------------------------------------------------------------------------
// cancellation

#[observe(skip(slot))]
async fn never_finishes(slot: &Slot) -> u32 {
    remember(slot);
    waits_forever().await
}

#[observe]
async fn waits_forever() -> u32 {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    0
}

#[tokio::test]
async fn a_future_dropped_by_timeout_is_recorded_as_cancelled() {
    let test = Harness::start();
    let server = &test.server;
    let slot = Slot::default();
    let result = tokio::time::timeout(Duration::from_millis(20), never_finishes(&slot)).await;
    assert!(result.is_err(), "timed out");

    let (trace, id) = take(&slot);
    // A dropped outermost call cannot flush (a drop must not block); the interval delivers.
    let observations = wait_for_trace(server, &trace, 2);
    let outer = named(&observations, "never_finishes");
    let inner = named(&observations, "waits_forever");
    assert_eq!(outer.id, id);
    assert_root(outer);
    assert_child_of(inner, outer);
    for observation in [outer, inner] {
        assert_eq!(observation.level, "WARNING", "{:?}", observation.name);
        let message = observation.status_message.as_deref().unwrap();
        assert!(message.contains("cancelled"), "{message}");
        assert_eq!(observation.output, None);
        assert!(observation.end_time.is_some());
    }
}

#[observe]
async fn select_loser() -> u32 {
    tokio::time::sleep(Duration::from_secs(3600)).await;
    1
}

#[observe]
async fn select_winner() -> u32 {
    2
}

#[observe]
async fn times_out_a_child() -> String {
    let timed_out = tokio::time::timeout(Duration::from_millis(5), waits_forever()).await;
    assert!(timed_out.is_err());
    // `biased`: the loser is polled first, so its call starts (an unpolled one never does).
    let winner = tokio::select! {
        biased;
        v = select_loser() => v,
        v = select_winner() => v,
    };
    assert_eq!(winner, 2);
    current_trace()
}

#[tokio::test]
async fn a_cancelled_child_is_a_warning_and_its_parent_is_unaffected() {
    let test = Harness::start();
    let server = &test.server;
    let trace = times_out_a_child().await;
    // The cancelled children ended before their parent, whose end flushed them all.
    let observations = trace_observations(server, &trace);
    assert_names(
        &observations,
        &[
            "times_out_a_child",
            "waits_forever",
            "select_loser",
            "select_winner",
        ],
    );
    let root = named(&observations, "times_out_a_child");
    assert_eq!(root.level, "DEFAULT");
    for name in ["waits_forever", "select_loser"] {
        let child = named(&observations, name);
        assert_child_of(child, root);
        assert_eq!(child.level, "WARNING", "{name}");
        assert!(child
            .status_message
            .as_deref()
            .unwrap()
            .contains("cancelled"));
    }
    let winner = named(&observations, "select_winner");
    assert_eq!(winner.level, "DEFAULT");
    assert_eq!(winner.output, Some(json!(2)));
}

// ---------------------------------------------------------------------------------------------
// how an observation ended, strongest first: panic, error, cancellation

/// Returns a future (no `async fn`) that panics when polled.
#[observe]
fn panicking_future() -> impl std::future::Future<Output = String> {
    async {
        let trace = current_trace();
        if !trace.is_empty() {
            panic!("the returned future failed");
        }
        trace
    }
}

#[observe]
async fn catches_the_panic() -> String {
    use futures_util::FutureExt as _;
    let trace = current_trace();
    let caught = AssertUnwindSafe(panicking_future()).catch_unwind().await;
    assert!(caught.is_err());
    trace
}

/// The panic is caught, and the future dropped afterwards, when nothing is unwinding any more:
/// the panic, recorded while it unwound, stands, rather than the drop turning it into a
/// cancellation.
#[tokio::test]
async fn a_panic_caught_before_the_future_is_dropped_stays_an_error() {
    let test = Harness::start();
    let server = &test.server;
    let trace = catches_the_panic().await;
    let observations = wait_for_trace(server, &trace, 2);
    let failed = named(&observations, "panicking_future");
    assert_eq!(failed.level, "ERROR");
    assert_eq!(
        failed.status_message.as_deref(),
        Some("panicked: the returned future failed")
    );
}

#[observe]
async fn pending_child() {
    std::future::pending::<()>().await;
}

#[observe]
async fn cancelled_parent(report: std::sync::mpsc::Sender<String>) {
    report.send(current_trace()).unwrap();
    pending_child().await;
}

/// A future dropped before it completes ends the observations inside it first, as they
/// would have ended had it run to completion: children are sent before their parent.
#[tokio::test]
async fn a_cancelled_parent_ends_after_its_children() {
    let test = Harness::start();
    let server = &test.server;
    let (report, traces) = std::sync::mpsc::channel();
    let cancelled = tokio::time::timeout(Duration::from_millis(50), cancelled_parent(report)).await;
    assert!(cancelled.is_err());
    let trace = traces.recv().unwrap();
    let observations = wait_for_trace(server, &trace, 2);
    let parent = named(&observations, "cancelled_parent");
    let child = named(&observations, "pending_child");
    for observation in [parent, child] {
        assert_eq!(observation.level, "WARNING");
    }
    let sent: Vec<String> = server
        .requests()
        .into_iter()
        .flat_map(|request| request.span_ids)
        .collect();
    let position = |id: &str| sent.iter().position(|sent| sent == id).unwrap();
    assert!(position(&child.id) < position(&parent.id), "{sent:?}");
    assert!(child.end_time <= parent.end_time);
}

// ---------------------------------------------------------------------------------------------
// a `Result` behind an alias

type ApiResult<T> = Result<T, Refused>;

#[observe]
fn aliased(fail: bool) -> ApiResult<u16> {
    if fail {
        Err(Refused { code: 503 })
    } else {
        Ok(200)
    }
}

#[observe]
fn aliased_root() -> String {
    assert!(aliased(true).is_err());
    assert_eq!(aliased(false).unwrap(), 200);
    current_trace()
}

/// `Err` is ERROR whatever the `Result` is called: the value decides, not the spelling.
#[test]
fn an_err_behind_a_result_alias_is_an_error() {
    let test = Harness::start();
    let server = &test.server;
    let trace = aliased_root();
    let observations = wait_for_trace(server, &trace, 3);
    let calls: Vec<_> = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("aliased"))
        .collect();
    assert_eq!(calls.len(), 2);
    let failed = calls.iter().find(|o| o.level == "ERROR").unwrap();
    assert_eq!(
        failed.status_message.as_deref(),
        Some("refused with code 503")
    );
    let succeeded = calls.iter().find(|o| o.level == "DEFAULT").unwrap();
    assert_eq!(succeeded.output, Some(json!(200)), "Ok records its value");
}
