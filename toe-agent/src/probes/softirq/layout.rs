//! The softirq family's per-CPU map value (map `SOFTIRQ`), shared by its
//! kernel programs and the agent (compiled into toe-agent-common).
use crate::Hist;

/// Softirq accounting, one per CPU (map `SOFTIRQ`). Index with `SOFTIRQ_*`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SoftirqStats {
    /// Total time spent in the handler, ns.
    pub time_ns: [u64; 2],
    /// Handler runs.
    pub count: [u64; 2],
    /// Duration of each run, ns.
    pub duration: [Hist; 2],
    /// `softirq_raise` to `softirq_entry`, ns.
    pub raise_latency: [Hist; 2],
    /// Program state, not statistics: timestamp of the pending entry and of
    /// the first raise since the last entry (0 = none).
    pub entry_ts: [u64; 2],
    pub raise_ts: [u64; 2],
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `#[repr(C)]`, `Copy`, made only of integers, with no padding
    // (pinned by the layout tests in lib.rs), so any bit pattern is valid.
    unsafe impl aya::Pod for super::SoftirqStats {}
}
