//! Values recorded on observations and traces, kept in the form they are sent in.
//!
//! A value is either plain text, which Langfuse shows as it is, or a JSON document that was
//! serialized once on the caller's thread. Nothing is re-parsed on the way out.

mod depth;
mod items;

pub use items::{Items, Transform};

use serde::Serialize;
use serde_json::value::RawValue;

/// The marker appended to every value that was cut to fit a size limit.
pub const TRUNCATION_MARKER: &str = "…[truncated by langfuse-observe]";

/// The most of one value that is captured. A value is cut here, while it is captured on the
/// caller's thread, so a 20 MB argument costs about what a 1 MB one does; the exporter then
/// keeps the record as a whole within its per-event limit.
pub const MAX_VALUE_BYTES: usize = 1_000_000;

/// The most of an error or panic message that is kept: it is shown as the status message,
/// which travels twice in a span (attribute and status), and is meant to be read.
pub const MAX_MESSAGE_BYTES: usize = 100_000;

/// A recorded input, output or metadata value: plain text, which Langfuse shows as it is, or
/// a JSON document.
///
/// ```
/// use langfuse_observe_core::capture::CapturedValue;
///
/// assert_eq!(CapturedValue::json(&vec![1, 2]).as_str(), "[1,2]");
/// // Plain strings stay plain: Langfuse shows them without quotes.
/// assert_eq!(CapturedValue::json(&"hello"), CapturedValue::text("hello"));
/// assert!(CapturedValue::text("hello").is_text());
/// ```
#[derive(Clone, Debug)]
pub struct CapturedValue(Repr);

#[derive(Clone, Debug)]
enum Repr {
    Text(String),
    /// Always valid JSON: only this module's serializer writes it.
    Json(String),
}

impl CapturedValue {
    /// Plain text.
    pub fn text(text: impl Into<String>) -> Self {
        Self(Repr::Text(text.into()))
    }

    /// Serializes `value`; a string becomes text. A value whose `Serialize` implementation
    /// fails or panics becomes a placeholder that says why, never an error.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Self {
        let mut buffer = Vec::with_capacity(32);
        match write_json(&mut buffer, value) {
            Ok(Written::Whole) => {}
            Ok(Written::Cut) => return Self::text(cut_text(buffer)),
            Err(reason) => {
                return Self::text(format!(
                    "<unserializable {}: {reason}>",
                    std::any::type_name::<T>()
                ))
            }
        }
        let json = String::from_utf8(buffer).unwrap_or_default();
        if json.starts_with('"') {
            if let Ok(text) = serde_json::from_str::<String>(&json) {
                return Self(Repr::Text(text));
            }
        }
        Self(Repr::Json(json))
    }

    /// Whether the value is plain text rather than a JSON document.
    pub fn is_text(&self) -> bool {
        matches!(self.0, Repr::Text(_))
    }

    /// The text, or the JSON document as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Text(text) | Repr::Json(text) => text,
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
        match &self.0 {
            Repr::Text(text) => serde_json::Value::String(text.clone()),
            Repr::Json(json) => serde_json::from_str(json).unwrap_or(serde_json::Value::Null),
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
        *self = Self::text(clipped(self.as_str(), max_bytes).into_owned());
        true
    }
}

/// How much of a value [`write_json`] wrote.
enum Written {
    Whole,
    /// The first [`MAX_VALUE_BYTES`] of it, no longer valid JSON.
    Cut,
}

/// Serializes `value` as JSON onto `out`, stopping after [`MAX_VALUE_BYTES`]; leaves `out` as
/// it was on failure or panic.
fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<Written, String> {
    let start = out.len();
    let mut budget = Budget {
        out,
        // Room for the marker a cut value ends with.
        left: MAX_VALUE_BYTES - TRUNCATION_MARKER.len(),
        spent: false,
    };
    let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let limited = depth::Limited {
            value,
            left: depth::MAX_DEPTH,
        };
        serde_json::to_writer(&mut budget, &limited)
    }));
    if budget.spent {
        return Ok(Written::Cut);
    }
    let failure = match written {
        Ok(Ok(())) => return Ok(Written::Whole),
        Ok(Err(error)) => error.to_string(),
        Err(_) => "its Serialize implementation panicked".to_owned(),
    };
    budget.out.truncate(start);
    Err(failure)
}

