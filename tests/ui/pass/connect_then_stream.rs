//! "Connect, then stream": a stream or iterator returned inside a `Result` (`io::Result` and
//! `anyhow::Result` too) or an `Option`, with `?` in the body converting errors as it does
//! without the attribute. Behind an alias of another name (`ApiResult`) the value is observed
//! while it is built, its `Err` still an error.

use futures_util::stream::{self, BoxStream, Stream, StreamExt as _};
use langfuse_observe::observe;

type ApiResult<T> = Result<T, String>;

#[observe]
fn lines(text: &str) -> std::io::Result<impl Iterator<Item = String>> {
    if text.is_empty() {
        Err(std::io::Error::other("empty"))?;
    }
    let owned: Vec<String> = text.lines().map(str::to_owned).collect();
    Ok(owned.into_iter())
}

#[observe]
fn numbers(n: u32) -> ApiResult<impl Iterator<Item = u32>> {
    if n == 0 {
        return Err("nothing to count".to_owned());
    }
    Ok(0..n)
}

#[observe]
fn parsed(text: &str) -> Result<Box<dyn Iterator<Item = u32> + Send>, std::num::ParseIntError> {
    let n = text.parse()?;
    Ok(Box::new(0..n))
}

#[observe]
fn maybe(n: u32) -> Option<impl Iterator<Item = u32>> {
    (n > 0).then(|| 0..n)
}

#[observe]
async fn connect(n: u32) -> Result<impl Stream<Item = u32>, std::io::Error> {
    tokio::task::yield_now().await;
    Ok(stream::iter(0..n))
}

#[observe]
async fn maybe_stream(n: u32) -> Option<BoxStream<'static, u32>> {
    (n > 0).then(|| stream::iter(0..n).boxed())
}

#[observe]
fn connect_sync(n: u32) -> Result<impl Stream<Item = u32> + Send, String> {
    Ok(stream::iter(0..n))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(lines("a\nb").unwrap().collect::<Vec<_>>(), ["a", "b"]);
    assert!(lines("").is_err());
    assert_eq!(numbers(2).unwrap().sum::<u32>(), 1);
    assert_eq!(numbers(0).err().as_deref(), Some("nothing to count"));
    assert_eq!(parsed("3").unwrap().count(), 3);
    assert!(parsed("x").is_err());
    assert_eq!(maybe(3).unwrap().count(), 3);
    assert!(maybe(0).is_none());
    assert_eq!(connect(2).await.unwrap().collect::<Vec<_>>().await, [0, 1]);
    assert_eq!(maybe_stream(1).await.unwrap().count().await, 1);
    assert!(maybe_stream(0).await.is_none());
    assert_eq!(connect_sync(2).unwrap().count().await, 2);
}
