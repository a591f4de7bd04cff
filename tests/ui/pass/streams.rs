//! Functions that return a stream or an iterator, recognised from the return type (sync and
//! async), or marked with `stream`/`iterator` where the type is an alias; with `transform`,
//! `Result` items, borrowed items, methods, generics, early returns and `#[track_caller]`.

use std::borrow::Cow;
use std::fmt::Debug;
use std::iter::FusedIterator;
use std::pin::Pin;

use futures_core::stream::FusedStream;
use futures_util::stream::{self, BoxStream, LocalBoxStream, Stream, StreamExt as _};
use langfuse_observe::observe;

fn assert_send<T: Send>(_: &T) {}
fn assert_unpin<T: Unpin>(_: &T) {}

// --- recognised from the return type, sync

#[observe]
fn iter_impl(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

#[observe]
fn iter_exact(n: usize) -> impl ExactSizeIterator<Item = usize> + FusedIterator + Send {
    0..n
}

#[observe]
fn iter_boxed(n: u32) -> Box<dyn Iterator<Item = u32> + Send> {
    Box::new(0..n)
}

#[observe]
fn iter_boxed_exact(n: u32) -> std::boxed::Box<dyn ExactSizeIterator<Item = u32>> {
    Box::new(0..n)
}

#[observe]
fn iter_borrowed<'a>(text: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    text.split_whitespace()
}

#[observe]
fn iter_cow(words: &[&'static str]) -> impl Iterator<Item = Cow<'static, str>> {
    words.to_vec().into_iter().map(Cow::Borrowed)
}

#[observe]
fn iter_results(text: &str) -> impl Iterator<Item = Result<u32, std::num::ParseIntError>> {
    text.split(',')
        .map(|s| s.parse::<u32>())
        .collect::<Vec<_>>()
        .into_iter()
}

#[observe]
fn iter_early(n: u32) -> Box<dyn Iterator<Item = u32>> {
    if n == 0 {
        return Box::new(std::iter::empty());
    }
    Box::new(0..n)
}

#[observe]
fn iter_from_text(text: &str) -> impl Iterator<Item = u32> {
    let n: u32 = text.parse().unwrap_or(0);
    0..n
}

#[observe]
fn iter_generic<T: Clone + Debug>(item: T, n: usize) -> impl Iterator<Item = T> {
    std::iter::repeat(item).take(n)
}

#[observe]
fn stream_impl(n: u32) -> impl Stream<Item = u32> {
    stream::iter(0..n)
}

#[observe]
fn stream_send(n: u32) -> impl Stream<Item = String> + Send + Unpin {
    stream::iter((0..n).map(|i| i.to_string()))
}

#[observe]
fn stream_fused(n: u32) -> impl Stream<Item = u32> + FusedStream {
    stream::iter(0..n).fuse()
}

#[observe]
fn stream_pinned(n: u32) -> Pin<Box<dyn Stream<Item = u32> + Send>> {
    Box::pin(stream::iter(0..n))
}

#[observe]
fn stream_pinned_full_paths(
    n: u32,
) -> std::pin::Pin<std::boxed::Box<dyn futures_core::Stream<Item = u32> + Send + 'static>> {
    Box::pin(stream::iter(0..n))
}

#[observe]
fn stream_box_stream(n: u32) -> BoxStream<'static, u32> {
    stream::iter(0..n).boxed()
}

#[observe]
fn stream_local_box_stream<'a>(text: &'a str) -> LocalBoxStream<'a, char> {
    stream::iter(text.chars()).boxed_local()
}

#[observe]
fn stream_results(
    items: Vec<Result<String, std::io::Error>>,
) -> impl Stream<Item = Result<String, std::io::Error>> {
    stream::iter(items)
}

#[observe]
fn stream_generic<S: Stream<Item = u32>>(inner: S) -> impl Stream<Item = u32> {
    inner.map(|x| x + 1)
}

#[observe(as_type = "generation", name = "llm")]
fn stream_generation(prompt: &str) -> impl Stream<Item = String> {
    let words: Vec<String> = prompt.split(' ').map(String::from).collect();
    stream::iter(words)
}

