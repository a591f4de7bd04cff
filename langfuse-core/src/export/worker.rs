//! The export worker: its own OS thread and single-threaded runtime, so it keeps delivering
//! after the program's runtime is gone. It wakes when a batch is full, on its interval, or on
//! a flush, and answers every flush by its deadline even while a send is still retrying.

use std::cell::Cell;
use std::io::Write;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use crate::config::{Config, ExporterKind};
use crate::diagnostics;

use super::console::Console;
use super::ingestion::{self, IngestionEncoder};
use super::otlp::{self, OtlpEncoder};
use super::queue::{Counters, Entry, Item, Queue};
use super::transport::{Failure, Health, Transport};
use super::{FlushReport, Stats};

/// Where a flush or shutdown answer goes: an awaiting task or a blocked thread.
#[derive(Debug)]
pub(crate) enum Reply {
    Async(tokio::sync::oneshot::Sender<FlushReport>),
    Blocking(std::sync::mpsc::Sender<FlushReport>),
}

impl Reply {
    fn send(self, report: FlushReport) {
        // The asker may have given up waiting; that is not an error.
        match self {
            Self::Async(sender) => drop(sender.send(report)),
            Self::Blocking(sender) => drop(sender.send(report)),
        }
    }
}

#[derive(Debug)]
pub(crate) enum Control {
    /// Answer once every item up to `target` is settled, or at `deadline`; a `root` flush (the
    /// end of an outermost observation) also as soon as the server is known to be failing.
    Flush {
        target: u64,
        deadline: Instant,
        before: Stats,
        reply: Reply,
        root: bool,
    },
    /// Refuse new items, deliver what is held until `deadline`, drop the rest, stop.
    Shutdown {
        deadline: Instant,
        before: Stats,
        reply: Reply,
    },
}

struct Waiter {
    target: u64,
    deadline: Instant,
    root: bool,
    before: Stats,
    /// [`Inbox::abandoned`] when the request arrived.
    abandoned_before: u64,
    reply: Reply,
}

/// Flush and shutdown requests, and how far delivery has got.
struct Inbox {
    control: UnboundedReceiver<Control>,
    open: bool,
    waiters: Vec<Waiter>,
    shutdown: Option<Waiter>,
    /// Every item with a sequence number up to this one is settled.
    settled_seq: u64,
    /// Records dropped because a shutdown deadline passed before they were delivered.
    abandoned: u64,
    default_deadline: Duration,
    health: Arc<Health>,
}

impl Inbox {
    fn accept(&mut self, message: Option<Control>, queue: &Queue) {
        match message {
            Some(Control::Flush {
                target,
                deadline,
                before,
                reply,
                root,
            }) => {
                self.waiters.push(Waiter {
                    target,
                    deadline,
                    root,
                    before,
                    abandoned_before: self.abandoned,
                    reply,
                });
            }
            Some(Control::Shutdown {
                deadline,
                before,
                reply,
            }) => {
                queue.close();
                self.shutdown = Some(Waiter {
                    target: u64::MAX,
                    deadline,
                    root: false,
                    before,
                    abandoned_before: self.abandoned,
                    reply,
                });
            }
            None => {
                // Every handle is gone: deliver what is held, then stop.
                self.open = false;
                queue.close();
                if self.shutdown.is_none() {
                    let (reply, _) = std::sync::mpsc::channel();
                    self.shutdown = Some(Waiter {
                        target: u64::MAX,
                        deadline: Instant::now() + self.default_deadline,
                        root: false,
                        before: Stats::default(),
                        abandoned_before: self.abandoned,
                        reply: Reply::Blocking(reply),
                    });
                }
            }
        }
    }

