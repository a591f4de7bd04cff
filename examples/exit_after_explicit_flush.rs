//! A program whose observed roots do not flush (`flush = false`): it calls
//! [`langfuse_observe::flush_blocking`] itself, then ends with `std::process::exit(0)`, which
//! runs no destructors. Everything recorded before the explicit flush reaches Langfuse.
//!
//! ```sh
//! LANGFUSE_PUBLIC_KEY=pk-lf-… LANGFUSE_SECRET_KEY=sk-lf-… LANGFUSE_BASE_URL=https://… \
//!     cargo run --example exit_after_explicit_flush
//! ```

use std::time::Duration;

use langfuse_observe::observe;

fn main() {
    let mut total = 0;
    for batch in 1..=3 {
        total += process_batch(batch);
    }
    println!("processed {total} items");
    let report = langfuse_observe::flush_blocking(Duration::from_secs(10));
    println!(
        "flush completed: {}, exported: {}, failed: {}, dropped: {}",
        report.completed, report.exported, report.failed, report.dropped
    );
    // No destructors, no flush at exit: only the explicit flush above delivers.
    std::process::exit(0);
}

/// A root that leaves flushing to the program.
#[observe(as_type = "chain", flush = false)]
fn process_batch(batch: usize) -> usize {
    (0..batch)
        .filter(|&item| handle_item(batch, item) >= batch * 10)
        .count()
}

#[observe(as_type = "tool")]
fn handle_item(batch: usize, item: usize) -> usize {
    batch * 10 + item
}
