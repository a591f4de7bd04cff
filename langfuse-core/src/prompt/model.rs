//! The prompts as the program sees them: text and chat prompts with their version, config,
//! labels and tags, read from the server's answer or made from a fallback.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::observation::PromptRef;

/// A prompt fetched from Langfuse (or made from the caller's fallback): a text or a chat
/// prompt. Cheap to clone: the cache and every caller share one copy.
///
/// ```
/// use langfuse_observe_core::prompt::{Prompt, TextPrompt};
///
/// fn show(prompt: &Prompt) {
///     match prompt {
///         Prompt::Text(text) => println!("{} v{}: {}", text.name, text.version, text.prompt),
///         Prompt::Chat(chat) => println!("{} v{}: {} messages", chat.name, chat.version,
///             chat.messages.len()),
///         _ => {}
///     }
/// }
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Prompt {
    /// A prompt of type `text`: one template string.
    Text(Arc<TextPrompt>),
    /// A prompt of type `chat`: a list of messages and message placeholders.
    Chat(Arc<ChatPrompt>),
}

/// A text prompt: one `{{variable}}` template.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct TextPrompt {
    /// The prompt's name, folders included (`support/answer`).
    pub name: String,
    /// The version fetched; for a fallback, the version asked for, else 0.
    pub version: u32,
    /// The template.
    pub prompt: String,
    /// The prompt's config (model, temperature, …), `{}` when it has none.
    pub config: Value,
    /// The labels of this version (`production`, `latest`, …).
    pub labels: Vec<String>,
    /// The prompt's tags.
    pub tags: Vec<String>,
    pub(crate) is_fallback: bool,
}

/// A chat prompt: messages whose contents are `{{variable}}` templates, and placeholders
/// that [`compile`](ChatPrompt::compile) fills with lists of messages.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct ChatPrompt {
    /// The prompt's name, folders included.
    pub name: String,
    /// The version fetched; for a fallback, the version asked for, else 0.
    pub version: u32,
    /// The messages and placeholders, in order.
    pub messages: Vec<ChatMessage>,
    /// The prompt's config, `{}` when it has none.
    pub config: Value,
    /// The labels of this version.
    pub labels: Vec<String>,
    /// The prompt's tags.
    pub tags: Vec<String>,
    pub(crate) is_fallback: bool,
}

/// One entry of a chat prompt: a message, or a placeholder for a list of messages given
/// when the prompt is compiled. Serialized as Langfuse does: `{"role", "content"}` and
/// `{"type": "placeholder", "name"}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatMessage {
    /// A message with a role (`system`, `user`, `assistant`, …) and a content.
    Message {
        /// Who speaks.
        role: String,
        /// What is said; a `{{variable}}` template until compiled.
        content: String,
    },
    /// Where a list of messages goes, such as a conversation's history.
    Placeholder {
        /// The name the messages are given under when compiling.
        name: String,
    },
}

impl ChatMessage {
    /// A message: `ChatMessage::new("user", "Hello {{name}}")`.
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self::Message {
            role: role.into(),
            content: content.into(),
        }
    }

    /// A placeholder for a list of messages given under `name` when compiling.
    pub fn placeholder(name: impl Into<String>) -> Self {
        Self::Placeholder { name: name.into() }
    }

    /// The role of a message; `None` for a placeholder.
    pub fn role(&self) -> Option<&str> {
        match self {
            Self::Message { role, .. } => Some(role),
            Self::Placeholder { .. } => None,
        }
    }

    /// The content of a message; `None` for a placeholder.
    pub fn content(&self) -> Option<&str> {
        match self {
            Self::Message { content, .. } => Some(content),
            Self::Placeholder { .. } => None,
        }
    }
}

/// The fields either kind of entry may have, as the server writes them.
#[derive(Deserialize, Serialize)]
struct WireMessage {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    name: Option<String>,
}

impl Serialize for ChatMessage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let wire = match self {
            Self::Message { role, content } => WireMessage {
                kind: None,
                role: Some(role.clone()),
                content: Some(Value::String(content.clone())),
                name: None,
            },
            Self::Placeholder { name } => WireMessage {
                kind: Some("placeholder".to_owned()),
                role: None,
                content: None,
                name: Some(name.clone()),
            },
        };
        wire.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ChatMessage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireMessage::deserialize(deserializer)?;
        if wire.kind.as_deref() == Some("placeholder") {
            let name = wire
                .name
                .ok_or_else(|| serde::de::Error::missing_field("name"))?;
            return Ok(Self::Placeholder { name });
        }
        let role = wire
            .role
            .ok_or_else(|| serde::de::Error::missing_field("role"))?;
        let content = match wire.content {
            Some(Value::String(text)) => text,
            Some(Value::Null) | None => String::new(),
            // Multi-part contents are kept whole, as JSON text.
            Some(other) => other.to_string(),
        };
        Ok(Self::Message { role, content })
    }
}

