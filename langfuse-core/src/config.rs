//! Every setting of the SDK, read from `LANGFUSE_*` environment variables or set with a
//! builder, and validated in one place with errors that say what to fix.
//!
//! Two steps, two concerns:
//!
//! 1. [`ConfigBuilder::from_env`] / [`ConfigBuilder::from_lookup`] only *convert text*: each
//!    variable that is set (an empty or all-whitespace value counts as unset) is trimmed and
//!    turned into its typed value. Text that cannot become that type (`"abc"` for a number,
//!    `"-1"` for a duration) is a [`ConfigError::Invalid`] naming the variable.
//! 2. [`ConfigBuilder::build`] *validates* the typed values (ranges, formats, the key pair) and
//!    produces a [`Config`]. Values set in code go through the same checks, and their errors
//!    name the environment variable too, since that is the name users know.
//!
//! | setting | environment variable | default |
//! |---|---|---|
//! | public / secret key | `LANGFUSE_PUBLIC_KEY` / `LANGFUSE_SECRET_KEY` | none |
//! | base URL | `LANGFUSE_BASE_URL`, falling back to `LANGFUSE_HOST` | `https://cloud.langfuse.com` |
//! | tracing on/off | `LANGFUSE_TRACING_ENABLED` | `true` |
//! | sample rate (0..=1) | `LANGFUSE_SAMPLE_RATE` | `1.0` |
//! | environment | `LANGFUSE_TRACING_ENVIRONMENT` | none |
//! | release | `LANGFUSE_RELEASE` | none |
//! | debug logging | `LANGFUSE_DEBUG` | `false` |
//! | batch size | `LANGFUSE_FLUSH_AT` | `512` |
//! | flush interval (seconds) | `LANGFUSE_FLUSH_INTERVAL` | `5` |
//! | HTTP request timeout (seconds) | `LANGFUSE_TIMEOUT` | `5` |
//! | capture inputs/outputs | `LANGFUSE_OBSERVE_DECORATOR_IO_CAPTURE_ENABLED` | `true` |
//! | exporter (`otlp`, `ingestion`, `console`) | `LANGFUSE_EXPORTER` | `otlp` with keys, else `console` |
//! | console JSON-lines file | `LANGFUSE_CONSOLE_FILE` | none (tree on stderr) |
//! | queue bound (items) | `LANGFUSE_MAX_QUEUE_ITEMS` | `100000` |
//! | queue bound (bytes) | `LANGFUSE_MAX_QUEUE_BYTES` | `67108864` (64 MiB) |
//! | flush when the outermost observation ends | `LANGFUSE_FLUSH_ON_ROOT` | `true` |
//! | flush/shutdown deadline (seconds) | `LANGFUSE_FLUSH_TIMEOUT` | `10` |
//! | longest wait of the outermost observation's flush (seconds) | `LANGFUSE_ROOT_FLUSH_TIMEOUT` | `1` |
//! | deliver what is pending when the process exits | `LANGFUSE_FLUSH_AT_EXIT` | `true` |
//! | retries per batch | `LANGFUSE_MAX_RETRIES` | `5` |
//! | first retry delay (seconds, then doubles with jitter) | `LANGFUSE_RETRY_BACKOFF` | `0.5` |
//! | gzip OTLP request bodies (never ingestion: that route does not undo gzip) | `LANGFUSE_GZIP` | `true` |
//! | OpenTelemetry `service.name` of the resource | `OTEL_SERVICE_NAME`, then `service.name` in `OTEL_RESOURCE_ATTRIBUTES` | `unknown_service:<executable>` |
//! | other resource attributes (`k=v,k2=v2`, values percent-encoded) | `OTEL_RESOURCE_ATTRIBUTES` | none |
//!
//! Booleans accept `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` (any case). Durations are
//! seconds, fractions allowed (`0.25`). The secret key never appears in an error or in `Debug`
//! output.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;

const PUBLIC_KEY: &str = "LANGFUSE_PUBLIC_KEY";
const SECRET_KEY: &str = "LANGFUSE_SECRET_KEY";
const BASE_URL: &str = "LANGFUSE_BASE_URL";
const HOST: &str = "LANGFUSE_HOST";
const TRACING_ENABLED: &str = "LANGFUSE_TRACING_ENABLED";
const SAMPLE_RATE: &str = "LANGFUSE_SAMPLE_RATE";
const ENVIRONMENT: &str = "LANGFUSE_TRACING_ENVIRONMENT";
const RELEASE: &str = "LANGFUSE_RELEASE";
const DEBUG: &str = "LANGFUSE_DEBUG";
const FLUSH_AT: &str = "LANGFUSE_FLUSH_AT";
const FLUSH_INTERVAL: &str = "LANGFUSE_FLUSH_INTERVAL";
const TIMEOUT: &str = "LANGFUSE_TIMEOUT";
const CAPTURE_IO: &str = "LANGFUSE_OBSERVE_DECORATOR_IO_CAPTURE_ENABLED";
const EXPORTER: &str = "LANGFUSE_EXPORTER";
const CONSOLE_FILE: &str = "LANGFUSE_CONSOLE_FILE";
const MAX_QUEUE_ITEMS: &str = "LANGFUSE_MAX_QUEUE_ITEMS";
const MAX_QUEUE_BYTES: &str = "LANGFUSE_MAX_QUEUE_BYTES";
const FLUSH_ON_ROOT: &str = "LANGFUSE_FLUSH_ON_ROOT";
const FLUSH_TIMEOUT: &str = "LANGFUSE_FLUSH_TIMEOUT";
const ROOT_FLUSH_TIMEOUT: &str = "LANGFUSE_ROOT_FLUSH_TIMEOUT";
const FLUSH_AT_EXIT: &str = "LANGFUSE_FLUSH_AT_EXIT";
const MAX_RETRIES: &str = "LANGFUSE_MAX_RETRIES";
const RETRY_BACKOFF: &str = "LANGFUSE_RETRY_BACKOFF";
const GZIP: &str = "LANGFUSE_GZIP";
const SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
const RESOURCE_ATTRIBUTES: &str = "OTEL_RESOURCE_ATTRIBUTES";

const DEFAULT_BASE_URL: &str = "https://cloud.langfuse.com";
const DEFAULT_FLUSH_AT: usize = 512;
const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_MAX_QUEUE_ITEMS: usize = 100_000;
const DEFAULT_MAX_QUEUE_BYTES: usize = 64 * 1024 * 1024;
const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_ROOT_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);
const DEFAULT_MAX_RETRIES: u32 = 5;
const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_millis(500);

const MIN_QUEUE_BYTES: usize = 1024;
const MAX_ENVIRONMENT_LEN: usize = 40;

const EXPECT_BOOL: &str = "true or false (1/0, yes/no and on/off are accepted too)";
const EXPECT_SAMPLE_RATE: &str = "a number from 0 to 1";
const EXPECT_ENVIRONMENT: &str = "at most 40 characters of lowercase letters, digits, '-' or '_', \
     not starting with \"langfuse\" (e.g. production)";
const EXPECT_URL: &str = "an http:// or https:// URL with a host and no credentials, query or \
     fragment (e.g. https://cloud.langfuse.com)";
const EXPECT_AT_LEAST_ONE: &str = "a whole number of at least 1";
const EXPECT_QUEUE_BYTES: &str = "a whole number of bytes of at least 1024";
const EXPECT_RETRIES: &str = "a whole number of at least 0 (0 disables retries)";
const EXPECT_SECONDS: &str = "a positive number of seconds (e.g. 5 or 0.5)";
const EXPECT_EXPORTER: &str = "otlp, ingestion or console";
const EXPECT_RESOURCE_ATTRIBUTES: &str = "comma-separated key=value pairs with non-empty keys, \
     values percent-encoded (e.g. service.namespace=shop,deployment.environment.name=prod)";
const EXPECT_PUBLIC_KEY: &str = "the public key from the Langfuse project settings (pk-lf-...): \
     printable ASCII without spaces or ':'";

/// Where finished observations go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExporterKind {
    /// OTLP over HTTP to `{base_url}/api/public/otel/v1/traces`, the default when both keys are
    /// set (`LANGFUSE_EXPORTER=otlp`).
    Otlp,
    /// The legacy batch-ingestion API at `{base_url}/api/public/ingestion`, for Langfuse v2
    /// and v3 servers (`LANGFUSE_EXPORTER=ingestion`). A v4 server accepts only scores there.
    Ingestion,
    /// Nothing is sent: a readable trace tree on stderr, or JSON lines to
    /// [`Config::console_file`]. The default without keys (`LANGFUSE_EXPORTER=console`).
    Console,
}

impl ExporterKind {
    /// The name used in `LANGFUSE_EXPORTER`: `"otlp"`, `"ingestion"` or `"console"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExporterKind::Otlp => "otlp",
            ExporterKind::Ingestion => "ingestion",
            ExporterKind::Console => "console",
        }
    }

    fn needs_keys(self) -> bool {
        matches!(self, ExporterKind::Otlp | ExporterKind::Ingestion)
    }
}

