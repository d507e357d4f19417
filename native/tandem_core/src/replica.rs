//! A client's replica of a project: the confirmed document as of the server's
//! sequence number, with the client's own pending batches applied on top
//! optimistically, and the rebase that keeps the two consistent as server
//! batches arrive (DESIGN.md §3).
//!
//! One document holds the local view. A rebase unwinds the pending batches
//! with their inverses (newest first), which leaves exactly the confirmed
//! document; applies the server's batches (checking each checksum there, on
//! the confirmed state, and not the limits of each diff on its own, which
//! the room judged); drops the pending batches they acknowledge; and
//! re-applies the rest, recording fresh inverses.
//!
//! The re-application is lazy: it happens when the view is next read or
//! edited ([`Replica::document`], [`Replica::edit`]), not after every server
//! batch. A client on a busy project receives several batches between two
//! looks at its view, and each would otherwise pay a full unwind and
//! re-apply of everything pending; deferred, a burst costs one of each.
//!
//! Pending batches are applied without hashing ([`Document::unsummed`]):
//! the document's running checksum stays the confirmed state's, which is
//! the only one compared with the server's. Most applications of a pending
//! batch are unwound again before the server confirms it; the one that
//! lasts (the oldest batch confirmed as it sits on the view) is hashed then,
//! from its applied diffs and its inverse ([`batch_term`]).

use crate::checksum::{entering_term, Checksum};
use crate::diff::Diff;
use crate::document::{Document, Outcome};
use crate::room::ServerBatch;
use std::borrow::Borrow;
use std::collections::VecDeque;

/// A batch of the client's own that the server has not sequenced yet.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    pub batch_id: u64,
    /// The diffs to send (as first applied locally).
    pub diffs: Vec<Diff>,
    /// Undoes the batch as it is currently applied to the local view.
    inverse: Vec<Diff>,
    /// The diffs as currently applied when they differ from `diffs` (an
    /// amendment or a drop on re-application; `None` when they are `diffs`):
    /// when the server's batch for this one is exactly what was applied on
    /// the same confirmed state, no rebase is needed (see `receive`).
    applied: Option<Vec<Diff>>,
}

impl Pending {
    /// The diffs as currently applied.
    fn as_applied(&self) -> &[Diff] {
        self.applied.as_ref().unwrap_or(&self.diffs)
    }
}

/// How much a batch applied as `applied`, undone by `inverse`, changed a
/// document's checksum: what its diffs put in less what its inverse's would
/// put back (a removal's share is its inverse's re-adds).
fn batch_term(applied: &[Diff], inverse: &[Diff]) -> u64 {
    let sum = |diffs: &[Diff]| {
        diffs
            .iter()
            .fold(0u64, |sum, diff| sum.wrapping_add(entering_term(diff)))
    };
    sum(applied).wrapping_sub(sum(inverse))
}

/// The result of a local edit.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalEdit {
    /// The pending batch to send, or `None` when nothing applied.
    pub batch_id: Option<u64>,
    pub outcomes: Vec<Outcome>,
    /// Undoes the edit as applied now (what local undo sends).
    pub inverse: Vec<Diff>,
}

/// A server batch whose checksum differs from the replica's confirmed state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub seq: u64,
    pub expected: Checksum,
    pub actual: Checksum,
}

/// What receiving server batches did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Received {
    /// Own batch ids the server sequenced in these batches.
    pub acked: Vec<u64>,
    /// Batches at or below the held seq, ignored (retransmits, races).
    pub ignored: usize,
    /// The first checksum mismatch: the replica must resync.
    pub mismatch: Option<Mismatch>,
}

impl Received {
    /// Keeps the first mismatch: batch `seq`'s checksum `expected` against
    /// the replica's `actual` one at that seq.
    fn check(&mut self, seq: u64, expected: Checksum, actual: Checksum) {
        if self.mismatch.is_none() && expected != actual {
            self.mismatch = Some(Mismatch {
                seq,
                expected,
                actual,
            });
        }
    }
}

