//! Recording into the shared log-linear histogram.
use toe_agent_common::hist::{HIST_BUCKETS, Hist, bucket_index};

/// Count `v` in `h`. The volatile round-trip keeps the mask: LLVM can prove
/// `bucket_index` < 128 and would drop it, but the verifier cannot follow
/// that proof through the leading-zeros expansion and then rejects the
/// variable offset into the map value (docs/kernel-notes.md, "Verifier traps").
#[inline(always)]
pub fn add(h: &mut Hist, v: u64) {
    let i = bucket_index(v);
    let i = unsafe { core::ptr::read_volatile(&i) } & (HIST_BUCKETS - 1);
    h.buckets[i] += 1;
    h.sum += v;
}
