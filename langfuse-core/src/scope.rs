//! The lifecycle of an observation while it runs: start, updates, end.
//!
//! An [`Active`] observation is shared between the code that owns it (a [`Scope`], created by
//! `#[observe]` expansions) and the [`Context`](crate::context::Context) that makes it current,
//! so that nested calls and updates from the body reach it. When the scope ends, the record is
//! handed to the exporter; when the outermost scope of the process ends, it flushes.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context as TaskContext, Poll};
use std::time::SystemTime;

use crate::capture::{CapturedValue, Inputs};
use crate::context::{Context, ContextGuard};
use crate::export::Exporter;
use crate::ids::{ObservationId, TraceId};
use crate::observation::{Level, Observation, ObservationType, TraceAttributes};

/// What this process knows about one trace: shared by all its observations here.
#[derive(Debug)]
pub(crate) struct TraceState {
    id: TraceId,
    has_attributes: AtomicBool,
    attributes: Mutex<Option<Arc<TraceAttributes>>>,
}

impl TraceState {
    pub(crate) fn new(id: TraceId) -> Self {
        Self {
            id,
            has_attributes: AtomicBool::new(false),
            attributes: Mutex::new(None),
        }
    }

    /// The attributes set so far, if any; cheap when none were set.
    fn attributes(&self) -> Option<Arc<TraceAttributes>> {
        if !self.has_attributes.load(Ordering::Acquire) {
            return None;
        }
        lock(&self.attributes).clone()
    }
}

/// An observation that has started and not yet ended.
#[derive(Debug)]
pub(crate) struct Active {
    trace: Arc<TraceState>,
    id: ObservationId,
    /// No observation of this process encloses it: its end flushes.
    local_root: bool,
    /// Taken when the observation ends; updates after that are ignored. Boxed once at the
    /// start so the record travels to the export queue without being copied again.
    record: Mutex<Option<Box<Observation>>>,
}

impl Active {
    pub(crate) fn trace_id(&self) -> TraceId {
        self.trace.id
    }

    pub(crate) fn id(&self) -> ObservationId {
        self.id
    }

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
    format!("panicked: {text}")
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
    active: Arc<Active>,
    meta: &'static Meta,
    exporter: &'static Exporter,
    ended: bool,
}

/// Starts an observation as a child of the current one, or as a new trace's root.
/// Returns `None`, having done nothing else, when tracing is disabled.
#[doc(hidden)]
pub fn start(meta: &'static Meta, inputs: impl FnOnce(&mut Inputs)) -> Option<Scope> {
    let exporter = crate::exporter();
    let settings = exporter.settings()?;
    let parent = crate::context::current();
    let (trace, parent_id) = match &parent {
        Some(parent) => (Arc::clone(&parent.trace), Some(parent.id)),
        None => (Arc::new(TraceState::new(TraceId::random())), None),
    };
    let mut record = Box::new(Observation::new(
        trace.id,
        ObservationId::random(),
        meta.name,
    ));
    record.kind = meta.kind;
    record.parent_id = parent_id;
    if meta.capture_input && settings.capture_io {
        let mut captured = Inputs::default();
        inputs(&mut captured);
        record.input = captured.finish();
    }
    Some(Scope {
        active: Arc::new(Active {
            trace,
            id: record.id,
            local_root: parent.is_none(),
            record: Mutex::new(Some(record)),
        }),
        meta,
        exporter,
        ended: false,
    })
}

impl Scope {
    /// Makes this observation current on this thread until the guard is dropped.
    pub fn enter(&self) -> ContextGuard {
        Context::of(Arc::clone(&self.active)).attach()
    }

    /// Runs `future` with this observation current during every poll; a panic in a poll is
    /// recorded on the observation before it unwinds on.
    pub fn instrument<F: Future>(&self, future: F) -> Instrumented<F> {
        Instrumented {
            active: Arc::clone(&self.active),
            inner: future,
        }
    }

    /// Whether the return value should be captured at all.
    pub fn wants_output(&self) -> bool {
        self.meta.capture_output && self.exporter.settings().is_some_and(|s| s.capture_io)
    }

    /// Records the return value.
    pub fn output(&mut self, value: CapturedValue) {
        self.active.update(|record| record.output = Some(value));
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

    /// Ends the observation; when it is the outermost one, flushes and waits (sync code).
    pub fn end(mut self) {
        if self.close() {
            let timeout = self.exporter.settings().map(|s| s.flush_timeout);
            if let Some(timeout) = timeout {
                self.exporter.flush_blocking(timeout);
            }
        }
    }

    /// Ends the observation; when it is the outermost one, flushes and awaits it (async code).
    pub async fn end_async(mut self) {
        if self.close() {
            let timeout = self.exporter.settings().map(|s| s.flush_timeout);
            if let Some(timeout) = timeout {
                // Boxed: the flush's state would otherwise enlarge every observed future,
                // though only the outermost one ever awaits it.
                Box::pin(self.exporter.flush(timeout)).await;
            }
        }
    }

    /// Hands the record to the exporter. Returns whether the caller should flush.
    fn close(&mut self) -> bool {
        self.ended = true;
        let Some(record) = self.active.finish() else {
            return false;
        };
        self.exporter.record_boxed(record);
        self.active.local_root
            && self.meta.flush
            && self.exporter.settings().is_some_and(|s| s.flush_on_root)
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let panicking = std::thread::panicking();
        self.active.update(|record| {
            if panicking {
                if record.level != Level::Error {
                    record.level = Level::Error;
                    record.status_message = Some("panicked".to_owned());
                }
            } else {
                record.level = Level::Warning;
                record.status_message = Some("cancelled: dropped before it completed".to_owned());
            }
        });
        // A cancelled root does not flush: it is dropped inside someone's poll, where blocking
        // would stall a runtime thread; the guard from `init` or the next root delivers it. A
        // panicking root flushes: the panic may well end the process.
        if self.close() && panicking {
            if let Some(timeout) = self.exporter.settings().map(|s| s.flush_timeout) {
                self.exporter.flush_blocking(timeout);
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// A future running as an observation's body; see [`Scope::instrument`].
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Instrumented<F> {
        active: Arc<Active>,
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _attached = Context::of(Arc::clone(this.active)).attach();
        let inner = this.inner;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                this.active.record_panic(&*payload);
                std::panic::resume_unwind(payload)
            }
        }
    }
}