impl fmt::Display for ExporterKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A configuration value that cannot be used, with what to do about it.
///
/// Every message names the environment variable of the setting, also when the value was set in
/// code through [`ConfigBuilder`]. No message (and no `Debug` output) contains the secret key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value is malformed or out of range, e.g.
    /// `LANGFUSE_SAMPLE_RATE="1.5" is invalid: expected a number from 0 to 1`.
    #[error("{var}={value:?} is invalid: expected {expected}")]
    Invalid {
        /// The environment variable of the setting.
        var: &'static str,
        /// The offending value, as written (`"<redacted>"` if it contained the secret key).
        value: String,
        /// What would be accepted.
        expected: &'static str,
    },
    /// The public key is set but the secret key is not (while tracing is enabled).
    #[error(
        "LANGFUSE_PUBLIC_KEY is set but LANGFUSE_SECRET_KEY is not: set both to send to \
         Langfuse, or neither to use the console exporter"
    )]
    MissingSecretKey,
    /// The secret key is set but the public key is not (while tracing is enabled).
    #[error(
        "LANGFUSE_SECRET_KEY is set but LANGFUSE_PUBLIC_KEY is not: set both to send to \
         Langfuse, or neither to use the console exporter"
    )]
    MissingPublicKey,
    /// An exporter that sends to Langfuse was chosen explicitly, but no keys are set.
    #[error(
        "LANGFUSE_EXPORTER={exporter} sends to Langfuse and needs LANGFUSE_PUBLIC_KEY and \
         LANGFUSE_SECRET_KEY: set both keys, or use LANGFUSE_EXPORTER=console to print traces \
         locally"
    )]
    KeysRequired {
        /// The exporter that was chosen.
        exporter: ExporterKind,
    },
    /// The secret key contains characters no Langfuse key has (its value is never shown).
    #[error(
        "LANGFUSE_SECRET_KEY is invalid (value not shown): expected the secret key from the \
         Langfuse project settings (sk-lf-...): printable ASCII without spaces"
    )]
    InvalidSecretKey,
    /// The public key looks like a secret key or the reverse (values are never shown).
    #[error(
        "LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY look swapped (values not shown): the \
         public key starts with pk-lf-, the secret key with sk-lf-"
    )]
    KeysSwapped,
}

impl ConfigError {
    fn invalid(var: &'static str, value: impl Into<String>, expected: &'static str) -> Self {
        ConfigError::Invalid {
            var,
            value: value.into(),
            expected,
        }
    }

    /// Belt and braces: a secret pasted into the wrong variable must not be echoed back.
    fn scrubbed(self, secret: Option<&str>) -> Self {
        match (self, secret) {
            (
                ConfigError::Invalid {
                    var,
                    value,
                    expected,
                },
                Some(secret),
            ) if !secret.is_empty() && value.contains(secret) => ConfigError::Invalid {
                var,
                value: "<redacted>".to_owned(),
                expected,
            },
            (err, _) => err,
        }
    }
}

/// The validated settings of the SDK.
///
/// Build one with [`Config::from_env`], [`Config::builder`] or [`ConfigBuilder::from_env`]
/// (environment first, then overrides in code). `Debug` output redacts the secret key.
#[derive(Clone)]
pub struct Config {
    public_key: Option<String>,
    secret_key: Option<String>,
    base_url: Url,
    enabled: bool,
    sample_rate: f64,
    environment: Option<String>,
    release: Option<String>,
    debug: bool,
    flush_at: usize,
    flush_interval: Duration,
    timeout: Duration,
    capture_io: bool,
    exporter: ExporterKind,
    console_file: Option<PathBuf>,
    max_queue_items: usize,
    max_queue_bytes: usize,
    flush_on_root: bool,
    flush_timeout: Duration,
    root_flush_timeout: Duration,
    flush_at_exit: bool,
    max_retries: u32,
    retry_backoff: Duration,
    gzip: bool,
    mask: Option<Mask>,
    service_name: String,
    resource_attributes: Vec<(String, String)>,
}

/// A function that rewrites input, output and metadata values before they leave the process,
/// for example to remove personal data. Set with [`ConfigBuilder::mask`].
pub type Mask = std::sync::Arc<dyn Fn(serde_json::Value) -> serde_json::Value + Send + Sync>;

impl Config {
    /// Reads every `LANGFUSE_*` variable from the process environment and validates the result.
    ///
    /// Unset and empty variables take their defaults (see the [module docs](self)).
    ///
    /// ```
    /// use langfuse_observe_core::config::Config;
    ///
    /// match Config::from_env() {
    ///     Ok(config) => println!("exporting with {}", config.exporter()),
    ///     Err(err) => eprintln!("Langfuse is misconfigured: {err}"),
    /// }
    /// ```
    pub fn from_env() -> Result<Config, ConfigError> {
        ConfigBuilder::from_env()?.build()
    }

    /// Like [`Config::from_env`], but reads variables through `lookup` (a test map, a config
    /// file already loaded, ...). `lookup` receives the variable name, e.g.
    /// `"LANGFUSE_PUBLIC_KEY"`.
    ///
    /// ```
    /// use std::collections::HashMap;
    /// use langfuse_observe_core::config::Config;
    ///
    /// let vars = HashMap::from([("LANGFUSE_SAMPLE_RATE", "0.1")]);
    /// let config = Config::from_lookup(|name| vars.get(name).map(|v| v.to_string()))?;
    /// assert_eq!(config.sample_rate(), 0.1);
    /// # Ok::<(), langfuse_observe_core::config::ConfigError>(())
    /// ```
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        ConfigBuilder::from_lookup(lookup)?.build()
    }

    /// A builder holding the defaults, without reading the environment.
    ///
    /// ```
    /// use std::time::Duration;
    /// use langfuse_observe_core::config::{Config, ExporterKind};
    ///
    /// let config = Config::builder()
    ///     .keys("pk-lf-1234", "sk-lf-5678")
    ///     .base_url("https://langfuse.example.com/")
    ///     .environment("staging")
    ///     .sample_rate(0.25)
    ///     .flush_interval(Duration::from_secs(1))
    ///     .build()?;
    /// assert_eq!(config.exporter(), ExporterKind::Otlp);
    /// assert_eq!(
    ///     config.endpoint("api/public/otel/v1/traces").as_str(),
    ///     "https://langfuse.example.com/api/public/otel/v1/traces"
    /// );
    ///
    /// let err = Config::builder().sample_rate(1.5).build().unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     r#"LANGFUSE_SAMPLE_RATE="1.5" is invalid: expected a number from 0 to 1"#
    /// );
    /// # Ok::<(), langfuse_observe_core::config::ConfigError>(())
    /// ```
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// The project's public key (`LANGFUSE_PUBLIC_KEY`), if set.
    pub fn public_key(&self) -> Option<&str> {
        self.public_key.as_deref()
    }

    /// The project's secret key (`LANGFUSE_SECRET_KEY`), if set. Never log it.
    pub fn secret_key(&self) -> Option<&str> {
        self.secret_key.as_deref()
    }

    /// The Langfuse server (`LANGFUSE_BASE_URL`, else `LANGFUSE_HOST`).
    ///
    /// Normalized so that its path ends in exactly one `/` (`https://host/` or
    /// `https://host/langfuse/`, whatever number of trailing slashes was given), so API paths
    /// are joined as *relative* paths: `base_url().join("api/public/ingestion")`, or use
    /// [`Config::endpoint`], which also accepts a leading `/`. Don't `format!` a `/` after it.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// The URL of an API path on the Langfuse server: `endpoint("api/public/ingestion")` (a
    /// leading `/` is ignored) gives `https://cloud.langfuse.com/api/public/ingestion`, keeping
    /// any path prefix of the base URL (`https://host/langfuse/api/public/ingestion`).
    pub fn endpoint(&self, path: &str) -> Url {
        let mut url = self.base_url.clone();
        let joined = format!("{}{}", self.base_url.path(), path.trim_start_matches('/'));
        url.set_path(&joined);
        url
    }

    /// Whether tracing is on (`LANGFUSE_TRACING_ENABLED`). When off, nothing is recorded or
    /// sent, and the keys may be missing.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The fraction of traces kept, from 0 to 1 (`LANGFUSE_SAMPLE_RATE`).
    pub fn sample_rate(&self) -> f64 {
        self.sample_rate
    }

    /// The environment traces are tagged with (`LANGFUSE_TRACING_ENVIRONMENT`), if set.
    pub fn environment(&self) -> Option<&str> {
        self.environment.as_deref()
    }

    /// The release traces are tagged with (`LANGFUSE_RELEASE`), if set.
    pub fn release(&self) -> Option<&str> {
        self.release.as_deref()
    }

    /// Whether the SDK logs what it does (`LANGFUSE_DEBUG`).
    pub fn debug(&self) -> bool {
        self.debug
    }

    /// How many pending observations trigger a send (`LANGFUSE_FLUSH_AT`), at least 1.
    pub fn flush_at(&self) -> usize {
        self.flush_at
    }

    /// The longest time pending observations wait before a send (`LANGFUSE_FLUSH_INTERVAL`).
    pub fn flush_interval(&self) -> Duration {
        self.flush_interval
    }

    /// The timeout of one HTTP request (`LANGFUSE_TIMEOUT`).
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether `#[observe]` records inputs and outputs by default
    /// (`LANGFUSE_OBSERVE_DECORATOR_IO_CAPTURE_ENABLED`).
    pub fn capture_io(&self) -> bool {
        self.capture_io
    }

    /// Where observations go (`LANGFUSE_EXPORTER`; by default OTLP when both keys are set,
    /// else the console).
    pub fn exporter(&self) -> ExporterKind {
        self.exporter
    }

    /// The file the console exporter appends JSON lines to instead of printing a tree on
    /// stderr (`LANGFUSE_CONSOLE_FILE`), if set.
    pub fn console_file(&self) -> Option<&Path> {
        self.console_file.as_deref()
    }

    /// The most observations waiting to be sent; more are dropped and counted
    /// (`LANGFUSE_MAX_QUEUE_ITEMS`).
    pub fn max_queue_items(&self) -> usize {
        self.max_queue_items
    }

    /// The most bytes of observations waiting to be sent; more are dropped and counted
    /// (`LANGFUSE_MAX_QUEUE_BYTES`), at least 1024.
    pub fn max_queue_bytes(&self) -> usize {
        self.max_queue_bytes
    }

    /// Whether the end of an outermost observation flushes (`LANGFUSE_FLUSH_ON_ROOT`), so short
    /// programs deliver everything without calling flush.
    pub fn flush_on_root(&self) -> bool {
        self.flush_on_root
    }

    /// The deadline of a flush or shutdown (`LANGFUSE_FLUSH_TIMEOUT`).
    pub fn flush_timeout(&self) -> Duration {
        self.flush_timeout
    }

    /// The longest the end of an outermost observation waits for its records to be delivered
    /// (`LANGFUSE_ROOT_FLUSH_TIMEOUT`), at most [`flush_timeout`](Self::flush_timeout).
    pub fn root_flush_timeout(&self) -> Duration {
        self.root_flush_timeout.min(self.flush_timeout)
    }

    /// Whether what is still pending is delivered when the process exits
    /// (`LANGFUSE_FLUSH_AT_EXIT`), within [`flush_timeout`](Self::flush_timeout).
    pub fn flush_at_exit(&self) -> bool {
        self.flush_at_exit
    }

    /// How many times a failed batch is retried (`LANGFUSE_MAX_RETRIES`); 0 disables retries.
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The delay before the first retry, doubled (with jitter) for each next one
    /// (`LANGFUSE_RETRY_BACKOFF`).
    pub fn retry_backoff(&self) -> Duration {
        self.retry_backoff
    }

    /// Whether request bodies are gzip-compressed (`LANGFUSE_GZIP`).
    pub fn gzip(&self) -> bool {
        self.gzip
    }

    /// The function that rewrites values before they leave the process, if any.
    pub fn mask(&self) -> Option<&Mask> {
        self.mask.as_ref()
    }

    /// The OpenTelemetry `service.name` sent with every export: `OTEL_SERVICE_NAME`, else
    /// `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, else `unknown_service:<executable>`.
    pub fn service_name(&self) -> &str {
        &self.service_name
    }

    /// The other resource attributes sent with every OTLP export, from
    /// `OTEL_RESOURCE_ATTRIBUTES` and [`ConfigBuilder::resource_attribute`], in that order.
    pub fn resource_attributes(&self) -> &[(String, String)] {
        &self.resource_attributes
    }
}

