//! The presence tracker, merging `presence_state` and `presence_diff` with
//! the semantics of phoenix.js's `Presence` (`syncState`/`syncDiff`), so a
//! Tandem client and a browser see the same people in the same order.
//!
//! State is `{key: presence}` where a presence is an object whose `metas`
//! list holds one meta per connection, identified by its `phx_ref` (other
//! fields of the presence, e.g. from the server's `fetch`, are kept as the
//! latest join sent them). A diff's joins replace a presence by the joined
//! one with the surviving current metas put in front; its leaves remove
//! metas by `phx_ref` and drop a key whose last meta left. A new state is
//! turned into such a diff against the current one. Until the state of the
//! current join arrives ([`Presence::expect_state`]), diffs are held and
//! applied after it, since they may be older or newer than that state.
//! Each merge reports its joins and leaves like phoenix.js's `onJoin` and
//! `onLeave` callbacks.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Who is present, by key (user id), with one meta per connection.
#[derive(Clone, Debug, PartialEq)]
pub struct Presence {
    state: BTreeMap<String, Value>,
    awaiting_state: bool,
    pending: Vec<Value>,
}

impl Default for Presence {
    fn default() -> Presence {
        Presence {
            state: BTreeMap::new(),
            awaiting_state: true,
            pending: Vec::new(),
        }
    }
}

/// One change of a merge, with the arguments phoenix.js passes to its
/// callbacks.
#[derive(Clone, Debug, PartialEq)]
pub enum PresenceChange {
    /// `onJoin(key, current, joined)`: `current` is the presence before
    /// the join (`None` for a newcomer), `joined` carries the new metas.
    Join {
        key: String,
        current: Option<Value>,
        joined: Value,
    },
    /// `onLeave(key, current, left)`: `current` is what remains (no metas
    /// when the key is gone), `left` carries the metas that left.
    Leave {
        key: String,
        current: Value,
        left: Value,
    },
}

fn metas(presence: &Value) -> &[Value] {
    presence
        .get("metas")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn refs(presence: &Value) -> Vec<Option<&str>> {
    metas(presence).iter().map(phx_ref).collect()
}

fn phx_ref(meta: &Value) -> Option<&str> {
    meta.get("phx_ref").and_then(Value::as_str)
}

/// `presence` with `metas` replaced.
fn with_metas(presence: &Value, metas: Vec<Value>) -> Value {
    let mut object = presence.as_object().cloned().unwrap_or_default();
    object.insert("metas".to_owned(), Value::Array(metas));
    Value::Object(object)
}

fn entries(value: Option<&Value>) -> impl Iterator<Item = (&String, &Value)> {
    value.and_then(Value::as_object).into_iter().flatten()
}

impl Presence {
    /// A new join of the presence topic: hold diffs until its state.
    pub fn expect_state(&mut self) {
        self.awaiting_state = true;
    }

    /// Merges a `presence_state` payload, then the diffs held before it.
    pub fn sync_state(&mut self, new_state: &Value) -> Vec<PresenceChange> {
        let empty = Map::new();
        let new_state = new_state.as_object().unwrap_or(&empty);
        let (mut joins, mut leaves) = (Map::new(), Map::new());
        for (key, current) in &self.state {
            if !new_state.contains_key(key) {
                leaves.insert(key.clone(), current.clone());
            }
        }
        for (key, new) in new_state {
            let Some(current) = self.state.get(key) else {
                joins.insert(key.clone(), new.clone());
                continue;
            };
            let (new_refs, current_refs) = (refs(new), refs(current));
            let joined: Vec<Value> = metas(new)
                .iter()
                .filter(|m| !current_refs.contains(&phx_ref(m)))
                .cloned()
                .collect();
            let left: Vec<Value> = metas(current)
                .iter()
                .filter(|m| !new_refs.contains(&phx_ref(m)))
                .cloned()
                .collect();
            if !joined.is_empty() {
                joins.insert(key.clone(), with_metas(new, joined));
            }
            if !left.is_empty() {
                leaves.insert(key.clone(), with_metas(current, left));
            }
        }
        let mut changes = self.merge(&json!({"joins": joins, "leaves": leaves}));
        self.awaiting_state = false;
        for diff in std::mem::take(&mut self.pending) {
            changes.extend(self.merge(&diff));
        }
        changes
    }

    /// Merges a `presence_diff` payload (held while awaiting a state).
    pub fn sync_diff(&mut self, diff: &Value) -> Vec<PresenceChange> {
        if self.awaiting_state {
            self.pending.push(diff.clone());
            return Vec::new();
        }
        self.merge(diff)
    }

    fn merge(&mut self, diff: &Value) -> Vec<PresenceChange> {
        let mut changes = Vec::new();
        for (key, joined) in entries(diff.get("joins")) {
            let current = self.state.get(key).cloned();
            let mut merged: Vec<Value> = match &current {
                Some(current) => {
                    let joined_refs = refs(joined);
                    metas(current)
                        .iter()
                        .filter(|m| !joined_refs.contains(&phx_ref(m)))
                        .cloned()
                        .collect()
                }
                None => Vec::new(),
            };
            merged.extend(metas(joined).iter().cloned());
            self.state.insert(key.clone(), with_metas(joined, merged));
            changes.push(PresenceChange::Join {
                key: key.clone(),
                current,
                joined: joined.clone(),
            });
        }
        for (key, left) in entries(diff.get("leaves")) {
            let Some(current) = self.state.get(key) else {
                continue;
            };
            let gone = refs(left);
            let remaining: Vec<Value> = metas(current)
                .iter()
                .filter(|m| !gone.contains(&phx_ref(m)))
                .cloned()
                .collect();
            let current = with_metas(current, remaining);
            if metas(&current).is_empty() {
                self.state.remove(key);
            } else {
                self.state.insert(key.clone(), current.clone());
            }
            changes.push(PresenceChange::Leave {
                key: key.clone(),
                current,
                left: left.clone(),
            });
        }
        changes
    }

    /// Present keys with their metas, in key order.
    pub fn list(&self) -> impl Iterator<Item = (&str, &[Value])> {
        self.state.iter().map(|(k, v)| (k.as_str(), metas(v)))
    }

    /// The metas of one key.
    pub fn get(&self, key: &str) -> Option<&[Value]> {
        self.state.get(key).map(metas)
    }

    /// The whole presence object of one key (`metas` and any other field).
    pub fn presence(&self, key: &str) -> Option<&Value> {
        self.state.get(key)
    }
}
