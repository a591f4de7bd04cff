//! The project's prompt library (LANGFUSE_SERVER.md §7.1): versions of each prompt with their
//! labels, as `GET /api/public/v2/prompts/{name}` serves them and generations link to them
//! (§4.13).

use serde_json::{json, Value};

use crate::js::Ordered;
use crate::time;

/// The label every newly created version gets (§7.1).
const LATEST: &str = "latest";

/// The label the route serves when neither a label nor a version is asked for.
pub(crate) const PRODUCTION: &str = "production";

/// A prompt version to create with [`TestServer::create_prompt`](crate::TestServer::create_prompt).
///
/// ```
/// use langfuse_observe_testing::NewPrompt;
///
/// let text = NewPrompt::text("support/answer", "Answer {{question}}")
///     .label("production")
///     .config(serde_json::json!({"temperature": 0.2}));
/// let chat = NewPrompt::chat("support/chat", serde_json::json!([
///     {"role": "system", "content": "You help {{user}}."},
///     {"type": "placeholder", "name": "history"},
/// ]));
/// # let _ = (text, chat);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct NewPrompt {
    name: String,
    kind: &'static str,
    prompt: Value,
    config: Value,
    labels: Vec<String>,
    tags: Vec<String>,
    commit_message: Option<String>,
}

impl NewPrompt {
    /// A text prompt: one template.
    pub fn text(name: impl Into<String>, template: impl Into<String>) -> Self {
        Self::new(name.into(), "text", Value::String(template.into()))
    }

    /// A chat prompt: a JSON array of `{role, content}` messages and `{type: "placeholder",
    /// name}` entries, stored as given.
    pub fn chat(name: impl Into<String>, messages: Value) -> Self {
        Self::new(name.into(), "chat", messages)
    }

    fn new(name: String, kind: &'static str, prompt: Value) -> Self {
        Self {
            name,
            kind,
            prompt,
            config: json!({}),
            labels: Vec::new(),
            tags: Vec::new(),
            commit_message: None,
        }
    }

    /// Gives the new version this label, taking it from any other version of the prompt.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.labels.push(label.into());
        self
    }

    /// The version's config (default `{}`).
    pub fn config(mut self, config: Value) -> Self {
        self.config = config;
        self
    }

    /// The prompt's tags, which every version of it shares.
    pub fn tags(mut self, tags: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// The version's commit message.
    pub fn commit_message(mut self, message: impl Into<String>) -> Self {
        self.commit_message = Some(message.into());
        self
    }
}

/// One stored prompt version.
#[derive(Clone, Debug)]
pub(crate) struct PromptVersion {
    name: String,
    version: i64,
    kind: &'static str,
    prompt: Value,
    config: Value,
    labels: Vec<String>,
    tags: Vec<String>,
    commit_message: Option<String>,
    created_at: String,
}

/// Which version a request asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Selector {
    Label(String),
    Version(i64),
}

/// Every prompt version of the project.
#[derive(Clone, Debug, Default)]
pub(crate) struct PromptLibrary {
    versions: Vec<PromptVersion>,
}

impl PromptLibrary {
    /// Registers a version with no content and no labels, for generations to link to.
    pub(crate) fn register(&mut self, name: String, version: i64) {
        let created_at = time::iso(time::now_millis());
        self.versions.push(PromptVersion {
            name,
            version,
            kind: "text",
            prompt: Value::String(String::new()),
            config: json!({}),
            labels: Vec::new(),
            tags: Vec::new(),
            commit_message: None,
            created_at,
        });
    }

    /// Creates the next version of the prompt (1 for a new name), with the `latest` label
    /// and the labels asked for, which leave the other versions; returns its number.
    pub(crate) fn create(&mut self, new: NewPrompt) -> i64 {
        let version = self
            .versions
            .iter()
            .filter(|v| v.name == new.name)
            .map(|v| v.version)
            .max()
            .unwrap_or(0)
            + 1;
        let mut labels = new.labels;
        labels.push(LATEST.to_owned());
        labels.dedup();
        // Tags belong to the prompt: new ones replace them on every version, and a version
        // created without any keeps the prompt's.
        let tags = match self.versions.iter().rev().find(|v| v.name == new.name) {
            Some(previous) if new.tags.is_empty() => previous.tags.clone(),
            _ => new.tags,
        };
        for other in self.versions.iter_mut().filter(|v| v.name == new.name) {
            other.labels.retain(|label| !labels.contains(label));
            other.tags.clone_from(&tags);
        }
        self.versions.push(PromptVersion {
            name: new.name,
            version,
            kind: new.kind,
            prompt: new.prompt,
            config: new.config,
            labels,
            tags,
            commit_message: new.commit_message,
            created_at: time::iso(time::now_millis()),
        });
        version
    }

