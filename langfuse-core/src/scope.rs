//! The lifecycle of an observation while it runs: start, updates, end.
//!
//! An [`Active`] observation is shared between the code that owns it (a [`Scope`], created by
//! `#[observe]` expansions) and the [`Context`](crate::context::Context) that makes it current,
//! so that nested calls and updates from the body reach it. When the scope ends, the record is
//! handed to the exporter; when the outermost scope of the process ends, it flushes.

use std::any::Any;
use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::task::{Context as TaskContext, Poll};
use std::time::SystemTime;

use crate::capture::{CapturedValue, Inputs};
use crate::client::Langfuse;
use crate::context::ContextGuard;
use crate::export::Exporter;
use crate::ids::{ObservationId, TraceId};
use crate::observation::{Level, Observation, ObservationType, TraceAttributes};

/// What this process knows about one trace: shared by all its observations here.
#[derive(Debug)]
pub(crate) struct TraceState {
    id: TraceId,
    /// Decided once from the trace id, so every observation of a trace is kept or none is.
    sampled: bool,
    /// Refused as a whole when it started because the export queue was nearly full: its
    /// observations are counted as dropped, so that overload loses whole traces rather than
    /// the roots of traces whose children got through.
    shed: bool,
    has_attributes: AtomicBool,
    /// Set by an update, cleared when an observation takes the attributes along.
    undelivered: AtomicBool,
    attributes: Mutex<Option<Arc<TraceAttributes>>>,
    /// The client the trace's records go to. Set when the root starts; for a trace continued
    /// from elsewhere, at its first use here.
    client: OnceLock<Binding>,
}

/// Where a trace's records go.
#[derive(Debug)]
enum Binding {
    /// The client in effect where the trace started.
    Client(Langfuse),
    /// The process default, held as it was at `generation`: while `init` has not replaced it
    /// since, every record of the trace uses it without reading the default again.
    Default { client: Langfuse, generation: u64 },
}

impl Binding {
    /// The client in effect here.
    fn here() -> Self {
        match crate::client::scoped() {
            Some(client) => Self::Client(client),
            None => {
                // Read before the default: a replacement in between shows as a newer
                // generation at the next use, never as a stale client taken for current.
                let generation = crate::global::default_generation();
                let client = crate::global::with_default(Langfuse::clone);
                Self::Default { client, generation }
            }
        }
    }

    /// The client as it was bound.
    fn client(&self) -> &Langfuse {
        match self {
            Self::Client(client) | Self::Default { client, .. } => client,
        }
    }
}

impl TraceState {
    /// A trace whose client is not known yet: one continued from elsewhere.
    pub(crate) fn new(id: TraceId, sample_rate: f64) -> Self {
        Self::with(id, sampled(id, sample_rate), false, OnceLock::new())
    }

    /// A trace begun here, going to `client`, kept or not as that client decided.
    fn begun(id: TraceId, start: Start, client: Binding) -> Self {
        Self::with(
            id,
            start.sampled && !start.shed,
            start.shed,
            OnceLock::from(client),
        )
    }

    fn with(id: TraceId, sampled: bool, shed: bool, client: OnceLock<Binding>) -> Self {
        Self {
            id,
            sampled,
            shed,
            has_attributes: AtomicBool::new(false),
            undelivered: AtomicBool::new(false),
            attributes: Mutex::new(None),
            client,
        }
    }

    /// Runs `use_it` with the trace's client. A trace continued from elsewhere takes the
    /// client in effect where it is first used here: its first observation, event or score.
    pub(crate) fn with_client<R>(&self, use_it: impl FnOnce(&Langfuse) -> R) -> R {
        match self.client.get_or_init(Binding::here) {
            Binding::Default { generation, .. }
                if *generation != crate::global::default_generation() =>
            {
                crate::global::with_default(use_it)
            }
            binding => use_it(binding.client()),
        }
    }

    pub(crate) fn sampled(&self) -> bool {
        self.sampled
    }

    pub(crate) fn shed(&self) -> bool {
        self.shed
    }

