//! The items of an observed stream or iterator, kept for its output in one buffer: an item
//! costs its bytes there and no allocation of its own, and the output is the buffer itself
//! (text items, joined) or an array joined from it, never parsed again.

use serde::Serialize;

use super::{clipped, cut_text, write_json, CapturedValue, Repr, Written};
use super::{MAX_VALUE_BYTES, TRUNCATION_MARKER};

/// Items kept for the output; past this, they are counted and named in a marker.
const MAX_ITEMS: usize = 10_000;
/// Bytes of items kept for the output; the record as a whole is cut later if still too big.
const MAX_BYTES: usize = 512 * 1024;

/// Turns the captured items into the output, for `#[observe(transform = path)]`.
#[doc(hidden)]
pub type Transform = fn(&[serde_json::Value]) -> CapturedValue;

/// The items seen so far, within limits.
#[doc(hidden)]
#[derive(Debug, Default)]
pub struct Items {
    /// Text items as they are, other items as JSON, one after the other.
    buffer: Vec<u8>,
    /// Where each kept item ends in `buffer`, and whether it is text.
    kept: Vec<(usize, bool)>,
    left_out: usize,
}

impl Items {
    /// A string item: the output joins them when every item is one.
    pub(crate) fn text(&mut self, text: &str) {
        if self.full() {
            return;
        }
        let start = self.buffer.len();
        self.buffer
            .extend_from_slice(clipped(text, MAX_VALUE_BYTES).as_bytes());
        self.keep(start, true);
    }

    /// An item captured through `Serialize`, written as JSON straight into the buffer.
    pub(crate) fn serialized<T: Serialize + ?Sized>(&mut self, value: &T) {
        if self.full() {
            return;
        }
        let start = self.buffer.len();
        match write_json(&mut self.buffer, value) {
            Ok(Written::Whole) => {}
            Ok(Written::Cut) => {
                // A cut document is no longer JSON: it goes in as a string, as a cut value
                // does anywhere else.
                let cut = cut_text(self.buffer.split_off(start));
                write_string(&mut self.buffer, &cut);
            }
            Err(reason) => write_string(
                &mut self.buffer,
                &format!("<unserializable {}: {reason}>", std::any::type_name::<T>()),
            ),
        }
        self.keep(start, false);
    }

    /// An item captured some other way (`Debug`, or only its type's name).
    pub(crate) fn captured(&mut self, value: CapturedValue) {
        if self.full() {
            return;
        }
        let start = self.buffer.len();
        match &value.0 {
            Repr::Json(json) => self.buffer.extend_from_slice(json.as_bytes()),
            Repr::Text(text) => write_string(&mut self.buffer, text),
        }
        self.keep(start, false);
    }

    fn full(&mut self) -> bool {
        let full = self.kept.len() >= MAX_ITEMS || self.buffer.len() >= MAX_BYTES;
        self.left_out += usize::from(full);
        full
    }

    /// Keeps the item written from `start`, unless it took the buffer past its bound.
    fn keep(&mut self, start: usize, text: bool) {
        if self.buffer.len() > MAX_BYTES {
            self.buffer.truncate(start);
            self.left_out += 1;
        } else {
            self.kept.push((self.buffer.len(), text));
        }
    }

    /// Each kept item's bytes, and whether it is text.
    fn each(&self) -> impl Iterator<Item = (&[u8], bool)> {
        let starts = std::iter::once(0).chain(self.kept.iter().map(|(end, _)| *end));
        starts
            .zip(&self.kept)
            .map(|(start, (end, text))| (&self.buffer[start..*end], *text))
    }

