//! Keys never appear in logs, `Debug` output or error messages: a whole program run with
//! `LANGFUSE_DEBUG=true` and a wrong secret key (the server answers 401), or against a server
//! that is down, never prints the secret; neither do `Debug` of `Config`, `ConfigBuilder` and
//! `Langfuse`. A plain-http base URL that is not loopback draws a warning.

use std::process::Output;
use std::time::Duration;

use langfuse_observe::{config::ConfigBuilder, Config, Langfuse};
use langfuse_observe_testing::{Fault, Faults, TestServer};

use crate::support::example::{example_against, example_command, run_example};

/// A secret key the server does not accept, distinctive enough to find anywhere.
const WRONG_SECRET: &str = "sk-lf-wrong-0123456789-secret";

fn run(mut command: std::process::Command) -> Output {
    eprintln!("--- running {command:?}");
    let output = command.output().unwrap();
    eprintln!(
        "--- exited with {:?}\n--- stdout:\n{}--- stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[track_caller]
fn assert_secret_absent(output: &Output, secret: &str) {
    for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains(secret), "the secret key appears in {stream}");
    }
}

#[test]
fn a_rejected_secret_key_is_never_printed() {
    let server = TestServer::start();
    let mut command = example_against("exit_after_sync", &server);
    command
        .env("LANGFUSE_SECRET_KEY", WRONG_SECRET)
        .env("LANGFUSE_DEBUG", "true")
        .env("LANGFUSE_FLUSH_TIMEOUT", "2");
    let output = run(command);
    assert!(output.status.success(), "the program goes on");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "3 lines, 6 words"
    );
    assert!(server.observations().is_empty(), "the server refused them");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("debug"), "debug logging is on: {stderr}");
    assert!(
        stderr.contains("401"),
        "the rejection is reported: {stderr}"
    );
    assert_secret_absent(&output, WRONG_SECRET);
}

#[test]
fn a_server_that_is_down_never_prints_the_secret_key() {
    // A loopback port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = TestServer::start();
    let mut command = example_against("exit_after_sync", &server);
    command
        .env("LANGFUSE_BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("LANGFUSE_SECRET_KEY", WRONG_SECRET)
        .env("LANGFUSE_DEBUG", "true")
        .env("LANGFUSE_MAX_RETRIES", "1")
        .env("LANGFUSE_FLUSH_TIMEOUT", "1");
    let output = run(command);
    assert!(output.status.success(), "the program goes on");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "3 lines, 6 words"
    );
    assert!(!output.stderr.is_empty(), "the failure is reported");
    assert_secret_absent(&output, WRONG_SECRET);
}

#[test]
fn the_test_servers_own_secret_is_never_printed_on_success() {
    let server = TestServer::start();
    let mut command = example_against("exit_after_sync", &server);
    command.env("LANGFUSE_DEBUG", "true");
    let output = run(command);
    assert!(output.status.success());
    assert_eq!(server.observations().len(), 5);
    assert_secret_absent(&output, server.secret_key());
}

/// A server (or a proxy in front of it) that echoes the request's headers in its error body:
/// the SDK shows the body, as it should, but never the keys or the `Authorization` value in it.
#[test]
fn an_answer_that_echoes_the_credentials_is_shown_scrubbed() {
    let server = TestServer::start();
    server.set_faults(Faults::new().with(Fault::echo_headers(400).always()));
    let output = run(example_against("exit_after_sync", &server));
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Your request headers were"),
        "the body is shown: {stderr}"
    );
    assert!(stderr.contains("<redacted>"), "{stderr}");
    let authorization = server.authorization_header();
    let credentials = authorization.trim_start_matches("Basic ");
    for secret in [server.secret_key(), server.public_key(), credentials] {
        assert_secret_absent(&output, secret);
    }
}

/// A base URL with credentials is refused; the error does not repeat them.
#[test]
fn a_base_url_with_credentials_is_refused_without_repeating_them() {
    let mut command = example_command("exit_after_sync");
    command
        .env("LANGFUSE_PUBLIC_KEY", "pk-lf-url")
        .env("LANGFUSE_SECRET_KEY", "sk-lf-url")
        .env(
            "LANGFUSE_BASE_URL",
            "https://admin:hunter2-password@langfuse.example/?token=also-secret",
        );
    let output = run(command);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("LANGFUSE_BASE_URL"), "{stderr}");
    for secret in ["hunter2-password", "admin:", "also-secret"] {
        assert_secret_absent(&output, secret);
    }
}

#[test]
fn plain_http_to_another_host_draws_a_warning() {
    let server = TestServer::start();
    let mut command = example_against("exit_after_sync", &server);
    // `.invalid` never resolves (RFC 2606): nothing leaves the machine.
    command
        .env("LANGFUSE_BASE_URL", "http://example.invalid")
        .env("LANGFUSE_MAX_RETRIES", "0")
        .env("LANGFUSE_FLUSH_TIMEOUT", "1");
    let output = run(command);
    assert!(output.status.success(), "the program goes on");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("plain http") && stderr.contains("example.invalid"),
        "{stderr}"
    );
    assert_secret_absent(&output, server.secret_key());
}

#[test]
fn loopback_plain_http_draws_no_warning() {
    let server = TestServer::start();
    let output = run_example("exit_after_sync", &server);
    assert!(output.status.success());
    assert!(!String::from_utf8_lossy(&output.stderr).contains("plain http"));
}

#[test]
fn debug_output_redacts_the_secret_key() {
    let server = TestServer::start_with("pk-lf-public-1234", WRONG_SECRET);
    let builder: ConfigBuilder = Config::builder()
        .keys(server.public_key(), server.secret_key())
        .base_url(server.url())
        .flush_timeout(Duration::from_secs(1));
    let builder_debug = format!("{builder:?} {builder:#?}");
    assert!(!builder_debug.contains(WRONG_SECRET), "{builder_debug}");
    assert!(builder_debug.contains("<redacted>"), "{builder_debug}");

    let config = builder.build().unwrap();
    let config_debug = format!("{config:?} {config:#?}");
    assert!(!config_debug.contains(WRONG_SECRET), "{config_debug}");
    assert!(config_debug.contains("pk-lf-public-1234"), "{config_debug}");

    let exporter = Langfuse::new(&config).unwrap();
    let exporter_debug = format!("{exporter:?} {exporter:#?}");
    assert!(!exporter_debug.contains(WRONG_SECRET), "{exporter_debug}");
    exporter.shutdown_blocking(Duration::from_secs(1));
}

#[test]
fn config_errors_never_echo_the_secret_key() {
    let vars = [
        ("LANGFUSE_SECRET_KEY", WRONG_SECRET.to_owned()),
        ("LANGFUSE_PUBLIC_KEY", "pk-lf-1".to_owned()),
        ("LANGFUSE_SAMPLE_RATE", WRONG_SECRET.to_owned()),
    ];
    let error = Config::from_lookup(|name| {
        vars.iter()
            .find(|(var, _)| *var == name)
            .map(|(_, v)| v.clone())
    })
    .unwrap_err();
    assert!(error.to_string().contains("LANGFUSE_SAMPLE_RATE"));
    assert!(!error.to_string().contains(WRONG_SECRET), "{error}");
    assert!(!format!("{error:?}").contains(WRONG_SECRET), "{error:?}");

    let swapped = Config::builder()
        .keys(WRONG_SECRET, "pk-lf-1")
        .build()
        .unwrap_err();
    assert!(!swapped.to_string().contains(WRONG_SECRET), "{swapped}");
    assert!(
        !format!("{swapped:?}").contains(WRONG_SECRET),
        "{swapped:?}"
    );
}
