//! Property tests of everything that parses outside input: trace and observation ids,
//! `traceparent` headers and `LANGFUSE_*` settings. Arbitrary strings never panic, valid
//! values round-trip, and errors say what is wrong without echoing the secret key.

use std::collections::HashMap;

use langfuse_observe::{
    config::ConfigError,
    context::TraceContext,
    trace::{ObservationId, TraceId},
    Config,
};
use proptest::prelude::*;

const VARS: &[&str] = &[
    "LANGFUSE_PUBLIC_KEY",
    "LANGFUSE_SECRET_KEY",
    "LANGFUSE_BASE_URL",
    "LANGFUSE_HOST",
    "LANGFUSE_TRACING_ENABLED",
    "LANGFUSE_SAMPLE_RATE",
    "LANGFUSE_TRACING_ENVIRONMENT",
    "LANGFUSE_RELEASE",
    "LANGFUSE_DEBUG",
    "LANGFUSE_FLUSH_AT",
    "LANGFUSE_FLUSH_INTERVAL",
    "LANGFUSE_TIMEOUT",
    "LANGFUSE_OBSERVE_DECORATOR_IO_CAPTURE_ENABLED",
    "LANGFUSE_EXPORTER",
    "LANGFUSE_CONSOLE_FILE",
    "LANGFUSE_MAX_QUEUE_ITEMS",
    "LANGFUSE_MAX_QUEUE_BYTES",
    "LANGFUSE_FLUSH_ON_ROOT",
    "LANGFUSE_FLUSH_TIMEOUT",
    "LANGFUSE_MAX_RETRIES",
    "LANGFUSE_RETRY_BACKOFF",
    "LANGFUSE_GZIP",
];

fn hex(len: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[0-9a-f]{{{len}}}")).unwrap()
}

/// Strings near the valid forms as well as arbitrary ones.
fn id_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9a-fA-F-]{0,40}",
        hex(32),
        hex(16),
        "[0-9a-f]{31}[^0-9a-f]",
    ]
}

/// A value for a setting: arbitrary text, numbers, booleans, URLs, keys.
fn setting_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~]{0,20}",
        "-?[0-9]{0,12}(\\.[0-9]{0,6})?",
        Just("NaN".to_owned()),
        Just("inf".to_owned()),
        "(true|false|yes|no|on|off|1|0|TRUE|maybe)",
        "(otlp|ingestion|console|other)",
        "(https?|ftp)://[a-z:@/?.#0-9-]{0,30}",
        "(pk|sk)-lf-[ -~]{0,12}",
    ]
}

fn settings() -> impl Strategy<Value = HashMap<&'static str, String>> {
    proptest::collection::vec(
        (proptest::sample::select(VARS), setting_value()),
        0..VARS.len(),
    )
    .prop_map(|pairs| pairs.into_iter().collect())
}

