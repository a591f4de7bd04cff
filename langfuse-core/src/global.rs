//! The process default client, and delivery at exit.
//!
//! The default is set with [`init`] (again and again, if need be), or made from the
//! environment on first use. Statics are never dropped, so what any client still holds when
//! the process exits is delivered by a function the platform runs at exit
//! (`deliver_at_exit`), by a [`FlushGuard`] or by the flush at the end of an outermost
//! observation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::client::Langfuse;
use crate::config::{Config, ConfigError};
use crate::diagnostics;
use crate::export::{ExportError, FlushReport, Stats};

/// The process default: read when a trace starts, and by its records once `init` replaced it,
/// so it is swapped rather than locked.
static DEFAULT: OnceLock<ArcSwap<Langfuse>> = OnceLock::new();

/// How many times [`init`] replaced the default: a trace of the default holds the client it
/// started with and compares this, one load, instead of reading the default per record.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Why [`init`] or [`Langfuse::new`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// A setting is invalid; the message names the variable and what is accepted.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The exporter could not start.
    #[error(transparent)]
    Export(#[from] ExportError),
}

/// Flushes its client when dropped, waiting at most the configured flush timeout, and says on
/// one line what it could not deliver.
///
/// Keep it alive for the whole program, typically as `let _guard = init(config)?;` at the top
/// of `main`.
#[must_use = "the guard flushes when dropped; binding it to `_` drops it at once"]
#[derive(Debug)]
pub struct FlushGuard {
    client: Langfuse,
    timeout: Duration,
}

impl FlushGuard {
    pub(crate) fn new(client: Langfuse, timeout: Duration) -> Self {
        Self { client, timeout }
    }
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.client.exporter().guard_flush(self.timeout);
    }
}

/// Makes a client from `config` the process default and returns the guard that flushes it
/// on drop.
///
/// It may be called at any time. Traces started later go to the new client, and so does
/// what an open trace of the previous default records from now on: `init` inside
/// `#[observe] async fn main` sends the whole of `main`'s trace that follows it. Calling it
/// again replaces the default again; the previous client keeps delivering what it holds.
///
/// ```no_run
/// use langfuse_observe_core::config::Config;
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let _guard = langfuse_observe_core::init(Config::from_env()?)?;
///     // … instrumented work …
///     Ok(())
/// }
/// ```
pub fn init(config: Config) -> Result<FlushGuard, InitError> {
    let client = Langfuse::new(&config)?;
    let mut installed = false;
    let slot = DEFAULT.get_or_init(|| {
        installed = true;
        ArcSwap::from_pointee(client.clone())
    });
    if !installed {
        slot.store(Arc::new(client.clone()));
        GENERATION.fetch_add(1, Ordering::Release);
    }
    Ok(FlushGuard::new(client, config.flush_timeout()))
}

/// [`init`] with [`Config::from_env`].
pub fn init_from_env() -> Result<FlushGuard, InitError> {
    init(Config::from_env()?)
}

/// The process default, made from the environment on first use unless [`init`] came first.
/// A configuration error is reported once on stderr and leaves tracing disabled:
/// instrumentation never breaks the program it observes.
fn default_slot() -> &'static ArcSwap<Langfuse> {
    DEFAULT.get_or_init(|| {
        let client = Langfuse::from_env().unwrap_or_else(|error| {
            diagnostics::notice(format_args!("tracing disabled: {error}"));
            Langfuse::disabled()
        });
        ArcSwap::from_pointee(client)
    })
}

/// See [`GENERATION`].
pub(crate) fn default_generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// Whether the process default was made: once it was, a disabled call checks two flags.
#[inline]
pub(crate) fn default_exists() -> bool {
    DEFAULT.get().is_some()
}

pub(crate) fn ensure_default() {
    default_slot();
}

/// Runs `use_it` with the process default.
pub(crate) fn with_default<R>(use_it: impl FnOnce(&Langfuse) -> R) -> R {
    use_it(&default_slot().load())
}

/// The client in effect here: the one put in effect on this thread
/// ([`Langfuse::run`], [`Langfuse::scope`], [`Langfuse::set_default`]), else the process
/// default.
pub fn client() -> Langfuse {
    crate::client::scoped().unwrap_or_else(|| with_default(Langfuse::clone))
}

/// Run by the C runtime as the process exits, after `main` returns, on `std::process::exit`
/// and after a panic out of `main` (not on `panic = "abort"`, a signal, or
/// `std::process::abort`): delivers what the global exporter still holds, within
/// `LANGFUSE_FLUSH_TIMEOUT`, unless `LANGFUSE_FLUSH_AT_EXIT=false`. `ctor`'s `#[dtor]` registers
/// it in the platform's list of exit functions; nothing here may unwind into that caller.
#[ctor::dtor]
fn deliver_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        crate::export::deliver_all_at_exit();
        diagnostics::report_held_back();
    });
}

/// Flushes the client in effect here; see [`Langfuse::flush`].
pub async fn flush(timeout: Duration) -> FlushReport {
    client().flush(timeout).await
}

/// Flushes the client in effect here from synchronous code; see [`Langfuse::flush_blocking`].
pub fn flush_blocking(timeout: Duration) -> FlushReport {
    client().flush_blocking(timeout)
}

/// Shuts the client in effect here down; see [`Langfuse::shutdown_blocking`].
pub fn shutdown(timeout: Duration) -> FlushReport {
    client().shutdown_blocking(timeout)
}

/// A request for the prompt `name` from the client in effect here; see
/// [`Langfuse::prompt`].
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let prompt = langfuse_observe_core::prompt("support/answer")
///     .fallback("Answer briefly: {{question}}")
///     .fetch()
///     .await?;
/// # let _ = prompt;
/// # Ok(())
/// # }
/// ```
pub fn prompt(name: impl Into<String>) -> crate::prompt::PromptRequest {
    client().prompt(name)
}

/// Counts of the client in effect here; see [`Stats`].
pub fn stats() -> Stats {
    client().stats()
}
