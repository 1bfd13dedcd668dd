//! The NAPI family's per-CPU map values (maps `NAPI` and `NAPI_BY_ID`),
//! shared by its kernel programs and the agent (compiled into
//! toe-agent-common).
use crate::Hist;

/// NAPI polls of the interface, one per CPU (map `NAPI`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NapiStats {
    /// Packets processed per poll; its count is the number of polls.
    pub work: Hist,
    /// Polls that used their whole budget (`work >= budget`): the device had
    /// more to give, so the softirq will come back (or hand off to ksoftirqd).
    pub budget_exhausted: u64,
    /// Duration of each poll in a NET_RX softirq, ns: from the softirq's
    /// entry or the previous poll on this CPU, whichever came last.
    pub poll_ns: Hist,
    /// Program state, not statistics: when the last poll of any device
    /// ended on this CPU during the current NET_RX softirq (0 outside one).
    pub last_poll_ts: u64,
}

/// Per NAPI instance (map `NAPI_BY_ID`, per-CPU hash keyed by `napi_id`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NapiIdStats {
    pub polls: u64,
    pub work: u64,
    pub budget_exhausted: u64,
    pub budget: u64,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `#[repr(C)]`, `Copy`, made only of integers, with no padding
    // (pinned by the layout tests in lib.rs), so any bit pattern is valid.
    unsafe impl aya::Pod for super::NapiStats {}
    unsafe impl aya::Pod for super::NapiIdStats {}
}
