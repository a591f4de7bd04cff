//! What `#[observe]` records about a call, as the Langfuse server receives it: the name (the
//! function's, or `name = ".."`), the type (`as_type`), start and end times, the input as a
//! JSON object keyed by parameter name (Serialize as JSON, else Debug text, else a placeholder
//! with the type's name; never `self`), the `skip`, `skip_all`, `capture_input` and
//! `capture_output` options, and the return value.

use std::sync::Arc;
use std::time::Duration;

use langfuse_observe::observe;
use serde::Serialize;
use serde_json::json;

use crate::support::observed::{
    assert_child_of, assert_within, current_trace, millis, named, times, trace_observations,
    Harness,
};

#[derive(Serialize, Debug, Clone)]
struct Point {
    x: i32,
    y: i32,
}

/// Not `Serialize`: captured as its `Debug` text.
#[derive(Debug)]
#[allow(dead_code)]
struct DebugOnly {
    secret_sauce: u8,
}

/// Neither `Serialize` nor `Debug`: captured as a placeholder with its type name.
struct Opaque;

// ---------------------------------------------------------------------------------------------
// name, type, times

#[observe]
fn default_name() {}

#[observe(name = "custom display name")]
fn renamed() {}

#[observe(as_type = "generation")]
fn as_generation() {}

#[observe(name = "retrieve docs", as_type = "retriever")]
async fn as_retriever() {}

#[observe(as_type = "span")]
async fn naming_root() -> String {
    default_name();
    renamed();
    as_generation();
    as_retriever().await;
    for_each_type();
    current_trace()
}

#[observe(as_type = "agent")]
fn t_agent() {}
#[observe(as_type = "tool")]
fn t_tool() {}
#[observe(as_type = "chain")]
fn t_chain() {}
#[observe(as_type = "evaluator")]
fn t_evaluator() {}
#[observe(as_type = "guardrail")]
fn t_guardrail() {}
#[observe(as_type = "embedding")]
fn t_embedding() {}

fn for_each_type() {
    t_agent();
    t_tool();
    t_chain();
    t_evaluator();
    t_guardrail();
    t_embedding();
}

#[tokio::test]
async fn name_defaults_to_the_function_and_as_type_sets_the_type() {
    let test = Harness::start();
    let server = &test.server;
    let trace = naming_root().await;
    let observations = trace_observations(server, &trace);
    assert_eq!(observations.len(), 11, "{observations:#?}");
    let root = named(&observations, "naming_root");
    assert_eq!(root.observation_type, "SPAN");
    assert_eq!(
        named(&observations, "default_name").observation_type,
        "SPAN"
    );
    assert_eq!(
        named(&observations, "custom display name").observation_type,
        "SPAN"
    );
    assert_eq!(
        named(&observations, "as_generation").observation_type,
        "GENERATION"
    );
    assert_eq!(
        named(&observations, "retrieve docs").observation_type,
        "RETRIEVER"
    );
    for (name, kind) in [
        ("t_agent", "AGENT"),
        ("t_tool", "TOOL"),
        ("t_chain", "CHAIN"),
        ("t_evaluator", "EVALUATOR"),
        ("t_guardrail", "GUARDRAIL"),
        ("t_embedding", "EMBEDDING"),
    ] {
        let observation = named(&observations, name);
        assert_eq!(observation.observation_type, kind);
        assert_child_of(observation, root);
    }
    assert!(observations
        .iter()
        .all(|o| o.name.as_deref() != Some("renamed")));
}

#[observe]
async fn timed_root() -> String {
    tokio::time::sleep(Duration::from_millis(5)).await;
    timed_child().await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    current_trace()
}

#[observe]
async fn timed_child() {
    tokio::time::sleep(Duration::from_millis(20)).await;
    timed_sync_grandchild();
}

#[observe]
fn timed_sync_grandchild() {
    std::thread::sleep(Duration::from_millis(2));
}

#[tokio::test]
async fn start_and_end_times_enclose_the_call_and_children_lie_within_parents() {
    let test = Harness::start();
    let server = &test.server;
    let before = std::time::SystemTime::now();
    let trace = timed_root().await;
    let after = std::time::SystemTime::now();
    let observations = trace_observations(server, &trace);
    let root = named(&observations, "timed_root");
    let child = named(&observations, "timed_child");
    let grandchild = named(&observations, "timed_sync_grandchild");
    let (start, end) = times(root);
    // The server keeps milliseconds, so the instants taken here are cut the same way.
    assert!(
        millis(before) <= start && end <= after,
        "the root ({start:?}..{end:?}) spans the call ({before:?}..{after:?})"
    );
    let (child_start, child_end) = times(child);
    // Observed durations are at least what the body slept (whole milliseconds survive the
    // server's cut); no upper bound is asserted.
    assert!(child_end.duration_since(child_start).unwrap() >= Duration::from_millis(20));
    assert!(end.duration_since(start).unwrap() >= Duration::from_millis(30));
    assert_within(child, root);
    assert_within(grandchild, child);
}

