//! The sync engine the page drives: a [`Replica`] (confirmed state, pending
//! batches, rebase, checksum checks) plus the user's undo and redo stacks.
//!
//! It is sans-I/O: the page's transport (the phoenix npm client) hands it the
//! server's replies and broadcasts and sends what it says to send. It does
//! not reuse `tandem_client::Client` because that type owns the Phoenix
//! Channels framing, which in the browser is phoenix.js's job.

use serde::Deserialize;
use serde_json::Value;
use tandem_core::replica::Incoming;
use tandem_core::room::ServerBatch;
use tandem_core::{Checksum, Diff, Document, Replica};

/// What the page must do after handing the engine server input.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reaction {
    /// Own batches the server sequenced.
    pub acked: Vec<u64>,
    /// The confirmed checksum differs from the server's: push `verify` with
    /// this seq and (our) checksum; its answer carries the snapshot.
    pub mismatch: Option<(u64, Checksum)>,
    /// Batches are missing before this one: push `sync` from `seq()`.
    pub gap: bool,
}

/// A client's replica of one project plus its local undo history.
pub struct Engine {
    replica: Replica,
    undo: Vec<Vec<Diff>>,
    redo: Vec<Vec<Diff>>,
    mismatches: u64,
}

enum Stack {
    Undo,
    Redo,
}

impl Engine {
    /// An empty replica at seq 0; the join reply fills it.
    pub fn new(client_id: &str) -> Engine {
        Engine {
            replica: Replica::new(client_id, 0, Document::default(), 1),
            undo: Vec::new(),
            redo: Vec::new(),
            mismatches: 0,
        }
    }

    pub fn document(&mut self) -> &Document {
        self.replica.document()
    }

    pub fn seq(&self) -> u64 {
        self.replica.seq()
    }

    /// Checksum of the local view (equals the confirmed one when nothing is pending).
    pub fn checksum(&mut self) -> Checksum {
        self.replica.document().checksum()
    }

    /// Checksum mismatches seen since the engine started.
    pub fn mismatches(&self) -> u64 {
        self.mismatches
    }

    /// Pending batches, oldest first, as `diffs` push payloads.
    pub fn pending(&self) -> Vec<Value> {
        self.replica
            .pending()
            .map(|p| serde_json::json!({"batch_id": p.batch_id, "diffs": p.diffs}))
            .collect()
    }

    /// Installs a join, sync or verify answer: a snapshot or missed batches.
    pub fn install(&mut self, response: &Value) -> Result<Reaction, String> {
        let seq = response
            .get("seq")
            .and_then(Value::as_u64)
            .unwrap_or(self.seq());
        // Read from the tree in place: a copy of it first would be a second
        // tree to allocate, as large as a big project's document (not measured).
        if let Some(snapshot) = response.get("snapshot") {
            let doc = Document::deserialize(snapshot).map_err(|e| e.to_string())?;
            self.replica.reset(seq, doc);
            return Ok(Reaction::default());
        }
        match response.get("batches") {
            Some(batches) => {
                let batches =
                    Vec::<ServerBatch>::deserialize(batches).map_err(|e| e.to_string())?;
                Ok(self.receive(batches))
            }
            None => Ok(Reaction::default()),
        }
    }

    /// Rebases over server batches (broadcasts or a sync answer); given by
    /// value, their diffs move into the replica uncopied.
    pub fn receive<B: Incoming>(&mut self, batches: impl IntoIterator<Item = B>) -> Reaction {
        match self.replica.receive(batches) {
            Ok(received) => {
                if received.mismatch.is_some() {
                    self.mismatches += 1;
                }
                Reaction {
                    acked: received.acked,
                    mismatch: received.mismatch.map(|m| (m.seq, m.actual)),
                    gap: false,
                }
            }
            Err(_) => Reaction {
                gap: true,
                ..Reaction::default()
            },
        }
    }

    /// The server answered `batch_id` with `seq`.
    pub fn acknowledged(&mut self, batch_id: u64, seq: u64) {
        self.replica.acknowledged(batch_id, seq);
    }

    /// The server refused `batch_id`: it leaves the local view.
    pub fn rejected(&mut self, batch_id: u64) {
        self.replica.rejected(batch_id);
    }

    /// The server certainly never sequenced `batch_id` (`rate_limited`,
    /// `not_sequenced`): it moves last under a fresh id, returned.
    pub fn rekey(&mut self, batch_id: u64) -> Option<u64> {
        self.replica.rekey(batch_id)
    }

    /// A user operation: applied at once, queued to send, undoable.
    pub fn edit(&mut self, diffs: Vec<Diff>) -> Option<u64> {
        self.redo.clear();
        self.record(diffs, Stack::Undo)
    }

    /// Sends the inverse of the user's latest edit as a new edit.
    pub fn undo(&mut self) -> Option<u64> {
        let inverse = self.undo.pop()?;
        self.record(inverse, Stack::Redo)
    }

    /// Re-applies the latest undone edit.
    pub fn redo(&mut self) -> Option<u64> {
        let diffs = self.redo.pop()?;
        self.record(diffs, Stack::Undo)
    }

    pub fn can_undo(&self) -> bool {
        !self.undo.is_empty()
    }

    pub fn can_redo(&self) -> bool {
        !self.redo.is_empty()
    }

    fn record(&mut self, diffs: Vec<Diff>, stack: Stack) -> Option<u64> {
        let edit = self.replica.edit(diffs);
        let batch_id = edit.batch_id?;
        match stack {
            Stack::Undo => self.undo.push(edit.inverse),
            Stack::Redo => self.redo.push(edit.inverse),
        }
        Some(batch_id)
    }
}
