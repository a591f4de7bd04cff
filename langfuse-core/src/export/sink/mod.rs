//! Where records go: one sink per destination, each owning its encoder and, where it sends
//! over HTTP, the transport. The worker hands every sink the records of one drain and a
//! [`Settle`] to count each record's fate with.

mod console;
mod ingestion;
mod otlp;

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;

use crate::observation::{Observation, Score};

use super::queue::{Counters, Queue};

pub(crate) use console::Console;
pub(crate) use ingestion::IngestionSink;
pub(crate) use otlp::OtlpSink;

/// The records of one drain, each with the bytes it holds in the queue.
#[derive(Default)]
pub(crate) struct Records {
    pub(crate) observations: Vec<(Observation, usize)>,
    pub(crate) scores: Vec<(Score, usize)>,
}

/// The lookup of the project id, for links to traces.
pub(crate) type ProjectLookup = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// A destination of records.
pub(crate) trait Sink: Send + 'static {
    /// Delivers `records`, settling each as its fate is known.
    async fn deliver(&mut self, records: Records, settle: &Settle<'_>);

    /// Writes out what the sink holds back, before a flush is answered.
    fn flush(&mut self) {}

    /// The lookup of the project id, where there is a server to ask.
    fn project_id(&self) -> Option<ProjectLookup> {
        None
    }
}

/// Records settled so far in one drain, and the queue room they held.
#[derive(Clone, Copy, Default)]
pub(crate) struct Settled {
    pub(crate) items: usize,
    pub(crate) bytes: usize,
}

/// Counts each record's fate as soon as it is known and frees its room in the queue at once,
/// so that a slow batch does not keep the queue full.
pub(crate) struct Settle<'a> {
    queue: &'a Queue,
    done: Cell<Settled>,
}

impl<'a> Settle<'a> {
    pub(crate) fn new(queue: &'a Queue) -> Self {
        Self {
            queue,
            done: Cell::default(),
        }
    }

    /// `exported` and `failed` records, which held `bytes` of the queue, are settled.
    pub(crate) fn settle(&self, exported: usize, failed: usize, bytes: usize) {
        let counters = &self.queue.counters;
        Counters::add(&counters.exported, exported);
        Counters::add(&counters.failed, failed);
        self.queue.release(exported + failed, bytes);
        let done = self.done.get();
        self.done.set(Settled {
            items: done.items + exported + failed,
            bytes: done.bytes + bytes,
        });
    }

    pub(crate) fn counters(&self) -> &Counters {
        &self.queue.counters
    }

    /// What was settled so far.
    pub(crate) fn done(&self) -> Settled {
        self.done.get()
    }
}
