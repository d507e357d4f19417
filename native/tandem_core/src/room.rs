//! The server's authoritative room: the document plus everything that makes
//! a stream of batches safe to retry and to catch up on. The NIF and the
//! fuzzy tester's simulated server both run this type, so the server's logic
//! exists once.

use crate::checksum::Checksum;
use crate::client_record::ClientRecord;
use crate::diff::Diff;
use crate::document::{Document, DropReason, Outcome};
use crate::limits::Limits;
use crate::snapshot;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Arc;

pub use crate::client_record::RETRY_WINDOW;

/// A batch as a client sends it (the payload of a `"diffs"` push).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncomingBatch {
    pub batch_id: u64,
    pub diffs: Vec<Diff>,
}

/// A resolved batch as every member receives it (the `"batch"` broadcast).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServerBatch {
    pub seq: u64,
    pub client_id: String,
    pub batch_id: u64,
    pub user_id: String,
    pub diffs: Vec<Diff>,
    /// The document's checksum after this batch.
    pub checksum: Checksum,
}

/// A diff the server did not apply, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedDiff {
    pub index: usize,
    pub reason: DropReason,
}

/// What the sender of a batch is told (the reply to `"diffs"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    pub seq: u64,
    pub checksum: Checksum,
    /// Indices (into the sent diffs) of the diffs applied with a changed `z`.
    #[serde(default)]
    pub amended: Vec<usize>,
    #[serde(default)]
    pub dropped: Vec<DroppedDiff>,
}

/// What the journal keeps of an accepted batch: enough to rebuild the room.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub batch: ServerBatch,
    pub ack: Ack,
}

/// A batch refused as a whole (nothing applied, no sequence number used).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("malformed batch: {0}")]
    Malformed(String),
    #[error("a batch may hold at most {max} diffs")]
    TooManyDiffs { max: usize },
    #[error("client_id must be 1..128 bytes without NUL")]
    InvalidClientId,
    #[error("batch {batch_id} is older than the retry window")]
    StaleBatch { batch_id: u64 },
    #[error("batch {batch_id} was never sequenced, and a later batch of this client was: send it again under a new batch_id")]
    NotSequenced { batch_id: u64 },
}

impl Rejection {
    /// The wire reason (snake_case).
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Malformed(_) => "malformed",
            Rejection::TooManyDiffs { .. } => "too_many_diffs",
            Rejection::InvalidClientId => "invalid_client_id",
            Rejection::StaleBatch { .. } => "stale_batch",
            Rejection::NotSequenced { .. } => "not_sequenced",
        }
    }
}

/// The result of a submission.
#[derive(Clone, Debug, PartialEq)]
pub enum Submitted {
    /// A new batch: sequenced, to be journaled, acknowledged and broadcast.
    Accepted { ack: Ack, batch: Arc<ServerBatch> },
    /// A retry of a batch already sequenced: answer with its original ack.
    Duplicate(Ack),
}

/// What a joining or lagging client needs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CatchUp<'a> {
    pub seq: u64,
    pub checksum: Checksum,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<&'a Document>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batches: Option<Vec<&'a ServerBatch>>,
}

/// Why a journal entry could not be replayed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("journal gap: expected seq {expected}, found {found}")]
    Gap { expected: u64, found: u64 },
    #[error("replaying seq {seq} gave checksum {actual}, the journal says {expected}")]
    Diverged {
        seq: u64,
        expected: Checksum,
        actual: Checksum,
    },
}

/// Bounds on the recent-batch log kept for catch-up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogBounds {
    pub max_batches: usize,
    pub max_diffs: usize,
}

impl Default for LogBounds {
    fn default() -> Self {
        LogBounds {
            max_batches: 1_000,
            max_diffs: 100_000,
        }
    }
}

/// The authoritative state of one project.
#[derive(Clone, Debug)]
pub struct Room {
    doc: Document,
    seq: u64,
    clients: FxHashMap<String, ClientRecord>,
    log: VecDeque<Arc<ServerBatch>>,
    log_diffs: usize,
    bounds: LogBounds,
}

impl Room {
    /// An empty room at seq 0.
    pub fn new(limits: Limits, bounds: LogBounds) -> Room {
        Room {
            doc: Document::new(limits),
            seq: 0,
            clients: FxHashMap::default(),
            log: VecDeque::new(),
            log_diffs: 0,
            bounds,
        }
    }

    /// The current sequence number (0 before the first batch).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The document as of [`Room::seq`].
    pub fn document(&self) -> &Document {
        &self.doc
    }

