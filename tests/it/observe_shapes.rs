//! `#[observe]` on a representative set of function shapes, compiled as ordinary code so that
//! `cargo clippy --all-targets -- -D warnings` lints what the macro generates. Each shape is
//! also checked to behave exactly as without the attribute: same values, same early exits, same
//! panics.
//!
//! No Langfuse keys are needed: each test puts a console client of its own in effect, which
//! prints the observations on stderr.

use std::fmt::{Debug, Display};
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::Arc;

use langfuse_observe::{config::ExporterKind, observe, Config, Langfuse};

#[observe]
fn unit() {}

#[observe]
fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[observe]
fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
    if text.is_empty() {
        return Ok(0);
    }
    let number: u32 = text.trim().parse()?;
    Ok(number * 2)
}

#[observe]
fn first_even(numbers: &[u32]) -> Option<u32> {
    let first = numbers.first()?;
    if first % 2 == 0 {
        return Some(*first);
    }
    numbers.iter().copied().find(|n| n % 2 == 0)
}

#[observe]
fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.len() >= b.len() {
        a
    } else {
        b
    }
}

#[observe]
fn describe<T, U>(left: &T, right: U) -> String
where
    T: Display + ?Sized,
    U: Debug,
{
    format!("{left} {right:?}")
}

#[observe]
fn unbounded<T>(value: T) -> Vec<T> {
    vec![value]
}

#[observe]
fn evens(limit: u32) -> impl Iterator<Item = u32> {
    (0..limit).filter(|n| n % 2 == 0)
}

#[observe]
fn pair_sum((a, b): (u32, u32), _: u8) -> u32 {
    a + b
}

#[observe]
fn fails(message: &str) -> u32 {
    if message.is_empty() {
        return 0;
    }
    panic!("{message}")
}

#[observe]
#[track_caller]
fn caller_line() -> u32 {
    Location::caller().line()
}

#[observe]
#[track_caller]
fn caller_checked(text: &str) -> Result<(u32, u32), std::num::ParseIntError> {
    if text.is_empty() {
        return Ok((0, Location::caller().line()));
    }
    let number = text.parse()?;
    Ok((number, Location::caller().line()))
}

#[observe]
#[track_caller]
fn caller_first(numbers: &[u32]) -> Option<u32> {
    let first = numbers.first()?;
    Some(first + Location::caller().line())
}

#[observe]
#[track_caller]
fn caller_unit(expected_line: u32) {
    assert_eq!(Location::caller().line(), expected_line);
}

#[observe]
#[track_caller]
fn caller_fails(message: &str) -> u32 {
    panic!("{message}")
}

#[observe]
fn diverges(message: &str) -> ! {
    panic!("{message}")
}

#[observe]
async fn fetch(id: &str) -> Result<u32, std::num::ParseIntError> {
    if id.is_empty() {
        return Ok(0);
    }
    tokio::task::yield_now().await;
    let number: u32 = id.parse()?;
    Ok(number + 1)
}

#[observe]
async fn lookup(numbers: Vec<u32>) -> Option<u32> {
    let first = numbers.first()?;
    tokio::task::yield_now().await;
    Some(*first)
}

#[observe]
async fn nothing() {}

#[observe]
async fn async_fails(message: String) -> u32 {
    tokio::task::yield_now().await;
    panic!("{message}")
}

#[observe]
fn later(value: u32) -> impl Future<Output = u32> + Send {
    async move {
        tokio::task::yield_now().await;
        value + 1
    }
}

#[observe]
fn boxed(text: &str) -> Pin<Box<dyn Future<Output = Result<u32, String>> + Send + '_>> {
    Box::pin(async move {
        let number: u32 = text.parse().map_err(|_| format!("not a number: {text}"))?;
        Ok(number)
    })
}

/// Neither `Serialize` nor `Debug`: the receiver is never recorded, and arguments of such
/// types are recorded by their type name.
struct Counter {
    count: u32,
}

impl Counter {
    #[observe]
    fn new() -> Self {
        Self { count: 0 }
    }

    #[observe]
    fn get(&self) -> u32 {
        self.count
    }

    #[observe]
    fn bump(&mut self, by: u32) -> Result<u32, String> {
        self.count = self.count.checked_add(by).ok_or("overflow")?;
        Ok(self.count)
    }

    #[observe]
    fn into_count(self) -> u32 {
        self.count
    }

    #[observe]
    fn shared(self: Arc<Self>) -> u32 {
        self.count
    }

    #[observe]
    fn merge(&self, other: Counter) -> Counter {
        Counter {
            count: self.count + other.count,
        }
    }

    #[observe]
    async fn wait(&self, extra: u32) -> u32 {
        tokio::task::yield_now().await;
        self.count + extra
    }
}

struct Wrapper<T> {
    inner: T,
}

impl<T: Clone + Send + Sync> Wrapper<T> {
    #[observe]
    fn get(&self) -> T {
        self.inner.clone()
    }

    #[observe]
    async fn get_later(&self) -> T {
        tokio::task::yield_now().await;
        self.inner.clone()
    }
}

#[observe(
    name = "configured",
    as_type = "generation",
    capture_output = false,
    skip(secret),
    flush = false
)]
fn configured(secret: &str, prompt: &str) -> usize {
    secret.len() + prompt.len()
}

