//! HTTP to Langfuse: authentication headers, retries with exponential backoff and jitter, and
//! the checks that an answer really came from Langfuse.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{
    HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, LOCATION, RETRY_AFTER,
};
use reqwest::{redirect, StatusCode};

use crate::config::Config;
use crate::diagnostics;

use super::queue::Counters;

/// The cap of exponential backoff, and of a `Retry-After` wait (which the flush deadline may
/// cap further).
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// How much of an answer is read: Langfuse's answers are small, and a misconfigured URL must
/// not make the worker buffer whatever a stranger sends.
pub(crate) const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// What a 2xx answer may add per record sent: a 207 lists every event of a batch, with a
/// message of several hundred bytes for each refused one.
const ANSWER_BYTES_PER_RECORD: usize = 2048;

const NOT_LANGFUSE: &str = "the response did not come from Langfuse; check LANGFUSE_BASE_URL \
     and any proxy";

/// Why a request did not succeed, after any retries.
#[derive(Debug)]
pub(crate) enum Failure {
    /// 401 or 403: the keys were rejected; retrying cannot help.
    Unauthorized(StatusCode),
    /// 413: the caller may split the payload and try again.
    TooLarge,
    /// A status that retrying cannot fix (400, 404, …), with what the server said.
    Rejected(StatusCode, String),
    /// A 2xx answer whose body is not what Langfuse answers, e.g. a proxy's sign-in page.
    NotLangfuse(StatusCode, String),
    /// A 301, 302 or 303 redirect, which would turn the POST into a bodiless GET.
    Redirected(StatusCode, String),
    /// Retryable failures until the retry budget ran out; the last reason.
    GaveUp(String),
}

impl Failure {
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Unauthorized(status) => format!("keys rejected (HTTP {status})"),
            Self::TooLarge => "payload too large (HTTP 413)".to_owned(),
            Self::Rejected(status, body) => format!("HTTP {status}: {body}"),
            Self::NotLangfuse(status, seen) => {
                format!("{NOT_LANGFUSE} (HTTP {status}, {seen})")
            }
            Self::Redirected(status, location) => format!(
                "the server redirected the request (HTTP {status}) to {location}; set \
                 LANGFUSE_BASE_URL to the address Langfuse answers on"
            ),
            Self::GaveUp(reason) => format!("gave up after retries: {reason}"),
        }
    }
}

/// A request body and how it is encoded.
pub(crate) struct Payload {
    pub(crate) body: Bytes,
    pub(crate) content_type: &'static str,
    pub(crate) gzip: bool,
    /// Records inside, for the `retried` counter.
    pub(crate) records: usize,
}

/// Whether the server is failing now: set by a retryable failure (refused, timed out, 5xx,
/// 429), cleared by the next success. While it is set, the end of an outermost observation does
/// not wait for delivery, and what is left at exit is reported with the last reason.
#[derive(Debug, Default)]
pub(crate) struct Health {
    failing: AtomicBool,
    last_failure: Mutex<Option<String>>,
    /// Wakes the worker to answer the flushes that stop waiting once the server fails.
    pub(crate) changed: tokio::sync::Notify,
}