    /// Resolves and sequences a batch from `client_id`, or recognises a retry.
    pub fn submit(
        &mut self,
        client_id: &str,
        user_id: &str,
        batch: IncomingBatch,
    ) -> Result<Submitted, Rejection> {
        if !Limits::name_ok(client_id, 128) {
            return Err(Rejection::InvalidClientId);
        }
        if let Some(record) = self.clients.get(client_id) {
            if batch.batch_id <= record.last_batch_id {
                return record.retry(batch.batch_id);
            }
        }
        let max = self.doc.limits().max_diffs_per_batch;
        if batch.diffs.len() > max {
            return Err(Rejection::TooManyDiffs { max });
        }
        let (outcomes, applied) = self.doc.resolve_batch(batch.diffs);
        self.seq += 1;
        let mut ack = Ack {
            seq: self.seq,
            checksum: self.doc.checksum(),
            amended: Vec::new(),
            dropped: Vec::new(),
        };
        for (index, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Outcome::Accepted => {}
                Outcome::Amended => ack.amended.push(index),
                Outcome::Dropped(reason) => ack.dropped.push(DroppedDiff { index, reason }),
            }
        }
        let batch = Arc::new(ServerBatch {
            seq: self.seq,
            client_id: client_id.to_owned(),
            batch_id: batch.batch_id,
            user_id: user_id.to_owned(),
            diffs: applied,
            checksum: self.doc.checksum(),
        });
        self.remember(&batch, ack.clone());
        Ok(Submitted::Accepted { ack, batch })
    }

    fn remember(&mut self, batch: &Arc<ServerBatch>, ack: Ack) {
        let record = self.clients.entry(batch.client_id.clone()).or_default();
        record.last_batch_id = batch.batch_id;
        record.recent.push_back((batch.batch_id, ack));
        if record.recent.len() > RETRY_WINDOW {
            record.recent.pop_front();
        }
        self.log_diffs += batch.diffs.len();
        self.log.push_back(Arc::clone(batch));
        while self.log.len() > self.bounds.max_batches
            || (self.log_diffs > self.bounds.max_diffs && self.log.len() > 1)
        {
            let old = self.log.pop_front().expect("log is not empty");
            self.log_diffs -= old.diffs.len();
        }
    }

    /// What a client holding `since` needs: the batches after it when the
    /// log still has them all, a snapshot otherwise.
    pub fn catch_up(&self, since: Option<u64>) -> CatchUp<'_> {
        let from_log = since.filter(|&s| {
            s <= self.seq && self.log.front().map_or(s == self.seq, |b| b.seq <= s + 1)
        });
        let (snapshot, batches) = match from_log {
            Some(s) => (
                None,
                Some(
                    self.log
                        .iter()
                        .filter(|b| b.seq > s)
                        .map(|b| b.as_ref())
                        .collect(),
                ),
            ),
            None => (Some(&self.doc), None),
        };
        CatchUp {
            seq: self.seq,
            checksum: self.doc.checksum(),
            snapshot,
            batches,
        }
    }

    /// The document's checksum right after batch `seq`, while the log holds it.
    pub fn checksum_at(&self, seq: u64) -> Option<Checksum> {
        if seq == self.seq {
            return Some(self.doc.checksum());
        }
        let first = self.log.front()?.seq;
        let index = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.log.get(index).map(|b| b.checksum)
    }

    /// Re-applies a journaled batch on recovery. Entries at or below the
    /// current seq are already in the snapshot and are skipped.
    pub fn replay(&mut self, entry: JournalEntry) -> Result<(), ReplayError> {
        let JournalEntry { batch, ack } = entry;
        if batch.seq <= self.seq {
            return Ok(());
        }
        if batch.seq != self.seq + 1 {
            return Err(ReplayError::Gap {
                expected: self.seq + 1,
                found: batch.seq,
            });
        }
        self.doc.apply_quietly(batch.diffs.iter().cloned());
        if self.doc.checksum() != batch.checksum {
            return Err(ReplayError::Diverged {
                seq: batch.seq,
                expected: batch.checksum,
                actual: self.doc.checksum(),
            });
        }
        self.seq = batch.seq;
        self.remember(&Arc::new(batch), ack);
        Ok(())
    }

    /// The durable form of the room (MessagePack).
    pub fn snapshot(&self) -> Vec<u8> {
        snapshot::encode(self.seq, &self.doc, &self.clients)
    }

    /// Rebuilds a room from [`Room::snapshot`] bytes, verifying them.
    pub fn restore(bytes: &[u8], limits: Limits, bounds: LogBounds) -> Result<Room, String> {
        let snapshot::Snapshot {
            seq,
            document,
            clients,
        } = snapshot::decode(bytes, limits)?;
        Ok(Room {
            doc: document,
            seq,
            clients,
            log: VecDeque::new(),
            log_diffs: 0,
            bounds,
        })
    }
}
