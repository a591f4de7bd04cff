//! A real loopback HTTP server that behaves like the Langfuse server, rule by rule, for testing
//! instrumentation end to end.
//!
//! [`TestServer`] listens on `127.0.0.1` and answers what an SDK sends the way Langfuse 4.16
//! does, as described in `LANGFUSE_SERVER.md`: the same statuses, the same error bodies, the
//! same validation and the same data loss. It shows the result as Langfuse stores it, as
//! [`StoredTrace`]s, [`StoredObservation`]s and [`StoredScore`]s, plus a [`RecordedRequest`] for
//! every request with its headers, the status it got and the body it was answered with. A test
//! that passes against it passes for the reasons it would against Langfuse; a client that sends
//! something Langfuse drops sees it dropped here too.
//!
//! # Modes
//!
//! [`ServerMode`] picks the deployment (§0), on [`TestServerBuilder::mode`],
//! [`TestServerBuilder::langfuse_v3`] or [`TestServerBuilder::langfuse_v4`]:
//!
//! - [`ServerMode::LangfuseV4`] (the default, like Langfuse 4.16 as it ships, `events_only`):
//!   `POST /api/public/ingestion` accepts only `score-create` and `sdk-log`; every other event is
//!   answered with the §3.6 error inside the 207. Each OTLP span becomes one row with no merge (a
//!   re-export replaces the whole row) and a trace is derived from its rows (§5.2): latest
//!   non-empty name/user/session/environment/release/version, the latest non-empty tag list
//!   (not a union), input, output and metadata of the latest parentless row, public if any row
//!   is.
//! - [`ServerMode::LangfuseV3`] (the legacy write mode): ingestion accepts every event type and
//!   merges it (§3.7); OTLP spans are turned into ingestion events, validated with the same
//!   schemas (a failing one, such as a generation with a string prompt version, is dropped) and
//!   merged into legacy trace and observation rows (§4.14).
//!
//! # Routes and the rules simulated
//!
//! - `POST /api/public/otel/v1/traces` (§2): Basic auth; gunzip when `Content-Encoding`
//!   contains `gzip` (nothing else is undone); content type containing
//!   `application/x-protobuf` or `application/json`; an empty export is `200 {}`; the
//!   structural check rejects the whole batch; `x-langfuse-ingestion-version` parsed like
//!   `parseInt` (NaN or above 4 is a 400); success is a 200 JSON object, never a protobuf body or
//!   a partial success. Spans are mapped per §4: the `langfuse-sdk` scope prefix (other scopes
//!   get a `metadata.attributes` dump), `resourceAttributes` and `scope` metadata, the type
//!   mappers in order, the level alias table and status rule, name, model, parameters, usage
//!   (with the generic `gen_ai.usage.*` rule), cost, completion start, prompt links, input and
//!   output (sources 1, 3, 7, 10–13, 15 and 18 of §4.8), metadata and the `tools` move, user,
//!   session, tags, public, environment, release and version. The decoded exports are kept in
//!   the official [`opentelemetry_proto`] types ([`TestServer::otlp_requests`]).
//! - `POST /api/public/ingestion` (§3): never decompressed (gzip is `400 Invalid JSON` before
//!   auth); over 4,718,592 bytes `413 Body exceeded 4.5mb limit` before auth; the zod schemas of
//!   §3.5 and §6.1 per event; `207 {successes, errors}` keyed by envelope id; `sdk-log` never
//!   listed; events without a body id answered 201 and not stored; a retried envelope id does
//!   not count twice.
//! - `GET /api/public/v2/prompts/{name}` (§7.1): Basic auth only (a Bearer key gets the 403 of
//!   §7.1); the name percent-decoded, `%2F` included; `label` or `version` (`production` when
//!   neither, 400 for both); the 404 body naming the prompt and the label or version; the
//!   stored version with its labels, config and tags. Tests create prompts, publish new
//!   versions and move labels with [`TestServer::create_prompt`] and
//!   [`TestServer::label_prompt`].
//! - `GET /api/public/projects` (§9.1) and `GET /api/public/health` (§9.3, no auth). Any other
//!   path is a 404, any other method a 405 in the route's error shape.
//!
//! Not simulated: the framework-specific span rules (Vercel AI SDK, Genkit, Logfire, LiveKit,
//! pydantic-ai, Vertex, the flattened `gen_ai.prompt.*` / `llm.input_messages.*` keys),
//! tokenisation and model-based cost, the 5-second queue delay, sessions, datasets, experiments,
//! and prompt references inside prompts (`resolve`) and the prompt-writing routes.
//!
//! # Faults
//!
//! A [`Faults`] plan makes the server misbehave on purpose: statuses with the real bodies (401,
//! 403, 500, …), Langfuse Cloud's 429, slow answers, dropped connections, per-event errors, a
//! 413 body limit, an HTML sign-in page behind a 2xx, redirects, huge bodies and a 404 on every
//! route. A request that a fault fails changes nothing in the model but is still recorded.
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
//! let score = &server.scores()[0];
//! assert_eq!(score.name, "accuracy");
//! assert_eq!(score.value, serde_json::json!(0.9));
//! let statuses: Vec<_> = server.requests().iter().map(|r| r.status).collect();
//! assert_eq!(statuses, [Some(503), Some(207)]);
//! assert_eq!(server.envelope_receipts("envelope-1"), 2);
//! # Ok(())
//! # }
//! ```

mod auth;
mod faults;
mod handler;
mod js;
mod legacy;
mod model;
mod otlp;
mod prompts;
mod schema;
mod server;
mod time;

pub use faults::{EventErrors, Fault, Faults, Route};
pub use model::{
    RecordedRequest, ScoreConfig, ServerMode, StoredObservation, StoredScore, StoredTrace,
};
pub use prompts::NewPrompt;
pub use server::{TestServer, TestServerBuilder};

/// The OTLP message types [`TestServer::otlp_requests`] returns (the `opentelemetry-proto` crate
/// this server decodes with), so tests can inspect them without depending on a matching version.
pub use opentelemetry_proto;
