//! Usage and model set through the context API while a generation streams land on the
//! generation: `update_current_generation` called inside the stream or iterator (a `.map`
//! closure, the last item, after the last item of an `async_stream`) reaches the observation
//! that stays open over the items, never the consumer; checked on the loopback server.

use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, Stream, StreamExt as _};
use langfuse_observe::{
    observe,
    trace::{
        update_current_generation, update_current_observation, GenerationUpdate, ObservationUpdate,
    },
};
use serde_json::json;

use crate::support::observed::{
    assert_child_of, current_trace, named, trace_observations, wait_for_trace, Harness,
};

const TOKENS: [&str; 4] = ["Hel", "lo", ", wor", "ld"];

/// Usage updated on every chunk (running totals); the model is named on the last one.
#[observe(as_type = "generation")]
fn mapped_stream(prompt: String) -> impl Stream<Item = String> {
    let _ = prompt;
    stream::iter(TOKENS.iter().enumerate()).map(|(i, token)| {
        let mut update = GenerationUpdate::new()
            .usage("input", 7)
            .usage("output", i as u64 + 1);
        if i + 1 == TOKENS.len() {
            update = update
                .model("stream-model-1")
                .model_parameter("stream", true)
                .cost("total", 0.000_25);
        }
        assert!(update_current_generation(update), "inside the generation");
        (*token).to_owned()
    })
}

/// Usage known only after the last token, as providers send it in a final chunk.
#[observe(as_type = "generation")]
async fn final_chunk_stream(prompt: &'static str) -> impl Stream<Item = String> {
    tokio::task::yield_now().await;
    update_current_generation(GenerationUpdate::new().model("model-named-in-the-body"));
    async_stream::stream! {
        for token in TOKENS {
            tokio::time::sleep(Duration::from_millis(1)).await;
            yield token.to_owned();
        }
        // The consumer's poll that finds the end runs this, with the generation still open.
        assert!(update_current_generation(
            GenerationUpdate::new()
                .model("stream-model-2")
                .usage("input", prompt.len() as u64)
                .usage("output", 4)
                .usage("total", prompt.len() as u64 + 4)
        ));
    }
}

/// A sync iterator: usage on the last item.
#[observe(as_type = "generation")]
fn token_iter() -> impl Iterator<Item = String> {
    let last = TOKENS.len() - 1;
    TOKENS.iter().enumerate().map(move |(i, token)| {
        if i == last {
            assert!(update_current_generation(
                GenerationUpdate::new()
                    .model("iter-model")
                    .usage("output", TOKENS.len() as u64)
            ));
        }
        (*token).to_owned()
    })
}

#[observe]
async fn streaming_consumer() -> String {
    let mut mapped = Box::pin(mapped_stream("say hello".to_owned()));
    while let Some(token) = mapped.next().await {
        // Between items the consumer is current, not the generation.
        assert!(update_current_observation(
            ObservationUpdate::new().metadata("last-token", token)
        ));
    }
    let text: String = final_chunk_stream("say hello")
        .await
        .collect::<Vec<_>>()
        .await
        .concat();
    assert_eq!(text, "Hello, world");
    assert_eq!(token_iter().collect::<String>(), "Hello, world");
    current_trace()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_and_model_set_while_streaming_land_on_the_generation() {
    let test = Harness::start();
    let server = &test.server;
    let trace = streaming_consumer().await;
    let observations = trace_observations(server, &trace);
    assert_eq!(observations.len(), 4, "{observations:#?}");
    let consumer = named(&observations, "streaming_consumer");

    let mapped = named(&observations, "mapped_stream");
    assert_child_of(mapped, consumer);
    assert_eq!(mapped.observation_type, "GENERATION");
    assert_eq!(mapped.model.as_deref(), Some("stream-model-1"));
    // The server keeps parameters as strings and numbers, and adds the total usage it was not
    // sent.
    assert_eq!(mapped.model_parameters, Some(json!({"stream": "true"})));
    assert_eq!(
        mapped.usage_details,
        Some(json!({"input": 7, "output": 4, "total": 11}))
    );
    assert_eq!(mapped.cost_details, Some(json!({"total": 0.000_25})));
    assert_eq!(mapped.output, Some(json!("Hello, world")));
    assert!(mapped.completion_start_time.is_some());
    assert_eq!(mapped.level, "DEFAULT");

    let final_chunk = named(&observations, "final_chunk_stream");
    assert_child_of(final_chunk, consumer);
    assert_eq!(final_chunk.model.as_deref(), Some("stream-model-2"));
    assert_eq!(
        final_chunk.usage_details,
        Some(json!({"input": 9, "output": 4, "total": 13}))
    );
    assert_eq!(final_chunk.output, Some(json!("Hello, world")));

    let iter = named(&observations, "token_iter");
    assert_eq!(iter.model.as_deref(), Some("iter-model"));
    assert_eq!(iter.usage_details, Some(json!({"output": 4, "total": 4})));
    assert_eq!(iter.output, Some(json!("Hello, world")));

    // The consumer's own updates between items stayed on the consumer.
    assert_eq!(consumer.metadata.get("last-token"), Some(&json!("ld")));
    assert_eq!(consumer.model, None);
    assert_eq!(consumer.usage_details, None);
    for generation in [mapped, final_chunk, iter] {
        assert!(
            !generation.metadata.contains_key("last-token"),
            "{:?}",
            generation.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generation_stream_consumed_on_another_task_still_gets_its_usage() {
    let test = Harness::start();
    let server = Arc::clone(&test.server);
    let (sender, receiver) = tokio::sync::oneshot::channel();
    #[observe]
    async fn hands_off(sender: tokio::sync::oneshot::Sender<String>) -> String {
        let _ = sender.send(current_trace());
        // The stream is consumed on another task, polled there.
        let tokens = mapped_stream("elsewhere".to_owned());
        tokio::spawn(tokens.collect::<Vec<String>>())
            .await
            .unwrap()
            .concat()
    }
    assert_eq!(hands_off(sender).await, "Hello, world");
    let trace = receiver.await.unwrap();
    let observations = tokio::task::spawn_blocking(move || wait_for_trace(&server, &trace, 2))
        .await
        .unwrap();
    let generation = named(&observations, "mapped_stream");
    assert_child_of(generation, named(&observations, "hands_off"));
    assert_eq!(generation.model.as_deref(), Some("stream-model-1"));
    assert_eq!(
        generation.usage_details,
        Some(json!({"input": 7, "output": 4, "total": 11}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_set_before_the_consumer_stops_early_still_lands() {
    let test = Harness::start();
    let server = Arc::clone(&test.server);
    #[observe]
    async fn stops_early() -> String {
        let first: Vec<String> = mapped_stream("partial".to_owned()).take(2).collect().await;
        assert_eq!(first, ["Hel", "lo"]);
        current_trace()
    }
    let trace = stops_early().await;
    let observations = tokio::task::spawn_blocking(move || wait_for_trace(&server, &trace, 2))
        .await
        .unwrap();
    let generation = named(&observations, "mapped_stream");
    assert_eq!(
        generation.level, "DEFAULT",
        "stopping early is a normal read"
    );
    assert_eq!(
        generation.status_message.as_deref(),
        Some("the consumer stopped after 2 items")
    );
    assert_eq!(
        generation.usage_details,
        Some(json!({"input": 7, "output": 2, "total": 9})),
        "the usage of the chunks that were produced"
    );
    assert_eq!(generation.model, None, "the last chunk never came");
}
