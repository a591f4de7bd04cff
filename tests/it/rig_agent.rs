//! A real framework's telemetry through `tracing_layer()`: rig's agent with a tool, its
//! OpenAI-compatible client pointed at a loopback fake model, inside an `#[observe]` root.
//! The tree is checked as the loopback Langfuse server stored it.
//!
//! rig's two drivers shape their spans differently: the streaming one nests each turn's
//! `chat_streaming` and `execute_tool` spans under `invoke_agent`; the blocking `prompt` keeps
//! `chat` and `execute_tool` beside its agent span (linked by `follows_from`, with an explicit
//! parent of "the current span", none here), so they hang under the observation current
//! where they start: the caller's. Both are asserted as rig emits them.

use futures_util::StreamExt;
use langfuse_observe::observe;
use langfuse_observe::trace::{update_current_trace, TraceUpdate};
use langfuse_observe_testing::StoredObservation;
use rig_core::client::CompletionClient;
use rig_core::completion::Prompt;
use rig_core::providers::openai;
use rig_core::streaming::StreamingPrompt;
use rig_core::tool::Tool;
use serde::Deserialize;
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt;

use crate::support::fake_model::{self, FakeModel};
use crate::support::observed::{
    assert_child_of, assert_names, assert_root, assert_within, current_trace, named, times,
    wait_for_trace, Harness,
};

#[derive(Deserialize)]
struct AddArgs {
    x: i64,
    y: i64,
}

/// The tool never fails; rig still asks for an error type.
#[derive(Debug)]
struct AddError;

impl std::fmt::Display for AddError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("cannot add")
    }
}

impl std::error::Error for AddError {}

/// The agent's one tool.
struct Adder;

impl Tool for Adder {
    const NAME: &'static str = "add";
    type Error = AddError;
    type Args = AddArgs;
    type Output = i64;

    fn description(&self) -> String {
        "Adds two integers".to_owned()
    }

    fn parameters(&self) -> serde_json::Value {
        json!({
            "type": "object",
            "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
            "required": ["x", "y"]
        })
    }

    async fn call(&self, args: AddArgs) -> Result<i64, AddError> {
        Ok(args.x + args.y)
    }
}

fn client(model: &FakeModel) -> openai::CompletionsClient {
    openai::CompletionsClient::builder()
        .api_key("sk-fake")
        .base_url(model.base_url())
        .build()
        .expect("a rig client")
}

/// The usage the server stored has rig's reported counts (rig also records zeros for the
/// counts the provider did not break down).
#[track_caller]
fn assert_usage(observation: &StoredObservation, (prompt, completion): (u64, u64)) {
    let usage = observation.usage_details.as_ref().expect("usage");
    assert_eq!(usage["input"], json!(prompt), "{:?}", observation.name);
    assert_eq!(usage["output"], json!(completion), "{:?}", observation.name);
    assert_eq!(
        usage["total"],
        json!(prompt + completion),
        "{:?}",
        observation.name
    );
}

/// The observations with this name, in the order they started.
fn all_named<'a>(observations: &'a [StoredObservation], name: &str) -> Vec<&'a StoredObservation> {
    let mut found: Vec<&StoredObservation> = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some(name))
        .collect();
    found.sort_by_key(|o| o.start_time);
    found
}

/// One line per observation, children indented under their parent, for the test's output.
fn tree(observations: &[StoredObservation]) -> String {
    fn walk(all: &[StoredObservation], parent: Option<&str>, depth: usize, out: &mut String) {
        let mut children: Vec<&StoredObservation> = all
            .iter()
            .filter(|o| o.parent_observation_id.as_deref() == parent)
            .collect();
        children.sort_by_key(|o| o.start_time);
        for o in children {
            out.push_str(&format!(
                "{}{} {} model={:?} usage={} input={} output={}\n",
                "  ".repeat(depth),
                o.observation_type,
                o.name.as_deref().unwrap_or("?"),
                o.model,
                o.usage_details
                    .as_ref()
                    .map_or("-".into(), |u| u.to_string()),
                o.input.as_ref().map_or("-".into(), |v| v.to_string()),
                o.output.as_ref().map_or("-".into(), |v| v.to_string()),
            ));
            walk(all, Some(&o.id), depth + 1, out);
        }
    }
    let mut out = String::new();
    walk(observations, None, 0, &mut out);
    out
}

fn install() -> tracing::subscriber::DefaultGuard {
    tracing::subscriber::set_default(
        tracing_subscriber::registry().with(langfuse_observe::tracing_layer()),
    )
}

/// Asks the agent through rig's streaming driver, collecting the answer's text.
#[observe(skip(base))]
async fn ask_agent_streaming(base: &FakeModel, question: &str) -> (String, String) {
    update_current_trace(TraceUpdate::new().session_id("chat-42").user_id("ada"));
    let agent = client(base)
        .agent("gpt-test")
        .preamble("You add numbers with the add tool.")
        .tool(Adder)
        .build();
    let mut stream = agent.stream_prompt(question).max_turns(3).await;
    let mut text = String::new();
    while let Some(item) = stream.next().await {
        if let rig_core::agent::MultiTurnStreamItem::StreamAssistantItem(
            rig_core::streaming::StreamedAssistantContent::Text(chunk),
        ) = item.expect("the stream goes on")
        {
            text.push_str(&chunk.text);
        }
    }
    (text, current_trace())
}

