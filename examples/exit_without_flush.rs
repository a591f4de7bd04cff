//! Programs that end without a flush of their own, which the function the SDK runs at process
//! exit still delivers for. The first argument picks how the program ends:
//!
//! - `return`: a server-style handler (`flush = false`, so its end does not flush) runs three
//!   times, then `main` returns;
//! - `exit`: `std::process::exit` inside the outermost observation, after two steps ended;
//! - `exit-async`: the same inside an `async fn`;
//! - `panic`: the handler runs, then `main` panics;
//! - `cancelled`: the outermost observation, an `async fn`, is cancelled by
//!   `tokio::time::timeout` after its first step, so it never reaches its own flush;
//! - `dropped-client`: the handler runs three times under a client of its own, which `main`
//!   drops before it returns.
//!
//! ```sh
//! LANGFUSE_PUBLIC_KEY=pk-lf-… LANGFUSE_SECRET_KEY=sk-lf-… cargo run --example exit_without_flush -- return
//! ```

use langfuse_observe::observe;

/// A request handler of a server: it does not flush when it ends.
#[observe(flush = false)]
fn handle(request: u32) -> u32 {
    step(request) + 1
}

#[observe]
fn step(n: u32) -> u32 {
    n * 2
}

/// A job slower than the caller is willing to wait.
#[observe]
async fn slow_job() {
    step(3);
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
}

/// A job that ends the process from inside its outermost observation.
#[observe]
fn job() {
    step(1);
    step(2);
    std::process::exit(0);
}

/// [`job`] as an `async fn`.
#[observe]
async fn async_job() {
    step(1);
    step(2);
    std::process::exit(0);
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("exit") => job(),
        Some("exit-async") => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime");
            runtime.block_on(async_job());
        }
        Some("cancelled") => {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            let outcome = runtime.block_on(async {
                tokio::time::timeout(std::time::Duration::from_millis(50), slow_job()).await
            });
            println!("timed out: {}", outcome.is_err());
        }
        Some("dropped-client") => {
            let config = langfuse_observe::Config::from_env().expect("a valid environment");
            let client = langfuse_observe::Langfuse::new(&config).expect("the client starts");
            client.run(|| {
                for request in 0..3 {
                    println!("{}", handle(request));
                }
            });
            drop(client);
        }
        Some("panic") => {
            handle(1);
            panic!("main gives up after the first request");
        }
        _ => {
            for request in 0..3 {
                println!("{}", handle(request));
            }
        }
    }
}