impl Health {
    pub(crate) fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Why the last request failed, for the report of what was not delivered.
    pub(crate) fn last_failure(&self) -> Option<String> {
        self.last_failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Marks the server as failing for `reason`, until the next success.
    pub(crate) fn failed(&self, reason: &str) {
        *self
            .last_failure
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(reason.to_owned());
        if !self.failing.swap(true, Ordering::Relaxed) {
            self.changed.notify_one();
        }
    }

    fn succeeded(&self) {
        self.failing.store(false, Ordering::Relaxed);
    }
}

pub(crate) struct Transport {
    client: reqwest::Client,
    base_url: String,
    max_retries: u32,
    backoff: Duration,
    /// A `Retry-After` longer than this would outlast every flush of the batch.
    max_retry_after: Duration,
    keys_rejected: AtomicBool,
    retry_after_capped: AtomicBool,
    credentials: Option<(String, String)>,
    health: Arc<Health>,
}

impl Transport {
    pub(crate) fn new(config: &Config, health: Arc<Health>) -> Result<Self, reqwest::Error> {
        let mut headers = HeaderMap::new();
        let sdk_version = HeaderValue::from_static(env!("CARGO_PKG_VERSION"));
        headers.insert(
            "x-langfuse-sdk-name",
            HeaderValue::from_static("langfuse-observe"),
        );
        headers.insert("x-langfuse-sdk-version", sdk_version);
        headers.insert(
            "x-langfuse-ingestion-version",
            HeaderValue::from_static("4"),
        );
        if let Some(public_key) = config.public_key() {
            if let Ok(value) = HeaderValue::from_str(public_key) {
                headers.insert("x-langfuse-public-key", value);
            }
        }
        // 307 and 308 keep the method and body; 301, 302 and 303 would turn a POST into a GET
        // without a body, so they are reported instead of followed.
        let redirects = redirect::Policy::custom(|attempt| {
            if matches!(attempt.status().as_u16(), 301..=303) || attempt.previous().len() >= 5 {
                attempt.stop()
            } else {
                attempt.follow()
            }
        });
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .redirect(redirects)
            .timeout(config.timeout())
            .user_agent(concat!("langfuse-observe/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            base_url: config.base_url().as_str().trim_end_matches('/').to_owned(),
            max_retries: config.max_retries(),
            backoff: config.retry_backoff(),
            max_retry_after: config.flush_timeout().min(MAX_RETRY_DELAY),
            keys_rejected: AtomicBool::new(false),
            retry_after_capped: AtomicBool::new(false),
            credentials: config
                .public_key()
                .zip(config.secret_key())
                .map(|(public, secret)| (public.to_owned(), secret.to_owned())),
            health,
        })
    }

    /// Looks up the id of the project the keys belong to, for links to the Langfuse UI.
    pub(crate) fn project_id(&self) -> impl std::future::Future<Output = Option<String>> + 'static {
        let request = self.authorized(self.client.get(self.url("/api/public/projects")));
        async move {
            #[derive(serde::Deserialize)]
            struct Projects {
                data: Vec<Project>,
            }
            #[derive(serde::Deserialize)]
            struct Project {
                id: String,
            }
            let response = request.send().await.ok()?.error_for_status().ok()?;
            let body = read_capped(response, MAX_RESPONSE_BYTES).await.ok()?;
            let projects: Projects = serde_json::from_slice(&body).ok()?;
            projects.data.into_iter().next().map(|project| project.id)
        }
    }

    /// `request` with this transport's keys, as Basic auth.
    fn authorized(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.credentials {
            Some((public_key, secret_key)) => request.basic_auth(public_key, Some(secret_key)),
            None => request,
        }
    }

