//! Cost of fetching a prompt that the client has cached: what every call of a program that
//! fetches its prompt per request pays once the first fetch is done. The prompt is a small
//! text prompt with a config, served by the loopback test server once, then from the cache.
//! Also the cost of compiling it.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use langfuse_observe::{Config, Langfuse};
use langfuse_observe_testing::{NewPrompt, TestServer};
use serde_json::json;

fn poll_once<F: std::future::Future>(future: F) -> F::Output {
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => unreachable!("a cached prompt never waits"),
    }
}

fn prompts(c: &mut Criterion) {
    let server = TestServer::start();
    server.create_prompt(
        NewPrompt::text(
            "support/answer",
            "You are a support agent for {{product}}. Answer the question in one sentence: \
             {{question}}",
        )
        .label("production")
        .config(json!({"model": "gpt-4o-mini", "temperature": 0.2})),
    );
    let config = Config::builder()
        .keys(server.public_key(), server.secret_key())
        .base_url(server.url())
        .build()
        .expect("valid config");
    let client = Langfuse::new(&config).expect("the client starts");
    let prompt = client
        .prompt("support/answer")
        .fetch_blocking()
        .expect("the first fetch reaches the server");

    let mut group = c.benchmark_group("prompt");
    group.bench_function("cached/fetch_blocking", |b| {
        b.iter(|| client.prompt(black_box("support/answer")).fetch_blocking())
    });
    // Polled once, without an executor: a cached prompt is ready at the first poll.
    group.bench_function("cached/fetch_await", |b| {
        b.iter(|| poll_once(client.prompt(black_box("support/answer")).fetch()))
    });
    let vars = json!({"product": "Langfuse", "question": "How do I link a prompt?"});
    group.bench_function("compile", |b| b.iter(|| prompt.compile(black_box(&vars))));
    group.finish();
    assert_eq!(
        server
            .requests()
            .iter()
            .filter(|r| r.path.starts_with("/api/public/v2/prompts/"))
            .count(),
        1,
        "every fetch but the first was served from the cache"
    );
    client.shutdown_blocking(Duration::from_secs(1));
}

criterion_group!(benches, prompts);
criterion_main!(benches);
