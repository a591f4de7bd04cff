//! A plain, synchronous `fn main` that ends right after its observed work, without calling
//! `flush` and without holding the guard from `init`: the outermost observed function flushes
//! (blocking briefly) when it returns, so every observation reaches Langfuse before the
//! process exits.
//!
//! The exporter is set up from the environment on the first observed call:
//!
//! ```sh
//! LANGFUSE_PUBLIC_KEY=pk-lf-… LANGFUSE_SECRET_KEY=sk-lf-… LANGFUSE_BASE_URL=https://… \
//!     cargo run --example exit_after_sync
//! ```

use langfuse_observe::observe;

fn main() {
    let report = summarize(&["first line", "second line", "third line"]);
    println!("{report}");
    // main returns here: no flush, no guard.
}

/// The outermost observed call: its end flushes everything recorded under it.
#[observe(as_type = "chain")]
fn summarize(lines: &[&str]) -> String {
    let words: usize = lines.iter().map(|line| count_words(line)).sum();
    format_report(lines.len(), words)
}

#[observe(as_type = "tool")]
fn count_words(line: &str) -> usize {
    line.split_whitespace().count()
}

#[observe]
fn format_report(lines: usize, words: usize) -> String {
    format!("{lines} lines, {words} words")
}