impl Prompt {
    /// The prompt's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Text(text) => &text.name,
            Self::Chat(chat) => &chat.name,
        }
    }

    /// The version fetched; for a fallback, the version asked for, else 0.
    pub fn version(&self) -> u32 {
        match self {
            Self::Text(text) => text.version,
            Self::Chat(chat) => chat.version,
        }
    }

    /// The prompt's config as JSON, `{}` when it has none.
    pub fn config(&self) -> &Value {
        match self {
            Self::Text(text) => &text.config,
            Self::Chat(chat) => &chat.config,
        }
    }

    /// The config read into a type of the program's own; see [`TextPrompt::config_as`].
    pub fn config_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        T::deserialize(self.config())
    }

    /// The labels of this version.
    pub fn labels(&self) -> &[String] {
        match self {
            Self::Text(text) => &text.labels,
            Self::Chat(chat) => &chat.labels,
        }
    }

    /// The prompt's tags.
    pub fn tags(&self) -> &[String] {
        match self {
            Self::Text(text) => &text.tags,
            Self::Chat(chat) => &chat.tags,
        }
    }

    /// Whether this is the caller's fallback rather than a prompt from Langfuse. A fallback is
    /// never linked to a generation.
    pub fn is_fallback(&self) -> bool {
        match self {
            Self::Text(text) => text.is_fallback,
            Self::Chat(chat) => chat.is_fallback,
        }
    }

    /// The text prompt, if this is one.
    pub fn as_text(&self) -> Option<&TextPrompt> {
        match self {
            Self::Text(text) => Some(text),
            Self::Chat(_) => None,
        }
    }

    /// The chat prompt, if this is one.
    pub fn as_chat(&self) -> Option<&ChatPrompt> {
        match self {
            Self::Chat(chat) => Some(chat),
            Self::Text(_) => None,
        }
    }

    /// The link a generation gets: the exact name and version, or `None` for a fallback.
    pub fn link(&self) -> Option<PromptRef> {
        match self {
            Self::Text(text) => text.link(),
            Self::Chat(chat) => chat.link(),
        }
    }
}

macro_rules! shared_accessors {
    ($ty:ty) => {
        impl $ty {
            /// Whether this is the caller's fallback rather than a prompt from Langfuse. A
            /// fallback is never linked to a generation.
            pub fn is_fallback(&self) -> bool {
                self.is_fallback
            }

            /// The config read into a type of the program's own, e.g. a struct with `model`
            /// and `temperature`.
            ///
            /// ```
            /// # use langfuse_observe_core::prompt::{Fallback, Prompt};
            /// #[derive(serde::Deserialize)]
            /// struct ModelConfig {
            ///     #[serde(default)]
            ///     temperature: Option<f64>,
            /// }
            /// # let prompt = Fallback::from("Hi").into_prompt("greeting", None, None);
            /// let config: ModelConfig = prompt.config_as()?;
            /// assert_eq!(config.temperature, None); // a fallback's config is `{}`
            /// # Ok::<(), serde_json::Error>(())
            /// ```
            pub fn config_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
                T::deserialize(&self.config)
            }

            /// The link a generation gets: the exact name and version, or `None` for a
            /// fallback.
            pub fn link(&self) -> Option<PromptRef> {
                (!self.is_fallback).then(|| PromptRef::new(self.name.clone(), self.version))
            }
        }

        impl From<&$ty> for Option<PromptRef> {
            fn from(prompt: &$ty) -> Self {
                prompt.link()
            }
        }
    };
}

shared_accessors!(TextPrompt);
shared_accessors!(ChatPrompt);

impl From<&Prompt> for Option<PromptRef> {
    fn from(prompt: &Prompt) -> Self {
        prompt.link()
    }
}

/// What to use when a prompt cannot be fetched and nothing is cached: a text, or chat
/// messages. Made with `From`: `.fallback("Answer: {{question}}")` or
/// `.fallback(vec![ChatMessage::new("system", "…")])`.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Fallback {
    /// The template of a text prompt.
    Text(String),
    /// The messages of a chat prompt.
    Chat(Vec<ChatMessage>),
}

impl From<&str> for Fallback {
    fn from(text: &str) -> Self {
        Self::Text(text.to_owned())
    }
}

