//! The process-wide exporter that instrumented code records into.
//!
//! Set up explicitly with [`init`], or on first use from the environment. Either way it is set
//! once per process. Statics are never dropped, so what is still pending when the process
//! exits is delivered by a function the platform runs at exit (`deliver_at_exit`), the
//! [`FlushGuard`] or the flush at the end of the outermost observation.

use std::sync::OnceLock;
use std::time::Duration;

use crate::config::{Config, ConfigError};
use crate::diagnostics;
use crate::export::{ExportError, Exporter, FlushReport, Stats};

static GLOBAL: OnceLock<Exporter> = OnceLock::new();

/// Why [`init`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// A setting is invalid; the message names the variable and what is accepted.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The exporter could not start.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// The global exporter exists already: `init` ran twice, or an observation was recorded
    /// before it (which sets the exporter up from the environment).
    #[error(
        "langfuse-observe is already initialized; call init once, before the first observed call"
    )]
    AlreadyInitialized,
}

/// Flushes the global exporter when dropped, waiting at most the configured flush timeout.
///
/// Keep it alive for the whole program, typically as `let _guard = init(config)?;` at the top
/// of `main`.
#[must_use = "the guard flushes when dropped; binding it to `_` drops it at once"]
#[derive(Debug)]
pub struct FlushGuard {
    timeout: Duration,
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        exporter().guard_flush(self.timeout);
    }
}

/// Sets up the global exporter from `config` and returns the guard that flushes it on drop.
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
    let mut created = false;
    let mut failure = None;
    GLOBAL.get_or_init(|| {
        created = true;
        Exporter::start(&config).unwrap_or_else(|error| {
            failure = Some(error);
            Exporter::disabled()
        })
    });
    if let Some(error) = failure {
        return Err(error.into());
    }
    if !created {
        return Err(InitError::AlreadyInitialized);
    }
    Ok(FlushGuard {
        timeout: config.flush_timeout(),
    })
}

/// [`init`] with [`Config::from_env`].
pub fn init_from_env() -> Result<FlushGuard, InitError> {
    init(Config::from_env()?)
}

/// The global exporter, set up from the environment on first use. A configuration error is
/// reported once on stderr and leaves tracing disabled: instrumentation never breaks the
/// program it observes.
pub fn exporter() -> &'static Exporter {
    GLOBAL.get_or_init(|| {
        let started = Config::from_env()
            .map_err(InitError::from)
            .and_then(|config| Exporter::start(&config).map_err(InitError::from));
        started.unwrap_or_else(|error| {
            diagnostics::notice(format_args!("tracing disabled: {error}"));
            Exporter::disabled()
        })
    })
}

/// Run by the C runtime as the process exits, after `main` returns, on `std::process::exit`
/// and after a panic out of `main` (not on `panic = "abort"`, a signal, or
/// `std::process::abort`): delivers what the global exporter still holds, within
/// `LANGFUSE_FLUSH_TIMEOUT`, unless `LANGFUSE_FLUSH_AT_EXIT=false`. `ctor`'s `#[dtor]` registers
/// it in the platform's list of exit functions; nothing here may unwind into that caller.
#[ctor::dtor]
fn deliver_at_exit() {
    let _ = std::panic::catch_unwind(|| {
        if let Some(exporter) = GLOBAL.get() {
            exporter.deliver_at_exit();
        }
        diagnostics::report_held_back();
    });
}

/// Flushes the global exporter; see [`Exporter::flush`].
pub async fn flush(timeout: Duration) -> FlushReport {
    exporter().flush(timeout).await
}

/// Flushes the global exporter from synchronous code; see [`Exporter::flush_blocking`].
pub fn flush_blocking(timeout: Duration) -> FlushReport {
    exporter().flush_blocking(timeout)
}

/// Shuts the global exporter down; see [`Exporter::shutdown_blocking`].
pub fn shutdown(timeout: Duration) -> FlushReport {
    exporter().shutdown_blocking(timeout)
}

/// Counts of the global exporter; see [`Stats`].
pub fn stats() -> Stats {
    exporter().stats()
}
