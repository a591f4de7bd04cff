//! Delivery of finished observations and scores to Langfuse, or to the console.
//!
//! Recording never blocks: a record goes into a bounded queue (count and bytes) and a worker
//! thread with its own runtime batches, encodes and sends it. Every record ends up counted in
//! [`Stats`] as exported, failed or dropped; none disappears silently.

mod batch;
mod queue;
mod sink;
pub(crate) mod transport;
mod worker;

use std::future::Future;
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use tokio::sync::mpsc::UnboundedSender;

use crate::config::{Config, ExporterKind};
use crate::diagnostics;
use crate::observation::{Observation, Score};

use queue::{Item, Queue};
use sink::{Console, IngestionSink, OtlpSink};
use transport::{Health, Transport};
pub(crate) use worker::on_export_thread;
use worker::{Control, Reply, Worker};

/// The largest record sent in one event, as in the official SDKs; larger records have their
/// input, output and metadata cut, largest first, with a visible marker.
pub const MAX_EVENT_BYTES: usize = 1_000_000;

/// Langfuse's schemas allow names of up to this many characters; a longer trace name makes
/// the server drop the whole trace event.
const MAX_NAME_CHARS: usize = 1000;

/// `name`, cut to what Langfuse accepts.
fn clip_name(name: &str) -> &str {
    match name.char_indices().nth(MAX_NAME_CHARS) {
        Some((cut, _)) => &name[..cut],
        None => name,
    }
}

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// The operating system refused to start the worker thread.
    #[error("could not start the export worker thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// The HTTP client could not be built (for example, no TLS roots).
    #[error("could not build the HTTP client for Langfuse: {0}")]
    Client(#[source] reqwest::Error),
}

/// Counts of everything handed to the exporter.
///
/// Each record handed over is counted in `enqueued` and then in exactly one of `exported`,
/// `failed` or `dropped`, or is still [`pending`](Stats::pending).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Records handed to the exporter, accepted or not.
    pub enqueued: u64,
    /// Records the server acknowledged (or the console wrote).
    pub exported: u64,
    /// Records the server rejected, or that failed after every retry.
    pub failed: u64,
    /// Records refused because the queue was full or closed, or abandoned at a shutdown deadline.
    pub dropped: u64,
    /// Records sent again after a retryable failure (a record retried twice counts twice).
    pub retried: u64,
    /// Estimated bytes of the records held now, waiting or in flight; bounded by
    /// `max_queue_bytes`.
    pub pending_bytes: u64,
}

impl Stats {
    fn read(queue: &Queue) -> Self {
        let counters = &queue.counters;
        // Settled counts first: an item is enqueued before it settles, so `pending` never
        // goes below zero even while the worker is busy.
        let exported = counters.exported.load(Ordering::Acquire);
        let failed = counters.failed.load(Ordering::Acquire);
        let dropped = counters.dropped.load(Ordering::Acquire);
        let retried = counters.retried.load(Ordering::Acquire);
        let enqueued = counters.enqueued.load(Ordering::Acquire);
        let pending_bytes = queue.held_bytes() as u64;
        Self {
            enqueued,
            exported,
            failed,
            dropped,
            retried,
            pending_bytes,
        }
    }

    /// Records not yet exported, failed or dropped.
    pub fn pending(&self) -> u64 {
        self.enqueued
            .saturating_sub(self.exported + self.failed + self.dropped)
    }
}

/// What a flush or shutdown achieved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FlushReport {
    /// Records exported while the flush ran.
    pub exported: u64,
    /// Records that failed while the flush ran.
    pub failed: u64,
    /// Records dropped while the flush ran.
    pub dropped: u64,
    /// Records handed over before the flush that were still not settled at its end.
    pub pending: u64,
    /// Whether everything handed over before the flush was settled in time.
    pub completed: bool,
}

/// What instrumentation needs to know of the configuration on every call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) capture_io: bool,
    pub(crate) sample_rate: f64,
    pub(crate) flush_on_root: bool,
    pub(crate) flush_timeout: Duration,
    pub(crate) root_flush_timeout: Duration,
    pub(crate) flush_at_exit: bool,
}