    /// Applies `change` to the trace's attributes; observations ending later carry them.
    pub(crate) fn update(&self, change: impl FnOnce(&mut TraceAttributes)) {
        let mut attributes = lock(&self.attributes);
        let mut updated = attributes.as_deref().cloned().unwrap_or_default();
        change(&mut updated);
        *attributes = Some(Arc::new(updated));
        self.undelivered.store(true, Ordering::Release);
        self.has_attributes.store(true, Ordering::Release);
    }

    /// The attributes set so far, if any, for an ending observation to carry; cheap when
    /// none were set.
    fn attributes(&self) -> Option<Arc<TraceAttributes>> {
        if !self.has_attributes.load(Ordering::Acquire) {
            return None;
        }
        let attributes = lock(&self.attributes);
        self.undelivered.store(false, Ordering::Release);
        attributes.clone()
    }
}

impl Drop for TraceState {
    fn drop(&mut self) {
        if self.undelivered.load(Ordering::Acquire) {
            crate::diagnostics::warn(
                "trace-attributes",
                format_args!(
                    "trace {} was updated after its last observation here ended, so the update \
                     was not sent; update the trace inside an observed function",
                    self.id
                ),
            );
        }
    }
}

/// Whether a trace is kept at `rate`: the lower 8 bytes of its id against the rate's share of
/// the `u64` range, as OpenTelemetry's ratio sampler does, so services agree on each trace.
pub(crate) fn sampled(id: TraceId, rate: f64) -> bool {
    if rate >= 1.0 {
        return true;
    }
    let bytes = id.to_bytes();
    let mut low = [0u8; 8];
    low.copy_from_slice(&bytes[8..]);
    (u64::from_be_bytes(low) as f64) < rate * u64::MAX as f64
}

/// How an observation behaves, fixed when it starts: from `#[observe]`'s options or a scoped
/// observation's builder.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Behaviour {
    /// Whether the output is recorded: the function's option and the client's capture setting.
    pub(crate) capture_output: bool,
    pub(crate) flush: bool,
}

/// What is current on a thread or in a task: an observation of this process, or the parent
/// in another service of a trace continued here.
#[derive(Debug)]
pub(crate) enum Current {
    Local(Arc<Active>),
    /// An observation whose owner lent it to the context while its body runs (see
    /// [`Scope::run_lent`]).
    Lent(Scope),
    Remote(Arc<RemoteParent>),
}

impl Clone for Current {
    fn clone(&self) -> Self {
        match self {
            Self::Local(active) | Self::Lent(Scope { active }) => Self::Local(Arc::clone(active)),
            Self::Remote(parent) => Self::Remote(Arc::clone(parent)),
        }
    }
}

impl Current {
    /// The parent of a trace continued from elsewhere: current until a local observation
    /// starts under it.
    pub(crate) fn remote(trace_id: TraceId, parent: Option<ObservationId>) -> Self {
        let sample_rate = crate::client()
            .exporter()
            .settings()
            .map_or(1.0, |s| s.sample_rate);
        Self::Remote(Arc::new(RemoteParent {
            trace: Arc::new(TraceState::new(trace_id, sample_rate)),
            id: parent,
        }))
    }

    fn trace_state(&self) -> &Arc<TraceState> {
        match self {
            Self::Local(active) | Self::Lent(Scope { active }) => &active.trace,
            Self::Remote(parent) => &parent.trace,
        }
    }

    pub(crate) fn trace(&self) -> &TraceState {
        self.trace_state()
    }

    pub(crate) fn trace_id(&self) -> TraceId {
        self.trace().id
    }

    /// The current observation's id, or the remote parent's (a continued trace may have none).
    pub(crate) fn id(&self) -> Option<ObservationId> {
        match self {
            Self::Local(active) | Self::Lent(Scope { active }) => Some(active.id),
            Self::Remote(parent) => parent.id,
        }
    }

    pub(crate) fn is_remote(&self) -> bool {
        matches!(self, Self::Remote(_))
    }

    /// Applies `change` to the current observation's record unless it has ended; a remote
    /// parent has no record here.
    pub(crate) fn update(&self, change: impl FnOnce(&mut Observation)) -> bool {
        match self {
            Self::Local(active) | Self::Lent(Scope { active }) => active.update(change),
            Self::Remote(_) => false,
        }
    }
}