/// Server batches that do not follow the held seq: the replica must sync.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected seq {expected}, received {received}")]
pub struct Gap {
    pub expected: u64,
    pub received: u64,
}

/// A server batch as [`Replica::receive`] takes it. Given by value, its
/// diffs move into the document; borrowed, they are copied. A client hands
/// over the batches it has just read, so the copy is worth sparing: it was
/// most of the allocations of applying a broadcast.
pub trait Incoming: Borrow<ServerBatch> {
    /// Applies the batch's diffs to `doc`, recording nothing.
    fn apply_quietly(self, doc: &mut Document);
}

impl Incoming for ServerBatch {
    fn apply_quietly(self, doc: &mut Document) {
        doc.apply_quietly(self.diffs);
    }
}

impl Incoming for &ServerBatch {
    fn apply_quietly(self, doc: &mut Document) {
        doc.apply_quietly(self.diffs.iter().cloned());
    }
}

/// A client's replica.
#[derive(Clone, Debug)]
pub struct Replica {
    client_id: String,
    doc: Document,
    seq: u64,
    pending: VecDeque<Pending>,
    next_batch_id: u64,
    /// Whether the pending batches are applied on `doc` (the view) or not
    /// (`doc` is the confirmed state, and their inverses are spent).
    settled: bool,
}

