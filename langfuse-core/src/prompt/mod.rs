//! Prompts kept in Langfuse: fetched by name and label or version, cached per client,
//! compiled with `{{variables}}`, and linked to the generations that use them.
//!
//! ```no_run
//! use langfuse_observe_core::api::{update_current_generation, GenerationUpdate};
//! use langfuse_observe_core::client::Langfuse;
//!
//! # async fn example(client: Langfuse) -> Result<(), Box<dyn std::error::Error>> {
//! let prompt = client
//!     .prompt("support/answer")           // the `production` label unless told otherwise
//!     .fallback("Answer briefly: {{question}}")
//!     .fetch()
//!     .await?;
//! let text = prompt.compile(&serde_json::json!({"question": "What is Langfuse?"}));
//! // Inside an observed generation: links this exact name and version (a fallback links
//! // nothing).
//! update_current_generation(GenerationUpdate::new().prompt(&prompt));
//! # let _ = text;
//! # Ok(())
//! # }
//! ```
//!
//! # Caching
//!
//! Each client caches prompts by name and label or version for
//! `LANGFUSE_PROMPT_CACHE_DEFAULT_TTL_SECONDS` (60 s by default; 0 turns caching off).
//! After that, the cached prompt is still returned at once and one request per key refreshes
//! it in the background. Callers that ask for a prompt that is not cached, at the same time,
//! share one request. [`Langfuse::invalidate_prompt`](crate::client::Langfuse::invalidate_prompt)
//! forgets a prompt, for when a new version was just published. A cold fetch waits at most
//! `LANGFUSE_TIMEOUT` (or [`PromptRequest::timeout`]); its request is retried up to twice,
//! with backoff, on 5xx, 429 and network errors. When that fails because Langfuse is
//! unreachable (or a caller waited in vain), the next callers of that prompt get the failure
//! at once, and so their fallback, while one request at a time checks whether Langfuse is
//! back.
//!
//! The requests run on the client's export worker runtime, so [`PromptRequest::fetch`]
//! works on any executor, and [`PromptRequest::fetch_blocking`] in plain threads.

mod cache;
mod compile;
mod fetch;
mod model;

use std::sync::Arc;
use std::time::Duration;

pub use compile::{CompileError, Compiled};
pub use model::{ChatMessage, ChatPrompt, Fallback, Prompt, TextPrompt};

pub(crate) use fetch::Service;

use cache::{Key, Lookup, Outcome, Selector};

/// The label fetched when neither a label nor a version is given, as on the server.
const DEFAULT_LABEL: &str = "production";

