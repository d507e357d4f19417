//! The edit ledger: every batch a client makes must become durable on the
//! server exactly once, unless its client restarted before the batch was
//! acknowledged (losing it is then what a restart means). A client that
//! settles a batch without a word (a later ack taken for an earlier batch,
//! say) converges with the server all the same, so only counting edits
//! catches it.
//!
//! An edit is known by its client and a fingerprint of its diffs as made:
//! ids change (a batch refused before it reached the room moves under a
//! fresh one), the diffs do not. The server's side fingerprints the diffs it
//! parsed from the push, so an edit that changed on the wire does not count
//! as arrived either. Fingerprints are 64-bit hashes: a fault hides only if
//! a lost edit's fingerprint equals that of an edit counted twice by the
//! same client, two faults at once.

use rustc_hash::{FxHashMap, FxHasher};
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use tandem_core::Diff;

/// What tells one edit of a client from another.
pub type Fingerprint = u64;

/// The fingerprint of `diffs`.
pub fn fingerprint(diffs: &[Diff]) -> Fingerprint {
    let mut hasher = FxHasher::default();
    diffs.hash(&mut hasher);
    hasher.finish()
}

/// Batches made minus batches made durable, per client and edit.
#[derive(Debug, Default)]
pub struct Ledger {
    clients: FxHashMap<String, FxHashMap<Fingerprint, Tally>>,
}

#[derive(Debug, Default)]
struct Tally {
    count: i64,
    /// The id the edit was first made under, to name it in a fault (none
    /// for an edit the server has that its client never made).
    made_as: Option<u64>,
}

impl Ledger {
    /// `client` made batch `batch_id` of `diffs`.
    pub fn made(&mut self, client: &str, batch_id: u64, diffs: &[Diff]) {
        self.count(client, fingerprint(diffs), 1, Some(batch_id));
    }

    /// The server made an edit of `client` durable.
    pub fn durable(&mut self, client: &str, edit: Fingerprint) {
        self.count(client, edit, -1, None);
    }

    /// Copies the client id only the first time it is seen.
    fn count(&mut self, client: &str, edit: Fingerprint, delta: i64, made_as: Option<u64>) {
        let edits = match self.clients.get_mut(client) {
            Some(edits) => edits,
            None => self.clients.entry(client.to_owned()).or_default(),
        };
        let tally = edits.entry(edit).or_default();
        tally.count += delta;
        if tally.made_as.is_none() {
            tally.made_as = made_as;
        }
    }

    /// The first (by client and batch id) edit missing from the server,
    /// made durable more often than it was made, or durable but never
    /// made; clients in `restarted` may have lost theirs.
    pub fn fault(&self, restarted: &BTreeSet<String>) -> Option<String> {
        let tallies = self
            .clients
            .iter()
            .flat_map(|(client, edits)| edits.values().map(move |tally| (client, tally)));
        let faults = tallies.filter_map(|(client, tally)| {
            let fault = match tally.count {
                0 => return None,
                c if c > 0 && restarted.contains(client) => return None,
                c if c > 0 => "never reached the server",
                _ => "was made durable more often than it was made",
            };
            Some((client, tally.made_as, fault))
        });
        let (client, made_as, fault) = faults.min()?;
        Some(match made_as {
            Some(batch_id) => format!("an edit of {client} (its batch {batch_id}) {fault}"),
            None => format!("an edit {client} never made was made durable"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{fingerprint, Ledger};
    use std::collections::BTreeSet;
    use tandem_core::Diff;

    fn edit(value: i32) -> Vec<Diff> {
        vec![Diff::set("o1", "x", Some(value.into()))]
    }

    #[test]
    fn an_edit_made_durable_once_leaves_no_fault() {
        let mut ledger = Ledger::default();
        ledger.made("a", 1, &edit(1));
        // The same diffs made again are another edit, counted again.
        ledger.made("a", 2, &edit(1));
        ledger.made("b", 1, &edit(2));
        ledger.durable("a", fingerprint(&edit(1)));
        ledger.durable("b", fingerprint(&edit(2)));
        ledger.durable("a", fingerprint(&edit(1)));
        assert_eq!(ledger.fault(&BTreeSet::new()), None);
    }

    #[test]
    fn an_edit_lost_or_made_durable_twice_is_named() {
        let mut ledger = Ledger::default();
        ledger.made("a", 7, &edit(1));
        ledger.made("a", 8, &edit(2));
        ledger.durable("a", fingerprint(&edit(2)));
        let lost = ledger.fault(&BTreeSet::new());
        assert_eq!(
            lost.as_deref(),
            Some("an edit of a (its batch 7) never reached the server")
        );
        // Its client restarted before the ack: losing it is allowed.
        assert_eq!(ledger.fault(&BTreeSet::from(["a".to_owned()])), None);

        ledger.durable("a", fingerprint(&edit(1)));
        ledger.durable("a", fingerprint(&edit(2)));
        let twice = ledger.fault(&BTreeSet::from(["a".to_owned()]));
        assert_eq!(
            twice.as_deref(),
            Some("an edit of a (its batch 8) was made durable more often than it was made")
        );
    }

    #[test]
    fn an_edit_changed_on_the_way_does_not_count_as_arrived() {
        let mut ledger = Ledger::default();
        ledger.made("a", 1, &edit(1));
        ledger.durable("a", fingerprint(&edit(10)));
        let restarted = BTreeSet::from(["a".to_owned()]);
        assert_eq!(
            ledger.fault(&restarted).as_deref(),
            Some("an edit a never made was made durable")
        );
        assert_eq!(
            ledger.fault(&BTreeSet::new()).as_deref(),
            Some("an edit a never made was made durable"),
            "first in order"
        );
    }
}