    async fn next(&mut self) -> Option<Control> {
        if self.open {
            self.control.recv().await
        } else {
            std::future::pending().await
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.waiters
            .iter()
            .chain(&self.shutdown)
            .map(|w| w.deadline)
            .min()
    }

    /// Answers the flushes that are done or out of time, and the root flushes that stop
    /// waiting because the server is failing.
    fn answer(&mut self, queue: &Queue) {
        let now = Instant::now();
        let failing = self.health.is_failing();
        let mut i = 0;
        while i < self.waiters.len() {
            let waiter = &self.waiters[i];
            if waiter.target <= self.settled_seq
                || waiter.deadline <= now
                || (waiter.root && failing)
            {
                let waiter = self.waiters.swap_remove(i);
                self.reply(waiter, queue);
            } else {
                i += 1;
            }
        }
    }

    fn reply(&self, waiter: Waiter, queue: &Queue) {
        let now = Stats::read(queue);
        let pending = if waiter.target == u64::MAX {
            now.pending()
        } else {
            waiter.target.saturating_sub(self.settled_seq)
        };
        let report = FlushReport {
            exported: now.exported - waiter.before.exported,
            failed: now.failed - waiter.before.failed,
            dropped: now.dropped - waiter.before.dropped,
            pending,
            completed: pending == 0 && self.abandoned == waiter.abandoned_before,
        };
        waiter.reply.send(report);
    }

    fn wants_flush(&self) -> bool {
        !self.waiters.is_empty() || self.shutdown.is_some()
    }

    fn shutdown_due(&self) -> bool {
        self.shutdown
            .as_ref()
            .is_some_and(|w| w.deadline <= Instant::now())
    }
}

enum Mode {
    Otlp,
    Ingestion,
    Console(Box<Console>),
}

/// Turns entries into requests (or console lines) and counts every item's fate.
struct Delivery {
    mode: Mode,
    transport: Transport,
    otlp: OtlpEncoder,
    ingestion: IngestionEncoder,
    /// Applies to OTLP only: the ingestion route does not undo gzip.
    gzip: bool,
    otlp_404_hint: &'static str,
    max_batch: usize,
    mask: Option<crate::config::Mask>,
}

/// Records settled so far in one drain, and the queue room they held.
#[derive(Clone, Copy, Default)]
struct Settled {
    items: usize,
    bytes: usize,
}

impl Delivery {
    /// Delivers `entries`, settling each batch as its answer arrives: counted, and its room in
    /// the queue freed at once, so that a slow batch does not keep the queue full.
    async fn deliver(&mut self, entries: Vec<Entry>, queue: &Queue, settled: &Cell<Settled>) {
        let counters = &queue.counters;
        let settle = |exported: usize, failed: usize, bytes: usize| {
            Counters::add(&counters.exported, exported);
            Counters::add(&counters.failed, failed);
            queue.release(exported + failed, bytes);
            let so_far = settled.get();
            settled.set(Settled {
                items: so_far.items + exported + failed,
                bytes: so_far.bytes + bytes,
            });
        };
        let mut observations = Vec::with_capacity(entries.len());
        let mut sizes = Vec::with_capacity(entries.len());
        let mut scores = Vec::new();
        let mut score_bytes = 0;
        for entry in entries {
            match entry.item {
                Item::Observation(mut observation) => {
                    if let Some(mask) = &self.mask {
                        observation.mask(mask);
                    }
                    observations.push(*observation);
                    sizes.push(entry.size);
                }
                Item::Score(score) => {
                    scores.push(*score);
                    score_bytes += entry.size;
                }
            }
        }
        let observation_bytes: usize = sizes.iter().sum();
        match &mut self.mode {
            Mode::Console(console) => {
                let total = observations.len() + scores.len();
                let mut written = 0;
                for observation in observations {
                    written += usize::from(console.observation(observation));
                }
                for score in &scores {
                    written += usize::from(console.score(score));
                }
                console.end_batch();
                settle(written, total - written, observation_bytes + score_bytes);
            }
            Mode::Otlp => {
                self.deliver_otlp(observations, &sizes, counters, &settle)
                    .await;
                let mut events = Vec::new();
                for (owner, score) in scores.iter().enumerate() {
                    self.ingestion.score(score, owner, &mut events);
                }
                self.deliver_events(events, scores.len(), score_bytes, counters, &settle)
                    .await;
            }
            Mode::Ingestion => {
                let mut events = Vec::new();
                for (owner, observation) in observations.iter().enumerate() {
                    self.ingestion.observation(observation, owner, &mut events);
                }
                let offset = observations.len();
                for (owner, score) in scores.iter().enumerate() {
                    self.ingestion.score(score, offset + owner, &mut events);
                }
                let bytes = observation_bytes + score_bytes;
                self.deliver_events(events, offset + scores.len(), bytes, counters, &settle)
                    .await;
            }
        }
    }

    async fn deliver_events(
        &self,
        events: Vec<ingestion::Event>,
        owners: usize,
        bytes: usize,
        counters: &Counters,
        settle: &impl Fn(usize, usize, usize),
    ) {
        if owners == 0 {
            return;
        }
        let failed = ingestion::deliver(
            &self.ingestion,
            &self.transport,
            counters,
            self.max_batch,
            events,
            owners,
        )
        .await;
        let failures = failed.iter().filter(|f| **f).count();
        settle(owners - failures, failures, bytes);
    }

