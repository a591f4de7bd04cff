//! What code inside an observed function calls: updates of the current trace, observation
//! and generation, events, scores, ids and links, and scoped observations for closures and
//! futures where an attribute does not fit.
//!
//! Every call is O(1) on the caller's thread (no I/O, no stack walking) and never panics.
//! Outside any observation, a call does nothing but print a warning (once per function) and
//! returns `false` (or `None`) to say so.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::AtomicBool;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::capture::CapturedValue;
use crate::client::Langfuse;
use crate::context::current;
use crate::diagnostics;
use crate::ids::{ObservationId, TraceId};
use crate::observation::{
    GenerationDetails, Level, Observation, ObservationType, PromptRef, Score, ScoreValue,
    TraceAttributes,
};
use crate::scope::{begin, Behaviour, Current, Observed, Scope};

/// Runs `apply` on the current observation, or warns once that `call` had nothing to apply to.
fn with_current<R>(
    call: &'static str,
    warned: &'static AtomicBool,
    apply: impl FnOnce(&Current) -> Option<R>,
) -> Option<R> {
    let applied = current().and_then(|active| apply(&active));
    if applied.is_none() {
        diagnostics::warn_once(
            warned,
            format_args!(
                "{call} was called outside any observed function, so it recorded nothing; call \
                 it from inside an #[observe] function or an `observation(..).run(..)` scope"
            ),
        );
    }
    applied
}

macro_rules! warned {
    () => {{
        static WARNED: AtomicBool = AtomicBool::new(false);
        &WARNED
    }};
}

/// Changes to the current trace: last write wins per field, tags accumulate, metadata merges.
///
/// ```
/// use langfuse_observe_core::api::{update_current_trace, TraceUpdate};
///
/// // Outside an observed function this only warns and returns false.
/// let applied = update_current_trace(
///     TraceUpdate::new().session_id("chat-42").user_id("user-7").tag("beta"),
/// );
/// assert!(!applied);
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "an update does nothing until passed to update_current_trace"]
pub struct TraceUpdate {
    name: Option<String>,
    session_id: Option<String>,
    user_id: Option<String>,
    tags: Vec<String>,
    metadata: Map<String, Value>,
    version: Option<String>,
    release: Option<String>,
    input: Option<CapturedValue>,
    output: Option<CapturedValue>,
    public: Option<bool>,
    environment: Option<String>,
}

impl TraceUpdate {
    /// An update that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The trace's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The session (conversation, thread) it belongs to.
    pub fn session_id(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// The end user it belongs to.
    pub fn user_id(mut self, user_id: impl Into<String>) -> Self {
        self.user_id = Some(user_id.into());
        self
    }

    /// Adds a tag (tags accumulate over updates).
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Sets one metadata key (metadata merges over updates). See
    /// [`ObservationUpdate::metadata`] for the keys Langfuse treats specially.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Serialize) -> Self {
        let key = key.into();
        warn_if_reserved(&key);
        self.metadata.insert(key, json_value(&value));
        self
    }

    /// The application version.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// The release, overriding `LANGFUSE_RELEASE`.
    pub fn release(mut self, release: impl Into<String>) -> Self {
        self.release = Some(release.into());
        self
    }

    /// The trace's input (else the root observation's); see [`output`](Self::output) for
    /// which servers store it.
    pub fn input(mut self, input: &(impl Serialize + ?Sized)) -> Self {
        self.input = Some(CapturedValue::json(input));
        self
    }

    /// The trace's output (else the root observation's).
    ///
    /// Only Langfuse v2 and v3 servers store an explicit trace input and output; a v4 server
    /// shows the root observation's instead, so set them there (for example with
    /// [`update_current_observation`] in the outermost observed function).
    pub fn output(mut self, output: &(impl Serialize + ?Sized)) -> Self {
        self.output = Some(CapturedValue::json(output));
        self
    }

    /// Whether the trace can be viewed through a public link.
    pub fn public(mut self, public: bool) -> Self {
        self.public = Some(public);
        self
    }

