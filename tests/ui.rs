//! Compile-time behaviour of `#[observe]`: every supported function shape compiles and runs
//! (`tests/ui/pass`), and every misuse is rejected with an error on the offending token
//! (`tests/ui/fail`, the expected messages beside each case).
//!
//! Regenerate the expected messages with `TRYBUILD=overwrite cargo test --test ui`, then read
//! them.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
