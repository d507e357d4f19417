//! The simulation's timeline: events due at virtual times, handed out
//! earliest first and, among those due at the same time, in the order they
//! were scheduled, so that a seed replays exactly.
//!
//! Nearly every event is due within a few hundred milliseconds of the
//! present (a frame's latency, a client's next operation, a commit), so
//! those wait in a ring of one bucket per millisecond, each bucket a queue
//! in the order its events were scheduled: scheduling is a push, and the
//! next event is the front of the first bucket that holds one. The rest (a
//! fault drawn for later in the run, or an event before the ring's start)
//! wait in a binary heap of (time, order scheduled, slot) beside it, and
//! the next event is whichever of the two fronts comes first by time, then
//! by order. Sifting every frame through the heap, as all events were
//! before, was about 1.5 % of the fuzzer's instructions (BENCHMARKS.md).
//! Hand-written: the crates that schedule timers (timer wheels) hand out
//! events due in the same tick in no promised order.

use slab::Slab;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use tandem_client::Millis;

/// Milliseconds the ring covers from its start. A power of two, so that a
/// time's bucket is its low bits.
const SPAN: usize = 1024;

/// No event: the end of a bucket's list, or an empty bucket.
const NONE: usize = usize::MAX;

/// Events of type `E` on a virtual clock.
#[derive(Debug)]
pub struct Timeline<E> {
    /// Bucket `t % SPAN` lists the events due at `t`, for `start <= t <
    /// start + SPAN`, in the order they were scheduled: its first and last
    /// slot in `listed`. One slab holds every bucket's events, so that a
    /// bucket costs no allocation of its own (a queue apiece allocated once
    /// for each bucket a run reached, 0.6 % of the instructions).
    ring: Vec<(usize, usize)>,
    listed: Slab<Listed<E>>,
    /// No event in the ring is due before this.
    start: Millis,
    /// (time, order scheduled, slot of the event) of every other event: the
    /// earliest on top.
    heap: BinaryHeap<Reverse<(Millis, u64, usize)>>,
    /// The heap's events, in the slots its keys name.
    far: Slab<E>,
    order: u64,
    /// The next event's time and place, once found and until it leaves or
    /// an earlier one comes: the simulator asks when the next event is due,
    /// then takes it, and finding it twice was 1.5 % of its instructions.
    next: Option<(Millis, Front)>,
}

/// An event in the ring, with the order it was scheduled in and the slot
/// of the next one due at the same time.
#[derive(Debug)]
struct Listed<E> {
    order: u64,
    next: usize,
    event: E,
}

impl<E> Default for Timeline<E> {
    fn default() -> Self {
        Timeline {
            ring: vec![(NONE, NONE); SPAN],
            listed: Slab::new(),
            start: 0,
            heap: BinaryHeap::new(),
            far: Slab::new(),
            order: 0,
            next: None,
        }
    }
}

/// Which of the two fronts comes out next.
#[derive(Clone, Copy, Debug)]
enum Front {
    Ring,
    Heap,
}

impl<E> Timeline<E> {
    /// Schedules `event` at `time`, after every event already due then.
    /// Inlined into each caller, as the heap's push was (as a call it cost
    /// 0.9 M instructions more over the fuzzer's 20 seeds).
    #[inline(always)]
    pub fn at(&mut self, time: Millis, event: E) {
        self.order += 1;
        // One due at the same time as the next comes after it.
        if self.next.is_some_and(|(next, _)| time < next) {
            self.next = None;
        }
        let order = self.order;
        if time >= self.start && time - self.start < SPAN as Millis {
            let next = NONE;
            let slot = self.listed.insert(Listed { order, next, event });
            let bucket = &mut self.ring[time as usize % SPAN];
            match bucket.1 {
                NONE => bucket.0 = slot,
                last => self.listed[last].next = slot,
            }
            bucket.1 = slot;
        } else {
            let slot = self.far.insert(event);
            self.heap.push(Reverse((time, order, slot)));
        }
    }

    /// When the next event is due.
    pub fn next_time(&mut self) -> Option<Millis> {
        self.front().map(|(time, _)| time)
    }

    /// The next event, if it is due by `now`.
    pub fn pop_due(&mut self, now: Millis) -> Option<E> {
        let (time, front) = self.front()?;
        if time > now {
            return None;
        }
        self.next = None;
        match front {
            Front::Ring => {
                let bucket = &mut self.ring[time as usize % SPAN];
                let listed = self.listed.remove(bucket.0);
                bucket.0 = listed.next;
                if listed.next == NONE {
                    bucket.1 = NONE;
                }
                Some(listed.event)
            }
            Front::Heap => {
                let Reverse((_, _, slot)) = self.heap.pop()?;
                Some(self.far.remove(slot))
            }
        }
    }

    /// The time and place of the next event.
    fn front(&mut self) -> Option<(Millis, Front)> {
        if self.next.is_none() {
            self.next = self.find_front();
        }
        self.next
    }