    /// How long to wait before retry `attempt + 1` of `max_retries` after `reason`, or `None`
    /// when none is left: what the server asked for (`Retry-After`, capped), else backoff.
    fn retry_delay(
        &self,
        method: &str,
        url: &str,
        attempt: u32,
        max_retries: u32,
        reason: &str,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if attempt >= max_retries {
            return None;
        }
        let delay = match retry_after {
            Some(asked) => self.honour_retry_after(asked, url),
            None => self.backoff_delay(attempt),
        };
        diagnostics::debug(format_args!(
            "{method} {url} failed ({reason}); retry {} of {max_retries} in {delay:?}",
            attempt + 1
        ));
        Some(delay)
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// POSTs `payload` to `path`, retrying network errors, timeouts, 408, 429 and 5xx.
    /// Returns the body of the first 2xx answer that `is_langfuse` recognises as the route's
    /// answer; any other 2xx is [`Failure::NotLangfuse`].
    pub(crate) async fn post(
        &self,
        path: &str,
        payload: &Payload,
        counters: &Counters,
        is_langfuse: fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value, Failure> {
        let url = self.url(path);
        let mut attempt = 0;
        loop {
            let mut request = self.authorized(
                self.client
                    .post(&url)
                    .header(CONTENT_TYPE, payload.content_type)
                    .body(payload.body.clone()),
            );
            if payload.gzip {
                request = request.header(CONTENT_ENCODING, "gzip");
            }
            let (reason, retry_after) = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let retry_after = parse_retry_after(response.headers());
                    match status.as_u16() {
                        200..=299 => {
                            let limit =
                                MAX_RESPONSE_BYTES + ANSWER_BYTES_PER_RECORD * payload.records;
                            self.health.succeeded();
                            return Self::recognise(response, limit, is_langfuse).await;
                        }
                        301..=303 => {
                            let location = response
                                .headers()
                                .get(LOCATION)
                                .and_then(|value| value.to_str().ok())
                                .map_or_else(
                                    || "an unnamed location".to_owned(),
                                    diagnostics::redact_url,
                                );
                            return Err(Failure::Redirected(status, location));
                        }
                        401 | 403 => {
                            self.report_rejected_keys(status, &url);
                            return Err(Failure::Unauthorized(status));
                        }
                        413 => return Err(Failure::TooLarge),
                        408 | 429 | 500..=599 => (format!("HTTP {status}"), retry_after),
                        _ => {
                            let body = read_capped(response, MAX_RESPONSE_BYTES)
                                .await
                                .unwrap_or_default();
                            let text = self.scrub(&String::from_utf8_lossy(&body));
                            return Err(Failure::Rejected(status, clip(&text, 500)));
                        }
                    }
                }
                Err(error) => (describe_network_error(&error), None),
            };
            if reason.contains(&url) {
                self.health.failed(&reason);
            } else {
                self.health.failed(&format!("{reason} from {url}"));
            }
            let retry = self.retry_delay(
                "POST",
                &url,
                attempt,
                self.max_retries,
                &reason,
                retry_after,
            );
            let Some(delay) = retry else {
                return Err(Failure::GaveUp(reason));
            };
            Counters::add(&counters.retried, payload.records);
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// GETs `path_and_query` with Basic auth, retrying network errors, timeouts, 408, 429 and
    /// 5xx at most `max_retries` times with this transport's backoff (a `Retry-After` is
    /// honoured, capped as for a batch). Returns the first answer that is not retried, with at
    /// most `limit` bytes of its body, or [`Failure::GaveUp`] with the last reason. Unlike a
    /// POST it neither changes [`Health`] nor reports rejected keys: the caller says what went
    /// wrong, to the code that asked.
    pub(crate) async fn get(
        &self,
        path_and_query: &str,
        max_retries: u32,
        limit: usize,
    ) -> Result<(StatusCode, Bytes), Failure> {
        let url = self.url(path_and_query);
        let mut attempt = 0;
        loop {
            let request = self.authorized(self.client.get(&url));
            let (reason, retry_after) = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    match status.as_u16() {
                        408 | 429 | 500..=599 => (
                            format!("HTTP {status}"),
                            parse_retry_after(response.headers()),
                        ),
                        _ => {
                            let body = read_capped(response, limit)
                                .await
                                .map_err(|error| Failure::GaveUp(describe_network_error(&error)))?;
                            return Ok((status, body));
                        }
                    }
                }
                Err(error) => (describe_network_error(&error), None),
            };
            let retry = self.retry_delay("GET", &url, attempt, max_retries, &reason, retry_after);
            let Some(delay) = retry else {
                return Err(Failure::GaveUp(reason));
            };
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// `text` without the keys of this transport or any credentials it may echo.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let keys = self.credentials.as_ref().map(|(p, s)| (&**p, &**s));
        scrub(text, keys)
    }

    /// A 2xx answer counts only when it is the JSON Langfuse sends on this route.
    async fn recognise(
        response: reqwest::Response,
        limit: usize,
        is_langfuse: fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value, Failure> {
        let status = response.status();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("no content type")
            .to_owned();
        let body = read_capped(response, limit)
            .await
            .map_err(|error| Failure::GaveUp(describe_network_error(&error)))?;
        match serde_json::from_slice::<serde_json::Value>(&body) {
            Ok(answer) if is_langfuse(&answer) => Ok(answer),
            _ => Err(Failure::NotLangfuse(
                status,
                format!("{content_type}, {} bytes", body.len()),
            )),
        }
    }

    /// The wait a `Retry-After` asks for, cut so that the batch can still be delivered
    /// within a flush deadline; says once when it cuts.
    fn honour_retry_after(&self, asked: Duration, url: &str) -> Duration {
        if asked <= self.max_retry_after {
            return asked;
        }
        diagnostics::warn_once(
            &self.retry_after_capped,
            format_args!(
                "{url} asked to wait {asked:?} before retrying; waiting {:?} instead, so that \
                 a flush can finish within LANGFUSE_FLUSH_TIMEOUT",
                self.max_retry_after
            ),
        );
        self.max_retry_after
    }

    /// Exponential backoff from the configured base, capped, with jitter in [50%, 100%].
    pub(crate) fn backoff_delay(&self, attempt: u32) -> Duration {
        let exponential = self.backoff.saturating_mul(1 << attempt.min(16));
        exponential
            .min(MAX_RETRY_DELAY)
            .mul_f64(0.5 + fastrand::f64() / 2.0)
    }

    pub(crate) fn max_retries(&self) -> u32 {
        self.max_retries
    }

    fn report_rejected_keys(&self, status: StatusCode, url: &str) {
        diagnostics::error_once(
            &self.keys_rejected,
            format_args!(
                "Langfuse rejected the API keys (HTTP {status} from {url}). Check \
                 LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY, and that LANGFUSE_BASE_URL is the \
                 region of the project the keys belong to. Records sent with these keys are \
                 counted as failed in stats()."
            ),
        );
    }
}

fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: f64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    // A day bounds the conversion; the wait itself is capped where it is honoured.
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(86_400.0)))
}

