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
//! | flush/shutdown deadline (seconds), also at process exit | `LANGFUSE_FLUSH_TIMEOUT` | `10` |
//! | longest wait at the end of the outermost observation (seconds) | `LANGFUSE_ROOT_FLUSH_TIMEOUT` | `1` |
//! | deliver what is pending when the process exits | `LANGFUSE_FLUSH_AT_EXIT` | `true` |
//! | retries per batch | `LANGFUSE_MAX_RETRIES` | `5` |
//! | first retry delay (seconds, doubling with jitter) | `LANGFUSE_RETRY_BACKOFF` | `0.5` |
//! | prompt cache TTL (seconds; `0` turns the cache off) | `LANGFUSE_PROMPT_CACHE_DEFAULT_TTL_SECONDS` | `60` |
//! | gzip OTLP request bodies (the ingestion route is never compressed) | `LANGFUSE_GZIP` | `true` |
//! | OpenTelemetry `service.name` | `OTEL_SERVICE_NAME`, then `service.name` in `OTEL_RESOURCE_ATTRIBUTES` | `unknown_service:<executable>` |
//! | other resource attributes (`k=v,k2=v2`, percent-encoded) | `OTEL_RESOURCE_ATTRIBUTES` | none |
//! | mask values before they leave the process | `Config::builder().mask(…)` (code only) | none |
//!
//! Booleans accept `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off` (any case). Durations are
//! seconds, fractions allowed (`0.25`). The secret key never appears in an error or in `Debug`
//! output.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;

use parse::{
    BaseUrl, Environment, Exporter, Flag, Given, Number, Parse, ResourceAttributes, Seconds,
    SecondsOrOff, Text,
};
use validate::Check;

mod parse;
#[cfg(test)]
mod tests;
mod validate;

pub(crate) use validate::normalise_environment;

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

    /// The URL of an API path on the Langfuse server: `endpoint("api/public/ingestion")` (a
    /// leading `/` is ignored) gives `https://cloud.langfuse.com/api/public/ingestion`, keeping
    /// any path prefix of the base URL (`https://host/langfuse/api/public/ingestion`).
    pub fn endpoint(&self, path: &str) -> Url {
        let mut url = self.base_url.clone();
        let joined = format!("{}{}", self.base_url.path(), path.trim_start_matches('/'));
        url.set_path(&joined);
        url
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
        let secret = get("LANGFUSE_SECRET_KEY").map(|value| value.trim().to_owned());
        Self::read(&get).map_err(|err| err.scrubbed(secret.as_deref()))
    }

    /// Sets both project keys ([`Config::public_key`], [`Config::secret_key`]), from the
    /// Langfuse project settings. An empty string unsets a key.
    pub fn keys(mut self, public: impl Into<String>, secret: impl Into<String>) -> Self {
        self.public_key = Given::new(Some(public.into()));
        self.secret_key = Given::new(Some(secret.into()));
        self
    }

    /// Adds an OpenTelemetry resource attribute, as one entry of `OTEL_RESOURCE_ATTRIBUTES`
    /// would. A later value for the same key replaces the earlier one.
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let key = key.into();
        let attributes = &mut self.resource_attributes.value;
        attributes.retain(|(existing, _)| *existing != key);
        attributes.push((key, value.into()));
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
        self.mask = Given::new(Some(std::sync::Arc::new(mask)));
        self
    }

    /// Validates every setting and returns the [`Config`], or the first problem found.
    ///
    /// With tracing disabled, missing or unpaired keys are accepted (nothing is sent), but
    /// malformed values are still errors.
    pub fn build(self) -> Result<Config, ConfigError> {
        Self::validated(&self).map_err(|err| err.scrubbed(self.secret_key.value.as_deref()))
    }
}