#[tokio::test(flavor = "current_thread")]
async fn a_rig_agent_run_is_agent_generation_tool_generation_under_the_observed_caller() {
    let test = Harness::start();
    let _tracing = install();
    let model = FakeModel::start();
    let (answer, trace) = ask_agent_streaming(&model, "What is 2 + 3?").await;
    assert_eq!(answer, fake_model::ANSWER);
    let observations = wait_for_trace(&test.server, &trace, 5);
    eprintln!("rig agent tree as stored:\n{}", tree(&observations));
    assert_names(
        &observations,
        &[
            "ask_agent_streaming",
            "invoke_agent",
            "chat_streaming",
            "add",
            "chat_streaming",
        ],
    );
    let root = named(&observations, "ask_agent_streaming");
    assert_root(root);
    let agent = named(&observations, "invoke_agent");
    assert_eq!(agent.observation_type, "AGENT");
    assert_child_of(agent, root);
    assert_eq!(agent.model, None, "an agent's run carries no model");
    assert_eq!(agent.input, Some(json!("What is 2 + 3?")));

    let chats = all_named(&observations, "chat_streaming");
    let tool = named(&observations, "add");
    for (chat, usage) in chats
        .iter()
        .zip([fake_model::TOOL_CALL_USAGE, fake_model::ANSWER_USAGE])
    {
        assert_eq!(chat.observation_type, "GENERATION");
        assert_child_of(chat, agent);
        assert_within(chat, agent);
        assert_eq!(chat.model.as_deref(), Some(fake_model::MODEL));
        assert_usage(chat, usage);
        let (start, end) = times(chat);
        let first = chat.completion_start_time.expect("a completion start");
        assert!(start <= first && first <= end);
    }
    assert_eq!(tool.observation_type, "TOOL");
    assert_child_of(tool, agent);
    assert_eq!(tool.input, Some(json!({"x": 2, "y": 3})));
    assert_eq!(tool.output, Some(json!(5)));
    // In the order the agent ran them: generation, tool, generation.
    assert!(times(chats[0]).1 <= times(tool).0);
    assert!(times(tool).1 <= times(chats[1]).0);

    let stored = test.server.trace(&trace).expect("the trace");
    assert_eq!(stored.session_id.as_deref(), Some("chat-42"));
    assert_eq!(stored.user_id.as_deref(), Some("ada"));
}

/// Asks the agent through rig's blocking driver.
#[observe(skip(base))]
async fn ask_agent(base: &FakeModel, question: &str) -> (String, String) {
    let agent = client(base).agent("gpt-test").tool(Adder).build();
    let answer = agent
        .prompt(question)
        .max_turns(3)
        .await
        .expect("the agent answers");
    (answer, current_trace())
}

#[tokio::test(flavor = "current_thread")]
async fn a_blocking_rig_prompt_keeps_its_steps_in_the_callers_trace() {
    let test = Harness::start();
    let _tracing = install();
    let model = FakeModel::start();
    let (answer, trace) = ask_agent(&model, "What is 2 + 3?").await;
    assert_eq!(answer, fake_model::ANSWER);
    let observations = wait_for_trace(&test.server, &trace, 5);
    eprintln!("rig blocking tree as stored:\n{}", tree(&observations));
    assert_names(
        &observations,
        &["ask_agent", "invoke_agent", "chat", "add", "chat"],
    );
    let root = named(&observations, "ask_agent");
    for observation in observations.iter().filter(|o| o.id != root.id) {
        assert_child_of(observation, root);
    }
    let chats = all_named(&observations, "chat");
    assert_usage(chats[0], fake_model::TOOL_CALL_USAGE);
    assert_usage(chats[1], fake_model::ANSWER_USAGE);
    assert_eq!(
        chats[0].completion_start_time, None,
        "a completion that is not streamed has no first chunk"
    );
    let tool = named(&observations, "add");
    assert_eq!(tool.input, Some(json!({"x": 2, "y": 3})));
    assert_eq!(
        named(&observations, "invoke_agent").output,
        Some(json!(fake_model::ANSWER))
    );
}

#[observe(skip(base))]
async fn stream_plain(base: &FakeModel) -> (String, String) {
    let agent = client(base).agent("gpt-test").build();
    let mut stream = agent.stream_prompt("Say hello").await;
    let mut text = String::new();
    while let Some(item) = stream.next().await {
        if let Ok(rig_core::agent::MultiTurnStreamItem::StreamAssistantItem(
            rig_core::streaming::StreamedAssistantContent::Text(chunk),
        )) = item
        {
            text.push_str(&chunk.text);
        }
    }
    (text, current_trace())
}

#[tokio::test(flavor = "current_thread")]
async fn a_streamed_rig_completion_records_its_first_chunk_and_final_usage() {
    let test = Harness::start();
    let _tracing = install();
    let model = FakeModel::start();
    let (text, trace) = stream_plain(&model).await;
    assert_eq!(text, fake_model::PLAIN_ANSWER);
    let observations = wait_for_trace(&test.server, &trace, 3);
    let chat = named(&observations, "chat_streaming");
    assert_eq!(chat.observation_type, "GENERATION");
    assert_child_of(chat, named(&observations, "invoke_agent"));
    assert_usage(chat, fake_model::PLAIN_USAGE);
    let (start, end) = times(chat);
    let first = chat
        .completion_start_time
        .expect("the first chunk's time as completion start");
    assert!(
        start <= first && first < end,
        "{start:?} <= {first:?} < {end:?}"
    );
    assert!(
        end.duration_since(first).unwrap_or_default() >= fake_model::CHUNK_PAUSE,
        "the first chunk came a pause or more before the last"
    );
}
