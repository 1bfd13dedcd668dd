//! Log-linear histogram geometry, shared by the kernel and userspace sides.
//!
//! Values 0..4 get a bucket each; above that, every power of two is split
//! into `SUB_BUCKETS` equal parts (relative error at most 25%). Values are
//! clamped to `MAX_VALUE` (2^32 - 1), which covers BIG TCP skbs (512 KiB) and
//! softirq durations of over four seconds, so the index stays below 124 and a
//! `& (HIST_BUCKETS - 1)` mask never changes it.

/// Number of buckets; a power of two so the index can be masked for the verifier.
pub const HIST_BUCKETS: usize = 128;
/// log2 of the sub-buckets per power of two.
pub const SUB_BITS: u32 = 2;
pub const SUB_BUCKETS: u64 = 1 << SUB_BITS;
/// Larger values are counted in the last used bucket.
pub const MAX_VALUE: u64 = u32::MAX as u64;

/// A histogram as the kernel keeps it: bucket counts and the exact sum of
/// the recorded values. The count is the sum of the buckets.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Hist {
    pub buckets: [u64; HIST_BUCKETS],
    pub sum: u64,
}

impl Hist {
    pub const ZERO: Hist = Hist {
        buckets: [0; HIST_BUCKETS],
        sum: 0,
    };

    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

impl Default for Hist {
    fn default() -> Self {
        Hist::ZERO
    }
}

/// Bucket of `v`, without branches: `e` is the bit length of `v >> SUB_BITS`
/// (0 for the linear part), the bucket's sub-index is the `SUB_BITS` bits
/// below the leading one.
#[inline(always)]
pub fn bucket_index(v: u64) -> usize {
    // 32-bit arithmetic: BPF has no count-leading-zeros instruction, and
    // LLVM's expansion for a u32 is a step shorter than for a u64.
    let v = if v > MAX_VALUE {
        MAX_VALUE as u32
    } else {
        v as u32
    };
    let e = 32 - (v >> SUB_BITS).leading_zeros();
    // e - 1 when e > 0, else 0; (e != 0) is 0 or 1, so no branch is needed.
    let shift = e - (e != 0) as u32;
    ((e << SUB_BITS) + ((v >> shift) & (SUB_BUCKETS as u32 - 1))) as usize
}

/// Smallest value counted in bucket `i`.
pub fn bucket_lower_bound(i: usize) -> u64 {
    let i = i as u64;
    let e = i >> SUB_BITS;
    let sub = i & (SUB_BUCKETS - 1);
    if e == 0 {
        sub
    } else {
        (SUB_BUCKETS + sub) << (e - 1)
    }
}

/// Largest value counted in bucket `i` (inclusive).
pub fn bucket_upper_bound(i: usize) -> u64 {
    bucket_lower_bound(i + 1) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_values_are_exact() {
        for v in 0..8 {
            assert_eq!(bucket_index(v), v as usize);
        }
    }

    #[test]
    fn buckets_are_contiguous_and_monotonic() {
        let mut prev = 0;
        for v in 0..70_000u64 {
            let i = bucket_index(v);
            assert!(i == prev || i == prev + 1, "v={v} i={i} prev={prev}");
            assert!(
                bucket_lower_bound(i) <= v && v <= bucket_upper_bound(i),
                "v={v} i={i}"
            );
            prev = i;
        }
    }

    #[test]
    fn bounds_match_index_at_every_edge() {
        for i in 0..124 {
            assert_eq!(bucket_index(bucket_lower_bound(i)), i);
            assert_eq!(bucket_index(bucket_upper_bound(i)), i);
        }
    }

    #[test]
    fn four_sub_buckets_per_power_of_two() {
        // 1500 lies in [1024, 2048): buckets of width 256.
        let i = bucket_index(1500);
        assert_eq!(bucket_lower_bound(i), 1280);
        assert_eq!(bucket_upper_bound(i), 1535);
        // 64 KiB and 512 KiB (BIG TCP) are resolvable.
        assert_eq!(bucket_lower_bound(bucket_index(65_536)), 65_536);
        assert_eq!(bucket_lower_bound(bucket_index(512 * 1024)), 512 * 1024);
    }

    #[test]
    fn huge_values_clamp_below_the_mask() {
        assert_eq!(bucket_index(u64::MAX), bucket_index(MAX_VALUE));
        assert!(bucket_index(u64::MAX) < HIST_BUCKETS);
        assert_eq!(bucket_index(MAX_VALUE), 123);
    }
}
