//! HTTP to Langfuse: authentication headers, and retries with exponential backoff and jitter.

use std::sync::atomic::AtomicBool;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;

use crate::config::Config;
use crate::diagnostics;

use super::queue::Counters;

/// The longest wait honoured from a `Retry-After` header, and the cap of exponential backoff.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// Why a request did not succeed, after any retries.
#[derive(Debug)]
pub(crate) enum Failure {
    /// 401 or 403: the keys were rejected; retrying cannot help.
    Unauthorized(StatusCode),
    /// 413: the caller may split the payload and try again.
    TooLarge,
    /// A status that retrying cannot fix (400, 404, …), with what the server said.
    Rejected(StatusCode, String),
    /// Retryable failures until the retry budget ran out; the last reason.
    GaveUp(String),
}

impl Failure {
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Unauthorized(status) => format!("keys rejected (HTTP {status})"),
            Self::TooLarge => "payload too large (HTTP 413)".to_owned(),
            Self::Rejected(status, body) => format!("HTTP {status}: {body}"),
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

pub(crate) struct Transport {
    client: reqwest::Client,
    base_url: String,
    max_retries: u32,
    backoff: Duration,
    keys_rejected: AtomicBool,
    credentials: Option<(String, String)>,
}

impl Transport {
    pub(crate) fn new(config: &Config) -> Result<Self, reqwest::Error> {
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
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.timeout())
            .user_agent(concat!("langfuse-observe/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            base_url: config.base_url().as_str().trim_end_matches('/').to_owned(),
            max_retries: config.max_retries(),
            backoff: config.retry_backoff(),
            keys_rejected: AtomicBool::new(false),
            credentials: config
                .public_key()
                .zip(config.secret_key())
                .map(|(public, secret)| (public.to_owned(), secret.to_owned())),
        })
    }

    /// Looks up the id of the project the keys belong to, for links to the Langfuse UI.
    pub(crate) fn project_id(&self) -> impl std::future::Future<Output = Option<String>> + 'static {
        let mut request = self.client.get(self.url("/api/public/projects"));
        if let Some((public_key, secret_key)) = &self.credentials {
            request = request.basic_auth(public_key, Some(secret_key));
        }
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
            let projects: Projects = serde_json::from_slice(&response.bytes().await.ok()?).ok()?;
            projects.data.into_iter().next().map(|project| project.id)
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// POSTs `payload` to `path`, retrying network errors, timeouts, 408, 429 and 5xx.
    /// Returns the status and body of the first 2xx answer.
    pub(crate) async fn post(
        &self,
        path: &str,
        payload: &Payload,
        counters: &Counters,
    ) -> Result<(StatusCode, Bytes), Failure> {
        let url = self.url(path);
        let mut attempt = 0;
        loop {
            let mut request = self
                .client
                .post(&url)
                .header(CONTENT_TYPE, payload.content_type)
                .body(payload.body.clone());
            if let Some((public_key, secret_key)) = &self.credentials {
                request = request.basic_auth(public_key, Some(secret_key));
            }
            if payload.gzip {
                request = request.header(CONTENT_ENCODING, "gzip");
            }
            let (reason, retry_after) = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    if status.is_success() {
                        let body = response.bytes().await.unwrap_or_default();
                        return Ok((status, body));
                    }
                    let retry_after = parse_retry_after(response.headers());
                    match status.as_u16() {
                        401 | 403 => {
                            self.report_rejected_keys(status, &url);
                            return Err(Failure::Unauthorized(status));
                        }
                        413 => return Err(Failure::TooLarge),
                        408 | 429 | 500..=599 => (format!("HTTP {status}"), retry_after),
                        _ => {
                            let body = response.text().await.unwrap_or_default();
                            return Err(Failure::Rejected(status, clip(&body, 500)));
                        }
                    }
                }
                Err(error) => (describe_network_error(&error), None),
            };
            if attempt >= self.max_retries {
                return Err(Failure::GaveUp(reason));
            }
            let delay = retry_after.unwrap_or_else(|| self.backoff_delay(attempt));
            diagnostics::debug(format_args!(
                "POST {url} failed ({reason}); retry {} of {} in {delay:?}",
                attempt + 1,
                self.max_retries
            ));
            Counters::add(&counters.retried, payload.records);
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
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
    (seconds.is_finite() && seconds >= 0.0)
        .then(|| Duration::from_secs_f64(seconds).min(MAX_RETRY_DELAY))
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
    fn retry_after_is_read_in_seconds_and_capped() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(parse_retry_after(&headers), Some(Duration::from_secs(2)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("86400"));
        assert_eq!(parse_retry_after(&headers), Some(MAX_RETRY_DELAY));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(parse_retry_after(&headers), None);
    }
}
