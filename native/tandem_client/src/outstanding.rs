//! Pushes waiting for their reply, by ref, with their deadlines indexed too.
//! The embedder asks for the next timer after every input, and a busy client
//! has many pushes in flight: the earliest deadline must not cost a scan.
//!
//! Refs are hashed, not sorted: every push is entered and every reply looks
//! its ref up, and a sorted map compared ref strings all the way down (a
//! reply's removal cost five hundred instructions). What goes out in ref
//! order (expiries, a disconnect's drain), both rare, is sorted then.
//!
//! The deadlines are a sorted vector: a client has a few pushes in flight
//! at once, mostly sent at distinct times, and a B-tree map allocated its
//! node again each time the count went from none to one (a third of a
//! reply's handling), where the vector keeps its room.

use crate::Millis;
use rustc_hash::FxHashMap;

#[derive(Debug)]
pub(crate) struct Outstanding<W> {
    by_ref: FxHashMap<String, (W, Millis)>,
    /// How many pushes are due at each deadline, earliest first: enough to
    /// know the earliest without copying refs. Expiries, which are rare,
    /// look through `by_ref`.
    deadlines: Vec<(Millis, usize)>,
}

impl<W> Default for Outstanding<W> {
    fn default() -> Self {
        Outstanding {
            by_ref: FxHashMap::default(),
            deadlines: Vec::new(),
        }
    }
}

impl<W> Outstanding<W> {
    pub(crate) fn insert(&mut self, ref_: String, what: W, deadline: Millis) {
        if let Some((_, old)) = self.by_ref.insert(ref_, (what, deadline)) {
            self.forget_deadline(old);
        }
        match self.deadline_at(deadline) {
            Ok(at) => self.deadlines[at].1 += 1,
            Err(at) => self.deadlines.insert(at, (deadline, 1)),
        }
    }

    pub(crate) fn remove(&mut self, ref_: &str) -> Option<W> {
        let (what, deadline) = self.by_ref.remove(ref_)?;
        self.forget_deadline(deadline);
        Some(what)
    }

    fn forget_deadline(&mut self, deadline: Millis) {
        if let Ok(at) = self.deadline_at(deadline) {
            self.deadlines[at].1 -= 1;
            if self.deadlines[at].1 == 0 {
                self.deadlines.remove(at);
            }
        }
    }

    /// Where `deadline` is in `deadlines`, or where it would go.
    fn deadline_at(&self, deadline: Millis) -> Result<usize, usize> {
        self.deadlines
            .binary_search_by_key(&deadline, |&(at, _)| at)
    }

    pub(crate) fn get(&self, ref_: &str) -> Option<&W> {
        self.by_ref.get(ref_).map(|(what, _)| what)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &W> {
        self.by_ref.values().map(|(what, _)| what)
    }

    /// The earliest deadline of all.
    pub(crate) fn next_deadline(&self) -> Option<Millis> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    /// Removes the pushes due at `now` that `expires` accepts, in ref order.
    pub(crate) fn take_expired(
        &mut self,
        now: Millis,
        expires: impl Fn(&W) -> bool,
    ) -> Vec<(String, W)> {
        if self.next_deadline().is_none_or(|first| first > now) {
            return Vec::new();
        }
        let mut due: Vec<String> = self
            .by_ref
            .iter()
            .filter(|(_, (what, deadline))| *deadline <= now && expires(what))
            .map(|(ref_, _)| ref_.clone())
            .collect();
        due.sort_unstable();
        due.into_iter()
            .filter_map(|ref_| Some((ref_.clone(), self.remove(&ref_)?)))
            .collect()
    }

    /// Removes every push, in ref order.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (String, W)> {
        self.deadlines.clear();
        // Drained, not taken: the map keeps its room for the next pushes.
        let mut all: Vec<(String, W)> = self
            .by_ref
            .drain()
            .map(|(ref_, (what, _))| (ref_, what))
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        all.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::Outstanding;

    #[test]
    fn the_next_deadline_follows_inserts_removals_and_expiries() {
        let mut o = Outstanding::default();
        o.insert("10".into(), 'a', 300);
        o.insert("9".into(), 'b', 100);
        o.insert("11".into(), 'h', 50);
        assert_eq!(o.next_deadline(), Some(50));
        o.insert("11".into(), 'h', 400); // the same ref again moves its deadline
        assert_eq!(o.next_deadline(), Some(100));
        // Due at 300, except what the filter keeps, in ref order.
        assert_eq!(
            o.take_expired(300, |w| *w != 'h'),
            [("10".into(), 'a'), ("9".into(), 'b')]
        );
        assert_eq!(o.next_deadline(), Some(400));
        assert_eq!(o.remove("11"), Some('h'));
        assert_eq!((o.next_deadline(), o.remove("11")), (None, None));
        o.insert("1".into(), 'x', 5);
        assert_eq!(o.drain().collect::<Vec<_>>(), [("1".into(), 'x')]);
        assert_eq!(o.next_deadline(), None);
    }

    #[test]
    fn the_next_deadline_is_the_earliest_of_many_shared_and_moved_ones() {
        // Deadlines repeated, moved and removed in a scrambled order,
        // against the earliest of what the model holds.
        let mut o = Outstanding::default();
        let mut model = std::collections::HashMap::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..2_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ref_ = (x % 40).to_string();
            if x % 3 == 0 {
                assert_eq!(o.remove(&ref_), model.remove(&ref_).map(|_| ()));
            } else {
                let deadline = x % 16;
                o.insert(ref_.clone(), (), deadline);
                model.insert(ref_, deadline);
            }
            assert_eq!(o.next_deadline(), model.values().min().copied());
        }
    }
}