/// Shows `"<redacted>"` in place of a secret.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

fn redact(secret: &Option<String>) -> Option<Redacted> {
    secret.as_ref().map(|_| Redacted)
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("public_key", &self.public_key)
            .field("secret_key", &redact(&self.secret_key))
            .field("base_url", &self.base_url.as_str())
            .field("enabled", &self.enabled)
            .field("sample_rate", &self.sample_rate)
            .field("environment", &self.environment)
            .field("release", &self.release)
            .field("debug", &self.debug)
            .field("flush_at", &self.flush_at)
            .field("flush_interval", &self.flush_interval)
            .field("timeout", &self.timeout)
            .field("capture_io", &self.capture_io)
            .field("exporter", &self.exporter)
            .field("console_file", &self.console_file)
            .field("max_queue_items", &self.max_queue_items)
            .field("max_queue_bytes", &self.max_queue_bytes)
            .field("flush_on_root", &self.flush_on_root)
            .field("flush_timeout", &self.flush_timeout)
            .field("root_flush_timeout", &self.root_flush_timeout)
            .field("flush_at_exit", &self.flush_at_exit)
            .field("max_retries", &self.max_retries)
            .field("retry_backoff", &self.retry_backoff)
            .field("gzip", &self.gzip)
            .field("mask", &self.mask.as_ref().map(|_| "<fn>"))
            .field("service_name", &self.service_name)
            .field("resource_attributes", &self.resource_attributes)
            .finish()
    }
}

/// A typed value, with the environment text it was converted from (if any), so errors quote
/// what the user wrote (`"0.0"`, not `0`).
#[derive(Clone)]
struct Given<T> {
    value: T,
    text: Option<String>,
}

impl<T> Given<T> {
    fn new(value: T) -> Self {
        Given { value, text: None }
    }

    fn shown(&self, format: impl Fn(&T) -> String) -> String {
        self.text.clone().unwrap_or_else(|| format(&self.value))
    }
}

/// Collects settings, from the environment and/or code, then validates them all in
/// [`build`](ConfigBuilder::build).
///
/// Setters take the builder by value and chain. Setting an optional text (`environment`,
/// `release`, a key, `console_file`) to an empty string unsets it, like an empty variable.
/// `Debug` output redacts the secret key.
///
/// ```
/// use langfuse_observe_core::config::{ConfigBuilder, ExporterKind};
///
/// // Environment values first (`ConfigBuilder::from_env()` in a real program; a fixed
/// // lookup here), then code wins for what it sets.
/// let env = |name: &str| match name {
///     "LANGFUSE_PUBLIC_KEY" => Some("pk-lf-1234".to_string()),
///     "LANGFUSE_SECRET_KEY" => Some("sk-lf-5678".to_string()),
///     "LANGFUSE_FLUSH_AT" => Some("64".to_string()),
///     _ => None,
/// };
/// let config = ConfigBuilder::from_lookup(env)?
///     .exporter(ExporterKind::Ingestion)
///     .capture_io(false)
///     .build()?;
/// assert_eq!(config.exporter(), ExporterKind::Ingestion);
/// assert_eq!(config.flush_at(), 64);
/// assert!(!config.capture_io());
/// assert!(!format!("{config:?}").contains("sk-lf-5678"));
/// # Ok::<(), langfuse_observe_core::config::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ConfigBuilder {
    public_key: Option<String>,
    secret_key: Option<String>,
    base_url: String,
    /// The variable `base_url` came from, for error messages.
    base_url_var: &'static str,
    enabled: bool,
    sample_rate: Given<f64>,
    environment: Option<String>,
    release: Option<String>,
    debug: bool,
    flush_at: Given<usize>,
    flush_interval: Given<Duration>,
    timeout: Given<Duration>,
    capture_io: bool,
    exporter: Option<ExporterKind>,
    console_file: Option<PathBuf>,
    max_queue_items: Given<usize>,
    max_queue_bytes: Given<usize>,
    flush_on_root: bool,
    flush_timeout: Given<Duration>,
    root_flush_timeout: Given<Duration>,
    flush_at_exit: bool,
    max_retries: u32,
    retry_backoff: Given<Duration>,
    gzip: bool,
    mask: Option<Mask>,
    service_name: Option<String>,
    resource_attributes: Vec<(String, String)>,
}

impl Default for ConfigBuilder {
    fn default() -> Self {
        ConfigBuilder {
            public_key: None,
            secret_key: None,
            base_url: DEFAULT_BASE_URL.to_owned(),
            base_url_var: BASE_URL,
            enabled: true,
            sample_rate: Given::new(1.0),
            environment: None,
            release: None,
            debug: false,
            flush_at: Given::new(DEFAULT_FLUSH_AT),
            flush_interval: Given::new(DEFAULT_FLUSH_INTERVAL),
            timeout: Given::new(DEFAULT_TIMEOUT),
            capture_io: true,
            exporter: None,
            console_file: None,
            max_queue_items: Given::new(DEFAULT_MAX_QUEUE_ITEMS),
            max_queue_bytes: Given::new(DEFAULT_MAX_QUEUE_BYTES),
            flush_on_root: true,
            flush_timeout: Given::new(DEFAULT_FLUSH_TIMEOUT),
            root_flush_timeout: Given::new(DEFAULT_ROOT_FLUSH_TIMEOUT),
            flush_at_exit: true,
            max_retries: DEFAULT_MAX_RETRIES,
            retry_backoff: Given::new(DEFAULT_RETRY_BACKOFF),
            gzip: true,
            mask: None,
            service_name: None,
            resource_attributes: Vec::new(),
        }
    }
}

impl fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("public_key", &self.public_key)
            .field("secret_key", &redact(&self.secret_key))
            .field("base_url", &crate::diagnostics::redact_url(&self.base_url))
            .field("enabled", &self.enabled)
            .field("sample_rate", &self.sample_rate.value)
            .field("environment", &self.environment)
            .field("release", &self.release)
            .field("debug", &self.debug)
            .field("flush_at", &self.flush_at.value)
            .field("flush_interval", &self.flush_interval.value)
            .field("timeout", &self.timeout.value)
            .field("capture_io", &self.capture_io)
            .field("exporter", &self.exporter)
            .field("console_file", &self.console_file)
            .field("max_queue_items", &self.max_queue_items.value)
            .field("max_queue_bytes", &self.max_queue_bytes.value)
            .field("flush_on_root", &self.flush_on_root)
            .field("flush_timeout", &self.flush_timeout.value)
            .field("root_flush_timeout", &self.root_flush_timeout.value)
            .field("flush_at_exit", &self.flush_at_exit)
            .field("max_retries", &self.max_retries)
            .field("retry_backoff", &self.retry_backoff.value)
            .field("gzip", &self.gzip)
            .field("mask", &self.mask.as_ref().map(|_| "<fn>"))
            .field("service_name", &self.service_name)
            .field("resource_attributes", &self.resource_attributes)
            .finish()
    }
}

impl ConfigBuilder {
    /// A builder pre-filled from the process environment, so code can override some settings
    /// before [`build`](ConfigBuilder::build).
    ///
    /// Fails only on text that cannot be converted (`LANGFUSE_FLUSH_AT=abc`); range and
    /// consistency checks happen in `build`.
    pub fn from_env() -> Result<ConfigBuilder, ConfigError> {
        Self::from_lookup(|name| {
            std::env::var_os(name).map(|value| value.to_string_lossy().into_owned())
        })
    }

