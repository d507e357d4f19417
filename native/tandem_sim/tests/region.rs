//! The seed-scoped region allocator, installed as this test binary's
//! global allocator (as `tandem-fuzz` installs it).

use std::alloc::System;
use tandem_sim::region::{self, Region};
use tandem_sim::sim::{run, SimConfig};

#[global_allocator]
static ALLOCATOR: Region<System> = Region::new(System);

fn config(seed: u64) -> SimConfig {
    SimConfig {
        seed,
        clients: 4,
        ops: 100,
        faults: true,
        journal_faults: true,
    }
}

/// One test, since retiring the region is for the rest of the process.
#[test]
fn seeds_reuse_the_region_until_a_block_outlives_its_scope() {
    // A seed reports the same from the region as from the heap, and frees
    // everything it took, so the region is reused.
    let seed = 4_242;
    let on_heap = run(&config(seed));
    let resets = region::resets();
    let in_region = region::scoped(|| run(&config(seed)));
    assert_eq!(in_region.counters, on_heap.counters);
    assert_eq!(in_region.failure, on_heap.failure);
    assert!(in_region.counters.operations > 0);
    assert_eq!(region::resets(), resets + 1);
    assert!(!region::retired());

    // Inside a scope blocks come from the region (a grown vector too), and
    // what the scope returns is a copy outside it.
    let returned = region::scoped(|| {
        let mut grown: Vec<u64> = Vec::with_capacity(1);
        grown.extend(0..10_000);
        assert!(region::contains(grown.as_ptr().cast()));
        let text = format!("{}", grown.iter().sum::<u64>());
        assert!(region::contains(text.as_ptr()));
        // A nested scope is part of this one: it neither copies out nor
        // resets, and the region still serves what follows it.
        let nested = region::scoped(|| vec![1u8; 64]);
        assert!(region::contains(nested.as_ptr()));
        let after = Box::new([2u8; 64]);
        assert!(region::contains(after.as_ptr()));
        text
    });
    assert!(!region::contains(returned.as_ptr()));
    assert_eq!(returned, "49995000");
    assert_eq!(region::resets(), resets + 2);

    // A block that outlives its scope is never overwritten: the region is
    // retired, and later scopes do not start over on top of it.
    let kept: &'static [u8] = region::scoped(|| {
        let kept: &'static [u8] = Box::leak(vec![7u8; 4096].into_boxed_slice());
        assert!(region::contains(kept.as_ptr()));
        kept
    });
    assert!(region::retired());
    let resets = region::resets();
    let again = region::scoped(|| run(&config(seed)));
    assert_eq!(again.counters, on_heap.counters);
    assert_eq!(region::resets(), resets);
    assert!(kept.iter().all(|&b| b == 7));
}