/// Why a prompt could not be had. Each message says what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PromptError {
    /// The project has no such prompt, or none with that label or version.
    #[error(
        "prompt {name:?} with {selector} was not found in the Langfuse project: check the \
         name (folders included) and the label or version, and that the keys belong to the \
         project that has it"
    )]
    NotFound {
        /// The prompt's name.
        name: String,
        /// The label or version asked for, e.g. `label "production"`.
        selector: String,
    },
    /// The keys were rejected (401), or may not read prompts (403).
    #[error(
        "Langfuse rejected the API keys (HTTP {status}: {message}) when fetching prompt \
         {name:?}: check LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY, and that \
         LANGFUSE_BASE_URL is the region of their project"
    )]
    Unauthorized {
        /// The prompt's name.
        name: String,
        /// 401 or 403.
        status: u16,
        /// What the server said.
        message: String,
    },
    /// The server could not be reached, or kept failing (5xx, 429) through every retry.
    #[error(
        "prompt {name:?} could not be fetched: {reason}; check that Langfuse is reachable \
         (a fallback keeps the program working while it is not)"
    )]
    Unavailable {
        /// The prompt's name.
        name: String,
        /// The last failure.
        reason: String,
    },
    /// No answer came within the caller's timeout; the fetch goes on in the background and
    /// fills the cache if it succeeds.
    #[error(
        "prompt {name:?} with {selector} did not arrive within {timeout:?}: Langfuse is slow \
         or unreachable (a fallback keeps the program working meanwhile; LANGFUSE_TIMEOUT or \
         PromptRequest::timeout wait longer)"
    )]
    Timeout {
        /// The prompt's name.
        name: String,
        /// The label or version asked for.
        selector: String,
        /// How long the caller waited.
        timeout: Duration,
    },
    /// The server refused the request with another status, such as 400.
    #[error("Langfuse refused the request for prompt {name:?} (HTTP {status}): {message}")]
    Rejected {
        /// The prompt's name.
        name: String,
        /// The status.
        status: u16,
        /// What the server said.
        message: String,
    },
    /// The answer is not a Langfuse prompt, e.g. a proxy's page.
    #[error(
        "the answer for prompt {name:?} is not a Langfuse prompt ({reason}): check \
         LANGFUSE_BASE_URL and any proxy in front of Langfuse"
    )]
    Invalid {
        /// The prompt's name.
        name: String,
        /// What was wrong with it.
        reason: String,
    },
    /// This client does not talk to Langfuse.
    #[error("this client cannot fetch prompts: {reason}")]
    NoServer {
        /// Why, and what to set.
        reason: &'static str,
    },
    /// The client was shut down, or its worker stopped, before the answer came.
    #[error(
        "the Langfuse client was shut down before the prompt arrived: fetch prompts before \
         shutting it down"
    )]
    Closed,
    /// [`fetch_blocking`](PromptRequest::fetch_blocking) was called on a thread that runs a
    /// Tokio runtime, for a prompt that is not cached and without a fallback.
    #[error(
        "prompt {name:?} is not cached, and fetch_blocking does not wait on a thread that \
         runs a Tokio runtime (it would stall every task on it): use `.fetch().await` there, \
         or give a fallback; the fetch goes on in the background and fills the cache"
    )]
    WouldBlock {
        /// The prompt's name.
        name: String,
    },
}

impl PromptError {
    /// Whether Langfuse could not be reached (or did not answer in time), as opposed to an
    /// answer that refused the request.
    pub(crate) fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Timeout { .. })
    }
}

/// A request for one prompt, from [`Langfuse::prompt`](crate::client::Langfuse::prompt) or
/// [`prompt`](crate::prompt()): set the label or version and a fallback, then
/// [`fetch`](Self::fetch) or [`fetch_blocking`](Self::fetch_blocking).
#[derive(Clone)]
#[must_use = "a prompt request does nothing until fetched"]
pub struct PromptRequest {
    service: Result<Arc<Service>, &'static str>,
    name: String,
    label: Option<String>,
    version: Option<u32>,
    fallback: Option<Fallback>,
    timeout: Option<Duration>,
}

impl std::fmt::Debug for PromptRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptRequest")
            .field("name", &self.name)
            .field("label", &self.label)
            .field("version", &self.version)
            .field("fallback", &self.fallback.is_some())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What a request leads to before any waiting.
enum Start {
    Done(Outcome),
    Wait(Arc<Service>, Arc<cache::Flight>, Key),
}

impl PromptRequest {
    /// A request to `service` (or, when the client cannot fetch, the reason why).
    pub(crate) fn new(service: Result<Arc<Service>, &'static str>, name: String) -> Self {
        Self {
            service,
            name,
            label: None,
            version: None,
            fallback: None,
            timeout: None,
        }
    }