/// Takes serializer output until `left` bytes are used, then refuses more, which stops the
/// serialization there.
struct Budget<'a> {
    out: &'a mut Vec<u8>,
    left: usize,
    spent: bool,
}

impl std::io::Write for Budget<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if bytes.len() > self.left {
            self.out.extend_from_slice(&bytes[..self.left]);
            self.left = 0;
            self.spent = true;
            return Err(std::io::Error::other("the value exceeds the capture limit"));
        }
        self.out.extend_from_slice(bytes);
        self.left -= bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The start of a value that was cut, as text ending in the marker.
fn cut_text(mut bytes: Vec<u8>) -> String {
    let valid = std::str::from_utf8(&bytes).map_or_else(|error| error.valid_up_to(), str::len);
    bytes.truncate(valid);
    let mut text = String::from_utf8(bytes).unwrap_or_default();
    text.push_str(TRUNCATION_MARKER);
    text
}

/// `text`, cut to at most `max` bytes (marker included) at a character boundary.
fn clipped(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= max {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut cut = max.saturating_sub(TRUNCATION_MARKER.len());
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    std::borrow::Cow::Owned(format!("{}{TRUNCATION_MARKER}", &text[..cut]))
}

/// The arguments of an observed call, written straight into one JSON object keyed by
/// parameter name.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Inputs {
    json: Vec<u8>,
}

impl Inputs {
    fn key(&mut self, name: &str) {
        self.json
            .push(if self.json.is_empty() { b'{' } else { b',' });
        self.json.push(b'"');
        self.json.extend_from_slice(name.as_bytes());
        self.json.extend_from_slice(b"\":");
    }

    fn text(&mut self, name: &str, text: &str) {
        self.key(name);
        // Strings always serialize.
        let _ = serde_json::to_writer(&mut self.json, &clipped(text, MAX_VALUE_BYTES));
    }

    fn serialized<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) {
        self.key(name);
        let start = self.json.len();
        match write_json(&mut self.json, value) {
            Ok(Written::Whole) => {}
            // The cut JSON is not JSON any more: it goes into the object as a string.
            Ok(Written::Cut) => {
                let text = cut_text(self.json.split_off(start));
                let _ = serde_json::to_writer(&mut self.json, &text);
            }
            Err(reason) => {
                let placeholder =
                    format!("<unserializable {}: {reason}>", std::any::type_name::<T>());
                let _ = serde_json::to_writer(&mut self.json, &placeholder);
            }
        }
    }

    /// Records an argument captured separately.
    pub fn arg(&mut self, name: &str, value: CapturedValue) {
        match value.0 {
            Repr::Text(text) => self.text(name, &text),
            Repr::Json(json) => {
                self.key(name);
                self.json.extend_from_slice(json.as_bytes());
            }
        }
    }

    /// The JSON object, or `None` when no argument was recorded.
    pub(crate) fn finish(mut self) -> Option<CapturedValue> {
        if self.json.is_empty() {
            return None;
        }
        self.json.push(b'}');
        String::from_utf8(self.json)
            .ok()
            .map(|json| CapturedValue(Repr::Json(json)))
    }
}

impl PartialEq for CapturedValue {
    fn eq(&self, other: &Self) -> bool {
        self.is_text() == other.is_text() && self.as_str() == other.as_str()
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
        Self::text(text)
    }
}

impl Serialize for CapturedValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Repr::Text(text) => serializer.serialize_str(text),
            // Embedded as JSON, not as a quoted string; validating here keeps the check off
            // the caller's thread.
            Repr::Json(json) => match serde_json::from_str::<&RawValue>(json) {
                Ok(raw) => raw.serialize(serializer),
                Err(_) => serializer.serialize_str(json),
            },
        }
    }
}

