//! The examples in `examples/`, each run as its own process against the loopback Langfuse
//! server, with what arrived checked: they are what users copy, so they must keep working.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use langfuse_observe_testing::{NewPrompt, StoredObservation, StoredScore, TestServer};
use serde_json::{json, Value};

use crate::support::example::{
    clear_langfuse_env, example_against, example_command, run_example_with,
};
use crate::support::observed::{assert_child_of, named};
use crate::support::WAIT;

/// Generous: with the `cargo run` fallback, the example may still have to be compiled.
const STARTUP: Duration = Duration::from_secs(300);
/// Generous deadline for a server to shut down; never an assertion on speed.
const SHUTDOWN: Duration = Duration::from_secs(60);

fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn streaming_records_the_streamed_answer_as_one_generation() {
    let server = TestServer::start();
    let question = "How do tokens stream?";
    let output = run_example_with("streaming", &server, &[question]);
    assert!(output.status.success());
    let printed = stdout_of(&output);
    let answer = printed.trim_end_matches('\n');
    assert!(answer.contains(question), "{answer}");

    let observations = server.observations();
    assert_eq!(observations.len(), 2, "{observations:#?}");
    let chat = named(&observations, "chat");
    let generation = named(&observations, "llm-stream");
    assert_eq!(chat.parent_observation_id, None);
    assert_eq!(chat.observation_type, "CHAIN");
    assert_child_of(generation, chat);
    assert_eq!(generation.observation_type, "GENERATION");
    assert_eq!(generation.level, "DEFAULT");

    // The output is the tokens joined: exactly what the caller printed as they arrived.
    assert_eq!(generation.input, Some(json!({ "prompt": question })));
    assert_eq!(generation.output, Some(json!(answer)));
    assert_eq!(chat.output, Some(json!(answer)));

    // Model and usage, set while the last token was produced, landed on the generation.
    assert_eq!(generation.model.as_deref(), Some("gpt-4o-mini"));
    let output_tokens = answer.split_inclusive(' ').count();
    assert_eq!(
        generation.usage_details,
        Some(json!({ "input": 4, "output": output_tokens, "total": 4 + output_tokens })),
        "the server adds the total"
    );

    // The first token's arrival, within the generation, which lasts until the stream ends
    // (Langfuse keeps milliseconds, so they may coincide).
    let start = generation.start_time.expect("a start time");
    let end = generation.end_time.expect("an end time");
    let first_token = generation
        .completion_start_time
        .expect("a completion start time");
    assert!(
        start <= first_token && first_token <= end,
        "{start:?} < {first_token:?} < {end:?}"
    );
    let chat_end = chat.end_time.expect("an end time");
    assert!(
        end <= chat_end,
        "the stream ends before its consumer returns"
    );
}

#[test]
fn init_inside_an_observed_main_sends_the_whole_trace() {
    let server = TestServer::start();
    let output = run_example_with("init_in_main", &server, &[]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(stdout_of(&output), "a document about what is Langfuse?\n");
    let observations = server.observations();
    assert_eq!(observations.len(), 2, "{observations:#?}");
    let main = named(&observations, "main");
    assert_eq!(main.parent_observation_id, None);
    assert_child_of(named(&observations, "retrieve"), main);
}

/// The `axum_server` example, started with `PORT=0` and `EXIT_AFTER_REQUESTS`: the running
/// child and its address.
struct RunningServer {
    child: Child,
    url: String,
    stderr: std::thread::JoinHandle<String>,
}

impl RunningServer {
    fn start(server: &TestServer, requests: usize) -> Self {
        let mut command = example_against("axum_server", server);
        command
            .env("PORT", "0")
            .env("EXIT_AFTER_REQUESTS", requests.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        eprintln!("--- starting {command:?}");
        let mut child = command.spawn().expect("the example starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let (lines, received) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                eprintln!("--- axum_server stdout: {line}");
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + STARTUP;
        let url = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match received.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("listening on ") {
                        break url.to_owned();
                    }
                }
                Err(error) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    let stderr = stderr.join().unwrap_or_default();
                    panic!("axum_server did not report its address ({error}): {stderr}");
                }
            }
        };
        Self { child, url, stderr }
    }

    /// Waits for the server to exit on its own, then returns its status and stderr.
    fn wait(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + SHUTDOWN;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited on") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                let stderr = self.stderr.join().unwrap_or_default();
                panic!("axum_server did not shut down after its requests: {stderr}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = self.stderr.join().expect("stderr is read to its end");
        eprintln!("--- axum_server exited with {status:?}\n--- stderr:\n{stderr}");
        (status, stderr)
    }
}