    /// The environment, overriding `LANGFUSE_TRACING_ENVIRONMENT` for this trace.
    ///
    /// Langfuse stores environments as at most 40 characters of `a-z`, `0-9`, `-` and `_`,
    /// not starting with `langfuse`; a value outside that is normalised the way the server
    /// does it (lower-cased, leading `langfuse` removed, cut to 40, else `default`), with a
    /// warning, so what is sent is what Langfuse shows.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        let given = environment.into();
        let normalised = crate::config::normalise_environment(&given);
        if normalised != given {
            crate::diagnostics::warn(
                "environment",
                format_args!(
                    "environment {given:?} is not one Langfuse stores; it is sent as \
                     {normalised:?} (use lower-case letters, digits, '-' and '_', at most 40, \
                     not starting with \"langfuse\")"
                ),
            );
        }
        self.environment = Some(normalised);
        self
    }

    fn apply(self, trace: &mut TraceAttributes) {
        set(&mut trace.name, self.name);
        set(&mut trace.session_id, self.session_id);
        set(&mut trace.user_id, self.user_id);
        for tag in self.tags {
            if !trace.tags.contains(&tag) {
                trace.tags.push(tag);
            }
        }
        trace.metadata.extend(self.metadata);
        set(&mut trace.version, self.version);
        set(&mut trace.release, self.release);
        set(&mut trace.input, self.input);
        set(&mut trace.output, self.output);
        set(&mut trace.public, self.public);
        set(&mut trace.environment, self.environment);
    }
}

/// Metadata keys the Langfuse server moves or overwrites (LANGFUSE_SERVER.md §4.9).
fn warn_if_reserved(key: &str) {
    if matches!(key, "tools" | "attributes" | "resourceAttributes" | "scope") {
        crate::diagnostics::warn(
            "metadata-key",
            format_args!(
                "metadata key {key:?} has a meaning of its own in Langfuse: `tools` is moved \
                 into the input, `attributes`, `resourceAttributes` and `scope` are \
                 overwritten by the server; choose another key to keep the value as metadata"
            ),
        );
    }
}

fn set<T>(field: &mut Option<T>, value: Option<T>) {
    if value.is_some() {
        *field = value;
    }
}

fn json_value(value: &(impl Serialize + ?Sized)) -> Value {
    CapturedValue::json(value).to_json_value()
}

/// Applies `update` to the trace of the current observation, from any depth of nesting and
/// whatever the root's type. The attributes travel on the observations that end after the
/// update: the current one, or, directly under a
/// [`TraceContext`](crate::context::TraceContext), the next one started under it (if none
/// ever is, a warning says the attributes were not sent). Returns false outside any
/// observation, after the current one has ended, or when the trace is sampled out.
pub fn update_current_trace(update: TraceUpdate) -> bool {
    with_current("update_current_trace", warned!(), |active| {
        let carried = (active.is_remote() && active.trace().sampled()) || active.update(|_| ());
        carried.then(|| active.trace().update(|trace| update.apply(trace)))
    })
    .is_some()
}

/// Changes to the current observation; see [`update_current_observation`].
#[derive(Clone, Debug, Default)]
#[must_use = "an update does nothing until passed to update_current_observation"]
pub struct ObservationUpdate {
    name: Option<String>,
    input: Option<CapturedValue>,
    output: Option<CapturedValue>,
    metadata: Map<String, Value>,
    level: Option<Level>,
    status_message: Option<String>,
    version: Option<String>,
}

impl ObservationUpdate {
    /// An update that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Renames the observation.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Replaces the recorded input.
    pub fn input(mut self, input: &(impl Serialize + ?Sized)) -> Self {
        self.input = Some(CapturedValue::json(input));
        self
    }

    /// Replaces the recorded output (a later return value is not recorded over it).
    pub fn output(mut self, output: &(impl Serialize + ?Sized)) -> Self {
        self.output = Some(CapturedValue::json(output));
        self
    }

    /// Sets one metadata key.
    ///
    /// The Langfuse server gives four keys a meaning of their own: `tools` (a list of tool
    /// definitions is moved into the input), and `attributes`, `resourceAttributes` and
    /// `scope` (overwritten by what the server records there). Setting one of them warns.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Serialize) -> Self {
        let key = key.into();
        warn_if_reserved(&key);
        self.metadata.insert(key, json_value(&value));
        self
    }

    /// The observation's level.
    pub fn level(mut self, level: Level) -> Self {
        self.level = Some(level);
        self
    }

    /// A message explaining the level.
    pub fn status_message(mut self, message: impl Into<String>) -> Self {
        let message: String = message.into();
        self.status_message = Some(crate::capture::message(format_args!("{message}")));
        self
    }

    /// The application version.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    fn apply(self, record: &mut Observation) {
        if let Some(name) = self.name {
            record.name = Cow::Owned(name);
        }
        set(&mut record.input, self.input);
        set(&mut record.output, self.output);
        record.metadata.extend(self.metadata);
        if let Some(level) = self.level {
            record.level = level;
        }
        set(&mut record.status_message, self.status_message);
        set(&mut record.version, self.version);
    }
}

