//! Attribute values: JSON, held the way a document holds them.
//!
//! `serde_json::Value` gave every object value a B-tree leaf (about 600
//! bytes for a colour such as `{"r":12,"g":200}`) and every string, an
//! object's keys included, a heap allocation of its own; each was built,
//! cloned, hashed, checked against the limits and freed in every replica of
//! a session. Here a string is a [`CompactString`] (inline up to 24 bytes,
//! like [`AttrName`](crate::AttrName)) and an object a [`Map`], a flat vector
//! sorted by key bytes: the colour is one allocation of two entries, and the
//! canonical order the checksum hashes in is the order the map is in.
//!
//! Numbers stay `serde_json::Number`, so they print, compare and encode
//! exactly as before. The serde impls are written out (no derive can give
//! the untagged JSON shape) and mirror serde_json's own for its `Value`: the
//! same calls on the serializer, the same visitor methods accepted (object
//! keys only as strings, non-finite floats as `null`, a repeated key's last
//! value kept), so JSON and MessagePack bytes are unchanged both ways. Other
//! JSON (presence, payloads, replies) stays `serde_json::Value`; the `From`
//! conversions join the two at the edges.

use compact_str::CompactString;
use litemap::LiteMap;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::Number;
use std::fmt;

/// A JSON value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(CompactString),
    Array(Vec<Value>),
    Object(Map),
}

/// A JSON object's members, sorted by the bytes of their keys.
pub type Map = LiteMap<CompactString, Value>;

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        self.as_number().and_then(Number::as_u64)
    }

    pub fn as_i64(&self) -> Option<i64> {
        self.as_number().and_then(Number::as_i64)
    }

    pub fn as_f64(&self) -> Option<f64> {
        self.as_number().and_then(Number::as_f64)
    }

    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    /// The member `key` of an object; none for anything else.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_object()?.get(key)
    }
}

/// Compact JSON, as serde_json displays its `Value`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&serde_json::to_string(self).map_err(|_| fmt::Error)?)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Number(n) => n.serialize(s),
            Value::String(text) => s.serialize_str(text),
            Value::Array(items) => items.serialize(s),
            Value::Object(map) => {
                let mut out = s.serialize_map(Some(map.len()))?;
                for (key, value) in map.iter() {
                    out.serialize_entry(key.as_str(), value)?;
                }
                out.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_i128<E: de::Error>(self, n: i128) -> Result<Value, E> {
        Number::deserialize(de::value::I128Deserializer::new(n)).map(Value::Number)
    }

    fn visit_u128<E: de::Error>(self, n: u128) -> Result<Value, E> {
        Number::deserialize(de::value::U128Deserializer::new(n)).map(Value::Number)
    }

    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::from(f))
    }

    fn visit_str<E>(self, text: &str) -> Result<Value, E> {
        Ok(Value::String(text.into()))
    }

    fn visit_string<E>(self, text: String) -> Result<Value, E> {
        Ok(Value::String(text.into()))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut members = Members::default();
        while let Some(key) = access.next_key_seed(KeySeed)? {
            members.push(key, access.next_value()?);
        }
        Ok(Value::Object(members.finish()))
    }
}

/// An object's members as they are read, in any order, the last of equal
/// keys winning (as serde_json's map insert does). Members are appended
/// while their keys increase (as every encoder here writes them) and the
/// rest merged in at the end by `LiteMap`'s bulk extend, which sorts once:
/// inserting each out-of-order member would be quadratic in a hostile
/// frame's size, before any limit is checked.
#[derive(Default)]
pub(crate) struct Members {
    map: Map,
    out_of_order: Vec<(CompactString, Value)>,
}

impl Members {
    pub(crate) fn push(&mut self, key: CompactString, value: Value) {
        if let Some(member) = self.map.try_append(key, value) {
            self.out_of_order.push(member);
        }
    }

    pub(crate) fn finish(mut self) -> Map {
        if !self.out_of_order.is_empty() {
            self.map.extend(self.out_of_order);
        }
        self.map
    }
}

/// An object's key: a string and nothing else (as serde_json takes its
/// keys; `CompactString`'s own impl would also take UTF-8 bytes).
struct KeySeed;

impl<'de> de::DeserializeSeed<'de> for KeySeed {
    type Value = CompactString;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<CompactString, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = CompactString;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E>(self, key: &str) -> Result<CompactString, E> {
        Ok(key.into())
    }

    fn visit_string<E>(self, key: String) -> Result<CompactString, E> {
        Ok(key.into())
    }
}

