//! Schema limits. They exist to protect the server: the room runs inside the
//! BEAM, where a runaway allocation or a deep recursion (a stack overflow is
//! not a panic; it kills the VM) would take down every room at once. Every
//! limit is checked before anything is applied and breaking one is a typed
//! [`DropReason`](crate::DropReason) or [`Rejection`](crate::Rejection).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The limits a document and its batches must respect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Longest object id, in bytes.
    pub max_id_bytes: usize,
    /// Longest attribute key, in bytes.
    pub max_key_bytes: usize,
    /// Most attributes on one object (reserved ones included).
    pub max_attrs_per_object: usize,
    /// Largest attribute value, in bytes of its compact JSON (numbers counted as
    /// 24 bytes each, so the measure never depends on float formatting).
    pub max_value_bytes: usize,
    /// Deepest nesting of arrays and objects inside one value.
    pub max_value_depth: usize,
    /// Most objects in one document.
    pub max_objects: usize,
    /// Most diffs in one batch.
    pub max_diffs_per_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_id_bytes: 128,
            max_key_bytes: 128,
            max_attrs_per_object: 256,
            max_value_bytes: 64 * 1024,
            max_value_depth: 32,
            max_objects: 1_000_000,
            max_diffs_per_batch: 10_000,
        }
    }
}

/// Why a value breaks the limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueFault {
    TooLarge,
    TooDeep,
}

impl Limits {
    /// An id or key is acceptable when it is non-empty, short enough and free
    /// of NUL (NUL separates fields in the checksum).
    /// Inlined and scanned byte by byte: names are short, and a restore
    /// checks every attribute name of every object.
    #[inline]
    pub fn name_ok(name: &str, max: usize) -> bool {
        !name.is_empty() && name.len() <= max && name.bytes().all(|b| b != 0)
    }

    /// Checks a value's size and depth without recursion, stopping as soon as
    /// a limit is passed, so an adversarial value costs no more than the limit.
    #[inline]
    pub fn check_value(&self, value: &Value) -> Result<(), ValueFault> {
        // Scalars, by far the most common values, need no walk (and no call:
        // this part is inlined into the attribute checks).
        let scalar_size = match value {
            Value::Array(_) | Value::Object(_) => return self.check_nested(value),
            Value::String(s) => s.len() + 2,
            _ => 24,
        };
        match (self.max_value_depth, scalar_size > self.max_value_bytes) {
            (0, _) => Err(ValueFault::TooDeep),
            (_, true) => Err(ValueFault::TooLarge),
            _ => Ok(()),
        }
    }

    /// [`Limits::check_value`] of an array or object.
    fn check_nested(&self, value: &Value) -> Result<(), ValueFault> {
        let mut size = 0usize;
        let mut stack: Vec<(&Value, usize)> = vec![(value, 1)];
        while let Some((v, depth)) = stack.pop() {
            if depth > self.max_value_depth {
                return Err(ValueFault::TooDeep);
            }
            size += match v {
                Value::Null => 4,
                Value::Bool(_) => 5,
                Value::Number(_) => 24,
                Value::String(s) => s.len() + 2,
                Value::Array(items) => {
                    stack.extend(items.iter().map(|i| (i, depth + 1)));
                    2 + items.len()
                }
                Value::Object(map) => {
                    for (k, i) in map {
                        size += k.len() + 3;
                        stack.push((i, depth + 1));
                    }
                    2 + map.len()
                }
            };
            if size > self.max_value_bytes {
                return Err(ValueFault::TooLarge);
            }
        }
        Ok(())
    }
}