/// Posts `message` to the server's `/chat` with `headers`; returns the status and the body.
fn post_chat(url: &str, headers: &[(&str, &str)], message: &str) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the client");
    runtime.block_on(async {
        let mut request = reqwest::Client::new()
            .post(format!("{url}/chat"))
            .header("content-type", "application/json")
            .body(json!({ "message": message }).to_string())
            .timeout(Duration::from_secs(30));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let body = response.text().await.expect("a response body");
        let body = serde_json::from_str(&body)
            .unwrap_or_else(|error| panic!("a JSON body, not {body:?}: {error}"));
        (status, body)
    })
}

fn of_trace(observations: &[StoredObservation], trace: &str) -> Vec<StoredObservation> {
    observations
        .iter()
        .filter(|o| o.trace_id == trace)
        .cloned()
        .collect()
}

#[test]
fn axum_server_continues_the_callers_trace_and_flushes_at_shutdown() {
    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";
    let server = TestServer::start();
    let running = RunningServer::start(&server, 2);

    // A request from a service that is inside its own trace, for a known session and user.
    let traceparent = format!("00-{TRACE}-{PARENT}-01");
    let (status, body) = post_chat(
        &running.url,
        &[
            ("traceparent", &traceparent),
            ("x-session-id", "chat-42"),
            ("x-user-id", "user-7"),
        ],
        "What is Langfuse?",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "reply": "You asked: What is Langfuse?", "trace_id": TRACE })
    );
    // Handlers do not flush per request, and the interval is an hour: nothing sent yet.
    assert!(
        server.observations().is_empty(),
        "{:#?}",
        server.observations()
    );

    // An invalid traceparent is not a reason to refuse the request: it gets a new trace.
    let (status, fresh) = post_chat(
        &running.url,
        &[("traceparent", "not-a-traceparent")],
        "hello",
    );
    assert_eq!(status, 200, "{fresh}");
    assert_eq!(fresh["reply"], json!("You asked: hello"));
    let fresh_trace = fresh["trace_id"].as_str().expect("a trace id").to_owned();
    assert_ne!(fresh_trace, TRACE);

    // After the second request the server shuts down; the guard in `main` flushes.
    let (exit, stderr) = running.wait();
    assert!(exit.success(), "{stderr}");
    assert!(
        stderr.contains("ignoring the traceparent header, starting a new trace"),
        "{stderr}"
    );

    let observations = server.observations();
    assert_eq!(observations.len(), 4, "{observations:#?}");

    let continued = of_trace(&observations, TRACE);
    let handler = named(&continued, "chat");
    let generation = named(&continued, "generate_reply");
    assert_eq!(handler.parent_observation_id.as_deref(), Some(PARENT));
    assert_eq!(handler.observation_type, "SPAN");
    assert_eq!(
        handler.input,
        Some(json!({ "request": { "message": "What is Langfuse?" } }))
    );
    assert_eq!(handler.output, Some(body));
    assert_child_of(generation, handler);
    assert_eq!(generation.observation_type, "GENERATION");
    assert_eq!(generation.model.as_deref(), Some("gpt-4o-mini"));
    let trace = server.trace(TRACE).expect("the continued trace");
    assert_eq!(trace.session_id.as_deref(), Some("chat-42"));
    assert_eq!(trace.user_id.as_deref(), Some("user-7"));
    assert_eq!(trace.tags, ["axum-server"]);

    let new = of_trace(&observations, &fresh_trace);
    let handler = named(&new, "chat");
    assert_eq!(handler.parent_observation_id, None, "a new trace's root");
    assert_child_of(named(&new, "generate_reply"), handler);
    let trace = server.trace(&fresh_trace).expect("the new trace");
    assert_eq!(trace.session_id, None);
    assert_eq!(trace.user_id, None);
}

