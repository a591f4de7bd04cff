//! Runtime of `langfuse-observe`: configuration, ids, recorded values, clients, and the
//! export pipeline that delivers observations to Langfuse.
//!
//! Use it through the `langfuse-observe` facade, which re-exports what programs need and
//! provides `#[observe]`; this crate's layout follows the architecture and may change with
//! it.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod api;
pub mod capture;
pub mod client;
pub mod config;
pub mod context;
mod diagnostics;
pub mod export;
mod global;
pub mod ids;
#[doc(hidden)]
pub mod macro_support;
pub mod observation;
pub mod prompt;
mod scope;
mod stream;
pub mod timestamp;
#[cfg(feature = "tracing")]
pub mod tracing_layer;

pub use global::{
    client, flush, flush_blocking, init, init_from_env, prompt, shutdown, stats, FlushGuard,
    InitError,
};
