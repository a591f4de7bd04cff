//! Functions that return a future built from an `async` block: `impl Future` and
//! `Pin<Box<dyn Future>>`, with lifetimes, `Send` bounds and early exits inside.

use std::future::Future;
use std::pin::Pin;

use langfuse_observe::observe;

fn assert_send<T: Send>(_: T) {}

#[observe]
fn later(value: u32) -> impl Future<Output = u32> {
    async move { value + 1 }
}

#[observe]
fn later_send(text: String) -> impl Future<Output = Result<u32, std::num::ParseIntError>> + Send {
    async move {
        tokio::task::yield_now().await;
        let number: u32 = text.parse()?;
        Ok(number)
    }
}

#[observe]
fn later_borrowed<'a>(text: &'a str) -> impl Future<Output = &'a str> + 'a {
    async move { text.trim() }
}

#[observe]
fn later_unit() -> impl Future<Output = ()> {
    async {}
}

#[observe]
fn later_early(value: u32) -> impl Future<Output = Option<u32>> {
    if value == 0 {
        return futures_ready(None);
    }
    futures_ready(Some(value))
}

fn futures_ready<T>(value: T) -> std::future::Ready<T> {
    std::future::ready(value)
}

#[observe]
fn boxed(value: u32) -> Pin<Box<dyn Future<Output = u32> + Send>> {
    Box::pin(async move {
        tokio::task::yield_now().await;
        value * 2
    })
}

#[observe]
fn boxed_borrowed<'a>(
    items: &'a [u32],
) -> Pin<Box<dyn Future<Output = Option<&'a u32>> + Send + 'a>> {
    Box::pin(async move {
        let first = items.first()?;
        Some(first)
    })
}

#[observe]
fn boxed_local(
    value: u32,
) -> std::pin::Pin<std::boxed::Box<dyn std::future::Future<Output = u32>>> {
    if value == 0 {
        return Box::pin(async { 0 });
    }
    Box::pin(async move { value })
}

#[observe]
fn boxed_result(text: &str) -> Pin<Box<dyn Future<Output = Result<u32, String>> + Send + '_>> {
    Box::pin(async move {
        let number: u32 = text.parse().map_err(|_| "not a number".to_owned())?;
        Ok(number)
    })
}

/// The `futures` crate's aliases, recognised by name.
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

#[observe]
fn aliased(value: u32) -> BoxFuture<'static, u32> {
    Box::pin(async move { value + 2 })
}

#[observe]
fn aliased_local(text: &str) -> LocalBoxFuture<'_, usize> {
    Box::pin(async move { text.len() })
}

/// A future behind an alias of another name is observed only while it is built, but compiles.
type Job = Pin<Box<dyn Future<Output = u32> + Send>>;

#[observe]
fn job(value: u32) -> Job {
    Box::pin(async move { value })
}

/// `#[track_caller]` holds while the future is built.
#[observe]
#[track_caller]
fn located() -> impl Future<Output = u32> {
    let line = std::panic::Location::caller().line();
    async move { line }
}

#[observe]
#[track_caller]
fn located_boxed(early: bool) -> Pin<Box<dyn Future<Output = u32> + Send>> {
    let line = std::panic::Location::caller().line();
    if early {
        return Box::pin(async move { line });
    }
    Box::pin(async move { line })
}

/// Neither `Serialize` nor `Debug`.
struct Client {
    base: u32,
}

impl Client {
    #[observe]
    fn request(&self, offset: u32) -> impl Future<Output = u32> + '_ {
        async move { self.base + offset }
    }

    #[observe]
    fn request_boxed(&self, offset: u32) -> Pin<Box<dyn Future<Output = u32> + Send + '_>> {
        Box::pin(async move { self.base + offset })
    }
}

#[tokio::main]
async fn main() {
    assert_eq!(later(1).await, 2);
    assert_eq!(later_send("7".into()).await, Ok(7));
    assert_eq!(later_borrowed(" x ").await, "x");
    later_unit().await;
    assert_eq!(later_early(0).await, None);
    assert_eq!(later_early(3).await, Some(3));
    assert_eq!(boxed(4).await, 8);
    assert_eq!(boxed_borrowed(&[5]).await, Some(&5));
    assert_eq!(boxed_borrowed(&[]).await, None);
    assert_eq!(boxed_local(0).await, 0);
    assert_eq!(boxed_local(6).await, 6);
    assert_eq!(boxed_result("8").await, Ok(8));
    assert!(boxed_result("x").await.is_err());
    let client = Client { base: 10 };
    assert_eq!(client.request(1).await, 11);
    assert_eq!(client.request_boxed(2).await, 12);

    assert_eq!(aliased(1).await, 3);
    assert_eq!(aliased_local("abc").await, 3);
    assert_eq!(job(4).await, 4);
    let (future, line) = (located(), line!());
    assert_eq!(future.await, line);
    let (future, line) = (located_boxed(true), line!());
    assert_eq!(future.await, line);
    let (future, line) = (located_boxed(false), line!());
    assert_eq!(future.await, line);

    assert_send(later_send(String::new()));
    assert_send(aliased(1));
    assert_send(boxed(1));
    assert_send(client.request_boxed(1));
    assert_eq!(tokio::spawn(boxed(5)).await.ok(), Some(10));
    assert_eq!(tokio::spawn(later_send("9".into())).await.ok(), Some(Ok(9)));
}
