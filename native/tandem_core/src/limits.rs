//! Schema limits. They exist to protect the server: the room runs inside the
//! BEAM, where a runaway allocation or a deep recursion (a stack overflow is
//! not a panic; it kills the VM) would take down every room at once. Every
//! limit is checked before anything is applied and breaking one is a typed
//! [`DropReason`](crate::DropReason) or [`Rejection`](crate::Rejection).

use crate::value::Value;
use serde::{Deserialize, Serialize};

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

    /// [`Limits::check_value`] of an array or object. A container of
    /// scalars (a colour such as {"r":12,"g":200}, most nested values)
    /// is measured in one pass without the walk's stack, whose allocation
    /// cost more than the measuring; it returns the fault the walk would
    /// (the container's own size is checked before its members' depth).
    fn check_nested(&self, value: &Value) -> Result<(), ValueFault> {
        let (own, members, scalars) = match value {
            Value::Array(items) => (2 + items.len(), items.len(), flat_size(items.iter())),
            Value::Object(map) => (
                2 + 4 * map.len() + map.keys().map(|key| key.len()).sum::<usize>(),
                map.len(),
                flat_size(map.values()),
            ),
            _ => unreachable!("only arrays and objects are nested"),
        };
        let Some(scalars) = scalars else {
            return self.walk(value);
        };
        if self.max_value_depth == 0 {
            Err(ValueFault::TooDeep)
        } else if own > self.max_value_bytes {
            Err(ValueFault::TooLarge)
        } else if members > 0 && self.max_value_depth < 2 {
            Err(ValueFault::TooDeep)
        } else if own + scalars > self.max_value_bytes {
            Err(ValueFault::TooLarge)
        } else {
            Ok(())
        }
    }

    /// The plain check of any value: a walk with a stack of the values
    /// still to measure and their depth.
    fn walk(&self, value: &Value) -> Result<(), ValueFault> {
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
                    for (k, i) in map.iter() {
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

/// The size [`Limits::check_value`] counts for scalar members, or none if a
/// member is an array or object.
#[inline]
fn flat_size<'a>(members: impl Iterator<Item = &'a Value>) -> Option<usize> {
    let mut size = 0;
    for member in members {
        size += match member {
            Value::Null => 4,
            Value::Bool(_) => 5,
            Value::Number(_) => 24,
            Value::String(s) => s.len() + 2,
            Value::Array(_) | Value::Object(_) => return None,
        };
    }
    Some(size)
}

#[cfg(test)]
mod tests {
    use super::Limits;
    use crate::value;
    use crate::value::Value;

    #[test]
    fn containers_of_scalars_fault_as_the_plain_walk_does_at_every_limit() {
        let scalars = [
            value!(null),
            value!(true),
            value!(7),
            value!(-1.5),
            value!("ab"),
        ];
        let mut values = vec![value!([]), value!({}), value!([[]]), value!({"a": {}})];
        for n in 1..4 {
            let members: Vec<Value> = scalars.iter().cycle().take(n).cloned().collect();
            let map = |members: &[Value]| -> Value {
                let pairs = members.iter().enumerate();
                Value::Object(
                    pairs
                        .map(|(i, m)| ("k".repeat(i + 1).into(), m.clone()))
                        .collect(),
                )
            };
            values.push(Value::Array(members.clone()));
            values.push(map(&members));
            // One member nested: the plain walk decides.
            let mut nested = members.clone();
            nested.push(value!([1]));
            values.push(Value::Array(nested.clone()));
            values.push(map(&nested));
        }
        for value in &values {
            for max_value_depth in 0..4 {
                for max_value_bytes in 0..120 {
                    let limits = Limits {
                        max_value_depth,
                        max_value_bytes,
                        ..Limits::default()
                    };
                    assert_eq!(
                        limits.check_value(value),
                        limits.walk(value),
                        "{value} within depth {max_value_depth}, {max_value_bytes} bytes"
                    );
                }
            }
        }
    }
}
