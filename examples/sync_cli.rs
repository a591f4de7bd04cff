//! A plain synchronous command-line program — no async runtime — whose observed functions nest
//! into one trace per run, with errors recorded where they happen.
//!
//! It answers a question from a tiny built-in glossary: each word of the question is looked up
//! (a word that is not in the glossary is an `Err`, recorded as level ERROR on its lookup, and
//! skipped); a question with no known word at all fails the whole run, which exits with status 1.
//! Nothing is set up and nothing is flushed by hand: the outermost observed call flushes when it
//! returns, before the process exits.
//!
//! ```sh
//! cargo run --example sync_cli -- "What do traces and generations record?"
//! cargo run --example sync_cli -- "Anything about cats?"     # fails: exit status 1
//! ```
//!
//! Without keys, the trace tree is printed to stderr; set `LANGFUSE_PUBLIC_KEY`,
//! `LANGFUSE_SECRET_KEY` and `LANGFUSE_BASE_URL` to send it to Langfuse.

use std::fmt;
use std::process::ExitCode;

use langfuse_observe::{
    observe,
    trace::{update_current_trace, TraceUpdate},
};

const GLOSSARY: [(&str, &str); 4] = [
    ("trace", "a trace is one request or run, end to end"),
    ("observation", "an observation is one step inside a trace"),
    (
        "generation",
        "a generation is a model call, with model and token usage",
    ),
    ("score", "a score rates a trace or an observation"),
];

#[derive(Debug)]
enum CliError {
    /// The question was empty.
    NoQuestion,
    /// A word is not in the glossary.
    Unknown(String),
    /// No word of the question is in the glossary.
    NothingFound,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::NoQuestion => f.write_str("no question given"),
            CliError::Unknown(word) => write!(f, "{word:?} is not in the glossary"),
            CliError::NothingFound => f.write_str("the glossary knows none of these words"),
        }
    }
}

impl std::error::Error for CliError {}

/// The outermost observed call: when it returns, everything recorded is flushed.
#[observe(as_type = "chain")]
fn answer(question: &str) -> Result<String, CliError> {
    update_current_trace(TraceUpdate::new().tag("sync-cli"));
    let words = keywords(question)?;
    let definitions: Vec<&str> = words
        .iter()
        // A word that is not found is recorded as an error on its own lookup, then skipped.
        .filter_map(|word| look_up(word).ok())
        .collect();
    if definitions.is_empty() {
        return Err(CliError::NothingFound);
    }
    Ok(compose(&definitions))
}

#[observe(as_type = "tool")]
fn keywords(question: &str) -> Result<Vec<String>, CliError> {
    let words: Vec<String> = question
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.len() > 3)
        .map(|word| word.to_lowercase())
        .map(|word| word.strip_suffix('s').map(str::to_owned).unwrap_or(word))
        .collect();
    if words.is_empty() {
        return Err(CliError::NoQuestion);
    }
    Ok(words)
}

#[observe(as_type = "retriever")]
fn look_up(word: &str) -> Result<&'static str, CliError> {
    GLOSSARY
        .iter()
        .find(|(term, _)| *term == word)
        .map(|(_, definition)| *definition)
        .ok_or_else(|| CliError::Unknown(word.to_owned()))
}

#[observe]
fn compose(definitions: &[&str]) -> String {
    let mut text = definitions.join("; ");
    text.push('.');
    text
}

fn main() -> ExitCode {
    let question = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    match answer(&question) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