proptest! {
    #[test]
    fn id_parsing_never_panics_and_errors_say_what_is_wrong(text in id_like()) {
        match TraceId::parse(&text) {
            Ok(id) => prop_assert_eq!(id.to_string(), text.clone()),
            Err(error) => {
                let message = error.to_string();
                prop_assert!(message.starts_with("invalid trace id"), "{}", message);
                prop_assert!(
                    message.contains("32") || message.contains("position")
                        || message.contains("zeros"),
                    "{}", message
                );
            }
        }
        match ObservationId::parse(&text) {
            Ok(id) => prop_assert_eq!(id.to_string(), text.clone()),
            Err(error) => {
                let message = error.to_string();
                prop_assert!(message.starts_with("invalid observation id"), "{}", message);
                prop_assert!(
                    message.contains("16") || message.contains("position")
                        || message.contains("zeros"),
                    "{}", message
                );
            }
        }
    }

    #[test]
    fn valid_ids_round_trip(trace in hex(32), observation in hex(16)) {
        prop_assume!(trace.bytes().any(|b| b != b'0'));
        prop_assume!(observation.bytes().any(|b| b != b'0'));
        let trace_id = TraceId::parse(&trace).unwrap();
        prop_assert_eq!(trace_id.to_string(), trace.clone());
        prop_assert_eq!(TraceId::from_bytes(trace_id.to_bytes()).unwrap(), trace_id);
        let observation_id = ObservationId::parse(&observation).unwrap();
        prop_assert_eq!(observation_id.to_string(), observation.clone());
        prop_assert_eq!(
            ObservationId::from_bytes(observation_id.to_bytes()).unwrap(),
            observation_id
        );
        let context = TraceContext::new(&trace).unwrap().with_parent(&observation).unwrap();
        prop_assert_eq!(context.trace_id(), trace_id);
        prop_assert_eq!(context.parent_id(), Some(observation_id));
    }

    #[test]
    fn uppercase_ids_are_rejected_with_a_hint(trace in "[0-9a-f]{31}[A-F]") {
        let message = TraceId::parse(&trace).unwrap_err().to_string();
        prop_assert!(message.contains("lowercase"), "{}", message);
    }

    #[test]
    fn traceparent_parsing_never_panics(
        text in prop_oneof![
            any::<String>(),
            "[0-9a-f-]{0,60}",
            "00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-zA-Z]{0,3}",
            "[0-9]{2}-[0-9a-fA-F]{30,33}-[0-9a-fA-F]{15,17}-[0-9a-f]{2}(-.*)?",
        ]
    ) {
        if let Err(error) = TraceContext::from_traceparent(&text) {
            let message = error.to_string();
            prop_assert!(message.starts_with("invalid traceparent"), "{}", message);
            prop_assert!(message.len() < 1_000, "the echo of the input is bounded");
        }
    }

    #[test]
    fn valid_traceparents_round_trip(
        trace in hex(32),
        parent in hex(16),
        flags in hex(2),
    ) {
        prop_assume!(trace.bytes().any(|b| b != b'0'));
        prop_assume!(parent.bytes().any(|b| b != b'0'));
        let header = format!("00-{trace}-{parent}-{flags}");
        let context = TraceContext::from_traceparent(&header).unwrap();
        prop_assert_eq!(context.trace_id().to_string(), trace);
        prop_assert_eq!(context.parent_id().unwrap().to_string(), parent);
        let padded = format!("  {header}\n");
        prop_assert_eq!(TraceContext::from_traceparent(&padded).unwrap(), context);
    }

    #[test]
    fn config_from_lookup_never_panics_nor_leaks_the_secret(
        vars in settings(),
        secret in "sk-lf-[A-Za-z0-9]{8,16}",
        secret_everywhere in any::<bool>(),
    ) {
        let mut vars = vars;
        vars.insert("LANGFUSE_SECRET_KEY", secret.clone());
        if secret_everywhere {
            // A secret pasted into other variables must not be echoed back either.
            for var in ["LANGFUSE_SAMPLE_RATE", "LANGFUSE_BASE_URL", "LANGFUSE_FLUSH_AT"] {
                vars.insert(var, format!("x{secret}"));
            }
        }
        let result = Config::from_lookup(|name| vars.get(name).cloned());
        match result {
            Ok(config) => {
                let debug = format!("{config:?}");
                prop_assert!(!debug.contains(&secret), "Debug shows the secret: {}", debug);
            }
            Err(error) => {
                let message = error.to_string();
                let debug = format!("{error:?}");
                prop_assert!(message.contains("LANGFUSE_"), "{}", message);
                prop_assert!(!message.contains(&secret), "{}", message);
                prop_assert!(!debug.contains(&secret), "{}", debug);
            }
        }
    }

    #[test]
    fn config_errors_name_a_variable(vars in settings()) {
        if let Err(error) = Config::from_lookup(|name| vars.get(name).cloned()) {
            let message = error.to_string();
            prop_assert!(message.contains("LANGFUSE_"), "{}", message);
            // Only the echoed value can leak: the fixed text may contain any short word
            // (a secret key of "true" is in "expected true or false").
            if let (Some(secret), ConfigError::Invalid { value, .. }) =
                (vars.get("LANGFUSE_SECRET_KEY"), &error)
            {
                let secret = secret.trim();
                if !secret.is_empty() {
                    prop_assert!(!value.contains(secret), "{}", message);
                }
            }
        }
    }
}
