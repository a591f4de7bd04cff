//! Functions returning a stream or an iterator: the observation stays open until the value is
//! exhausted (normal end) or dropped (DEFAULT, "the consumer stopped after N items"), nests what the
//! stream's body calls while the consumer polls, never what the consumer calls between polls,
//! and records the items as output (joined text, else a JSON array, else a transform's
//! result). Checked against the loopback server; the wrappers' own behaviour (size hints,
//! fused-ness, `Unpin`, `Send`) with plain asserts.

use std::borrow::Cow;
use std::fmt;
use std::iter::FusedIterator;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, SystemTime};

use futures_core::stream::FusedStream;
use futures_util::stream::{self, BoxStream, Stream, StreamExt as _};
use langfuse_observe::observe;
use langfuse_observe_core::capture::TRUNCATION_MARKER;
use serde_json::{json, Value};

use crate::support::observed::{
    assert_child_of, assert_names, assert_root, assert_within, current_observation, current_trace,
    millis, named, times, trace_observations, wait_for_trace, Harness,
};
use crate::support::process::{assert_child_passes, is_child};

/// Asserts the observation ended normally: no warning, no error.
#[track_caller]
fn assert_default_level(observation: &langfuse_observe_testing::StoredObservation) {
    assert_eq!(
        observation.level, "DEFAULT",
        "{:?}: {:?}",
        observation.name, observation.status_message
    );
    assert_eq!(observation.status_message, None, "{:?}", observation.name);
}

/// Asserts the consumer stopped reading after `read` items: a normal way to read (`find`,
/// `take(n)`, a `[DONE]` marker), said in the status message, not flagged as a problem.
#[track_caller]
fn assert_stopped_after(observation: &langfuse_observe_testing::StoredObservation, read: usize) {
    assert_eq!(observation.level, "DEFAULT", "{:?}", observation.name);
    let status = observation.status_message.as_deref().unwrap_or_default();
    let items = if read == 1 { "item" } else { "items" };
    assert_eq!(
        status,
        format!("the consumer stopped after {read} {items}"),
        "{:?}",
        observation.name
    );
}

// ---------------------------------------------------------------------------------------------
// A sync iterator of strings, as the outermost observation

/// Hands its trace id back through `trace`, since the items are the output under test.
#[observe(as_type = "chain", skip(trace))]
fn spell(word: &str, trace: &mut Option<String>) -> impl Iterator<Item = String> {
    *trace = Some(current_trace());
    word.chars()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .into_iter()
}

#[test]
fn a_sync_iterator_of_strings_is_one_observation_ending_after_its_last_item() {
    let test = Harness::start();
    let server = &test.server;
    let mut trace = None;
    let called = SystemTime::now();
    let mut letters = spell("hey", &mut trace);
    let trace = trace.unwrap();
    let mut seen = Vec::new();
    let mut last_consumed = called;
    for letter in letters.by_ref() {
        last_consumed = SystemTime::now();
        seen.push(letter);
        // The observation is still open while items keep coming.
        assert!(trace_observations(server, &trace).is_empty());
    }
    assert_eq!(seen, ["h", "e", "y"]);
    // The outermost observation ended at exhaustion and flushed then: no waiting, no flush.
    let observations = trace_observations(server, &trace);
    assert_names(&observations, &["spell"]);
    let spelled = named(&observations, "spell");
    assert_root(spelled);
    assert_eq!(spelled.observation_type, "CHAIN");
    assert_eq!(spelled.input, Some(json!({ "word": "hey" })));
    assert_eq!(spelled.output, Some(json!("hey")));
    assert_default_level(spelled);
    let (start, end) = times(spelled);
    // The server keeps milliseconds, so the instants taken here are cut the same way.
    assert!(start >= millis(called), "started at the call");
    assert!(
        end >= millis(last_consumed),
        "ended at {end:?}, before the last item was consumed at {last_consumed:?}"
    );
    assert_eq!(spelled.completion_start_time, None, "only generations");
    // Exhausted, it stays exhausted.
    assert_eq!(letters.next(), None);
    assert_eq!(trace_observations(server, &trace).len(), 1);
}

/// Borrowed and `Cow` text items are joined too.
#[observe]
fn fields<'a>(line: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    line.split(',')
}

#[observe]
fn cows(words: Vec<String>) -> impl Iterator<Item = Cow<'static, str>> {
    words.into_iter().enumerate().map(|(i, w)| {
        if i % 2 == 0 {
            Cow::Borrowed("-")
        } else {
            Cow::Owned(w)
        }
    })
}

#[observe]
fn text_consumer() -> String {
    assert_eq!(fields("a,b,c").collect::<Vec<_>>(), ["a", "b", "c"]);
    let joined: String = cows(vec!["x".into(), "y".into(), "z".into(), "w".into()]).collect();
    assert_eq!(joined, "-y-w");
    current_trace()
}

#[test]
fn borrowed_and_cow_text_items_are_joined() {
    let test = Harness::start();
    let server = &test.server;
    let trace = text_consumer();
    let observations = trace_observations(server, &trace);
    assert_names(&observations, &["text_consumer", "fields", "cows"]);
    let consumer = named(&observations, "text_consumer");
    for name in ["fields", "cows"] {
        let sequence = named(&observations, name);
        assert_child_of(sequence, consumer);
        assert_within(sequence, consumer);
        assert_default_level(sequence);
    }
    assert_eq!(named(&observations, "fields").output, Some(json!("abc")));
    assert_eq!(named(&observations, "cows").output, Some(json!("-y-w")));
}

// ---------------------------------------------------------------------------------------------
// Streams and boxed sequences of non-text items: the JSON array

#[observe]
async fn numbers_async(n: u32) -> impl Stream<Item = u32> {
    tokio::task::yield_now().await;
    stream::iter(0..n)
}

#[observe]
fn numbers_sync(n: u32) -> impl Stream<Item = u32> {
    stream::iter(0..n)
}

