//! The client: one Langfuse destination (its configuration, queue and export worker) as a
//! value, and which client a trace's records go to.
//!
//! A trace belongs to the client in effect where its root starts: the one [`Langfuse::run`],
//! [`Langfuse::scope`] or [`Langfuse::set_default`] put in effect, else the process default.
//! Its children, updates and scores go where the root went. A trace of the process default
//! follows the default: what it records after [`init`](crate::init) replaced the default
//! goes to the new one, which is how `init` inside `#[observe] async fn main` takes effect.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use crate::config::Config;
use crate::export::{Exporter, FlushReport, Stats};
use crate::global::{FlushGuard, InitError};
use crate::ids::TraceId;
use crate::observation::{Observation, Score};
use crate::prompt::{PromptRequest, Service as PromptService};

/// Whether any client that accepts records was ever made: until one is, every instrumented
/// call returns at its first check.
static ANY_ENABLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// The client set for this thread by `run`, `scope` or `set_default`.
    static SCOPED: RefCell<Option<Langfuse>> = const { RefCell::new(None) };
}

/// A Langfuse client: where the traces started under it go, with its own configuration, queue
/// and export worker. Cheap to clone; clones share the pipeline.
///
/// Most programs use the process default that [`init`](crate::init) sets (or that is made
/// from the environment on first use). A client value serves a second project in the same
/// process, a tenant, or a test with its own server:
///
/// ```no_run
/// use langfuse_observe_core::client::Langfuse;
/// use langfuse_observe_core::config::Config;
///
/// # async fn handle() {}
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let evaluations = Langfuse::new(&Config::builder().keys("pk-lf-…", "sk-lf-…").build()?)?;
/// // Traces started inside go to this client's project, across `.await`.
/// evaluations.scope(handle()).await;
/// evaluations.run(|| { /* sync code */ });
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Langfuse {
    exporter: Exporter,
    /// The prompt cache and fetching; absent without keys or with tracing disabled.
    prompts: Option<std::sync::Arc<PromptService>>,
}

impl std::fmt::Debug for Langfuse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Langfuse")
            .field("exporter", &self.exporter)
            .field("prompts", &self.prompts.is_some())
            .finish()
    }
}

impl Langfuse {
    /// Starts a client for `config`: its export worker runs until the last clone is dropped
    /// (delivering what it holds) or [`shutdown`](Self::shutdown) is called. With tracing
    /// disabled in `config`, the client accepts nothing and starts no thread.
    pub fn new(config: &Config) -> Result<Self, InitError> {
        let exporter = Exporter::start(config)?;
        let prompts = PromptService::start(config, exporter.runtime())
            .map_err(|error| InitError::Export(crate::export::ExportError::Client(error)))?;
        Ok(Self {
            prompts,
            ..Self::of(exporter)
        })
    }

    /// [`new`](Self::new) with [`Config::from_env`].
    pub fn from_env() -> Result<Self, InitError> {
        Self::new(&Config::from_env()?)
    }

    /// A client that accepts nothing.
    pub fn disabled() -> Self {
        Self::of(Exporter::disabled())
    }

    pub(crate) fn of(exporter: Exporter) -> Self {
        if exporter.is_enabled() {
            ANY_ENABLED.store(true, Ordering::Relaxed);
        }
        Self {
            exporter,
            prompts: None,
        }
    }

    pub(crate) fn exporter(&self) -> &Exporter {
        &self.exporter
    }

    /// Whether this client accepts records.
    pub fn is_enabled(&self) -> bool {
        self.exporter.is_enabled()
    }

    /// Runs `work` with this client in effect on this thread: traces started inside go to it.
    pub fn run<R>(&self, work: impl FnOnce() -> R) -> R {
        let _in_effect = self.set_default();
        work()
    }

    /// `future` with this client in effect whenever it is polled: traces started inside,
    /// across `.await`, go to it. Tasks it spawns need their own `scope`.
    pub fn scope<F: Future>(&self, future: F) -> Scoped<F> {
        Scoped {
            client: self.clone(),
            inner: future,
        }
    }

    /// Puts this client in effect on this thread until the guard is dropped, as
    /// `tracing::subscriber::set_default` does: for a test that runs on one thread, or a
    /// worker thread that serves one tenant.
    pub fn set_default(&self) -> ClientGuard {
        ClientGuard {
            previous: SCOPED.with(|scoped| scoped.replace(Some(self.clone()))),
            _not_send: std::marker::PhantomData,
        }
    }

    /// A guard that flushes this client when dropped, waiting at most `timeout`, and says
    /// what it could not deliver; the same as the one [`init`](crate::init) returns.
    pub fn flush_guard(&self, timeout: Duration) -> FlushGuard {
        FlushGuard::new(self.clone(), timeout)
    }

    /// Hands a finished observation over without waiting; see [`Exporter::record`].
    pub fn record(&self, observation: Observation) -> bool {
        self.exporter.record(observation)
    }

    /// Hands a score over without waiting; see [`Exporter::score`]. A score of a trace that
    /// sampling left out is not sent either.
    pub fn score(&self, score: Score) -> bool {
        let rate = self.exporter.settings().map_or(1.0, |s| s.sample_rate);
        crate::scope::sampled(score.trace_id, rate) && self.exporter.score(score)
    }

