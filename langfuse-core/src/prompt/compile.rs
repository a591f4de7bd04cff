//! Filling `{{variable}}` templates the way the official Python SDK does: the text between
//! `{{` and the next `}}`, trimmed, names a value; a value found replaces the whole tag, and
//! a tag without a value stays as written. There is no escaping, nesting or logic.

use serde::Serialize;
use serde_json::{Map, Value};

use super::model::{ChatMessage, ChatPrompt, Prompt, TextPrompt};

/// The role of a message made from a placeholder value that is not a message, as the
/// official SDKs name it.
const ROLE_NOT_GIVEN: &str = "NOT_GIVEN";

/// Why [`compile_strict`](Prompt::compile_strict) did not compile a prompt.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// Some variables (or message placeholders) were given no value.
    #[error(
        "prompt {prompt:?} has variables with no value: {}; give them in the values passed \
         to compile_strict, or use compile to leave them as written",
        .missing.join(", ")
    )]
    Missing {
        /// The prompt's name.
        prompt: String,
        /// The names without a value, in the order they first appear.
        missing: Vec<String>,
    },
    /// The values did not serialize to a JSON object, so no variable can be looked up.
    #[error(
        "the values for prompt {prompt:?} are not a JSON object ({reason}): pass a map, a \
         struct with named fields, or serde_json::json!({{\"name\": value}})"
    )]
    NotAnObject {
        /// The prompt's name.
        prompt: String,
        /// What the values were instead.
        reason: String,
    },
}

/// A compiled prompt: the text of a text prompt, or the messages of a chat prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compiled {
    /// A compiled text prompt.
    Text(String),
    /// A compiled chat prompt: placeholders that got a list of messages are replaced by them;
    /// the others stay.
    Chat(Vec<ChatMessage>),
}

impl Compiled {
    /// The text, if this was a text prompt.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Self::Text(text) => Some(text),
            Self::Chat(_) => None,
        }
    }

    /// The messages, if this was a chat prompt.
    pub fn as_messages(&self) -> Option<&[ChatMessage]> {
        match self {
            Self::Chat(messages) => Some(messages),
            Self::Text(_) => None,
        }
    }
}

/// The values a template is filled from, and the names it asked for in vain.
struct Values {
    map: Map<String, Value>,
    missing: Vec<String>,
}

impl Values {
    fn of(vars: &(impl Serialize + ?Sized)) -> Result<Self, String> {
        let map = match serde_json::to_value(vars) {
            Ok(Value::Object(map)) => map,
            // `&()` or `None`: a prompt without variables.
            Ok(Value::Null) => Map::new(),
            Ok(other) => return Err(format!("got {}", kind_of(&other))),
            Err(error) => return Err(format!("they could not be serialized: {error}")),
        };
        Ok(Self {
            map,
            missing: Vec::new(),
        })
    }

    fn miss(&mut self, name: &str) {
        if !self.missing.iter().any(|seen| seen == name) {
            self.missing.push(name.to_owned());
        }
    }

    fn fill(&mut self, template: &str) -> String {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(open) = rest.find("{{") {
            let Some(close) = rest[open..].find("}}").map(|at| open + at) else {
                break;
            };
            out.push_str(&rest[..open]);
            let name = rest[open + 2..close].trim();
            match self.map.get(name) {
                Some(value) => push_value(&mut out, value),
                None => {
                    out.push_str(&rest[open..close + 2]);
                    self.miss(name);
                }
            }
            rest = &rest[close + 2..];
        }
        out.push_str(rest);
        out
    }

    fn fill_messages(&mut self, messages: &[ChatMessage]) -> Vec<ChatMessage> {
        let mut out = Vec::with_capacity(messages.len());
        for message in messages {
            match message {
                ChatMessage::Message { role, content } => {
                    out.push(ChatMessage::new(role.clone(), self.fill(content)));
                }
                ChatMessage::Placeholder { name } => match self.map.get(name).cloned() {
                    Some(Value::Array(items)) => {
                        for item in &items {
                            out.push(self.message_of(item));
                        }
                    }
                    Some(other) => out.push(ChatMessage::new(ROLE_NOT_GIVEN, text_of(&other))),
                    None => {
                        self.miss(name);
                        out.push(message.clone());
                    }
                },
            }
        }
        out
    }

    /// One item of a placeholder's list: a `{role, content}` object is a message whose
    /// content is compiled too; anything else is kept as the content of a message without a
    /// role.
    fn message_of(&mut self, item: &Value) -> ChatMessage {
        match (item.get("role"), item.get("content")) {
            (Some(Value::String(role)), Some(content)) => {
                ChatMessage::new(role.clone(), self.fill(&text_of(content)))
            }
            _ => ChatMessage::new(ROLE_NOT_GIVEN, text_of(item)),
        }
    }

    fn strict<T>(self, prompt: &str, compiled: T) -> Result<T, CompileError> {
        if self.missing.is_empty() {
            Ok(compiled)
        } else {
            Err(CompileError::Missing {
                prompt: prompt.to_owned(),
                missing: self.missing,
            })
        }
    }
}

