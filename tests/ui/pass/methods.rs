//! Methods with every receiver, associated functions, trait methods, and methods of generic
//! types. The receiver is never recorded, so `Self` needs neither `Serialize` nor `Debug`.

use std::fmt::Display;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use langfuse_observe::observe;

/// Neither `Serialize` nor `Debug`.
struct Counter {
    count: u32,
    label: String,
}

impl Counter {
    #[observe]
    fn new(label: &str) -> Self {
        Self {
            count: 0,
            label: label.to_owned(),
        }
    }

    #[observe]
    fn get(&self) -> u32 {
        self.count
    }

    #[observe]
    fn label(&self) -> &str {
        &self.label
    }

    #[observe]
    fn bump(&mut self, by: u32) -> u32 {
        self.count += by;
        self.count
    }

    #[observe]
    fn try_bump(&mut self, by: u32) -> Result<u32, String> {
        let next = self.count.checked_add(by).ok_or("overflow")?;
        if next == self.count {
            return Ok(next);
        }
        self.count = next;
        Ok(next)
    }

    #[observe]
    fn into_label(self) -> String {
        self.label
    }

    #[observe]
    fn mut_self(mut self, suffix: &str) -> Self {
        self.label.push_str(suffix);
        self
    }

    #[observe]
    fn shared(self: Arc<Self>, suffix: &str) -> String {
        format!("{}{suffix}", self.label)
    }

    #[observe]
    fn counted(self: Rc<Self>) -> usize {
        Rc::strong_count(&self)
    }

    #[observe]
    fn boxed(self: Box<Self>) -> u32 {
        self.count
    }

    #[observe]
    fn pinned(self: Pin<&mut Self>) {
        self.get_mut().count = 0;
    }

    // The shape under test, which clippy would shorten to `&self`.
    #[allow(clippy::needless_arbitrary_self_type)]
    #[observe]
    fn explicit_ref(self: &Self) -> u32 {
        self.count
    }

    #[observe(name = "counter.helper")]
    fn associated(left: u32, right: u32) -> u32 {
        left * right
    }
}

struct Wrapper<T> {
    inner: T,
}

impl<T: Clone> Wrapper<T> {
    #[observe]
    fn new(inner: T) -> Self {
        Self { inner }
    }

    #[observe]
    fn get(&self) -> T {
        self.inner.clone()
    }

    #[observe]
    fn map<U, F>(self, f: F) -> Wrapper<U>
    where
        F: FnOnce(T) -> U,
    {
        Wrapper {
            inner: f(self.inner),
        }
    }
}

impl<'a, T: ?Sized + Display> Wrapper<&'a T> {
    #[observe]
    fn show(&self) -> String {
        self.inner.to_string()
    }

    #[observe]
    fn borrowed(&self) -> &'a T {
        self.inner
    }
}

struct Buffer<const N: usize> {
    bytes: [u8; N],
}

impl<const N: usize> Buffer<N> {
    #[observe]
    fn capacity(&self) -> usize {
        N
    }

    #[observe]
    fn first(&self) -> Option<u8> {
        let first = self.bytes.first()?;
        Some(*first)
    }
}

trait Greeter {
    fn greet(&self, who: &str) -> String;

    #[observe]
    fn greet_world(&self) -> String {
        self.greet("world")
    }

    fn make() -> Self
    where
        Self: Sized;
}

impl Greeter for Counter {
    #[observe]
    fn greet(&self, who: &str) -> String {
        format!("{} greets {who}", self.label)
    }

    #[observe]
    fn make() -> Self {
        Counter::new("made")
    }
}

impl<T: Display + Clone> Greeter for Wrapper<T> {
    #[observe]
    fn greet(&self, who: &str) -> String {
        format!("{} greets {who}", self.inner)
    }

    fn make() -> Self {
        unimplemented!()
    }
}

fn main() {
    let mut counter = Counter::new("c");
    assert_eq!(counter.get(), 0);
    assert_eq!(counter.label(), "c");
    assert_eq!(counter.bump(2), 2);
    assert_eq!(counter.try_bump(3), Ok(5));
    assert_eq!(counter.try_bump(u32::MAX), Err("overflow".to_owned()));
    assert_eq!(counter.explicit_ref(), 5);
    Pin::new(&mut counter).pinned();
    assert_eq!(counter.get(), 0);
    assert_eq!(counter.greet("you"), "c greets you");
    assert_eq!(counter.greet_world(), "c greets world");
    let counter = counter.mut_self("!");
    assert_eq!(Arc::new(Counter::make()).shared("?"), "made?");
    assert_eq!(Rc::new(Counter::new("rc")).counted(), 1);
    assert_eq!(Box::new(Counter::new("box")).boxed(), 0);
    assert_eq!(counter.into_label(), "c!");
    assert_eq!(Counter::associated(6, 7), 42);

    let wrapper = Wrapper::new(5_u8);
    assert_eq!(wrapper.get(), 5);
    assert_eq!(wrapper.greet("all"), "5 greets all");
    assert_eq!(wrapper.map(|n| n * 2).inner, 10);
    let text = String::from("text");
    let by_ref = Wrapper {
        inner: text.as_str(),
    };
    assert_eq!(by_ref.show(), "text");
    assert_eq!(by_ref.borrowed(), "text");

    let buffer = Buffer { bytes: [3, 4] };
    assert_eq!(buffer.capacity(), 2);
    assert_eq!(buffer.first(), Some(3));
}
