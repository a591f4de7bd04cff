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
use std::task::{Context as TaskContext, Poll};

use crate::ids::{IdError, ObservationId, TraceId};
use crate::scope::Current;

thread_local! {
    static CURRENT: Cell<Option<Current>> = const { Cell::new(None) };
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
    active: Option<Current>,
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

    pub(crate) fn of(active: Current) -> Self {
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
        self.active.as_ref().and_then(|active| active.id())
    }

    /// Makes this context current on this thread until the guard is dropped.
    pub fn attach(&self) -> ContextGuard {
        ContextGuard::enter(self.active.clone())
    }

    /// Runs `work` with this context current.
    pub fn run<R>(&self, work: impl FnOnce() -> R) -> R {
        let _attached = self.attach();
        work()
    }
}

/// A trace begun in another process or service, to continue here: observations started under
/// it join that trace, as children of the given parent observation (or as its roots).
///
/// Ids are checked when the context is made: an invalid id is an error at that call, never
/// replaced silently.
///
/// ```
/// use langfuse_observe_core::context::TraceContext;
///
/// let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
/// let remote = TraceContext::from_traceparent(incoming)?;
/// assert_eq!(remote.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// remote.run(|| { /* observed calls here join the remote trace */ });
///
/// assert!(TraceContext::new("not-an-id").is_err());
/// let derived = TraceContext::from_seed("ticket-1234"); // any foreign string
/// assert_eq!(derived.trace_id(), TraceContext::from_seed("ticket-1234").trace_id());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: TraceId,
    parent_id: Option<ObservationId>,
}

/// Why a `traceparent` header value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TraceparentError {
    /// Not four dash-separated fields with version `00`.
    #[error(
        "invalid traceparent {0:?}: expected `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`"
    )]
    Format(String),
    /// The trace or parent id in it is invalid.
    #[error("invalid traceparent: {0}")]
    Id(#[from] IdError),
}

impl TraceContext {
    /// Continues the trace `trace_id` (32 lowercase hex characters), new observations being
    /// its roots.
    pub fn new(trace_id: &str) -> Result<Self, IdError> {
        Ok(Self {
            trace_id: TraceId::parse(trace_id)?,
            parent_id: None,
        })
    }

    /// Continues the trace as children of the observation `parent_id` (16 lowercase hex).
    pub fn with_parent(self, parent_id: &str) -> Result<Self, IdError> {
        Ok(Self {
            parent_id: Some(ObservationId::parse(parent_id)?),
            ..self
        })
    }

    /// The trace whose id is derived from any string (a request id, a UUID, a ticket number)
    /// by the rule the Python and JS SDKs use, so every service derives the same trace.
    pub fn from_seed(seed: &str) -> Self {
        Self {
            trace_id: TraceId::from_seed(seed),
            parent_id: None,
        }
    }

    /// The context of an incoming W3C `traceparent` header.
    pub fn from_traceparent(value: &str) -> Result<Self, TraceparentError> {
        let format = || TraceparentError::Format(value.chars().take(80).collect());
        let mut fields = value.trim().split('-');
        let (Some("00"), Some(trace), Some(parent), Some(flags), None) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            return Err(format());
        };
        if flags.len() != 2 || !flags.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format());
        }
        Ok(Self {
            trace_id: TraceId::parse(trace)?,
            parent_id: Some(ObservationId::parse(parent)?),
        })
    }

    /// The trace continued.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The observation new ones hang under, if any.
    pub fn parent_id(&self) -> Option<ObservationId> {
        self.parent_id
    }

    /// A [`Context`] for this trace, to attach or carry into futures.
    pub fn context(&self) -> Context {
        Context::of(Current::remote(self.trace_id, self.parent_id))
    }

    /// Makes this trace current on this thread until the guard is dropped.
    pub fn attach(&self) -> ContextGuard {
        self.context().attach()
    }

    /// Runs `work` inside this trace.
    pub fn run<R>(&self, work: impl FnOnce() -> R) -> R {
        self.context().run(work)
    }
}

/// The W3C `traceparent` header value for the current observation, to send with an outgoing
/// request so that the receiving service continues this trace.
pub fn traceparent() -> Option<String> {
    let active = current()?;
    let parent = active.id()?;
    let flags = u8::from(active.trace().sampled());
    Some(format!("00-{}-{parent}-{flags:02x}", active.trace_id()))
}

/// Restores the previous context when dropped. Bound to the thread it was created on.
#[must_use = "the context is current only while the guard lives"]
pub struct ContextGuard {
    previous: Option<Current>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl std::fmt::Debug for ContextGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContextGuard")
    }
}

impl ContextGuard {
    /// Makes `active` current until the guard is dropped.
    pub(crate) fn enter(active: Option<Current>) -> Self {
        Self {
            previous: swap(active),
            _not_send: std::marker::PhantomData,
        }
    }
}

impl Drop for ContextGuard {
    fn drop(&mut self) {
        swap(self.previous.take());
    }
}

/// Makes `current` current and returns what was; on a thread whose slot is already gone (it
/// is shutting down), changes nothing and gives `current` back.
pub(crate) fn swap(current: Option<Current>) -> Option<Current> {
    let mut current = current;
    let _ = CURRENT.try_with(|slot| current = slot.replace(current.take()));
    current
}

/// Whether this thread's context is being destroyed, as its thread-locals are when the
/// process exits (`std::process::exit`) inside an observed call.
pub(crate) fn torn_down() -> bool {
    CURRENT.try_with(|_| ()).is_err()
}

pub(crate) fn current() -> Option<Current> {
    with_current(|active| active.cloned())
}

/// Runs `look` on what is current, without taking a reference to it: the start of every
/// observation asks, and most need only its trace.
pub(crate) fn with_current<R>(look: impl FnOnce(Option<&Current>) -> R) -> R {
    let active = swap(None);
    let seen = look(active.as_ref());
    swap(active);
    seen
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
