//! The local exporter used when no keys are set: a readable trace tree on stderr, or JSON lines
//! (the ingestion events) appended to a file.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::time::Duration;

use crate::config::Config;
use crate::diagnostics;
use crate::ids::{ObservationId, TraceId};
use crate::observation::{Level, Observation, Score};

use super::ingestion::IngestionEncoder;

/// Observations of unfinished traces kept for the tree; past this, they are printed as they are.
const MAX_BUFFERED: usize = 10_000;
const PREVIEW_CHARS: usize = 120;

enum Output {
    Tree {
        buffered: HashMap<TraceId, Vec<Observation>>,
        count: usize,
    },
    JsonLines(BufWriter<File>),
}

pub(crate) struct Console {
    output: Output,
    encoder: IngestionEncoder,
}

impl Console {
    pub(crate) fn new(config: &Config) -> Self {
        let output = match config.console_file() {
            Some(path) => match OpenOptions::new().create(true).append(true).open(path) {
                Ok(file) => {
                    diagnostics::notice(format_args!(
                        "no Langfuse keys set: writing traces as JSON lines to {}. Set \
                         LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY to send them to Langfuse.",
                        path.display()
                    ));
                    Output::JsonLines(BufWriter::new(file))
                }
                Err(error) => {
                    diagnostics::warn(
                        "console-file",
                        format_args!(
                            "cannot open LANGFUSE_CONSOLE_FILE {}: {error}; printing traces to \
                             stderr instead",
                            path.display()
                        ),
                    );
                    Self::tree()
                }
            },
            None => Self::tree(),
        };
        Self {
            output,
            encoder: IngestionEncoder::new(config),
        }
    }

    fn tree() -> Output {
        diagnostics::notice(
            "no Langfuse keys set: printing traces to stderr. Set LANGFUSE_PUBLIC_KEY and \
             LANGFUSE_SECRET_KEY (and LANGFUSE_BASE_URL) to send them to Langfuse instead.",
        );
        Output::Tree {
            buffered: HashMap::new(),
            count: 0,
        }
    }

    /// Writes an observation; the tree waits for the trace's root so children print under it.
    /// Returns false when writing failed.
    pub(crate) fn observation(&mut self, observation: Observation) -> bool {
        match &mut self.output {
            Output::JsonLines(file) => {
                let mut events = Vec::new();
                self.encoder.observation(&observation, 0, &mut events);
                events
                    .iter()
                    .all(|event| writeln!(file, "{}", event.json()).is_ok())
            }
            Output::Tree { buffered, count } => {
                let trace_id = observation.trace_id;
                let is_root = observation.parent_id.is_none();
                buffered.entry(trace_id).or_default().push(observation);
                *count += 1;
                if is_root {
                    if let Some(trace) = buffered.remove(&trace_id) {
                        *count -= trace.len();
                        print_tree(trace_id, &trace);
                    }
                } else if *count > MAX_BUFFERED {
                    self.flush();
                }
                true
            }
        }
    }

    pub(crate) fn score(&mut self, score: &Score) -> bool {
        match &mut self.output {
            Output::JsonLines(file) => {
                let mut events = Vec::new();
                self.encoder.score(score, 0, &mut events);
                events
                    .iter()
                    .all(|event| writeln!(file, "{}", event.json()).is_ok())
            }
            Output::Tree { .. } => {
                let target = score
                    .observation_id
                    .map_or_else(String::new, |id| format!(" observation {id}"));
                eprintln!(
                    "score {} = {} on trace {}{target}{}",
                    score.name,
                    score.value,
                    score.trace_id,
                    score
                        .comment
                        .as_ref()
                        .map_or_else(String::new, |c| format!(" ({c})"))
                );
                true
            }
        }
    }

    /// Pushes the lines of a batch to the file, so a reader sees whole batches.
    pub(crate) fn end_batch(&mut self) {
        if let Output::JsonLines(file) = &mut self.output {
            if let Err(error) = file.flush() {
                diagnostics::warn("console-file", format_args!("cannot write traces: {error}"));
            }
        }
    }

