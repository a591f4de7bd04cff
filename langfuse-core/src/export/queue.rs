//! The bounded queue between the threads that record and the export worker.
//!
//! Pushing takes one uncontended lock and never waits on the worker. An item keeps counting
//! against the limits until the worker has settled it (exported, failed or dropped), so the
//! bound covers everything the exporter holds, in flight included.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::diagnostics;
use crate::observation::{Observation, Score};

/// A record waiting for export.
#[derive(Debug)]
pub(crate) enum Item {
    Observation(Box<Observation>),
    Score(Box<Score>),
}

impl Item {
    pub(crate) fn estimated_size(&self) -> usize {
        match self {
            Self::Observation(observation) => observation.estimated_size(),
            Self::Score(score) => score.estimated_size(),
        }
    }
}

/// An item with what the queue needs to account for it.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) item: Item,
    pub(crate) size: usize,
    /// Position in the order of acceptance, from 1.
    pub(crate) seq: u64,
}

/// Counters behind [`Stats`](super::Stats).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) enqueued: AtomicU64,
    pub(crate) exported: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) retried: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

#[derive(Debug, Default)]
struct State {
    waiting: Vec<Entry>,
    waiting_bytes: usize,
    last_seq: u64,
    held_items: usize,
    held_bytes: usize,
    closed: bool,
}

#[derive(Debug)]
pub(crate) struct Queue {
    state: Mutex<State>,
    max_items: usize,
    max_bytes: usize,
    wake_at: usize,
    wake_at_bytes: usize,
    /// Whether more than three quarters of the item or byte bound is held, kept up to date
    /// under the lock so that a new trace can check it without taking the lock.
    congested: AtomicBool,
    /// Wakes the worker when a batch is full, by count or by bytes; the worker also wakes on
    /// its interval.
    pub(crate) wake: Notify,
    pub(crate) counters: Counters,
}

impl Queue {
    /// A queue of at most `max_items` and `max_bytes`, waking the worker at `wake_at` waiting
    /// items or `wake_at_bytes` waiting bytes.
    pub(crate) fn new(
        max_items: usize,
        max_bytes: usize,
        wake_at: usize,
        wake_at_bytes: usize,
    ) -> Self {
        Self {
            state: Mutex::default(),
            max_items,
            max_bytes,
            wake_at,
            wake_at_bytes,
            congested: AtomicBool::new(false),
            wake: Notify::new(),
            counters: Counters::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Nothing panics while holding the lock, but a poisoned queue must still deliver.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Accepts `item` of `size` bytes unless the queue is full or closed, and returns its
    /// sequence number; a refused item is counted as dropped.
    pub(crate) fn push(&self, item: Item, size: usize) -> Option<u64> {
        Counters::add(&self.counters.enqueued, 1);
        let (wake, seq) = {
            let mut state = self.lock();
            if state.closed {
                drop(state);
                Counters::add(&self.counters.dropped, 1);
                diagnostics::warn(
                    "closed",
                    "a record arrived after shutdown and was dropped; flush instead of shutting \
                     down if more records will follow",
                );
                return None;
            }
            if state.held_items >= self.max_items || state.held_bytes + size > self.max_bytes {
                drop(state);
                Counters::add(&self.counters.dropped, 1);
                diagnostics::warn(
                    "queue-full",
                    format_args!(
                        "export queue full ({} items / {} bytes): dropped a record; the server \
                         is slower than the program or unreachable. Raise LANGFUSE_MAX_QUEUE_ITEMS \
                         or LANGFUSE_MAX_QUEUE_BYTES, or check stats()",
                        self.max_items, self.max_bytes
                    ),
                );
                return None;
            }
            state.last_seq += 1;
            let seq = state.last_seq;
            state.held_items += 1;
            state.held_bytes += size;
            self.update_congestion(&state);
            state.waiting_bytes += size;
            state.waiting.push(Entry { item, size, seq });
            let wake =
                state.waiting.len() >= self.wake_at || state.waiting_bytes >= self.wake_at_bytes;
            (wake, seq)
        };
        if wake {
            self.wake.notify_one();
        }
        Some(seq)
    }

    /// Takes everything waiting, in order of acceptance.
    pub(crate) fn take(&self) -> Vec<Entry> {
        let mut state = self.lock();
        state.waiting_bytes = 0;
        std::mem::take(&mut state.waiting)
    }

    /// Frees the room held by settled items.
    pub(crate) fn release(&self, items: usize, bytes: usize) {
        let mut state = self.lock();
        state.held_items -= items;
        state.held_bytes -= bytes;
        self.update_congestion(&state);
    }

    fn update_congestion(&self, state: &State) {
        let congested = state.held_items * 4 > self.max_items * 3
            || state.held_bytes.saturating_mul(4) > self.max_bytes.saturating_mul(3);
        self.congested.store(congested, Ordering::Relaxed);
    }

    /// The sequence number of the last accepted item.
    pub(crate) fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    /// Refuses every later push.
    pub(crate) fn close(&self) {
        self.lock().closed = true;
    }

    /// Whether more than three quarters of the item or the byte bound is held.
    pub(crate) fn congested(&self) -> bool {
        self.congested.load(Ordering::Relaxed)
    }

    /// Bytes currently held, waiting or in flight.
    pub(crate) fn held_bytes(&self) -> usize {
        self.lock().held_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{ObservationId, TraceId};

    fn push(queue: &Queue) -> bool {
        let item = Item::Observation(Box::new(Observation::new(
            TraceId::random(),
            ObservationId::random(),
            "step",
        )));
        let size = item.estimated_size();
        queue.push(item, size).is_some()
    }

    #[test]
    fn refuses_past_the_item_limit_and_counts_the_drop() {
        let queue = Queue::new(2, usize::MAX, 100, usize::MAX);
        assert!(push(&queue));
        assert!(push(&queue));
        assert!(!push(&queue));
        assert_eq!(queue.counters.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(queue.counters.enqueued.load(Ordering::Relaxed), 3);
        let taken = queue.take();
        assert_eq!(taken.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2]);
        assert!(!push(&queue), "taken items still count until released");
        queue.release(2, taken.iter().map(|e| e.size).sum());
        assert!(push(&queue));
        assert_eq!(queue.held_bytes(), queue.take()[0].size);
    }

    #[test]
    fn refuses_past_the_byte_limit() {
        let queue = Queue::new(100, 300, 100, usize::MAX);
        assert!(push(&queue));
        assert!(!push(&queue));
    }

    #[test]
    fn wakes_the_worker_on_bytes_as_well_as_on_count() {
        let queue = Queue::new(100, usize::MAX, 100, 200);
        let woken = || {
            use std::future::Future;
            let notified = queue.wake.notified();
            tokio::pin!(notified);
            // A stored permit completes the first poll at once.
            let mut context = std::task::Context::from_waker(std::task::Waker::noop());
            notified.as_mut().poll(&mut context).is_ready()
        };
        assert!(push(&queue), "one record of about 160 bytes");
        assert!(!woken(), "below both thresholds");
        assert!(push(&queue));
        assert!(woken(), "two records pass 200 bytes");
    }
}
