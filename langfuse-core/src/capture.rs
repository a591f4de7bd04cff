//! Values recorded on observations and traces, kept in the form they are sent in.
//!
//! A value is either plain text, which Langfuse shows as it is, or a JSON document that was
//! serialized once on the caller's thread. Nothing is re-parsed on the way out.

use serde::Serialize;
use serde_json::value::RawValue;

/// The marker appended to every value that was cut to fit a size limit.
pub const TRUNCATION_MARKER: &str = "…[truncated by langfuse-observe]";

/// A recorded input, output or metadata value.
///
/// ```
/// use langfuse_observe_core::capture::CapturedValue;
///
/// assert_eq!(CapturedValue::json(&vec![1, 2]).as_str(), "[1,2]");
/// // Plain strings stay plain: Langfuse shows them without quotes.
/// assert_eq!(CapturedValue::json(&"hello"), CapturedValue::text("hello"));
/// ```
#[derive(Clone, Debug)]
pub enum CapturedValue {
    /// Text, sent without JSON quoting.
    Text(String),
    /// A serialized JSON document.
    Json(Box<RawValue>),
}

impl CapturedValue {
    /// Plain text.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// Serializes `value`; a string becomes [`CapturedValue::Text`]. A value whose `Serialize`
    /// implementation fails becomes a placeholder that says why, never an error.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        match serde_json::value::to_raw_value(value) {
            Ok(raw) if raw.get().starts_with('"') => match serde_json::from_str(raw.get()) {
                Ok(text) => Self::Text(text),
                Err(_) => Self::Json(raw),
            },
            Ok(raw) => Self::Json(raw),
            Err(error) => Self::Text(format!(
                "<unserializable {}: {error}>",
                std::any::type_name::<T>()
            )),
        }
    }

    /// The text, or the JSON document as text.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Text(text) => text,
            Self::Json(raw) => raw.get(),
        }
    }

    /// Size in bytes of the text or JSON document.
    pub fn len(&self) -> usize {
        self.as_str().len()
    }

    /// Whether the value is empty text.
    pub fn is_empty(&self) -> bool {
        self.as_str().is_empty()
    }

    /// The value as a JSON value (text becomes a JSON string).
    pub fn to_json_value(&self) -> serde_json::Value {
        match self {
            Self::Text(text) => serde_json::Value::String(text.clone()),
            Self::Json(raw) => serde_json::from_str(raw.get()).unwrap_or(serde_json::Value::Null),
        }
    }

    /// Cuts the value to at most `max_bytes` bytes at a character boundary and appends
    /// [`TRUNCATION_MARKER`] (so the result is never shorter than the marker). A cut JSON
    /// document is no longer JSON, so it becomes text. Returns whether it was cut.
    pub fn truncate(&mut self, max_bytes: usize) -> bool {
        let max_bytes = max_bytes.max(TRUNCATION_MARKER.len());
        if self.len() <= max_bytes {
            return false;
        }
        let text = self.as_str();
        let mut cut = max_bytes - TRUNCATION_MARKER.len();
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut kept = String::with_capacity(cut + TRUNCATION_MARKER.len());
        kept.push_str(&text[..cut]);
        kept.push_str(TRUNCATION_MARKER);
        *self = Self::Text(kept);
        true
    }
}

impl PartialEq for CapturedValue {
    fn eq(&self, other: &Self) -> bool {
        matches!(
            (self, other),
            (Self::Text(_), Self::Text(_)) | (Self::Json(_), Self::Json(_))
        ) && self.as_str() == other.as_str()
    }
}

impl From<serde_json::Value> for CapturedValue {
    fn from(value: serde_json::Value) -> Self {
        Self::json(&value)
    }
}

impl From<&str> for CapturedValue {
    fn from(text: &str) -> Self {
        Self::text(text)
    }
}

impl From<String> for CapturedValue {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl Serialize for CapturedValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(text) => serializer.serialize_str(text),
            Self::Json(raw) => raw.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_stay_text_and_structures_become_json() {
        assert_eq!(
            CapturedValue::json("a \"quoted\" word").as_str(),
            "a \"quoted\" word"
        );
        let value = CapturedValue::json(&serde_json::json!({"k": [1, true]}));
        assert!(matches!(value, CapturedValue::Json(_)));
        assert_eq!(value.as_str(), r#"{"k":[1,true]}"#);
        assert_eq!(
            serde_json::to_string(&value).unwrap(),
            r#"{"k":[1,true]}"#,
            "JSON is embedded, not quoted"
        );
        assert_eq!(
            serde_json::to_string(&CapturedValue::text("x")).unwrap(),
            "\"x\""
        );
    }

    #[test]
    fn failing_serialize_becomes_a_placeholder() {
        let map: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let value = CapturedValue::json(&map);
        assert!(
            value.as_str().starts_with("<unserializable"),
            "{}",
            value.as_str()
        );
    }

    #[test]
    fn truncation_respects_char_boundaries_and_marks_the_cut() {
        let mut value = CapturedValue::text("é".repeat(1000));
        assert!(value.truncate(101));
        assert!(value.len() <= 101);
        assert!(value.as_str().ends_with(TRUNCATION_MARKER));
        let mut small = CapturedValue::json(&[1, 2, 3]);
        assert!(!small.truncate(100));
        assert!(matches!(small, CapturedValue::Json(_)));
    }
}
