//! A bounded latency histogram: log-spaced buckets from 1 µs to ~1 hour with about 2% relative
//! error, a fixed few kilobytes however long the run, mergeable across nodes.

/// Buckets per doubling of the value; 2^(1/32) ≈ 2.2% apart.
const SUB_BUCKETS: usize = 32;
/// Doublings covered above 1 µs (2^32 µs ≈ 71 minutes).
const OCTAVES: usize = 32;
const BUCKETS: usize = SUB_BUCKETS * OCTAVES + 1;

#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    counts: Vec<u64>,
    total: u64,
    max_secs: f64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max_secs: 0.0,
        }
    }
}

impl LatencyHistogram {
    pub fn new() -> Self {
        Self::default()
    }

    fn bucket(secs: f64) -> usize {
        let micros = secs * 1e6;
        if micros.is_nan() || micros <= 1.0 {
            return 0;
        }
        let idx = (micros.log2() * SUB_BUCKETS as f64).floor() as usize + 1;
        idx.min(BUCKETS - 1)
    }

    /// Upper bound of a bucket, in seconds.
    fn upper(idx: usize) -> f64 {
        if idx == 0 {
            return 1e-6;
        }
        2f64.powf(idx as f64 / SUB_BUCKETS as f64) * 1e-6
    }

    pub fn record(&mut self, secs: f64) {
        self.counts[Self::bucket(secs)] += 1;
        self.total += 1;
        if secs > self.max_secs {
            self.max_secs = secs;
        }
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max_secs = self.max_secs.max(other.max_secs);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The p-th percentile (0..=100) in seconds, within one bucket (~2%); 0 when empty.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::upper(i).min(self.max_secs);
            }
        }
        self.max_secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_within_bucket_error() {
        let mut h = LatencyHistogram::new();
        for i in 1..=10_000u32 {
            h.record(f64::from(i) * 1e-4); // 0.1 ms .. 1 s, uniform
        }
        for (p, want) in [(50.0, 0.5), (99.0, 0.99), (100.0, 1.0)] {
            let got = h.percentile(p);
            assert!((got - want).abs() / want < 0.03, "p{p}: {got} vs {want}");
        }
        assert_eq!(h.count(), 10_000);
        assert_eq!(LatencyHistogram::new().percentile(50.0), 0.0);
    }

    #[test]
    fn merge_adds_counts_and_memory_stays_fixed() {
        let mut a = LatencyHistogram::new();
        let mut b = LatencyHistogram::new();
        for _ in 0..1000 {
            a.record(0.001);
            b.record(0.1);
        }
        let size = a.counts.len();
        a.merge(&b);
        assert_eq!(a.count(), 2000);
        assert_eq!(a.counts.len(), size);
        assert!(a.percentile(25.0) < 0.0011 && a.percentile(75.0) > 0.09);
    }
}