    /// Like [`ConfigBuilder::from_env`], but reads variables through `lookup`.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ConfigBuilder, ConfigError> {
        // Empty (or all-whitespace) values count as unset.
        let get = |var: &str| lookup(var).filter(|value| !value.trim().is_empty());
        let secret = get(SECRET_KEY).map(|value| value.trim().to_owned());
        Self::convert(&get).map_err(|err| err.scrubbed(secret.as_deref()))
    }

    fn convert(get: &dyn Fn(&str) -> Option<String>) -> Result<ConfigBuilder, ConfigError> {
        let text = |var: &str| get(var).map(|value| value.trim().to_owned());
        let mut b = ConfigBuilder {
            public_key: text(PUBLIC_KEY),
            secret_key: text(SECRET_KEY),
            environment: text(ENVIRONMENT),
            release: text(RELEASE),
            console_file: text(CONSOLE_FILE).map(PathBuf::from),
            ..ConfigBuilder::default()
        };
        if let Some(url) = get(BASE_URL) {
            b.base_url = url;
        } else if let Some(url) = get(HOST) {
            b.base_url = url;
            b.base_url_var = HOST;
        }
        let flag = |var: &'static str, slot: &mut bool| -> Result<(), ConfigError> {
            if let Some(raw) = get(var) {
                *slot = parse_bool(var, &raw)?;
            }
            Ok(())
        };
        flag(TRACING_ENABLED, &mut b.enabled)?;
        flag(DEBUG, &mut b.debug)?;
        flag(CAPTURE_IO, &mut b.capture_io)?;
        flag(FLUSH_ON_ROOT, &mut b.flush_on_root)?;
        flag(GZIP, &mut b.gzip)?;
        flag(FLUSH_AT_EXIT, &mut b.flush_at_exit)?;

        if let Some(raw) = get(SAMPLE_RATE) {
            b.sample_rate = parse_number(SAMPLE_RATE, raw, EXPECT_SAMPLE_RATE)?;
        }
        if let Some(raw) = get(FLUSH_AT) {
            b.flush_at = parse_number(FLUSH_AT, raw, EXPECT_AT_LEAST_ONE)?;
        }
        if let Some(raw) = get(MAX_QUEUE_ITEMS) {
            b.max_queue_items = parse_number(MAX_QUEUE_ITEMS, raw, EXPECT_AT_LEAST_ONE)?;
        }
        if let Some(raw) = get(MAX_QUEUE_BYTES) {
            b.max_queue_bytes = parse_number(MAX_QUEUE_BYTES, raw, EXPECT_QUEUE_BYTES)?;
        }
        if let Some(raw) = get(MAX_RETRIES) {
            b.max_retries = parse_number(MAX_RETRIES, raw, EXPECT_RETRIES)?.value;
        }

        let seconds = |var: &'static str, slot: &mut Given<Duration>| -> Result<(), ConfigError> {
            if let Some(raw) = get(var) {
                *slot = parse_seconds(var, raw)?;
            }
            Ok(())
        };
        seconds(FLUSH_INTERVAL, &mut b.flush_interval)?;
        seconds(TIMEOUT, &mut b.timeout)?;
        seconds(FLUSH_TIMEOUT, &mut b.flush_timeout)?;
        seconds(ROOT_FLUSH_TIMEOUT, &mut b.root_flush_timeout)?;
        seconds(RETRY_BACKOFF, &mut b.retry_backoff)?;

        if let Some(raw) = get(EXPORTER) {
            b.exporter = Some(parse_exporter(&raw)?);
        }
        if let Some(raw) = get(RESOURCE_ATTRIBUTES) {
            b.resource_attributes = parse_resource_attributes(&raw)?;
        }
        b.service_name = text(SERVICE_NAME);
        Ok(b)
    }

    /// Sets both project keys (`LANGFUSE_PUBLIC_KEY`, `LANGFUSE_SECRET_KEY`), from the
    /// Langfuse project settings. An empty string unsets a key.
    pub fn keys(mut self, public: impl Into<String>, secret: impl Into<String>) -> Self {
        self.public_key = Some(public.into());
        self.secret_key = Some(secret.into());
        self
    }

    /// Sets the Langfuse server (`LANGFUSE_BASE_URL`), e.g. `https://us.cloud.langfuse.com`;
    /// checked in [`build`](ConfigBuilder::build).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self.base_url_var = BASE_URL;
        self
    }

    /// Turns tracing on or off (`LANGFUSE_TRACING_ENABLED`).
    pub fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Sets the fraction of traces kept, from 0 to 1 (`LANGFUSE_SAMPLE_RATE`).
    pub fn sample_rate(mut self, rate: f64) -> Self {
        self.sample_rate = Given::new(rate);
        self
    }

    /// Sets the environment (`LANGFUSE_TRACING_ENVIRONMENT`): lowercase letters, digits, `-`,
    /// `_`, at most 40 characters, not starting with `langfuse`. Empty unsets it.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// Sets the release (`LANGFUSE_RELEASE`). Empty unsets it.
    pub fn release(mut self, release: impl Into<String>) -> Self {
        self.release = Some(release.into());
        self
    }

    /// Turns the SDK's own debug logging on or off (`LANGFUSE_DEBUG`).
    pub fn debug(mut self, debug: bool) -> Self {
        self.debug = debug;
        self
    }

    /// Sets how many pending observations trigger a send (`LANGFUSE_FLUSH_AT`), at least 1.
    pub fn flush_at(mut self, count: usize) -> Self {
        self.flush_at = Given::new(count);
        self
    }

    /// Sets the longest wait before pending observations are sent (`LANGFUSE_FLUSH_INTERVAL`),
    /// more than zero.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = Given::new(interval);
        self
    }

    /// Sets the timeout of one HTTP request (`LANGFUSE_TIMEOUT`), more than zero.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Given::new(timeout);
        self
    }

    /// Sets whether `#[observe]` records inputs and outputs by default
    /// (`LANGFUSE_OBSERVE_DECORATOR_IO_CAPTURE_ENABLED`).
    pub fn capture_io(mut self, capture: bool) -> Self {
        self.capture_io = capture;
        self
    }

    /// Chooses the exporter (`LANGFUSE_EXPORTER`). `Otlp` and `Ingestion` need both keys.
    pub fn exporter(mut self, exporter: ExporterKind) -> Self {
        self.exporter = Some(exporter);
        self
    }

    /// Makes the console exporter append JSON lines to this file instead of printing a tree
    /// on stderr (`LANGFUSE_CONSOLE_FILE`). An empty path unsets it.
    pub fn console_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.console_file = Some(path.into());
        self
    }

    /// Sets the most observations waiting to be sent (`LANGFUSE_MAX_QUEUE_ITEMS`), at least 1.
    pub fn max_queue_items(mut self, items: usize) -> Self {
        self.max_queue_items = Given::new(items);
        self
    }

    /// Sets the most bytes waiting to be sent (`LANGFUSE_MAX_QUEUE_BYTES`), at least 1024.
    pub fn max_queue_bytes(mut self, bytes: usize) -> Self {
        self.max_queue_bytes = Given::new(bytes);
        self
    }

    /// Sets whether the end of an outermost observation flushes (`LANGFUSE_FLUSH_ON_ROOT`).
    pub fn flush_on_root(mut self, flush: bool) -> Self {
        self.flush_on_root = flush;
        self
    }

    /// Sets the longest wait of the flush at the end of an outermost observation
    /// (`LANGFUSE_ROOT_FLUSH_TIMEOUT`), more than zero. A short wait keeps a slow or failing
    /// server from slowing the program down; what is not delivered by then stays queued.
    pub fn root_flush_timeout(mut self, timeout: Duration) -> Self {
        self.root_flush_timeout = Given::new(timeout);
        self
    }

    /// Sets whether what is still pending is delivered when the process exits
    /// (`LANGFUSE_FLUSH_AT_EXIT`, default true).
    pub fn flush_at_exit(mut self, flush: bool) -> Self {
        self.flush_at_exit = flush;
        self
    }

    /// Sets the deadline of a flush or shutdown (`LANGFUSE_FLUSH_TIMEOUT`), more than zero.
    pub fn flush_timeout(mut self, timeout: Duration) -> Self {
        self.flush_timeout = Given::new(timeout);
        self
    }

    /// Sets how many times a failed batch is retried (`LANGFUSE_MAX_RETRIES`); 0 disables
    /// retries.
    pub fn max_retries(mut self, retries: u32) -> Self {
        self.max_retries = retries;
        self
    }

    /// Sets the delay before the first retry, doubled with jitter after each
    /// (`LANGFUSE_RETRY_BACKOFF`), more than zero.
    pub fn retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = Given::new(backoff);
        self
    }

    /// Sets whether request bodies are gzip-compressed (`LANGFUSE_GZIP`).
    pub fn gzip(mut self, gzip: bool) -> Self {
        self.gzip = gzip;
        self
    }

    /// Sets the OpenTelemetry `service.name` of the resource (`OTEL_SERVICE_NAME`), which
    /// Langfuse shows in each observation's metadata. An empty string unsets it.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = Some(name.into());
        self
    }

    /// Adds an OpenTelemetry resource attribute, as one entry of `OTEL_RESOURCE_ATTRIBUTES`
    /// would. A later value for the same key replaces the earlier one.
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        self.resource_attributes
            .retain(|(existing, _)| *existing != key);
        self.resource_attributes.push((key, value.into()));
        self
    }

    /// Sets a function applied to every input, output and metadata value (of observations
    /// and traces) before it leaves the process. It runs on the export thread, not the
    /// caller's; if it panics, the value is replaced by a marker and export goes on.
    ///
    /// ```
    /// use langfuse_observe_core::config::Config;
    ///
    /// let config = Config::builder()
    ///     .mask(|value| match value {
    ///         serde_json::Value::String(text) if text.contains('@') => "<email>".into(),
    ///         other => other,
    ///     })
    ///     .build()?;
    /// # Ok::<(), langfuse_observe_core::config::ConfigError>(())
    /// ```
    pub fn mask(
        mut self,
        mask: impl Fn(serde_json::Value) -> serde_json::Value + Send + Sync + 'static,
    ) -> Self {
        self.mask = Some(std::sync::Arc::new(mask));
        self
    }

    /// Validates every setting and returns the [`Config`], or the first problem found.
    ///
    /// With tracing disabled, missing or unpaired keys are accepted (nothing is sent), but
    /// malformed values are still errors.
    pub fn build(self) -> Result<Config, ConfigError> {
        let secret = self.secret_key.clone();
        self.validate()
            .map_err(|err| err.scrubbed(secret.as_deref()))
    }

    fn validate(self) -> Result<Config, ConfigError> {
        let public_key = self.public_key.filter(|key| !key.is_empty());
        let secret_key = self.secret_key.filter(|key| !key.is_empty());
        check_keys(public_key.as_deref(), secret_key.as_deref(), self.enabled)?;

        let base_url = parse_base_url(&self.base_url, self.base_url_var)?;

        let rate = &self.sample_rate;
        if !(rate.value.is_finite() && (0.0..=1.0).contains(&rate.value)) {
            return Err(ConfigError::invalid(
                SAMPLE_RATE,
                rate.shown(f64::to_string),
                EXPECT_SAMPLE_RATE,
            ));
        }

        let environment = self.environment.filter(|env| !env.is_empty());
        if let Some(env) = &environment {
            if !is_valid_environment(env) {
                return Err(ConfigError::invalid(
                    ENVIRONMENT,
                    env.as_str(),
                    EXPECT_ENVIRONMENT,
                ));
            }
        }

        at_least(FLUSH_AT, &self.flush_at, 1, EXPECT_AT_LEAST_ONE)?;
        positive(FLUSH_INTERVAL, &self.flush_interval)?;
        positive(TIMEOUT, &self.timeout)?;
        at_least(
            MAX_QUEUE_ITEMS,
            &self.max_queue_items,
            1,
            EXPECT_AT_LEAST_ONE,
        )?;
        at_least(
            MAX_QUEUE_BYTES,
            &self.max_queue_bytes,
            MIN_QUEUE_BYTES,
            EXPECT_QUEUE_BYTES,
        )?;
        positive(FLUSH_TIMEOUT, &self.flush_timeout)?;
        positive(ROOT_FLUSH_TIMEOUT, &self.root_flush_timeout)?;
        positive(RETRY_BACKOFF, &self.retry_backoff)?;

        let mut resource_attributes = self.resource_attributes;
        let from_attributes = resource_attributes
            .iter()
            .position(|(key, _)| key == "service.name")
            .map(|at| resource_attributes.remove(at).1);
        let service_name = self
            .service_name
            .filter(|name| !name.is_empty())
            .or(from_attributes)
            .unwrap_or_else(unknown_service);

        let has_keys = public_key.is_some() && secret_key.is_some();
        let exporter = match self.exporter {
            Some(exporter) if exporter.needs_keys() && !has_keys && self.enabled => {
                return Err(ConfigError::KeysRequired { exporter });
            }
            Some(exporter) => exporter,
            None if has_keys => ExporterKind::Otlp,
            None => ExporterKind::Console,
        };

        Ok(Config {
            public_key,
            secret_key,
            base_url,
            enabled: self.enabled,
            sample_rate: self.sample_rate.value,
            environment,
            release: self.release.filter(|release| !release.is_empty()),
            debug: self.debug,
            flush_at: self.flush_at.value,
            flush_interval: self.flush_interval.value,
            timeout: self.timeout.value,
            capture_io: self.capture_io,
            exporter,
            console_file: self
                .console_file
                .filter(|path| !path.as_os_str().is_empty()),
            max_queue_items: self.max_queue_items.value,
            max_queue_bytes: self.max_queue_bytes.value,
            flush_on_root: self.flush_on_root,
            flush_timeout: self.flush_timeout.value,
            root_flush_timeout: self.root_flush_timeout.value,
            flush_at_exit: self.flush_at_exit,
            max_retries: self.max_retries,
            retry_backoff: self.retry_backoff.value,
            gzip: self.gzip,
            mask: self.mask,
            service_name,
            resource_attributes,
        })
    }
}

