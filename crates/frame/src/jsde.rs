//! A small serde `Deserializer` over `JsValue` for what the frame receives (parent messages,
//! vault responses).
//!
//! Why not `serde_wasm_bindgen::from_value`: its errors format their text, which links
//! Rust's float formatting (~15 KB of WASM) into a frame whose whole payload has a 30 KB gzip
//! budget. Here errors carry no text at all: a message that does not fit its type is simply
//! ignored, which is all the protocol needs. Outgoing messages still use
//! `serde_wasm_bindgen::Serializer`.

use core::fmt;

use js_sys::{Array, JsString, Object, Reflect};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use wasm_bindgen::{JsCast, JsValue};

/// The value did not have the expected shape.
#[derive(Debug)]
pub struct Error;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unexpected shape")
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(_msg: T) -> Error {
        Error
    }
}

/// Deserializes a JS value (objects, strings, numbers, booleans, null/undefined; no arrays).
///
/// # Errors
/// [`Error`] when the value does not match `T`.
pub fn from_value<T: DeserializeOwned>(value: JsValue) -> Result<T, Error> {
    T::deserialize(Deserializer(value))
}

struct Deserializer(JsValue);

/// Largest integer a JS number holds exactly.
const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

impl<'de> de::Deserializer<'de> for Deserializer {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // The JS probing lives in the non-generic `classify`, so each visitor type serde
        // derives adds only this match, not another copy of the probing.
        match classify(self.0) {
            Shape::Unit => visitor.visit_unit(),
            Shape::Bool(b) => visitor.visit_bool(b),
            Shape::U64(n) => visitor.visit_u64(n),
            Shape::I64(n) => visitor.visit_i64(n),
            Shape::F64(n) => visitor.visit_f64(n),
            Shape::String(s) => visitor.visit_string(s),
            Shape::Object(object, keys) => visitor.visit_map(Entries { object, keys, index: 0, value: None }),
            Shape::Other => Err(Error),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if self.0.is_null() || self.0.is_undefined() { visitor.visit_none() } else { visitor.visit_some(self) }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0.as_string() {
            Some(s) => visitor.visit_enum(IntoDeserializer::<Error>::into_deserializer(s)),
            None => Err(Error),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct newtype_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// What a JS value is, as far as serde is concerned.
enum Shape {
    Unit,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    String(String),
    Object(Object, Array),
    Other,
}

#[inline(never)]
fn classify(value: JsValue) -> Shape {
    if value.is_null() || value.is_undefined() {
        return Shape::Unit;
    }
    if let Some(b) = value.as_bool() {
        return Shape::Bool(b);
    }
    if let Some(n) = value.as_f64() {
        return if n.fract() == 0.0 && (0.0..=MAX_SAFE).contains(&n) {
            Shape::U64(n as u64)
        } else if n.fract() == 0.0 && (-MAX_SAFE..0.0).contains(&n) {
            Shape::I64(n as i64)
        } else {
            Shape::F64(n)
        };
    }
    if let Some(s) = value.as_string() {
        return Shape::String(s);
    }
    if value.is_object() && !Array::is_array(&value) {
        let object: Object = value.unchecked_into();
        let keys = Object::keys(&object);
        return Shape::Object(object, keys);
    }
    Shape::Other
}

struct Entries {
    object: Object,
    keys: Array,
    index: u32,
    value: Option<JsValue>,
}

impl<'de> MapAccess<'de> for Entries {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        match self.next_key()? {
            Some(key) => seed.deserialize(IntoDeserializer::<Error>::into_deserializer(key)).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(Deserializer(self.take_value()?))
    }
}

// Non-generic halves of `MapAccess`, shared by every type serde derives.
impl Entries {
    #[inline(never)]
    fn next_key(&mut self) -> Result<Option<String>, Error> {
        if self.index >= self.keys.length() {
            return Ok(None);
        }
        let key = self.keys.get(self.index);
        self.index += 1;
        self.value = Some(Reflect::get(&self.object, &key).map_err(|_| Error)?);
        let key: String = key.dyn_into::<JsString>().map_err(|_| Error)?.into();
        Ok(Some(key))
    }

    #[inline(never)]
    fn take_value(&mut self) -> Result<JsValue, Error> {
        self.value.take().ok_or(Error)
    }
}
