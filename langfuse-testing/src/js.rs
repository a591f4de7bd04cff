//! The few JavaScript semantics the Langfuse server's behaviour rests on (truthiness, `parseInt`,
//! `JSON.stringify` of a value, key order of the objects it writes), so the rules elsewhere can
//! be written the way LANGFUSE_SERVER.md states them.

use serde_json::Value;

/// JavaScript truthiness of a JSON value: `null`, `false`, `0` and `""` are falsy; every array and
/// object, even an empty one, is truthy.
pub(crate) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// A value as the server writes it into a string column: strings as they are, anything else as
/// its JSON text.
pub(crate) fn string_of(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `parseInt(text, 10)`-like: leading white space, an optional sign, then as many decimal digits
/// as there are; `None` where JavaScript gives `NaN`.
pub(crate) fn parse_int(text: &str) -> Option<i64> {
    let rest = text.trim_start();
    let (negative, rest) = match rest.as_bytes().first() {
        Some(b'-') => (true, &rest[1..]),
        Some(b'+') => (false, &rest[1..]),
        _ => (false, rest),
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return None;
    }
    // Beyond i64 JavaScript would still give a (rounded) number; saturating keeps it "large".
    let magnitude = digits.parse::<i64>().unwrap_or(i64::MAX);
    Some(if negative { -magnitude } else { magnitude })
}

/// `Number(value)` for the values an attribute can hold, `None` for `NaN`.
pub(crate) fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.trim().is_empty() => Some(0.0),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::Null => Some(0.0),
        _ => None,
    }
}

/// A JSON number from an `f64`, as an integer when it is one (so `3.0` prints as `3`, like
/// JavaScript).
pub(crate) fn json_number(value: f64) -> Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        // The range check makes the cast exact.
        #[allow(clippy::cast_possible_truncation)]
        Value::from(value as i64)
    } else {
        serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number)
    }
}

/// The name zod gives a value's type in its messages.
pub(crate) fn type_name(value: Option<&Value>) -> &'static str {
    match value {
        None => "undefined",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "boolean",
        Some(Value::Number(_)) => "number",
        Some(Value::String(_)) => "string",
        Some(Value::Array(_)) => "array",
        Some(Value::Object(_)) => "object",
    }
}

/// A JSON object written with its keys in the order given: the server's bodies have a fixed key
/// order (`{"message", "error"}` on most routes, `{"error", "message"}` on ingestion), which a
/// `serde_json::Map` would sort away.
#[derive(Default)]
pub(crate) struct Ordered(Vec<(&'static str, String)>);

impl Ordered {
    pub(crate) fn new() -> Self {
        Ordered::default()
    }

    pub(crate) fn field(mut self, key: &'static str, value: impl Into<Value>) -> Self {
        self.0.push((key, value.into().to_string()));
        self
    }

    /// A member whose value is already JSON text.
    pub(crate) fn raw(mut self, key: &'static str, json: String) -> Self {
        self.0.push((key, json));
        self
    }

    pub(crate) fn build(self) -> String {
        let members: Vec<String> = self
            .0
            .into_iter()
            .map(|(key, value)| format!("{}:{value}", Value::from(key)))
            .collect();
        format!("{{{}}}", members.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parse_int_follows_javascript() {
        assert_eq!(parse_int("4"), Some(4));
        assert_eq!(parse_int("4.0"), Some(4));
        assert_eq!(parse_int("4abc"), Some(4));
        assert_eq!(parse_int("  -3"), Some(-3));
        assert_eq!(parse_int("abc"), None);
        assert_eq!(parse_int(""), None);
    }

    #[test]
    fn truthiness_and_ordered_objects() {
        assert!(!truthy(&json!("")));
        assert!(!truthy(&json!(0)));
        assert!(truthy(&json!({})));
        assert!(truthy(&json!([])));
        let text = Ordered::new()
            .field("message", "m")
            .field("error", "e")
            .build();
        assert_eq!(text, r#"{"message":"m","error":"e"}"#);
    }
}
