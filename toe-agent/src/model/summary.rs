//! The period model's vocabulary, which every family's part of it uses:
//! histogram summaries, checksum states and queue lists. Nothing here
//! knows a probe family.
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use toe_agent_common::{
    CSUM_COMPLETE, CSUM_NONE, CSUM_PARTIAL, CSUM_STATES, CSUM_UNNECESSARY, Hist, MAX_QUEUES,
    hist::{bucket_index, bucket_lower_bound, bucket_upper_bound},
};

/// A histogram summary. Percentiles, min and max are bucket bounds (the
/// kernel keeps log-linear buckets, at most 25% wide); `sum` is exact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistSummary {
    pub count: u64,
    pub sum: u64,
    pub min: u64,
    pub max: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    /// Non-empty buckets only, as `[upper_bound, count]`, ascending.
    pub buckets: Vec<(u64, u64)>,
}

impl HistSummary {
    pub fn from_hist(h: &Hist) -> Self {
        let buckets: Vec<(usize, u64)> = h
            .buckets
            .iter()
            .enumerate()
            .filter(|(_, c)| **c != 0)
            .map(|(i, c)| (i, *c))
            .collect();
        let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
            return HistSummary::default();
        };
        // Each bucket is recorded at its upper bound, so a percentile is
        // never understated by more than the bucket width.
        let mut hdr = Histogram::<u64>::new(3).expect("3 significant figures is a valid precision");
        for &(i, c) in &buckets {
            // Auto-resizing histogram: recording cannot fail for u32-range values.
            let _ = hdr.record_n(bucket_upper_bound(i), c);
        }
        let q = |q: f64| hdr.value_at_quantile(q).min(bucket_upper_bound(last.0));
        HistSummary {
            count: hdr.len(),
            sum: h.sum,
            min: bucket_lower_bound(first.0),
            max: bucket_upper_bound(last.0),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            buckets: buckets
                .iter()
                .map(|&(i, c)| (bucket_upper_bound(i), c))
                .collect(),
        }
    }

    /// Events whose bucket lies entirely above `x` (a conservative count of
    /// values greater than `x`).
    pub fn count_above(&self, x: u64) -> u64 {
        self.buckets
            .iter()
            .filter(|(upper, _)| bucket_lower_bound(bucket_index(*upper)) > x)
            .map(|(_, c)| c)
            .sum()
    }

    /// Events of exactly `v`, for the values below 4 that have a bucket of
    /// their own (segment counts of 1, say).
    pub fn count_exact(&self, v: u64) -> u64 {
        debug_assert!(v < 4, "only 0..4 have exact buckets");
        self.buckets
            .iter()
            .filter(|(u, _)| *u == v)
            .map(|(_, c)| c)
            .sum()
    }

    /// Exact mean (from the exact sum), 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }
}

/// `ip_summed` counts (include/linux/skbuff.h CHECKSUM_*).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Csum {
    pub none: u64,
    pub unnecessary: u64,
    pub complete: u64,
    pub partial: u64,
}

impl Csum {
    pub(crate) fn of(c: &[u64; CSUM_STATES]) -> Self {
        Csum {
            none: c[CSUM_NONE],
            unnecessary: c[CSUM_UNNECESSARY],
            complete: c[CSUM_COMPLETE],
            partial: c[CSUM_PARTIAL],
        }
    }

    pub fn total(&self) -> u64 {
        self.none + self.unnecessary + self.complete + self.partial
    }
}

/// Named counts as a split value (one series per name, in this order).
pub(crate) fn split(counts: &[(&str, u64)]) -> Vec<(String, u64)> {
    counts.iter().map(|(k, n)| (k.to_string(), *n)).collect()
}

/// Transmit queues: `queue_mapping` is the queue index.
pub(crate) fn queues(q: &[u64; MAX_QUEUES]) -> Vec<(u32, u64)> {
    q.iter()
        .enumerate()
        .filter(|(_, c)| **c != 0)
        .map(|(i, c)| (i as u32, *c))
        .collect()
}

/// Receive queues: a driver records queue `n` as `queue_mapping = n + 1`,
/// and 0 means no queue was recorded (include/linux/skbuff.h,
/// skb_record_rx_queue() and skb_get_rx_queue()). The recorded queues,
/// and the count of packets without one.
pub(crate) fn rx_queues(q: &[u64; MAX_QUEUES]) -> (Vec<(u32, u64)>, u64) {
    let recorded = q
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, c)| **c != 0)
        .map(|(i, c)| (i as u32 - 1, *c))
        .collect();
    (recorded, q[0])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A histogram of `(value, count)` pairs, as the kernel would fill it.
    pub(crate) fn hist(pairs: &[(u64, u64)]) -> Hist {
        let mut h = Hist::ZERO;
        for &(v, n) in pairs {
            h.buckets[bucket_index(v)] += n;
            h.sum += v * n;
        }
        h
    }

    #[test]
    fn summary_of_an_empty_histogram_is_all_zero() {
        assert_eq!(HistSummary::from_hist(&Hist::ZERO), HistSummary::default());
    }

    #[test]
    fn percentiles_are_bucket_upper_bounds() {
        // 98 MTU-sized segments and 2 pure ACKs.
        let s = HistSummary::from_hist(&hist(&[(1500, 98), (52, 2)]));
        assert_eq!(s.count, 100);
        assert_eq!(s.sum, 1500 * 98 + 52 * 2);
        assert_eq!(s.min, 48);
        assert_eq!(s.max, 1535);
        assert_eq!(s.p50, 1535);
        assert_eq!(s.p99, 1535);
        assert_eq!(s.buckets, vec![(55, 2), (1535, 98)]);
        assert!((s.mean() - 1471.04).abs() < 1e-9);
    }

    #[test]
    fn tail_percentiles_see_the_big_skbs() {
        let s = HistSummary::from_hist(&hist(&[(1500, 900), (65_000, 100)]));
        assert_eq!(s.p50, 1535);
        assert!(s.p99 >= 65_000 && s.p99 <= s.max, "{s:?}");
        assert_eq!(s.max, 65_535);
    }
}
