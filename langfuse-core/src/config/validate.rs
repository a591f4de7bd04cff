//! The checks of [`ConfigBuilder::build`](super::ConfigBuilder::build): ranges, the URL, the
//! environment name, the key pair, and the settings that depend on others.

use std::ffi::OsStr;
use std::fmt::Display;
use std::ops::RangeBounds;
use std::time::Duration;

use reqwest::Url;

use super::parse::{
    BaseUrl, Environment, Flag, Given, Number, Seconds, SecondsOrOff, Text, EXPECT_SECONDS,
};
use super::{Config, ConfigBuilder, ConfigError, ExporterKind};

const MAX_ENVIRONMENT_LEN: usize = 40;

const EXPECT_ENVIRONMENT: &str = "at most 40 characters of lowercase letters, digits, '-' or '_', \
     not starting with \"langfuse\" (e.g. production)";
const EXPECT_URL: &str = "an http:// or https:// URL with a host and no credentials, query or \
     fragment (e.g. https://cloud.langfuse.com)";
const EXPECT_PUBLIC_KEY: &str = "the public key from the Langfuse project settings (pk-lf-...): \
     printable ASCII without spaces or ':'";

/// Which values of a setting `build` accepts, and what [`Config`] keeps of them.
pub(super) trait Check<T> {
    type Out;
    fn check(&self, var: &'static str, given: &Given<T>) -> Result<Self::Out, ConfigError>;
}

impl Check<bool> for Flag {
    type Out = bool;
    fn check(&self, _var: &'static str, given: &Given<bool>) -> Result<bool, ConfigError> {
        Ok(given.value)
    }
}

impl<T, R> Check<T> for Number<R>
where
    T: PartialOrd + Display + Clone,
    R: RangeBounds<T>,
{
    type Out = T;
    fn check(&self, var: &'static str, given: &Given<T>) -> Result<T, ConfigError> {
        if !self.0.contains(&given.value) {
            return Err(ConfigError::invalid(var, given.shown(T::to_string), self.1));
        }
        Ok(given.value.clone())
    }
}

impl Check<Duration> for Seconds {
    type Out = Duration;
    fn check(&self, var: &'static str, given: &Given<Duration>) -> Result<Duration, ConfigError> {
        if given.value.is_zero() {
            let shown = given.shown(|d| d.as_secs_f64().to_string());
            return Err(ConfigError::invalid(var, shown, EXPECT_SECONDS));
        }
        Ok(given.value)
    }
}

impl Check<Duration> for SecondsOrOff {
    type Out = Duration;
    fn check(&self, _var: &'static str, given: &Given<Duration>) -> Result<Duration, ConfigError> {
        Ok(given.value)
    }
}

/// An empty text set in code unsets the setting, like an empty variable.
impl<T: AsRef<OsStr> + Clone> Check<Option<T>> for Text {
    type Out = Option<T>;
    fn check(
        &self,
        _var: &'static str,
        given: &Given<Option<T>>,
    ) -> Result<Self::Out, ConfigError> {
        Ok(given.value.clone().filter(|text| !text.as_ref().is_empty()))
    }
}

impl Check<Option<String>> for Environment {
    type Out = Option<String>;
    fn check(
        &self,
        var: &'static str,
        given: &Given<Option<String>>,
    ) -> Result<Option<String>, ConfigError> {
        let environment = Text.check(var, given)?;
        match environment {
            Some(env) if !is_valid_environment(&env) => {
                Err(ConfigError::invalid(var, env, EXPECT_ENVIRONMENT))
            }
            valid => Ok(valid),
        }
    }
}

/// http(s) with a host, no credentials, query or fragment, and a path ending in exactly one
/// `/` so relative API paths join under it.
impl Check<String> for BaseUrl {
    type Out = Url;
    fn check(&self, var: &'static str, given: &Given<String>) -> Result<Url, ConfigError> {
        let text = &given.value;
        let invalid =
            || ConfigError::invalid(var, crate::diagnostics::redact_url(text), EXPECT_URL);
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
}

fn key(given: &Given<Option<String>>) -> Option<&str> {
    given.value.as_deref().filter(|key| !key.is_empty())
}

/// Checks both keys and gives the public one. Malformed keys are always errors; a missing half
/// of the pair only matters when tracing is enabled. Secret values are never put into an
/// error.
pub(super) fn key_pair(builder: &ConfigBuilder) -> Result<Option<String>, ConfigError> {
    let public = key(&builder.public_key);
    let secret = key(&builder.secret_key);
    if public.is_some_and(|key| key.starts_with("sk-lf-"))
        || secret.is_some_and(|key| key.starts_with("pk-lf-"))
    {
        return Err(ConfigError::KeysSwapped);
    }
    let printable = |key: &str| key.chars().all(|c| c.is_ascii_graphic());
    if let Some(key) = public {
        if !printable(key) || key.contains(':') {
            return Err(ConfigError::invalid(
                "LANGFUSE_PUBLIC_KEY",
                key,
                EXPECT_PUBLIC_KEY,
            ));
        }
    }
    if secret.is_some_and(|key| !printable(key)) {
        return Err(ConfigError::InvalidSecretKey);
    }
    match (public, secret) {
        (Some(_), None) if builder.enabled.value => Err(ConfigError::MissingSecretKey),
        (None, Some(_)) if builder.enabled.value => Err(ConfigError::MissingPublicKey),
        _ => Ok(public.map(str::to_owned)),
    }
}

/// Sending needs keys, so without them the default is the console.
pub(super) fn exporter(builder: &ConfigBuilder) -> Result<ExporterKind, ConfigError> {
    let has_keys = key(&builder.public_key).is_some() && key(&builder.secret_key).is_some();
    Ok(match builder.exporter.value {
        Some(exporter) => exporter,
        None if has_keys => ExporterKind::Otlp,
        None => ExporterKind::Console,
    })
}

/// `OTEL_SERVICE_NAME`, else `service.name` among the resource attributes, else
/// OpenTelemetry's name for a service that did not name itself.
pub(super) fn service_name(builder: &ConfigBuilder) -> Result<String, ConfigError> {
    let from_attributes = || {
        builder
            .resource_attributes
            .value
            .iter()
            .find(|(key, _)| key == "service.name")
            .map(|(_, value)| value.clone())
    };
    Ok(builder
        .service_name
        .value
        .clone()
        .filter(|name| !name.is_empty())
        .or_else(from_attributes)
        .unwrap_or_else(unknown_service))
}

/// Without `service.name`, which [`service_name`] already took.
pub(super) fn resource_attributes(
    builder: &ConfigBuilder,
) -> Result<Vec<(String, String)>, ConfigError> {
    let mut attributes = builder.resource_attributes.value.clone();
    attributes.retain(|(key, _)| key != "service.name");
    Ok(attributes)
}

/// The rules between settings, once each is valid on its own.
pub(super) fn across_settings(mut config: Config) -> Result<Config, ConfigError> {
    let has_keys = config.public_key.is_some() && config.secret_key.is_some();
    if config.exporter.needs_keys() && !has_keys && config.enabled {
        return Err(ConfigError::KeysRequired {
            exporter: config.exporter,
        });
    }
    config.root_flush_timeout = config.root_flush_timeout.min(config.flush_timeout);
    Ok(config)
}

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
