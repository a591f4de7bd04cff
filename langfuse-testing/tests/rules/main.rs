//! One test per rule of LANGFUSE_SERVER.md, each named after its section, talking to a running
//! [`TestServer`](langfuse_observe_testing::TestServer) over real HTTP with hand-built bodies.
//! Rules the document marks "(inferred)" have `inferred` in the test name.

mod common;
mod faults;
mod ingestion;
mod mapping;
mod otlp;
mod prompts;
mod routes;
