//! Running an example program as a child process against a loopback Langfuse server, for the
//! tests that check what a whole program delivers (`observe_exit`, `examples`, `exit_hook`)
//! or prints (`reliability_security`, `wire_contract`, `console_export`).
//!
//! The example runs with only the settings a user would set (keys and base URL pointing at the
//! server) and a flush interval of an hour, so anything that arrives was delivered by a flush
//! the program itself triggered: the end of its outermost observation or the `init` guard.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use langfuse_observe_testing::TestServer;

/// Where cargo puts the example `name` for the profile this test was built with: the test is
/// `target/<profile>/deps/<test>`, the example `target/<profile>/examples/<name>`.
fn built_example(name: &str) -> Option<PathBuf> {
    let test = std::env::current_exe().ok()?;
    let profile_dir = test.parent()?.parent()?;
    let example = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let built = modified(&example)?;
    // `cargo test --test <name>` does not rebuild examples: a binary older than this test or
    // than its source may be stale, so let cargo decide then.
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(format!("{name}.rs"));
    let fresh = modified(&test).is_some_and(|t| built >= t)
        && modified(&source).is_some_and(|s| built >= s);
    fresh.then_some(example)
}

fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).ok()?.modified().ok()
}

/// The command that runs the example: its built binary, else `cargo run --example`. Arguments
/// added to it reach the example either way.
pub(crate) fn example_command(name: &str) -> Command {
    if let Some(binary) = built_example(name) {
        return Command::new(binary);
    }
    let mut command = Command::new(env!("CARGO"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", "--quiet", "--example", name]);
    let release = std::env::current_exe()
        .ok()
        .and_then(|test| {
            let profile = test.parent()?.parent()?.file_name()?.to_owned();
            Some(profile == "release")
        })
        .unwrap_or(false);
    if release {
        command.arg("--release");
    }
    // Examples that need a feature are built only with it, as this test was.
    if cfg!(feature = "tracing") {
        command.args(["--features", "tracing"]);
    }
    command.arg("--");
    command
}

/// The example, with only the settings a user would set, pointed at `server`.
pub(crate) fn example_against(name: &str, server: &TestServer) -> Command {
    let mut command = example_command(name);
    clear_langfuse_env(&mut command);
    command
        .env("LANGFUSE_PUBLIC_KEY", server.public_key())
        .env("LANGFUSE_SECRET_KEY", server.secret_key())
        .env("LANGFUSE_BASE_URL", server.url())
        // An hour: only a flush the program triggers can deliver in time.
        .env("LANGFUSE_FLUSH_INTERVAL", "3600")
        .env("RUST_BACKTRACE", "0");
    command
}

/// Removes every `LANGFUSE_*` variable of this process from what `command` inherits, so that a
/// child sees only the settings its test gives it.
pub(crate) fn clear_langfuse_env(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("LANGFUSE_") {
            command.env_remove(key);
        }
    }
}

/// Runs the example pointed at `server` to its end, with `args`.
pub(crate) fn run_example_with(name: &str, server: &TestServer, args: &[&str]) -> Output {
    let mut command = example_against(name, server);
    command.args(args);
    eprintln!("--- running {command:?}");
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("could not run example {name}: {error}"));
    eprintln!(
        "--- {name} exited with {:?}\n--- stdout:\n{}--- stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs the example pointed at `server` to its end.
pub(crate) fn run_example(name: &str, server: &TestServer) -> Output {
    run_example_with(name, server, &[])
}