    /// The output: the text items joined, or a JSON array, or what `transform` makes of them.
    pub(crate) fn output(self, transform: Option<Transform>) -> Option<CapturedValue> {
        if let Some(transform) = transform {
            let values: Vec<serde_json::Value> = self
                .each()
                .map(|(bytes, text)| match text {
                    true => serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned()),
                    false => serde_json::from_slice(bytes).unwrap_or(serde_json::Value::Null),
                })
                .collect();
            return Some(transform(&values));
        }
        if self.kept.is_empty() && self.left_out == 0 {
            return None;
        }
        let marker = (self.left_out > 0)
            .then(|| format!("{TRUNCATION_MARKER} {} more items", self.left_out));
        let all_text = !self.kept.is_empty() && self.kept.iter().all(|(_, text)| *text);
        if all_text {
            // Written from `&str`s only.
            let mut text = String::from_utf8(self.buffer).unwrap_or_default();
            text.extend(marker);
            return Some(CapturedValue::text(text));
        }
        let mut array = Vec::with_capacity(self.buffer.len() + 2 * self.kept.len() + 2);
        array.push(b'[');
        for (index, (bytes, text)) in self.each().enumerate() {
            if index > 0 {
                array.push(b',');
            }
            match text {
                true => write_string(&mut array, &String::from_utf8_lossy(bytes)),
                false => array.extend_from_slice(bytes),
            }
        }
        if let Some(marker) = marker {
            if !self.kept.is_empty() {
                array.push(b',');
            }
            write_string(&mut array, &marker);
        }
        array.push(b']');
        // Written by serde_json and from `&str`s only.
        Some(CapturedValue(Repr::Json(
            String::from_utf8(array).unwrap_or_default(),
        )))
    }
}

fn write_string(out: &mut Vec<u8>, text: &str) {
    // Serializing a string into memory cannot fail.
    let _ = serde_json::to_writer(out, text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_items_are_joined_and_others_form_the_array_serializing_them_gives() {
        let mut text = Items::default();
        text.text("Hel");
        text.text("lo");
        assert_eq!(text.output(None), Some(CapturedValue::text("Hello")));

        let mut mixed = Items::default();
        mixed.serialized(&1);
        mixed.serialized(&serde_json::json!({"k": [1, null, "x"]}));
        mixed.serialized("a string through Serialize");
        mixed.captured(CapturedValue::text("quote \" and \\ and \u{1F600}\n"));
        mixed.text("text among others");
        let expected = CapturedValue::json(&serde_json::json!([
            1,
            {"k": [1, null, "x"]},
            "a string through Serialize",
            "quote \" and \\ and \u{1F600}\n",
            "text among others",
        ]));
        assert_eq!(mixed.output(None), Some(expected));

        assert_eq!(Items::default().output(None), None);
    }

    #[test]
    fn items_past_the_bounds_are_counted_in_a_marker() {
        let mut items = Items::default();
        for i in 0..MAX_ITEMS + 3 {
            items.serialized(&i);
        }
        let output = items.output(None).map(|value| value.to_json_value());
        let Some(serde_json::Value::Array(values)) = output else {
            panic!("an array, got {output:?}");
        };
        assert_eq!(values.len(), MAX_ITEMS + 1);
        assert_eq!(
            values.last(),
            Some(&serde_json::Value::String(format!(
                "{TRUNCATION_MARKER} 3 more items"
            )))
        );

        let mut large = Items::default();
        let chunk = "x".repeat(MAX_BYTES / 2 + 1);
        large.text(&chunk);
        large.text(&chunk);
        let Some(text) = large.output(None) else {
            panic!("the first item is kept");
        };
        assert_eq!(
            text.as_str(),
            format!("{chunk}{TRUNCATION_MARKER} 1 more items")
        );
    }

    #[test]
    fn a_transform_sees_every_item_as_a_json_value() {
        let mut items = Items::default();
        items.text("a");
        items.serialized(&[1, 2]);
        let count: Transform = |values| CapturedValue::json(&serde_json::json!({ "seen": values }));
        assert_eq!(
            items.output(Some(count)).map(|value| value.to_json_value()),
            Some(serde_json::json!({"seen": ["a", [1, 2]]}))
        );
    }
}