    /// Sends `observations` (of `sizes` queue bytes each) in batches within the count and byte
    /// limits, halving a batch the server finds too large.
    async fn deliver_otlp(
        &self,
        observations: Vec<crate::observation::Observation>,
        sizes: &[usize],
        counters: &Counters,
        settle: &impl Fn(usize, usize, usize),
    ) {
        let mut work: Vec<std::ops::Range<usize>> = Vec::new();
        let mut start = 0;
        while start < observations.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < observations.len()
                && end - start < self.max_batch
                && (end == start || bytes < ingestion::MAX_BATCH_BYTES)
            {
                bytes += sizes[end];
                end += 1;
            }
            work.push(start..end);
            start = end;
        }
        work.reverse();
        while let Some(range) = work.pop() {
            let batch = &observations[range.clone()];
            let bytes: usize = sizes[range.clone()].iter().sum();
            let body = self.otlp.encode(batch.iter());
            let payload = super::payload(
                Bytes::from(body),
                "application/x-protobuf",
                self.gzip,
                batch.len(),
            );
            match self
                .transport
                .post(otlp::PATH, &payload, counters, serde_json::Value::is_object)
                .await
            {
                Ok(_) => settle(batch.len(), 0, bytes),
                Err(Failure::TooLarge) if batch.len() > 1 => {
                    let middle = range.start + batch.len() / 2;
                    work.push(middle..range.end);
                    work.push(range.start..middle);
                }
                Err(failure) => {
                    match &failure {
                        Failure::Unauthorized(_) => {}
                        Failure::Rejected(status, _) if status.as_u16() == 404 => {
                            diagnostics::warn(
                                "otlp-404",
                                format_args!(
                                    "{} answered 404, so {} observations were not delivered: {}",
                                    self.transport.url(otlp::PATH),
                                    batch.len(),
                                    self.otlp_404_hint
                                ),
                            )
                        }
                        _ => diagnostics::warn(
                            "otlp-failed",
                            format_args!(
                                "{} observations could not be delivered: {}",
                                batch.len(),
                                failure.describe()
                            ),
                        ),
                    }
                    settle(0, batch.len(), bytes);
                }
            }
        }
    }

    fn flush_console(&mut self) {
        if let Mode::Console(console) = &mut self.mode {
            console.flush();
        }
    }
}

pub(crate) struct Worker {
    queue: Arc<Queue>,
    project_id: Arc<std::sync::OnceLock<String>>,
    delivery: Delivery,
    inbox: Inbox,
    interval: Duration,
}

impl Worker {
    pub(crate) fn new(
        config: &Config,
        queue: Arc<Queue>,
        control: UnboundedReceiver<Control>,
        project_id: Arc<std::sync::OnceLock<String>>,
        health: Arc<Health>,
    ) -> Result<Self, reqwest::Error> {
        let mode = match config.exporter() {
            ExporterKind::Otlp => Mode::Otlp,
            ExporterKind::Ingestion => Mode::Ingestion,
            ExporterKind::Console => Mode::Console(Box::new(Console::new(config))),
        };
        Ok(Self {
            queue,
            project_id,
            delivery: Delivery {
                mode,
                transport: Transport::new(config, Arc::clone(&health))?,
                otlp: OtlpEncoder::new(config),
                ingestion: IngestionEncoder::new(config),
                gzip: config.gzip(),
                otlp_404_hint: otlp_404_hint(config),
                max_batch: config.flush_at(),
                mask: config.mask().cloned(),
            },
            inbox: Inbox {
                control,
                open: true,
                waiters: Vec::new(),
                shutdown: None,
                settled_seq: 0,
                abandoned: 0,
                default_deadline: config.flush_timeout(),
                health,
            },
            interval: config.flush_interval(),
        })
    }