#[observe]
#[track_caller]
fn stream_located() -> impl Stream<Item = u32> {
    let line = std::panic::Location::caller().line();
    stream::iter([line])
}

// --- recognised from the return type, async

#[observe]
async fn async_stream_impl(n: u32) -> impl Stream<Item = u32> {
    std::future::ready(()).await;
    stream::iter(0..n)
}

#[observe]
async fn async_stream_pinned(n: u32) -> Pin<Box<dyn Stream<Item = u32> + Send>> {
    std::future::ready(()).await;
    if n == 0 {
        return Box::pin(stream::empty());
    }
    Box::pin(stream::iter(0..n))
}

#[observe]
async fn async_box_stream(n: u32) -> BoxStream<'static, u32> {
    stream::iter(0..n).boxed()
}

#[observe]
async fn async_iter_impl(n: u32) -> impl Iterator<Item = u32> {
    std::future::ready(()).await;
    0..n
}

#[observe]
async fn async_iter_boxed(n: u32) -> Box<dyn Iterator<Item = u32> + Send> {
    Box::new(0..n)
}

#[observe(as_type = "generation")]
async fn async_tokens(prompt: String) -> impl Stream<Item = Result<String, std::io::Error>> {
    stream::iter(
        prompt
            .split(' ')
            .map(|w| Ok(w.to_owned()))
            .collect::<Vec<_>>(),
    )
}

// --- aliases marked with `stream` / `iterator`

type TokenStream = Pin<Box<dyn Stream<Item = String> + Send>>;
type Numbers = Box<dyn Iterator<Item = u32>>;

#[observe(stream)]
fn alias_stream(words: Vec<String>) -> TokenStream {
    Box::pin(stream::iter(words))
}

#[observe(stream, as_type = "generation")]
async fn alias_stream_async(words: Vec<String>) -> TokenStream {
    Box::pin(stream::iter(words))
}

#[observe(iterator)]
fn alias_iter(n: u32) -> Numbers {
    Box::new(0..n)
}

#[observe(iterator)]
async fn alias_iter_async(n: u32) -> Numbers {
    Box::new(0..n)
}

/// The option where the return type already says it: redundant, accepted.
#[observe(iterator)]
fn redundant_iterator(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

#[observe(stream)]
fn redundant_stream(n: u32) -> BoxStream<'static, u32> {
    stream::iter(0..n).boxed()
}

// --- transform

fn join(items: &[serde_json::Value]) -> String {
    items.iter().filter_map(serde_json::Value::as_str).collect()
}

fn count(items: &[serde_json::Value]) -> serde_json::Value {
    serde_json::json!({ "count": items.len() })
}

#[observe(transform = join)]
fn transformed(n: u32) -> impl Stream<Item = String> {
    stream::iter((0..n).map(|i| i.to_string()))
}

#[observe(transform = count)]
fn transformed_iter(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

#[observe(stream, transform = self::join)]
fn transformed_alias(words: Vec<String>) -> TokenStream {
    Box::pin(stream::iter(words))
}

#[observe(transform = count, capture_input = false)]
async fn transformed_async(n: u32) -> BoxStream<'static, u32> {
    stream::iter(0..n).boxed()
}

// --- `capture_output = false`

#[observe(capture_output = false)]
fn uncaptured(n: u32) -> impl Iterator<Item = u32> {
    0..n
}

#[observe(capture_output = false, as_type = "generation")]
fn uncaptured_stream(n: u32) -> impl Stream<Item = Result<u32, String>> {
    stream::iter((0..n).map(Ok))
}

// --- methods

struct Corpus {
    words: Vec<String>,
}

impl Corpus {
    #[observe]
    fn words(&self) -> impl Iterator<Item = &String> + '_ {
        self.words.iter()
    }

    #[observe]
    fn lengths(&self) -> impl Stream<Item = usize> + '_ {
        stream::iter(self.words.iter().map(String::len))
    }

    #[observe]
    async fn owned(&self) -> BoxStream<'static, String> {
        stream::iter(self.words.clone()).boxed()
    }

    #[observe]
    fn into_words(self) -> impl Iterator<Item = String> {
        self.words.into_iter()
    }
}

