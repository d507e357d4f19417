//! The only three ways a document changes. Their serde shape is the wire
//! shape of DESIGN.md §3, for JSON and MessagePack alike.

use crate::value::Value;
use litemap::LiteMap;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// A stable object id (for example a UUID), stored like an [`AttrName`]:
/// inline up to 24 bytes, on the heap past that. Every diff, inverse,
/// sibling index entry and document key carries a copy of an id, and as a
/// `String` each copy was an allocation of its own; an id of 24 bytes or
/// fewer (a UUID's 36 are more) is copied as 24 bytes instead. Reading its
/// text decodes where it lives (a few instructions), so code that reads one
/// id many times takes `as_str()` once. Serializes as a plain string: the
/// wire shapes are unchanged.
pub type ObjectId = compact_str::CompactString;

/// An object's attributes, sorted by name so that encodings are
/// deterministic. A flat sorted vector rather than a B-tree: objects have a
/// handful of attributes, and a document holds many objects, so the vector
/// is half the memory and much cheaper to build from a snapshot.
///
/// Names are [`AttrName`]s, not `String`s: every object repeats the same few
/// short names (`parent`, `z`, `name`, `x`...), and a `String` would make each
/// of them a heap allocation of its own, six per object in a typical
/// document, most of a snapshot restore's allocations. They serialize as
/// plain strings, so the JSON and MessagePack shapes are unchanged.
pub type Attrs = LiteMap<AttrName, Value>;

/// An attribute name: a string stored inline up to 24 bytes (longer names
/// spill to the heap), the same size as a `String`. Build one from a `&str`
/// or a `String` with `.into()`; it derefs to `&str`.
pub type AttrName = compact_str::CompactString;

/// The reserved attribute naming an object's parent.
pub const PARENT: &str = "parent";
/// The reserved attribute ordering an object among its siblings.
pub const Z: &str = "z";

/// One change to a document.
///
/// Deserialized by hand (`DiffVisitor`): serde's derive for an internally
/// tagged enum buffers every diff into an intermediate tree before reading
/// it again, which cost more than the rest of decoding a batch. The accepted
/// shapes are those the derive would accept (the tag `op` anywhere among the
/// fields, unknown or foreign fields refused).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Diff {
    /// Create object `id` with `attrs`.
    Add {
        id: ObjectId,
        #[serde(default)]
        attrs: Attrs,
    },
    /// Delete object `id` and its whole subtree.
    Remove { id: ObjectId },
    /// Set attribute `key` of `id` to `value`; no value (or `null`) unsets it.
    Set {
        id: ObjectId,
        key: AttrName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value: Option<Value>,
    },
}

impl Diff {
    /// The object this diff targets.
    pub fn id(&self) -> &str {
        match self {
            Diff::Add { id, .. } | Diff::Remove { id } | Diff::Set { id, .. } => id,
        }
    }

    /// Convenience constructor for a set.
    pub fn set(id: impl Into<ObjectId>, key: impl Into<AttrName>, value: Option<Value>) -> Diff {
        Diff::Set {
            id: id.into(),
            key: key.into(),
            value,
        }
    }
}

impl<'de> Deserialize<'de> for Diff {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Diff, D::Error> {
        d.deserialize_map(DiffVisitor)
    }
}