// ---------------------------------------------------------------------------------------------
// input

#[observe]
fn all_kinds(count: u32, label: &str, point: Point, debug: DebugOnly, opaque: Opaque) -> u32 {
    let _ = (label, point, debug, opaque);
    count
}

#[observe]
fn no_arguments() -> &'static str {
    "nothing in"
}

#[observe]
fn patterns((left, right): (u8, u8), Point { x, y }: Point, _unused: bool) -> u8 {
    let _ = (x, y);
    left + right
}

#[observe]
fn references(items: &[u32], text: &String, maybe: Option<&str>, nested: Vec<Point>) -> usize {
    let _ = (text, maybe, nested);
    items.len()
}

#[observe]
fn capture_root() -> String {
    all_kinds(
        3,
        "three",
        Point { x: 1, y: -2 },
        DebugOnly { secret_sauce: 9 },
        Opaque,
    );
    no_arguments();
    patterns((1, 2), Point { x: 5, y: 6 }, true);
    references(
        &[1, 2, 3],
        &"owned".to_owned(),
        None,
        vec![Point { x: 0, y: 0 }],
    );
    current_trace()
}

#[test]
fn input_is_an_object_keyed_by_parameter_name_with_the_best_available_form() {
    let test = Harness::start();
    let server = &test.server;
    let trace = capture_root();
    let observations = trace_observations(server, &trace);

    let all = named(&observations, "all_kinds");
    let input = all.input.as_ref().unwrap().as_object().unwrap();
    let keys: Vec<&str> = input.keys().map(String::as_str).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, ["count", "debug", "label", "opaque", "point"]);
    assert_eq!(input["count"], json!(3));
    assert_eq!(input["label"], json!("three"));
    assert_eq!(input["point"], json!({"x": 1, "y": -2}));
    assert_eq!(input["debug"], json!("DebugOnly { secret_sauce: 9 }"));
    let placeholder = input["opaque"].as_str().unwrap();
    assert!(
        placeholder.contains("Opaque") && placeholder.starts_with('<'),
        "a placeholder naming the type: {placeholder}"
    );
    assert_eq!(all.output, Some(json!(3)));

    let none = named(&observations, "no_arguments");
    assert_eq!(none.input, None, "no arguments, no input");
    assert_eq!(none.output, Some(json!("nothing in")));

    assert_eq!(
        named(&observations, "patterns").input,
        Some(json!({"left": 1, "right": 2, "x": 5, "y": 6, "_unused": true}))
    );
    assert_eq!(
        named(&observations, "references").input,
        Some(json!({
            "items": [1, 2, 3],
            "text": "owned",
            "maybe": null,
            "nested": [{"x": 0, "y": 0}],
        }))
    );
}

#[derive(Serialize)]
struct Counter {
    total: u64,
}

impl Counter {
    #[observe]
    fn by_ref(&self, step: u64) -> u64 {
        self.total + step
    }

    #[observe]
    fn by_mut(&mut self, step: u64) -> u64 {
        self.total += step;
        self.total
    }

    #[observe]
    fn by_value(self) -> u64 {
        self.total
    }

    #[observe]
    fn by_arc(self: Arc<Self>, step: u64) -> u64 {
        self.total * step
    }

    #[observe]
    async fn by_ref_async(&self, step: u64) -> u64 {
        self.total - step
    }
}

#[observe]
async fn method_root() -> String {
    let mut counter = Counter { total: 10 };
    counter.by_ref(1);
    counter.by_mut(2);
    counter.by_ref_async(3).await;
    Arc::new(Counter { total: 4 }).by_arc(5);
    counter.by_value();
    current_trace()
}

#[tokio::test]
async fn self_is_never_part_of_the_input() {
    let test = Harness::start();
    let server = &test.server;
    let trace = method_root().await;
    let observations = trace_observations(server, &trace);
    assert_eq!(
        named(&observations, "by_ref").input,
        Some(json!({"step": 1}))
    );
    assert_eq!(
        named(&observations, "by_mut").input,
        Some(json!({"step": 2}))
    );
    assert_eq!(named(&observations, "by_mut").output, Some(json!(12)));
    assert_eq!(
        named(&observations, "by_ref_async").input,
        Some(json!({"step": 3}))
    );
    assert_eq!(named(&observations, "by_ref_async").output, Some(json!(9)));
    assert_eq!(
        named(&observations, "by_arc").input,
        Some(json!({"step": 5}))
    );
    assert_eq!(named(&observations, "by_arc").output, Some(json!(20)));
    let by_value = named(&observations, "by_value");
    assert_eq!(by_value.input, None, "only `self`: no input");
    assert_eq!(by_value.output, Some(json!(12)));
}

