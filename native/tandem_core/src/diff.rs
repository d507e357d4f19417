//! The only three ways a document changes. Their serde shape is the wire
//! shape of DESIGN.md §3, for JSON and MessagePack alike.

use litemap::LiteMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A stable object id (for example a UUID).
pub type ObjectId = String;

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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
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
        key: String,
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
    pub fn set(id: impl Into<String>, key: impl Into<String>, value: Option<Value>) -> Diff {
        Diff::Set {
            id: id.into(),
            key: key.into(),
            value,
        }
    }
}