    pub(crate) fn spawn(self) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name("langfuse-export".to_owned())
            .spawn(move || {
                EXPORT_THREAD.with(|flag| flag.set(true));
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(runtime) => runtime.block_on(self.run()),
                    Err(error) => diagnostics::warn(
                        "runtime",
                        format_args!("the export worker could not start a runtime: {error}"),
                    ),
                }
            })
    }

    async fn run(mut self) {
        if !matches!(self.delivery.mode, Mode::Console(_)) {
            // In the background of this runtime: a slow answer must not hold up delivery.
            let lookup = self.delivery.transport.project_id();
            let project_id = Arc::clone(&self.project_id);
            tokio::spawn(async move {
                if let Some(id) = lookup.await {
                    let _ = project_id.set(id);
                }
            });
        }
        loop {
            if self.inbox.shutdown.is_none() {
                let deadline = self.inbox.next_deadline();
                tokio::select! {
                    message = self.inbox.next() => self.inbox.accept(message, &self.queue),
                    () = self.queue.wake.notified() => {}
                    () = tokio::time::sleep(self.interval) => {}
                    () = sleep_until(deadline) => {}
                }
            }
            self.drain().await;
            self.answer();
            // A drain cut short has already passed the shutdown deadline.
            if let Some(shutdown) = self.inbox.shutdown.take() {
                self.stop(shutdown);
                return;
            }
        }
    }

    /// Answers settled or expired flushes, first writing out what the console holds back.
    fn answer(&mut self) {
        if self.inbox.wants_flush() {
            self.delivery.flush_console();
        }
        self.inbox.answer(&self.queue);
    }

    /// Delivers everything queued, unless a shutdown deadline cuts it short.
    async fn drain(&mut self) {
        loop {
            let entries = self.queue.take();
            let Some(last) = entries.last().map(|entry| entry.seq) else {
                return;
            };
            let count = entries.len();
            let bytes: usize = entries.iter().map(|entry| entry.size).sum();
            let settled = Cell::new(Settled::default());
            let health = Arc::clone(&self.inbox.health);
            let completed = {
                let work = self.delivery.deliver(entries, &self.queue, &settled);
                tokio::pin!(work);
                loop {
                    let deadline = self.inbox.next_deadline();
                    tokio::select! {
                        () = &mut work => break true,
                        message = self.inbox.next() => self.inbox.accept(message, &self.queue),
                        () = health.changed.notified() => self.inbox.answer(&self.queue),
                        () = sleep_until(deadline) => {
                            self.inbox.answer(&self.queue);
                            if self.inbox.shutdown_due() {
                                break false;
                            }
                        }
                    }
                }
            };
            let done = settled.get();
            if !completed {
                let abandoned = count - done.items;
                Counters::add(&self.queue.counters.dropped, abandoned);
                self.inbox.abandoned += abandoned as u64;
            }
            // Settled batches freed their room as they settled; the abandoned free theirs now.
            self.queue.release(count - done.items, bytes - done.bytes);
            self.inbox.settled_seq = last;
            self.answer();
            if !completed {
                return;
            }
        }
    }

    fn stop(&mut self, shutdown: Waiter) {
        let abandoned = self.queue.take();
        if !abandoned.is_empty() {
            let bytes = abandoned.iter().map(|entry| entry.size).sum();
            Counters::add(&self.queue.counters.dropped, abandoned.len());
            self.inbox.abandoned += abandoned.len() as u64;
            self.queue.release(abandoned.len(), bytes);
            diagnostics::warn(
                "shutdown",
                format_args!(
                    "shutdown deadline reached: dropped {} records that were not delivered",
                    abandoned.len()
                ),
            );
        }
        self.delivery.flush_console();
        let _ = std::io::stderr().flush();
        self.inbox.settled_seq = self.queue.last_seq();
        for waiter in std::mem::take(&mut self.inbox.waiters) {
            self.inbox.reply(waiter, &self.queue);
        }
        self.inbox.reply(shutdown, &self.queue);
    }
}

/// What to do about a 404 from the OTLP route: Langfuse answers there from its root, so a
/// base URL with a path is the likely cause; without one, the server predates OTLP.
fn otlp_404_hint(config: &Config) -> &'static str {
    if config.base_url().path() == "/" {
        "this Langfuse server has no OTLP endpoint (it is older than v3); set \
         LANGFUSE_EXPORTER=ingestion to use the batch-ingestion API instead"
    } else {
        "Langfuse's API is at the root of its address: remove the path from LANGFUSE_BASE_URL"
    }
}

thread_local! {
    static EXPORT_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Whether this is an export worker's thread. Code the worker runs for the user (a `mask`)
/// must neither be recorded, which would feed the worker its own output, nor wait for a
/// flush, which the worker could never answer while it waits.
pub(crate) fn on_export_thread() -> bool {
    EXPORT_THREAD.with(Cell::get)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
