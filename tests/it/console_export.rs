//! The console exporter: with a file, one JSON line per ingestion event, counted as exported;
//! on stderr, a readable tree with scores shown as values.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use langfuse_observe::{
    config::ExporterKind,
    export::{Observation, TraceAttributes},
    trace::{ObservationId, ObservationType, Score, ScoreValue, TraceId},
    Config, Langfuse,
};
use serde_json::Value;

use crate::support::example::{clear_langfuse_env, example_command};
use crate::support::exporter::assert_accounted;
use crate::support::process::{assert_child_passes, is_child};
use crate::support::WAIT;

/// A file path of its own in the temporary directory, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Self(std::env::temp_dir().join(format!(
            "langfuse-observe-{name}-{}-{nanos}.jsonl",
            std::process::id()
        )))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn console_file_gets_one_json_line_per_event() {
    let file = TempFile::new("console");
    let config = Config::builder()
        .exporter(ExporterKind::Console)
        .console_file(&file.0)
        .environment("local")
        .build()
        .unwrap();
    let exporter = Langfuse::new(&config).unwrap();

    let trace = TraceId::random();
    let root_id = ObservationId::random();
    let mut root = Observation::new(trace, root_id, "root");
    let mut attributes = TraceAttributes::default();
    attributes.session_id = Some("session-1".into());
    root.trace = Some(Arc::new(attributes));
    root.input = Some("hello".into());
    let mut generation = Observation::new(trace, ObservationId::random(), "llm");
    generation.parent_id = Some(root_id);
    generation.kind = ObservationType::Generation;
    let mut event = Observation::new(trace, ObservationId::random(), "note");
    event.parent_id = Some(root_id);
    event.kind = ObservationType::Event;
    assert!(exporter.record(generation));
    assert!(exporter.record(event));
    assert!(exporter.record(root));
    assert!(exporter.score(Score::new(trace, "quality", ScoreValue::Numeric(0.5))));

    let report = exporter.flush_blocking(WAIT);
    assert!(report.completed, "{report:?}");
    let stats = assert_accounted(&exporter, 4);
    assert_eq!(stats.exported, 4, "{stats:?}");

    let text = std::fs::read_to_string(&file.0).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let types: Vec<&str> = lines
        .iter()
        .map(|line| line["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "generation-create",
            "generation-update",
            "event-create",
            "trace-create",
            "span-create",
            "span-update",
            "score-create",
        ]
    );
    for line in &lines {
        assert!(line["id"].as_str().is_some_and(|id| !id.is_empty()));
        assert!(line["timestamp"].as_str().is_some());
        assert!(line["body"].is_object());
    }
    let root_create = &lines[4]["body"];
    assert_eq!(root_create["id"], root_id.to_string());
    assert_eq!(root_create["traceId"], trace.to_string());
    assert_eq!(root_create["input"], "hello");
    assert_eq!(root_create["environment"], "local");
    assert_eq!(lines[5]["body"]["id"], root_id.to_string(), "same body id");
    assert_eq!(lines[3]["body"]["sessionId"], "session-1");
    assert_eq!(lines[6]["body"]["dataType"], "NUMERIC");

    let report = exporter.shutdown_blocking(WAIT);
    assert!(report.completed, "{report:?}");
}

/// Scores print as a person reads them (`0.45`, `true`, `"en"`), not as Rust `Debug`.
#[test]
fn scores_print_as_values_on_stderr() {
    let mut command = example_command("scores");
    clear_langfuse_env(&mut command);
    let output = command.output().unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for line in [
        "score language = \"en\"",
        "score has-citation = true",
        "score quality = 0.45",
    ] {
        assert!(stderr.contains(line), "{line:?} in {stderr}");
    }
    assert!(!stderr.contains("Numeric("), "{stderr}");
}

/// The child of [`a_trace_is_printed_whole_once_its_root_ends`]: stderr is the process's, so
/// a test that reads what is printed there runs alone.
const TREE_CHILD: &str = "console_export::tree_child";

#[langfuse_observe::observe]
fn slow_root() {
    part_of_the_slow_trace();
    std::thread::sleep(std::time::Duration::from_millis(400));
}

#[langfuse_observe::observe]
fn part_of_the_slow_trace() {}

#[langfuse_observe::observe]
fn quick_root() {}

/// The child: a slow trace runs while another trace's root ends and flushes, recorded by the
/// process default, which without keys prints to stderr.
#[test]
#[ignore = "run in a child process by a_trace_is_printed_whole_once_its_root_ends"]
fn tree_child() {
    if !is_child(TREE_CHILD) {
        return;
    }
    let slow = std::thread::spawn(slow_root);
    std::thread::sleep(std::time::Duration::from_millis(100));
    quick_root();
    slow.join().unwrap();
}

/// On stderr, a trace is printed whole once its root ends, not in pieces whenever another
/// trace's root flushes.
#[test]
fn a_trace_is_printed_whole_once_its_root_ends() {
    let output = assert_child_passes(TREE_CHILD, |_| {});
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let line = |name: &str| {
        let lines: Vec<usize> = stderr
            .lines()
            .enumerate()
            .filter(|(_, line)| line.contains(name))
            .map(|(at, _)| at)
            .collect();
        assert_eq!(lines.len(), 1, "{name} printed once: {stderr}");
        lines[0]
    };
    let root = line("slow_root");
    assert_eq!(line("part_of_the_slow_trace"), root + 1, "{stderr}");
    assert!(line("quick_root") < root, "{stderr}");
}
