//! Reconnect delays: capped exponential backoff with "equal jitter" (a
//! random delay in the upper half of the exponential step), so that a
//! crowd of clients dropped together does not come back together. The
//! random source is a seeded SplitMix64: deterministic in tests and in the
//! fuzzer, seeded from entropy by a real driver.

use crate::Millis;

/// The reconnect schedule.
#[derive(Clone, Debug)]
pub struct Backoff {
    pub base: Millis,
    pub cap: Millis,
    state: u64,
}

impl Backoff {
    pub fn new(base: Millis, cap: Millis, seed: u64) -> Backoff {
        Backoff {
            base,
            cap,
            state: seed,
        }
    }

    /// The delay before reconnect attempt `attempt` (0-based): uniform in
    /// `[step/2, step]` where `step = min(cap, base * 2^attempt)`.
    pub fn delay(&mut self, attempt: u32) -> Millis {
        let step = self
            .base
            .saturating_mul(1u64.checked_shl(attempt.min(32)).unwrap_or(u64::MAX))
            .min(self.cap)
            .max(1);
        let half = step / 2;
        half + self.next_random() % (step - half + 1)
    }

    /// The next pseudo-random number (SplitMix64).
    pub fn next_random(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