#[test]
fn sync_cli_records_nested_calls_and_the_lookups_that_failed() {
    let server = TestServer::start();
    let output = run_example_with(
        "sync_cli",
        &server,
        &["What do traces and generations record?"],
    );
    assert!(output.status.success());
    let answer = "a trace is one request or run, end to end; \
                  a generation is a model call, with model and token usage.";
    assert_eq!(stdout_of(&output).trim(), answer);

    let observations = server.observations();
    assert_eq!(observations.len(), 7, "{observations:#?}");
    let root = named(&observations, "answer");
    assert_eq!(root.parent_observation_id, None);
    assert_eq!(root.observation_type, "CHAIN");
    assert_eq!(root.level, "DEFAULT");
    assert_eq!(root.output, Some(json!(answer)));
    let trace = server.trace(&root.trace_id).expect("the trace");
    assert_eq!(trace.tags, ["sync-cli"]);

    let keywords = named(&observations, "keywords");
    assert_child_of(keywords, root);
    assert_eq!(keywords.observation_type, "TOOL");
    assert_eq!(
        keywords.output,
        Some(json!(["what", "trace", "generation", "record"]))
    );

    let lookups: Vec<_> = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("look_up"))
        .collect();
    assert_eq!(lookups.len(), 4);
    for lookup in lookups {
        assert_child_of(lookup, root);
        assert_eq!(lookup.observation_type, "RETRIEVER");
        let word = lookup.input.as_ref().expect("an input")["word"]
            .as_str()
            .expect("the word looked up");
        match word {
            "what" | "record" => {
                assert_eq!(lookup.level, "ERROR", "{word}");
                assert_eq!(
                    lookup.status_message.as_deref(),
                    Some(format!("{word:?} is not in the glossary").as_str())
                );
                assert_eq!(lookup.output, None);
            }
            "trace" | "generation" => {
                assert_eq!(lookup.level, "DEFAULT", "{word}");
                assert!(lookup.output.is_some(), "{word}");
            }
            other => panic!("unexpected lookup of {other:?}"),
        }
    }

    let compose = named(&observations, "compose");
    assert_child_of(compose, root);
    assert_eq!(compose.output, Some(json!(answer)));
}

#[test]
fn sync_cli_records_the_error_that_fails_the_run() {
    let server = TestServer::start();
    let output = run_example_with("sync_cli", &server, &["Anything about cats?"]);
    assert_eq!(output.status.code(), Some(1));
    let message = "the glossary knows none of these words";
    assert!(
        stderr_of(&output).contains(&format!("error: {message}")),
        "{}",
        stderr_of(&output)
    );

    let observations = server.observations();
    assert_eq!(observations.len(), 5, "{observations:#?}");
    let root = named(&observations, "answer");
    assert_eq!(root.parent_observation_id, None);
    assert_eq!(root.level, "ERROR");
    assert_eq!(root.status_message.as_deref(), Some(message));
    assert_eq!(root.output, None);
    assert_child_of(named(&observations, "keywords"), root);
    let lookups: Vec<_> = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("look_up"))
        .collect();
    assert_eq!(lookups.len(), 3);
    for lookup in lookups {
        assert_child_of(lookup, root);
        assert_eq!(lookup.level, "ERROR");
    }
}

fn score_named<'a>(scores: &'a [StoredScore], name: &str) -> &'a StoredScore {
    let found: Vec<_> = scores.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one score {name} in {scores:#?}");
    found[0]
}

#[track_caller]
fn assert_number(value: &Value, expected: f64) {
    let number = value.as_f64().expect("a number");
    assert!((number - expected).abs() < 1e-9, "{number} != {expected}");
}

#[test]
fn scores_of_every_type_arrive_with_their_comments() {
    let server = TestServer::start();
    let output = run_example_with("scores", &server, &[]);
    assert!(output.status.success());

    let observations = server.observations();
    assert_eq!(observations.len(), 3, "{observations:#?}");
    let root = named(&observations, "answer_question");
    let evaluator = named(&observations, "relevance");
    assert_eq!(root.parent_observation_id, None);
    assert_child_of(named(&observations, "generate"), root);
    assert_child_of(evaluator, root);
    assert_eq!(evaluator.observation_type, "EVALUATOR");
    let trace = root.trace_id.as_str();
    assert!(
        stdout_of(&output).contains(&format!("scored trace {trace}")),
        "{}",
        stdout_of(&output)
    );

    let scores = server.scores();
    assert_eq!(scores.len(), 5, "{scores:#?}");
    for score in &scores {
        assert_eq!(score.trace_id.as_deref(), Some(trace), "{score:#?}");
    }

    // On the evaluator's observation.
    let relevance = score_named(&scores, "relevance");
    assert_eq!(relevance.data_type.as_deref(), Some("NUMERIC"));
    assert_number(&relevance.value, 0.5);
    assert_eq!(
        relevance.observation_id.as_deref(),
        Some(evaluator.id.as_str())
    );

    // On the trace, from inside it.
    let language = score_named(&scores, "language");
    assert_eq!(language.data_type.as_deref(), Some("CATEGORICAL"));
    assert_eq!(language.string_value.as_deref(), Some("en"));
    let citation = score_named(&scores, "has-citation");
    assert_eq!(citation.data_type.as_deref(), Some("BOOLEAN"));
    assert_number(&citation.value, 1.0);
    let quality = score_named(&scores, "quality");
    assert_eq!(quality.data_type.as_deref(), Some("NUMERIC"));
    assert_number(&quality.value, 0.45);
    assert_eq!(
        quality.comment.as_deref(),
        Some("relevance, discounted for the single source")
    );
    for score in [language, citation, quality] {
        assert_eq!(score.observation_id, None, "{score:#?}");
    }

    // By id, after the trace ended: delivered by the guard's flush at the end of `main`.
    let feedback = score_named(&scores, "user-feedback");
    assert_eq!(feedback.data_type.as_deref(), Some("BOOLEAN"));
    assert_number(&feedback.value, 1.0);
    assert_eq!(feedback.comment.as_deref(), Some("thumbs up"));
    assert_eq!(feedback.observation_id, None);
}