    /// [`Timeline::front`] looked for. Moves the ring's start up to its
    /// first event: no event is due earlier there, and one scheduled
    /// earlier after all goes to the heap.
    fn find_front(&mut self) -> Option<(Millis, Front)> {
        let ring = self.ring_front();
        let heap = self.heap.peek();
        let heap = heap.map(|&Reverse((time, order, _))| (time, order));
        match (ring, heap) {
            (Some(r), Some(h)) if h < r => Some((h.0, Front::Heap)),
            (Some((time, _)), _) => Some((time, Front::Ring)),
            (None, Some((time, _))) => Some((time, Front::Heap)),
            (None, None) => None,
        }
    }

    /// The time and order of the ring's first event, its start moved there.
    fn ring_front(&mut self) -> Option<(Millis, u64)> {
        if self.listed.is_empty() {
            return None;
        }
        loop {
            match self.ring[self.start as usize % SPAN].0 {
                NONE => self.start += 1,
                first => return Some((self.start, self.listed[first].order)),
            }
        }
    }

    /// Every event still scheduled, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &E> {
        let ring = self.listed.iter().map(|(_, listed)| &listed.event);
        ring.chain(self.far.iter().map(|(_, event)| event))
    }

    /// Unschedules every event for which `keep` is false.
    pub fn retain(&mut self, mut keep: impl FnMut(&E) -> bool) {
        self.next = None;
        for bucket in &mut self.ring {
            // The bucket's list walked and linked again from what stays.
            let mut at = std::mem::replace(bucket, (NONE, NONE)).0;
            while at != NONE {
                let next = self.listed[at].next;
                if keep(&self.listed[at].event) {
                    self.listed[at].next = NONE;
                    match bucket.1 {
                        NONE => bucket.0 = at,
                        last => self.listed[last].next = at,
                    }
                    bucket.1 = at;
                } else {
                    self.listed.remove(at);
                }
                at = next;
            }
        }
        let far = &mut self.far;
        self.heap.retain(|&Reverse((_, _, slot))| {
            let kept = keep(&far[slot]);
            if !kept {
                far.remove(slot);
            }
            kept
        });
    }
}

#[cfg(test)]
mod tests {
    use super::Timeline;
    use std::collections::BTreeSet;

    #[test]
    fn events_come_out_by_time_then_in_the_order_scheduled() {
        // A scrambled schedule with many events at the same times, popped
        // while more are scheduled (so slots and buckets are reused),
        // against a sorted set of (time, order scheduled) as the model.
        let mut timeline = Timeline::default();
        let mut model = BTreeSet::new();
        let mut order = 0u64;
        let mut schedule = |timeline: &mut Timeline<u64>, model: &mut BTreeSet<_>, time| {
            order += 1;
            timeline.at(time, order);
            model.insert((time, order));
        };
        let mut now = 0;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut popped = 0;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Mostly just ahead, some beyond the ring's span, some already
            // past (which the ring, its start moved on, cannot hold).
            let time = match x % 16 {
                0 => now + 1_000 + x % 3_000,
                1 => now.saturating_sub(x % 5),
                _ => now + x % 8,
            };
            schedule(&mut timeline, &mut model, time);
            if x % 3 == 0 {
                now += 1;
                if x % 7 == 0 {
                    // A look ahead moves the ring's start past `now`...
                    let next = model.first().map(|&(time, _)| time);
                    assert_eq!(timeline.next_time(), next);
                    // ...and an event comes due before the one just found,
                    // or at the same time.
                    schedule(&mut timeline, &mut model, now - x % 2);
                }
                loop {
                    let due = model.first().copied().filter(|&(time, _)| time <= now);
                    let got = timeline.pop_due(now);
                    assert_eq!(got, due.map(|(_, order)| order), "at {now}");
                    let Some(due) = due else { break };
                    model.remove(&due);
                    popped += 1;
                }
            }
        }
        while let Some(time) = timeline.next_time() {
            let (want, order) = model.pop_first().expect("the model has it too");
            assert_eq!(time, want);
            assert_eq!(timeline.pop_due(time), Some(order));
            popped += 1;
        }
        assert!(model.is_empty());
        assert!(popped > 20_000);
        assert_eq!(timeline.iter().count(), 0);
    }

    #[test]
    fn retained_events_keep_their_places_and_the_others_are_gone() {
        // Every fifth event beyond the ring's span, in the heap.
        let time = |n: u64| 100 - n / 2 + if n % 5 == 0 { 3_000 } else { 0 };
        let mut timeline = Timeline::default();
        for n in 0..100u64 {
            timeline.at(time(n), n);
        }
        timeline.retain(|n| n % 3 != 0);
        assert_eq!(timeline.iter().count(), 66);
        timeline.at(1, 1_000);
        let mut got = Vec::new();
        while let Some(event) = timeline.pop_due(u64::MAX) {
            got.push(event);
        }
        let mut want: Vec<(u64, u64)> = (0..100)
            .filter(|n| n % 3 != 0)
            .map(|n| (time(n), n))
            .collect();
        want.sort();
        let want: Vec<u64> = [1_000]
            .into_iter()
            .chain(want.into_iter().map(|(_, n)| n))
            .collect();
        assert_eq!(got, want);
    }
}
