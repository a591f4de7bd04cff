//! Prompts kept in Langfuse, fetched from the loopback server: text and chat prompts by label
//! and version, each rule of the cache (a fresh hit, stale-while-revalidate with one refresh,
//! invalidation, concurrent callers sharing one request), fallbacks while the server is down
//! or hangs, the errors that say what to do, and the link of a fetched prompt to a generation.

use std::sync::Arc;
use std::time::{Duration, Instant};

use langfuse_observe::prompt::{ChatMessage, Compiled, Prompt, PromptError};
use langfuse_observe::trace::{update_current_generation, GenerationUpdate, PromptRef};
use langfuse_observe::{observe, Config, Langfuse};
use langfuse_observe_testing::{Fault, Faults, NewPrompt, Route, TestServer};
use serde_json::json;

use crate::support::observed::{current_trace, wait_for_trace, Harness};
use crate::support::WAIT;

const PROMPTS_PATH: &str = "/api/public/v2/prompts/";

/// A client of `server` whose prompts stay cached for `ttl`, with fast retries.
fn client_of(server: &TestServer, ttl: Duration) -> Langfuse {
    let config = Config::builder()
        .keys(server.public_key(), server.secret_key())
        .base_url(server.url())
        .prompt_cache_ttl(ttl)
        .retry_backoff(Duration::from_millis(10))
        .build()
        .unwrap();
    Langfuse::new(&config).unwrap()
}

/// The prompt requests the server has answered (or dropped).
fn prompt_requests(server: &TestServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.path.starts_with(PROMPTS_PATH))
        .count()
}

fn text_of(prompt: &Prompt) -> &str {
    &prompt.as_text().expect("a text prompt").prompt
}

/// A server with `qa` version 1 (`production`) and version 2 (`latest`).
/// [`server_with_two_versions`] whose prompt route never answers, and a client of it.
fn hanging_prompt_route() -> (TestServer, Langfuse) {
    let server = server_with_two_versions();
    server.add_fault(
        Fault::delay(Duration::from_secs(120))
            .always()
            .on(Route::Prompts),
    );
    let client = client_of(&server, Duration::from_secs(60));
    (server, client)
}

fn server_with_two_versions() -> TestServer {
    let server = TestServer::start();
    server.create_prompt(
        NewPrompt::text("qa", "Answer {{ question }} for {{user}}")
            .label("production")
            .config(json!({"model": "gpt-4o", "temperature": 0.2}))
            .tags(["support"]),
    );
    server.create_prompt(NewPrompt::text("qa", "Answer briefly: {{question}}"));
    server
}

#[tokio::test]
async fn text_prompts_are_fetched_by_label_or_version_and_compiled() {
    let server = server_with_two_versions();
    let client = client_of(&server, Duration::from_secs(60));

    let production = client.prompt("qa").fetch().await.unwrap();
    assert_eq!((production.name(), production.version()), ("qa", 1));
    assert!(!production.is_fallback());
    assert_eq!(production.labels(), ["production"]);
    assert_eq!(production.tags(), ["support"]);
    #[derive(serde::Deserialize)]
    struct ModelConfig {
        model: String,
        temperature: f64,
    }
    let config: ModelConfig = production.config_as().unwrap();
    assert_eq!((config.model.as_str(), config.temperature), ("gpt-4o", 0.2));
    let compiled = production.compile(&json!({"question": "why?", "user": "Ada"}));
    assert_eq!(compiled, Compiled::Text("Answer why? for Ada".to_owned()));

    let latest = client.prompt("qa").label("latest").fetch().await.unwrap();
    assert_eq!(text_of(&latest), "Answer briefly: {{question}}");
    let pinned = client.prompt("qa").version(2).fetch().await.unwrap();
    assert_eq!(pinned.version(), 2);
    let queries: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/api/public/v2/prompts/qa")
        .map(|r| r.query.unwrap_or_default())
        .collect();
    assert_eq!(queries, ["label=production", "label=latest", "version=2"]);
}