/// Declares the settings, each once, and makes from them [`Config`] (fields and getters),
/// [`ConfigBuilder`] (fields, defaults and setters), reading the environment, the checks of
/// `build`, both redacting `Debug` impls and [`documented_table`].
///
/// An entry, with its optional clauses in this order:
///
/// ```text
/// /// Docs of the getter and of the setter.
/// name: Type {                             // `Config`'s field, returned by the getter
///     given: Type,                         // the builder holds this instead of `Type`
///     default: expr,                       // the builder's initial value
///     env: "VAR" or "FALLBACK", rule: R,   // R: Parse (text to value) and Check (in build)
///     build: path,                         // fn(&ConfigBuilder) -> Result<Type, _>, not Check
///     get: Type = path,                    // the getter returns path(&field), not a copy
///     set: Type = path,                    // the setter takes Type and stores path(arg)
///     set_by: ident,                       // no setter of its own: a hand-written one sets it
///     debug: path,                         // Debug shows path(&field)
///     row: "label", vars: "…", default: "…", note: "…",  // its row in the settings table
/// }
/// ```
macro_rules! settings {
    (
        $(#[$config_attr:meta])* pub struct Config;
        $(#[$builder_attr:meta])* pub struct ConfigBuilder;
        $(
            $(#[doc = $doc:literal])*
            $name:ident: $ty:ty {
                $(given: $given:ty,)?
                default: $default:expr,
                $(env: $env:literal $(or $fallback:literal)?, rule: $rule:expr,)?
                $(build: $build:path,)?
                $(get: $get_ty:ty = $get:path,)?
                $(set: $set_ty:ty = $set:path,)?
                $(set_by: $set_by:ident,)?
                $(debug: $debug:path,)?
                $(row: $label:literal $(, vars: $vars:literal)? $(, default: $shown:literal)?
                    $(, note: $note:literal)?,)?
            }
        )*
    ) => {
        $(#[$config_attr])*
        #[derive(Clone)]
        pub struct Config {
            $($name: $ty,)*
        }

        impl Config {
            $(setting!(@get $name: $ty, [$($doc)*], [$($env $($fallback)?)?],
                [$($get_ty = $get)?], [$($set_by)?]);)*
        }

        $(#[$builder_attr])*
        #[derive(Clone)]
        pub struct ConfigBuilder {
            $($name: Given<setting!(@or $ty $(, $given)?)>,)*
        }

        impl Default for ConfigBuilder {
            fn default() -> Self {
                ConfigBuilder {
                    $($name: Given::new($default),)*
                }
            }
        }

        impl ConfigBuilder {
            $(setting!(@set $name: $ty, [$($doc)*], [$($env $($fallback)?)?],
                [$($set_ty = $set)?], [$($set_by)?]);)*

            fn read(get: &dyn Fn(&str) -> Option<String>) -> Result<ConfigBuilder, ConfigError> {
                let mut builder = ConfigBuilder::default();
                $($(
                    if let Some((var, raw)) = parse::first_set(get, &[$env $(, $fallback)?]) {
                        builder.$name = Given::read(Parse::parse(&$rule, var, &raw)?, var, raw);
                    }
                )?)*
                Ok(builder)
            }

            fn validated(builder: &ConfigBuilder) -> Result<Config, ConfigError> {
                let config = Config {
                    $($name: setting!(@build builder.$name, [$($env)?], [$($rule)?],
                        [$($build)?]),)*
                };
                validate::across_settings(config)
            }
        }

        impl fmt::Debug for Config {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct("Config")
                    $(.field(stringify!($name), &setting!(@apply &self.$name $(, $debug)?)))*
                    .finish()
            }
        }

        impl fmt::Debug for ConfigBuilder {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct("ConfigBuilder")
                    $(.field(stringify!($name), &setting!(@apply &self.$name.value $(, $debug)?)))*
                    .finish()
            }
        }

        /// The settings table of the module docs and of the README's Configuration section,
        /// rendered from the declarations; a test keeps both equal to it.
        #[doc(hidden)]
        pub fn documented_table() -> String {
            let defaults = ConfigBuilder::default();
            let mut table =
                String::from("| setting | environment variable | default |\n|---|---|---|\n");
            $(setting!(@row table, defaults.$name.value, [$($env $($fallback)?)?],
                [$($label $(, vars: $vars)? $(, default: $shown)? $(, note: $note)?)?]);)*
            table
        }
    };
}

/// The parts of one entry of [`settings!`] that depend on which clauses it has.
macro_rules! setting {
    (@or $ty:ty) => { $ty };
    (@or $ty:ty, $instead:ty) => { $instead };

    (@get $name:ident: $ty:ty, [$($doc:literal)*], [$($env:tt)*], [$($get:tt)*], []) => {
        setting!(@get $name: $ty, [$($doc)*], [$($env)*], [$($get)*], [$name]);
    };
    (@get $name:ident: $ty:ty, [$($doc:literal)*], [$($env:literal $($fallback:literal)?)?],
        [$($get_ty:ty = $get:path)?], [$setter:ident]) => {
        $(#[doc = $doc])*
        #[doc = ""]
        #[doc = concat!(
            "Set with [`ConfigBuilder::", stringify!($setter), "`]",
            $(" or `", $env, "`", $(" (else `", $fallback, "`)",)?)?
            "."
        )]
        pub fn $name(&self) -> setting!(@or $ty $(, $get_ty)?) {
            setting!(@view self.$name $(, $get)?)
        }
    };

    (@set $name:ident: $ty:ty, [$($doc:literal)*], [$($env:tt)*], [], [$by:ident]) => {};
    (@set $name:ident: $ty:ty, [$($doc:literal)*], [$($env:literal $($fallback:literal)?)?],
        [$($set_ty:ty = $set:path)?], []) => {
        #[doc = concat!("Sets [`Config::", stringify!($name), "`].")]
        #[doc = ""]
        $(#[doc = $doc])*
        $(
            #[doc = ""]
            #[doc = concat!(
                "[`ConfigBuilder::from_env`] reads it from `", $env, "`",
                $(" (else `", $fallback, "`)",)?
                "."
            )]
        )?
        pub fn $name(mut self, $name: setting!(@or $ty $(, $set_ty)?)) -> Self {
            self.$name = Given::new(setting!(@apply $name $(, $set)?));
            self
        }
    };

    (@view $field:expr) => { $field };
    (@view $field:expr, $get:path) => { $get(&$field) };

    (@build $builder:ident.$name:ident, [$($env:literal)?], [$($rule:expr)?], [$build:path]) => {
        $build($builder)?
    };
    (@build $builder:ident.$name:ident, [$env:literal], [$rule:expr], []) => {
        Check::check(&$rule, $builder.$name.var($env), &$builder.$name)?
    };
    (@build $builder:ident.$name:ident, [], [], []) => {
        $builder.$name.value.clone()
    };

    (@apply $value:expr) => { $value };
    (@apply $value:expr, $function:path) => { $function($value) };

    (@row $table:ident, $default:expr, [$($env:tt)*], []) => {};
    (@row $table:ident, $default:expr, [$($env:tt)*],
        [$label:literal $(, vars: $vars:literal)? $(, default: $shown:literal)?
            $(, note: $note:literal)?]) => {
        $table.push_str(&format!(
            "| {} | {} | {}{} |\n",
            $label,
            setting!(@vars [$($vars)?] [$($env)*]),
            setting!(@default [$($shown)?] $default),
            concat!($(" ", $note)?),
        ));
    };

    (@vars [$vars:literal] [$($env:tt)*]) => { $vars };
    (@vars [] [$env:literal]) => { concat!("`", $env, "`") };
    (@vars [] [$env:literal $fallback:literal]) => {
        concat!("`", $env, "`, falling back to `", $fallback, "`")
    };

    (@default [$shown:literal] $default:expr) => { $shown };
    (@default [] $default:expr) => { Documented::documented(&$default) };
}

// The one place a setting is written. The tables in the module docs and in the README are
// copies of `documented_table()` (so both are readable where they are), checked by a test.
settings! {
    /// The validated settings of the SDK.
    ///
    /// Build one with [`Config::from_env`], [`Config::builder`] or [`ConfigBuilder::from_env`]
    /// (environment first, then overrides in code). `Debug` output redacts the secret key.
    pub struct Config;

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
    pub struct ConfigBuilder;

    /// The project's public key (`pk-lf-...`, from the Langfuse project settings), if set.
    public_key: Option<String> {
        default: None,
        env: "LANGFUSE_PUBLIC_KEY", rule: Text,
        build: validate::key_pair,
        get: Option<&str> = Option::as_deref,
        set_by: keys,
        row: "public / secret key", vars: "`LANGFUSE_PUBLIC_KEY` / `LANGFUSE_SECRET_KEY`",
            default: "none",
    }

    /// The project's secret key (`sk-lf-...`), if set. Never log it.
    secret_key: Option<String> {
        default: None,
        env: "LANGFUSE_SECRET_KEY", rule: Text,
        get: Option<&str> = Option::as_deref,
        set_by: keys,
        debug: redacted,
    }

    /// The Langfuse server, e.g. `https://us.cloud.langfuse.com`.
    ///
    /// Normalized so that its path ends in exactly one `/` (`https://host/` or
    /// `https://host/langfuse/`, whatever number of trailing slashes was given), so API paths
    /// are joined as *relative* paths: `base_url().join("api/public/ingestion")`, or use
    /// [`Config::endpoint`], which also accepts a leading `/`. Don't `format!` a `/` after it.
    base_url: Url {
        given: String,
        default: "https://cloud.langfuse.com".to_owned(),
        env: "LANGFUSE_BASE_URL" or "LANGFUSE_HOST", rule: BaseUrl,
        get: &Url = std::convert::identity,
        set: impl Into<String> = Into::into,
        debug: without_userinfo,
        row: "base URL",
    }

    /// Whether tracing is on. When off, nothing is recorded or sent, and the keys may be
    /// missing.
    enabled: bool {
        default: true,
        env: "LANGFUSE_TRACING_ENABLED", rule: Flag,
        row: "tracing on/off",
    }

    /// The fraction of traces kept, from 0 to 1.
    sample_rate: f64 {
        default: 1.0,
        env: "LANGFUSE_SAMPLE_RATE", rule: Number(0.0..=1.0, "a number from 0 to 1"),
        row: "sample rate (0..=1)",
    }

    /// The environment traces are tagged with, if set: lowercase letters, digits, `-`, `_`, at
    /// most 40 characters, not starting with `langfuse`. Empty unsets it.
    environment: Option<String> {
        default: None,
        env: "LANGFUSE_TRACING_ENVIRONMENT", rule: Environment,
        get: Option<&str> = Option::as_deref,
        set: impl Into<String> = some,
        row: "environment", default: "none",
    }

    /// The release traces are tagged with, if set. Empty unsets it.
    release: Option<String> {
        default: None,
        env: "LANGFUSE_RELEASE", rule: Text,
        get: Option<&str> = Option::as_deref,
        set: impl Into<String> = some,
        row: "release", default: "none",
    }

    /// Whether the SDK logs what it does.
    debug: bool {
        default: false,
        env: "LANGFUSE_DEBUG", rule: Flag,
        row: "debug logging",
    }

    /// How many pending observations trigger a send, at least 1.
    flush_at: usize {
        default: 512,
        env: "LANGFUSE_FLUSH_AT", rule: Number(1.., "a whole number of at least 1"),
        row: "batch size",
    }

    /// The longest time pending observations wait before a send, more than zero.
    flush_interval: Duration {
        default: Duration::from_secs(5),
        env: "LANGFUSE_FLUSH_INTERVAL", rule: Seconds,
        row: "flush interval (seconds)",
    }

    /// The timeout of one HTTP request, more than zero.
    timeout: Duration {
        default: Duration::from_secs(5),
        env: "LANGFUSE_TIMEOUT", rule: Seconds,
        row: "HTTP request timeout (seconds)",
    }

    /// Whether `#[observe]` records inputs and outputs by default.
    capture_io: bool {
        default: true,
        env: "LANGFUSE_OBSERVE_DECORATOR_IO_CAPTURE_ENABLED", rule: Flag,
        row: "capture inputs/outputs",
    }

    /// Where observations go: by default OTLP when both keys are set, else the console.
    /// [`Otlp`](ExporterKind::Otlp) and [`Ingestion`](ExporterKind::Ingestion) need both keys.
    exporter: ExporterKind {
        given: Option<ExporterKind>,
        default: None,
        env: "LANGFUSE_EXPORTER", rule: Exporter,
        build: validate::exporter,
        set: ExporterKind = Some,
        row: "exporter (`otlp`, `ingestion`, `console`)",
            default: "`otlp` with keys, else `console`",
    }

    /// The file the console exporter appends JSON lines to instead of printing a tree on
    /// stderr, if set. An empty path unsets it.
    console_file: Option<PathBuf> {
        default: None,
        env: "LANGFUSE_CONSOLE_FILE", rule: Text,
        get: Option<&Path> = Option::as_deref,
        set: impl Into<PathBuf> = some,
        row: "console JSON-lines file", default: "none (tree on stderr)",
    }

    /// The most observations waiting to be sent, at least 1; more are dropped and counted.
    max_queue_items: usize {
        default: 100_000,
        env: "LANGFUSE_MAX_QUEUE_ITEMS", rule: Number(1.., "a whole number of at least 1"),
        row: "queue bound (items)",
    }

    /// The most bytes of observations waiting to be sent, at least 1024; more are dropped and
    /// counted.
    max_queue_bytes: usize {
        default: 64 * 1024 * 1024,
        env: "LANGFUSE_MAX_QUEUE_BYTES",
        rule: Number(1024.., "a whole number of bytes of at least 1024"),
        row: "queue bound (bytes)", note: "(64 MiB)",
    }

    /// Whether the end of an outermost observation flushes, so short programs deliver
    /// everything without calling flush.
    flush_on_root: bool {
        default: true,
        env: "LANGFUSE_FLUSH_ON_ROOT", rule: Flag,
        row: "flush when the outermost observation ends",
    }

    /// The deadline of a flush or shutdown, more than zero.
    flush_timeout: Duration {
        default: Duration::from_secs(10),
        env: "LANGFUSE_FLUSH_TIMEOUT", rule: Seconds,
        row: "flush/shutdown deadline (seconds), also at process exit",
    }

    /// The longest the end of an outermost observation waits for its records to be delivered,
    /// more than zero and at most [`flush_timeout`](Config::flush_timeout). A short wait keeps
    /// a slow or failing server from slowing the program down; what is not delivered by then
    /// stays queued.
    root_flush_timeout: Duration {
        default: Duration::from_secs(1),
        env: "LANGFUSE_ROOT_FLUSH_TIMEOUT", rule: Seconds,
        row: "longest wait at the end of the outermost observation (seconds)",
    }

    /// Whether what is still pending is delivered when the process exits, within
    /// [`flush_timeout`](Config::flush_timeout).
    flush_at_exit: bool {
        default: true,
        env: "LANGFUSE_FLUSH_AT_EXIT", rule: Flag,
        row: "deliver what is pending when the process exits",
    }

    /// How many times a failed batch is retried; 0 disables retries.
    max_retries: u32 {
        default: 5,
        env: "LANGFUSE_MAX_RETRIES",
        rule: Number(0.., "a whole number of at least 0 (0 disables retries)"),
        row: "retries per batch",
    }

    /// The delay before the first retry, doubled (with jitter) for each next one; more than
    /// zero.
    retry_backoff: Duration {
        default: Duration::from_millis(500),
        env: "LANGFUSE_RETRY_BACKOFF", rule: Seconds,
        row: "first retry delay (seconds, doubling with jitter)",
    }

    /// How long a fetched prompt is served from the client's cache before it is refreshed in
    /// the background (the stale prompt is still served meanwhile); zero turns the cache off.
    prompt_cache_ttl: Duration {
        default: Duration::from_secs(60),
        env: "LANGFUSE_PROMPT_CACHE_DEFAULT_TTL_SECONDS", rule: SecondsOrOff,
        row: "prompt cache TTL (seconds; `0` turns the cache off)",
    }

    /// Whether OTLP request bodies are gzip-compressed (ingestion requests never are: that
    /// route does not undo gzip).
    gzip: bool {
        default: true,
        env: "LANGFUSE_GZIP", rule: Flag,
        row: "gzip OTLP request bodies (the ingestion route is never compressed)",
    }

    /// The OpenTelemetry `service.name` sent with every export, which Langfuse shows in each
    /// observation's metadata: `OTEL_SERVICE_NAME`, else `service.name` in
    /// `OTEL_RESOURCE_ATTRIBUTES`, else `unknown_service:<executable>`. Empty unsets it.
    service_name: String {
        given: Option<String>,
        default: None,
        env: "OTEL_SERVICE_NAME", rule: Text,
        build: validate::service_name,
        get: &str = String::as_str,
        set: impl Into<String> = some,
        row: "OpenTelemetry `service.name`",
            vars: "`OTEL_SERVICE_NAME`, then `service.name` in `OTEL_RESOURCE_ATTRIBUTES`",
            default: "`unknown_service:<executable>`",
    }

    /// The other resource attributes sent with every OTLP export, from
    /// `OTEL_RESOURCE_ATTRIBUTES` and [`ConfigBuilder::resource_attribute`], in that order.
    resource_attributes: Vec<(String, String)> {
        default: Vec::new(),
        env: "OTEL_RESOURCE_ATTRIBUTES", rule: ResourceAttributes,
        build: validate::resource_attributes,
        get: &[(String, String)] = Vec::as_slice,
        set_by: resource_attribute,
        row: "other resource attributes (`k=v,k2=v2`, percent-encoded)", default: "none",
    }

    /// The function that rewrites input, output and metadata values (of observations and
    /// traces) before they leave the process, if any.
    mask: Option<Mask> {
        default: None,
        get: Option<&Mask> = Option::as_ref,
        set_by: mask,
        debug: opaque,
        row: "mask values before they leave the process",
            vars: "`Config::builder().mask(…)` (code only)", default: "none",
    }
}

/// What the setters of optional settings store.
fn some<T>(value: impl Into<T>) -> Option<T> {
    Some(value.into())
}

/// Shows `"<redacted>"` in place of a secret.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

fn redacted(secret: &Option<String>) -> Option<Redacted> {
    secret.as_ref().map(|_| Redacted)
}

/// A URL set in code may carry credentials in its userinfo or query until `build` rejects it.
fn without_userinfo(url: &impl AsRef<str>) -> String {
    crate::diagnostics::redact_url(url.as_ref())
}

fn opaque(mask: &Option<Mask>) -> Option<&'static str> {
    mask.as_ref().map(|_| "<fn>")
}

/// How a default is written in the settings table: as the variable takes it.
trait Documented {
    fn documented(&self) -> String;
}

macro_rules! documented_as_displayed {
    ($($ty:ty),*) => {$(
        impl Documented for $ty {
            fn documented(&self) -> String {
                format!("`{self}`")
            }
        }
    )*};
}

documented_as_displayed!(bool, usize, u32, String);

/// `1.0`, not `1`, so a rate reads as a fraction.
impl Documented for f64 {
    fn documented(&self) -> String {
        format!("`{self:?}`")
    }
}

impl Documented for Duration {
    fn documented(&self) -> String {
        format!("`{}`", self.as_secs_f64())
    }
}