/// The parent of a trace continued here, which has no record of its own in this process.
#[derive(Debug)]
pub(crate) struct RemoteParent {
    trace: Arc<TraceState>,
    /// `None` for a trace continued by its id alone.
    id: Option<ObservationId>,
}

/// An observation of this process that has started and not yet ended.
#[derive(Debug)]
pub(crate) struct Active {
    trace: Arc<TraceState>,
    id: ObservationId,
    /// No observation of this process encloses it: its end flushes.
    local_root: bool,
    behaviour: Behaviour,
    /// Set once its owner has ended it, so dropping the owner does nothing more.
    ended: AtomicBool,
    /// Taken when the observation ends; updates after that are ignored. Boxed once at the
    /// start so the record travels to the export queue without being copied again.
    record: Mutex<Option<Box<Observation>>>,
}

impl Active {
    /// Applies `change` to the record unless the observation has ended.
    pub(crate) fn update(&self, change: impl FnOnce(&mut Observation)) -> bool {
        match lock(&self.record).as_mut() {
            Some(record) => {
                change(record);
                true
            }
            None => false,
        }
    }

    /// The trace it belongs to.
    #[cfg(feature = "tracing")]
    pub(crate) fn trace(&self) -> &TraceState {
        &self.trace
    }

    fn record_panic(&self, payload: &(dyn Any + Send)) {
        let message = panic_message(payload);
        self.update(|record| {
            record.level = Level::Error;
            record.status_message = Some(message);
        });
    }