    /// Waits until everything recorded before the call is delivered or has failed, or until
    /// `timeout` has passed; see [`Exporter::flush`].
    pub async fn flush(&self, timeout: Duration) -> FlushReport {
        self.exporter.flush(timeout).await
    }

    /// Blocking form of [`flush`](Self::flush).
    pub fn flush_blocking(&self, timeout: Duration) -> FlushReport {
        self.exporter.flush_blocking(timeout)
    }

    /// Delivers what is held within `timeout`, drops the rest and stops the worker; later
    /// records are refused and counted as dropped.
    pub async fn shutdown(&self, timeout: Duration) -> FlushReport {
        self.exporter.shutdown(timeout).await
    }

    /// Blocking form of [`shutdown`](Self::shutdown); also waits for the worker to end.
    pub fn shutdown_blocking(&self, timeout: Duration) -> FlushReport {
        self.exporter.shutdown_blocking(timeout)
    }

    /// Counts of what this client was handed and what became of it.
    pub fn stats(&self) -> Stats {
        self.exporter.stats()
    }

    /// A request for the prompt `name` (folders included, as in `support/answer`): set a
    /// label or version and a fallback, then fetch it. See [`crate::prompt`](mod@crate::prompt) for the cache.
    ///
    /// ```no_run
    /// # use langfuse_observe_core::client::Langfuse;
    /// # async fn example(client: Langfuse) -> Result<(), Box<dyn std::error::Error>> {
    /// let prompt = client.prompt("support/answer").label("staging").fetch().await?;
    /// let pinned = client.prompt("support/answer").version(3).fetch().await?;
    /// # let _ = (prompt, pinned);
    /// # Ok(())
    /// # }
    /// ```
    pub fn prompt(&self, name: impl Into<String>) -> PromptRequest {
        let service = match &self.prompts {
            Some(service) => Ok(std::sync::Arc::clone(service)),
            None if !self.is_enabled() => {
                Err("tracing is disabled (LANGFUSE_TRACING_ENABLED=false), \
                 and with it the client's connection to Langfuse; give a fallback, or enable it")
            }
            None => Err(
                "no API keys are set: set LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY, \
                 or give a fallback",
            ),
        };
        PromptRequest::new(service, name.into())
    }

    /// Forgets every cached label and version of the prompt `name`, so the next fetch asks
    /// Langfuse: for when a new version was just published or a label moved. A fetch of it
    /// already in flight still answers its callers but is not cached.
    pub fn invalidate_prompt(&self, name: &str) {
        if let Some(prompts) = &self.prompts {
            prompts.cache.invalidate(name);
        }
    }

    /// Forgets every cached prompt.
    pub fn clear_prompt_cache(&self) {
        if let Some(prompts) = &self.prompts {
            prompts.cache.clear();
        }
    }

    /// The trace's page in the Langfuse UI, `{base}/project/{project}/traces/{trace}`. The
    /// project id is looked up once, in the background, when the client starts; until it is
    /// known, this is `{base}/trace/{trace}`, which v2 and v3 servers redirect and a v4
    /// server cannot resolve: [`trace_url_resolved`](Self::trace_url_resolved) waits for it.
    pub fn trace_url(&self, trace_id: TraceId) -> String {
        let base = self.exporter.base_url();
        match self.exporter.project_id() {
            Some(project) => format!("{base}/project/{project}/traces/{trace_id}"),
            None => format!("{base}/trace/{trace_id}"),
        }
    }

    /// [`trace_url`](Self::trace_url) in the form every server resolves, waiting for the
    /// project lookup to end (it is bounded by the request timeout); `None` when the lookup
    /// failed (the server is unreachable or the keys were rejected) or there is no server
    /// (console output).
    pub async fn trace_url_resolved(&self, trace_id: TraceId) -> Option<String> {
        self.exporter.project_id_settled().await?;
        Some(self.trace_url(trace_id))
    }
}

/// The client put in effect on this thread by [`Langfuse::run`], [`Langfuse::scope`] or
/// [`Langfuse::set_default`], if any.
pub(crate) fn scoped() -> Option<Langfuse> {
    SCOPED
        .try_with(|scoped| scoped.borrow().clone())
        .ok()
        .flatten()
}

/// Whether an instrumented call can record anything at all: false, and cheap, until a client
/// that accepts records exists. The process default is made from the environment only when no
/// other client is, so a program that uses only its own clients never gets one (nor its
/// notice about missing keys) unless a trace starts with none in effect.
#[inline]
pub(crate) fn any_enabled() -> bool {
    ANY_ENABLED.load(Ordering::Relaxed)
        || (!crate::global::default_exists() && {
            crate::global::ensure_default();
            ANY_ENABLED.load(Ordering::Relaxed)
        })
}

/// Restores the client in effect before [`Langfuse::set_default`] when dropped. Bound to
/// the thread it was made on.
#[must_use = "the client is in effect only while the guard lives"]
#[derive(Debug)]
pub struct ClientGuard {
    previous: Option<Langfuse>,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // The slot may already be gone while the thread itself shuts down.
        let _ = SCOPED.try_with(|scoped| scoped.replace(previous));
    }
}

pin_project_lite::pin_project! {
    /// A future with a client in effect whenever it is polled; see [`Langfuse::scope`].
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct Scoped<F> {
        client: Langfuse,
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _in_effect = this.client.set_default();
        this.inner.poll(cx)
    }
}