/// Borrows a value for capture.
///
/// Code generated by `#[observe]` calls `(&&&&Capture(&value)).__lf_capture()` (or
/// `.__lf_arg(inputs, name)` for an argument). Method lookup then picks the first
/// implementation whose bounds hold, from the most referenced receiver down: text for string
/// types, else `Serialize` (as JSON), else `Debug` (as text), else the type's name. So a value
/// never fails to compile for lack of `Serialize`, and generic parameters use the bounds they
/// have.
#[doc(hidden)]
pub struct Capture<'a, T: ?Sized>(pub &'a T);

macro_rules! capture_level {
    ($(#[$doc:meta])* $trait:ident, $receiver:ty, $bound:path, |$value:ident| $capture:expr, |$inputs:ident, $name:ident| $arg:expr, |$items:ident| $item:expr) => {
        $(#[$doc])*
        #[doc(hidden)]
        pub trait $trait {
            /// The value as a [`CapturedValue`].
            fn __lf_capture(&self) -> CapturedValue;
            /// Records the value as the argument `name`.
            fn __lf_arg(&self, inputs: &mut Inputs, name: &'static str);
            /// Keeps the value as an item of a stream's output.
            fn __lf_item(&self, items: &mut Items);
        }

        impl<T: $bound + ?Sized> $trait for $receiver {
            fn __lf_capture(&self) -> CapturedValue {
                let $value = self.0;
                $capture
            }

            fn __lf_arg(&self, $inputs: &mut Inputs, $name: &'static str) {
                let $value = self.0;
                $arg
            }

            fn __lf_item(&self, $items: &mut Items) {
                let $value = self.0;
                $item
            }
        }
    };
}

/// A bound every type meets, for the last level.
#[doc(hidden)]
pub trait Unbounded {}
impl<T: ?Sized> Unbounded for T {}

capture_level!(
    /// Strings as plain text, the first choice.
    CaptureText,
    &&&Capture<'_, T>,
    AsRef<str>,
    |value| CapturedValue::text(clipped(value.as_ref(), MAX_VALUE_BYTES)),
    |inputs, name| inputs.text(name, value.as_ref()),
    |items| items.text(value.as_ref())
);

capture_level!(
    /// Through `Serialize`, as JSON.
    CaptureSerialize,
    &&Capture<'_, T>,
    Serialize,
    |value| CapturedValue::json(value),
    |inputs, name| inputs.serialized(name, value),
    |items| items.serialized(value)
);

capture_level!(
    /// Through `Debug`, as text, when the value is not `Serialize`.
    CaptureDebug,
    &Capture<'_, T>,
    std::fmt::Debug,
    |value| debug_text(value),
    |inputs, name| inputs.text(name, debug_text(value).as_str()),
    |items| items.captured(debug_text(value))
);

capture_level!(
    /// The type's name, when the value is neither `Serialize` nor `Debug`.
    CaptureTypeName,
    Capture<'_, T>,
    Unbounded,
    |value| type_placeholder(value),
    |inputs, name| inputs.text(name, type_placeholder(value).as_str()),
    |items| items.captured(type_placeholder(value))
);

fn debug_text<T: std::fmt::Debug + ?Sized>(value: &T) -> CapturedValue {
    guarded::<T>(
        || {
            let mut text = StackBounded::new(MAX_VALUE_BYTES);
            if std::fmt::write(&mut text, format_args!("{value:?}")).is_err() {
                text.text.push_str(TRUNCATION_MARKER);
                if !text.full {
                    text.text.push_str(" (nested too deep)");
                }
            }
            text.text
        },
        "Debug",
    )
}

/// How much stack a `Debug` implementation may use below the capture before it is stopped.
const DEBUG_STACK_BUDGET: usize = 256 * 1024;

/// Collects `Debug` output, refusing a write made too far down the stack: derived `Debug`
/// recurses once per level of nesting and writes at each level, so a deep value is stopped
/// before it can overflow the stack (which could not be caught).
/// It also stops at `max` bytes (the marker that then follows included), so a huge value
/// costs no more than its kept part.
struct StackBounded {
    text: String,
    start: usize,
    max: usize,
    full: bool,
}

impl StackBounded {
    fn new(max: usize) -> Self {
        Self {
            text: String::new(),
            start: stack_position(),
            max: max - TRUNCATION_MARKER.len(),
            full: false,
        }
    }
}

/// An address on the current stack; the stack grows down on every platform Rust supports
/// threads on, so the difference of two positions is the stack used between them.
#[inline(never)]
fn stack_position() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

impl std::fmt::Write for StackBounded {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        if self.start.abs_diff(stack_position()) > DEBUG_STACK_BUDGET {
            return Err(std::fmt::Error);
        }
        let room = self.max - self.text.len();
        if text.len() > room {
            let mut cut = room;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            self.text.push_str(&text[..cut]);
            self.full = true;
            return Err(std::fmt::Error);
        }
        self.text.push_str(text);
        Ok(())
    }
}

fn type_placeholder<T: ?Sized>(_: &T) -> CapturedValue {
    CapturedValue::text(format!("<{}>", std::any::type_name::<T>()))
}

/// Views a stream item as a `Result`, when it is one, whatever its type is called: the item
/// type of a stream behind an alias is only known at the call.
#[doc(hidden)]
pub trait SplitResult {
    /// The `Ok` type.
    type Ok: ?Sized;
    /// The `Err` type.
    type Err: ?Sized;
    /// `Some(Ok(..))` or `Some(Err(..))` for a `Result`.
    fn __lf_split(&self) -> Option<Result<&Self::Ok, &Self::Err>>;
}

/// Any other item: not a `Result`.
#[doc(hidden)]
pub trait NotResult {
    /// Never used.
    type Ok: ?Sized;
    /// Never used.
    type Err: ?Sized;
    /// Always `None`.
    fn __lf_split(&self) -> Option<Result<&Self::Ok, &Self::Err>>;
}

impl<T, E> SplitResult for &Capture<'_, Result<T, E>> {
    type Ok = T;
    type Err = E;

    fn __lf_split(&self) -> Option<Result<&T, &E>> {
        Some(self.0.as_ref())
    }
}

impl<T: ?Sized> NotResult for Capture<'_, T> {
    type Ok = std::convert::Infallible;
    type Err = std::convert::Infallible;

    fn __lf_split(&self) -> Option<Result<&Self::Ok, &Self::Err>> {
        None
    }
}