    /// Takes the finished record, with the trace attributes it delivers.
    fn finish(&self) -> Option<Box<Observation>> {
        let mut record = lock(&self.record).take()?;
        record.end_time = SystemTime::now();
        record.trace = self.trace.attributes();
        Some(record)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks cannot leave a half-written record behind
    // (every change is a plain field assignment), so a poisoned lock is still usable.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The text of a panic payload, as the default panic hook prints it.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    let text = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("Box<dyn Any>");
    crate::capture::message(format_args!("panicked: {text}"))
}

/// What `#[observe]` knows at compile time about a function.
#[doc(hidden)]
#[derive(Debug)]
pub struct Meta {
    /// The observation's name.
    pub name: &'static str,
    /// The observation's type.
    pub kind: ObservationType,
    /// Whether arguments are recorded.
    pub capture_input: bool,
    /// Whether the return value is recorded.
    pub capture_output: bool,
    /// Whether this function flushes when it is the outermost observation.
    pub flush: bool,
}

/// An observation owned by the code that runs it; ends it exactly once.
///
/// Dropped without [`end`](Scope::end), it still ends: as ERROR while panicking, otherwise as
/// WARNING ("cancelled"), which is what happens to a future dropped before it completes.
#[doc(hidden)]
#[derive(Debug)]
pub struct Scope {
    // One pointer, so that `Option<Scope>` adds little to every observed future.
    active: Arc<Active>,
}

/// Starts an observation as a child of the current one, or as a new trace's root.
/// Returns `None`, having done nothing else, when tracing is disabled.
#[doc(hidden)]
pub fn start(meta: &'static Meta, inputs: impl FnOnce(&mut Inputs)) -> Option<Scope> {
    let behaviour = Behaviour {
        capture_output: meta.capture_output,
        flush: meta.flush,
    };
    begin(Cow::Borrowed(meta.name), meta.kind, behaviour, |record| {
        if meta.capture_input {
            let mut captured = Inputs::default();
            inputs(&mut captured);
            record.input = captured.finish();
        }
    })
}

/// What a new trace's client decides about it.
#[derive(Clone, Copy)]
struct Start {
    /// Kept by sampling.
    sampled: bool,
    /// Kept by sampling, but refused whole because the client's queue is congested.
    shed: bool,
}

impl Start {
    /// `None` when the client is disabled.
    fn decide(exporter: &Exporter, id: TraceId) -> Option<Self> {
        let sampled = sampled(id, exporter.settings()?.sample_rate);
        Some(Self {
            sampled,
            shed: sampled && exporter.congested(),
        })
    }
}

/// Starts an observation; `prepare` fills in what is known at the start (not called when the
/// trace is sampled out or capture is off globally).
pub(crate) fn begin(
    name: Cow<'static, str>,
    kind: ObservationType,
    behaviour: Behaviour,
    prepare: impl FnOnce(&mut Observation),
) -> Option<Scope> {
    begin_under(
        || crate::context::with_current(|current| current.map(Parent::of)),
        || None,
        name,
        kind,
        behaviour,
        prepare,
    )
}

/// Where a new observation goes: what it needs of the observation or remote parent it starts
/// under, taken without holding on to that one.
pub(crate) struct Parent {
    trace: Arc<TraceState>,
    id: Option<ObservationId>,
    /// The parent is in another process: the new observation is this process's root.
    remote: bool,
}

impl Parent {
    pub(crate) fn of(current: &Current) -> Self {
        Self {
            trace: Arc::clone(current.trace_state()),
            id: current.id(),
            remote: current.is_remote(),
        }
    }
}

/// Starts an observation as a child of what `parent` returns (read only when tracing is on),
/// or, when it returns `None`, as the root of a new trace whose id `trace_id` may give (else a
/// random one): for spans whose place is known from elsewhere than the current context, such
/// as a `tracing` span's ancestors and its OpenTelemetry trace.
pub(crate) fn begin_under(
    parent: impl FnOnce() -> Option<Parent>,
    trace_id: impl FnOnce() -> Option<TraceId>,
    name: Cow<'static, str>,
    kind: ObservationType,
    mut behaviour: Behaviour,
    prepare: impl FnOnce(&mut Observation),
) -> Option<Scope> {
    if !crate::client::any_enabled() || crate::export::on_export_thread() {
        return None;
    }
    let (trace, parent_id, local_root) = match parent() {
        Some(Parent { trace, id, remote }) => (trace, id, remote),
        None => {
            let client = Binding::here();
            let id = trace_id().unwrap_or_else(TraceId::random);
            let start = Start::decide(client.client().exporter(), id)?;
            (Arc::new(TraceState::begun(id, start, client)), None, true)
        }
    };
    let capture_io =
        trace.with_client(|client| client.exporter().settings().map(|s| s.capture_io))?;
    // Decided once, here, rather than asked of the client again when the call returns.
    behaviour.capture_output &= capture_io;
    let id = ObservationId::random();
    // A sampled-out trace still needs a current observation, so its children know they are
    // sampled out too; it just never gets a record.
    let record = trace.sampled.then(|| {
        let mut record = Box::new(Observation::new(trace.id, id, name));
        record.kind = kind;
        record.parent_id = parent_id;
        record.remote_parent = parent_id.is_some() && local_root;
        if capture_io {
            prepare(&mut record);
        }
        record
    });
    Some(Scope {
        active: Arc::new(Active {
            trace,
            id,
            local_root,
            behaviour,
            ended: AtomicBool::new(false),
            record: Mutex::new(record),
        }),
    })
}

impl Scope {
    /// Makes this observation current on this thread until the guard is dropped.
    pub fn enter(&self) -> ContextGuard {
        ContextGuard::enter(Some(Current::Local(Arc::clone(&self.active))))
    }

    /// Runs `work` with the observation in `home` current (or nothing more when it is
    /// empty); a panic in it is recorded on the observation, then goes on unwinding (the
    /// scope's drop ends the observation).
    ///
    /// The scope is lent to the context for the time, not shared with it: on this machine the
    /// two atomic reference counts that sharing costs were most of an observed item's or poll's
    /// cost. It is back in `home` when `work` returns or unwinds.
    pub(crate) fn run_lent<R>(home: &mut Option<Self>, work: impl FnOnce() -> R) -> R {
        let Some(scope) = home.take() else {
            return work();
        };
        let id = scope.active.id;
        let outcome = {
            let _lent = Lent {
                home: &mut *home,
                id,
                previous: Some(crate::context::swap(Some(Current::Lent(scope)))),
            };
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
        };
        match outcome {
            Ok(value) => value,
            Err(payload) => {
                if let Some(scope) = home.as_ref() {
                    scope.active.record_panic(&*payload);
                }
                std::panic::resume_unwind(payload)
            }
        }
    }

    /// Whether the return value should be captured at all.
    pub fn wants_output(&self) -> bool {
        self.active.behaviour.capture_output
    }