    /// Prints traces whose root has not ended here (continued traces, or a flush mid-trace)
    /// and pushes buffered lines to the file.
    pub(crate) fn flush(&mut self) {
        match &mut self.output {
            Output::JsonLines(_) => self.end_batch(),
            Output::Tree { buffered, count } => {
                for (trace_id, trace) in buffered.drain() {
                    print_tree(trace_id, &trace);
                }
                *count = 0;
            }
        }
    }
}

impl super::Sink for Console {
    async fn deliver(&mut self, records: super::Records, settle: &super::Settle<'_>) {
        let total = records.observations.len() + records.scores.len();
        let mut bytes = 0;
        let mut written = 0;
        for (observation, size) in records.observations {
            written += usize::from(self.observation(observation));
            bytes += size;
        }
        for (score, size) in &records.scores {
            written += usize::from(self.score(score));
            bytes += size;
        }
        self.end_batch();
        settle.settle(written, total - written, bytes);
    }

    fn flush(&mut self) {
        Console::flush(self);
    }
}

fn print_tree(trace_id: TraceId, observations: &[Observation]) {
    let mut out = String::new();
    let trace = observations.iter().rev().find_map(|o| o.trace.as_deref());
    let _ = write!(out, "trace {trace_id}");
    if let Some(trace) = trace {
        for (label, value) in [
            ("name", &trace.name),
            ("session", &trace.session_id),
            ("user", &trace.user_id),
        ] {
            if let Some(value) = value {
                let _ = write!(out, " {label}={value}");
            }
        }
        if !trace.tags.is_empty() {
            let _ = write!(out, " tags=[{}]", trace.tags.join(", "));
        }
    }
    out.push('\n');
    let ids: std::collections::HashSet<ObservationId> = observations.iter().map(|o| o.id).collect();
    let mut children: HashMap<Option<ObservationId>, Vec<&Observation>> = HashMap::new();
    for observation in observations {
        // A parent that did not end here (a remote or still-open one) shows as a top level.
        let parent = observation.parent_id.filter(|parent| ids.contains(parent));
        children.entry(parent).or_default().push(observation);
    }
    for list in children.values_mut() {
        list.sort_by_key(|o| o.start_time);
    }
    write_children(&mut out, &children, None, "");
    eprint!("{out}");
}

fn write_children(
    out: &mut String,
    children: &HashMap<Option<ObservationId>, Vec<&Observation>>,
    parent: Option<ObservationId>,
    indent: &str,
) {
    let Some(list) = children.get(&parent) else {
        return;
    };
    for (i, observation) in list.iter().enumerate() {
        let last = i + 1 == list.len();
        let (branch, next) = if last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        let duration = observation
            .end_time
            .duration_since(observation.start_time)
            .unwrap_or(Duration::ZERO);
        let _ = write!(
            out,
            "{indent}{branch}{} [{}] {:.1} ms",
            observation.name,
            observation.kind,
            duration.as_secs_f64() * 1000.0
        );
        if observation.level != Level::Default {
            let _ = write!(out, " {}", observation.level.as_str());
        }
        if let Some(message) = &observation.status_message {
            let _ = write!(out, ": {}", preview(message));
        }
        out.push('\n');
        let detail = format!("{indent}{next}   ");
        if let Some(generation) = &observation.generation {
            if let Some(model) = &generation.model {
                let _ = writeln!(out, "{detail}model: {model}");
            }
            if !generation.usage_details.is_empty() {
                let usage: Vec<String> = generation
                    .usage_details
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let _ = writeln!(out, "{detail}usage: {}", usage.join(" "));
            }
        }
        if let Some(input) = &observation.input {
            let _ = writeln!(out, "{detail}input: {}", preview(input.as_str()));
        }
        if let Some(output) = &observation.output {
            let _ = writeln!(out, "{detail}output: {}", preview(output.as_str()));
        }
        write_children(
            out,
            children,
            Some(observation.id),
            &format!("{indent}{next}"),
        );
    }
}

fn preview(text: &str) -> String {
    let single_line = text.replace('\n', "\\n");
    crate::export::transport::clip(&single_line, PREVIEW_CHARS)
}
