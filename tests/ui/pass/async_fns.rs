//! `async fn`: free and methods, early exits, lifetimes, generics, and futures that stay
//! `Send` so they can be spawned.

use std::fmt::{Debug, Display};
use std::sync::Arc;

use langfuse_observe::observe;

fn assert_send<T: Send>(_: T) {}

#[observe]
async fn nothing() {}

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
    if *first > 10 {
        return Some(10);
    }
    Some(*first)
}

#[observe]
async fn early(limit: u32) -> u32 {
    if limit > 10 {
        return 10;
    }
    nothing().await;
    limit
}

#[observe]
async fn first<'a>(items: &'a [String]) -> &'a str {
    tokio::task::yield_now().await;
    &items[0]
}

#[observe]
async fn generic<T: Debug + Send>(value: T) -> T {
    tokio::task::yield_now().await;
    value
}

#[observe]
async fn unbounded<T>(value: T) -> Vec<T> {
    vec![value]
}

#[observe]
async fn impl_arg(value: impl Display + Send) -> String {
    tokio::task::yield_now().await;
    value.to_string()
}

#[observe]
async fn shown(value: u32) -> impl Display {
    value * 2
}

#[observe]
async fn patterns((a, b): (u32, u32), [c, _]: [u32; 2]) -> u32 {
    a + b + c
}

#[observe]
async fn nested(value: u32) -> Result<u32, String> {
    let doubled = early(value).await;
    let parsed = fetch("4").await.map_err(|e| e.to_string())?;
    let (x, y) = tokio::join!(early(1), early(2));
    Ok(doubled + parsed + x + y)
}

#[observe]
async fn countdown(from: u32) -> u32 {
    if from == 0 {
        return 0;
    }
    Box::pin(countdown(from - 1)).await + 1
}

#[observe]
async fn never(message: String) -> ! {
    tokio::task::yield_now().await;
    panic!("{message}")
}

#[observe]
async unsafe fn read(pointer: *const u32) -> u32 {
    // SAFETY: the caller passes a pointer to a live `u32`.
    unsafe { *pointer }
}

/// A trait with a native `async fn`.
trait Fetch {
    async fn fetch(&self, id: u32) -> String;

    #[observe]
    async fn fetch_twice(&self, id: u32) -> String {
        self.fetch(id).await + &self.fetch(id).await
    }
}

impl Fetch for Service {
    #[observe]
    async fn fetch(&self, id: u32) -> String {
        format!("{}{id}", self.name)
    }
}

/// Neither `Serialize` nor `Debug`.
struct Service {
    name: String,
}

impl Service {
    #[observe]
    async fn call(&self, count: u32) -> String {
        tokio::task::yield_now().await;
        format!("{}:{count}", self.name)
    }

    #[observe]
    async fn rename(&mut self, name: &str) {
        self.name = name.to_owned();
    }

    #[observe]
    async fn consume(self) -> String {
        self.name
    }

    #[observe]
    async fn shared(self: Arc<Self>) -> usize {
        tokio::task::yield_now().await;
        self.name.len()
    }

    #[observe]
    async fn associated(left: u32) -> u32 {
        left + 1
    }

    #[observe]
    async fn borrowed(&self) -> &str {
        &self.name
    }
}

struct Repo<T> {
    items: Vec<T>,
}

impl<T: Clone + Send + Sync> Repo<T> {
    #[observe]
    async fn get(&self, index: usize) -> Option<T> {
        tokio::task::yield_now().await;
        self.items.get(index).cloned()
    }
}

#[tokio::main]
#[observe]
async fn main() {
    nothing().await;
    assert_eq!(fetch("").await, Ok(0));
    assert_eq!(fetch("41").await, Ok(42));
    assert!(fetch("x").await.is_err());
    assert_eq!(lookup(vec![]).await, None);
    assert_eq!(lookup(vec![11]).await, Some(10));
    assert_eq!(early(20).await, 10);
    let items = vec!["a".to_owned()];
    assert_eq!(first(&items).await, "a");
    assert_eq!(generic(3).await, 3);
    assert_eq!(unbounded(4).await, [4]);
    assert_eq!(impl_arg(5).await, "5");
    assert_eq!(shown(6).await.to_string(), "12");
    assert_eq!(patterns((1, 2), [3, 4]).await, 6);
    assert_eq!(nested(3).await, Ok(3 + 5 + 1 + 2));

    let mut service = Service { name: "s".into() };
    assert_eq!(service.call(1).await, "s:1");
    service.rename("t").await;
    assert_eq!(service.borrowed().await, "t");
    assert_eq!(Service::associated(1).await, 2);
    assert_eq!(Arc::new(Service { name: "abc".into() }).shared().await, 3);
    assert_eq!(service.fetch_twice(1).await, "t1t1");
    assert_eq!(service.consume().await, "t");
    assert_eq!(countdown(3).await, 3);
    let value = 5;
    // SAFETY: the pointer comes from a live reference.
    assert_eq!(unsafe { read(&value) }.await, 5);
    assert!(tokio::spawn(never("expected panic".into())).await.is_err());
    let repo = Repo { items: vec![1] };
    assert_eq!(repo.get(0).await, Some(1));

    // The futures stay `Send`: they can be spawned on a multi-threaded runtime.
    assert_send(fetch("1"));
    assert_send(nested(1));
    assert_send(generic(String::new()));
    assert_send(Service::associated(1));
    let service = Service {
        name: "spawned".into(),
    };
    assert_send(service.call(2));
    assert_send(repo.get(0));
    assert_eq!(tokio::spawn(nested(1)).await.ok(), Some(Ok(1 + 5 + 1 + 2)));
    let spawned = tokio::spawn(async move { service.call(2).await }).await;
    assert_eq!(spawned.ok().as_deref(), Some("spawned:2"));
}
