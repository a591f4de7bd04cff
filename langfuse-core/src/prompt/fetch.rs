//! A client's prompt fetching: `GET /api/public/v2/prompts/{name}` on the export worker's
//! runtime, so that callers on any executor (or none) get their answer through a channel,
//! and what each answer means.

use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::StatusCode;
use tokio::sync::oneshot;

use crate::config::Config;
use crate::diagnostics;
use crate::export::transport::{clip, Health, Transport};

use super::cache::{Cache, Flight, Key, Outcome, Selector};
use super::model::Prompt;
use super::PromptError;

/// As the Python SDK: a cold fetch is retried twice on 5xx, 429 and network errors, fewer
/// times when `LANGFUSE_MAX_RETRIES` says fewer.
const MAX_PROMPT_RETRIES: u32 = 2;

/// Prompts can be long, but an answer this large is not a prompt.
const MAX_PROMPT_BYTES: usize = 4 * 1024 * 1024;

/// Everything but what `encodeURIComponent` leaves, so a name's `/` (folders) is `%2F`.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// A client's prompt cache and the means to fill it.
pub(crate) struct Service {
    transport: Transport,
    runtime: tokio::runtime::Handle,
    pub(crate) cache: Cache,
    retries: u32,
    /// How long a caller waits for a prompt that is not cached, unless it says otherwise.
    pub(crate) timeout: Duration,
}

impl Service {
    /// The service of a client that has keys and a worker runtime, else `None`.
    pub(crate) fn start(
        config: &Config,
        runtime: Option<&tokio::runtime::Handle>,
    ) -> Result<Option<Arc<Self>>, reqwest::Error> {
        let (Some(runtime), Some(_), Some(_)) = (runtime, config.public_key(), config.secret_key())
        else {
            return Ok(None);
        };
        // Its own health: a prompt that cannot be fetched says so to its caller, and must
        // not change how the export of traces waits for the server.
        let transport = Transport::new(config, Arc::new(Health::default()))?;
        Ok(Some(Arc::new(Self {
            transport,
            runtime: runtime.clone(),
            cache: Cache::new(config.prompt_cache_ttl()),
            retries: config.max_retries().min(MAX_PROMPT_RETRIES),
            timeout: config.timeout(),
        })))
    }

    /// Fetches `key` in the background and settles `flight` with the outcome.
    pub(crate) fn start_flight(self: &Arc<Self>, key: Key, flight: Arc<Flight>) {
        let mut landing = Landing {
            service: Arc::clone(self),
            key,
            flight: Some(flight),
        };
        // After a shutdown the runtime is gone and the task is dropped unpolled: the landing
        // then settles the flight as closed, so that the key is not left waiting for it.
        drop(self.runtime.spawn(async move {
            let outcome = landing.service.get(&landing.key).await;
            if let Err(error) = &outcome {
                diagnostics::debug(format_args!("prompt fetch failed: {error}"));
            }
            landing.settle(outcome);
        }));
    }

    /// The outcome of `flight`, or a timeout after `timeout`. The wait is timed on the
    /// worker's runtime, so the caller needs no timer of its own.
    pub(crate) fn wait(
        self: &Arc<Self>,
        flight: &Arc<Flight>,
        key: &Key,
        timeout: Duration,
    ) -> oneshot::Receiver<Outcome> {
        let (answer, receiver) = oneshot::channel();
        let mut outcome = flight.watch();
        let (service, flight, key) = (Arc::clone(self), Arc::clone(flight), key.clone());
        let timed_out = PromptError::Timeout {
            name: key.name.clone(),
            selector: key.selector.to_string(),
            timeout,
        };
        drop(self.runtime.spawn(async move {
            let waited = tokio::time::timeout(timeout, outcome.wait_for(Option::is_some)).await;
            let outcome = match waited {
                Ok(Ok(settled)) => settled.clone().unwrap_or(Err(PromptError::Closed)),
                Ok(Err(_)) => Err(PromptError::Closed),
                Err(_) => {
                    service
                        .cache
                        .waited_in_vain(&key, &flight, timed_out.clone());
                    Err(timed_out)
                }
            };
            // The caller may have stopped waiting.
            let _ = answer.send(outcome);
        }));
        receiver
    }

    async fn get(&self, key: &Key) -> Outcome {
        let name = &key.name;
        let query = match &key.selector {
            Selector::Label(label) => format!("label={}", utf8_percent_encode(label, PATH_SEGMENT)),
            Selector::Version(version) => format!("version={version}"),
        };
        let path = format!(
            "/api/public/v2/prompts/{}?{query}",
            utf8_percent_encode(name, PATH_SEGMENT)
        );
        let (status, body) = self
            .transport
            .get(&path, self.retries, MAX_PROMPT_BYTES)
            .await
            .map_err(|failure| PromptError::Unavailable {
                name: name.clone(),
                reason: failure.describe(),
            })?;
        let message = || {
            let text = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|answer| answer.get("message")?.as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            clip(&self.transport.scrub(&text), 300)
        };
        match status {
            StatusCode::OK => Prompt::from_answer(&body).map_err(|reason| PromptError::Invalid {
                name: name.clone(),
                reason: format!("HTTP {status}: {reason}"),
            }),
            StatusCode::NOT_FOUND if is_langfuse_not_found(&body) => Err(PromptError::NotFound {
                name: name.clone(),
                selector: key.selector.to_string(),
            }),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(PromptError::Unauthorized {
                name: name.clone(),
                status: status.as_u16(),
                message: message(),
            }),
            StatusCode::NOT_FOUND => Err(PromptError::Invalid {
                name: name.clone(),
                reason: "HTTP 404 without Langfuse's answer: the route does not exist there"
                    .to_owned(),
            }),
            _ => Err(PromptError::Rejected {
                name: name.clone(),
                status: status.as_u16(),
                message: message(),
            }),
        }
    }
}

/// Settles a flight exactly once: with the fetch's outcome, or as closed when the fetch was
/// dropped before it ended.
struct Landing {
    service: Arc<Service>,
    key: Key,
    /// Until it is settled.
    flight: Option<Arc<Flight>>,
}

impl Landing {
    fn settle(&mut self, outcome: Outcome) {
        if let Some(flight) = self.flight.take() {
            self.service.cache.settle(&self.key, &flight, outcome);
        }
    }
}

impl Drop for Landing {
    fn drop(&mut self) {
        self.settle(Err(PromptError::Closed));
    }
}

/// Langfuse's own 404 for a prompt, as opposed to a server or proxy that has no such route.
fn is_langfuse_not_found(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|answer| answer["error"] == "LangfuseNotFoundError")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_encoded_as_one_path_segment() {
        let encoded = utf8_percent_encode("team/qa prompt-v1.2_x~ü", PATH_SEGMENT).to_string();
        assert_eq!(encoded, "team%2Fqa%20prompt-v1.2_x~%C3%BC");
    }
}