    /// Records the return value, unless the body already set the output explicitly.
    pub fn output(&mut self, value: CapturedValue) {
        self.active.update(|record| {
            record.output.get_or_insert(value);
        });
    }

    /// Records a returned error: level ERROR with the error's message.
    pub fn error(&mut self, message: String) {
        self.active.update(|record| {
            record.level = Level::Error;
            record.status_message = Some(message);
        });
    }

    /// Records a panic: level ERROR with the panic's message.
    pub fn panicked(&mut self, payload: &(dyn Any + Send)) {
        self.active.record_panic(payload);
    }

    /// How a sync call ends, for code `#[observe]` generates: records the return value with
    /// `record`, or the panic (which then goes on unwinding), and ends the observation. The one
    /// sequence every sync body strategy uses.
    #[inline]
    pub fn end_sync<R>(
        scope: Option<Self>,
        outcome: std::thread::Result<R>,
        record: impl FnOnce(&mut Self, &R),
    ) -> R {
        match outcome {
            Ok(value) => {
                if let Some(mut scope) = scope {
                    record(&mut scope, &value);
                    scope.end();
                }
                value
            }
            Err(payload) => {
                if let Some(mut scope) = scope {
                    scope.panicked(&*payload);
                    scope.end();
                }
                std::panic::resume_unwind(payload)
            }
        }
    }

    /// Ends the observation; when it is the outermost one, flushes and waits as
    /// [`Exporter::root_flush_wait`](crate::export::Exporter) allows (sync code).
    pub fn end(mut self) {
        if let Some((exporter, target)) = self.close() {
            exporter.root_flush_blocking(target);
        }
    }

    /// Ends the observation; when it is the outermost one, returns the flush for async code
    /// to await. Not an `async fn`: its state would enlarge every observed future, though only
    /// the outermost one ever flushes.
    pub fn end_async(mut self) -> Option<RootFlush> {
        let (exporter, target) = self.close()?;
        Some(RootFlush(Box::pin(exporter.root_flush(target)?)))
    }

    /// Ends the observation without flushing, for an observation that stops where blocking
    /// or waiting is wrong (a stream dropped by its consumer).
    pub(crate) fn end_quietly(mut self) {
        self.close();
    }

    pub(crate) fn active(&self) -> &Active {
        &self.active
    }

    /// This observation as a parent for others, to hand to [`begin_under`].
    #[cfg(feature = "tracing")]
    pub(crate) fn as_parent(&self) -> Current {
        Current::Local(Arc::clone(&self.active))
    }

    /// Hands the record to its trace's client. Returns, when the caller should flush, that
    /// client and up to which record: this one, accepted after every record of its trace that
    /// ended before it.
    fn close(&mut self) -> Option<(Exporter, u64)> {
        self.active.ended.store(true, Ordering::Relaxed);
        let trace = &self.active.trace;
        let Some(record) = self.active.finish() else {
            if trace.shed {
                trace.with_client(|client| client.exporter().count_shed());
            }
            return None;
        };
        let flushes = self.active.local_root && self.active.behaviour.flush;
        trace.with_client(|client| {
            let seq = client.exporter().record_boxed(record)?;
            flushes.then(|| (client.exporter().clone(), seq))
        })
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if self.active.ended.load(Ordering::Relaxed) {
            return;
        }
        let panicking = std::thread::panicking();
        self.active.update(|record| {
            // How an observation ended, strongest first: a panic, then a returned error (both
            // already recorded as ERROR, and a panic caught by a runtime before this drop
            // looks like a plain drop here), then being dropped before completing.
            if record.level == Level::Error {
                return;
            }
            if panicking {
                record.level = Level::Error;
                record.status_message = Some("panicked".to_owned());
            } else if crate::context::torn_down() {
                // Only an observation lent to the context is dropped with it: the process
                // exited while its body ran.
                record.level = Level::Warning;
                record.status_message =
                    Some("unfinished: the process exited while it ran".to_owned());
            } else {
                record.level = Level::Warning;
                record.status_message = Some("cancelled: dropped before it completed".to_owned());
            }
        });
        // A cancelled root does not flush: it is dropped inside someone's poll, where blocking
        // would stall a runtime thread; the guard from `init` or the next root delivers it. A
        // panicking root flushes: the panic may well end the process.
        if let Some((exporter, target)) = self.close().filter(|_| panicking) {
            exporter.root_flush_blocking(target);
        }
    }
}

/// Gives a lent scope back to its home, and the context what was current before.
struct Lent<'a> {
    home: &'a mut Option<Scope>,
    id: ObservationId,
    previous: Option<Option<Current>>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        let previous = self.previous.take().flatten();
        match crate::context::swap(previous) {
            Some(Current::Lent(scope)) if scope.active.id == self.id => *self.home = Some(scope),
            // A context guard made inside the body was leaked (`mem::forget`), and the lent
            // scope with it: its observation can no longer end.
            _ => crate::diagnostics::warn(
                "context-leaked",
                format_args!(
                    "observation {} was lost: a context guard made inside it was leaked \
                     (mem::forget) instead of dropped",
                    self.id
                ),
            ),
        }
    }
}

