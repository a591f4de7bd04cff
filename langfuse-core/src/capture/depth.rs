//! A nesting limit for serialization, and no work spent on a string past the capture limit.
//!
//! Serializers recurse once per level of nesting and a stack overflow cannot be caught, so a
//! value nested thousands of levels deep would abort the program; past the limit,
//! serialization fails instead and the value becomes a placeholder.

use serde::ser::{
    Error as _, Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant,
    SerializeTuple, SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

/// Just under the 128 levels Langfuse's JSON parser accepts, leaving room for the object that
/// holds a function's arguments.
pub(super) const MAX_DEPTH: usize = 120;

/// `value`, serializable with at most `left` more levels of nesting.
pub(super) struct Limited<'a, T: ?Sized> {
    pub(super) value: &'a T,
    pub(super) left: usize,
}

impl<T: Serialize + ?Sized> Serialize for Limited<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.left == 0 {
            return Err(S::Error::custom(format_args!(
                "nested deeper than {MAX_DEPTH} levels"
            )));
        }
        self.value.serialize(Counting {
            inner: serializer,
            left: self.left - 1,
        })
    }
}

/// Wraps every value one level down in [`Limited`].
struct Counting<S> {
    inner: S,
    left: usize,
}

impl<S> Counting<S> {
    fn below<'a, T: ?Sized>(&self, value: &'a T) -> Limited<'a, T> {
        Limited {
            value,
            left: self.left,
        }
    }
}

macro_rules! forward {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {$(
        fn $method(self, $($arg: $ty),*) -> Result<S::Ok, S::Error> {
            self.inner.$method($($arg),*)
        }
    )*};
}

impl<S: Serializer> Serializer for Counting<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Counting<S::SerializeSeq>;
    type SerializeTuple = Counting<S::SerializeTuple>;
    type SerializeTupleStruct = Counting<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Counting<S::SerializeTupleVariant>;
    type SerializeMap = Counting<S::SerializeMap>;
    type SerializeStruct = Counting<S::SerializeStruct>;
    type SerializeStructVariant = Counting<S::SerializeStructVariant>;

    forward! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_f32(v: f32);
        serialize_f64(v: f64);
        serialize_char(v: char);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        // A value is cut at the capture limit anyway: the rest of a longer string is not even
        // scanned for characters to escape.
        let mut end = v.len().min(super::MAX_VALUE_BYTES);
        while !v.is_char_boundary(end) {
            end -= 1;
        }
        self.inner.serialize_str(&v[..end])
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        let value = self.below(value);
        self.inner.serialize_some(&value)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let value = self.below(value);
        self.inner.serialize_newtype_struct(name, &value)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let value = self.below(value);
        self.inner
            .serialize_newtype_variant(name, index, variant, &value)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        let inner = self.inner.serialize_seq(len)?;
        Ok(Counting {
            inner,
            left: self.left,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        let inner = self.inner.serialize_tuple(len)?;
        Ok(Counting {
            inner,
            left: self.left,
        })
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        let inner = self.inner.serialize_tuple_struct(name, len)?;
        Ok(Counting {
            inner,
            left: self.left,
        })
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        let inner = self
            .inner
            .serialize_tuple_variant(name, index, variant, len)?;
        Ok(Counting {
            inner,
            left: self.left,
        })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        let inner = self.inner.serialize_map(len)?;
        Ok(Counting {
            inner,
            left: self.left,
        })
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        let inner = self.inner.serialize_struct(name, len)?;
        Ok(Counting {
            inner,
            left: self.left,
        })
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        let inner = self
            .inner
            .serialize_struct_variant(name, index, variant, len)?;
        Ok(Counting {
            inner,
            left: self.left,
        })
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

macro_rules! compound {
    ($trait:ident, keyed) => {
        impl<C: $trait> $trait for Counting<C> {
            type Ok = C::Ok;
            type Error = C::Error;

            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), C::Error> {
                let value = self.below(value);
                self.inner.serialize_field(key, &value)
            }

            fn end(self) -> Result<C::Ok, C::Error> {
                self.inner.end()
            }
        }
    };
    ($trait:ident, $method:ident) => {
        impl<C: $trait> $trait for Counting<C> {
            type Ok = C::Ok;
            type Error = C::Error;

            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
                let value = self.below(value);
                self.inner.$method(&value)
            }

            fn end(self) -> Result<C::Ok, C::Error> {
                self.inner.end()
            }
        }
    };
}

compound!(SerializeSeq, serialize_element);
compound!(SerializeTuple, serialize_element);
compound!(SerializeTupleStruct, serialize_field);
compound!(SerializeTupleVariant, serialize_field);
compound!(SerializeStruct, keyed);
compound!(SerializeStructVariant, keyed);

impl<C: SerializeMap> SerializeMap for Counting<C> {
    type Ok = C::Ok;
    type Error = C::Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), C::Error> {
        let key = self.below(key);
        self.inner.serialize_key(&key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), C::Error> {
        let value = self.below(value);
        self.inner.serialize_value(&value)
    }

    fn end(self) -> Result<C::Ok, C::Error> {
        self.inner.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> serde_json::Value {
        (0..depth).fold(serde_json::json!(1), |inner, _| serde_json::json!([inner]))
    }

    #[test]
    fn shallow_values_serialize_as_usual() {
        let value = serde_json::json!({"a": [1, {"b": null}], "c": "text"});
        let limited = Limited {
            value: &value,
            left: MAX_DEPTH,
        };
        assert_eq!(serde_json::to_string(&limited).unwrap(), value.to_string());
    }

    #[test]
    fn values_past_the_limit_fail_instead_of_overflowing_the_stack() {
        let deep = nested(MAX_DEPTH + 10);
        let limited = Limited {
            value: &deep,
            left: MAX_DEPTH,
        };
        let error = serde_json::to_string(&limited).unwrap_err();
        assert!(error.to_string().contains("nested deeper than"), "{error}");
        let fits = nested(MAX_DEPTH - 2);
        assert!(serde_json::to_string(&Limited {
            value: &fits,
            left: MAX_DEPTH
        })
        .is_ok());
    }
}