/// An error's message through `Display`, the first choice.
#[doc(hidden)]
pub trait ErrorDisplay {
    fn __lf_error_message(&self) -> String;
}

/// An error's message through `Debug`, when it has no `Display`.
#[doc(hidden)]
pub trait ErrorDebug {
    fn __lf_error_message(&self) -> String;
}

/// The error type's name, when it has neither.
#[doc(hidden)]
pub trait ErrorTypeName {
    fn __lf_error_message(&self) -> String;
}

impl<T: std::fmt::Display + ?Sized> ErrorDisplay for &&Capture<'_, T> {
    fn __lf_error_message(&self) -> String {
        let error = self.0;
        non_empty::<T>(guarded::<T>(|| message(format_args!("{error}")), "Display"))
    }
}

impl<T: std::fmt::Debug + ?Sized> ErrorDebug for &Capture<'_, T> {
    fn __lf_error_message(&self) -> String {
        let error = self.0;
        non_empty::<T>(guarded::<T>(|| message(format_args!("{error:?}")), "Debug"))
    }
}

/// An error's text, formatted only as far as [`MAX_MESSAGE_BYTES`], with the marker when cut.
pub(crate) fn message(arguments: std::fmt::Arguments<'_>) -> String {
    let mut text = StackBounded::new(MAX_MESSAGE_BYTES);
    if std::fmt::write(&mut text, arguments).is_err() {
        text.text.push_str(TRUNCATION_MARKER);
    }
    text.text
}

