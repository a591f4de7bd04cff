//! The export worker: its own OS thread and single-threaded runtime, so it keeps delivering
//! after the program's runtime is gone. It wakes when a batch is full, on its interval, or on
//! a flush, and answers every flush by its deadline even while a send is still retrying.

use std::cell::Cell;
use std::io::Write;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use crate::config::Config;
use crate::diagnostics;

use super::queue::{Counters, Entry, Item, Queue};
use super::sink::{Records, Settle, Sink};
use super::transport::Health;
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
            let settled = waiter.target <= self.settled_seq;
            if settled || waiter.deadline <= now || (waiter.root && failing) {
                if waiter.root && !settled && !failing {
                    // No answer within a root's budget: a hanging server is failing too, so the
                    // roots after this one do not wait for it either, until a delivery succeeds.
                    self.health
                        .failed("the server did not answer in time (hanging or slow)");
                }
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

    /// Whether a flush asks the sink for what it holds back (the console's unfinished
    /// traces): an explicit flush or a shutdown does; the flush at the end of another trace's
    /// root does not, so that a trace is printed whole once its own root ends.
    fn wants_flush(&self) -> bool {
        self.waiters.iter().any(|waiter| !waiter.root) || self.shutdown.is_some()
    }

    fn shutdown_due(&self) -> bool {
        self.shutdown
            .as_ref()
            .is_some_and(|w| w.deadline <= Instant::now())
    }
}

/// The loop that drains the queue into a sink and answers flushes.
pub(crate) struct Worker<S> {
    queue: Arc<Queue>,
    project_id: Arc<super::ProjectId>,
    sink: S,
    mask: Option<crate::config::Mask>,
    inbox: Inbox,
    interval: Duration,
}

impl<S: Sink> Worker<S> {
    pub(crate) fn new(
        config: &Config,
        sink: S,
        queue: Arc<Queue>,
        control: UnboundedReceiver<Control>,
        project_id: Arc<super::ProjectId>,
        health: Arc<Health>,
    ) -> Self {
        Self {
            queue,
            project_id,
            sink,
            mask: config.mask().cloned(),
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
        }
    }

    /// Starts the worker's thread and runtime; the handle lets other parts of the client (the
    /// prompt fetches) run their network work on that runtime, whatever the caller runs on.
    pub(crate) fn spawn(self) -> std::io::Result<(JoinHandle<()>, tokio::runtime::Handle)> {
        // Built here, so that a failure is the caller's error and the handle exists before the
        // first fetch could need it; it is moved to, run and dropped on the worker's thread.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let thread = std::thread::Builder::new()
            .name("langfuse-export".to_owned())
            .spawn(move || {
                EXPORT_THREAD.with(|flag| flag.set(true));
                runtime.block_on(self.run());
            })?;
        Ok((thread, handle))
    }

    async fn run(mut self) {
        match self.sink.project_id() {
            Some(lookup) => {
                // In the background of this runtime: a slow answer must not hold up delivery.
                let project_id = Arc::clone(&self.project_id);
                tokio::spawn(async move { project_id.settle(lookup.await) });
            }
            None => self.project_id.settle(None),
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
            self.sink.flush();
        }
        self.inbox.answer(&self.queue);
    }

    /// The entries as the sink takes them, masked where the program asked for it.
    fn records(&self, entries: Vec<Entry>) -> Records {
        let mut records = Records::default();
        for entry in entries {
            match entry.item {
                Item::Observation(mut observation) => {
                    if let Some(mask) = &self.mask {
                        observation.mask(mask);
                    }
                    records.observations.push((*observation, entry.size));
                }
                Item::Score(score) => records.scores.push((*score, entry.size)),
            }
        }
        records
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
            let records = self.records(entries);
            let settle = Settle::new(&self.queue);
            let health = Arc::clone(&self.inbox.health);
            let completed = {
                let work = self.sink.deliver(records, &settle);
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
            let done = settle.done();
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
        self.sink.flush();
        let _ = std::io::stderr().flush();
        self.inbox.settled_seq = self.queue.last_seq();
        for waiter in std::mem::take(&mut self.inbox.waiters) {
            self.inbox.reply(waiter, &self.queue);
        }
        self.inbox.reply(shutdown, &self.queue);
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
