//! `#[observe]` on the methods of an `#[async_trait]` impl, which arrive as functions
//! returning `Pin<Box<dyn Future + Send>>` (or without `Send` for `?Send`).

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use langfuse_observe::observe;

fn assert_send<T: Send>(_: T) {}

#[async_trait]
trait Store {
    async fn get(&self, key: &str) -> Option<String>;
    async fn put(&mut self, key: String, value: String) -> Result<(), String>;
    async fn len(&self) -> usize;
    async fn clear(&mut self);
    async fn describe(self: Arc<Self>) -> String;

    #[observe]
    async fn get_or(&self, key: &str, fallback: &str) -> String {
        self.get(key).await.unwrap_or_else(|| fallback.to_owned())
    }
}

/// Neither `Serialize` nor `Debug`.
struct Memory {
    entries: HashMap<String, String>,
}

#[async_trait]
impl Store for Memory {
    #[observe]
    async fn get(&self, key: &str) -> Option<String> {
        let value = self.entries.get(key)?;
        Some(value.clone())
    }

    #[observe(name = "store.put", as_type = "tool")]
    async fn put(&mut self, key: String, value: String) -> Result<(), String> {
        if key.is_empty() {
            return Err("empty key".to_owned());
        }
        self.entries.insert(key, value);
        Ok(())
    }

    #[observe]
    async fn len(&self) -> usize {
        tokio::task::yield_now().await;
        self.entries.len()
    }

    #[observe]
    async fn clear(&mut self) {
        self.entries.clear();
    }

    #[observe]
    async fn describe(self: Arc<Self>) -> String {
        format!("{} entries", self.entries.len())
    }
}

#[async_trait(?Send)]
trait LocalJob {
    async fn run(&self, input: (u32, u32)) -> u32;
}

struct Adder;

#[async_trait(?Send)]
impl LocalJob for Adder {
    #[observe]
    async fn run(&self, (a, b): (u32, u32)) -> u32 {
        let shared = std::rc::Rc::new(a);
        tokio::task::yield_now().await;
        *shared + b
    }
}

#[async_trait]
trait Generic<T: Send + Sync + 'static> {
    async fn first(&self, items: &[T]) -> Option<T>;
}

#[async_trait]
impl<T: Clone + Send + Sync + 'static> Generic<T> for Adder {
    #[observe]
    async fn first(&self, items: &[T]) -> Option<T> {
        items.first().cloned()
    }
}

#[tokio::main]
async fn main() {
    let mut store = Memory {
        entries: HashMap::new(),
    };
    assert_eq!(
        store.put(String::new(), "v".into()).await,
        Err("empty key".into())
    );
    assert_eq!(store.put("k".into(), "v".into()).await, Ok(()));
    assert_eq!(store.get("k").await.as_deref(), Some("v"));
    assert_eq!(store.get("missing").await, None);
    assert_eq!(store.get_or("missing", "fallback").await, "fallback");
    assert_eq!(store.len().await, 1);
    assert_send(store.get("k"));
    store.clear().await;
    let store = Arc::new(store);
    assert_eq!(Arc::clone(&store).describe().await, "0 entries");
    let spawned = tokio::spawn(async move { store.len().await }).await;
    assert_eq!(spawned.ok(), Some(0));
    assert_eq!(Adder.run((1, 2)).await, 3);
    assert_eq!(Generic::<u8>::first(&Adder, &[7]).await, Some(7));
}