impl<T: ?Sized> ErrorTypeName for Capture<'_, T> {
    fn __lf_error_message(&self) -> String {
        std::any::type_name::<T>().to_owned()
    }
}

fn non_empty<T: ?Sized>(text: CapturedValue) -> String {
    match text.0 {
        Repr::Text(text) if !text.is_empty() => text,
        _ => std::any::type_name::<T>().to_owned(),
    }
}

/// A panicking `Debug` or `Display` implementation must not take the program down with it:
/// the value becomes a placeholder.
fn guarded<T: ?Sized>(format: impl FnOnce() -> String, via: &str) -> CapturedValue {
    let text = std::panic::catch_unwind(std::panic::AssertUnwindSafe(format))
        .unwrap_or_else(|_| format!("<{via} of {} panicked>", std::any::type_name::<T>()));
    CapturedValue::text(text)
}

#[cfg(test)]
// The triple borrow is the point: it is what the macro emits, for types clippy sees through.
#[allow(clippy::needless_borrow)]
mod tests {
    use super::*;

    #[test]
    fn strings_stay_text_and_structures_become_json() {
        assert_eq!(
            CapturedValue::json("a \"quoted\" word").as_str(),
            "a \"quoted\" word"
        );
        let value = CapturedValue::json(&serde_json::json!({"k": [1, true]}));
        assert!(!value.is_text());
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
    fn capture_prefers_serialize_then_debug_then_the_type_name() {
        #[derive(Debug)]
        struct OnlyDebug(#[allow(dead_code)] u8);
        struct Opaque;
        assert_eq!((&&&&Capture(&vec![1, 2])).__lf_capture().as_str(), "[1,2]");
        assert_eq!(
            (&&&&Capture(&OnlyDebug(3))).__lf_capture().as_str(),
            "OnlyDebug(3)"
        );
        assert!((&&&&Capture(&Opaque))
            .__lf_capture()
            .as_str()
            .ends_with("Opaque>"));
    }

    #[test]
    fn error_messages_prefer_display_then_debug_then_the_type_name() {
        #[derive(Debug)]
        struct Quiet;
        impl std::fmt::Display for Quiet {
            fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                Ok(())
            }
        }
        assert_eq!(
            (&&&&Capture(&"bad input")).__lf_error_message(),
            "bad input"
        );
        assert_eq!(
            (&&&&Capture(&std::fmt::Error)).__lf_error_message(),
            "an error occurred when formatting an argument"
        );
        assert!((&&&&Capture(&Quiet))
            .__lf_error_message()
            .ends_with("Quiet"));
    }

    #[test]
    fn inputs_form_one_json_object_and_survive_failing_values() {
        let mut inputs = Inputs::default();
        assert!(
            Inputs::default().finish().is_none(),
            "no argument, no input"
        );
        (&&&&Capture(&"a \"quote\"")).__lf_arg(&mut inputs, "text");
        (&&&&Capture(&vec![1, 2])).__lf_arg(&mut inputs, "list");
        let bad: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
        (&&&&Capture(&bad)).__lf_arg(&mut inputs, "bad");
        inputs.arg(
            "captured",
            CapturedValue::json(&serde_json::json!({"k": true})),
        );
        let json = inputs.finish().unwrap();
        let value: serde_json::Value = serde_json::from_str(json.as_str()).unwrap();
        assert_eq!(value["text"], "a \"quote\"");
        assert_eq!(value["list"], serde_json::json!([1, 2]));
        assert!(value["bad"]
            .as_str()
            .unwrap()
            .starts_with("<unserializable"));
        assert_eq!(value["captured"]["k"], true);
    }

    #[test]
    fn string_types_are_captured_as_text() {
        assert!((&&&&Capture(&String::from("x"))).__lf_capture().is_text());
        assert!((&&&&Capture(&std::borrow::Cow::Borrowed("x")))
            .__lf_capture()
            .is_text());
        assert!(!(&&&&Capture(&7)).__lf_capture().is_text());
    }

    #[test]
    fn a_debug_nested_too_deep_is_cut_instead_of_overflowing_the_stack() {
        #[derive(Debug)]
        enum Nest {
            Leaf,
            Node(#[allow(dead_code)] Box<Nest>),
        }
        let mut deep = Nest::Leaf;
        for _ in 0..100_000 {
            deep = Nest::Node(Box::new(deep));
        }
        // Captured on a thread with the default 2 MiB stack, like a tokio worker's.
        let text = std::thread::spawn(move || {
            let text = (&&&&Capture(&deep)).__lf_capture();
            std::mem::forget(deep); // dropping it would recurse 100,000 levels too
            text
        })
        .join()
        .unwrap();
        assert!(text.as_str().starts_with("Node(Node("));
        assert!(
            text.as_str().ends_with("(nested too deep)"),
            "{}",
            &text.as_str()[..40]
        );
    }

    #[test]
    fn a_panicking_debug_becomes_a_placeholder() {
        struct Bomb;
        impl std::fmt::Debug for Bomb {
            fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                panic!("no")
            }
        }
        let value = (&&&&Capture(&Bomb)).__lf_capture();
        assert!(value.as_str().contains("panicked"), "{}", value.as_str());
    }

    #[test]
    fn truncation_respects_char_boundaries_and_marks_the_cut() {
        let mut value = CapturedValue::text("é".repeat(1000));
        assert!(value.truncate(101));
        assert!(value.len() <= 101);
        assert!(value.as_str().ends_with(TRUNCATION_MARKER));
        let mut small = CapturedValue::json(&[1, 2, 3]);
        assert!(!small.truncate(100));
        assert!(!small.is_text());
    }

    #[test]
    fn huge_values_are_cut_while_they_are_captured() {
        let marked =
            |text: &str| text.ends_with(TRUNCATION_MARKER) && text.len() <= MAX_VALUE_BYTES;
        let huge_text = "é".repeat(10 * MAX_VALUE_BYTES);
        assert!(marked((&&&&Capture(&huge_text)).__lf_capture().as_str()));
        let huge_list = vec![123_456_789u32; 2 * MAX_VALUE_BYTES];
        let list = (&&&&Capture(&huge_list)).__lf_capture();
        assert!(
            list.is_text() && marked(list.as_str()),
            "cut JSON is text: {} {:?}",
            list.len(),
            &list.as_str()[list.len().saturating_sub(60)..]
        );
        #[derive(Debug)]
        struct Opaque(#[allow(dead_code)] Vec<u8>);
        let opaque = Opaque(vec![7; 2 * MAX_VALUE_BYTES]);
        assert!(marked((&&&&Capture(&opaque)).__lf_capture().as_str()));

        let mut inputs = Inputs::default();
        (&&&&Capture(&huge_text)).__lf_arg(&mut inputs, "text");
        (&&&&Capture(&huge_list)).__lf_arg(&mut inputs, "list");
        (&&&&Capture(&3)).__lf_arg(&mut inputs, "n");
        let object = inputs.finish().unwrap().to_json_value();
        assert!(marked(object["text"].as_str().unwrap()));
        assert!(
            marked(object["list"].as_str().unwrap()),
            "still one JSON object"
        );
        assert_eq!(object["n"], 3);
    }

    #[test]
    fn error_messages_are_cut_while_they_are_formatted() {
        let huge = "x".repeat(5_000_000);
        let error = std::io::Error::other(huge);
        let message = (&&&&Capture(&error)).__lf_error_message();
        assert!(message.len() <= MAX_MESSAGE_BYTES);
        assert!(message.ends_with(TRUNCATION_MARKER));
    }
}
