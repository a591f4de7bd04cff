//! A client's prompt cache: one entry per name and label or version, fresh for a TTL and
//! then served stale while one refresh runs, and one fetch in flight per key however many
//! callers ask at once. A key that could not be fetched because Langfuse was unreachable is
//! remembered the same way: callers get that failure at once (and so their fallback) while one
//! request at a time checks whether Langfuse is back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::model::Prompt;
use super::PromptError;

/// Which version of a prompt a key names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Selector {
    Label(String),
    Version(u32),
}

impl std::fmt::Display for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Label(label) => write!(f, "label {label:?}"),
            Self::Version(version) => write!(f, "version {version}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) name: String,
    pub(crate) selector: Selector,
}

pub(crate) type Outcome = Result<Prompt, PromptError>;

/// One fetch in flight: every caller waiting for the key watches its outcome.
pub(crate) struct Flight {
    outcome: watch::Sender<Option<Outcome>>,
}

impl Flight {
    pub(crate) fn watch(&self) -> watch::Receiver<Option<Outcome>> {
        self.outcome.subscribe()
    }
}

#[derive(Default)]
struct Slot {
    cached: Option<(Prompt, Instant)>,
    flight: Option<Arc<Flight>>,
    /// Why the last fetch of a key with nothing cached failed, while Langfuse is unreachable.
    unreachable: Option<PromptError>,
}

impl Slot {
    fn is_empty(&self) -> bool {
        self.cached.is_none() && self.flight.is_none() && self.unreachable.is_none()
    }
}

/// What the cache has for a caller.
pub(crate) enum Lookup {
    /// A cached prompt, fresh or stale; when stale and no refresh runs yet, the flight this
    /// caller must start to refresh it.
    Hit(Prompt, Option<Arc<Flight>>),
    /// Nothing to serve: wait for this flight, which this caller must start when `start`.
    Miss { flight: Arc<Flight>, start: bool },
    /// Langfuse was unreachable for this key: the failure at once, and the flight this caller
    /// must start to check again when none runs.
    Unreachable(PromptError, Option<Arc<Flight>>),
}

pub(crate) struct Cache {
    /// Zero turns caching off: every call fetches (calls at the same time still share one).
    ttl: Duration,
    slots: Mutex<HashMap<Key, Slot>>,
}

impl Cache {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The slots stay consistent under every lock, so a panic elsewhere does not matter.
    fn slots(&self) -> MutexGuard<'_, HashMap<Key, Slot>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn lookup(&self, key: &Key) -> Lookup {
        let mut slots = self.slots();
        if let Some(slot) = slots.get_mut(key) {
            if let Some((prompt, fetched)) = &slot.cached {
                let prompt = prompt.clone();
                if fetched.elapsed() < self.ttl || slot.flight.is_some() {
                    return Lookup::Hit(prompt, None);
                }
                let flight = new_flight();
                slot.flight = Some(Arc::clone(&flight));
                return Lookup::Hit(prompt, Some(flight));
            }
            if let Some(error) = &slot.unreachable {
                let error = error.clone();
                if slot.flight.is_some() {
                    return Lookup::Unreachable(error, None);
                }
                let flight = new_flight();
                slot.flight = Some(Arc::clone(&flight));
                return Lookup::Unreachable(error, Some(flight));
            }
            if let Some(flight) = &slot.flight {
                return Lookup::Miss {
                    flight: Arc::clone(flight),
                    start: false,
                };
            }
        }
        let flight = new_flight();
        slots.entry(key.clone()).or_default().flight = Some(Arc::clone(&flight));
        Lookup::Miss {
            flight,
            start: true,
        }
    }

    /// Ends `flight` with `outcome`: a prompt is cached unless the key was invalidated while
    /// it was fetched; a failure keeps what was cached (the stale prompt goes on being
    /// served, and the next call after the TTL tries again). Then every waiter is answered.
    pub(crate) fn settle(&self, key: &Key, flight: &Arc<Flight>, outcome: Outcome) {
        {
            let mut slots = self.slots();
            let current = slots.get_mut(key).filter(|slot| {
                slot.flight
                    .as_ref()
                    .is_some_and(|own| Arc::ptr_eq(own, flight))
            });
            if let Some(slot) = current {
                slot.flight = None;
                slot.unreachable = None;
                match &outcome {
                    Ok(prompt) if !self.ttl.is_zero() => {
                        slot.cached = Some((prompt.clone(), Instant::now()));
                    }
                    Err(error) if error.is_unreachable() && slot.cached.is_none() => {
                        slot.unreachable = Some(error.clone());
                    }
                    _ => {}
                }
                if slot.is_empty() {
                    slots.remove(key);
                }
            }
        }
        flight.outcome.send_replace(Some(outcome));
    }

    /// Remembers that a caller waited for `flight` in vain: while it still runs, the next
    /// callers of a key with nothing cached get `error` at once instead of waiting too.
    pub(crate) fn waited_in_vain(&self, key: &Key, flight: &Arc<Flight>, error: PromptError) {
        let mut slots = self.slots();
        let slot = slots.get_mut(key).filter(|slot| {
            slot.cached.is_none()
                && slot
                    .flight
                    .as_ref()
                    .is_some_and(|own| Arc::ptr_eq(own, flight))
        });
        if let Some(slot) = slot {
            slot.unreachable = Some(error);
        }
    }

    /// Forgets every version and label of `name`; fetches already in flight still answer
    /// their callers but are not cached.
    pub(crate) fn invalidate(&self, name: &str) {
        self.slots().retain(|key, _| key.name != name);
    }

    /// Forgets everything.
    pub(crate) fn clear(&self) {
        self.slots().clear();
    }
}

