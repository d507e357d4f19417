//! Every divergence the fuzzer found, replayed by its seed. Each must keep
//! converging; the name says what was wrong.

use tandem_sim::sim::{run, SimConfig};

fn converges(seed: u64) {
    converges_with(seed, true);
}

/// A seed found before journal failures were injected, replayed as found.
fn converges_as_found(seed: u64) {
    converges_with(seed, false);
}

fn converges_with(seed: u64, journal_faults: bool) {
    converges_in(seed, journal_faults, 4, 100);
}

fn converges_in(seed: u64, journal_faults: bool, clients: usize, ops: usize) {
    let report = run(&SimConfig {
        seed,
        clients,
        ops,
        faults: true,
        journal_faults,
    });
    assert_eq!(report.failure, None, "seed {seed}");
}

/// The client held back edits made while a sync/verify was in flight and
/// never sent them once the resync finished: they stayed pending forever.
#[test]
fn seed_339_edits_made_while_resyncing_are_sent_afterwards() {
    converges_as_found(339);
}

/// The simulated server dropped the broadcast of a sequenced batch when its
/// sender disconnected before the commit, leaving the others behind with no
/// gap to notice. (The real room broadcasts on commit whoever is connected.)
#[test]
fn seed_370_a_batch_is_broadcast_even_if_its_sender_left() {
    converges_as_found(370);
}

/// A journal write failed on two pipelined batches of a client whose
/// connection was cut before their `unavailable` arrived; a later batch,
/// already on its way, was sequenced after the room reloaded. Taking that
/// batch's ack as settling every earlier one, the client dropped the two
/// edits without a word (found by the edit ledger of the verdict).
#[test]
fn seed_13_batches_skipped_by_a_journal_failure_are_resent_not_dropped() {
    converges(13);
}

/// Two journal failures in a row. After the first, a client pushed its
/// refused batches again; before their `not_sequenced` answers came, the
/// late `unavailable` answers to the first pushes had it push them a third
/// time, and the room, reloaded after the second failure, sequenced those
/// pushes. The `not_sequenced` answers, true when given, then had the client
/// resend the batches under fresh ids: each edit was sequenced twice (found
/// by the edit ledger, 2 clients × 300 operations).
#[test]
fn seed_3001059_a_refusal_of_an_earlier_push_does_not_rekey_a_batch() {
    converges_in(3_001_059, true, 2, 300);
}

/// Not a divergence but the verdict's own flaw: after the network healed,
/// the world was checked for quiet once a second, and with heartbeats every
/// two seconds some client's was in flight at every check, phase-locked, so
/// a converged world never looked settled. Heartbeats now do not count.
#[test]
fn seed_30013642_heartbeats_in_flight_do_not_keep_the_world_from_settling() {
    converges(30_013_642);
}

/// A short sweep, so `cargo test` alone exercises the simulation; the test
/// command runs 2,000 seeds through `tandem-fuzz`.
#[test]
fn the_first_seeds_converge() {
    for seed in 0..20 {
        converges(seed);
    }
}
