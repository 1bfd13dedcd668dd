//! The hand-off family's per-CPU map value (map `HANDOFF`), shared by its
//! kernel programs and the agent (compiled into toe-agent-common).
use crate::{CSUM_STATES, HANDOFF_HOOKS, Hist, MAX_QUEUES};

/// Driver hand-offs, one per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct HandoffStats {
    /// Length of each packet the driver hands to the stack (before GRO).
    pub segment_len: Hist,
    /// `ip_summed` of each packet at the driver hand-off.
    pub segment_csum: [u64; CSUM_STATES],
    /// Hand-offs by hook (`HOOK_*`): NAPI/GRO path versus backlog.
    pub handoff_by_hook: [u64; HANDOFF_HOOKS],
    /// `gso_size` of hand-offs that already carry one (LRO/HW-GRO, or a GSO
    /// skb that crossed a virtual device intact); its count is how many did.
    pub handoff_gso_size: Hist,
    /// Hand-offs per receive queue (`skb->queue_mapping`).
    pub queue: [u64; MAX_QUEUES],
    /// Hand-offs longer than the MTU whose IP protocol is not TCP (UDP
    /// GSO or GRO). The protocol is read at the hand-off only for these:
    /// reading it for every packet costs a helper call per wire segment.
    pub nontcp_handoff_large: u64,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `#[repr(C)]`, `Copy`, made only of integers, with no padding
    // (pinned by the layout tests in lib.rs), so any bit pattern is valid.
    unsafe impl aya::Pod for super::HandoffStats {}
}
