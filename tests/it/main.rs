//! The integration tests, as the modules of one test binary (the UI tests are `tests/ui.rs`).
//!
//! Tests run in parallel threads of one process, so none may rely on anything process-wide:
//! each starts its own loopback server and its own client and puts that client in effect
//! where its traces start (see [`support::observed`]). The few tests about the process itself
//! (`init` and the process default, the environment, exit) run a child process: an example
//! program, or one test of this binary alone (see [`support::process`]).
#![allow(clippy::unwrap_used)]

mod support;

mod api_continue;
mod api_ingestion;
mod api_links;
mod api_links_without;
mod api_masking;
mod api_observation;
mod api_sampling;
mod api_sampling_zero;
mod api_scores;
mod api_trace;
mod client;
mod config_errors;
mod console_export;
mod examples;
mod exit_hook;
mod export_faults;
mod export_lifecycle;
mod export_limits;
mod export_thread;
mod ingestion_mapping;
mod observe_capture;
mod observe_capture_off;
mod observe_concurrency;
mod observe_errors;
mod observe_exit;
mod observe_nesting;
mod observe_rayon;
mod observe_shapes;
mod observe_spawn;
mod observe_streams;
mod otlp_mapping;
mod overload;
mod prompts;
mod reliability_exit;
mod reliability_parsing;
mod reliability_security;
mod reliability_soak;
mod reliability_values;
#[cfg(feature = "tracing")]
mod rig_agent;
mod root_flush;
mod stream_generation_usage;
#[cfg(feature = "tracing-opentelemetry")]
mod tracing_otel_ids;
#[cfg(feature = "tracing")]
mod tracing_spans;
mod wire_contract;