/// A value as it appears in the text: strings as they are, `null` as nothing, the rest as
/// JSON.
fn push_value(out: &mut String, value: &Value) {
    match value {
        Value::String(text) => out.push_str(text),
        Value::Null => {}
        other => out.push_str(&other.to_string()),
    }
}

fn text_of(value: &Value) -> String {
    let mut out = String::new();
    push_value(&mut out, value);
    out
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

impl TextPrompt {
    /// The template with every `{{variable}}` that `vars` has a value for filled in, the
    /// others left as written. `vars` is anything that serializes to a JSON object: a
    /// `serde_json::json!` object, a map, or a struct. Whitespace inside the braces is ignored
    /// (`{{ name }}` is `name`); strings go in as they are, `null` as nothing, other values as
    /// JSON.
    ///
    /// ```
    /// # use langfuse_observe_core::prompt::{Fallback, Prompt};
    /// # let prompt = Fallback::from("Hello {{ name }}, you asked: {{question}}")
    /// #     .into_prompt("greeting", None, None);
    /// # let Prompt::Text(prompt) = prompt else { unreachable!() };
    /// let text = prompt.compile(&serde_json::json!({"name": "Ada"}));
    /// assert_eq!(text, "Hello Ada, you asked: {{question}}");
    /// ```
    pub fn compile(&self, vars: &(impl Serialize + ?Sized)) -> String {
        match Values::of(vars) {
            Ok(mut values) => values.fill(&self.prompt),
            Err(_) => self.prompt.clone(),
        }
    }

    /// [`compile`](Self::compile), but an error that names every variable without a value.
    pub fn compile_strict(&self, vars: &(impl Serialize + ?Sized)) -> Result<String, CompileError> {
        let mut values = Values::of(vars).map_err(|reason| CompileError::NotAnObject {
            prompt: self.name.clone(),
            reason,
        })?;
        let text = values.fill(&self.prompt);
        values.strict(&self.name, text)
    }
}

impl ChatPrompt {
    /// Every message's content compiled as [`TextPrompt::compile`] does, and every placeholder
    /// that `vars` gives a list of `{"role", "content"}` messages for replaced by those
    /// messages (their contents compiled too). A placeholder without a value stays; a value
    /// that is not a list becomes one message with role `NOT_GIVEN`, as in the official SDKs.
    ///
    /// ```
    /// # use langfuse_observe_core::prompt::{ChatMessage, Fallback, Prompt};
    /// # let prompt = Fallback::from(vec![
    /// #     ChatMessage::new("system", "You help {{user}}."),
    /// #     ChatMessage::placeholder("history"),
    /// # ]).into_prompt("support", None, None);
    /// # let Prompt::Chat(prompt) = prompt else { unreachable!() };
    /// let messages = prompt.compile(&serde_json::json!({
    ///     "user": "Ada",
    ///     "history": [{"role": "user", "content": "Hi"}],
    /// }));
    /// assert_eq!(messages, [
    ///     ChatMessage::new("system", "You help Ada."),
    ///     ChatMessage::new("user", "Hi"),
    /// ]);
    /// ```
    pub fn compile(&self, vars: &(impl Serialize + ?Sized)) -> Vec<ChatMessage> {
        match Values::of(vars) {
            Ok(mut values) => values.fill_messages(&self.messages),
            Err(_) => self.messages.clone(),
        }
    }

    /// [`compile`](Self::compile), but an error that names every variable and placeholder
    /// without a value.
    pub fn compile_strict(
        &self,
        vars: &(impl Serialize + ?Sized),
    ) -> Result<Vec<ChatMessage>, CompileError> {
        let mut values = Values::of(vars).map_err(|reason| CompileError::NotAnObject {
            prompt: self.name.clone(),
            reason,
        })?;
        let messages = values.fill_messages(&self.messages);
        values.strict(&self.name, messages)
    }
}

impl Prompt {
    /// Compiles a text or a chat prompt; see [`TextPrompt::compile`] and
    /// [`ChatPrompt::compile`].
    pub fn compile(&self, vars: &(impl Serialize + ?Sized)) -> Compiled {
        match self {
            Self::Text(text) => Compiled::Text(text.compile(vars)),
            Self::Chat(chat) => Compiled::Chat(chat.compile(vars)),
        }
    }

    /// Compiles a text or a chat prompt, or says which variables have no value; see
    /// [`TextPrompt::compile_strict`] and [`ChatPrompt::compile_strict`].
    pub fn compile_strict(
        &self,
        vars: &(impl Serialize + ?Sized),
    ) -> Result<Compiled, CompileError> {
        match self {
            Self::Text(text) => text.compile_strict(vars).map(Compiled::Text),
            Self::Chat(chat) => chat.compile_strict(vars).map(Compiled::Chat),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::prompt::Fallback;

    fn text(template: &str) -> TextPrompt {
        match Fallback::from(template).into_prompt("t", None, None) {
            Prompt::Text(text) => (*text).clone(),
            Prompt::Chat(_) => unreachable!(),
        }
    }

    #[test]
    fn whitespace_inside_the_braces_is_ignored() {
        let prompt = text("{{name}} {{ name }} {{\tname\n}}");
        assert_eq!(prompt.compile(&json!({"name": "Ada"})), "Ada Ada Ada");
    }

    #[test]
    fn a_variable_without_a_value_stays_as_written() {
        let prompt = text("Hi {{ name }}, {{other}}!");
        assert_eq!(prompt.compile(&json!({"other": 1})), "Hi {{ name }}, 1!");
    }

    #[test]
    fn values_go_in_as_text_null_as_nothing_others_as_json() {
        let prompt = text("{{s}}|{{n}}|{{b}}|{{z}}|{{l}}|{{o}}");
        let vars = json!({"s": "x", "n": 2.5, "b": true, "z": null, "l": [1], "o": {"k": 1}});
        assert_eq!(prompt.compile(&vars), r#"x|2.5|true||[1]|{"k":1}"#);
    }

    #[test]
    fn maps_and_structs_are_values_too() {
        #[derive(Serialize)]
        struct Vars<'a> {
            name: &'a str,
            count: u32,
        }
        let prompt = text("{{name}}: {{count}}");
        assert_eq!(
            prompt.compile(&Vars {
                name: "a",
                count: 3
            }),
            "a: 3"
        );
        let map = BTreeMap::from([("name", "b"), ("count", "4")]);
        assert_eq!(prompt.compile(&map), "b: 4");
    }

    #[test]
    fn unterminated_and_values_with_braces_are_not_reexpanded() {
        let prompt = text("{{a}} {{b");
        assert_eq!(prompt.compile(&json!({"a": "{{b}}"})), "{{b}} {{b");
    }

    #[test]
    fn strict_names_every_missing_variable_once() {
        let prompt = text("{{a}} {{b}} {{a}} {{c}}");
        let error = prompt.compile_strict(&json!({"b": 1})).unwrap_err();
        assert_eq!(
            error,
            CompileError::Missing {
                prompt: "t".to_owned(),
                missing: vec!["a".to_owned(), "c".to_owned()]
            }
        );
        assert!(error.to_string().contains("a, c"), "{error}");
        assert_eq!(
            prompt
                .compile_strict(&json!({"a": 1, "b": 2, "c": 3}))
                .unwrap(),
            "1 2 1 3"
        );
    }

    #[test]
    fn strict_refuses_values_that_are_not_an_object() {
        let error = text("{{a}}").compile_strict(&[1, 2]).unwrap_err();
        assert!(matches!(error, CompileError::NotAnObject { .. }), "{error}");
        assert_eq!(text("x").compile_strict(&()).unwrap(), "x");
    }

    #[test]
    fn chat_placeholders_take_lists_of_messages_and_stay_without_one() {
        let prompt = match Fallback::from(vec![
            ChatMessage::new("system", "For {{user}}"),
            ChatMessage::placeholder("history"),
            ChatMessage::placeholder("later"),
            ChatMessage::placeholder("odd"),
        ])
        .into_prompt("c", None, None)
        {
            Prompt::Chat(chat) => chat,
            Prompt::Text(_) => unreachable!(),
        };
        let vars = json!({
            "user": "Ada",
            "history": [{"role": "user", "content": "I am {{user}}"}, "loose"],
            "odd": "not a list",
        });
        assert_eq!(
            prompt.compile(&vars),
            [
                ChatMessage::new("system", "For Ada"),
                ChatMessage::new("user", "I am Ada"),
                ChatMessage::new("NOT_GIVEN", "loose"),
                ChatMessage::placeholder("later"),
                ChatMessage::new("NOT_GIVEN", "not a list"),
            ]
        );
        let error = prompt.compile_strict(&vars).unwrap_err();
        assert_eq!(
            error,
            CompileError::Missing {
                prompt: "c".to_owned(),
                missing: vec!["later".to_owned()]
            }
        );
    }

    proptest! {
        #[test]
        fn text_without_tags_is_unchanged(template in "[^{}]*") {
            let prompt = text(&template);
            prop_assert_eq!(prompt.compile(&json!({"x": 1})), template.clone());
            prop_assert_eq!(prompt.compile_strict(&json!({})).unwrap(), template);
        }

        #[test]
        fn every_known_variable_is_replaced(
            name in "[a-z][a-z0-9_]{0,8}",
            value in "[^{}]*",
            before in "[^{}]*",
            after in "[^{}]*",
            padding in " {0,2}",
        ) {
            let prompt = text(&format!("{before}{{{{{padding}{name}{padding}}}}}{after}"));
            let vars = json!({ name.clone(): value.clone() });
            prop_assert_eq!(prompt.compile_strict(&vars).unwrap(), format!("{before}{value}{after}"));
        }

        #[test]
        fn compiling_with_no_values_changes_nothing(template in ".*") {
            prop_assert_eq!(text(&template).compile(&json!({})), template);
        }
    }
}
