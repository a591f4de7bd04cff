//! Observations that stay open over an `Iterator` or a `Stream` until it is exhausted or
//! dropped, as an LLM's token stream needs: the call returns at once, the answer arrives later.
//!
//! While the consumer asks for the next item, the observation is current, so observed calls
//! made to produce it nest under it; between items it is not, so the consumer's own calls do
//! not. Items are buffered (within limits) to become the output: joined when they are all text,
//! a JSON array otherwise, or whatever a `transform` makes of them.

use std::future::Future;
use std::iter::FusedIterator;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::SystemTime;

use futures_core::stream::{FusedStream, Stream};

use crate::capture::{Items, Transform};
use crate::observation::{GenerationDetails, Level, ObservationType};
use crate::scope::{RootFlush, Scope};

/// The observation side of an observed iterator or stream, shared by both wrappers. Its drop
/// ends an observation whose items were not consumed to the end.
struct Tracker<C> {
    scope: Option<Scope>,
    record: C,
    transform: Option<Transform>,
    capture: bool,
    collected: Items,
    /// Items the consumer took so far.
    read: usize,
}

impl<C> Tracker<C> {
    fn new(scope: Option<Scope>, record: C, transform: Option<Transform>) -> Self {
        let capture = scope.as_ref().is_some_and(Scope::wants_output);
        Self {
            scope,
            record,
            transform,
            capture,
            collected: Items::default(),
            read: 0,
        }
    }

    fn item<T>(&mut self, item: &T)
    where
        C: Fn(&T, Option<&mut Items>) -> Option<String>,
    {
        let Some(scope) = self.scope.as_mut() else {
            return;
        };
        self.read += 1;
        if self.read == 1 {
            let now = SystemTime::now();
            scope.active().update(|record| {
                if record.kind == ObservationType::Generation {
                    let generation = record
                        .generation
                        .get_or_insert_with(|| Box::new(GenerationDetails::default()));
                    generation.completion_start_time.get_or_insert(now);
                }
            });
        }
        let items = self.capture.then_some(&mut self.collected);
        if let Some(message) = (self.record)(item, items) {
            scope.error(message);
        }
    }

    /// Records the output and hands the scope back to be ended.
    fn finish(&mut self) -> Option<Scope> {
        let mut scope = self.scope.take()?;
        let collected = std::mem::take(&mut self.collected);
        if self.capture {
            if let Some(output) = collected.output(self.transform) {
                scope.output(output);
            }
        }
        Some(scope)
    }
}

impl<C> Drop for Tracker<C> {
    fn drop(&mut self) {
        if self.scope.is_none() || std::thread::panicking() {
            // Ended, or the scope's own drop records the panic.
            return;
        }
        let read = self.read;
        if let Some(scope) = self.finish() {
            // Stopping early (`find`, `take(n)`, a `[DONE]` marker) is a normal way to read: it
            // is said, not flagged. An error an item carried stays.
            scope.active().update(|record| {
                if record.level == Level::Default {
                    record.status_message = Some(format!(
                        "the consumer stopped after {read} item{}",
                        if read == 1 { "" } else { "s" }
                    ));
                }
            });
            scope.end_quietly();
        }
    }
}

/// An iterator whose observation ends when it is exhausted or dropped.
#[doc(hidden)]
pub struct ObservedIter<I, C> {
    // First: observations inside the iterator end before its own when it is dropped.
    inner: I,
    tracker: Tracker<C>,
}

impl<I: Iterator, C: Fn(&I::Item, Option<&mut Items>) -> Option<String>> ObservedIter<I, C> {
    /// Observes `inner` under `scope`; `record` captures each item.
    pub fn new(scope: Option<Scope>, inner: I, record: C, transform: Option<Transform>) -> Self {
        Self {
            tracker: Tracker::new(scope, record, transform),
            inner,
        }
    }
}