// ---------------------------------------------------------------------------------------------
// skip, skip_all, capture_input, capture_output

#[observe(skip(password))]
fn skip_one(user: &str, password: &str) -> bool {
    !user.is_empty() && !password.is_empty()
}

#[observe(skip(a, c))]
fn skip_two(a: u8, b: u8, c: u8) -> u8 {
    a + b + c
}

#[observe(skip_all)]
fn skip_everything(user: &str, password: &str) -> String {
    format!("{user} logged in with {} characters", password.len())
}

#[observe(capture_input = false)]
fn no_input(secret: &str) -> String {
    format!("used a {}-byte secret", secret.len())
}

#[observe(capture_output = false)]
fn no_output(question: &str) -> String {
    format!("private answer to {question}")
}

#[observe(capture_input = false, capture_output = false)]
async fn nothing_captured(secret: &str) -> String {
    secret.chars().rev().collect()
}

#[observe(capture_output = false)]
fn no_output_result(ok: bool) -> Result<String, String> {
    if ok {
        Ok("private".to_owned())
    } else {
        Err("a failure is still reported".to_owned())
    }
}

#[observe]
async fn options_root() -> String {
    skip_one("ada", "hunter2");
    skip_two(1, 2, 3);
    skip_everything("ada", "hunter2");
    no_input("hunter2");
    no_output("why");
    nothing_captured("hunter2").await;
    let _ = no_output_result(true);
    let _ = no_output_result(false);
    current_trace()
}