/// The fields of a diff, in any order; which are required depends on `op`.
struct DiffVisitor;

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Field {
    Op,
    Id,
    Attrs,
    Key,
    Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Op {
    Add,
    Remove,
    Set,
}

impl<'de> Visitor<'de> for DiffVisitor {
    type Value = Diff;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a diff: {op: add|remove|set, id, ...}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Diff, A::Error> {
        let (mut op, mut id, mut attrs, mut key) = (None, None, None, None);
        let mut value: Option<Option<Value>> = None;
        fn once<T, E: de::Error>(slot: &mut Option<T>, name: &'static str, v: T) -> Result<(), E> {
            match slot.replace(v) {
                Some(_) => Err(de::Error::duplicate_field(name)),
                None => Ok(()),
            }
        }
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Op => once(&mut op, "op", map.next_value::<Op>()?)?,
                Field::Id => once(&mut id, "id", map.next_value::<ObjectId>()?)?,
                Field::Attrs => once(&mut attrs, "attrs", map.next_value::<Attrs>()?)?,
                Field::Key => once(&mut key, "key", map.next_value::<AttrName>()?)?,
                Field::Value => once(&mut value, "value", map.next_value::<Option<Value>>()?)?,
            }
        }
        let op = op.ok_or_else(|| de::Error::missing_field("op"))?;
        let id = id.ok_or_else(|| de::Error::missing_field("id"))?;
        let foreign =
            |present: bool, name: &'static str, allowed: &'static [&'static str]| match present {
                true => Err(de::Error::unknown_field(name, allowed)),
                false => Ok(()),
            };
        match op {
            Op::Add => {
                foreign(key.is_some(), "key", &["op", "id", "attrs"])?;
                foreign(value.is_some(), "value", &["op", "id", "attrs"])?;
                Ok(Diff::Add {
                    id,
                    attrs: attrs.unwrap_or_default(),
                })
            }
            Op::Remove => {
                foreign(attrs.is_some(), "attrs", &["op", "id"])?;
                foreign(key.is_some(), "key", &["op", "id"])?;
                foreign(value.is_some(), "value", &["op", "id"])?;
                Ok(Diff::Remove { id })
            }
            Op::Set => {
                foreign(attrs.is_some(), "attrs", &["op", "id", "key", "value"])?;
                Ok(Diff::Set {
                    id,
                    key: key.ok_or_else(|| de::Error::missing_field("key"))?,
                    value: value.flatten(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Diff, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn the_tag_may_come_anywhere_and_optional_fields_default() {
        assert_eq!(
            parse(json!({"id": "a", "op": "add"})),
            Ok(Diff::Add {
                id: "a".into(),
                attrs: Attrs::new()
            })
        );
        assert_eq!(
            parse(json!({"key": "k", "id": "a", "op": "set", "value": null})),
            Ok(Diff::set("a", "k", None))
        );
        assert_eq!(
            parse(json!({"op": "set", "id": "a", "key": "k", "value": [1]})),
            Ok(Diff::set("a", "k", Some(crate::value!([1]))))
        );
        assert_eq!(
            parse(json!({"op": "remove", "id": "a"})),
            Ok(Diff::Remove { id: "a".into() })
        );
    }

    #[test]
    fn unknown_foreign_missing_and_repeated_fields_are_refused() {
        for bad in [
            json!({"op": "add", "id": "a", "extra": 1}),
            json!({"op": "remove", "id": "a", "key": "k"}),
            json!({"op": "add", "id": "a", "value": 1}),
            json!({"op": "set", "id": "a", "attrs": {}}),
            json!({"op": "set", "id": "a"}),
            json!({"op": "move", "id": "a"}),
            json!({"id": "a"}),
            json!({"op": "remove"}),
            json!({"op": "remove", "id": 7}),
            json!(["remove", "a"]),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad} was accepted");
        }
        let twice = r#"{"op":"remove","id":"a","id":"b"}"#;
        assert!(serde_json::from_str::<Diff>(twice).is_err());
    }

    #[test]
    fn messagepack_round_trips_through_the_same_visitor() {
        let diffs = vec![
            Diff::Add {
                id: "a".into(),
                attrs: Attrs::from_iter([("z".into(), "80".into())]),
            },
            Diff::set("a", "k", None),
            Diff::Remove { id: "a".into() },
        ];
        let bytes = rmp_serde::to_vec_named(&diffs).unwrap();
        assert_eq!(rmp_serde::from_slice::<Vec<Diff>>(&bytes).unwrap(), diffs);
    }
}