/// Applies `update` to the current observation. Returns false outside any observation.
pub fn update_current_observation(update: ObservationUpdate) -> bool {
    with_current("update_current_observation", warned!(), |active| {
        active.update(|record| update.apply(record)).then_some(())
    })
    .is_some()
}

/// Changes to the current generation: everything an [`ObservationUpdate`] has, plus model,
/// parameters, usage, cost, completion start time and prompt.
///
/// ```
/// use langfuse_observe_core::api::GenerationUpdate;
/// use langfuse_observe_core::observation::PromptRef;
///
/// let update = GenerationUpdate::new()
///     .model("gpt-4o-mini")
///     .model_parameter("temperature", 0.2)
///     .usage("input", 42)
///     .usage("output", 17)
///     .cost("total", 0.00031)
///     .prompt(PromptRef::new("qa-prompt", 3));
/// # let _ = update;
/// ```
#[derive(Clone, Debug, Default)]
#[must_use = "an update does nothing until passed to update_current_generation"]
pub struct GenerationUpdate {
    observation: ObservationUpdate,
    model: Option<String>,
    model_parameters: Map<String, Value>,
    usage: BTreeMap<String, u64>,
    cost: BTreeMap<String, f64>,
    completion_start_time: Option<SystemTime>,
    prompt: Option<PromptRef>,
}

impl GenerationUpdate {
    /// An update that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The observation fields: name, input, output, metadata, level, status, version.
    pub fn observation(mut self, update: ObservationUpdate) -> Self {
        self.observation = update;
        self
    }

    /// The model's name.
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }

    /// One model parameter, such as `temperature`.
    pub fn model_parameter(mut self, key: impl Into<String>, value: impl Serialize) -> Self {
        self.model_parameters.insert(key.into(), json_value(&value));
        self
    }

    /// Tokens of one kind: `input`, `output`, `total`, or a provider's own key.
    pub fn usage(mut self, kind: impl Into<String>, tokens: u64) -> Self {
        self.usage.insert(kind.into(), tokens);
        self
    }

    /// Cost in USD of one kind: `input`, `output`, `total`, …. Langfuse keeps only finite
    /// amounts of zero or more; any other is left out, with a warning.
    pub fn cost(mut self, kind: impl Into<String>, usd: f64) -> Self {
        let kind = kind.into();
        if usd.is_finite() && usd >= 0.0 {
            self.cost.insert(kind, usd);
        } else {
            crate::diagnostics::warn(
                "cost",
                format_args!(
                    "cost {kind:?} of {usd} USD was left out: Langfuse keeps only finite \
                     amounts of zero or more"
                ),
            );
        }
        self
    }

    /// When the first token arrived (streamed generations set it themselves).
    pub fn completion_start_time(mut self, time: SystemTime) -> Self {
        self.completion_start_time = Some(time);
        self
    }

    /// The Langfuse-managed prompt used: a fetched [`Prompt`](crate::prompt::Prompt) (or
    /// [`TextPrompt`](crate::prompt::TextPrompt), [`ChatPrompt`](crate::prompt::ChatPrompt))
    /// links its exact name and version; a fallback links nothing, as Langfuse has no such
    /// version. A [`PromptRef`] names a version directly.
    ///
    /// Inside an observed generation, after fetching and compiling the prompt, this is the
    /// one call that links it:
    ///
    /// ```no_run
    /// use langfuse_observe_core::api::{update_current_generation, GenerationUpdate};
    /// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
    /// let prompt = langfuse_observe_core::prompt("qa").fetch().await?;
    /// update_current_generation(GenerationUpdate::new().prompt(&prompt));
    /// # Ok(())
    /// # }
    /// ```
    pub fn prompt(mut self, prompt: impl Into<Option<PromptRef>>) -> Self {
        if let Some(link) = prompt.into() {
            self.prompt = Some(link);
        }
        self
    }

    fn apply(self, record: &mut Observation) {
        self.observation.apply(record);
        // Model and usage make it a generation, whatever it started as.
        if record.kind == ObservationType::Span {
            record.kind = ObservationType::Generation;
        }
        let generation = record
            .generation
            .get_or_insert_with(|| Box::new(GenerationDetails::default()));
        set(&mut generation.model, self.model);
        generation.model_parameters.extend(self.model_parameters);
        generation.usage_details.extend(self.usage);
        generation.cost_details.extend(self.cost);
        set(
            &mut generation.completion_start_time,
            self.completion_start_time,
        );
        set(&mut generation.prompt, self.prompt);
    }
}

