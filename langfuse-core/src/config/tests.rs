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

/// The table's lines in `text`: the first run of lines starting with `|` after `heading`, with
/// `prefix` (a doc comment's `//! `) removed.
fn table_after(text: &str, heading: &str, prefix: &str) -> String {
    let (_, after) = text.split_once(heading).expect(heading);
    after
        .lines()
        .filter_map(|line| line.strip_prefix(prefix))
        .skip_while(|line| !line.starts_with('|'))
        .take_while(|line| line.starts_with('|'))
        .map(|line| format!("{line}\n"))
        .collect()
}

#[test]
fn readme_and_module_docs_show_the_documented_table() {
    let table = documented_table();
    let readme = include_str!("../../../README.md");
    assert_eq!(
        table_after(readme, "\n## Configuration\n", ""),
        table,
        "README's Configuration table differs from documented_table(), which is right"
    );
    assert_eq!(
        table_after(include_str!("mod.rs"), "//! Two steps", "//! "),
        table,
        "the module docs' table differs from documented_table(), which is right"
    );
}

#[test]
fn the_prompt_cache_ttl_is_sixty_seconds_and_zero_turns_the_cache_off() {
    assert_eq!(config(&[]).prompt_cache_ttl(), Duration::from_secs(60));
    let var = "LANGFUSE_PROMPT_CACHE_DEFAULT_TTL_SECONDS";
    assert_eq!(config(&[(var, "0")]).prompt_cache_ttl(), Duration::ZERO);
    assert_eq!(
        config(&[(var, "2.5")]).prompt_cache_ttl(),
        Duration::from_millis(2500)
    );
    assert_invalid(&error(&[(var, "-1")]), var, "-1", "at least 0");
    assert_invalid(&error(&[(var, "soon")]), var, "soon", "0 turns it off");
    let set_in_code = Config::builder()
        .prompt_cache_ttl(Duration::ZERO)
        .build()
        .unwrap();
    assert_eq!(set_in_code.prompt_cache_ttl(), Duration::ZERO);
}