#[tokio::test]
async fn chat_prompts_compile_every_message_and_fill_placeholders() {
    let server = TestServer::start();
    server.create_prompt(
        NewPrompt::chat(
            "support/chat",
            json!([
                {"role": "system", "content": "You help {{user}}."},
                {"type": "placeholder", "name": "history"},
                {"role": "user", "content": "{{question}}"},
            ]),
        )
        .label("production"),
    );
    let client = client_of(&server, Duration::from_secs(60));
    let prompt = client.prompt("support/chat").fetch().await.unwrap();
    let chat = prompt.as_chat().expect("a chat prompt");
    assert_eq!(chat.messages[1], ChatMessage::placeholder("history"));
    let messages = chat
        .compile_strict(&json!({
            "user": "Ada",
            "question": "And now?",
            "history": [
                {"role": "user", "content": "Hi, I am {{user}}"},
                {"role": "assistant", "content": "Hello!"},
            ],
        }))
        .unwrap();
    assert_eq!(
        messages,
        [
            ChatMessage::new("system", "You help Ada."),
            ChatMessage::new("user", "Hi, I am Ada"),
            ChatMessage::new("assistant", "Hello!"),
            ChatMessage::new("user", "And now?"),
        ]
    );
    let missing = chat.compile_strict(&json!({"user": "Ada"})).unwrap_err();
    assert!(
        missing.to_string().contains("history, question"),
        "{missing}"
    );
    // The folder's `/` travels encoded, in one path segment.
    let paths: Vec<_> = server
        .requests()
        .into_iter()
        .map(|r| r.path)
        .filter(|path| path.starts_with(PROMPTS_PATH))
        .collect();
    assert_eq!(paths, ["/api/public/v2/prompts/support%2Fchat"]);
}

#[tokio::test]
async fn a_fresh_cached_prompt_is_served_without_a_request() {
    let server = server_with_two_versions();
    let client = client_of(&server, Duration::from_secs(60));
    let first = client.prompt("qa").fetch().await.unwrap();
    // A new version under the label changes nothing while the cached one is fresh.
    server.label_prompt("qa", 2, ["production"]);
    for _ in 0..10 {
        assert_eq!(client.prompt("qa").fetch().await.unwrap(), first);
    }
    let blocking = client.clone();
    let again = tokio::task::spawn_blocking(move || blocking.prompt("qa").fetch_blocking())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(prompt_requests(&server), 1);
    // Another label or a version is another key.
    client.prompt("qa").version(1).fetch().await.unwrap();
    assert_eq!(prompt_requests(&server), 2);
}

#[tokio::test]
async fn after_the_ttl_the_stale_prompt_is_served_while_one_refresh_runs() {
    let server = server_with_two_versions();
    let ttl = Duration::from_millis(200);
    let client = client_of(&server, ttl);
    assert_eq!(client.prompt("qa").fetch().await.unwrap().version(), 1);
    server.label_prompt("qa", 2, ["production"]);
    // The refresh is answered late, so every call below runs while it is in flight.
    server.add_fault(Fault::delay(Duration::from_millis(800)).on(Route::Prompts));
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;
    for _ in 0..20 {
        let stale = client.prompt("qa").fetch().await.unwrap();
        assert_eq!(stale.version(), 1, "the stale prompt is served at once");
    }
    let server = Arc::new(server);
    let waiter = Arc::clone(&server);
    let refreshed =
        tokio::task::spawn_blocking(move || waiter.wait_until(WAIT, |s| prompt_requests(s) >= 2))
            .await
            .unwrap();
    assert!(refreshed);
    assert_eq!(
        prompt_requests(&server),
        2,
        "twenty stale calls, one refresh"
    );
    let deadline = Instant::now() + WAIT;
    while client.prompt("qa").fetch().await.unwrap().version() != 2 {
        assert!(
            Instant::now() < deadline,
            "the refresh never reached the cache"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_failed_refresh_keeps_serving_the_stale_prompt() {
    let server = server_with_two_versions();
    let ttl = Duration::from_millis(100);
    let client = client_of(&server, ttl);
    let first = client.prompt("qa").fetch().await.unwrap();
    server.add_fault(Fault::status(500).always().on(Route::Prompts));
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;
    assert_eq!(client.prompt("qa").fetch().await.unwrap(), first);
    let server = Arc::new(server);
    let waiter = Arc::clone(&server);
    // The refresh and its two retries all fail.
    let failed =
        tokio::task::spawn_blocking(move || waiter.wait_until(WAIT, |s| prompt_requests(s) >= 4))
            .await
            .unwrap();
    assert!(failed);
    assert_eq!(client.prompt("qa").fetch().await.unwrap(), first);
}

#[tokio::test]
async fn invalidation_fetches_the_new_version_at_once() {
    let server = server_with_two_versions();
    let client = client_of(&server, Duration::from_secs(60));
    assert_eq!(client.prompt("qa").fetch().await.unwrap().version(), 1);
    server.label_prompt("qa", 2, ["production"]);
    assert_eq!(client.prompt("qa").fetch().await.unwrap().version(), 1);
    client.invalidate_prompt("qa");
    assert_eq!(client.prompt("qa").fetch().await.unwrap().version(), 2);
    assert_eq!(prompt_requests(&server), 2);
    client.clear_prompt_cache();
    client.prompt("qa").fetch().await.unwrap();
    assert_eq!(prompt_requests(&server), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cold_callers_share_one_request() {
    let server = server_with_two_versions();
    // Answered late, so that every caller arrives while the one request is in flight.
    server.add_fault(Fault::delay(Duration::from_millis(300)).on(Route::Prompts));
    let client = client_of(&server, Duration::from_secs(60));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.prompt("qa").fetch().await })
        })
        .collect();
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let client = client.clone();
            std::thread::spawn(move || client.prompt("qa").fetch_blocking())
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().version(), 1);
    }
    for thread in threads {
        assert_eq!(thread.join().unwrap().unwrap().version(), 1);
    }
    assert_eq!(prompt_requests(&server), 1);
}

