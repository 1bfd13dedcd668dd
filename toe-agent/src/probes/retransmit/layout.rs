//! The retransmit family's per-CPU map value (map `RETRANSMIT`), shared by
//! its kernel programs and the agent (compiled into toe-agent-common).

/// TCP retransmissions leaving by the device, one per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RetransmitStats {
    /// `tcp:tcp_retransmit_skb` hits: skbs retransmitted.
    pub skbs: u64,
    /// The segments they carried (`tcp_skb_pcount()`, the skb's
    /// `gso_segs`; at least 1 each).
    pub segments: u64,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `#[repr(C)]`, `Copy`, made only of integers, with no padding
    // (pinned by the layout tests in lib.rs), so any bit pattern is valid.
    unsafe impl aya::Pod for super::RetransmitStats {}
}
