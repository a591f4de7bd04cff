//! Environment text to typed values: what [`ConfigBuilder::from_lookup`](super::ConfigBuilder)
//! does with each variable that is set.
//!
//! Only text that cannot become the setting's type is an error here. Whether a value is
//! acceptable is decided in `build` (`validate.rs`), so values set in code get the same checks.

use std::str::FromStr;
use std::time::Duration;

use super::{ConfigError, ExporterKind};

pub(super) const EXPECT_SECONDS: &str = "a positive number of seconds (e.g. 5 or 0.5)";
const EXPECT_SECONDS_OR_OFF: &str = "a number of seconds of at least 0 (e.g. 60; 0 turns it off)";
const EXPECT_BOOL: &str = "true or false (1/0, yes/no and on/off are accepted too)";
const EXPECT_EXPORTER: &str = "otlp, ingestion or console";
const EXPECT_RESOURCE_ATTRIBUTES: &str = "comma-separated key=value pairs with non-empty keys, \
     values percent-encoded (e.g. service.namespace=shop,deployment.environment.name=prod)";

/// A setting's value in the builder, with the variable and text it was read from (if any), so
/// errors quote what the user wrote (`"0.0"`, not `0`) under the variable they set
/// (`LANGFUSE_HOST`, not `LANGFUSE_BASE_URL`).
#[derive(Clone)]
pub(super) struct Given<T> {
    pub(super) value: T,
    read: Option<(&'static str, String)>,
}

impl<T> Given<T> {
    pub(super) fn new(value: T) -> Self {
        Given { value, read: None }
    }

    pub(super) fn read(value: T, var: &'static str, text: String) -> Self {
        Given {
            value,
            read: Some((var, text)),
        }
    }

    /// The variable errors name: the one read, else the setting's own (also for code values,
    /// since that is the name users know).
    pub(super) fn var(&self, declared: &'static str) -> &'static str {
        self.read.as_ref().map_or(declared, |(var, _)| var)
    }

    pub(super) fn shown(&self, format: impl Fn(&T) -> String) -> String {
        match &self.read {
            Some((_, text)) => text.clone(),
            None => format(&self.value),
        }
    }
}

/// How a setting's variable is read. `raw` is the value as set (never blank); errors quote it
/// untrimmed, so what is shown is what is in the environment.
pub(super) trait Parse<T> {
    fn parse(&self, var: &'static str, raw: &str) -> Result<T, ConfigError>;
}

/// The first of `vars` that is set, with its value.
pub(super) fn first_set(
    get: &dyn Fn(&str) -> Option<String>,
    vars: &[&'static str],
) -> Option<(&'static str, String)> {
    vars.iter().find_map(|&var| get(var).map(|raw| (var, raw)))
}

/// `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`, in any case.
pub(super) struct Flag;

/// A number in a range (`.0`); `.1` says which in words, for both the text that is not a
/// number and the number out of range.
pub(super) struct Number<R>(pub(super) R, pub(super) &'static str);

/// Seconds, fractions allowed, more than zero.
pub(super) struct Seconds;

/// Seconds, fractions allowed, zero included (it turns the feature off).
pub(super) struct SecondsOrOff;

/// Trimmed text; empty counts as unset.
pub(super) struct Text;

/// Text that must be a valid Langfuse environment name.
pub(super) struct Environment;

/// An http(s) URL of the Langfuse server.
pub(super) struct BaseUrl;

/// `otlp`, `ingestion` or `console`.
pub(super) struct Exporter;

/// `OTEL_RESOURCE_ATTRIBUTES`: `key=value` pairs separated by commas, values percent-encoded.
pub(super) struct ResourceAttributes;

impl Parse<bool> for Flag {
    fn parse(&self, var: &'static str, raw: &str) -> Result<bool, ConfigError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(ConfigError::invalid(var, raw, EXPECT_BOOL)),
        }
    }
}

impl<T: FromStr, R> Parse<T> for Number<R> {
    fn parse(&self, var: &'static str, raw: &str) -> Result<T, ConfigError> {
        raw.trim()
            .parse()
            .map_err(|_| ConfigError::invalid(var, raw, self.1))
    }
}

/// Negative, NaN or infinite values cannot become a `Duration` and are rejected here; zero is
/// converted, and rejected by `build` like a zero set in code.
impl Parse<Duration> for Seconds {
    fn parse(&self, var: &'static str, raw: &str) -> Result<Duration, ConfigError> {
        raw.trim()
            .parse::<f64>()
            .ok()
            .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
            .ok_or_else(|| ConfigError::invalid(var, raw, EXPECT_SECONDS))
    }
}

impl Parse<Duration> for SecondsOrOff {
    fn parse(&self, var: &'static str, raw: &str) -> Result<Duration, ConfigError> {
        Seconds
            .parse(var, raw)
            .map_err(|_| ConfigError::invalid(var, raw, EXPECT_SECONDS_OR_OFF))
    }
}

impl<T: From<String>> Parse<Option<T>> for Text {
    fn parse(&self, _var: &'static str, raw: &str) -> Result<Option<T>, ConfigError> {
        Ok(Some(T::from(raw.trim().to_owned())))
    }
}

impl Parse<Option<String>> for Environment {
    fn parse(&self, var: &'static str, raw: &str) -> Result<Option<String>, ConfigError> {
        Text.parse(var, raw)
    }
}

/// Kept as written: `build` trims and parses it, and an error shows the text as set.
impl Parse<String> for BaseUrl {
    fn parse(&self, _var: &'static str, raw: &str) -> Result<String, ConfigError> {
        Ok(raw.to_owned())
    }
}

impl Parse<Option<ExporterKind>> for Exporter {
    fn parse(&self, var: &'static str, raw: &str) -> Result<Option<ExporterKind>, ConfigError> {
        match raw.trim().to_ascii_lowercase().as_str() {
            "otlp" => Ok(Some(ExporterKind::Otlp)),
            "ingestion" => Ok(Some(ExporterKind::Ingestion)),
            "console" => Ok(Some(ExporterKind::Console)),
            _ => Err(ConfigError::invalid(var, raw, EXPECT_EXPORTER)),
        }
    }
}

impl Parse<Vec<(String, String)>> for ResourceAttributes {
    fn parse(&self, var: &'static str, raw: &str) -> Result<Vec<(String, String)>, ConfigError> {
        let invalid = || ConfigError::invalid(var, raw, EXPECT_RESOURCE_ATTRIBUTES);
        let mut attributes: Vec<(String, String)> = Vec::new();
        for pair in raw.split(',').filter(|pair| !pair.trim().is_empty()) {
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
}