/// The observation of a function whose body stays in place and whose value cannot be
/// recorded (it returns a closure): however the body returns, dropping this ends the
/// observation normally; unwinding ends it as a panic.
#[doc(hidden)]
#[derive(Debug)]
pub struct EndOnReturn(Option<Scope>);

impl EndOnReturn {
    /// Ends `scope` when dropped.
    pub fn new(scope: Option<Scope>) -> Self {
        Self(scope)
    }

    /// Makes the observation current on this thread until the guard is dropped.
    pub fn enter(&self) -> Option<ContextGuard> {
        self.0.as_ref().map(Scope::enter)
    }
}

impl Drop for EndOnReturn {
    fn drop(&mut self) {
        if let Some(scope) = self.0.take() {
            // While unwinding, the scope's own drop records the panic.
            if !std::thread::panicking() {
                scope.end();
            }
        }
    }
}

/// The flush that ends the outermost observation of async code.
#[doc(hidden)]
#[must_use = "futures do nothing unless polled"]
pub struct RootFlush(Pin<Box<dyn Future<Output = crate::export::FlushReport> + Send>>);

impl std::fmt::Debug for RootFlush {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RootFlush")
    }
}

impl Future for RootFlush {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx).map(drop)
    }
}

pin_project_lite::pin_project! {
    /// An observed future: runs `inner` as the body of `scope`'s observation, then records its
    /// output with `record`, ends the observation and, for the outermost one, flushes before
    /// yielding the output. With no scope (tracing disabled) it is `inner` and nothing else.
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Observed<F: Future, C> {
        // First, so that a future dropped before it completes ends the observations inside
        // it before its own: fields drop in order.
        #[pin]
        inner: F,
        scope: Option<Scope>,
        record: C,
        // The output waits here while the outermost observation flushes.
        flushing: Option<(RootFlush, F::Output)>,
    }
}

impl<F: Future, C: Fn(&mut Scope, &F::Output)> Observed<F, C> {
    /// Observes `inner` under `scope`; `record` turns the output into recorded fields.
    pub fn new(scope: Option<Scope>, inner: F, record: C) -> Self {
        Self {
            scope,
            record,
            inner,
            flushing: None,
        }
    }
}

impl<F: Future, C: Fn(&mut Scope, &F::Output)> Future for Observed<F, C> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        if let Some((flush, _)) = this.flushing.as_mut() {
            std::task::ready!(Pin::new(flush).poll(cx));
            if let Some((_, output)) = this.flushing.take() {
                return Poll::Ready(output);
            }
        }
        let inner = this.inner.as_mut();
        let output = std::task::ready!(Scope::run_lent(this.scope, || inner.poll(cx)));
        let Some(mut scope) = this.scope.take() else {
            return Poll::Ready(output);
        };
        (this.record)(&mut scope, &output);
        match scope.end_async() {
            None => Poll::Ready(output),
            Some(mut flush) => match Pin::new(&mut flush).poll(cx) {
                Poll::Ready(()) => Poll::Ready(output),
                Poll::Pending => {
                    *this.flushing = Some((flush, output));
                    Poll::Pending
                }
            },
        }
    }
}