#[observe(capture_input = false, as_type = "tool")]
fn no_input(secret: &str) -> usize {
    secret.len()
}

#[observe(skip_all, crate = ::langfuse_observe)]
async fn skip_all(secret: String) -> String {
    secret
}

fn assert_send<T: Send>(_: &T) {}

/// A client that prints to stderr (captured by the test harness), so that the observed calls
/// here are recorded as anywhere else, and to nobody else's server.
fn console() -> Langfuse {
    let config = Config::builder()
        .exporter(ExporterKind::Console)
        .build()
        .unwrap();
    Langfuse::new(&config).unwrap()
}

#[test]
fn sync_functions_return_what_their_bodies_return() {
    let console = console();
    let _in_effect = console.set_default();
    unit();
    assert_eq!(add(2, 3), 5);
    assert_eq!(parse(""), Ok(0));
    assert_eq!(parse(" 21 "), Ok(42));
    assert!(parse("x").is_err());
    assert_eq!(first_even(&[]), None);
    assert_eq!(first_even(&[1, 4]), Some(4));
    assert_eq!(first_even(&[6, 3]), Some(6));
    assert_eq!(longest("a", "bc"), "bc");
    assert_eq!(describe("left", 'r'), "left 'r'");
    assert_eq!(unbounded(Counter::new()).len(), 1);
    assert_eq!(evens(5).collect::<Vec<_>>(), [0, 2, 4]);
    assert_eq!(pair_sum((1, 2), 0), 3);
    assert_eq!(configured("s", "pp"), 3);
    assert_eq!(no_input("abc"), 3);
}

#[test]
fn methods_keep_their_receivers() {
    let console = console();
    let _in_effect = console.set_default();
    let mut counter = Counter::new();
    assert_eq!(counter.bump(2), Ok(2));
    assert_eq!(counter.bump(u32::MAX), Err("overflow".to_owned()));
    assert_eq!(counter.get(), 2);
    assert_eq!(counter.merge(Counter { count: 3 }).get(), 5);
    assert_eq!(Arc::new(Counter { count: 4 }).shared(), 4);
    assert_eq!(counter.into_count(), 2);
    assert_eq!(Wrapper { inner: "w" }.get(), "w");
}

#[test]
fn panics_propagate_with_their_payload() {
    let console = console();
    let _in_effect = console.set_default();
    assert_eq!(fails(""), 0);
    let payload = std::panic::catch_unwind(|| fails("boom")).expect_err("the panic propagates");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("boom")
    );
}

#[test]
fn functions_that_always_panic_keep_panicking() {
    let console = console();
    let _in_effect = console.set_default();
    let payload = std::panic::catch_unwind(|| caller_fails("tracked")).expect_err("it panics");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("tracked")
    );
    let payload = std::panic::catch_unwind(|| diverges("never")).expect_err("it panics");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("never")
    );
}

#[test]
fn track_caller_reports_the_caller() {
    let console = console();
    let _in_effect = console.set_default();
    let (line, expected) = (caller_line(), line!());
    assert_eq!(line, expected);
    caller_unit(line!());
    assert_eq!(caller_checked(""), Ok((0, line!())));
    assert_eq!(caller_checked("7"), Ok((7, line!())));
    assert!(caller_checked("x").is_err());
    assert_eq!(caller_first(&[]), None);
    assert_eq!(caller_first(&[1]), Some(1 + line!()));
}

#[tokio::test]
async fn async_functions_and_futures_return_what_their_bodies_return() {
    let console = console();
    let _in_effect = console.set_default();
    nothing().await;
    assert_eq!(fetch("").await, Ok(0));
    assert_eq!(fetch("41").await, Ok(42));
    assert!(fetch("x").await.is_err());
    assert_eq!(lookup(vec![]).await, None);
    assert_eq!(lookup(vec![3]).await, Some(3));
    assert_eq!(later(1).await, 2);
    assert_eq!(boxed("5").await, Ok(5));
    assert_eq!(boxed("x").await, Err("not a number: x".to_owned()));
    assert_eq!(Counter { count: 1 }.wait(2).await, 3);
    assert_eq!(Wrapper { inner: 8 }.get_later().await, 8);
    assert_eq!(skip_all("s".to_owned()).await, "s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_functions_stay_send() {
    let console = console();
    let _in_effect = console.set_default();
    let future = fetch("1");
    assert_send(&future);
    assert_eq!(tokio::spawn(console.scope(future)).await.ok(), Some(Ok(2)));
    assert_eq!(tokio::spawn(console.scope(later(2))).await.ok(), Some(3));
    assert_eq!(
        tokio::spawn(console.scope(boxed("3"))).await.ok(),
        Some(Ok(3))
    );
    let wrapper = Arc::new(Wrapper { inner: 9_u8 });
    let spawned = tokio::spawn(console.scope(async move { wrapper.get_later().await }));
    assert_eq!(spawned.await.ok(), Some(9));
    let panicked = tokio::spawn(console.scope(async_fails("async boom".to_owned()))).await;
    let payload = panicked.expect_err("the panic propagates").into_panic();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("async boom")
    );
}
