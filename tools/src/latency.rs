//! Latency samples and their percentiles, one definition for every tool, so the same run
//! reported by two tools gives the same numbers.

use std::collections::BTreeMap;
use std::time::Instant;

/// Run `f` and return its result with its wall time in nanoseconds.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let t = Instant::now();
    let out = f();
    (out, t.elapsed().as_nanos() as u64)
}

/// Percentile `p` (0..=1) of sorted samples: the sample at rank `floor(n p)`, `None` when there
/// are none.
pub fn percentile_ns(sorted_ns: &[u64], p: f64) -> Option<u64> {
    let last = sorted_ns.len().checked_sub(1)?;
    Some(sorted_ns[((sorted_ns.len() as f64 * p) as usize).min(last)])
}

/// [`percentile_ns`] in microseconds, 0 when there are no samples (for tables).
pub fn percentile_us(sorted_ns: &[u64], p: f64) -> f64 {
    percentile_ns(sorted_ns, p).map_or(0.0, |ns| ns as f64 / 1e3)
}

/// Samples (ns) grouped by what the timed operation turned out to be ("exact", "miss", ..).
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    by_kind: BTreeMap<&'static str, Vec<u64>>,
}

impl Latencies {
    /// Add one sample of `kind`.
    pub fn record(&mut self, kind: &'static str, ns: u64) {
        self.by_kind.entry(kind).or_default().push(ns);
    }

    /// Add all of another set's samples (a worker thread's, say).
    pub fn merge(&mut self, other: Latencies) {
        for (kind, samples) in other.by_kind {
            self.by_kind.entry(kind).or_default().extend(samples);
        }
    }

    /// Samples of `kind`.
    pub fn count(&self, kind: &str) -> usize {
        self.by_kind.get(kind).map_or(0, Vec::len)
    }

    /// Samples of every kind.
    pub fn total(&self) -> usize {
        self.by_kind.values().map(Vec::len).sum()
    }

    /// The samples of `kind`, sorted (empty when there are none).
    pub fn sorted(&mut self, kind: &str) -> &[u64] {
        match self.by_kind.get_mut(kind) {
            Some(v) => {
                v.sort_unstable();
                v
            }
            None => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_a_sample() {
        let s: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile_ns(&s, 0.5), Some(51));
        assert_eq!(percentile_ns(&s, 0.99), Some(100));
        assert_eq!(percentile_ns(&s, 1.0), Some(100));
        assert_eq!(percentile_ns(&[], 0.5), None);
        assert_eq!(percentile_us(&[2_000], 0.5), 2.0);
    }

    #[test]
    fn merged_samples_sort_by_kind() {
        let (mut a, mut b) = (Latencies::default(), Latencies::default());
        a.record("miss", 3);
        b.record("miss", 1);
        b.record("exact", 2);
        a.merge(b);
        assert_eq!(a.sorted("miss"), &[1, 3]);
        assert_eq!((a.count("exact"), a.total()), (1, 3));
        assert!(a.sorted("semantic").is_empty());
    }
}
