//! Helpers shared by the integration tests, which are the modules of this one binary. Its
//! tests run in parallel threads of one process, so each starts its own loopback server and
//! its own client and never finds another test's data:
//!
//! - [`observed`]: a server with a client in effect on the test's thread, for `#[observe]`
//!   and the context API, and the checks on what the server stored;
//! - [`exporter`]: a server with a client that is handed records directly, sample records,
//!   and the accounting every exporter test ends with;
//! - [`example`]: an example program run as a child process against a server;
//! - `fake_model` (with the `tracing` feature): a loopback model with OpenAI's API, for
//!   driving rig without network;
//! - [`process`]: a test of this binary run alone in a child process, for the tests about
//!   the process itself (its default client, its environment, its exit).

use std::time::Duration;

pub(crate) mod example;
pub(crate) mod exporter;
#[cfg(feature = "tracing")]
pub(crate) mod fake_model;
pub(crate) mod observed;
pub(crate) mod process;

/// Generous deadline for flushes that are expected to complete and for data that arrives in
/// the background; never an assertion on speed.
pub(crate) const WAIT: Duration = Duration::from_secs(20);