#[tokio::main]
async fn main() {
    assert_eq!(iter_impl(3).collect::<Vec<_>>(), [0, 1, 2]);
    let exact = iter_exact(3);
    assert_eq!(exact.len(), 3);
    assert_send(&exact);
    assert_eq!(iter_boxed(2).count(), 2);
    assert_eq!(iter_boxed_exact(4).len(), 4);
    assert_eq!(iter_borrowed(" a b ").collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(iter_cow(&["x", "y"]).collect::<String>(), "xy");
    assert_eq!(iter_results("1,x,3").filter(Result::is_ok).count(), 2);
    assert_eq!(iter_early(0).count(), 0);
    assert_eq!(iter_early(2).count(), 2);
    assert_eq!(iter_from_text("2").count(), 2);
    assert_eq!(iter_generic("a", 2).collect::<Vec<_>>(), ["a", "a"]);

    assert_eq!(stream_impl(2).collect::<Vec<_>>().await, [0, 1]);
    let send = stream_send(2);
    assert_send(&send);
    assert_unpin(&send);
    assert_eq!(send.collect::<Vec<_>>().await, ["0", "1"]);
    let mut fused = stream_fused(1);
    assert_eq!(fused.next().await, Some(0));
    assert_eq!(fused.next().await, None);
    assert!(fused.is_terminated());
    let pinned = stream_pinned(2);
    assert_send(&pinned);
    assert_eq!(pinned.count().await, 2);
    assert_eq!(stream_pinned_full_paths(2).count().await, 2);
    assert_eq!(stream_box_stream(2).count().await, 2);
    assert_eq!(
        stream_local_box_stream("ab").collect::<String>().await,
        "ab"
    );
    let items = vec![Ok("a".to_owned()), Err(std::io::Error::other("boom"))];
    assert_eq!(stream_results(items).count().await, 2);
    assert_eq!(
        stream_generic(stream::iter([1, 2]))
            .collect::<Vec<_>>()
            .await,
        [2, 3]
    );
    assert_eq!(stream_generation("a b").count().await, 2);
    let (located, line) = (stream_located(), line!());
    assert_eq!(located.collect::<Vec<_>>().await, [line]);

    assert_eq!(async_stream_impl(2).await.count().await, 2);
    assert_eq!(async_stream_pinned(0).await.count().await, 0);
    assert_eq!(async_stream_pinned(2).await.count().await, 2);
    assert_eq!(async_box_stream(2).await.count().await, 2);
    assert_eq!(async_iter_impl(2).await.count(), 2);
    assert_eq!(async_iter_boxed(2).await.count(), 2);
    assert_eq!(async_tokens("a b".into()).await.count().await, 2);
    let spawned = tokio::spawn(async { async_box_stream(3).await.count().await });
    assert_eq!(spawned.await.ok(), Some(3));

    assert_eq!(alias_stream(vec!["a".into()]).count().await, 1);
    assert_eq!(alias_stream_async(vec!["a".into()]).await.count().await, 1);
    assert_eq!(alias_iter(2).count(), 2);
    assert_eq!(alias_iter_async(2).await.count(), 2);
    assert_eq!(redundant_iterator(2).count(), 2);
    assert_eq!(redundant_stream(2).count().await, 2);

    assert_eq!(transformed(2).count().await, 2);
    assert_eq!(transformed_iter(2).count(), 2);
    assert_eq!(transformed_alias(vec!["a".into()]).count().await, 1);
    assert_eq!(transformed_async(2).await.count().await, 2);

    assert_eq!(uncaptured(2).count(), 2);
    assert_eq!(uncaptured_stream(2).count().await, 2);

    let corpus = Corpus {
        words: vec!["hello".into(), "you".into()],
    };
    assert_eq!(corpus.words().count(), 2);
    assert_eq!(corpus.lengths().collect::<Vec<_>>().await, [5, 3]);
    assert_eq!(corpus.owned().await.count().await, 2);
    assert_eq!(corpus.into_words().count(), 2);
}
