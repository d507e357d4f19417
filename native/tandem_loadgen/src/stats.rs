//! Latency samples and their percentiles.

use std::time::Duration;

/// Collected latencies, in milliseconds.
#[derive(Default)]
pub struct Latencies(Vec<f64>);

impl Latencies {
    pub fn record(&mut self, latency: Duration) {
        self.0.push(latency.as_secs_f64() * 1000.0);
    }

    pub fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `p` quantile (0..=1), nearest rank; `NaN` when empty.
    pub fn quantile(&mut self, p: f64) -> f64 {
        if self.0.is_empty() {
            return f64::NAN;
        }
        self.0.sort_by(f64::total_cmp);
        let rank = ((p * self.0.len() as f64).ceil() as usize).clamp(1, self.0.len());
        self.0[rank - 1]
    }

    /// `count=N p50=.. p90=.. p99=.. max=..` (milliseconds), the line
    /// bench/transport.exs parses.
    pub fn summary(&mut self) -> String {
        format!(
            "count={} p50={:.2} p90={:.2} p99={:.2} max={:.2}",
            self.len(),
            self.quantile(0.5),
            self.quantile(0.9),
            self.quantile(0.99),
            self.quantile(1.0)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let mut l = Latencies::default();
        for ms in (1..=100).rev() {
            l.record(Duration::from_millis(ms));
        }
        assert_eq!(l.quantile(0.5), 50.0);
        assert_eq!(l.quantile(0.99), 99.0);
        assert_eq!(l.quantile(1.0), 100.0);
        assert_eq!(l.quantile(0.0), 1.0);
    }

    #[test]
    fn empty_is_nan() {
        assert!(Latencies::default().quantile(0.5).is_nan());
    }
}
