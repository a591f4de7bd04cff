//! The SDK's own messages on stderr: warnings rate-limited per topic, debug lines on request.
//!
//! Written straight to stderr rather than through a logging facade so that a program without
//! a logger still learns that data was dropped or rejected.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const PREFIX: &str = "[langfuse-observe]";
const WARN_INTERVAL: Duration = Duration::from_secs(10);

static DEBUG: AtomicBool = AtomicBool::new(false);
static LAST_WARNING: Mutex<Option<HashMap<&'static str, (Instant, u64)>>> = Mutex::new(None);

/// Turns debug lines on or off (`LANGFUSE_DEBUG`).
pub(crate) fn set_debug(enabled: bool) {
    DEBUG.store(enabled, Ordering::Relaxed);
}

/// Whether debug lines are printed; check before building an expensive message.
pub(crate) fn debug_enabled() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

pub(crate) fn debug(message: impl std::fmt::Display) {
    if debug_enabled() {
        eprintln!("{PREFIX} debug: {message}");
    }
}

/// Prints at most one warning per `topic` every ten seconds, saying how many were held back.
pub(crate) fn warn(topic: &'static str, message: impl std::fmt::Display) {
    let now = Instant::now();
    let suppressed = {
        let mut guard = LAST_WARNING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let last = guard
            .get_or_insert_with(HashMap::new)
            .entry(topic)
            .or_insert((now, 0));
        if last.1 > 0 && now.duration_since(last.0) < WARN_INTERVAL {
            last.1 += 1;
            return;
        }
        let held_back = last.1.saturating_sub(1);
        *last = (now, 1);
        held_back
    };
    if suppressed > 0 {
        eprintln!("{PREFIX} warning: {message} ({suppressed} similar warnings held back)");
    } else {
        eprintln!("{PREFIX} warning: {message}");
    }
}

/// Prints, for every topic, how many warnings were held back since it was last printed, so
/// the last window of a rate-limited warning is accounted for too (at exit).
pub(crate) fn report_held_back() {
    for (topic, count) in take_held_back() {
        eprintln!("{PREFIX} {count} more \"{topic}\" warnings were held back");
    }
}

/// The warnings held back since each topic was last printed, by topic; counts them as told.
fn take_held_back() -> Vec<(&'static str, u64)> {
    let mut guard = LAST_WARNING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    guard
        .get_or_insert_with(HashMap::new)
        .iter_mut()
        .filter(|(_, (_, count))| *count > 1)
        .map(|(topic, (_, count))| (*topic, std::mem::replace(count, 1) - 1))
        .collect()
}

/// Prints an error once per `flag`.
pub(crate) fn error_once(flag: &AtomicBool, message: impl std::fmt::Display) {
    if !flag.swap(true, Ordering::Relaxed) {
        eprintln!("{PREFIX} error: {message}");
    }
}

/// Prints a warning once per `flag`.
pub(crate) fn warn_once(flag: &AtomicBool, message: impl std::fmt::Display) {
    if !flag.swap(true, Ordering::Relaxed) {
        eprintln!("{PREFIX} warning: {message}");
    }
}

/// `text` with any `user:password@` and any query string replaced by `<redacted>`: URLs end
/// up in messages and `Debug` output, and those parts are where credentials hide.
pub(crate) fn redact_url(text: &str) -> String {
    let start = text.find("://").map_or(0, |scheme| scheme + 3);
    let authority_end = text[start..]
        .find(['/', '?', '#'])
        .map_or(text.len(), |at| start + at);
    let mut redacted = String::with_capacity(text.len());
    redacted.push_str(&text[..start]);
    match text[start..authority_end].rfind('@') {
        Some(at) => {
            redacted.push_str("<redacted>");
            redacted.push_str(&text[start + at..authority_end]);
        }
        None => redacted.push_str(&text[start..authority_end]),
    }
    let rest = &text[authority_end..];
    match rest.find('?') {
        Some(query) => {
            redacted.push_str(&rest[..=query]);
            redacted.push_str("<redacted>");
            if let Some(fragment) = rest[query..].find('#') {
                redacted.push_str(&rest[query + fragment..]);
            }
        }
        None => redacted.push_str(rest),
    }
    redacted
}

/// Prints an unconditional notice, for things the user must see once (e.g. where data goes).
pub(crate) fn notice(message: impl std::fmt::Display) {
    eprintln!("{PREFIX} {message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_back_warnings_are_counted_until_told() {
        for _ in 0..4 {
            warn("held-back-test", "the same thing again");
        }
        let held_back = take_held_back();
        assert!(held_back.contains(&("held-back-test", 3)), "{held_back:?}");
        assert!(!take_held_back()
            .iter()
            .any(|(topic, _)| *topic == "held-back-test"));
    }

    #[test]
    fn urls_lose_userinfo_and_query() {
        for (given, shown) in [
            (
                "https://user:pw@langfuse.example/",
                "https://<redacted>@langfuse.example/",
            ),
            (
                "https://pk:sk@host:3000/api?token=abc#top",
                "https://<redacted>@host:3000/api?<redacted>#top",
            ),
            (
                "http://host/path?key=sk-lf-1",
                "http://host/path?<redacted>",
            ),
            ("https://cloud.langfuse.com", "https://cloud.langfuse.com"),
            ("/sign-in?next=/x", "/sign-in?<redacted>"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_url(given), shown, "{given}");
        }
    }
}
