//! A test of this binary run alone in a child process, for what cannot be tested among the
//! other tests of one process: the process default that `init` sets or the environment makes,
//! and a process's peak memory. The child is an `#[ignore]`d test that its wrapper, the test
//! with the name that checks the outcome, runs with `--exact .. --ignored`.

use std::process::{Command, Output};

use super::example::clear_langfuse_env;

/// Tells a child which test it was started for.
const CHILD: &str = "IT_CHILD_TEST";

/// Whether this process is the child [`run_child`] started for `test`. The body of an ignored
/// child test runs only then: `cargo test -- --ignored` runs every ignored test in one
/// process, where a test that replaces the process default would disturb the others.
pub(crate) fn is_child(test: &str) -> bool {
    std::env::var_os(CHILD).is_some_and(|started_for| started_for == test)
}

/// Runs the ignored test `test` (its path in this binary, `module::name`) alone in a child
/// process of this binary, with no `LANGFUSE_*` variable but those `configure` sets, and
/// returns what it printed and how it ended.
pub(crate) fn run_child(test: &str, configure: impl FnOnce(&mut Command)) -> Output {
    let mut command = Command::new(std::env::current_exe().expect("the test binary's path"));
    command
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, test);
    clear_langfuse_env(&mut command);
    configure(&mut command);
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("could not run {test} in a child process: {error}"));
    eprintln!(
        "--- {test} exited with {:?}\n--- stdout:\n{}--- stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// [`run_child`], asserting the child test passed; returns its output.
#[track_caller]
pub(crate) fn assert_child_passes(test: &str, configure: impl FnOnce(&mut Command)) -> Output {
    let output = run_child(test, configure);
    assert!(
        output.status.success(),
        "{test} failed in its child process"
    );
    // `--exact` with a name that matches nothing runs nothing, and passes.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("running 1 test"),
        "{test} is not a test of this binary: {stdout}"
    );
    output
}
