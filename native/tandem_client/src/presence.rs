//! The presence tracker, merging `presence_state` and `presence_diff` as
//! phoenix.js's `Presence` does: state is `{key: {"metas": [meta]}}`, each
//! meta identified by its `phx_ref`; a diff adds the joined metas and removes
//! the left ones by `phx_ref`, dropping a key whose last meta left. Diffs
//! that arrive before the first state are held and applied after it.

use serde_json::Value;
use std::collections::BTreeMap;

/// Who is present, by key (user id), with one meta per connection.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Presence {
    state: BTreeMap<String, Vec<Value>>,
    synced: bool,
    pending: Vec<Value>,
}

fn metas(entry: &Value) -> Vec<Value> {
    entry
        .get("metas")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn phx_ref(meta: &Value) -> Option<&str> {
    meta.get("phx_ref").and_then(Value::as_str)
}

impl Presence {
    /// Replaces the state with a `presence_state` payload, then applies any
    /// diff that arrived before it.
    pub fn sync_state(&mut self, state: &Value) {
        self.state = state
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), metas(v))).collect())
            .unwrap_or_default();
        self.state.retain(|_, m| !m.is_empty());
        self.synced = true;
        for diff in std::mem::take(&mut self.pending) {
            self.sync_diff(&diff);
        }
    }

    /// Applies a `presence_diff` payload (held until the first state).
    pub fn sync_diff(&mut self, diff: &Value) {
        if !self.synced {
            self.pending.push(diff.clone());
            return;
        }
        if let Some(joins) = diff.get("joins").and_then(Value::as_object) {
            for (key, entry) in joins {
                let list = self.state.entry(key.clone()).or_default();
                for meta in metas(entry) {
                    list.retain(|m| phx_ref(m) != phx_ref(&meta));
                    list.push(meta);
                }
            }
        }
        if let Some(leaves) = diff.get("leaves").and_then(Value::as_object) {
            for (key, entry) in leaves {
                let gone: Vec<Value> = metas(entry);
                if let Some(list) = self.state.get_mut(key) {
                    list.retain(|m| !gone.iter().any(|g| phx_ref(g) == phx_ref(m)));
                    if list.is_empty() {
                        self.state.remove(key);
                    }
                }
            }
        }
    }

    /// Present keys with their metas, in key order.
    pub fn list(&self) -> impl Iterator<Item = (&str, &[Value])> {
        self.state.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// The metas of one key.
    pub fn get(&self, key: &str) -> Option<&[Value]> {
        self.state.get(key).map(Vec::as_slice)
    }
}