    /// Moves `labels` to this version, taking them from the others; false when there is no
    /// such version.
    pub(crate) fn move_labels(&mut self, name: &str, version: i64, labels: &[String]) -> bool {
        if !self.exists(name, version) {
            return false;
        }
        for stored in self.versions.iter_mut().filter(|v| v.name == name) {
            if stored.version == version {
                for label in labels {
                    if !stored.labels.contains(label) {
                        stored.labels.push(label.clone());
                    }
                }
            } else {
                stored.labels.retain(|label| !labels.contains(label));
            }
        }
        true
    }

    pub(crate) fn exists(&self, name: &str, version: i64) -> bool {
        self.versions
            .iter()
            .any(|v| v.name == name && v.version == version)
    }

    /// The route's 200 body for the version asked for, if there is one.
    pub(crate) fn answer(
        &self,
        name: &str,
        selector: &Selector,
        project_id: &str,
    ) -> Option<String> {
        let found = self.versions.iter().find(|v| {
            v.name == name
                && match selector {
                    Selector::Version(version) => v.version == *version,
                    Selector::Label(label) => v.labels.contains(label),
                }
        })?;
        Some(
            Ordered::new()
                .field("id", format!("prompt-{}-{}", found.name, found.version))
                .field("createdAt", found.created_at.clone())
                .field("updatedAt", found.created_at.clone())
                .field("projectId", project_id)
                .field("createdBy", "API")
                .field("prompt", found.prompt.clone())
                .field("name", found.name.clone())
                .field("version", found.version)
                .field("type", found.kind)
                .field("isActive", found.labels.iter().any(|l| l == PRODUCTION))
                .field("config", found.config.clone())
                .field("tags", found.tags.clone())
                .field("labels", found.labels.clone())
                .field("commitMessage", found.commit_message.clone())
                .field("resolutionGraph", Value::Null)
                .build(),
        )
    }
}

/// The 404 `message` text (§7.1).
pub(crate) fn not_found_message(name: &str, selector: &Selector) -> String {
    match selector {
        Selector::Label(label) => format!("Prompt not found: '{name}' with label '{label}'"),
        Selector::Version(version) => format!("Prompt not found: '{name}' with version {version}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(library: &PromptLibrary, name: &str, selector: Selector) -> Option<Value> {
        library
            .answer(name, &selector, "p")
            .map(|body| serde_json::from_str(&body).expect("JSON"))
    }

    #[test]
    fn every_new_version_gets_latest_and_takes_its_labels_from_the_others() {
        let mut library = PromptLibrary::default();
        assert_eq!(
            library.create(NewPrompt::text("a", "one").label("production")),
            1
        );
        assert_eq!(library.create(NewPrompt::text("a", "two")), 2);
        let production =
            answer(&library, "a", Selector::Label("production".into())).expect("served");
        assert_eq!(production["prompt"], "one");
        assert_eq!(production["isActive"], true);
        let latest = answer(&library, "a", Selector::Label("latest".into())).expect("served");
        assert_eq!(latest["version"], 2);
        assert_eq!(latest["labels"], json!(["latest"]));
        assert_eq!(latest["isActive"], false);
        assert_eq!(
            answer(&library, "a", Selector::Version(1)).expect("served")["labels"],
            json!(["production"])
        );
    }

    #[test]
    fn moving_a_label_takes_it_from_the_version_that_had_it() {
        let mut library = PromptLibrary::default();
        library.create(NewPrompt::text("a", "one").label("production"));
        library.create(NewPrompt::text("a", "two"));
        assert!(library.move_labels("a", 2, &["production".to_owned()]));
        let production =
            answer(&library, "a", Selector::Label("production".into())).expect("served");
        assert_eq!(production["version"], 2);
        assert!(!library.move_labels("a", 3, &["production".to_owned()]));
    }

    #[test]
    fn not_found_names_the_label_or_the_version() {
        assert_eq!(
            not_found_message("a/b", &Selector::Label("production".into())),
            "Prompt not found: 'a/b' with label 'production'"
        );
        assert_eq!(
            not_found_message("a", &Selector::Version(3)),
            "Prompt not found: 'a' with version 3"
        );
    }
}