/// The id of the project the keys belong to, for links to the Langfuse UI: looked up once by
/// the worker, in the background.
pub(crate) struct ProjectId {
    id: std::sync::OnceLock<String>,
    /// Whether the lookup has ended, found or not.
    settled: tokio::sync::watch::Sender<bool>,
}

impl Default for ProjectId {
    fn default() -> Self {
        Self {
            id: std::sync::OnceLock::new(),
            settled: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl ProjectId {
    /// Ends the lookup with what it found.
    pub(crate) fn settle(&self, id: Option<String>) {
        if let Some(id) = id {
            let _ = self.id.set(id);
        }
        self.settled.send_replace(true);
    }
}

/// A client started in this process, as the delivery at exit finds it.
#[derive(Clone)]
struct Started {
    client: std::sync::Weak<Shared>,
    // What the exit needs of a client whose last handle is gone: its worker goes on
    // delivering what it held, and the exit waits for that too.
    queue: Arc<Queue>,
    health: Arc<Health>,
    settings: Settings,
}

impl Started {
    /// Whether the exit may have to deliver or wait for something of this client.
    fn live(&self) -> bool {
        self.client.strong_count() > 0 || Stats::read(&self.queue).pending() > 0
    }

    /// The exit of a client whose last handle was dropped: waits, within
    /// `LANGFUSE_FLUSH_TIMEOUT`, for its worker's last delivery, and says what it could not
    /// deliver.
    fn await_last_delivery(&self) {
        if !self.settings.flush_at_exit {
            return;
        }
        let timeout = self.settings.flush_timeout;
        let deadline = std::time::Instant::now() + timeout;
        let mut pending = Stats::read(&self.queue).pending();
        while pending > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            pending = Stats::read(&self.queue).pending();
        }
        report_undelivered(&self.health, pending, timeout, "at exit");
    }
}

/// Every client started in this process, for the delivery at exit.
static STARTED: Mutex<Vec<Started>> = Mutex::new(Vec::new());

/// Delivers what every client still holds as the process exits; see
/// [`Exporter::deliver_at_exit`].
pub(crate) fn deliver_all_at_exit() {
    // Cloned out, so that no lock is held while delivering.
    let started: Vec<Started> = lock_started().clone();
    for started in started {
        match started.client.upgrade() {
            Some(shared) => Exporter {
                shared: Some(shared),
            }
            .deliver_at_exit(),
            None => started.await_last_delivery(),
        }
    }
}

fn lock_started() -> std::sync::MutexGuard<'static, Vec<Started>> {
    STARTED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Says on one line how many records a last flush (`when`: at exit, by the guard) could not
/// deliver, and why.
fn report_undelivered(health: &Health, lost: u64, timeout: Duration, when: &str) {
    if lost == 0 {
        return;
    }
    let reason = health
        .last_failure()
        .unwrap_or_else(|| format!("not delivered within the flush deadline ({timeout:?})"));
    diagnostics::notice(format_args!(
        "{lost} records not delivered {when}: {reason}"
    ));
}

struct Shared {
    settings: Settings,
    /// The Langfuse UI's address, for links to traces.
    base_url: String,
    /// Looked up once by the worker; links use a form without it until then.
    project_id: Arc<ProjectId>,
    queue: Arc<Queue>,
    health: Arc<Health>,
    /// `enqueued` when the guard's final flush ended: the exit delivery does not wait again
    /// for records that flush already gave up on and reported.
    guard_flushed_at: std::sync::atomic::AtomicU64,
    control: UnboundedSender<Control>,
    worker: Mutex<Option<JoinHandle<()>>>,
    /// The worker's runtime, for network work done for callers on any executor.
    runtime: tokio::runtime::Handle,
}

/// A handle to one export pipeline: a queue and the worker thread that drains it.
///
/// Cloning is cheap and shares the pipeline. Each [`Langfuse`](crate::client::Langfuse)
/// client owns one; programs use clients, and this handle serves code that hands over
/// observations it built itself.
///
/// ```no_run
/// use std::time::Duration;
/// use langfuse_observe_core::config::Config;
/// use langfuse_observe_core::export::Exporter;
/// use langfuse_observe_core::ids::{ObservationId, TraceId};
/// use langfuse_observe_core::observation::Observation;
///
/// let config = Config::builder().keys("pk-lf-…", "sk-lf-…").build()?;
/// let exporter = Exporter::start(&config)?;
/// exporter.record(Observation::new(TraceId::random(), ObservationId::random(), "job"));
/// let report = exporter.flush_blocking(Duration::from_secs(5));
/// assert!(report.completed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Exporter {
    shared: Option<Arc<Shared>>,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("enabled", &self.shared.is_some())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Exporter {
    /// Starts the worker thread for `config`. With tracing disabled, returns an exporter that
    /// accepts nothing and starts no thread.
    pub fn start(config: &Config) -> Result<Self, ExportError> {
        diagnostics::set_debug(config.debug());
        if !config.enabled() {
            return Ok(Self::disabled());
        }
        warn_if_plain_http(config);
        let queue = Arc::new(Queue::new(
            config.max_queue_items(),
            config.max_queue_bytes(),
            config.flush_at(),
            // A batch's worth of bytes, and well before the byte bound is reached.
            batch::MAX_BATCH_BYTES.min(config.max_queue_bytes() / 4),
        ));
        let (control, inbox) = tokio::sync::mpsc::unbounded_channel();
        let project_id = Arc::default();
        let health: Arc<Health> = Arc::default();
        let start = Start {
            config,
            queue: Arc::clone(&queue),
            control: inbox,
            project_id: Arc::clone(&project_id),
            health: Arc::clone(&health),
        };
        // One worker per destination; only the ones that send over HTTP build a client.
        let transport = || {
            Transport::new(config, Arc::clone(&health))
                .map(Arc::new)
                .map_err(ExportError::Client)
        };
        let (handle, runtime) = match config.exporter() {
            ExporterKind::Otlp => start.spawn(OtlpSink::new(config, transport()?)),
            ExporterKind::Ingestion => start.spawn(IngestionSink::new(config, transport()?)),
            ExporterKind::Console => start.spawn(Console::new(config)),
        }?;
        diagnostics::debug(format_args!(
            "exporter started: {:?} to {}",
            config.exporter(),
            config.base_url()
        ));
        let shared = Arc::new(Shared {
            settings: Settings {
                capture_io: config.capture_io(),
                sample_rate: config.sample_rate(),
                flush_on_root: config.flush_on_root(),
                flush_timeout: config.flush_timeout(),
                root_flush_timeout: config.root_flush_timeout(),
                flush_at_exit: config.flush_at_exit(),
            },
            base_url: config.base_url().as_str().trim_end_matches('/').to_owned(),
            project_id,
            queue,
            health,
            guard_flushed_at: std::sync::atomic::AtomicU64::new(u64::MAX),
            control,
            worker: Mutex::new(Some(handle)),
            runtime,
        });
        let mut started = lock_started();
        started.retain(Started::live);
        started.push(Started {
            client: Arc::downgrade(&shared),
            queue: Arc::clone(&shared.queue),
            health: Arc::clone(&shared.health),
            settings: shared.settings,
        });
        Ok(Self {
            shared: Some(shared),
        })
    }

    /// An exporter that accepts nothing: what `LANGFUSE_TRACING_ENABLED=false` gives.
    pub fn disabled() -> Self {
        Self { shared: None }
    }

    /// Whether records are accepted at all.
    pub fn is_enabled(&self) -> bool {
        self.shared.is_some()
    }

    /// The Langfuse address traces are sent to.
    pub(crate) fn base_url(&self) -> &str {
        self.shared
            .as_ref()
            .map_or("https://cloud.langfuse.com", |s| &s.base_url)
    }

    /// The project's id, once the worker has looked it up.
    pub(crate) fn project_id(&self) -> Option<&str> {
        self.shared
            .as_ref()?
            .project_id
            .id
            .get()
            .map(String::as_str)
    }

    /// The project's id, waiting for the worker's lookup to end (within the request timeout).
    pub(crate) async fn project_id_settled(&self) -> Option<&str> {
        let project = &self.shared.as_ref()?.project_id;
        let mut settled = project.settled.subscribe();
        // An error means the worker is gone, and with it any chance of an answer.
        let _ = settled.wait_for(|settled| *settled).await;
        project.id.get().map(String::as_str)
    }

    /// The worker's runtime, where work for callers that may run on any executor (or none)
    /// does its I/O; `None` when disabled. Work spawned there after a shutdown is dropped.
    pub(crate) fn runtime(&self) -> Option<&tokio::runtime::Handle> {
        self.shared.as_ref().map(|shared| &shared.runtime)
    }

    /// The settings instrumentation reads; `None` when disabled.
    pub(crate) fn settings(&self) -> Option<&Settings> {
        self.shared.as_ref().map(|shared| &shared.settings)
    }

    /// Hands a finished observation to the exporter without waiting. Returns false when it
    /// was not accepted (queue full or shut down, counted as dropped; or tracing disabled).
    pub fn record(&self, observation: Observation) -> bool {
        self.record_boxed(Box::new(observation)).is_some()
    }

    /// Hands over a record; its sequence number in the queue when it was accepted.
    pub(crate) fn record_boxed(&self, mut observation: Box<Observation>) -> Option<u64> {
        let shared = self.shared.as_ref()?;
        let mut size = observation.estimated_size();
        if size > MAX_EVENT_BYTES {
            observation.truncate_to(MAX_EVENT_BYTES);
            size = observation.estimated_size();
            diagnostics::warn(
                "truncated",
                format_args!(
                    "observation {:?} exceeded {MAX_EVENT_BYTES} bytes; its largest fields were \
                     truncated with a marker",
                    observation.name
                ),
            );
        }
        shared.queue.push(Item::Observation(observation), size)
    }

    /// Whether the queue is so full that new traces are refused whole: above three quarters of
    /// its item or byte bound, which leaves the last quarter to the traces already running.
    pub(crate) fn congested(&self) -> bool {
        self.shared
            .as_ref()
            .is_some_and(|shared| shared.queue.congested())
    }

    /// Counts an observation of a trace refused whole (see [`congested`](Self::congested)) as
    /// handed over and dropped.
    pub(crate) fn count_shed(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        let counters = &shared.queue.counters;
        queue::Counters::add(&counters.enqueued, 1);
        queue::Counters::add(&counters.dropped, 1);
        diagnostics::warn(
            "shed",
            "the export queue is over three quarters full: new traces are dropped whole, and \
             counted as dropped, until it drains; the server is slower than the program or \
             unreachable. Raise LANGFUSE_MAX_QUEUE_ITEMS or LANGFUSE_MAX_QUEUE_BYTES, or check \
             stats()",
        );
    }

    /// Hands a score to the exporter without waiting; see [`record`](Self::record). A score
    /// Langfuse would refuse (no name, an empty id, a value that is not a finite number) is
    /// not accepted, with a warning that says why.
    pub fn score(&self, score: Score) -> bool {
        let Some(shared) = &self.shared else {
            return false;
        };
        if let Some(problem) = score.problem() {
            diagnostics::warn(
                "score-invalid",
                format_args!(
                    "score {:?} of trace {} was not sent because {problem}",
                    score.name, score.trace_id
                ),
            );
            return false;
        }
        let item = Item::Score(Box::new(score));
        let size = item.estimated_size();
        shared.queue.push(item, size).is_some()
    }

    /// Current counts.
    pub fn stats(&self) -> Stats {
        self.shared
            .as_ref()
            .map_or_else(Stats::default, |shared| Stats::read(&shared.queue))
    }

    /// Hands a flush or shutdown to the worker; `Err` with the current counts when nobody
    /// would answer: tracing is off, the worker is gone, or this is the worker's own thread.
    fn request(&self, timeout: Duration, reply: Reply, kind: Request) -> Result<(), Stats> {
        let Some(shared) = &self.shared else {
            return Err(Stats::default());
        };
        if on_export_thread() {
            return Err(self.stats());
        }
        let before = self.stats();
        let deadline = tokio::time::Instant::now() + timeout;
        let message = match kind {
            Request::Shutdown => Control::Shutdown {
                deadline,
                before,
                reply,
            },
            Request::Flush => Control::Flush {
                target: shared.queue.last_seq(),
                deadline,
                before,
                reply,
                root: false,
            },
            Request::RootFlush(target) => Control::Flush {
                target,
                deadline,
                before,
                reply,
                root: true,
            },
        };
        shared.control.send(message).map_err(|_| before)
    }

    /// Waits until everything recorded before the call is exported or has failed, or until
    /// `timeout` has passed. Does not need a Tokio timer in the caller's runtime.
    pub async fn flush(&self, timeout: Duration) -> FlushReport {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        match self.request(timeout, Reply::Async(sender), Request::Flush) {
            Ok(()) => receiver.await.unwrap_or_else(|_| self.unanswered()),
            Err(stats) => Self::unreachable(stats),
        }
    }

    /// What the end of an outermost observation does about delivery: `None` to hand its
    /// records over and return at once, else how long it may wait. The one place this is
    /// decided. It never waits while the server is known to be failing, never blocks (when
    /// `blocking`) a thread that runs a Tokio runtime, where every other task would stall with
    /// it, and never longer than `LANGFUSE_ROOT_FLUSH_TIMEOUT`; what is left is delivered later,
    /// at the latest when the process exits.
    pub(crate) fn root_flush_wait(&self, blocking: bool) -> Option<Duration> {
        let shared = self.shared.as_ref()?;
        let in_runtime = || tokio::runtime::Handle::try_current().is_ok();
        let wait = shared.settings.flush_on_root
            && !shared.health.is_failing()
            && !(blocking && in_runtime());
        wait.then_some(shared.settings.root_flush_timeout)
    }

    /// The flush at the end of an outermost observation, for sync code: it waits for the
    /// records up to `target` (its own, the last of its trace), as
    /// [`root_flush_wait`](Self::root_flush_wait) allows.
    pub(crate) fn root_flush_blocking(&self, target: u64) {
        if let Some(timeout) = self.root_flush_wait(true) {
            self.blocking(timeout, Request::RootFlush(target));
        }
    }

    /// The flush at the end of an outermost observation, for async code to await.
    pub(crate) fn root_flush(
        &self,
        target: u64,
    ) -> Option<impl Future<Output = FlushReport> + Send + 'static> {
        let timeout = self.root_flush_wait(false)?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let asked = self.request(timeout, Reply::Async(sender), Request::RootFlush(target));
        let stats = self.clone();
        Some(async move {
            match asked {
                Ok(()) => receiver.await.unwrap_or_else(|_| stats.unanswered()),
                Err(counts) => Self::unreachable(counts),
            }
        })
    }

    /// Delivers what is still pending as the process exits, within `LANGFUSE_FLUSH_TIMEOUT`,
    /// and says on one line what could not be delivered and why.
    pub(crate) fn deliver_at_exit(&self) {
        let Some(shared) = &self.shared else {
            return;
        };
        let stats = self.stats();
        let reported = shared.guard_flushed_at.load(Ordering::Relaxed) == stats.enqueued;
        if !shared.settings.flush_at_exit || stats.pending() == 0 || reported {
            return;
        }
        let timeout = shared.settings.flush_timeout;
        let report = self.blocking(timeout, Request::Flush);
        self.report_undelivered(&report, timeout, "at exit");
    }

    /// The flush of the guard from `init` as it is dropped: delivers what is held within
    /// `timeout` and says what could not be delivered.
    pub(crate) fn guard_flush(&self, timeout: Duration) {
        let report = self.flush_blocking(timeout);
        self.report_undelivered(&report, timeout, "by the guard's flush");
        if let Some(shared) = &self.shared {
            shared
                .guard_flushed_at
                .store(self.stats().enqueued, Ordering::Relaxed);
        }
    }

    fn report_undelivered(&self, report: &FlushReport, timeout: Duration, when: &str) {
        if let Some(shared) = &self.shared {
            report_undelivered(
                &shared.health,
                report.pending + report.failed,
                timeout,
                when,
            );
        }
    }

    /// Blocks the calling thread until everything recorded before the call is exported or has
    /// failed, or until `timeout` has passed. Safe to call from any thread, also inside a
    /// runtime (it blocks that thread). Called from the export thread itself (in a `mask`), it
    /// returns at once with what is pending.
    pub fn flush_blocking(&self, timeout: Duration) -> FlushReport {
        self.blocking(timeout, Request::Flush)
    }

    /// Delivers what is held within `timeout`, drops the rest, and stops the worker. Later
    /// records are refused and counted as dropped.
    pub async fn shutdown(&self, timeout: Duration) -> FlushReport {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        match self.request(timeout, Reply::Async(sender), Request::Shutdown) {
            Ok(()) => receiver.await.unwrap_or_else(|_| self.unanswered()),
            Err(stats) => Self::unreachable(stats),
        }
    }

    /// Blocking form of [`shutdown`](Self::shutdown); also waits for the worker thread to end.
    pub fn shutdown_blocking(&self, timeout: Duration) -> FlushReport {
        let report = self.blocking(timeout, Request::Shutdown);
        let handle = self.shared.as_ref().and_then(|shared| {
            shared
                .worker
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take()
        });
        if let Some(handle) = handle {
            if handle.join().is_err() {
                diagnostics::warn("worker", "the export worker thread panicked");
            }
        }
        report
    }

    fn blocking(&self, timeout: Duration, kind: Request) -> FlushReport {
        let (sender, receiver) = std::sync::mpsc::channel();
        match self.request(timeout, Reply::Blocking(sender), kind) {
            // The worker answers by the deadline; the margin covers a worker that died.
            Ok(()) => receiver
                .recv_timeout(timeout + Duration::from_secs(1))
                .unwrap_or_else(|_| self.unanswered()),
            Err(stats) => Self::unreachable(stats),
        }
    }

    fn unanswered(&self) -> FlushReport {
        Self::unreachable(self.stats())
    }

    fn unreachable(stats: Stats) -> FlushReport {
        FlushReport {
            pending: stats.pending(),
            completed: stats.pending() == 0,
            ..FlushReport::default()
        }
    }
}

/// What a worker is started with, whatever its sink.
struct Start<'a> {
    config: &'a Config,
    queue: Arc<Queue>,
    control: tokio::sync::mpsc::UnboundedReceiver<Control>,
    project_id: Arc<ProjectId>,
    health: Arc<Health>,
}

