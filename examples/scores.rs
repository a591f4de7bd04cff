//! Scores: rating a trace or one of its observations, while it runs or after the fact.
//!
//! - Inside observed functions: a numeric score on the current observation (an evaluator's
//!   result), a categorical and a boolean score on the current trace, and a score with a
//!   comment built with `Score::for_current_trace(..).comment(..)` and sent with `score`.
//! - After the trace has ended: a score sent by trace id, as user feedback arriving later
//!   (say, from a thumbs-up button that was given the trace id with the answer) would be.
//!
//! Scores travel through the batch-ingestion API; `main` keeps the guard from `init`, whose
//! drop flushes the last score before the process exits.
//!
//! ```sh
//! cargo run --example scores
//! ```
//!
//! Without keys, traces and scores are printed to stderr; set `LANGFUSE_PUBLIC_KEY`,
//! `LANGFUSE_SECRET_KEY` and `LANGFUSE_BASE_URL` to send them to Langfuse.

use langfuse_observe::{
    observe,
    trace::{
        current_trace_id, score, score_current_observation, score_current_trace, Score, TraceId,
    },
    Config,
};
use serde::Serialize;

/// What the program hands to its client: the answer and the trace to attach feedback to.
#[derive(Debug, Serialize)]
struct Answer {
    text: String,
    trace_id: Option<String>,
}

#[observe(as_type = "generation")]
fn generate(question: &str) -> String {
    // A stand-in for a model call.
    if question.contains("Langfuse") {
        "Langfuse records traces, observations and scores [1].".to_owned()
    } else {
        "I do not know.".to_owned()
    }
}

/// An evaluator: scores its own observation.
#[observe(as_type = "evaluator")]
fn relevance(question: &str, text: &str) -> f64 {
    let text = text.to_lowercase();
    let words: Vec<String> = question
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect();
    let found = words
        .iter()
        .filter(|word| text.contains(word.as_str()))
        .count();
    let relevance = found as f64 / words.len().max(1) as f64;
    score_current_observation("relevance", relevance);
    relevance
}

#[observe(as_type = "chain")]
fn answer_question(question: &str) -> Answer {
    let text = generate(question);
    let relevance = relevance(question, &text);

    score_current_trace("language", "en"); // categorical
    score_current_trace("has-citation", text.contains("[1]")); // boolean
    if let Some(quality) = Score::for_current_trace("quality", relevance * 0.9) {
        score(quality.comment("relevance, discounted for the single source"));
    }

    Answer {
        text,
        trace_id: current_trace_id().map(|id| id.to_string()),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The guard flushes at the end of `main`, after the score sent outside any observation.
    let _langfuse = langfuse_observe::init(Config::from_env()?)?;

    let answer = answer_question("What does Langfuse record?");
    println!("{}", answer.text);

    // Later, feedback arrives for that trace: score it by id.
    if let Some(trace_id) = answer.trace_id {
        let trace_id = TraceId::parse(&trace_id)?;
        score(Score::new(trace_id, "user-feedback", true.into()).comment("thumbs up"));
        println!("scored trace {trace_id}");
    }
    Ok(())
}