/// A [`Value`] from JSON syntax: `serde_json::json!`, converted. For
/// tests, benches and other cold code (it builds the serde_json tree first).
#[macro_export]
macro_rules! value {
    ($($json:tt)+) => {
        $crate::Value::from($crate::value::__json!($($json)+))
    };
}

#[doc(hidden)]
pub use serde_json::json as __json;

impl From<serde_json::Value> for Value {
    fn from(value: serde_json::Value) -> Value {
        match value {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => Value::Number(n),
            serde_json::Value::String(text) => Value::String(text.into()),
            serde_json::Value::Array(items) => {
                Value::Array(items.into_iter().map(Value::from).collect())
            }
            serde_json::Value::Object(map) => Value::Object(
                map.into_iter()
                    .map(|(key, value)| (key.into(), value.into()))
                    .collect(),
            ),
        }
    }
}

impl From<Value> for serde_json::Value {
    fn from(value: Value) -> serde_json::Value {
        match value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(b),
            Value::Number(n) => serde_json::Value::Number(n),
            Value::String(text) => serde_json::Value::String(text.into()),
            Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(Into::into).collect())
            }
            Value::Object(map) => serde_json::Value::Object(
                map.into_iter()
                    .map(|(key, value)| (key.into(), value.into()))
                    .collect(),
            ),
        }
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

/// A finite float; NaN and the infinities are `null`, as in serde_json.
impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

impl From<f32> for Value {
    fn from(f: f32) -> Value {
        Value::from(f64::from(f))
    }
}

macro_rules! from_integer {
    ($($t:ty)*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Value {
                Value::Number(n.into())
            }
        }
    )*};
}

from_integer!(i8 i16 i32 i64 isize u8 u16 u32 u64 usize);

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::String(text.into())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::String(text.into())
    }
}

impl From<CompactString> for Value {
    fn from(text: CompactString) -> Value {
        Value::String(text)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(items: Vec<T>) -> Value {
        Value::Array(items.into_iter().map(Into::into).collect())
    }
}

impl From<Map> for Value {
    fn from(map: Map) -> Value {
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::Value;
    use serde_json::json;

    #[test]
    fn a_value_is_at_most_four_words() {
        assert!(std::mem::size_of::<Value>() <= 32);
    }

    /// Values of every kind, with keys out of order, escapes and numbers of
    /// each representation.
    fn samples() -> Vec<serde_json::Value> {
        vec![
            json!(null),
            json!(true),
            json!(0),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(-0.0),
            json!(1.5e300),
            json!("a string longer than twenty-four bytes"),
            json!("é\n\"\\"),
            json!([]),
            json!({}),
            json!({"g": 2, "r": 1, "": [null, {"b": "x", "a": []}], "é": 0.1, "Z": false}),
        ]
    }

    #[test]
    fn json_and_messagepack_bytes_are_serde_json_values_both_ways() {
        for plain in samples() {
            let ours = Value::from(plain.clone());
            assert_eq!(serde_json::to_string(&ours).unwrap(), plain.to_string());
            assert_eq!(ours.to_string(), plain.to_string());
            let packed = rmp_serde::to_vec_named(&plain).unwrap();
            assert_eq!(rmp_serde::to_vec_named(&ours).unwrap(), packed);
            assert_eq!(rmp_serde::from_slice::<Value>(&packed).unwrap(), ours);
            let text = plain.to_string();
            assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), ours);
            assert_eq!(serde_json::Value::from(ours), plain);
        }
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_in_any_order() {
        let text = r#"{"b":1,"a":2,"b":3,"c":4,"a":5,"a":6}"#;
        let ours: Value = serde_json::from_str(text).unwrap();
        let plain: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(ours, Value::from(plain));
        assert_eq!(ours.to_string(), r#"{"a":6,"b":3,"c":4}"#);
    }

    #[test]
    fn keys_must_be_strings_and_floats_finite_as_for_serde_json() {
        // A MessagePack map with a binary key, and one with an integer key.
        for bytes in [&[0x81, 0xc4, 0x01, b'a', 0x01][..], &[0x81, 0x01, 0x01]] {
            assert!(rmp_serde::from_slice::<serde_json::Value>(bytes).is_err());
            assert!(rmp_serde::from_slice::<Value>(bytes).is_err());
        }
        let nan = rmp_serde::to_vec(&f64::NAN).unwrap();
        assert_eq!(rmp_serde::from_slice::<Value>(&nan).unwrap(), Value::Null);
        assert_eq!(Value::from(f64::INFINITY), Value::Null);
    }
}