/// Applies `update` to the current observation, making a span a generation. Returns false
/// outside any observation.
pub fn update_current_generation(update: GenerationUpdate) -> bool {
    with_current("update_current_generation", warned!(), |active| {
        active.update(|record| update.apply(record)).then_some(())
    })
    .is_some()
}

/// Records a point-in-time event (no duration) under the current observation, with the
/// fields of `update`. Returns false outside any observation.
pub fn create_event(name: impl Into<String>, update: ObservationUpdate) -> bool {
    let name = name.into();
    with_current("create_event", warned!(), |active| {
        if !active.trace().sampled() {
            if active.trace().shed() {
                active
                    .trace()
                    .with_client(|client| client.exporter().count_shed());
            }
            return Some(());
        }
        let mut event = Observation::new(active.trace_id(), ObservationId::random(), name);
        event.kind = ObservationType::Event;
        event.parent_id = active.id();
        event.remote_parent = active.is_remote();
        update.apply(&mut event);
        active.trace().with_client(|client| client.record(event));
        Some(())
    })
    .is_some()
}

/// The id of the current trace.
pub fn current_trace_id() -> Option<TraceId> {
    current().map(|active| active.trace_id())
}

/// The id of the current observation.
pub fn current_observation_id() -> Option<ObservationId> {
    current().and_then(|active| active.id())
}

/// The trace's page in the Langfuse UI, from the trace's client: the current trace's, else
/// the client in effect here. See [`Langfuse::trace_url`](crate::client::Langfuse::trace_url)
/// for the form it takes before the project id is known.
pub fn trace_url(trace_id: TraceId) -> String {
    with_client_of(trace_id, |client| client.trace_url(trace_id))
}

/// Runs `use_it` with the client that `trace_id`'s records go to, as far as this thread
/// knows: the current trace's when it is that trace, else the client in effect here.
fn with_client_of<R>(trace_id: TraceId, use_it: impl FnOnce(&Langfuse) -> R) -> R {
    match current().filter(|active| active.trace_id() == trace_id) {
        Some(active) => active.trace().with_client(use_it),
        None => use_it(&crate::client()),
    }
}

/// The current trace's page in the Langfuse UI.
pub fn current_trace_url() -> Option<String> {
    current_trace_id().map(trace_url)
}

/// Sends `score`, for any trace or observation by id, to the trace's client (the current
/// trace's when it is that trace, else the client in effect here). A score of a trace that
/// sampling left out is not sent either (and false is returned), as the trace itself is not.
pub fn score(score: Score) -> bool {
    with_client_of(score.trace_id, |client| client.score(score))
}

/// Scores the current trace. Returns false outside any observation.
///
/// For a comment, an id or a config id, build the [`Score`] with
/// [`Score::for_current_trace`] and send it with [`score`].
pub fn score_current_trace(name: impl Into<String>, value: impl Into<ScoreValue>) -> bool {
    let name = name.into();
    let value = value.into();
    with_current("score_current_trace", warned!(), |active| {
        Some(score(Score::new(active.trace_id(), name, value)))
    })
    .is_some()
}

/// Scores the current observation. Returns false outside any observation.
pub fn score_current_observation(name: impl Into<String>, value: impl Into<ScoreValue>) -> bool {
    let name = name.into();
    let value = value.into();
    with_current("score_current_observation", warned!(), |active| {
        let observation = active.id()?;
        Some(score(
            Score::new(active.trace_id(), name, value).observation(observation),
        ))
    })
    .is_some()
}