impl Start<'_> {
    fn spawn<S: sink::Sink>(
        self,
        sink: S,
    ) -> Result<(JoinHandle<()>, tokio::runtime::Handle), ExportError> {
        Worker::new(
            self.config,
            sink,
            self.queue,
            self.control,
            self.project_id,
            self.health,
        )
        .spawn()
        .map_err(ExportError::Spawn)
    }
}

/// What a caller asks of the worker.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Request {
    /// Everything recorded so far.
    Flush,
    /// The records up to this sequence number, for the end of an outermost observation; stops
    /// waiting once the server is known to be failing.
    RootFlush(u64),
    Shutdown,
}

/// Keys travel in every request's `Authorization` header: over plain HTTP to another machine,
/// anyone on the path can read them.
fn warn_if_plain_http(config: &Config) {
    let url = config.base_url();
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback());
    if url.scheme() == "http" && !loopback && config.exporter() != ExporterKind::Console {
        diagnostics::warn(
            "plain-http",
            format_args!(
                "LANGFUSE_BASE_URL {url} is plain http: the API keys and traces travel \
                 unencrypted; use https unless the server is on this machine"
            ),
        );
    }
}

/// Wraps an encoded body, gzipped when asked (fast level: the payloads compress well anyway).
fn payload(
    body: Bytes,
    content_type: &'static str,
    gzip: bool,
    records: usize,
) -> transport::Payload {
    if !gzip {
        return transport::Payload {
            body,
            content_type,
            gzip,
            records,
        };
    }
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4), Compression::fast());
    match encoder.write_all(&body).and_then(|()| encoder.finish()) {
        Ok(compressed) => transport::Payload {
            body: Bytes::from(compressed),
            content_type,
            gzip,
            records,
        },
        Err(_) => transport::Payload {
            body,
            content_type,
            gzip: false,
            records,
        },
    }
}
