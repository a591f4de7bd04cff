//! A real loopback HTTP server that imitates the Langfuse ingestion endpoints, for testing
//! instrumentation end to end (enabled by the `test-server` feature).
//!
//! [`TestServer`] listens on `127.0.0.1`, accepts what an SDK sends and shows it the way Langfuse
//! would: as [`StoredTrace`]s, [`StoredObservation`]s and [`StoredScore`]s, plus a [`RecordedRequest`] for every
//! request with its headers and the status it got. It speaks
//!
//! - `POST /api/public/otel/v1/traces`: OTLP/HTTP, protobuf or JSON, optionally gzipped; span
//!   attributes are mapped like the Langfuse server does (`langfuse.observation.*`,
//!   `langfuse.trace.*`, `user.id`, `session.id`, ...); the decoded exports themselves, in the
//!   official [`opentelemetry_proto`] types, are available from [`TestServer::otlp_requests`];
//! - `POST /api/public/ingestion`: the batch ingestion API, answered with 207 and per-event
//!   results, deduplicating events by envelope id like the real server;
//! - `GET /api/public/projects`: one project, for building trace URLs.
//!
//! Every route requires HTTP Basic authentication with the server's public and secret key, and
//! answers 401 otherwise. A [`Faults`] plan makes the server misbehave on purpose: error statuses,
//! 429 with `Retry-After`, 413 above a body size, slow answers, dropped connections and per-event
//! errors. A request that a fault fails changes nothing in the model but is still recorded.
//!
//! The server runs on its own thread with its own runtime, so it works from plain `#[test]`s and
//! from any async runtime. Query and wait methods are blocking; they are cheap, but inside a
//! single-threaded async test they stall that runtime while they wait.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use langfuse_observe_testing::{Faults, TestServer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = TestServer::start();
//! // The first batch fails; a client that retries with the same envelope id gets it through.
//! server.set_faults(Faults::new().fail_next(1, 503));
//!
//! let batch = serde_json::json!({"batch": [{
//!     "id": "envelope-1",
//!     "timestamp": "2024-01-01T00:00:00Z",
//!     "type": "score-create",
//!     "body": {"id": "score-1", "traceId": "0123456789abcdef0123456789abcdef",
//!              "name": "accuracy", "value": 0.9, "dataType": "NUMERIC"}
//! }]});
//! # let runtime = tokio::runtime::Runtime::new()?;
//! # runtime.block_on(async {
//! let client = reqwest::Client::new();
//! for _attempt in 0..2 {
//!     client
//!         .post(format!("{}/api/public/ingestion", server.url()))
//!         .basic_auth(server.public_key(), Some(server.secret_key()))
//!         .header("content-type", "application/json")
//!         .body(batch.to_string())
//!         .send()
//!         .await?;
//! }
//! # Ok::<_, reqwest::Error>(())
//! # })?;
//!
//! assert!(server.wait_for_scores(1, Duration::from_secs(5)));
//! assert_eq!(server.scores()[0].name, "accuracy");
//! let statuses: Vec<_> = server.requests().iter().map(|r| r.status).collect();
//! assert_eq!(statuses, [Some(503), Some(207)]);
//! assert_eq!(server.envelope_receipts("envelope-1"), 2);
//! # Ok(())
//! # }
//! ```

mod faults;
mod handler;
mod ingestion;
mod model;
mod otlp;
mod server;

#[cfg(test)]
mod tests;

pub use faults::{EventErrors, Fault, Faults, Route};
pub use model::{RecordedRequest, StoredObservation, StoredScore, StoredTrace};
pub use server::{TestServer, TestServerBuilder};

/// The OTLP message types [`TestServer::otlp_requests`] returns (the `opentelemetry-proto` crate
/// this server decodes with), so tests can inspect them without depending on a matching version.
pub use opentelemetry_proto;
