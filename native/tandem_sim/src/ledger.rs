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

use rustc_hash::FxHashMap;
use std::collections::BTreeSet;
use tandem_core::{Diff, Value};

/// What tells one edit of a client from another.
pub type Fingerprint = u64;

/// The fingerprint of `diffs`: every diff's kind, ids, keys and values,
/// lengths included, mixed a word at a time. Written out rather than
/// derived: the derived `Hash` made a call per string, value and number,
/// about 300 instructions a batch, and every batch is fingerprinted twice
/// (made, and parsed by the server).
pub fn fingerprint(diffs: &[Diff]) -> Fingerprint {
    let mut mix = Mix(diffs.len() as u64);
    for diff in diffs {
        match diff {
            Diff::Add { id, attrs } => {
                mix.word(1);
                mix.text(id);
                mix.word(attrs.len() as u64);
                for (key, value) in attrs.iter() {
                    mix.text(key);
                    mix.value(value);
                }
            }
            Diff::Remove { id } => {
                mix.word(2);
                mix.text(id);
            }
            Diff::Set { id, key, value } => {
                mix.word(3);
                mix.text(id);
                mix.text(key);
                match value {
                    None => mix.word(0),
                    Some(value) => mix.value(value),
                }
            }
        }
    }
    mix.finish()
}

/// A 64-bit mix of words, as `FxHasher` mixes them (rotate, xor, multiply).
struct Mix(u64);

impl Mix {
    #[inline(always)]
    fn word(&mut self, word: u64) {
        const K: u64 = 0xf135_7aea_2e62_a9c5;
        self.0 = (self.0.rotate_left(26) ^ word).wrapping_mul(K);
    }

    /// A string's length, then its bytes in words: eight at a time, the
    /// last eight overlapping the ones before, and a short string read as
    /// two overlapping halves (as wyhash reads them; with the length mixed
    /// in, no two strings read alike, and no copy is made).
    #[inline(always)]
    fn text(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let len = bytes.len();
        self.word(len as u64);
        let at = |i: usize, n: usize| -> u64 {
            let mut word = [0; 8];
            word[..n].copy_from_slice(&bytes[i..i + n]);
            u64::from_le_bytes(word)
        };
        match len {
            0 => {}
            1..=3 => {
                let (a, b, c) = (bytes[0], bytes[len / 2], bytes[len - 1]);
                self.word(u64::from(a) | u64::from(b) << 8 | u64::from(c) << 16);
            }
            4..=7 => self.word(at(0, 4) | at(len - 4, 4) << 32),
            _ => {
                let mut words = bytes.chunks_exact(8);
                for word in &mut words {
                    self.word(u64::from_le_bytes(word.try_into().expect("8 bytes")));
                }
                if !words.remainder().is_empty() {
                    self.word(at(len - 8, 8));
                }
            }
        }
    }

    /// A value: strings and numbers, nearly all of them, inline; the rest
    /// out of line.
    #[inline(always)]
    fn value(&mut self, value: &Value) {
        match value {
            Value::String(text) => {
                self.word(16);
                self.text(text);
            }
            Value::Number(n) => match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => {
                    self.word(13);
                    self.word(u);
                }
                (None, Some(i)) => {
                    self.word(14);
                    self.word(i as u64);
                }
                _ => {
                    self.word(15);
                    self.word(n.as_f64().unwrap_or(f64::NAN).to_bits());
                }
            },
            _ => self.other_value(value),
        }
    }

    /// A literal, an array or an object.
    #[inline(never)]
    fn other_value(&mut self, value: &Value) {
        match value {
            Value::Null => self.word(10),
            Value::Bool(b) => self.word(11 + u64::from(*b)),
            Value::Array(items) => {
                self.word(17);
                self.word(items.len() as u64);
                items.iter().for_each(|item| self.value(item));
            }
            Value::Object(map) => {
                self.word(18);
                self.word(map.len() as u64);
                for (key, value) in map.iter() {
                    self.text(key);
                    self.value(value);
                }
            }
            Value::String(_) | Value::Number(_) => self.value(value),
        }
    }

    fn finish(self) -> u64 {
        // A last avalanche, so that the final words reach every bit.
        let h = self.0;
        (h ^ h >> 29).wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ h >> 32
    }
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
            // Sized for a client's session from the start: grown, its
            // rehashes cost a sixth of the ledger's counting.
            None => self
                .clients
                .entry(client.to_owned())
                .or_insert_with(|| FxHashMap::with_capacity_and_hasher(256, Default::default())),
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
    use tandem_core::{Diff, Value};

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

    #[test]
    fn edits_that_differ_anywhere_have_different_fingerprints() {
        let attrs = |pairs: &[(&str, Value)]| {
            let pairs = pairs.iter().map(|(k, v)| ((*k).into(), v.clone()));
            pairs.collect::<tandem_core::Attrs>()
        };
        let colour =
            |r: i32| Value::Object(tandem_core::value::Map::from_iter([("r".into(), r.into())]));
        let add = |id: &str, pairs: &[(&str, Value)]| Diff::Add {
            id: id.into(),
            attrs: attrs(pairs),
        };
        // Each differs from every other in one thing: kind, id, key, value,
        // a value's type, a string's length against zero bytes, the order
        // or the number of diffs.
        let edits: Vec<Vec<Diff>> = vec![
            vec![],
            edit(1),
            edit(2),
            edit(-1),
            vec![Diff::set("o1", "x", Some(Value::from(1.5)))],
            vec![Diff::set("o1", "x", Some("1".into()))],
            vec![Diff::set("o1", "x", Some("1\0".into()))],
            vec![Diff::set("o1", "x", Some(Value::Bool(true)))],
            vec![Diff::set("o1", "x", Some(Value::Null))],
            vec![Diff::set("o1", "x", None)],
            vec![Diff::set("o1", "y", Some(1.into()))],
            vec![Diff::set("o2", "x", Some(1.into()))],
            vec![Diff::set("o1", "x", Some(colour(1)))],
            vec![Diff::set("o1", "x", Some(colour(2)))],
            vec![Diff::set("o1", "x", Some(Value::Array(vec![1.into()])))],
            vec![Diff::Remove { id: "o1".into() }],
            vec![add("o1", &[])],
            vec![add("o1", &[("x", 1.into())])],
            vec![add("o1", &[("x", 1.into()), ("y", 1.into())])],
            vec![add("o1-with-a-longer-id", &[("x", 1.into())])],
            [edit(1), edit(2)].concat(),
            [edit(2), edit(1)].concat(),
        ];
        for (i, a) in edits.iter().enumerate() {
            assert_eq!(fingerprint(a), fingerprint(&a.clone()), "{a:?}");
            for b in &edits[i + 1..] {
                assert_ne!(fingerprint(a), fingerprint(b), "{a:?} and {b:?}");
            }
        }
    }
}