/// Key checks. Malformed keys are always errors; a missing half of the pair only matters when
/// tracing is enabled. Secret values are never put into an error.
fn check_keys(
    public: Option<&str>,
    secret: Option<&str>,
    enabled: bool,
) -> Result<(), ConfigError> {
    if public.is_some_and(|key| key.starts_with("sk-lf-"))
        || secret.is_some_and(|key| key.starts_with("pk-lf-"))
    {
        return Err(ConfigError::KeysSwapped);
    }
    let printable = |key: &str| key.chars().all(|c| c.is_ascii_graphic());
    if let Some(key) = public {
        if !printable(key) || key.contains(':') {
            return Err(ConfigError::invalid(PUBLIC_KEY, key, EXPECT_PUBLIC_KEY));
        }
    }
    if secret.is_some_and(|key| !printable(key)) {
        return Err(ConfigError::InvalidSecretKey);
    }
    match (public, secret) {
        (Some(_), None) if enabled => Err(ConfigError::MissingSecretKey),
        (None, Some(_)) if enabled => Err(ConfigError::MissingPublicKey),
        _ => Ok(()),
    }
}

/// Parses and normalizes the base URL: http(s) with a host, no credentials, query or fragment,
/// and a path ending in exactly one `/` so relative API paths join under it.
fn parse_base_url(text: &str, var: &'static str) -> Result<Url, ConfigError> {
    let invalid = || ConfigError::invalid(var, crate::diagnostics::redact_url(text), EXPECT_URL);
    let mut url = Url::parse(text.trim()).map_err(|_| invalid())?;
    let usable = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some_and(|host| !host.is_empty())
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    if !usable {
        return Err(invalid());
    }
    let path = format!("{}/", url.path().trim_end_matches('/'));
    url.set_path(&path);
    Ok(url)
}

/// OpenTelemetry's name for a service that did not name itself.
fn unknown_service() -> String {
    let executable = std::env::current_exe().ok().and_then(|path| {
        path.file_name()
            .map(|name| name.to_string_lossy().into_owned())
    });
    match executable {
        Some(name) => format!("unknown_service:{name}"),
        None => "unknown_service".to_owned(),
    }
}

/// `OTEL_RESOURCE_ATTRIBUTES`: `key=value` pairs separated by commas, values percent-encoded.
fn parse_resource_attributes(text: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let invalid = || ConfigError::invalid(RESOURCE_ATTRIBUTES, text, EXPECT_RESOURCE_ATTRIBUTES);
    let mut attributes: Vec<(String, String)> = Vec::new();
    for pair in text.split(',').filter(|pair| !pair.trim().is_empty()) {
        let (key, value) = pair.split_once('=').ok_or_else(invalid)?;
        let key = key.trim();
        if key.is_empty() {
            return Err(invalid());
        }
        let value = percent_encoding::percent_decode_str(value.trim())
            .decode_utf8()
            .map_err(|_| invalid())?
            .into_owned();
        attributes.retain(|(existing, _)| existing != key);
        attributes.push((key.to_owned(), value));
    }
    Ok(attributes)
}

/// The environment the Langfuse server stores for `given` (LANGFUSE_SERVER.md §3.5).
pub(crate) fn normalise_environment(given: &str) -> String {
    let lower = given.to_lowercase();
    let mut rest = lower.as_str();
    while let Some(stripped) = ["langfuse-", "langfuse_", "langfuse"]
        .iter()
        .find_map(|prefix| rest.strip_prefix(prefix))
    {
        rest = stripped;
    }
    let cut: String = rest.chars().take(MAX_ENVIRONMENT_LEN).collect();
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
    if cut.is_empty() || !cut.chars().all(allowed) {
        "default".to_owned()
    } else {
        cut
    }
}

/// `^(?!langfuse)[a-z0-9-_]+$`, at most 40 characters.
fn is_valid_environment(env: &str) -> bool {
    !env.is_empty()
        && env.len() <= MAX_ENVIRONMENT_LEN
        && !env.starts_with("langfuse")
        && env
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn at_least(
    var: &'static str,
    given: &Given<usize>,
    min: usize,
    expected: &'static str,
) -> Result<(), ConfigError> {
    if given.value < min {
        return Err(ConfigError::invalid(
            var,
            given.shown(usize::to_string),
            expected,
        ));
    }
    Ok(())
}

fn positive(var: &'static str, given: &Given<Duration>) -> Result<(), ConfigError> {
    if given.value.is_zero() {
        return Err(ConfigError::invalid(
            var,
            given.shown(|d| d.as_secs_f64().to_string()),
            EXPECT_SECONDS,
        ));
    }
    Ok(())
}

fn parse_bool(var: &'static str, raw: &str) -> Result<bool, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::invalid(var, raw, EXPECT_BOOL)),
    }
}

fn parse_number<T: std::str::FromStr>(
    var: &'static str,
    raw: String,
    expected: &'static str,
) -> Result<Given<T>, ConfigError> {
    match raw.trim().parse() {
        Ok(value) => Ok(Given {
            value,
            text: Some(raw),
        }),
        Err(_) => Err(ConfigError::invalid(var, raw, expected)),
    }
}

/// Seconds, fractions allowed. Negative, NaN or infinite values cannot become a `Duration`
/// and are rejected here; zero is converted and rejected by `build`.
fn parse_seconds(var: &'static str, raw: String) -> Result<Given<Duration>, ConfigError> {
    let value = raw
        .trim()
        .parse::<f64>()
        .ok()
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok());
    match value {
        Some(value) => Ok(Given {
            value,
            text: Some(raw),
        }),
        None => Err(ConfigError::invalid(var, raw, EXPECT_SECONDS)),
    }
}

