//! Reconnect delays: capped exponential backoff with "equal jitter" (a
//! random delay in the upper half of the exponential step), so that a
//! crowd of clients dropped together does not come back together.
//!
//! The random source is injected as a seed ([`crate::Config::seed`]) into
//! ChaCha8 from `rand_chacha`: reproducible on every platform (the fuzzer
//! replays a session from its seed), free of any OS entropy call (so the
//! same code builds for wasm), and seeded from entropy by a real driver.

use crate::Millis;
use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The reconnect schedule.
#[derive(Clone, Debug)]
pub struct Backoff {
    pub base: Millis,
    pub cap: Millis,
    rng: ChaCha8Rng,
}

impl Backoff {
    pub fn new(base: Millis, cap: Millis, seed: u64) -> Backoff {
        Backoff {
            base,
            cap,
            rng: ChaCha8Rng::seed_from_u64(seed),
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
        // The modulo bias is below 2^-40 for any delay a client would use.
        half + self.rng.next_u64() % (step - half + 1)
    }
}
