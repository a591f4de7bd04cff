//! The current observation: which observation a new one becomes the child of.
//!
//! The current observation is held in a thread-local that is set for exactly as long as an
//! observed body runs: for a sync function, from entry to return; for a future, during each of
//! its polls. Because a future restores it between polls, the context behaves like a task-local
//! that works on any executor and follows each branch of `join!` or `select!` separately.
//!
//! Work handed to another task or thread does not inherit it on its own: a spawned task starts
//! a new trace. Carry it explicitly with [`spawn`], [`FutureExt::in_current_observation`], or
//! [`Context::current`] and [`Context::attach`] for threads.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use crate::ids::{ObservationId, TraceId};
use crate::scope::Active;

thread_local! {
    static CURRENT: Cell<Option<Arc<Active>>> = const { Cell::new(None) };
}

/// A handle to an observation that work can run under, to carry it across tasks and threads.
///
/// ```
/// use langfuse_observe_core::context::Context;
///
/// let context = Context::current();
/// std::thread::spawn(move || {
///     let _attached = context.attach();
///     // observed calls here become children of the observation that was current above
/// })
/// .join()
/// .unwrap();
/// ```
#[derive(Clone, Default)]
pub struct Context {
    active: Option<Arc<Active>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("trace_id", &self.trace_id())
            .field("observation_id", &self.observation_id())
            .finish()
    }
}

impl Context {
    /// The observation current on this thread or task, if any.
    pub fn current() -> Self {
        Self { active: current() }
    }

    pub(crate) fn of(active: Arc<Active>) -> Self {
        Self {
            active: Some(active),
        }
    }

    /// The id of the trace this context belongs to.
    pub fn trace_id(&self) -> Option<TraceId> {
        self.active.as_ref().map(|active| active.trace_id())
    }

    /// The id of the observation this context stands for.
    pub fn observation_id(&self) -> Option<ObservationId> {
        self.active.as_ref().map(|active| active.id())
    }

    /// Makes this context current on this thread until the guard is dropped.
    pub fn attach(&self) -> ContextGuard {
        ContextGuard {
            previous: CURRENT.with(|current| current.replace(self.active.clone())),
            _not_send: std::marker::PhantomData,
        }
    }

    /// Runs `work` with this context current.
    pub fn run<R>(&self, work: impl FnOnce() -> R) -> R {
        let _attached = self.attach();
        work()
    }
}

/// Restores the previous context when dropped. Bound to the thread it was created on.
#[must_use = "the context is current only while the guard lives"]
pub struct ContextGuard {
    previous: Option<Arc<Active>>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl std::fmt::Debug for ContextGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContextGuard")
    }
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // The slot may already be gone while the thread itself shuts down.
        let _ = CURRENT.try_with(|current| current.set(previous));
    }
}

pub(crate) fn current() -> Option<Arc<Active>> {
    CURRENT
        .try_with(|current| {
            let active = current.take();
            current.set(active.clone());
            active
        })
        .ok()
        .flatten()
}

pin_project_lite::pin_project! {
    /// A future that runs with a given context current during each poll.
    #[must_use = "futures do nothing unless polled"]
    pub struct WithContext<F> {
        context: Context,
        #[pin]
        inner: F,
    }
}

impl<F> WithContext<F> {
    pub(crate) fn new(inner: F, context: Context) -> Self {
        Self { context, inner }
    }
}

impl<F: Future> Future for WithContext<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _attached = this.context.attach();
        this.inner.poll(cx)
    }
}

/// Carries the current observation into futures that run elsewhere.
pub trait FutureExt: Future + Sized {
    /// Runs this future with the observation that is current now, wherever it is polled.
    ///
    /// ```
    /// use langfuse_observe_core::context::FutureExt;
    ///
    /// # async fn example() {
    /// let task = tokio::spawn(async { /* observed calls nest here */ }.in_current_observation());
    /// task.await.unwrap();
    /// # }
    /// ```
    fn in_current_observation(self) -> WithContext<Self> {
        WithContext::new(self, Context::current())
    }

    /// Runs this future with `context` current.
    fn with_context(self, context: Context) -> WithContext<Self> {
        WithContext::new(self, context)
    }
}

impl<F: Future> FutureExt for F {}

/// Spawns `future` on the current Tokio runtime as a child of the current observation.
///
/// `tokio::spawn` alone starts a new trace, because the task does not know where it came from.
///
/// # Panics
///
/// When called outside a Tokio runtime, like `tokio::spawn`.
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future.in_current_observation())
}
