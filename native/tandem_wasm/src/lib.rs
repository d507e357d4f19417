//! Tandem's sync engine for the browser (DESIGN.md §3): the page's transport
//! is the official phoenix npm client; every diff, rebase, checksum and z
//! index is computed here, in the same Rust as the server and the native
//! client. Values cross the boundary as JSON strings: one serde path, no
//! second schema in JavaScript. Sequence numbers and batch ids cross as
//! plain JS numbers.

pub mod engine;
pub mod layers;

use engine::{Engine, Reaction};
use serde_json::{json, Map, Value};
use tandem_core::room::ServerBatch;
use tandem_core::Diff;
use wasm_bindgen::prelude::*;

/// The engine as JavaScript sees it.
#[wasm_bindgen]
pub struct SyncEngine {
    inner: Engine,
}

fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, JsError> {
    serde_json::from_str(json).map_err(|e| JsError::new(&e.to_string()))
}

/// Batch ids and seqs cross as JS numbers (exact below 2^53), not BigInts.
fn number(id: Option<u64>) -> Option<f64> {
    id.map(|id| id as f64)
}

fn reaction_json(r: Reaction) -> String {
    let verify = r
        .mismatch
        .map(|(seq, checksum)| json!({"seq": seq, "checksum": checksum}));
    json!({"acked": r.acked, "verify": verify, "gap": r.gap}).to_string()
}

#[wasm_bindgen]
impl SyncEngine {
    #[wasm_bindgen(constructor)]
    pub fn new(client_id: &str) -> SyncEngine {
        SyncEngine {
            inner: Engine::new(client_id),
        }
    }

    /// Join/sync/verify reply → `{"acked","verify","gap"}`.
    pub fn install(&mut self, response_json: &str) -> Result<String, JsError> {
        let response: Value = parse(response_json)?;
        let reaction = self
            .inner
            .install(&response)
            .map_err(|e| JsError::new(&e))?;
        Ok(reaction_json(reaction))
    }

    /// A `"batch"` broadcast → `{"acked","verify","gap"}`.
    pub fn receive(&mut self, batch_json: &str) -> Result<String, JsError> {
        let batch: ServerBatch = parse(batch_json)?;
        Ok(reaction_json(self.inner.receive([batch])))
    }

    pub fn acknowledged(&mut self, batch_id: f64, seq: f64) {
        self.inner.acknowledged(batch_id as u64, seq as u64);
    }

    pub fn rejected(&mut self, batch_id: f64) {
        self.inner.rejected(batch_id as u64);
    }

    /// A `rate_limited` or `not_sequenced` batch: moved last under the fresh
    /// id returned.
    pub fn rekey(&mut self, batch_id: f64) -> Option<f64> {
        number(self.inner.rekey(batch_id as u64))
    }

    /// Pending `diffs` payloads, oldest first, as a JSON array.
    pub fn pending(&self) -> String {
        Value::Array(self.inner.pending()).to_string()
    }

    pub fn pending_count(&self) -> usize {
        self.inner.pending().len()
    }

    pub fn seq(&self) -> f64 {
        self.inner.seq() as f64
    }

    pub fn checksum(&mut self) -> String {
        self.inner.checksum().to_string()
    }

    pub fn mismatches(&self) -> f64 {
        self.inner.mismatches() as f64
    }

    /// The layers in paint order, as a JSON array.
    pub fn layers(&mut self) -> String {
        Value::Array(layers::paint_order(self.inner.document())).to_string()
    }

    pub fn can_undo(&self) -> bool {
        self.inner.can_undo()
    }

    pub fn can_redo(&self) -> bool {
        self.inner.can_redo()
    }

    pub fn undo(&mut self) -> Option<f64> {
        number(self.inner.undo())
    }

    pub fn redo(&mut self) -> Option<f64> {
        number(self.inner.redo())
    }

    /// Adds a layer on top; `attrs_json` is an object (name, color, x, y, w, h, parent?).
    pub fn add_layer(&mut self, id: &str, attrs_json: &str) -> Result<Option<f64>, JsError> {
        let attrs: Map<String, Value> = parse(attrs_json)?;
        let diffs = layers::add(self.inner.document(), id, attrs);
        Ok(number(self.inner.edit(diffs)))
    }

    /// Sets attributes of one layer in one undoable edit (null unsets).
    pub fn set_attrs(&mut self, id: &str, attrs_json: &str) -> Result<Option<f64>, JsError> {
        let attrs: Map<String, Value> = parse(attrs_json)?;
        Ok(number(self.inner.edit(layers::set(id, attrs))))
    }

    /// Moves a layer and its children.
    pub fn translate(&mut self, id: &str, dx: f64, dy: f64) -> Option<f64> {
        let diffs = layers::translate(self.inner.document(), id, dx, dy);
        number(self.inner.edit(diffs))
    }

    pub fn remove(&mut self, id: &str) -> Option<f64> {
        number(self.inner.edit(vec![Diff::Remove { id: id.into() }]))
    }

    /// Groups the layers `ids_json` (a JSON array of ids) under `group_id`.
    pub fn group(&mut self, group_id: &str, ids_json: &str) -> Result<Option<f64>, JsError> {
        let ids: Vec<String> = parse(ids_json)?;
        let diffs = layers::group(self.inner.document(), group_id, &ids);
        Ok(number(self.inner.edit(diffs)))
    }

    pub fn bring_forward(&mut self, id: &str) -> Option<f64> {
        let diffs = layers::reorder(self.inner.document(), id, true);
        number(self.inner.edit(diffs))
    }

    pub fn send_backward(&mut self, id: &str) -> Option<f64> {
        let diffs = layers::reorder(self.inner.document(), id, false);
        number(self.inner.edit(diffs))
    }
}