    /// The version with this label (`production` when neither a label nor a version is
    /// given). Replaces a version set before: Langfuse takes one or the other.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self.version = None;
        self
    }

    /// This exact version. Replaces a label set before.
    pub fn version(mut self, version: u32) -> Self {
        self.version = Some(version);
        self.label = None;
        self
    }

    /// What to use when the prompt cannot be fetched and nothing is cached: a text (`&str`,
    /// `String`) or chat messages (`Vec<ChatMessage>`). The prompt made of it says
    /// [`is_fallback`](Prompt::is_fallback), and is never linked to a generation.
    pub fn fallback(mut self, fallback: impl Into<Fallback>) -> Self {
        self.fallback = Some(fallback.into());
        self
    }

    /// How long to wait for a prompt that is not cached (default `LANGFUSE_TIMEOUT`). After
    /// that the fallback is used, or the error is [`PromptError::Timeout`]; the fetch goes
    /// on and fills the cache.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    fn key(&self) -> Key {
        let selector = match (self.version, &self.label) {
            (Some(version), _) => Selector::Version(version),
            (None, Some(label)) => Selector::Label(label.clone()),
            (None, None) => Selector::Label(DEFAULT_LABEL.to_owned()),
        };
        Key {
            name: self.name.clone(),
            selector,
        }
    }

    fn start(&self) -> Start {
        let service = match &self.service {
            Ok(service) => service,
            Err(reason) => return Start::Done(Err(PromptError::NoServer { reason })),
        };
        let key = self.key();
        match service.cache.lookup(&key) {
            Lookup::Hit(prompt, refresh) => {
                if let Some(flight) = refresh {
                    service.start_flight(key, flight);
                }
                Start::Done(Ok(prompt))
            }
            Lookup::Unreachable(error, check) => {
                if let Some(flight) = check {
                    service.start_flight(key, flight);
                }
                Start::Done(Err(error))
            }
            Lookup::Miss { flight, start } => {
                if start {
                    service.start_flight(key.clone(), Arc::clone(&flight));
                }
                Start::Wait(Arc::clone(service), flight, key)
            }
        }
    }

    fn wait_for(&self, service: &Service) -> Duration {
        self.timeout.unwrap_or(service.timeout)
    }

    /// The prompt: from the cache when it has it (a stale one is refreshed in the
    /// background), else fetched, else the fallback, else the error. Works on any executor:
    /// the request and its timeout run on the client's own worker.
    pub async fn fetch(self) -> Result<Prompt, PromptError> {
        let outcome = match self.start() {
            Start::Done(outcome) => outcome,
            Start::Wait(service, flight, key) => {
                let answer = service.wait(&flight, &key, self.wait_for(&service));
                answer.await.unwrap_or(Err(PromptError::Closed))
            }
        };
        self.or_fallback(outcome)
    }

    /// [`fetch`](Self::fetch) for synchronous code: blocks the calling thread until the
    /// prompt arrives or the timeout passes.
    ///
    /// On a thread that runs a Tokio runtime it never blocks, because every task on that
    /// runtime would stall with it: it returns the cached prompt if there is one (fresh or
    /// stale), else starts the fetch in the background and returns the fallback, or
    /// [`PromptError::WouldBlock`] without one. Use [`fetch`](Self::fetch) there. Tokio does
    /// not tell its worker threads from those of `spawn_blocking`, so the same holds there;
    /// in a `spawn_blocking` closure, `Handle::current().block_on(request.fetch())` waits.
    pub fn fetch_blocking(self) -> Result<Prompt, PromptError> {
        let outcome = match self.start() {
            Start::Done(outcome) => outcome,
            Start::Wait(..) if tokio::runtime::Handle::try_current().is_ok() => {
                Err(PromptError::WouldBlock {
                    name: self.name.clone(),
                })
            }
            Start::Wait(service, flight, key) => {
                let answer = service.wait(&flight, &key, self.wait_for(&service));
                answer.blocking_recv().unwrap_or(Err(PromptError::Closed))
            }
        };
        self.or_fallback(outcome)
    }

    fn or_fallback(self, outcome: Outcome) -> Outcome {
        match (outcome, self.fallback) {
            (Err(error), Some(fallback)) => {
                crate::diagnostics::warn(
                    "prompt-fallback",
                    format_args!("{error}; its fallback is used, and not linked to generations"),
                );
                Ok(fallback.into_prompt(&self.name, self.version, self.label.as_deref()))
            }
            (outcome, _) => outcome,
        }
    }
}
