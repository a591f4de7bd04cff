//! Trace and observation ids: random, seeded or parsed, always shown as lowercase hex.
//!
//! Random ids come from a thread-local generator (no system call per id). Seeded ids follow the
//! rule of the Python and JS SDKs, so the same seed yields the same id in every language:
//! the trace id is the hex of the first 16 bytes of SHA-256(seed), the observation id of the
//! first 8 bytes.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The string has the wrong number of characters.
    #[error(
        "invalid {kind} {value:?}: expected {expected} lowercase hex characters, found {found}{hint}"
    )]
    Length {
        /// "trace id" or "observation id".
        kind: &'static str,
        /// The rejected input (shortened when long).
        value: String,
        /// The required number of characters.
        expected: usize,
        /// The number of characters found.
        found: usize,
        /// A suggestion, empty when there is none.
        hint: &'static str,
    },
    /// A character is not one of `0-9a-f`.
    #[error(
        "invalid {kind} {value:?}: {found:?} at position {position} is not a lowercase hex digit \
         (0-9, a-f){hint}"
    )]
    Character {
        /// "trace id" or "observation id".
        kind: &'static str,
        /// The rejected input (shortened when long).
        value: String,
        /// The offending character.
        found: char,
        /// Its position, counted in characters from 0.
        position: usize,
        /// A suggestion, empty when there is none.
        hint: &'static str,
    },
    /// The id is all zeros, which W3C trace context reserves as "no id".
    #[error("invalid {kind}: all zeros is reserved as \"no id\"; generate one instead")]
    Zero {
        /// "trace id" or "observation id".
        kind: &'static str,
    },
}

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident, $bytes:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; $bytes]);

        impl $name {
            /// A new random id.
            pub fn random() -> Self {
                let mut bytes = [0u8; $bytes];
                loop {
                    fastrand::fill(&mut bytes);
                    if bytes != [0u8; $bytes] {
                        return Self(bytes);
                    }
                }
            }

            /// The id derived from `seed` exactly as the Python and JS SDKs derive it.
            pub fn from_seed(seed: &str) -> Self {
                let digest = Sha256::digest(seed.as_bytes());
                let mut bytes = [0u8; $bytes];
                bytes.copy_from_slice(&digest[..$bytes]);
                Self(bytes)
            }

            /// Wraps raw bytes; fails when they are all zero.
            pub fn from_bytes(bytes: [u8; $bytes]) -> Result<Self, IdError> {
                if bytes == [0u8; $bytes] {
                    return Err(IdError::Zero { kind: $kind });
                }
                Ok(Self(bytes))
            }

            /// The raw bytes, as OTLP carries them.
            pub fn to_bytes(self) -> [u8; $bytes] {
                self.0
            }

            /// Parses `2 * N` lowercase hex characters.
            pub fn parse(text: &str) -> Result<Self, IdError> {
                parse_hex::<$bytes>(text, $kind).and_then(Self::from_bytes)
            }
        }

        impl FromStr for $name {
            type Err = IdError;

            fn from_str(text: &str) -> Result<Self, IdError> {
                Self::parse(text)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut out = [0u8; $bytes * 2];
                f.write_str(encode_hex(&self.0, &mut out))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

define_id!(
    /// A trace id: 16 bytes, written as 32 lowercase hex characters.
    ///
    /// ```
    /// use langfuse_observe_core::ids::TraceId;
    ///
    /// let id: TraceId = "4bf92f3577b34da6a3ce929d0e0e4736".parse()?;
    /// assert_eq!(id.to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    /// assert!("4BF92F35".parse::<TraceId>().is_err());
    /// # Ok::<(), langfuse_observe_core::ids::IdError>(())
    /// ```
    TraceId,
    16,
    "trace id"
);

define_id!(
    /// An observation id: 8 bytes, written as 16 lowercase hex characters (an OTLP span id).
    ///
    /// ```
    /// use langfuse_observe_core::ids::ObservationId;
    ///
    /// let a = ObservationId::from_seed("request-42");
    /// assert_eq!(a, ObservationId::from_seed("request-42"));
    /// assert_eq!(a.to_string().len(), 16);
    /// ```
    ObservationId,
    8,
    "observation id"
);

const FOREIGN_ID_HINT: &str =
    "; to use a UUID or any other string as an id, derive one with from_seed(text)";

const HEX: &[u8; 16] = b"0123456789abcdef";

fn encode_hex<'a>(bytes: &[u8], out: &'a mut [u8]) -> &'a str {
    for (i, byte) in bytes.iter().enumerate() {
        out[2 * i] = HEX[usize::from(byte >> 4)];
        out[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
    }
    std::str::from_utf8(out).unwrap_or_default()
}

fn parse_hex<const N: usize>(text: &str, kind: &'static str) -> Result<[u8; N], IdError> {
    let found = text.chars().count();
    if found != 2 * N {
        return Err(IdError::Length {
            kind,
            value: shorten(text),
            expected: 2 * N,
            found,
            hint: if text.contains('-') {
                FOREIGN_ID_HINT
            } else {
                ""
            },
        });
    }
    let mut bytes = [0u8; N];
    for (position, c) in text.chars().enumerate() {
        let nibble = match c {
            '0'..='9' => c as u8 - b'0',
            'a'..='f' => c as u8 - b'a' + 10,
            _ => {
                let hint = if c.is_ascii_hexdigit() {
                    "; ids are lowercase, convert with to_ascii_lowercase()"
                } else {
                    FOREIGN_ID_HINT
                };
                return Err(IdError::Character {
                    kind,
                    value: shorten(text),
                    found: c,
                    position,
                    hint,
                });
            }
        };
        bytes[position / 2] |= nibble << if position % 2 == 0 { 4 } else { 0 };
    }
    Ok(bytes)
}

/// Keeps error messages readable when the rejected input is huge.
fn shorten(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_distinct_and_round_trip() {
        let a = TraceId::random();
        let b = TraceId::random();
        assert_ne!(a, b);
        assert_eq!(TraceId::parse(&a.to_string()), Ok(a));
        let o = ObservationId::random();
        assert_eq!(o.to_string().parse::<ObservationId>(), Ok(o));
    }

    #[test]
    fn seeded_ids_match_the_other_sdks() {
        let digest = Sha256::digest(b"my-seed");
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(TraceId::from_seed("my-seed").to_string(), hex[..32]);
        assert_eq!(ObservationId::from_seed("my-seed").to_string(), hex[..16]);
        assert_eq!(
            TraceId::from_seed("hello").to_string(),
            "2cf24dba5fb0a30e26e83b2ac5b9e29e"
        );
    }

    #[test]
    fn parse_errors_say_what_is_wrong() {
        let err = TraceId::parse("abc").unwrap_err();
        assert!(matches!(
            err,
            IdError::Length {
                expected: 32,
                found: 3,
                ..
            }
        ));
        assert!(err
            .to_string()
            .contains("expected 32 lowercase hex characters, found 3"));

        let err = ObservationId::parse("00f067aa0BA902b7").unwrap_err();
        assert!(matches!(
            err,
            IdError::Character {
                found: 'B',
                position: 9,
                ..
            }
        ));
        assert!(err.to_string().contains("to_ascii_lowercase"));

        let err = TraceId::parse("0af76519-16cd-43dd-8448-eb211c80319c").unwrap_err();
        assert!(err.to_string().contains("from_seed"), "{err}");

        let err = TraceId::parse(&"0".repeat(32)).unwrap_err();
        assert_eq!(err, IdError::Zero { kind: "trace id" });

        let huge = "x".repeat(10_000);
        let err = TraceId::parse(&huge).unwrap_err();
        assert!(err.to_string().len() < 200);

        assert!(ObservationId::parse("ééééééééééééééé1").is_err());
    }

    #[test]
    fn serde_uses_the_hex_form() {
        let id = ObservationId::parse("00f067aa0ba902b7").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"00f067aa0ba902b7\"");
        assert_eq!(serde_json::from_str::<ObservationId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<ObservationId>("\"nothex\"").is_err());
    }
}