/// Reads at most `limit` bytes of a body; the rest is never downloaded.
async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Bytes, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == limit {
            break;
        }
    }
    Ok(Bytes::from(body))
}

fn describe_network_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "connection failed"
    };
    // The error's source chain says why (refused, reset, DNS); the URL carries no secret.
    let mut reason = format!("{kind}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    reason
}

/// A server's answer as it may be shown: without the keys, and without the credentials of any
/// `Basic` or `Bearer` value, which a misconfigured server or proxy may echo back.
fn scrub(text: &str, keys: Option<(&str, &str)>) -> String {
    let mut scrubbed = text.to_owned();
    if let Some((public_key, secret_key)) = keys {
        for key in [secret_key, public_key] {
            if !key.is_empty() {
                scrubbed = scrubbed.replace(key, "<redacted>");
            }
        }
    }
    for scheme in ["basic ", "bearer "] {
        let mut from = 0;
        // Schemes are case-insensitive; ASCII lower-casing keeps every byte offset.
        while let Some(found) = scrubbed[from..].to_ascii_lowercase().find(scheme) {
            let start = from + found + scheme.len();
            let end = scrubbed[start..]
                .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ',' | '<'))
                .map_or(scrubbed.len(), |at| start + at);
            scrubbed.replace_range(start..end, "<redacted>");
            from = start + "<redacted>".len();
        }
    }
    scrubbed
}

pub(crate) fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_in_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3600"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(3600)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("1e300"));
        assert_eq!(
            parse_retry_after(&headers),
            Some(Duration::from_secs(86_400))
        );
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(parse_retry_after(&headers), None);
    }

    #[test]
    fn answers_are_scrubbed_of_keys_and_credentials() {
        let echoed = "headers:\nauthorization: Basic cGstbGYtMTpzay1sZi0y\nx-langfuse-public-key: \
                      pk-lf-1\nx-other: Bearer abc.def\nbody mentions sk-lf-2 twice: sk-lf-2";
        let scrubbed = scrub(echoed, Some(("pk-lf-1", "sk-lf-2")));
        for secret in ["cGstbGYtMTpzay1sZi0y", "pk-lf-1", "sk-lf-2", "abc.def"] {
            assert!(!scrubbed.contains(secret), "{secret} in {scrubbed}");
        }
        assert!(
            scrubbed.contains("authorization: Basic <redacted>"),
            "{scrubbed}"
        );
        assert_eq!(scrub("plain text", None), "plain text");
    }
}