fn parse_exporter(raw: &str) -> Result<ExporterKind, ConfigError> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "otlp" => Ok(ExporterKind::Otlp),
        "ingestion" => Ok(ExporterKind::Ingestion),
        "console" => Ok(ExporterKind::Console),
        _ => Err(ConfigError::invalid(EXPORTER, raw, EXPECT_EXPORTER)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const PK: &str = "pk-lf-public-1234";
    const SK: &str = "sk-lf-TOP-SECRET-5678";

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn config(vars: &[(&str, &str)]) -> Config {
        Config::from_lookup(lookup(vars)).expect("valid configuration")
    }

    fn error(vars: &[(&str, &str)]) -> ConfigError {
        match Config::from_lookup(lookup(vars)) {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(err) => err,
        }
    }

    fn builder_error(builder: ConfigBuilder) -> ConfigError {
        match builder.build() {
            Ok(config) => panic!("expected an error, got {config:?}"),
            Err(err) => err,
        }
    }

    /// Asserts `err` is `Invalid` for `var` with `value`, and its message names both and what
    /// is expected.
    fn assert_invalid(err: &ConfigError, var: &str, value: &str, expected_part: &str) {
        match err {
            ConfigError::Invalid {
                var: v,
                value: got,
                expected,
            } => {
                assert_eq!(*v, var, "{err}");
                assert_eq!(got, value, "{err}");
                assert!(expected.contains(expected_part), "{err}");
            }
            other => panic!("expected Invalid for {var}, got {other:?}"),
        }
        let message = err.to_string();
        assert!(message.starts_with(&format!("{var}=")), "{message}");
        assert!(message.contains(expected_part), "{message}");
    }

    #[test]
    fn service_name_comes_from_otel_service_name_then_resource_attributes_then_the_executable() {
        let attributes = "service.name=from-attributes,service.namespace=shop,note=a%2Cb%3Dc";
        let both = config(&[
            ("OTEL_SERVICE_NAME", "checkout"),
            ("OTEL_RESOURCE_ATTRIBUTES", attributes),
        ]);
        assert_eq!(both.service_name(), "checkout");
        assert_eq!(
            both.resource_attributes(),
            [
                ("service.namespace".to_owned(), "shop".to_owned()),
                ("note".to_owned(), "a,b=c".to_owned()),
            ],
            "service.name is not repeated; values are percent-decoded"
        );
        let attributes_only = config(&[("OTEL_RESOURCE_ATTRIBUTES", attributes)]);
        assert_eq!(attributes_only.service_name(), "from-attributes");
        let neither = config(&[]);
        let executable = std::env::current_exe().unwrap();
        let executable = executable.file_name().unwrap().to_string_lossy();
        assert_eq!(
            neither.service_name(),
            format!("unknown_service:{executable}")
        );
        let code = Config::builder()
            .service_name("worker")
            .resource_attribute("k", "1")
            .resource_attribute("k", "2")
            .build()
            .unwrap();
        assert_eq!(code.service_name(), "worker");
        assert_eq!(
            code.resource_attributes(),
            [("k".to_owned(), "2".to_owned())]
        );
    }

    #[test]
    fn environments_are_normalised_as_the_server_does() {
        for (given, stored) in [
            ("production", "production"),
            ("Staging", "staging"),
            ("langfuse-prod", "prod"),
            ("LANGFUSE_langfuse-eu", "eu"),
            ("langfuse", "default"),
            ("prod eu", "default"),
            ("", "default"),
            (&"a".repeat(50), &"a".repeat(40)),
        ] {
            assert_eq!(normalise_environment(given), stored, "{given:?}");
        }
    }

    #[test]
    fn malformed_resource_attributes_are_an_error_naming_the_variable() {
        for bad in ["novalue", "=v", "k=%FF"] {
            let err = error(&[("OTEL_RESOURCE_ATTRIBUTES", bad)]);
            assert_invalid(&err, "OTEL_RESOURCE_ATTRIBUTES", bad, "key=value");
        }
    }

    #[test]
    fn defaults() {
        for config in [config(&[]), Config::builder().build().expect("defaults")] {
            assert_eq!(config.public_key(), None);
            assert_eq!(config.secret_key(), None);
            assert_eq!(config.base_url().as_str(), "https://cloud.langfuse.com/");
            assert!(config.enabled());
            assert_eq!(config.sample_rate(), 1.0);
            assert_eq!(config.environment(), None);
            assert_eq!(config.release(), None);
            assert!(!config.debug());
            assert_eq!(config.flush_at(), 512);
            assert_eq!(config.flush_interval(), Duration::from_secs(5));
            assert_eq!(config.timeout(), Duration::from_secs(5));
            assert!(config.capture_io());
            assert_eq!(config.exporter(), ExporterKind::Console);
            assert_eq!(config.console_file(), None);
            assert_eq!(config.max_queue_items(), 100_000);
            assert_eq!(config.max_queue_bytes(), 64 * 1024 * 1024);
            assert!(config.flush_on_root());
            assert_eq!(config.flush_timeout(), Duration::from_secs(10));
            assert_eq!(config.max_retries(), 5);
            assert_eq!(config.retry_backoff(), Duration::from_millis(500));
            assert!(config.gzip());
        }
    }

    #[test]
    fn every_variable_is_read() {
        let config = config(&[
            ("LANGFUSE_PUBLIC_KEY", PK),
            ("LANGFUSE_SECRET_KEY", SK),
            ("LANGFUSE_BASE_URL", "http://localhost:3000"),
            ("LANGFUSE_TRACING_ENABLED", "true"),
            ("LANGFUSE_SAMPLE_RATE", "0.25"),
            ("LANGFUSE_TRACING_ENVIRONMENT", "staging_eu-1"),
            ("LANGFUSE_RELEASE", "v1.2.3"),
            ("LANGFUSE_DEBUG", "yes"),
            ("LANGFUSE_FLUSH_AT", "10"),
            ("LANGFUSE_FLUSH_INTERVAL", "0.25"),
            ("LANGFUSE_TIMEOUT", "30"),
            ("LANGFUSE_OBSERVE_DECORATOR_IO_CAPTURE_ENABLED", "off"),
            ("LANGFUSE_EXPORTER", "ingestion"),
            ("LANGFUSE_CONSOLE_FILE", "/tmp/traces.jsonl"),
            ("LANGFUSE_MAX_QUEUE_ITEMS", "42"),
            ("LANGFUSE_MAX_QUEUE_BYTES", "2048"),
            ("LANGFUSE_FLUSH_ON_ROOT", "0"),
            ("LANGFUSE_FLUSH_TIMEOUT", "1.5"),
            ("LANGFUSE_MAX_RETRIES", "0"),
            ("LANGFUSE_RETRY_BACKOFF", "2"),
            ("LANGFUSE_GZIP", "FALSE"),
        ]);
        assert_eq!(config.public_key(), Some(PK));
        assert_eq!(config.secret_key(), Some(SK));
        assert_eq!(config.base_url().as_str(), "http://localhost:3000/");
        assert!(config.enabled());
        assert_eq!(config.sample_rate(), 0.25);
        assert_eq!(config.environment(), Some("staging_eu-1"));
        assert_eq!(config.release(), Some("v1.2.3"));
        assert!(config.debug());
        assert_eq!(config.flush_at(), 10);
        assert_eq!(config.flush_interval(), Duration::from_millis(250));
        assert_eq!(config.timeout(), Duration::from_secs(30));
        assert!(!config.capture_io());
        assert_eq!(config.exporter(), ExporterKind::Ingestion);
        assert_eq!(config.console_file(), Some(Path::new("/tmp/traces.jsonl")));
        assert_eq!(config.max_queue_items(), 42);
        assert_eq!(config.max_queue_bytes(), 2048);
        assert!(!config.flush_on_root());
        assert_eq!(config.flush_timeout(), Duration::from_millis(1500));
        assert_eq!(config.max_retries(), 0);
        assert_eq!(config.retry_backoff(), Duration::from_secs(2));
        assert!(!config.gzip());
    }

    #[test]
    fn tracing_can_be_disabled() {
        assert!(!config(&[("LANGFUSE_TRACING_ENABLED", "false")]).enabled());
    }

    #[test]
    fn booleans_accept_common_spellings() {
        for (text, value) in [
            ("true", true),
            (" TRUE ", true),
            ("1", true),
            ("Yes", true),
            ("on", true),
            ("false", false),
            ("0", false),
            ("NO", false),
            (" off\n", false),
        ] {
            assert_eq!(
                config(&[("LANGFUSE_DEBUG", text)]).debug(),
                value,
                "{text:?}"
            );
        }
    }

    #[test]
    fn bad_boolean_names_the_variable() {
        let err = error(&[("LANGFUSE_GZIP", "maybe")]);
        assert_invalid(&err, "LANGFUSE_GZIP", "maybe", "true or false");
        assert_eq!(
            err.to_string(),
            "LANGFUSE_GZIP=\"maybe\" is invalid: expected true or false \
             (1/0, yes/no and on/off are accepted too)"
        );
    }

    #[test]
    fn empty_values_count_as_unset() {
        let config = config(&[
            ("LANGFUSE_PUBLIC_KEY", ""),
            ("LANGFUSE_SECRET_KEY", "  "),
            ("LANGFUSE_BASE_URL", ""),
            ("LANGFUSE_SAMPLE_RATE", ""),
            ("LANGFUSE_TRACING_ENVIRONMENT", ""),
            ("LANGFUSE_FLUSH_AT", " "),
            ("LANGFUSE_DEBUG", ""),
            ("LANGFUSE_EXPORTER", ""),
        ]);
        assert_eq!(config.public_key(), None);
        assert_eq!(config.secret_key(), None);
        assert_eq!(config.base_url().as_str(), "https://cloud.langfuse.com/");
        assert_eq!(config.sample_rate(), 1.0);
        assert_eq!(config.environment(), None);
        assert_eq!(config.flush_at(), 512);
        assert_eq!(config.exporter(), ExporterKind::Console);
    }

    #[test]
    fn values_are_trimmed() {
        let config = config(&[
            ("LANGFUSE_PUBLIC_KEY", " pk-lf-1\n"),
            ("LANGFUSE_SECRET_KEY", "sk-lf-2\n"),
            ("LANGFUSE_FLUSH_AT", " 7 "),
            ("LANGFUSE_TRACING_ENVIRONMENT", "prod\n"),
        ]);
        assert_eq!(config.public_key(), Some("pk-lf-1"));
        assert_eq!(config.secret_key(), Some("sk-lf-2"));
        assert_eq!(config.flush_at(), 7);
        assert_eq!(config.environment(), Some("prod"));
    }

    #[test]
    fn host_is_the_fallback_and_base_url_wins() {
        let host_only = config(&[("LANGFUSE_HOST", "https://us.cloud.langfuse.com")]);
        assert_eq!(
            host_only.base_url().as_str(),
            "https://us.cloud.langfuse.com/"
        );
        let both = config(&[
            ("LANGFUSE_HOST", "https://us.cloud.langfuse.com"),
            ("LANGFUSE_BASE_URL", "https://eu.example.com"),
        ]);
        assert_eq!(both.base_url().as_str(), "https://eu.example.com/");
        let empty_base = config(&[
            ("LANGFUSE_HOST", "https://us.cloud.langfuse.com"),
            ("LANGFUSE_BASE_URL", ""),
        ]);
        assert_eq!(
            empty_base.base_url().as_str(),
            "https://us.cloud.langfuse.com/"
        );
    }

    #[test]
    fn bad_host_names_langfuse_host() {
        let err = error(&[("LANGFUSE_HOST", "not a url")]);
        assert_invalid(&err, "LANGFUSE_HOST", "not a url", "http:// or https://");
    }

    #[test]
    fn base_url_trailing_slashes_are_normalized_and_paths_join() {
        for (given, base, endpoint) in [
            (
                "https://cloud.langfuse.com",
                "https://cloud.langfuse.com/",
                "https://cloud.langfuse.com/api/public/ingestion",
            ),
            (
                "https://cloud.langfuse.com///",
                "https://cloud.langfuse.com/",
                "https://cloud.langfuse.com/api/public/ingestion",
            ),
            (
                "http://127.0.0.1:8080/langfuse",
                "http://127.0.0.1:8080/langfuse/",
                "http://127.0.0.1:8080/langfuse/api/public/ingestion",
            ),
            (
                "http://127.0.0.1:8080/langfuse//",
                "http://127.0.0.1:8080/langfuse/",
                "http://127.0.0.1:8080/langfuse/api/public/ingestion",
            ),
        ] {
            let config = Config::builder().base_url(given).build().expect(given);
            assert_eq!(config.base_url().as_str(), base);
            assert_eq!(config.endpoint("api/public/ingestion").as_str(), endpoint);
            assert_eq!(config.endpoint("/api/public/ingestion").as_str(), endpoint);
            assert_eq!(
                config
                    .base_url()
                    .join("api/public/ingestion")
                    .expect("join")
                    .as_str(),
                endpoint
            );
        }
    }

    #[test]
    fn bad_base_urls() {
        // Credentials and query strings are not repeated in the error.
        for (url, shown) in [
            ("not a url", "not a url"),
            ("ftp://x", "ftp://x"),
            ("https://", "https://"),
            ("localhost:3000", "localhost:3000"),
            ("https://host/?x=1", "https://host/?<redacted>"),
            ("https://host/#frag", "https://host/#frag"),
            ("https://user:pw@host", "https://<redacted>@host"),
        ] {
            let err = error(&[("LANGFUSE_BASE_URL", url)]);
            assert_invalid(&err, "LANGFUSE_BASE_URL", shown, "http:// or https://");
            let err = builder_error(Config::builder().base_url(url));
            assert_invalid(&err, "LANGFUSE_BASE_URL", shown, "http:// or https://");
        }
        let builder = Config::builder().base_url("https://pk-lf-1:sk-lf-2@host/?key=sk-lf-3");
        let shown = format!("{builder:?}");
        assert!(
            !shown.contains("sk-lf-2") && !shown.contains("sk-lf-3"),
            "{shown}"
        );
    }

    #[test]
    fn bad_sample_rates() {
        for rate in ["1.5", "-0.1", "NaN", "inf", "abc"] {
            let err = error(&[("LANGFUSE_SAMPLE_RATE", rate)]);
            assert_invalid(&err, "LANGFUSE_SAMPLE_RATE", rate, "a number from 0 to 1");
        }
        assert_eq!(
            error(&[("LANGFUSE_SAMPLE_RATE", "1.5")]).to_string(),
            r#"LANGFUSE_SAMPLE_RATE="1.5" is invalid: expected a number from 0 to 1"#
        );
        for (rate, shown) in [(1.5, "1.5"), (-0.1, "-0.1"), (f64::NAN, "NaN")] {
            let err = builder_error(Config::builder().sample_rate(rate));
            assert_invalid(&err, "LANGFUSE_SAMPLE_RATE", shown, "a number from 0 to 1");
        }
        for rate in ["0", "1", "0.5"] {
            config(&[("LANGFUSE_SAMPLE_RATE", rate)]);
        }
    }

    #[test]
    fn environments() {
        let forty = "a".repeat(40);
        for ok in [
            "production",
            "dev-1",
            "my_env",
            "0",
            forty.as_str(),
            "prod-langfuse",
        ] {
            assert_eq!(
                config(&[("LANGFUSE_TRACING_ENVIRONMENT", ok)]).environment(),
                Some(ok)
            );
        }
        let forty_one = "a".repeat(41);
        for bad in [
            "langfuse-prod",
            "langfuse",
            "Prod",
            "prod env",
            "prod.eu",
            "prød",
            forty_one.as_str(),
        ] {
            let err = error(&[("LANGFUSE_TRACING_ENVIRONMENT", bad)]);
            assert_invalid(&err, "LANGFUSE_TRACING_ENVIRONMENT", bad, "at most 40");
            assert!(err.to_string().contains("not starting with \"langfuse\""));
            let err = builder_error(Config::builder().environment(bad));
            assert_invalid(&err, "LANGFUSE_TRACING_ENVIRONMENT", bad, "lowercase");
        }
    }

    #[test]
    fn bad_counts() {
        for (var, bad, expected) in [
            ("LANGFUSE_FLUSH_AT", "abc", "at least 1"),
            ("LANGFUSE_FLUSH_AT", "0", "at least 1"),
            ("LANGFUSE_FLUSH_AT", "-1", "at least 1"),
            ("LANGFUSE_FLUSH_AT", "1.5", "at least 1"),
            ("LANGFUSE_MAX_QUEUE_ITEMS", "0", "at least 1"),
            ("LANGFUSE_MAX_QUEUE_ITEMS", "lots", "at least 1"),
            ("LANGFUSE_MAX_QUEUE_BYTES", "1023", "at least 1024"),
            ("LANGFUSE_MAX_QUEUE_BYTES", "64MiB", "at least 1024"),
            ("LANGFUSE_MAX_RETRIES", "-1", "0 disables retries"),
            ("LANGFUSE_MAX_RETRIES", "three", "0 disables retries"),
        ] {
            let err = error(&[(var, bad)]);
            assert_invalid(&err, var, bad, expected);
        }
        let err = builder_error(Config::builder().flush_at(0));
        assert_invalid(&err, "LANGFUSE_FLUSH_AT", "0", "at least 1");
        let err = builder_error(Config::builder().max_queue_items(0));
        assert_invalid(&err, "LANGFUSE_MAX_QUEUE_ITEMS", "0", "at least 1");
        let err = builder_error(Config::builder().max_queue_bytes(100));
        assert_invalid(&err, "LANGFUSE_MAX_QUEUE_BYTES", "100", "at least 1024");
    }

    #[test]
    fn bad_durations() {
        for var in [
            "LANGFUSE_FLUSH_INTERVAL",
            "LANGFUSE_TIMEOUT",
            "LANGFUSE_FLUSH_TIMEOUT",
            "LANGFUSE_RETRY_BACKOFF",
        ] {
            for bad in ["5s", "0", "0.0", "-1", "NaN", "inf", "abc"] {
                let err = error(&[(var, bad)]);
                assert_invalid(&err, var, bad, "a positive number of seconds");
            }
        }
        assert_eq!(
            error(&[("LANGFUSE_FLUSH_INTERVAL", "5s")]).to_string(),
            "LANGFUSE_FLUSH_INTERVAL=\"5s\" is invalid: expected a positive number of seconds \
             (e.g. 5 or 0.5)"
        );
        for builder in [
            Config::builder().flush_interval(Duration::ZERO),
            Config::builder().timeout(Duration::ZERO),
            Config::builder().flush_timeout(Duration::ZERO),
            Config::builder().retry_backoff(Duration::ZERO),
        ] {
            let err = builder_error(builder);
            assert!(
                err.to_string().ends_with(
                    "=\"0\" is invalid: expected a positive number of seconds (e.g. 5 or 0.5)"
                ),
                "{err}"
            );
        }
    }

    #[test]
    fn bad_exporter() {
        let err = error(&[("LANGFUSE_EXPORTER", "kafka")]);
        assert_invalid(
            &err,
            "LANGFUSE_EXPORTER",
            "kafka",
            "otlp, ingestion or console",
        );
        assert_eq!(
            config(&[("LANGFUSE_EXPORTER", " Console ")]).exporter(),
            ExporterKind::Console
        );
    }

    #[test]
    fn public_key_without_secret() {
        let err = error(&[("LANGFUSE_PUBLIC_KEY", PK)]);
        assert_eq!(err, ConfigError::MissingSecretKey);
        assert_eq!(
            err.to_string(),
            "LANGFUSE_PUBLIC_KEY is set but LANGFUSE_SECRET_KEY is not: set both to send to \
             Langfuse, or neither to use the console exporter"
        );
        assert_eq!(
            builder_error(Config::builder().keys(PK, "")),
            ConfigError::MissingSecretKey
        );
    }

    #[test]
    fn secret_key_without_public() {
        let err = error(&[("LANGFUSE_SECRET_KEY", SK)]);
        assert_eq!(err, ConfigError::MissingPublicKey);
        assert!(err
            .to_string()
            .starts_with("LANGFUSE_SECRET_KEY is set but LANGFUSE_PUBLIC_KEY is not: set both"));
        assert!(!err.to_string().contains(SK));
        assert!(!format!("{err:?}").contains(SK));
    }

    #[test]
    fn disabled_tracing_tolerates_key_problems_but_not_malformed_values() {
        let config = config(&[
            ("LANGFUSE_TRACING_ENABLED", "false"),
            ("LANGFUSE_PUBLIC_KEY", PK),
        ]);
        assert!(!config.enabled());
        assert_eq!(config.exporter(), ExporterKind::Console);
        config_ok(Config::builder().enabled(false).keys("", SK));
        config_ok(
            Config::builder()
                .enabled(false)
                .exporter(ExporterKind::Otlp),
        );

        let err = error(&[
            ("LANGFUSE_TRACING_ENABLED", "off"),
            ("LANGFUSE_SAMPLE_RATE", "2"),
        ]);
        assert_invalid(&err, "LANGFUSE_SAMPLE_RATE", "2", "0 to 1");
        let err = builder_error(Config::builder().enabled(false).environment("Prod"));
        assert_invalid(&err, "LANGFUSE_TRACING_ENVIRONMENT", "Prod", "lowercase");
    }

    fn config_ok(builder: ConfigBuilder) -> Config {
        builder.build().expect("valid configuration")
    }

    #[test]
    fn exporter_defaults() {
        assert_eq!(config(&[]).exporter(), ExporterKind::Console);
        assert_eq!(
            config(&[("LANGFUSE_PUBLIC_KEY", PK), ("LANGFUSE_SECRET_KEY", SK)]).exporter(),
            ExporterKind::Otlp
        );
        assert_eq!(
            config(&[
                ("LANGFUSE_PUBLIC_KEY", PK),
                ("LANGFUSE_SECRET_KEY", SK),
                ("LANGFUSE_EXPORTER", "ingestion"),
            ])
            .exporter(),
            ExporterKind::Ingestion
        );
        assert_eq!(
            config(&[
                ("LANGFUSE_PUBLIC_KEY", PK),
                ("LANGFUSE_SECRET_KEY", SK),
                ("LANGFUSE_EXPORTER", "console"),
            ])
            .exporter(),
            ExporterKind::Console
        );
    }

    #[test]
    fn explicit_sending_exporter_needs_keys() {
        for (name, kind) in [
            ("otlp", ExporterKind::Otlp),
            ("ingestion", ExporterKind::Ingestion),
        ] {
            let err = error(&[("LANGFUSE_EXPORTER", name)]);
            assert_eq!(err, ConfigError::KeysRequired { exporter: kind });
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("LANGFUSE_EXPORTER={name} ")),
                "{message}"
            );
            assert!(message.contains("LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY"));
            assert!(message.contains("LANGFUSE_EXPORTER=console"));
            assert_eq!(
                builder_error(Config::builder().exporter(kind)),
                ConfigError::KeysRequired { exporter: kind }
            );
        }
    }

    #[test]
    fn malformed_keys() {
        let err = error(&[
            ("LANGFUSE_PUBLIC_KEY", "pk-lf-has space"),
            ("LANGFUSE_SECRET_KEY", SK),
        ]);
        assert_invalid(&err, "LANGFUSE_PUBLIC_KEY", "pk-lf-has space", "public key");
        let err = builder_error(Config::builder().keys("pk:lf", SK));
        assert_invalid(
            &err,
            "LANGFUSE_PUBLIC_KEY",
            "pk:lf",
            "without spaces or ':'",
        );

        let bad_secret = "sk-lf-secret with space";
        let err = builder_error(Config::builder().keys(PK, bad_secret));
        assert_eq!(err, ConfigError::InvalidSecretKey);
        assert!(!err.to_string().contains("secret with"));
        assert!(!format!("{err:?}").contains("secret with"));

        for (public, secret) in [(SK, PK), (SK, SK), (PK, PK)] {
            let err = builder_error(Config::builder().keys(public, secret));
            assert_eq!(err, ConfigError::KeysSwapped);
            assert!(!err.to_string().contains(SK));
            assert!(!format!("{err:?}").contains(SK));
        }
    }

    #[test]
    fn debug_never_shows_the_secret_key() {
        let config = config(&[("LANGFUSE_PUBLIC_KEY", PK), ("LANGFUSE_SECRET_KEY", SK)]);
        for shown in [format!("{config:?}"), format!("{config:#?}")] {
            assert!(!shown.contains(SK), "{shown}");
            assert!(shown.contains("\"<redacted>\""), "{shown}");
            assert!(shown.contains(PK), "{shown}");
        }
        assert!(format!("{config:?}").contains("secret_key: Some(\"<redacted>\")"));
        let builder = Config::builder().keys(PK, SK);
        let shown = format!("{builder:?}");
        assert!(!shown.contains(SK), "{shown}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(format!("{:?}", Config::builder()).contains("secret_key: None"));
    }

    #[test]
    fn errors_never_show_the_secret_key() {
        let cases: Vec<ConfigError> = vec![
            error(&[("LANGFUSE_SECRET_KEY", SK)]),
            error(&[("LANGFUSE_SECRET_KEY", SK), ("LANGFUSE_EXPORTER", "otlp")]),
            error(&[("LANGFUSE_PUBLIC_KEY", SK), ("LANGFUSE_SECRET_KEY", PK)]),
            // The secret pasted into another variable is not echoed back either.
            error(&[
                ("LANGFUSE_PUBLIC_KEY", PK),
                ("LANGFUSE_SECRET_KEY", SK),
                ("LANGFUSE_BASE_URL", SK),
            ]),
            error(&[("LANGFUSE_SECRET_KEY", SK), ("LANGFUSE_FLUSH_AT", SK)]),
            builder_error(Config::builder().keys(PK, SK).environment(SK)),
        ];
        for err in cases {
            assert!(!err.to_string().contains(SK), "{err}");
            assert!(!format!("{err:?}").contains(SK), "{err:?}");
        }
        let err = error(&[
            ("LANGFUSE_PUBLIC_KEY", PK),
            ("LANGFUSE_SECRET_KEY", SK),
            ("LANGFUSE_BASE_URL", SK),
        ]);
        assert_invalid(&err, "LANGFUSE_BASE_URL", "<redacted>", "http://");
    }

    #[test]
    fn builder_overrides_environment() {
        let vars = lookup(&[
            ("LANGFUSE_PUBLIC_KEY", PK),
            ("LANGFUSE_SECRET_KEY", SK),
            ("LANGFUSE_HOST", "https://us.cloud.langfuse.com"),
            ("LANGFUSE_SAMPLE_RATE", "0.5"),
            ("LANGFUSE_FLUSH_AT", "0"),
            ("LANGFUSE_TRACING_ENVIRONMENT", "staging"),
            ("LANGFUSE_RELEASE", "v1"),
            ("LANGFUSE_GZIP", "false"),
        ]);
        let builder = ConfigBuilder::from_lookup(vars).expect("convertible");
        // FLUSH_AT=0 only fails in build, so code can still fix it.
        assert_invalid(
            &builder_error(builder.clone()),
            "LANGFUSE_FLUSH_AT",
            "0",
            "at least 1",
        );
        let config = builder
            .base_url("http://localhost:3000/")
            .sample_rate(1.0)
            .flush_at(1)
            .environment("production")
            .release("")
            .gzip(true)
            .exporter(ExporterKind::Ingestion)
            .build()
            .expect("valid");
        assert_eq!(config.base_url().as_str(), "http://localhost:3000/");
        assert_eq!(config.sample_rate(), 1.0);
        assert_eq!(config.flush_at(), 1);
        assert_eq!(config.environment(), Some("production"));
        assert_eq!(config.release(), None);
        assert!(config.gzip());
        assert_eq!(config.exporter(), ExporterKind::Ingestion);
        assert_eq!(config.public_key(), Some(PK));
        assert_eq!(config.secret_key(), Some(SK));
    }

    #[test]
    fn builder_error_after_override_names_base_url() {
        let vars = lookup(&[("LANGFUSE_HOST", "https://us.cloud.langfuse.com")]);
        let builder = ConfigBuilder::from_lookup(vars).expect("convertible");
        let err = builder_error(builder.base_url("ftp://x"));
        assert_invalid(&err, "LANGFUSE_BASE_URL", "ftp://x", "http://");
    }

    #[test]
    fn builder_setters_reach_the_config() {
        let config = Config::builder()
            .keys(PK, SK)
            .enabled(false)
            .debug(true)
            .timeout(Duration::from_secs(1))
            .flush_interval(Duration::from_millis(100))
            .capture_io(false)
            .console_file("/tmp/out.jsonl")
            .max_queue_items(10)
            .max_queue_bytes(4096)
            .flush_on_root(false)
            .flush_timeout(Duration::from_secs(3))
            .max_retries(9)
            .retry_backoff(Duration::from_millis(10))
            .release("r1")
            .build()
            .expect("valid");
        assert!(!config.enabled());
        assert!(config.debug());
        assert_eq!(config.timeout(), Duration::from_secs(1));
        assert_eq!(config.flush_interval(), Duration::from_millis(100));
        assert!(!config.capture_io());
        assert_eq!(config.console_file(), Some(Path::new("/tmp/out.jsonl")));
        assert_eq!(config.max_queue_items(), 10);
        assert_eq!(config.max_queue_bytes(), 4096);
        assert!(!config.flush_on_root());
        assert_eq!(config.flush_timeout(), Duration::from_secs(3));
        assert_eq!(config.max_retries(), 9);
        assert_eq!(config.retry_backoff(), Duration::from_millis(10));
        assert_eq!(config.release(), Some("r1"));
        assert_eq!(config.exporter(), ExporterKind::Otlp);
        assert_eq!(
            Config::builder()
                .console_file("")
                .build()
                .expect("valid")
                .console_file(),
            None
        );
    }

    #[test]
    fn exporter_kind_names() {
        assert_eq!(ExporterKind::Otlp.to_string(), "otlp");
        assert_eq!(ExporterKind::Ingestion.as_str(), "ingestion");
        assert_eq!(ExporterKind::Console.as_str(), "console");
    }
}