#[observe]
fn numbers_pinned(n: u32) -> Pin<Box<dyn Stream<Item = u32> + Send>> {
    Box::pin(stream::iter(0..n))
}

#[observe]
async fn numbers_pinned_async(n: u32) -> Pin<Box<dyn Stream<Item = u32> + Send>> {
    tokio::task::yield_now().await;
    Box::pin(stream::iter(0..n))
}

#[observe]
fn numbers_box_stream(n: u32) -> BoxStream<'static, u32> {
    stream::iter(0..n).boxed()
}

#[observe]
fn numbers_boxed_iter(n: u32) -> Box<dyn Iterator<Item = u32>> {
    Box::new(0..n)
}

#[observe]
async fn numbers_iter_async(n: u32) -> impl Iterator<Item = u32> {
    tokio::task::yield_now().await;
    0..n
}

#[observe]
async fn number_consumer() -> String {
    assert_eq!(numbers_async(3).await.collect::<Vec<_>>().await, [0, 1, 2]);
    assert_eq!(numbers_sync(3).collect::<Vec<_>>().await, [0, 1, 2]);
    assert_eq!(numbers_pinned(3).collect::<Vec<_>>().await, [0, 1, 2]);
    assert_eq!(
        numbers_pinned_async(3).await.collect::<Vec<_>>().await,
        [0, 1, 2]
    );
    assert_eq!(numbers_box_stream(3).collect::<Vec<_>>().await, [0, 1, 2]);
    assert_eq!(numbers_boxed_iter(3).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(numbers_iter_async(3).await.collect::<Vec<_>>(), [0, 1, 2]);
    current_trace()
}

const NUMBER_SHAPES: [&str; 7] = [
    "numbers_async",
    "numbers_sync",
    "numbers_pinned",
    "numbers_pinned_async",
    "numbers_box_stream",
    "numbers_boxed_iter",
    "numbers_iter_async",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_and_boxed_sequences_of_numbers_record_the_json_array() {
    let test = Harness::start();
    let server = &test.server;
    let trace = number_consumer().await;
    let observations = trace_observations(server, &trace);
    let mut expected = NUMBER_SHAPES.to_vec();
    expected.push("number_consumer");
    assert_names(&observations, &expected);
    let consumer = named(&observations, "number_consumer");
    assert_root(consumer);
    for name in NUMBER_SHAPES {
        let numbers = named(&observations, name);
        assert_child_of(numbers, consumer);
        assert_within(numbers, consumer);
        assert_eq!(numbers.input, Some(json!({ "n": 3 })), "{name}");
        assert_eq!(numbers.output, Some(json!([0, 1, 2])), "{name}");
        assert_eq!(numbers.observation_type, "SPAN", "{name}");
        assert_default_level(numbers);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_empty_stream_ends_at_once_with_no_items() {
    let test = Harness::start();
    let server = &test.server;
    let trace = async {
        #[observe]
        async fn empty_consumer() -> String {
            assert_eq!(numbers_sync(0).count().await, 0);
            current_trace()
        }
        empty_consumer().await
    }
    .await;
    let observations = trace_observations(server, &trace);
    let numbers = named(&observations, "numbers_sync");
    assert_default_level(numbers);
    // Nothing came out: an empty array, or no output at all, never an invented value.
    assert!(
        numbers.output.is_none() || numbers.output == Some(json!([])),
        "{:?}",
        numbers.output
    );
}

/// Neither text nor `Serialize`: each item is recorded through `Debug`.
#[derive(Debug)]
struct Opaque {
    n: u32,
}

#[observe]
fn opaque_items(n: u32) -> impl Iterator<Item = Opaque> {
    (0..n).map(|n| Opaque { n })
}

#[observe]
fn opaque_consumer() -> String {
    assert_eq!(opaque_items(2).map(|o| o.n).sum::<u32>(), 1);
    current_trace()
}

/// Only string items are joined: items recorded through `Debug` are not strings, and joining
/// them would run their texts together.
#[test]
fn items_without_serialize_form_an_array_of_their_debug_texts() {
    let test = Harness::start();
    let server = &test.server;
    let trace = opaque_consumer();
    let observations = trace_observations(server, &trace);
    assert_eq!(
        named(&observations, "opaque_items").output,
        Some(json!(["Opaque { n: 0 }", "Opaque { n: 1 }"]))
    );
}

#[observe]
fn many_numbers(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

#[observe]
fn long_text(pieces: usize, size: usize) -> impl Stream<Item = String> {
    stream::iter(
        (0..pieces).map(move |i| char::from(b'a' + (i % 26) as u8).to_string().repeat(size)),
    )
}

#[observe]
async fn bounded_consumer() -> String {
    assert_eq!(many_numbers(10_003).count(), 10_003);
    assert_eq!(long_text(600, 1024).count().await, 600);
    current_trace()
}

/// The output keeps at most 10,000 items and 512 KiB of them; the rest is counted in a
/// visible marker. The consumer still gets every item.
#[tokio::test(flavor = "current_thread")]
async fn the_recorded_items_are_bounded_with_a_visible_marker() {
    let test = Harness::start();
    let server = &test.server;
    let trace = bounded_consumer().await;
    let observations = trace_observations(server, &trace);
    let numbers = named(&observations, "many_numbers");
    assert_default_level(numbers);
    let items = numbers.output.as_ref().and_then(Value::as_array).unwrap();
    assert_eq!(items.len(), 10_001);
    assert_eq!(items[9_999], json!(9_999));
    assert_eq!(
        items[10_000],
        json!(format!("{TRUNCATION_MARKER} 3 more items"))
    );

    let text = named(&observations, "long_text");
    assert_default_level(text);
    let text = text.output.as_ref().and_then(Value::as_str).unwrap();
    let kept = 512 * 1024;
    assert_eq!(&text[kept..], format!("{TRUNCATION_MARKER} 88 more items"));
    assert!(text[..kept].starts_with(&"a".repeat(1024)));
}

// ---------------------------------------------------------------------------------------------
// The outermost stream flushes when it is exhausted

#[observe(skip(trace))]
async fn root_stream(n: u32, trace: &mut Option<String>) -> impl Stream<Item = u32> {
    *trace = Some(current_trace());
    stream::iter(0..n)
}

#[tokio::test(flavor = "current_thread")]
async fn an_outermost_stream_flushes_when_it_is_exhausted() {
    let test = Harness::start();
    let server = &test.server;
    let mut trace = None;
    let numbers = root_stream(4, &mut trace).await;
    let trace = trace.unwrap();
    assert_eq!(numbers.collect::<Vec<_>>().await, [0, 1, 2, 3]);
    // No explicit flush and no waiting: the end of the outermost observation flushed.
    let observations = trace_observations(server, &trace);
    assert_names(&observations, &["root_stream"]);
    let root = named(&observations, "root_stream");
    assert_root(root);
    assert_eq!(root.input, Some(json!({ "n": 4 })));
    assert_eq!(root.output, Some(json!([0, 1, 2, 3])));
    assert_default_level(root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outermost_stream_consumed_on_another_task_flushes_there() {
    let test = Harness::start();
    let server = &test.server;
    let mut trace = None;
    let numbers = root_stream(2, &mut trace).await;
    let trace = trace.unwrap();
    let items = tokio::spawn(numbers.collect::<Vec<_>>()).await.unwrap();
    assert_eq!(items, [0, 1]);
    let observations = trace_observations(server, &trace);
    assert_eq!(
        named(&observations, "root_stream").output,
        Some(json!([0, 1]))
    );
}

// ---------------------------------------------------------------------------------------------
// Err items

/// An error with a `Display` that differs from its `Debug`.
#[derive(Debug)]
struct Overloaded {
    retry_after: u32,
}

impl fmt::Display for Overloaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "model overloaded, retry after {}s", self.retry_after)
    }
}

#[observe]
fn answer_stream() -> impl Stream<Item = Result<String, Overloaded>> {
    stream::iter(vec![
        Ok("Hel".to_owned()),
        Err(Overloaded { retry_after: 3 }),
        Ok("lo".to_owned()),
    ])
}

#[observe]
fn answer_iter() -> impl Iterator<Item = Result<u32, Overloaded>> {
    vec![Ok(1), Ok(2), Err(Overloaded { retry_after: 5 }), Ok(4)].into_iter()
}

#[observe]
async fn error_consumer() -> String {
    let items: Vec<_> = answer_stream().collect().await;
    assert_eq!(items.len(), 3);
    assert!(items[1].is_err());
    let items: Vec<_> = answer_iter().collect();
    assert_eq!(items.len(), 4);
    current_trace()
}

#[tokio::test(flavor = "current_thread")]
async fn an_err_item_makes_the_observation_an_error_and_the_other_items_stay() {
    let test = Harness::start();
    let server = &test.server;
    let trace = error_consumer().await;
    let observations = trace_observations(server, &trace);
    assert_names(
        &observations,
        &["error_consumer", "answer_stream", "answer_iter"],
    );
    let consumer = named(&observations, "error_consumer");
    assert_default_level(consumer);

    let streamed = named(&observations, "answer_stream");
    assert_child_of(streamed, consumer);
    assert_eq!(streamed.level, "ERROR");
    assert_eq!(
        streamed.status_message.as_deref(),
        Some("model overloaded, retry after 3s")
    );
    assert_eq!(streamed.output, Some(json!("Hello")));

    let iterated = named(&observations, "answer_iter");
    assert_child_of(iterated, consumer);
    assert_eq!(iterated.level, "ERROR");
    assert_eq!(
        iterated.status_message.as_deref(),
        Some("model overloaded, retry after 5s")
    );
    assert_eq!(iterated.output, Some(json!([1, 2, 4])));
    times(iterated);
}

// ---------------------------------------------------------------------------------------------
// Connect, then stream: a sequence inside a `Result` or an `Option`

#[observe]
async fn connect_stream(n: u32) -> Result<impl Stream<Item = u32>, Overloaded> {
    if n == 0 {
        return Err(Overloaded { retry_after: 7 });
    }
    Ok(stream::iter(0..n).then(|i| async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        i
    }))
}

#[observe]
fn connect_words(text: &str) -> std::io::Result<impl Iterator<Item = String>> {
    if text.is_empty() {
        Err(std::io::Error::other("nothing to read"))?;
    }
    let words: Vec<String> = text.split(' ').map(str::to_owned).collect();
    Ok(words.into_iter())
}

#[observe]
fn maybe_words(text: &str) -> Option<impl Iterator<Item = String>> {
    (!text.is_empty()).then(|| {
        text.split(' ')
            .map(str::to_owned)
            .collect::<Vec<_>>()
            .into_iter()
    })
}

#[observe]
async fn connect_consumer() -> String {
    let numbers: Vec<u32> = connect_stream(3).await.unwrap().collect().await;
    assert_eq!(numbers, [0, 1, 2]);
    assert!(connect_stream(0).await.is_err());
    assert_eq!(connect_words("a b").unwrap().count(), 2);
    assert!(connect_words("").is_err());
    assert_eq!(maybe_words("x y").unwrap().count(), 2);
    assert!(maybe_words("").is_none());
    current_trace()
}

#[tokio::test(flavor = "current_thread")]
async fn a_sequence_inside_a_result_or_option_is_observed_as_the_sequence() {
    let test = Harness::start();
    let server = &test.server;
    let trace = connect_consumer().await;
    let observations = trace_observations(server, &trace);
    let consumer = named(&observations, "connect_consumer");
    let by_level = |name: &str, level: &str| {
        observations
            .iter()
            .find(|o| o.name.as_deref() == Some(name) && o.level == level)
            .unwrap_or_else(|| panic!("no {level} {name} in {observations:#?}"))
    };

    // `Ok`: open until the stream is exhausted, with the items as output.
    let streamed = by_level("connect_stream", "DEFAULT");
    assert_child_of(streamed, consumer);
    assert_eq!(streamed.output, Some(json!([0, 1, 2])));
    let (start, end) = times(streamed);
    assert!(
        end.duration_since(start).unwrap() >= Duration::from_millis(15),
        "ended before its three 5 ms items were read: {start:?}..{end:?}"
    );
    // `Err`: the call's error, nothing to stream.
    let refused = by_level("connect_stream", "ERROR");
    assert_eq!(
        refused.status_message.as_deref(),
        Some("model overloaded, retry after 7s")
    );
    assert_eq!(refused.output, None);

    assert_eq!(
        by_level("connect_words", "DEFAULT").output,
        Some(json!("ab"))
    );
    assert_eq!(
        by_level("connect_words", "ERROR").status_message.as_deref(),
        Some("nothing to read")
    );
    let words: Vec<_> = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("maybe_words"))
        .collect();
    assert_eq!(words.len(), 2);
    assert!(words.iter().all(|o| o.level == "DEFAULT"));
    assert!(words.iter().any(|o| o.output == Some(json!("xy"))));
    // `None`: the call ends with no sequence and nothing to record.
    assert!(words.iter().any(|o| o.output.is_none()));
}

// ---------------------------------------------------------------------------------------------
// Dropped before the end

#[observe]
fn letters(text: String) -> impl Iterator<Item = String> {
    text.chars()
        .map(String::from)
        .collect::<Vec<_>>()
        .into_iter()
}

#[observe]
async fn early_drop_consumer() -> String {
    let first_two: Vec<_> = letters("abcde".into()).take(2).collect();
    assert_eq!(first_two, ["a", "b"]);
    let mut numbers = numbers_sync(5);
    assert_eq!(numbers.next().await, Some(0));
    assert_eq!(numbers.next().await, Some(1));
    assert_eq!(numbers.next().await, Some(2));
    drop(numbers);
    // Never polled at all.
    drop(numbers_pinned(5));
    current_trace()
}

#[tokio::test(flavor = "current_thread")]
async fn a_sequence_read_partly_says_how_far_with_its_partial_output() {
    let test = Harness::start();
    let server = &test.server;
    let trace = early_drop_consumer().await;
    let observations = trace_observations(server, &trace);
    assert_names(
        &observations,
        &[
            "early_drop_consumer",
            "letters",
            "numbers_sync",
            "numbers_pinned",
        ],
    );
    let consumer = named(&observations, "early_drop_consumer");
    assert_default_level(consumer);

    let spelled = named(&observations, "letters");
    assert_child_of(spelled, consumer);
    assert_stopped_after(spelled, 2);
    assert_eq!(spelled.output, Some(json!("ab")));
    assert_within(spelled, consumer);

    let numbers = named(&observations, "numbers_sync");
    assert_child_of(numbers, consumer);
    assert_stopped_after(numbers, 3);
    assert_eq!(numbers.output, Some(json!([0, 1, 2])));
    assert_within(numbers, consumer);

    let unpolled = named(&observations, "numbers_pinned");
    assert_stopped_after(unpolled, 0);
    assert_eq!(unpolled.output, None, "no item was produced");
}

#[test]
fn an_outermost_iterator_dropped_early_is_still_delivered() {
    let test = Harness::start();
    let server = &test.server;
    let mut trace = None;
    let mut letters = spell("abc", &mut trace);
    let trace = trace.unwrap();
    assert_eq!(letters.next().as_deref(), Some("a"));
    drop(letters);
    // A drop does not flush (it may happen inside someone's poll); the worker delivers it.
    let observations = wait_for_trace(server, &trace, 1);
    let spelled = named(&observations, "spell");
    assert_root(spelled);
    assert_stopped_after(spelled, 1);
    assert_eq!(spelled.output, Some(json!("a")));
}

#[observe]
fn err_then_dropped() -> impl Iterator<Item = Result<u32, Overloaded>> {
    vec![Err(Overloaded { retry_after: 1 }), Ok(2)].into_iter()
}

#[observe]
fn err_then_dropped_consumer() -> String {
    let mut items = err_then_dropped();
    assert!(items.next().unwrap().is_err());
    drop(items);
    current_trace()
}

#[test]
fn an_error_is_not_downgraded_to_a_warning_by_an_early_drop() {
    let test = Harness::start();
    let server = &test.server;
    let trace = err_then_dropped_consumer();
    let observations = trace_observations(server, &trace);
    let items = named(&observations, "err_then_dropped");
    assert_eq!(items.level, "ERROR");
    assert_eq!(
        items.status_message.as_deref(),
        Some("model overloaded, retry after 1s")
    );
}

// ---------------------------------------------------------------------------------------------
// Nesting: the stream's body under the stream, the consumer's calls under the consumer

#[observe]
fn leaf(x: u32) -> u32 {
    x * 10
}

#[observe]
fn between(x: u32) -> u32 {
    x
}

#[observe]
fn mapped(n: u32) -> impl Iterator<Item = u32> {
    // Called while the function builds the iterator: a child too.
    leaf(100);
    (0..n).map(leaf)
}

#[observe]
fn sync_nesting_consumer() -> String {
    let mut collected = Vec::new();
    for x in mapped(3) {
        // The iterator is open, but this call is the consumer's, not the iterator's.
        collected.push(between(x));
    }
    assert_eq!(collected, [0, 10, 20]);
    current_trace()
}

#[test]
fn calls_inside_an_iterator_nest_under_it_and_calls_between_items_do_not() {
    let test = Harness::start();
    let server = &test.server;
    let trace = sync_nesting_consumer();
    let observations = trace_observations(server, &trace);
    assert_eq!(observations.len(), 1 + 1 + 4 + 3, "{observations:#?}");
    let consumer = named(&observations, "sync_nesting_consumer");
    let sequence = named(&observations, "mapped");
    assert_root(consumer);
    assert_child_of(sequence, consumer);
    assert_eq!(sequence.output, Some(json!([0, 10, 20])));
    let leaves: Vec<_> = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("leaf"))
        .collect();
    assert_eq!(leaves.len(), 4);
    for leaf in leaves {
        assert_child_of(leaf, sequence);
        assert_within(leaf, sequence);
    }
    let siblings: Vec<_> = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("between"))
        .collect();
    assert_eq!(siblings.len(), 3);
    for sibling in siblings {
        assert_child_of(sibling, consumer);
    }
}