fn new_flight() -> Arc<Flight> {
    Arc::new(Flight {
        outcome: watch::Sender::new(None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prompt::Fallback;

    fn key(name: &str) -> Key {
        Key {
            name: name.to_owned(),
            selector: Selector::Label("production".to_owned()),
        }
    }

    fn prompt(text: &str) -> Prompt {
        Fallback::from(text).into_prompt("p", Some(1), None)
    }

    fn miss(lookup: Lookup) -> (Arc<Flight>, bool) {
        match lookup {
            Lookup::Miss { flight, start } => (flight, start),
            _ => panic!("expected a miss"),
        }
    }

    fn down() -> PromptError {
        PromptError::Unavailable {
            name: "a".to_owned(),
            reason: "refused".to_owned(),
        }
    }

    #[test]
    fn while_unreachable_callers_fail_at_once_and_one_check_runs() {
        let cache = Cache::new(Duration::from_secs(60));
        let (flight, _) = miss(cache.lookup(&key("a")));
        cache.settle(&key("a"), &flight, Err(down()));
        let Lookup::Unreachable(error, Some(check)) = cache.lookup(&key("a")) else {
            panic!("the failure is served and one check starts");
        };
        assert_eq!(error, down());
        assert!(matches!(
            cache.lookup(&key("a")),
            Lookup::Unreachable(_, None)
        ));
        cache.settle(&key("a"), &check, Ok(prompt("back")));
        assert!(matches!(cache.lookup(&key("a")), Lookup::Hit(_, None)));
    }

    #[test]
    fn a_failure_that_is_an_answer_is_not_remembered() {
        let cache = Cache::new(Duration::from_secs(60));
        let (flight, _) = miss(cache.lookup(&key("a")));
        let missing = PromptError::NotFound {
            name: "a".to_owned(),
            selector: "label \"production\"".to_owned(),
        };
        cache.settle(&key("a"), &flight, Err(missing));
        assert!(matches!(
            cache.lookup(&key("a")),
            Lookup::Miss { start: true, .. }
        ));
    }

    #[test]
    fn a_caller_that_waited_in_vain_spares_the_next_ones_the_wait() {
        let cache = Cache::new(Duration::from_secs(60));
        let (flight, _) = miss(cache.lookup(&key("a")));
        cache.waited_in_vain(&key("a"), &flight, down());
        assert!(matches!(
            cache.lookup(&key("a")),
            Lookup::Unreachable(_, None)
        ));
    }

    #[test]
    fn callers_of_a_cold_key_share_one_flight() {
        let cache = Cache::new(Duration::from_secs(60));
        let (first, start) = miss(cache.lookup(&key("a")));
        assert!(start);
        let (second, start) = miss(cache.lookup(&key("a")));
        assert!(!start, "a second caller must join the fetch in flight");
        assert!(Arc::ptr_eq(&first, &second));
        let mut watcher = second.watch();
        cache.settle(&key("a"), &first, Ok(prompt("x")));
        assert!(watcher.borrow_and_update().as_ref().unwrap().is_ok());
        assert!(matches!(cache.lookup(&key("a")), Lookup::Hit(_, None)));
    }

    #[test]
    fn a_stale_entry_is_served_while_one_refresh_runs() {
        let cache = Cache::new(Duration::from_nanos(1));
        let (flight, _) = miss(cache.lookup(&key("a")));
        cache.settle(&key("a"), &flight, Ok(prompt("old")));
        std::thread::sleep(Duration::from_millis(1));
        let Lookup::Hit(served, Some(refresh)) = cache.lookup(&key("a")) else {
            panic!("a stale entry must be served and refreshed");
        };
        assert_eq!(served, prompt("old"));
        assert!(matches!(cache.lookup(&key("a")), Lookup::Hit(_, None)));
        cache.settle(&key("a"), &refresh, Err(PromptError::Closed));
        let Lookup::Hit(served, _) = cache.lookup(&key("a")) else {
            panic!("a failed refresh keeps the stale entry");
        };
        assert_eq!(served, prompt("old"));
    }

    #[test]
    fn an_invalidated_key_does_not_keep_a_fetch_that_was_in_flight() {
        let cache = Cache::new(Duration::from_secs(60));
        let (flight, _) = miss(cache.lookup(&key("a")));
        cache.invalidate("a");
        let (after, start) = miss(cache.lookup(&key("a")));
        assert!(start && !Arc::ptr_eq(&flight, &after));
        cache.settle(&key("a"), &flight, Ok(prompt("old")));
        assert!(matches!(
            cache.lookup(&key("a")),
            Lookup::Miss { start: false, .. }
        ));
    }

    #[test]
    fn a_ttl_of_zero_caches_nothing() {
        let cache = Cache::new(Duration::ZERO);
        let (flight, _) = miss(cache.lookup(&key("a")));
        cache.settle(&key("a"), &flight, Ok(prompt("x")));
        assert!(matches!(
            cache.lookup(&key("a")),
            Lookup::Miss { start: true, .. }
        ));
    }
}
