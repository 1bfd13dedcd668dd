//! The transmit family's per-CPU map value (map `TX`), shared by its kernel
//! programs and the agent (compiled into toe-agent-common).
use crate::{CSUM_STATES, GSO_CLASSES, Hist, MAX_QUEUES};

/// Transmit side, one per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TxStats {
    /// Length of each skb at `net_dev_queue` (before software GSO/checksum).
    pub queued_len: Hist,
    pub queued_csum: [u64; CSUM_STATES],
    /// `max(gso_segs, 1)` at `net_dev_queue`: segments the stack asked for.
    pub segs_per_queued: Hist,
    /// Length of each skb the driver receives (`net_dev_start_xmit`).
    pub xmit_len: Hist,
    pub xmit_csum: [u64; CSUM_STATES],
    /// `max(gso_segs, 1)` at `net_dev_start_xmit`: segments the device must
    /// still produce. Its sum is the number of wire segments.
    pub segs_per_xmit: Hist,
    /// Transmissions per queue (`skb->queue_mapping`).
    pub queue: [u64; MAX_QUEUES],
    /// Multi-segment skbs at `net_dev_queue`, by `GSO_*` class.
    pub queued_gso: [u64; GSO_CLASSES],
    /// Multi-segment skbs at `net_dev_start_xmit` (left for the device to
    /// segment), by `GSO_*` class.
    pub xmit_gso: [u64; GSO_CLASSES],
    /// `gso_size` of the multi-segment skbs at `net_dev_start_xmit`: the
    /// payload per segment the device is asked to cut them at (the MSS,
    /// for TCP).
    pub xmit_gso_size: Hist,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `#[repr(C)]`, `Copy`, made only of integers, with no padding
    // (pinned by the layout tests in lib.rs), so any bit pattern is valid.
    unsafe impl aya::Pod for super::TxStats {}
}