#[test]
fn prompts_runs_with_no_account_on_a_loopback_server_of_its_own() {
    let mut command = example_command("prompts");
    clear_langfuse_env(&mut command);
    let output = command.output().expect("the example runs");
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(
        stdout_of(&output),
        "prompt support/answer version 1\n\
         (the model's answer to: Answer in one sentence: What is Langfuse?)\n\
         after invalidation: prompt support/answer version 2\n\
         Langfuse shows answer linked to support/answer version 1\n"
    );
}

#[test]
fn prompts_links_the_configured_projects_prompt_and_not_a_fallback() {
    let server = TestServer::start();
    server.create_prompt(
        NewPrompt::text("support/answer", "Q: {{question}}")
            .label("production")
            .config(json!({"model": "my-model"})),
    );
    let output = run_example_with("prompts", &server, &[]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert_eq!(
        stdout_of(&output),
        "prompt support/answer version 1\n(the model's answer to: Q: What is Langfuse?)\n"
    );
    assert!(server.wait_for_observations(1, WAIT));
    let generation = &server.observations()[0];
    assert_eq!(
        (
            generation.prompt_name.as_deref(),
            generation.prompt_version,
            generation.model.as_deref()
        ),
        (Some("support/answer"), Some(1), Some("my-model"))
    );

    let without = TestServer::start();
    let output = run_example_with("prompts", &without, &[]);
    assert!(output.status.success(), "{}", stderr_of(&output));
    assert!(
        stdout_of(&output).starts_with("prompt support/answer: the fallback (not linked)\n"),
        "{}",
        stdout_of(&output)
    );
    assert!(without.wait_for_observations(1, WAIT));
    assert_eq!(without.observations()[0].prompt_name, None);
}

#[cfg(feature = "tracing")]
#[test]
fn rig_agent_nests_the_agents_spans_under_the_observed_call() {
    let server = TestServer::start();
    let output = run_example_with("rig_agent", &server, &[]);
    assert!(output.status.success());
    assert_eq!(stdout_of(&output).trim_end(), "2 + 3 = 5");

    let observations = server.observations();
    assert_eq!(observations.len(), 5, "{observations:#?}");
    let root = named(&observations, "answer");
    assert_eq!(root.parent_observation_id, None);
    let agent = named(&observations, "invoke_agent");
    assert_eq!(agent.observation_type, "AGENT");
    assert_child_of(agent, root);
    let tool = named(&observations, "add");
    assert_eq!(tool.observation_type, "TOOL");
    assert_child_of(tool, agent);
    assert_eq!(tool.input, Some(json!({"x": 2, "y": 3})));
    assert_eq!(tool.output, Some(json!(5)));
    let mut chats: Vec<&StoredObservation> = observations
        .iter()
        .filter(|o| o.name.as_deref() == Some("chat_streaming"))
        .collect();
    chats.sort_by_key(|o| o.start_time);
    assert_eq!(chats.len(), 2);
    for (chat, input_tokens) in chats.iter().zip([50, 70]) {
        assert_eq!(chat.observation_type, "GENERATION");
        assert_child_of(chat, agent);
        assert_eq!(chat.model.as_deref(), Some("gpt-4o-mini-2024-07-18"));
        let usage = chat.usage_details.as_ref().expect("usage");
        assert_eq!(usage["input"], json!(input_tokens));
        assert!(chat.completion_start_time.is_some());
    }
    let trace = server.trace(&root.trace_id).expect("the trace");
    assert_eq!(trace.session_id.as_deref(), Some("chat-42"));
    assert_eq!(trace.user_id.as_deref(), Some("ada"));
}

#[cfg(feature = "tracing")]
#[test]
fn rig_agent_prints_its_tree_without_an_account() {
    let mut command = crate::support::example::example_command("rig_agent");
    crate::support::example::clear_langfuse_env(&mut command);
    let output = command.output().expect("the example runs");
    let printed = stderr_of(&output);
    assert!(output.status.success(), "{printed}");
    for line in [
        "session=chat-42 user=ada",
        "invoke_agent [agent]",
        "chat_streaming [generation]",
        "add [tool]",
    ] {
        assert!(printed.contains(line), "{line:?} missing from:\n{printed}");
    }
}