impl Replica {
    /// A replica holding the server's `doc` at `seq`. Batch ids start at
    /// `first_batch_id`, which must exceed any id this client_id used before.
    pub fn new(client_id: impl Into<String>, seq: u64, doc: Document, first_batch_id: u64) -> Self {
        Replica {
            client_id: client_id.into(),
            doc,
            seq,
            pending: VecDeque::new(),
            next_batch_id: first_batch_id,
            settled: true,
        }
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The local view: confirmed state plus pending edits (re-applying
    /// them first when a rebase left them off).
    pub fn document(&mut self) -> &Document {
        self.settle();
        &self.doc
    }

    /// The server sequence number the confirmed state is at.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Pending batches, oldest first (resend them in this order).
    pub fn pending(&self) -> impl ExactSizeIterator<Item = &Pending> {
        self.pending.iter()
    }

    /// Applies a local operation optimistically and queues it for sending.
    pub fn edit(&mut self, diffs: Vec<Diff>) -> LocalEdit {
        self.settle();
        let result = self.doc.unsummed(|doc| doc.apply_batch(diffs));
        if result.applied.is_empty() {
            return LocalEdit {
                batch_id: None,
                outcomes: result.outcomes,
                inverse: Vec::new(),
            };
        }
        let batch_id = self.next_batch_id;
        self.next_batch_id += 1;
        self.pending.push_back(Pending {
            batch_id,
            applied: None,
            diffs: result.applied,
            inverse: result.inverse.clone(),
        });
        LocalEdit {
            batch_id: Some(batch_id),
            outcomes: result.outcomes,
            inverse: result.inverse,
        }
    }

    /// Rebases over server batches (in seq order; ones at or below the held
    /// seq are ignored). On a gap nothing changes and the caller must sync.
    pub fn receive<B: Incoming>(
        &mut self,
        batches: impl IntoIterator<Item = B>,
    ) -> Result<Received, Gap> {
        let mut received = Received::default();
        // Sized from the start: a client mostly hands over one batch, and
        // growing an empty vector to hold it cost about seventy
        // instructions more than allocating it at its size.
        let batches = batches.into_iter();
        let mut fresh = Vec::with_capacity(batches.size_hint().0);
        for batch in batches {
            let seq = batch.borrow().seq;
            if seq <= self.seq {
                received.ignored += 1;
                continue;
            }
            let expected = self.seq + 1 + fresh.len() as u64;
            if seq != expected {
                return Err(Gap {
                    expected,
                    received: seq,
                });
            }
            fresh.push(batch);
        }
        let own = fresh
            .iter()
            .take_while(|batch| self.take_own_unchanged((*batch).borrow(), &mut received))
            .count();
        if own == fresh.len() {
            return Ok(received);
        }
        self.unwind();
        for batch in fresh.into_iter().skip(own) {
            let (seq, checksum, own_batch_id) = {
                let b: &ServerBatch = batch.borrow();
                let own = b.client_id == self.client_id;
                (b.seq, b.checksum, own.then_some(b.batch_id))
            };
            // The room judged each diff's own limits before sequencing it,
            // and its judgement is the one every replica must share: one
            // refusing what the room accepted (say, under other limits)
            // would only diverge and resync to it.
            self.doc.prechecked(|doc| batch.apply_quietly(doc));
            self.seq = seq;
            received.check(seq, checksum, self.doc.running_checksum());
            if let Some(batch_id) = own_batch_id {
                // Only that batch: an earlier one still pending was skipped
                // (its answer, `unavailable`, may even have been lost with
                // the connection) and will be answered on its resend.
                self.pending.retain(|p| p.batch_id != batch_id);
                received.acked.push(batch_id);
            }
        }
        Ok(received)
    }

    /// Rebases over server batch `seq` when it is own pending batch
    /// `batch_id` applied exactly as it was sent (nothing amended or
    /// dropped: the caller saw the very diffs it sent), which is then
    /// [`Replica::receive`] of it without its diffs: they are the pending
    /// batch's own. `None` when no batch `batch_id` is pending and `seq` is
    /// new; only the server's diffs will do then.
    pub fn receive_echo(
        &mut self,
        seq: u64,
        batch_id: u64,
        checksum: Checksum,
    ) -> Option<Result<Received, Gap>> {
        let mut received = Received::default();
        if seq <= self.seq {
            received.ignored = 1;
            return Some(Ok(received));
        }
        if seq != self.seq + 1 {
            return Some(Err(Gap {
                expected: self.seq + 1,
                received: seq,
            }));
        }
        let index = self.pending.iter().position(|p| p.batch_id == batch_id)?;
        if index == 0 && self.front_on_view().is_some_and(|p| p.applied.is_none()) {
            self.take_front(seq, checksum, &mut received);
            return Some(Ok(received));
        }
        self.unwind();
        let pending = self.pending.remove(index).expect("found above");
        self.doc.prechecked(|doc| doc.apply_quietly(pending.diffs));
        received.check(seq, checksum, self.doc.running_checksum());
        self.seq = seq;
        received.acked = vec![batch_id];
        Some(Ok(received))
    }

    /// The server answered `batch_id` with seq `acked_seq` (possibly a
    /// retry's answer). When the confirmed state already includes that seq
    /// the batch's broadcast will never come again, so it leaves the queue.
    pub fn acknowledged(&mut self, batch_id: u64, acked_seq: u64) {
        if acked_seq <= self.seq {
            self.forget(|p| p.batch_id == batch_id);
        }
    }

    /// The server refused `batch_id` as a whole: drop it from the local view.
    pub fn rejected(&mut self, batch_id: u64) {
        self.forget(|p| p.batch_id == batch_id);
    }

    /// Gives pending batch `batch_id` a fresh id after all others and moves
    /// it last, for a batch the server certainly never applied (refused
    /// before reaching the room, e.g. `rate_limited`, or answered
    /// `not_sequenced`) while later ones may already be sequenced: resent
    /// under its old id it would be refused, and the edit lost. Returns the
    /// new id.
    pub fn rekey(&mut self, batch_id: u64) -> Option<u64> {
        let index = self.pending.iter().position(|p| p.batch_id == batch_id)?;
        self.unwind();
        let mut batch = self.pending.remove(index).expect("found above");
        batch.batch_id = self.next_batch_id;
        self.next_batch_id += 1;
        let new_id = batch.batch_id;
        self.pending.push_back(batch);
        Some(new_id)
    }

    /// Replaces the confirmed state with a server snapshot (resync), keeping
    /// pending edits on top. Pending batches the snapshot already includes
    /// are then answered as duplicates and leave through
    /// [`Replica::acknowledged`].
    pub fn reset(&mut self, seq: u64, doc: Document) {
        self.doc = doc;
        self.seq = seq;
        self.settled = false;
    }

    fn forget(&mut self, gone: impl Fn(&Pending) -> bool) {
        if !self.pending.iter().any(&gone) {
            return;
        }
        self.unwind();
        self.pending.retain(|p| !gone(p));
    }

    /// Undoes every pending batch, newest first, consuming the inverses
    /// (the next [`Replica::settle`] computes fresh ones). Leaves `doc` the
    /// confirmed state.
    fn unwind(&mut self) {
        if !self.settled {
            return;
        }
        self.settled = false;
        if cfg!(feature = "broken-rebase") || self.pending.is_empty() {
            return;
        }
        let inverses = self.pending.iter_mut().rev();
        self.doc
            .undo_to(inverses.map(|p| std::mem::take(&mut p.inverse)));
    }

    /// Puts the pending batches back on the confirmed state if a rebase
    /// left them off.
    fn settle(&mut self) {
        if !self.settled {
            self.reapply();
            self.settled = true;
        }
    }

    /// Re-applies every pending batch on the confirmed state, recording
    /// fresh inverses. What was applied is recorded only when it differs
    /// from the batch (rare: the batch is then undone and applied again with
    /// recording), which spares a copy of every re-applied value.
    ///
    /// A batch that differed on its last application is applied with
    /// recording at once: it mostly differs again (what amended or dropped
    /// it is usually still there), and trying without recording first cost
    /// an application and an undo more. Either way the document and the
    /// records end the same.
    fn reapply(&mut self) {
        let pending = &mut self.pending;
        self.doc.unsummed(|doc| {
            doc.prechecked(|doc| {
                for pending in pending.iter_mut() {
                    if pending.applied.is_none() {
                        let (outcomes, inverse) = doc.apply_with_inverse(pending.diffs.clone());
                        if outcomes.iter().all(|o| *o == Outcome::Accepted) {
                            pending.inverse = inverse;
                            continue;
                        }
                        doc.apply_quietly(inverse);
                    }
                    let result = doc.apply_batch(pending.diffs.clone());
                    pending.inverse = result.inverse;
                    let differs = result.outcomes.iter().any(|o| *o != Outcome::Accepted);
                    pending.applied = differs.then_some(result.applied);
                }
            })
        });
    }

    /// The common case of an own batch coming back: the front pending batch
    /// was applied directly on the confirmed state, so when the server's
    /// batch is the same diffs, the local view already is the new confirmed
    /// state plus the remaining pending batches, and nothing needs unwinding.
    fn take_own_unchanged(&mut self, batch: &ServerBatch, received: &mut Received) -> bool {
        let Some(front) = self.front_on_view() else {
            return false;
        };
        if batch.client_id != self.client_id
            || batch.batch_id != front.batch_id
            || batch.diffs != front.as_applied()
        {
            return false;
        }
        self.take_front(batch.seq, batch.checksum, received);
        true
    }

    /// The oldest pending batch while the view has it applied on the
    /// confirmed state.
    fn front_on_view(&self) -> Option<&Pending> {
        self.pending.front().filter(|_| self.settled)
    }

    /// The server's batch `seq` is [`Replica::front_on_view`] as applied:
    /// the view already is the new confirmed state plus the rest, so the
    /// front batch leaves without anything being undone or applied, and
    /// the running checksum takes in what it changed.
    fn take_front(&mut self, seq: u64, checksum: Checksum, received: &mut Received) {
        let front = self.pending.pop_front().expect("a front batch on the view");
        let term = batch_term(front.as_applied(), &front.inverse);
        let confirmed = Checksum(self.doc.running_checksum().0.wrapping_add(term));
        self.doc
            .set_running_checksum(confirmed, self.pending.is_empty());
        debug_assert!(
            !self.pending.is_empty() || self.doc.full_checksum() == confirmed,
            "the view left is the confirmed state"
        );
        received.check(seq, checksum, confirmed);
        self.seq = seq;
        received.acked.push(front.batch_id);
    }
}
