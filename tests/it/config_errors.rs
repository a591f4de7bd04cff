//! Configuration errors reach the user through the facade, each naming the variable to fix.

use std::collections::HashMap;

use langfuse_observe::{config::ConfigError, Config};

fn from(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::from_lookup(|name| vars.get(name).cloned())
}

#[test]
fn each_bad_value_is_an_error_naming_its_variable() {
    let keys = [
        ("LANGFUSE_PUBLIC_KEY", "pk-lf-1"),
        ("LANGFUSE_SECRET_KEY", "sk-lf-1"),
    ];
    let cases: [(&str, &str, &str); 5] = [
        ("LANGFUSE_SAMPLE_RATE", "1.5", "LANGFUSE_SAMPLE_RATE"),
        (
            "LANGFUSE_TRACING_ENVIRONMENT",
            "langfuse-x",
            "LANGFUSE_TRACING_ENVIRONMENT",
        ),
        ("LANGFUSE_FLUSH_AT", "abc", "LANGFUSE_FLUSH_AT"),
        ("LANGFUSE_BASE_URL", "not a url", "LANGFUSE_BASE_URL"),
        ("LANGFUSE_HOST", "not a url", "LANGFUSE_HOST"),
    ];
    for (var, value, named) in cases {
        let mut vars = keys.to_vec();
        vars.push((var, value));
        let error = from(&vars).expect_err(var);
        let message = error.to_string();
        assert!(message.contains(named), "{var}={value}: {message}");
        assert!(
            message.contains(value),
            "{var}={value} shows the value: {message}"
        );
        assert!(!message.contains("sk-lf-1"), "never the secret: {message}");
        assert!(
            matches!(&error, ConfigError::Invalid { var: v, .. } if *v == named),
            "{error:?}"
        );
    }
}

#[test]
fn a_public_key_without_a_secret_key_is_an_error_naming_both() {
    let error = from(&[("LANGFUSE_PUBLIC_KEY", "pk-lf-1")]).unwrap_err();
    assert!(matches!(error, ConfigError::MissingSecretKey), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("LANGFUSE_SECRET_KEY"), "{message}");
    assert!(message.contains("LANGFUSE_PUBLIC_KEY"), "{message}");

    let error = from(&[("LANGFUSE_SECRET_KEY", "sk-lf-1")]).unwrap_err();
    assert!(matches!(error, ConfigError::MissingPublicKey), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("LANGFUSE_PUBLIC_KEY"), "{message}");
    assert!(!message.contains("sk-lf-1"), "never the secret: {message}");
}

#[test]
fn the_builder_reports_the_same_variable_names() {
    let error = Config::builder().sample_rate(1.5).build().unwrap_err();
    assert!(
        error.to_string().contains("LANGFUSE_SAMPLE_RATE"),
        "{error}"
    );
    let error = Config::builder()
        .environment("langfuse-x")
        .build()
        .unwrap_err();
    assert!(
        error.to_string().contains("LANGFUSE_TRACING_ENVIRONMENT"),
        "{error}"
    );
    let error = Config::builder().base_url("not a url").build().unwrap_err();
    assert!(error.to_string().contains("LANGFUSE_BASE_URL"), "{error}");
}

#[test]
fn good_values_are_accepted() {
    let config = from(&[
        ("LANGFUSE_PUBLIC_KEY", "pk-lf-1"),
        ("LANGFUSE_SECRET_KEY", "sk-lf-1"),
        ("LANGFUSE_SAMPLE_RATE", "0.5"),
        ("LANGFUSE_TRACING_ENVIRONMENT", "staging"),
        ("LANGFUSE_FLUSH_AT", "10"),
        ("LANGFUSE_BASE_URL", "http://127.0.0.1:3000"),
    ])
    .unwrap();
    assert_eq!(config.sample_rate(), 0.5);
    assert_eq!(config.environment(), Some("staging"));
    assert_eq!(config.flush_at(), 10);
    assert_eq!(config.base_url().as_str(), "http://127.0.0.1:3000/");
}
