//! A program that panics inside an observed function and exits with the panic, without calling
//! `flush` and without holding the guard from `init`. The failed call is recorded with level
//! ERROR and the panic message, and the outermost observed function flushes before the panic
//! continues, so the trace reaches Langfuse although the process dies.
//!
//! The exporter is set up from the environment on the first observed call:
//!
//! ```sh
//! LANGFUSE_PUBLIC_KEY=pk-lf-… LANGFUSE_SECRET_KEY=sk-lf-… LANGFUSE_BASE_URL=https://… \
//!     cargo run --example exit_after_panic   # exits with the panic, status 101
//! ```

use langfuse_observe::observe;

fn main() {
    let total = process_batch(&[3, 1, 0, 2]);
    println!("never printed: {total}");
}

/// The outermost observed call: it records the panic and flushes, then the panic goes on.
#[observe(as_type = "chain")]
fn process_batch(items: &[u32]) -> u32 {
    items.iter().map(|&item| process_item(item)).sum()
}

#[observe(as_type = "tool")]
fn process_item(item: u32) -> u32 {
    if item == 0 {
        panic!("item 0 cannot be processed");
    }
    100 / item
}