impl From<String> for Fallback {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<Vec<ChatMessage>> for Fallback {
    fn from(messages: Vec<ChatMessage>) -> Self {
        Self::Chat(messages)
    }
}

impl Fallback {
    /// The prompt the official SDKs make of a fallback: marked as one, with the version asked
    /// for (else 0), config `{}`, and the label asked for as its only label.
    pub fn into_prompt(self, name: &str, version: Option<u32>, label: Option<&str>) -> Prompt {
        let name = name.to_owned();
        let version = version.unwrap_or(0);
        let labels = label.map(str::to_owned).into_iter().collect();
        let config = Value::Object(serde_json::Map::new());
        match self {
            Self::Text(prompt) => Prompt::Text(Arc::new(TextPrompt {
                name,
                version,
                prompt,
                config,
                labels,
                tags: Vec::new(),
                is_fallback: true,
            })),
            Self::Chat(messages) => Prompt::Chat(Arc::new(ChatPrompt {
                name,
                version,
                messages,
                config,
                labels,
                tags: Vec::new(),
                is_fallback: true,
            })),
        }
    }
}

/// `GET /api/public/v2/prompts/{name}`'s answer, as far as a program uses it.
#[derive(Deserialize)]
struct Wire {
    name: String,
    version: u32,
    #[serde(rename = "type")]
    kind: String,
    prompt: Value,
    #[serde(default)]
    config: Value,
    #[serde(default)]
    labels: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
}

impl Prompt {
    /// Reads the server's answer; the error says what is wrong with it.
    pub(crate) fn from_answer(body: &[u8]) -> Result<Self, String> {
        let wire: Wire = serde_json::from_slice(body).map_err(|error| error.to_string())?;
        let config = match wire.config {
            Value::Null => Value::Object(serde_json::Map::new()),
            config => config,
        };
        match (wire.kind.as_str(), wire.prompt) {
            ("text", Value::String(prompt)) => Ok(Self::Text(Arc::new(TextPrompt {
                name: wire.name,
                version: wire.version,
                prompt,
                config,
                labels: wire.labels,
                tags: wire.tags,
                is_fallback: false,
            }))),
            ("chat", messages @ Value::Array(_)) => {
                let messages =
                    Vec::<ChatMessage>::deserialize(messages).map_err(|error| error.to_string())?;
                Ok(Self::Chat(Arc::new(ChatPrompt {
                    name: wire.name,
                    version: wire.version,
                    messages,
                    config,
                    labels: wire.labels,
                    tags: wire.tags,
                    is_fallback: false,
                })))
            }
            (kind, _) => Err(format!(
                "a prompt of type {kind:?} whose `prompt` field does not fit that type"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chat_answers_keep_messages_and_placeholders_in_order() {
        let body = json!({
            "id": "p1", "name": "support/chat", "version": 4, "type": "chat",
            "prompt": [
                {"role": "system", "content": "You help {{user}}."},
                {"type": "placeholder", "name": "history"},
                {"type": "chatmessage", "role": "user", "content": "{{question}}"}
            ],
            "config": {"temperature": 0.2}, "labels": ["production"], "tags": ["a"],
            "commitMessage": null, "isActive": true, "resolutionGraph": null
        });
        let prompt = Prompt::from_answer(body.to_string().as_bytes()).unwrap();
        let chat = prompt.as_chat().unwrap();
        assert_eq!(
            chat.messages,
            [
                ChatMessage::new("system", "You help {{user}}."),
                ChatMessage::placeholder("history"),
                ChatMessage::new("user", "{{question}}"),
            ]
        );
        assert_eq!(prompt.link(), Some(PromptRef::new("support/chat", 4)));
        assert_eq!(prompt.config()["temperature"], json!(0.2));
    }

    #[test]
    fn a_type_that_does_not_fit_its_prompt_is_refused() {
        let body = json!({"name": "x", "version": 1, "type": "text", "prompt": []});
        assert!(Prompt::from_answer(body.to_string().as_bytes()).is_err());
    }

    #[test]
    fn fallbacks_are_marked_and_never_linked() {
        let prompt = Fallback::from("Hi").into_prompt("greeting", Some(3), None);
        assert!(prompt.is_fallback());
        assert_eq!(prompt.version(), 3);
        assert_eq!(prompt.link(), None);
        assert_eq!(Option::<PromptRef>::from(&prompt), None);
        assert_eq!(prompt.config(), &json!({}));
    }

    #[test]
    fn messages_serialize_as_langfuse_writes_them() {
        let messages = vec![
            ChatMessage::new("user", "hi"),
            ChatMessage::placeholder("h"),
        ];
        assert_eq!(
            serde_json::to_value(&messages).unwrap(),
            json!([{"role": "user", "content": "hi"}, {"type": "placeholder", "name": "h"}])
        );
    }
}