/// An observation around a closure or a future, for code where `#[observe]` does not fit.
///
/// ```
/// use langfuse_observe_core::api::observation;
/// use langfuse_observe_core::observation::ObservationType;
///
/// let sum = observation("add")
///     .as_type(ObservationType::Tool)
///     .input(&[1, 2])
///     .run(|| 1 + 2);
/// assert_eq!(sum, 3);
/// ```
#[derive(Clone, Debug)]
#[must_use = "the observation starts when `run` or `run_async` is called"]
pub struct ScopedObservation {
    name: Cow<'static, str>,
    kind: ObservationType,
    input: Option<CapturedValue>,
    flush: bool,
}

/// Starts building an observation named `name` around a closure or future.
pub fn observation(name: impl Into<Cow<'static, str>>) -> ScopedObservation {
    ScopedObservation {
        name: name.into(),
        kind: ObservationType::Span,
        input: None,
        flush: true,
    }
}

impl ScopedObservation {
    /// Its type (default span).
    pub fn as_type(mut self, kind: ObservationType) -> Self {
        self.kind = kind;
        self
    }

    /// Its input.
    pub fn input(mut self, input: &(impl Serialize + ?Sized)) -> Self {
        self.input = Some(CapturedValue::json(input));
        self
    }

    /// Whether it flushes when it is the outermost observation (default true).
    pub fn flush(mut self, flush: bool) -> Self {
        self.flush = flush;
        self
    }

    fn begin(self) -> Option<Scope> {
        let behaviour = Behaviour {
            capture_output: true,
            flush: self.flush,
        };
        let input = self.input;
        begin(self.name, self.kind, behaviour, |record| {
            record.input = input
        })
    }

    /// Runs `work` as the observation's body; set its output with
    /// [`update_current_observation`]. A panic is recorded, then goes on.
    pub fn run<R>(self, work: impl FnOnce() -> R) -> R {
        let mut scope = self.begin();
        let value = Scope::run_lent(&mut scope, work);
        if let Some(scope) = scope {
            scope.end();
        }
        value
    }

    /// Runs `work` as the observation's body, which lasts until the future completes (or
    /// WARNING "cancelled" if it is dropped first).
    pub async fn run_async<F: Future>(self, work: F) -> F::Output {
        Observed::new(self.begin(), work, |_: &mut Scope, _: &F::Output| {}).await
    }
}

impl Score {
    /// A score of the current trace; `None` outside any observation.
    pub fn for_current_trace(
        name: impl Into<String>,
        value: impl Into<ScoreValue>,
    ) -> Option<Self> {
        current().map(|active| Self::new(active.trace_id(), name, value.into()))
    }

    /// A score of the current observation; `None` outside any observation.
    pub fn for_current_observation(
        name: impl Into<String>,
        value: impl Into<ScoreValue>,
    ) -> Option<Self> {
        let active = current()?;
        let observation = active.id()?;
        Some(Self::new(active.trace_id(), name, value.into()).observation(observation))
    }

    /// About the observation `id` rather than the whole trace.
    pub fn observation(mut self, id: ObservationId) -> Self {
        self.observation_id = Some(id);
        self
    }

    /// A free-text comment.
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.comment = Some(comment.into());
        self
    }

    /// The score's own id (scores with the same id update each other).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }

    /// A score configuration defined in Langfuse.
    pub fn config_id(mut self, config_id: impl Into<String>) -> Self {
        self.config_id = Some(config_id.into());
        self
    }
}

impl From<f64> for ScoreValue {
    fn from(value: f64) -> Self {
        Self::Numeric(value)
    }
}

macro_rules! numeric_score {
    ($($number:ty),*) => {$(
        impl From<$number> for ScoreValue {
            fn from(value: $number) -> Self {
                Self::Numeric(f64::from(value))
            }
        }
    )*};
}

numeric_score!(f32, i8, i16, i32, u8, u16, u32);

impl From<bool> for ScoreValue {
    fn from(value: bool) -> Self {
        Self::Boolean(value)
    }
}

impl From<&str> for ScoreValue {
    fn from(label: &str) -> Self {
        Self::Categorical(label.to_owned())
    }
}

impl From<String> for ScoreValue {
    fn from(label: String) -> Self {
        Self::Categorical(label)
    }
}