#[tokio::test]
async fn a_5xx_and_a_429_are_retried_before_the_prompt_arrives() {
    let server = server_with_two_versions();
    server.set_faults(
        Faults::new()
            .fail_next_on(Route::Prompts, 1, 503)
            .with(Fault::rate_limited(0).on(Route::Prompts)),
    );
    let client = client_of(&server, Duration::from_secs(60));
    assert_eq!(client.prompt("qa").fetch().await.unwrap().version(), 1);
    let statuses: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with(PROMPTS_PATH))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [Some(503), Some(429), Some(200)]);
}

/// A loopback port nothing listens on.
fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

#[tokio::test]
async fn the_fallback_is_used_while_the_server_is_down() {
    let config = Config::builder()
        .keys("pk-lf-test", "sk-lf-test")
        .base_url(refused_url())
        .retry_backoff(Duration::from_millis(10))
        .build()
        .unwrap();
    let client = Langfuse::new(&config).unwrap();
    let fallback = client
        .prompt("qa")
        .fallback("Answer {{question}}")
        .fetch()
        .await
        .unwrap();
    assert!(fallback.is_fallback());
    assert_eq!((fallback.version(), fallback.labels()), (0, &[][..]));
    assert_eq!(fallback.link(), None);
    let labelled = client
        .prompt("qa")
        .label("staging")
        .fallback(vec![ChatMessage::new("system", "Be brief.")])
        .fetch()
        .await
        .unwrap();
    assert_eq!(labelled.labels(), ["staging"]);
    assert_eq!(labelled.as_chat().unwrap().messages.len(), 1);
    let error = client.prompt("qa").fetch().await.unwrap_err();
    assert!(
        matches!(error, PromptError::Unavailable { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("could not connect"),
        "the error says why: {error}"
    );
    let blocking = client.clone();
    let from_thread = std::thread::spawn(move || {
        blocking
            .prompt("qa")
            .fallback("Answer {{question}}")
            .fetch_blocking()
    })
    .join()
    .unwrap()
    .unwrap();
    assert!(from_thread.is_fallback());
}

#[tokio::test]
async fn a_hanging_server_is_bounded_by_the_timeout() {
    let (_server, client) = hanging_prompt_route();
    let started = Instant::now();
    let fallback = client
        .prompt("qa")
        .fallback("Answer {{question}}")
        .timeout(Duration::from_millis(300))
        .fetch()
        .await
        .unwrap();
    assert!(fallback.is_fallback());
    let error = client
        .prompt("qa")
        .timeout(Duration::from_millis(300))
        .fetch()
        .await
        .unwrap_err();
    assert!(matches!(error, PromptError::Timeout { .. }), "{error:?}");
    assert!(
        error.to_string().contains("did not arrive within 300ms"),
        "{error}"
    );
    // A bound, not a speed: far below the server's two minutes.
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[tokio::test]
async fn a_missing_prompt_is_an_error_naming_it_and_its_label_or_version() {
    let server = TestServer::start();
    let client = client_of(&server, Duration::from_secs(60));
    let error = client.prompt("team/nope").fetch().await.unwrap_err();
    assert_eq!(
        error,
        PromptError::NotFound {
            name: "team/nope".to_owned(),
            selector: "label \"production\"".to_owned()
        }
    );
    assert!(
        error
            .to_string()
            .starts_with("prompt \"team/nope\" with label \"production\" was not found"),
        "{error}"
    );
    let error = client.prompt("nope").version(4).fetch().await.unwrap_err();
    assert!(error.to_string().contains("with version 4"), "{error}");
    // Not retried: a 404 is an answer.
    assert_eq!(prompt_requests(&server), 2);
}

#[tokio::test]
async fn rejected_keys_are_an_error_that_says_so() {
    let server = server_with_two_versions();
    let config = Config::builder()
        .keys(server.public_key(), "sk-lf-not-the-right-one")
        .base_url(server.url())
        .build()
        .unwrap();
    let client = Langfuse::new(&config).unwrap();
    let error = client.prompt("qa").fetch().await.unwrap_err();
    assert!(
        matches!(error, PromptError::Unauthorized { status: 401, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("rejected the API keys"), "{message}");
    assert!(message.contains("LANGFUSE_SECRET_KEY"), "{message}");
    assert!(!message.contains("sk-lf-not-the-right-one"), "{message}");
    // A 401 injected on the route reads the same.
    let client = client_of(&server, Duration::from_secs(60));
    server.add_fault(Fault::status(401).on(Route::Prompts));
    let error = client.prompt("qa").fetch().await.unwrap_err();
    assert!(
        matches!(error, PromptError::Unauthorized { .. }),
        "{error:?}"
    );
}

#[test]
fn fetch_needs_no_tokio_runtime_of_the_caller() {
    let server = server_with_two_versions();
    let client = client_of(&server, Duration::from_secs(60));
    let prompt = futures_executor::block_on(client.prompt("qa").fetch()).unwrap();
    assert_eq!(prompt.version(), 1);
    let pinned = client.prompt("qa").version(2).fetch_blocking().unwrap();
    assert_eq!(pinned.version(), 2);
}

#[tokio::test(flavor = "current_thread")]
async fn fetch_blocking_on_a_runtime_thread_never_waits() {
    let server = server_with_two_versions();
    let client = client_of(&server, Duration::from_secs(60));
    let error = client.prompt("qa").fetch_blocking().unwrap_err();
    assert_eq!(
        error,
        PromptError::WouldBlock {
            name: "qa".to_owned()
        }
    );
    let fallback = client
        .prompt("qa")
        .fallback("Answer")
        .fetch_blocking()
        .unwrap();
    assert!(fallback.is_fallback());
    // The fetch went on in the background; awaiting joins it, and then the cache serves
    // blocking calls on this thread too.
    assert_eq!(client.prompt("qa").fetch().await.unwrap().version(), 1);
    assert_eq!(client.prompt("qa").fetch_blocking().unwrap().version(), 1);
    assert_eq!(prompt_requests(&server), 1);
}

#[tokio::test]
async fn a_client_that_cannot_fetch_says_why_and_uses_the_fallback() {
    for client in [
        Langfuse::disabled(),
        Langfuse::new(&Config::builder().build().unwrap()).unwrap(),
    ] {
        let error = client.prompt("qa").fetch().await.unwrap_err();
        assert!(matches!(error, PromptError::NoServer { .. }), "{error:?}");
        let fallback = client.prompt("qa").fallback("x").fetch().await.unwrap();
        assert!(fallback.is_fallback());
    }
}

#[tokio::test]
async fn a_ttl_of_zero_fetches_every_time() {
    let server = server_with_two_versions();
    let client = client_of(&server, Duration::ZERO);
    for _ in 0..3 {
        client.prompt("qa").fetch().await.unwrap();
    }
    assert_eq!(prompt_requests(&server), 3);
}

#[observe(as_type = "generation")]
fn answer_with(prompt_name: &str) -> String {
    let prompt = langfuse_observe::prompt(prompt_name)
        .fallback("Answer {{question}}")
        .fetch_blocking()
        .unwrap();
    let text = prompt.compile(&json!({"question": "why?", "user": "Ada"}));
    update_current_generation(GenerationUpdate::new().model("m").prompt(&prompt));
    format!("{}|{}", current_trace(), text.as_text().unwrap())
}

#[test]
fn a_fetched_prompt_links_the_generation_and_a_fallback_does_not() {
    let harness = Harness::start();
    harness.server.create_prompt(
        NewPrompt::text("qa", "Answer {{question}} for {{user}}").label("production"),
    );
    let linked = answer_with("qa");
    let fallback = answer_with("missing");
    let (trace, text) = linked.split_once('|').unwrap();
    assert_eq!(text, "Answer why? for Ada");
    let stored = wait_for_trace(&harness.server, trace, 1);
    assert_eq!(
        (stored[0].prompt_name.as_deref(), stored[0].prompt_version),
        (Some("qa"), Some(1))
    );
    let (trace, text) = fallback.split_once('|').unwrap();
    assert_eq!(text, "Answer why?");
    let stored = wait_for_trace(&harness.server, trace, 1);
    assert_eq!(
        (stored[0].prompt_name.as_deref(), stored[0].prompt_version),
        (None, None)
    );
    // The explicit form names a version directly.
    assert_eq!(
        Option::<PromptRef>::from(&harness.client.prompt("qa").fetch_blocking().unwrap()),
        Some(PromptRef::new("qa", 1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_spawn_blocking_the_documented_way_waits_for_the_prompt() {
    let server = server_with_two_versions();
    let client = client_of(&server, Duration::from_secs(60));
    let prompt = tokio::task::spawn_blocking(move || {
        // Tokio cannot tell this thread from a worker, so fetch_blocking does not wait here…
        let cold = client.prompt("qa").version(2).fetch_blocking();
        assert!(
            matches!(cold, Err(PromptError::WouldBlock { .. })),
            "{cold:?}"
        );
        // …and blocking on the runtime's handle does.
        tokio::runtime::Handle::current().block_on(client.prompt("qa").fetch())
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(prompt.version(), 1);
}

#[tokio::test]
async fn while_langfuse_is_unreachable_fetches_fail_at_once_and_one_check_finds_it_back() {
    let server = server_with_two_versions();
    server.add_fault(Fault::status(503).always().on(Route::Prompts));
    let client = client_of(&server, Duration::from_secs(60));
    let first = client.prompt("qa").fallback("x").fetch().await.unwrap();
    assert!(first.is_fallback());
    assert_eq!(prompt_requests(&server), 3, "one request and two retries");
    for _ in 0..20 {
        let served = client.prompt("qa").fallback("x").fetch().await.unwrap();
        assert!(served.is_fallback());
    }
    // Waiting through the retries each time would have taken 60 requests: the calls got the
    // known failure at once, while one check at a time ran in the background.
    assert!(
        prompt_requests(&server) < 20,
        "{}",
        prompt_requests(&server)
    );
    server.clear_faults();
    let deadline = Instant::now() + WAIT;
    loop {
        let served = client.prompt("qa").fallback("x").fetch().await.unwrap();
        if !served.is_fallback() {
            assert_eq!(served.version(), 1);
            break;
        }
        assert!(Instant::now() < deadline, "the prompt never came back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn after_one_caller_waited_in_vain_the_next_ones_do_not_wait() {
    let (_server, client) = hanging_prompt_route();
    let error = client
        .prompt("qa")
        .timeout(Duration::from_millis(300))
        .fetch()
        .await
        .unwrap_err();
    assert!(matches!(error, PromptError::Timeout { .. }), "{error:?}");
    // This caller would wait five seconds of its own; it gets the first caller's timeout.
    let again = client.prompt("qa").fetch().await.unwrap_err();
    assert_eq!(again, error);
}

#[tokio::test]
async fn after_a_shutdown_cached_prompts_are_served_and_others_say_why_not() {
    let server = server_with_two_versions();
    let client = client_of(&server, Duration::from_secs(60));
    client.prompt("qa").fetch().await.unwrap();
    client.shutdown(Duration::from_secs(5)).await;
    assert_eq!(client.prompt("qa").fetch().await.unwrap().version(), 1);
    for _ in 0..2 {
        let error = client.prompt("qa").version(2).fetch().await.unwrap_err();
        assert_eq!(error, PromptError::Closed);
    }
    let fallback = client.prompt("qa").version(2).fallback("x").fetch().await;
    assert!(fallback.unwrap().is_fallback());
}