impl<I: Iterator, C: Fn(&I::Item, Option<&mut Items>) -> Option<String>> Iterator
    for ObservedIter<I, C>
{
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        self.step(Iterator::next)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<I: Iterator, C: Fn(&I::Item, Option<&mut Items>) -> Option<String>> ObservedIter<I, C> {
    /// Takes one item from either end, with the observation current while the inner
    /// iterator works, and ends the observation when there is none left.
    fn step(&mut self, take: impl FnOnce(&mut I) -> Option<I::Item>) -> Option<I::Item> {
        if self.tracker.scope.is_none() {
            return take(&mut self.inner);
        }
        let inner = &mut self.inner;
        let next = Scope::run_lent(&mut self.tracker.scope, || take(inner));
        match &next {
            Some(item) => self.tracker.item(item),
            None => {
                if let Some(scope) = self.tracker.finish() {
                    scope.end();
                }
            }
        }
        next
    }
}

impl<I: DoubleEndedIterator, C: Fn(&I::Item, Option<&mut Items>) -> Option<String>>
    DoubleEndedIterator for ObservedIter<I, C>
{
    fn next_back(&mut self) -> Option<I::Item> {
        self.step(DoubleEndedIterator::next_back)
    }
}

impl<I: FusedIterator, C: Fn(&I::Item, Option<&mut Items>) -> Option<String>> FusedIterator
    for ObservedIter<I, C>
{
}

impl<I: std::fmt::Debug, C> std::fmt::Debug for ObservedIter<I, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservedIter")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S: std::fmt::Debug, C> std::fmt::Debug for ObservedStream<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObservedStream")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<I: ExactSizeIterator, C: Fn(&I::Item, Option<&mut Items>) -> Option<String>> ExactSizeIterator
    for ObservedIter<I, C>
{
}

pin_project_lite::pin_project! {
    /// A stream whose observation ends when it is exhausted or dropped.
    #[doc(hidden)]
    #[must_use = "streams do nothing unless polled"]
    pub struct ObservedStream<S, C> {
        // First: observations inside the stream end before its own when it is dropped.
        #[pin]
        inner: S,
        tracker: Tracker<C>,
        flushing: Option<RootFlush>,
    }
}

impl<S: Stream, C: Fn(&S::Item, Option<&mut Items>) -> Option<String>> ObservedStream<S, C> {
    /// Observes `inner` under `scope`; `record` captures each item.
    pub fn new(scope: Option<Scope>, inner: S, record: C, transform: Option<Transform>) -> Self {
        Self {
            tracker: Tracker::new(scope, record, transform),
            flushing: None,
            inner,
        }
    }
}

impl<S: Stream, C: Fn(&S::Item, Option<&mut Items>) -> Option<String>> Stream
    for ObservedStream<S, C>
{
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<S::Item>> {
        let this = self.project();
        if let Some(flush) = this.flushing.as_mut() {
            std::task::ready!(Pin::new(flush).poll(cx));
            *this.flushing = None;
            return Poll::Ready(None);
        }
        if this.tracker.scope.is_none() {
            return this.inner.poll_next(cx);
        }
        let inner = this.inner;
        let next =
            std::task::ready!(Scope::run_lent(&mut this.tracker.scope, || inner.poll_next(cx)));
        if let Some(item) = &next {
            this.tracker.item(item);
            return Poll::Ready(next);
        }
        let flush = this.tracker.finish().and_then(Scope::end_async);
        if let Some(mut flush) = flush {
            if Pin::new(&mut flush).poll(cx).is_pending() {
                *this.flushing = Some(flush);
                return Poll::Pending;
            }
        }
        Poll::Ready(None)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<S: FusedStream, C: Fn(&S::Item, Option<&mut Items>) -> Option<String>> FusedStream
    for ObservedStream<S, C>
{
    fn is_terminated(&self) -> bool {
        self.flushing.is_none() && self.inner.is_terminated()
    }
}

pin_project_lite::pin_project! {
    /// Runs an `async fn`'s body with its observation current, and hands the observation back
    /// with the body's output, for the stream the function returns to keep it open.
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Opening<F> {
        scope: Option<Scope>,
        #[pin]
        inner: F,
    }
}

impl<F: Future> Opening<F> {
    /// Runs `inner` under `scope`.
    pub fn new(scope: Option<Scope>, inner: F) -> Self {
        Self { scope, inner }
    }
}

impl<F: Future> Future for Opening<F> {
    type Output = (Option<Scope>, F::Output);

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let inner = this.inner;
        let output = std::task::ready!(Scope::run_lent(this.scope, || inner.poll(cx)));
        Poll::Ready((this.scope.take(), output))
    }
}

/// Observes a stream (for `#[observe]` expansions, where a function is easier to name than a
/// constructor of a type with a closure parameter).
#[doc(hidden)]
pub fn observe_stream<S: Stream, C: Fn(&S::Item, Option<&mut Items>) -> Option<String>>(
    scope: Option<Scope>,
    inner: S,
    record: C,
    transform: Option<Transform>,
) -> ObservedStream<S, C> {
    ObservedStream::new(scope, inner, record, transform)
}

/// Observes an iterator (for `#[observe]` expansions).
#[doc(hidden)]
pub fn observe_iter<I: Iterator, C: Fn(&I::Item, Option<&mut Items>) -> Option<String>>(
    scope: Option<Scope>,
    inner: I,
    record: C,
    transform: Option<Transform>,
) -> ObservedIter<I, C> {
    ObservedIter::new(scope, inner, record, transform)
}