#[observe]
async fn async_leaf(x: u32) -> u32 {
    tokio::task::yield_now().await;
    x + 1
}

#[observe]
async fn async_between(x: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(1)).await;
    x
}

/// The stream's observation id, seen from inside its body.
#[observe]
async fn generated(n: u32) -> impl Stream<Item = (u32, String)> {
    async_leaf(1000).await;
    async_stream::stream! {
        for i in 0..n {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let value = async_leaf(i).await;
            // A sync call from the stream's body as well.
            leaf(value);
            yield (value, current_observation());
        }
    }
}

#[observe]
async fn async_nesting_consumer() -> (String, String) {
    let consumer_id = current_observation();
    let items = generated(3).await;
    futures_util::pin_mut!(items);
    let mut ids = Vec::new();
    while let Some((value, id)) = items.next().await {
        // The stream is open and was just polled; this call is still the consumer's.
        assert_eq!(current_observation(), consumer_id);
        async_between(value).await;
        between(value);
        ids.push(id);
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one observation current in the stream's body");
    (current_trace(), ids.remove(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_inside_a_stream_body_nest_under_it_and_calls_between_polls_do_not() {
    let test = Harness::start();
    let server = &test.server;
    let (trace, seen_inside) = async_nesting_consumer().await;
    let observations = trace_observations(server, &trace);
    let consumer = named(&observations, "async_nesting_consumer");
    let sequence = named(&observations, "generated");
    assert_eq!(
        seen_inside, sequence.id,
        "the stream's body saw its observation"
    );
    assert_root(consumer);
    assert_child_of(sequence, consumer);
    assert_default_level(sequence);
    let count = |name: &str| {
        observations
            .iter()
            .filter(|o| o.name.as_deref() == Some(name))
            .count()
    };
    assert_eq!(count("async_leaf"), 4, "{observations:#?}");
    assert_eq!(count("leaf"), 3);
    assert_eq!(count("async_between"), 3);
    assert_eq!(count("between"), 3);
    assert_eq!(observations.len(), 2 + 4 + 3 + 3 + 3);
    for o in &observations {
        match o.name.as_deref() {
            Some("async_leaf" | "leaf") => {
                assert_child_of(o, sequence);
                assert_within(o, sequence);
            }
            Some("async_between" | "between") => assert_child_of(o, consumer),
            _ => {}
        }
    }
    let leaf_outputs: Vec<_> = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("async_leaf"))
        .filter_map(|o| o.output.clone())
        .collect();
    assert!(leaf_outputs.contains(&json!(1001)), "{leaf_outputs:?}");
    assert_eq!(
        sequence.output,
        Some(json!([
            [1, sequence.id],
            [2, sequence.id],
            [3, sequence.id]
        ]))
    );
}

#[observe]
fn tagged(label: &'static str, n: u32) -> impl Stream<Item = u32> + Send {
    stream::iter(0..n).then(move |i| async move {
        tokio::task::yield_now().await;
        between(i);
        let _ = label;
        i
    })
}

#[observe]
async fn interleaving_consumer() -> String {
    let (a, b) = tokio::join!(
        tagged("a", 3).collect::<Vec<_>>(),
        tagged("b", 2).collect::<Vec<_>>()
    );
    assert_eq!((a, b), (vec![0, 1, 2], vec![0, 1]));
    current_trace()
}

#[tokio::test(flavor = "current_thread")]
async fn streams_polled_together_keep_their_own_children() {
    let test = Harness::start();
    let server = &test.server;
    let trace = interleaving_consumer().await;
    let observations = trace_observations(server, &trace);
    let consumer = named(&observations, "interleaving_consumer");
    let streams: Vec<_> = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("tagged"))
        .collect();
    assert_eq!(streams.len(), 2);
    for stream in &streams {
        assert_child_of(stream, consumer);
        let children = observations
            .iter()
            .filter(|o| o.parent_observation_id.as_deref() == Some(stream.id.as_str()))
            .count();
        let expected = if stream.input == Some(json!({ "label": "a", "n": 3 })) {
            3
        } else {
            2
        };
        assert_eq!(children, expected, "{:?}", stream.input);
    }
    assert_eq!(observations.len(), 1 + 2 + 5);
}

// ---------------------------------------------------------------------------------------------
// An LLM-style token stream as a generation

#[observe(as_type = "generation", skip(trace))]
async fn complete(prompt: String, trace: &mut Option<String>) -> impl Stream<Item = String> {
    *trace = Some(current_trace());
    let tokens: Vec<String> = ["Hello", ",", " ", "world", "!"]
        .into_iter()
        .map(String::from)
        .collect();
    async_stream::stream! {
        let _ = prompt;
        // Time to the first token.
        tokio::time::sleep(Duration::from_millis(5)).await;
        for token in tokens {
            tokio::time::sleep(Duration::from_millis(1)).await;
            yield token;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_stream_as_a_generation_has_a_completion_start_time() {
    let test = Harness::start();
    let server = &test.server;
    let mut trace = None;
    let tokens = complete("Say hello".into(), &mut trace).await;
    let trace = trace.unwrap();
    futures_util::pin_mut!(tokens);
    let before_first = SystemTime::now();
    let first = tokens.next().await.unwrap();
    let after_first = SystemTime::now();
    let mut text = first;
    while let Some(token) = tokens.next().await {
        text.push_str(&token);
    }
    assert_eq!(text, "Hello, world!");
    let observations = trace_observations(server, &trace);
    let generation = named(&observations, "complete");
    assert_root(generation);
    assert_eq!(generation.observation_type, "GENERATION");
    assert_eq!(generation.input, Some(json!({ "prompt": "Say hello" })));
    assert_eq!(generation.output, Some(json!("Hello, world!")));
    assert_default_level(generation);
    let (start, end) = times(generation);
    let first_token = generation
        .completion_start_time
        .expect("a completion start time");
    assert!(start <= first_token && first_token <= end);
    assert!(
        millis(before_first) <= first_token && first_token <= after_first,
        "the completion started when the first token came out"
    );
}

// ---------------------------------------------------------------------------------------------
// capture_output = false, transform, and the `stream`/`iterator` options on aliases

#[observe(capture_output = false)]
fn uncaptured(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

#[observe(capture_output = false)]
fn uncaptured_stream(n: u32) -> impl Stream<Item = String> {
    stream::iter((0..n).map(|i| i.to_string()))
}

#[observe(capture_output = false, as_type = "generation")]
fn uncaptured_generation(n: u32) -> impl Stream<Item = String> {
    stream::iter((0..n).map(|i| i.to_string()))
}

#[observe(capture_output = false)]
fn uncaptured_results() -> impl Iterator<Item = Result<u32, Overloaded>> {
    vec![Ok(1), Err(Overloaded { retry_after: 9 })].into_iter()
}

#[observe]
async fn uncaptured_consumer() -> String {
    assert_eq!(uncaptured(3).sum::<u32>(), 3);
    assert_eq!(uncaptured(3).next(), Some(0)); // dropped early
    assert_eq!(uncaptured_stream(2).collect::<Vec<_>>().await, ["0", "1"]);
    let mut early = uncaptured_stream(2);
    assert_eq!(early.next().await.as_deref(), Some("0"));
    drop(early);
    assert_eq!(uncaptured_generation(2).count().await, 2);
    assert_eq!(uncaptured_results().count(), 2);
    current_trace()
}

#[tokio::test(flavor = "current_thread")]
async fn without_output_capture_nothing_is_recorded_and_the_lifecycle_is_the_same() {
    let test = Harness::start();
    let server = &test.server;
    let trace = uncaptured_consumer().await;
    let observations = trace_observations(server, &trace);
    assert_eq!(observations.len(), 7, "{observations:#?}");
    let consumer = named(&observations, "uncaptured_consumer");
    for o in observations.iter().filter(|o| o.id != consumer.id) {
        assert_eq!(o.output, None, "{:?}", o.name);
        assert_child_of(o, consumer);
        assert_within(o, consumer);
    }
    let by_name = |name: &str| -> Vec<_> {
        observations
            .iter()
            .filter(|o| o.name.as_deref() == Some(name))
            .collect()
    };
    for name in ["uncaptured", "uncaptured_stream"] {
        let pair = by_name(name);
        assert_eq!(pair.len(), 2);
        let stopped = pair.iter().filter(|o| o.status_message.is_some()).count();
        assert_eq!(stopped, 1, "one of the two {name} was dropped early");
        for o in pair {
            assert_eq!(o.level, "DEFAULT", "{name}");
        }
    }
    let generation = named(&observations, "uncaptured_generation");
    assert_eq!(generation.observation_type, "GENERATION");
    let (start, end) = times(generation);
    let first = generation
        .completion_start_time
        .expect("the first item's time, also without output");
    assert!(start <= first && first <= end);
    let results = named(&observations, "uncaptured_results");
    assert_eq!(results.level, "ERROR");
    assert_eq!(
        results.status_message.as_deref(),
        Some("model overloaded, retry after 9s")
    );
}

/// Joins the `delta` fields of chunk objects.
fn join_deltas(chunks: &[Value]) -> String {
    chunks.iter().filter_map(|c| c["delta"].as_str()).collect()
}

/// Sums numbers into an object.
fn summarize(items: &[Value]) -> Value {
    json!({
        "count": items.len(),
        "sum": items.iter().filter_map(Value::as_u64).sum::<u64>(),
    })
}

#[derive(serde::Serialize)]
struct Chunk {
    delta: &'static str,
    index: u32,
}

#[observe(transform = join_deltas)]
fn chunks() -> impl Stream<Item = Chunk> {
    stream::iter(vec![
        Chunk {
            delta: "Hi",
            index: 0,
        },
        Chunk {
            delta: " there",
            index: 1,
        },
    ])
}

#[observe(transform = summarize)]
fn summed(n: u64) -> impl Iterator<Item = u64> {
    1..=n
}

#[observe(transform = summarize)]
fn summed_dropped(n: u64) -> impl Iterator<Item = u64> {
    1..=n
}

#[observe]
async fn transform_consumer() -> String {
    let chunks: Vec<Chunk> = chunks().collect().await;
    assert_eq!(chunks.iter().map(|c| c.index).sum::<u32>(), 1);
    assert_eq!(summed(4).sum::<u64>(), 10);
    assert_eq!(summed_dropped(4).take(2).sum::<u64>(), 3);
    current_trace()
}

#[tokio::test(flavor = "current_thread")]
async fn a_transform_makes_the_output_from_the_items() {
    let test = Harness::start();
    let server = &test.server;
    let trace = transform_consumer().await;
    let observations = trace_observations(server, &trace);
    assert_eq!(
        named(&observations, "chunks").output,
        Some(json!("Hi there"))
    );
    assert_eq!(
        named(&observations, "summed").output,
        Some(json!({ "count": 4, "sum": 10 }))
    );
    let dropped = named(&observations, "summed_dropped");
    assert_stopped_after(dropped, 2);
    assert_eq!(dropped.output, Some(json!({ "count": 2, "sum": 3 })));
}

type TokenStream = Pin<Box<dyn Stream<Item = String> + Send>>;
type Numbers = Box<dyn Iterator<Item = u32> + Send>;
type Answers = Pin<Box<dyn Stream<Item = Result<String, Overloaded>> + Send>>;

#[observe(stream, as_type = "generation")]
fn aliased_tokens(words: Vec<&'static str>) -> TokenStream {
    Box::pin(stream::iter(words.into_iter().map(String::from)))
}

#[observe(stream)]
async fn aliased_tokens_async(words: Vec<&'static str>) -> TokenStream {
    tokio::task::yield_now().await;
    Box::pin(stream::iter(words.into_iter().map(String::from)))
}

#[observe(iterator)]
fn aliased_numbers(n: u32) -> Numbers {
    Box::new(0..n)
}

#[observe(stream, transform = join_text)]
fn aliased_transformed(words: Vec<&'static str>) -> TokenStream {
    Box::pin(stream::iter(words.into_iter().map(String::from)))
}

fn join_text(items: &[Value]) -> String {
    items
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join("|")
}

#[observe]
async fn alias_consumer() -> String {
    let text: String = aliased_tokens(vec!["a", "b"]).collect().await;
    assert_eq!(text, "ab");
    let text: String = aliased_tokens_async(vec!["c", "d"]).await.collect().await;
    assert_eq!(text, "cd");
    assert_eq!(aliased_numbers(3).collect::<Vec<_>>(), [0, 1, 2]);
    let text: String = aliased_transformed(vec!["x", "y"]).collect().await;
    assert_eq!(text, "xy");
    current_trace()
}

#[tokio::test(flavor = "current_thread")]
async fn the_stream_and_iterator_options_observe_aliases_of_boxed_trait_objects() {
    let test = Harness::start();
    let server = &test.server;
    let trace = alias_consumer().await;
    let observations = trace_observations(server, &trace);
    assert_eq!(observations.len(), 5, "{observations:#?}");
    let consumer = named(&observations, "alias_consumer");
    let tokens = named(&observations, "aliased_tokens");
    assert_child_of(tokens, consumer);
    assert_eq!(tokens.observation_type, "GENERATION");
    assert_eq!(tokens.output, Some(json!("ab")));
    assert!(tokens.completion_start_time.is_some());
    assert_default_level(tokens);
    let tokens = named(&observations, "aliased_tokens_async");
    assert_eq!(tokens.output, Some(json!("cd")));
    assert_default_level(tokens);
    let numbers = named(&observations, "aliased_numbers");
    assert_eq!(numbers.output, Some(json!([0, 1, 2])));
    assert_default_level(numbers);
    assert_eq!(
        named(&observations, "aliased_transformed").output,
        Some(json!("x|y"))
    );
}

#[observe(stream)]
fn aliased_answers() -> Answers {
    Box::pin(stream::iter(vec![
        Ok("a".to_owned()),
        Err(Overloaded { retry_after: 7 }),
    ]))
}

#[observe]
async fn aliased_answers_consumer() -> String {
    assert_eq!(aliased_answers().count().await, 2);
    current_trace()
}

/// The alias hides the item type from the macro; an `Err` item is still an error.
#[tokio::test(flavor = "current_thread")]
async fn an_err_item_behind_an_alias_is_an_error_too() {
    let test = Harness::start();
    let server = &test.server;
    let trace = aliased_answers_consumer().await;
    let observations = trace_observations(server, &trace);
    let answers = named(&observations, "aliased_answers");
    assert_eq!(
        (answers.level.as_str(), answers.status_message.as_deref()),
        ("ERROR", Some("model overloaded, retry after 7s")),
        "output was {:?}",
        answers.output
    );
    assert_eq!(answers.output, Some(json!("a")));
}

// ---------------------------------------------------------------------------------------------
// A panic while producing an item

#[observe]
fn exploding(n: u32) -> impl Iterator<Item = u32> {
    (0..n).inspect(|&i| {
        if i == 2 {
            panic!("item {i} exploded");
        }
    })
}

#[observe]
fn panic_consumer() -> String {
    let outcome = catch_unwind(AssertUnwindSafe(|| exploding(5).collect::<Vec<_>>()));
    assert!(outcome.is_err());
    current_trace()
}

#[test]
fn a_panic_while_producing_an_item_is_an_error_and_propagates() {
    let test = Harness::start();
    let server = &test.server;
    let trace = panic_consumer();
    let observations = trace_observations(server, &trace);
    let consumer = named(&observations, "panic_consumer");
    assert_default_level(consumer);
    let exploded = named(&observations, "exploding");
    assert_child_of(exploded, consumer);
    assert_eq!(exploded.level, "ERROR");
    assert!(
        exploded
            .status_message
            .as_deref()
            .is_some_and(|s| s.contains("item 2 exploded")),
        "{:?}",
        exploded.status_message
    );
}

// ---------------------------------------------------------------------------------------------
// The wrapper behaves as the inner sequence does

fn assert_unpin<T: Unpin>(_: &T) {}
fn assert_send<T: Send>(_: &T) {}
fn assert_fused<T: FusedIterator>(_: &T) {}
fn assert_fused_stream<T: FusedStream>(_: &T) {}

#[observe]
fn exact(n: usize) -> impl ExactSizeIterator<Item = usize> + FusedIterator {
    0..n
}

/// `Stream + FusedStream` rather than `impl FusedStream` (see
/// `subtraits_of_stream_and_iterator_are_recognised`).
#[allow(clippy::implied_bounds_in_impls)]
#[observe]
fn fused_stream(n: u32) -> impl Stream<Item = u32> + FusedStream + Unpin + Send {
    stream::iter(0..n).fuse()
}

#[observe]
fn filtered(n: u32) -> impl Iterator<Item = u32> {
    (0..n).filter(|i| i % 2 == 0)
}

#[test]
fn an_observed_iterator_keeps_size_hint_len_and_fusedness() {
    let _test = Harness::start();
    let plain = 0..4usize;
    let mut observed = exact(4);
    assert_fused(&observed);
    assert_unpin(&observed);
    assert_send(&observed);
    assert_eq!(observed.size_hint(), plain.size_hint());
    assert_eq!(observed.len(), 4);
    assert_eq!(observed.next(), Some(0));
    assert_eq!(observed.len(), 3);
    assert_eq!(observed.size_hint(), (3, Some(3)));
    assert_eq!(observed.by_ref().count(), 3);
    assert_eq!(observed.len(), 0);
    for _ in 0..3 {
        assert_eq!(observed.next(), None, "stays exhausted");
    }

    let filtered = filtered(6);
    assert_eq!(
        filtered.size_hint(),
        (0..6).filter(|i| i % 2 == 0).size_hint()
    );
    assert_eq!(filtered.collect::<Vec<_>>(), [0, 2, 4]);
}

#[test]
fn an_observed_stream_keeps_size_hint_fusedness_and_unpin() {
    let _test = Harness::start();
    let mut observed = fused_stream(3);
    assert_unpin(&observed);
    assert_send(&observed);
    assert_fused_stream(&observed);
    assert_eq!(observed.size_hint(), stream::iter(0..3).size_hint());
    assert!(!observed.is_terminated());
    let waker = Waker::noop();
    let mut cx = TaskContext::from_waker(waker);
    let mut items = Vec::new();
    loop {
        match Pin::new(&mut observed).poll_next(&mut cx) {
            Poll::Ready(Some(item)) => items.push(item),
            Poll::Ready(None) => break,
            // An outermost observation may wait for its flush at the end; the noop waker
            // never wakes, so poll again.
            Poll::Pending => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    assert_eq!(items, [0, 1, 2]);
    assert!(observed.is_terminated());
    assert_eq!(observed.size_hint(), (0, Some(0)));
    for _ in 0..3 {
        assert_eq!(
            Pin::new(&mut observed).poll_next(&mut cx),
            Poll::Ready(None),
            "stays exhausted"
        );
    }

    // Boxed shapes are `Unpin` by construction; `impl Stream` over an `Unpin` stream is too
    // when the signature says so.
    let boxed = numbers_pinned(1);
    assert_unpin(&boxed);
    assert_send(&boxed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_observed_send_stream_can_be_consumed_on_a_spawned_task() {
    let test = Harness::start();
    let server = &test.server;
    #[observe]
    async fn spawning_consumer() -> String {
        let numbers = fused_stream(3);
        let handle = tokio::spawn(async move { numbers.collect::<Vec<_>>().await });
        assert_eq!(handle.await.unwrap(), [0, 1, 2]);
        current_trace()
    }
    let trace = spawning_consumer().await;
    let observations = wait_for_trace(server, &trace, 2);
    let consumer = named(&observations, "spawning_consumer");
    let numbers = named(&observations, "fused_stream");
    assert_child_of(numbers, consumer);
    assert_eq!(numbers.output, Some(json!([0, 1, 2])));
    assert_default_level(numbers);
}

#[observe]
fn fused_only(n: u32) -> impl FusedStream<Item = u32> {
    stream::iter(0..n).fuse()
}

#[observe]
fn double_ended(n: u32) -> impl DoubleEndedIterator<Item = u32> {
    0..n
}

#[observe]
fn fused_iter_only(n: u32) -> impl FusedIterator<Item = u32> {
    0..n
}

#[observe]
async fn subtrait_consumer() -> String {
    assert_eq!(fused_only(2).collect::<Vec<_>>().await, [0, 1]);
    assert_eq!(double_ended(2).rev().collect::<Vec<_>>(), [1, 0]);
    assert_eq!(fused_iter_only(2).collect::<Vec<_>>(), [0, 1]);
    current_trace()
}

/// `impl FusedStream<Item = T>`, `impl FusedIterator<Item = T>` and
/// `impl DoubleEndedIterator<Item = T>` say as plainly as `impl Stream`/`impl Iterator` that
/// the function returns a sequence (clippy even suggests `impl FusedStream<Item = T>` over
/// `impl Stream<Item = T> + FusedStream`): observed until exhausted, items as output.
#[tokio::test(flavor = "current_thread")]
async fn subtraits_of_stream_and_iterator_are_recognised() {
    let test = Harness::start();
    let server = &test.server;
    let trace = subtrait_consumer().await;
    let observations = trace_observations(server, &trace);
    for (name, output) in [
        ("fused_only", json!([0, 1])),
        ("double_ended", json!([1, 0])),
        ("fused_iter_only", json!([0, 1])),
    ] {
        let sequence = named(&observations, name);
        assert_eq!(sequence.output, Some(output), "{name}");
        assert_default_level(sequence);
    }
}

const LEAKED_CHILD: &str =
    "observe_streams::a_context_guard_leaked_inside_an_item_is_reported_child";

#[observe]
fn leaks_a_context_guard() -> impl Iterator<Item = u32> {
    (0..2).inspect(|_| std::mem::forget(langfuse_observe::context::Context::default().attach()))
}

#[observe]
fn called_after_the_leak() -> u32 {
    1
}

#[test]
#[ignore = "run in a child process by a_context_guard_leaked_inside_an_item_is_reported"]
fn a_context_guard_leaked_inside_an_item_is_reported_child() {
    if !is_child(LEAKED_CHILD) {
        return;
    }
    let test = Harness::start();
    assert_eq!(leaks_a_context_guard().collect::<Vec<_>>(), [0, 1]);
    assert_eq!(called_after_the_leak(), 1);
    let after = test
        .server
        .observations()
        .into_iter()
        .find(|o| o.name.as_deref() == Some("called_after_the_leak"));
    let after = after.expect("an outermost call flushes, so it has arrived");
    assert_root(&after);
}

/// An observed item lends its observation to the context while it is produced; a guard that
/// the item's code leaks keeps it, so it can no longer end. That is said on stderr, and the
/// program and later observations go on.
#[test]
fn a_context_guard_leaked_inside_an_item_is_reported() {
    let output = assert_child_passes(LEAKED_CHILD, |_| {});
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("was lost: a context guard made inside it was leaked (mem::forget)"),
        "{stderr}"
    );
}
