//! Runtime of `langfuse-observe`: configuration, ids, recorded values, and the exporter that
//! delivers observations to Langfuse.
//!
//! Most programs use this crate through the `langfuse-observe` facade. The pieces are usable
//! on their own too: build a [`Config`](config::Config), start an
//! [`Exporter`](export::Exporter), and hand it finished
//! [`Observation`](observation::Observation)s.

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
mod scope;
mod stream;
pub mod timestamp;

pub use global::{
    client, flush, flush_blocking, init, init_from_env, shutdown, stats, FlushGuard, InitError,
};