#[tokio::test]
async fn skip_and_capture_options_leave_values_out() {
    let test = Harness::start();
    let server = &test.server;
    let trace = options_root().await;
    let observations = trace_observations(server, &trace);

    let one = named(&observations, "skip_one");
    assert_eq!(one.input, Some(json!({"user": "ada"})));
    assert_eq!(one.output, Some(json!(true)));

    assert_eq!(
        named(&observations, "skip_two").input,
        Some(json!({"b": 2}))
    );

    let everything = named(&observations, "skip_everything");
    assert_eq!(everything.input, None);
    assert_eq!(
        everything.output,
        Some(json!("ada logged in with 7 characters"))
    );

    let no_in = named(&observations, "no_input");
    assert_eq!(no_in.input, None);
    assert_eq!(no_in.output, Some(json!("used a 7-byte secret")));

    let no_out = named(&observations, "no_output");
    assert_eq!(no_out.input, Some(json!({"question": "why"})));
    assert_eq!(no_out.output, None);

    let nothing = named(&observations, "nothing_captured");
    assert_eq!((&nothing.input, &nothing.output), (&None, &None));

    let results: Vec<_> = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("no_output_result"))
        .collect();
    assert_eq!(results.len(), 2);
    for result in results {
        assert_eq!(result.output, None);
        if result.input == Some(json!({"ok": false})) {
            assert_eq!(result.level, "ERROR");
            assert_eq!(
                result.status_message.as_deref(),
                Some("a failure is still reported")
            );
        } else {
            assert_eq!(result.level, "DEFAULT");
        }
    }

    // Nothing that was left out reached the server anywhere.
    for observation in &observations {
        let text = format!("{:?} {:?}", observation.input, observation.output);
        assert!(!text.contains("hunter2"), "leaked: {text}");
        assert!(!text.contains("private"), "leaked: {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// output

#[observe]
fn returns_struct() -> Point {
    Point { x: 3, y: 4 }
}

#[observe]
fn returns_text() -> String {
    "plain words".to_owned()
}

#[observe]
fn returns_option(some: bool) -> Option<Vec<u8>> {
    some.then(|| vec![1, 2])
}

#[observe]
fn returns_debug_only() -> DebugOnly {
    DebugOnly { secret_sauce: 1 }
}

#[observe]
fn returns_opaque() -> Opaque {
    Opaque
}

#[observe]
fn returns_unit(n: u8) {
    let _ = n;
}

#[observe]
fn returns_ok() -> Result<Point, std::io::Error> {
    Ok(Point { x: 7, y: 8 })
}

#[observe]
fn returns_impl_trait() -> impl Iterator<Item = u8> {
    vec![1_u8, 2].into_iter()
}

#[observe]
async fn returns_async_map() -> std::collections::BTreeMap<String, u32> {
    [("a".to_owned(), 1), ("b".to_owned(), 2)].into()
}

#[observe]
async fn output_root() -> String {
    returns_struct();
    returns_text();
    returns_option(true);
    returns_option(false);
    returns_debug_only();
    returns_opaque();
    returns_unit(1);
    returns_ok().unwrap();
    assert_eq!(returns_impl_trait().sum::<u8>(), 3);
    returns_async_map().await;
    current_trace()
}

#[tokio::test]
async fn return_values_are_recorded_as_output() {
    let test = Harness::start();
    let server = &test.server;
    let trace = output_root().await;
    let observations = trace_observations(server, &trace);
    assert_eq!(
        named(&observations, "returns_struct").output,
        Some(json!({"x": 3, "y": 4}))
    );
    assert_eq!(
        named(&observations, "returns_text").output,
        Some(json!("plain words"))
    );
    for option in observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("returns_option"))
    {
        if option.input == Some(json!({"some": true})) {
            assert_eq!(option.output, Some(json!([1, 2])));
        } else {
            // `None` serializes as JSON null, which Langfuse treats as no output.
            assert!(
                matches!(option.output, None | Some(serde_json::Value::Null)),
                "{:?}",
                option.output
            );
        }
    }
    assert_eq!(
        named(&observations, "returns_debug_only").output,
        Some(json!("DebugOnly { secret_sauce: 1 }"))
    );
    let opaque = named(&observations, "returns_opaque")
        .output
        .clone()
        .unwrap();
    assert!(opaque.as_str().unwrap().contains("Opaque"), "{opaque}");
    assert_eq!(named(&observations, "returns_unit").output, None);
    let ok = named(&observations, "returns_ok");
    assert_eq!(ok.output, Some(json!({"x": 7, "y": 8})));
    assert_eq!(ok.level, "DEFAULT");
    assert_eq!(
        named(&observations, "returns_async_map").output,
        Some(json!({"a": 1, "b": 2}))
    );
    // `impl Trait` cannot be named, so it is captured by what it is known to be, or not at all.
    let _ = named(&observations, "returns_impl_trait");
    assert!(observations.iter().all(|o| o.level == "DEFAULT"));
}

// ---------------------------------------------------------------------------------------------
// borrowed returns, returned closures, futures whose output drives inference

#[derive(Serialize, Debug, Default)]
struct Builder {
    url: String,
}

impl Builder {
    #[observe]
    fn url(&mut self, url: &str) -> &mut Self {
        self.url = url.to_owned();
        self
    }
}

#[observe]
fn last_item(items: &mut [String]) -> Option<&mut String> {
    items.last_mut()
}

#[observe]
fn counter(extra: usize) -> impl Fn(&str) -> usize {
    move |text| text.len() + extra
}

#[observe]
fn parsed_later(
    text: &'static str,
) -> impl std::future::Future<Output = Result<u32, std::num::ParseIntError>> + Send {
    async move {
        let number = text.parse()?;
        Ok(number)
    }
}

#[observe]
async fn borrowing_root() -> String {
    let mut builder = Builder::default();
    builder.url("first").url("second");
    let mut items = vec!["a".to_owned(), "b".to_owned()];
    last_item(&mut items).unwrap().push('!');
    assert_eq!(items, ["a", "b!"]);
    assert_eq!(counter(1)("abc"), 4);
    assert_eq!(parsed_later("7").await, Ok(7));
    assert!(parsed_later("seven").await.is_err());
    current_trace()
}

#[tokio::test]
async fn borrowed_returns_closures_and_inferred_futures_record_what_they_return() {
    let test = Harness::start();
    let server = &test.server;
    let trace = borrowing_root().await;
    let observations = trace_observations(server, &trace);
    let root = named(&observations, "borrowing_root");
    // The builder returns a borrow of itself: its state after each call is the output.
    let urls: Vec<_> = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("url"))
        .map(|o| (o.input.clone().unwrap(), o.output.clone().unwrap()))
        .collect();
    assert_eq!(urls.len(), 2, "{observations:#?}");
    assert!(urls.contains(&(json!({"url": "first"}), json!({"url": "first"}))));
    assert!(urls.contains(&(json!({"url": "second"}), json!({"url": "second"}))));
    assert_eq!(named(&observations, "last_item").output, Some(json!("b")));
    // A returned closure has nothing to record; the call still ends normally, in its parent.
    let counter = named(&observations, "counter");
    assert_eq!(counter.level, "DEFAULT");
    assert_eq!(counter.output, None);
    assert_eq!(counter.input, Some(json!({"extra": 1})));
    assert_child_of(counter, root);
    let parsed: Vec<_> = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("parsed_later"))
        .collect();
    assert_eq!(parsed.len(), 2);
    assert!(parsed
        .iter()
        .any(|o| o.level == "DEFAULT" && o.output == Some(json!(7))));
    assert!(parsed.iter().any(|o| o.level == "ERROR"
        && o.status_message.as_deref() == Some("invalid digit found in string")));
}
