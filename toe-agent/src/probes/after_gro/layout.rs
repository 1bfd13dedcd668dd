//! The after-GRO family's per-CPU map value (map `SKB`), shared by its
//! kernel programs and the agent (compiled into toe-agent-common).
use crate::{CSUM_STATES, Hist, MAX_QUEUES};

/// skbs delivered to the stack, one per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SkbStats {
    /// Length of each skb delivered to the stack (`netif_receive_skb`, after GRO).
    pub skb_len: Hist,
    /// `max(gso_segs, 1)` of each delivered skb: segments merged into it.
    pub segs_per_skb: Hist,
    /// `ip_summed` of each delivered skb.
    pub skb_csum: [u64; CSUM_STATES],
    /// Delivered skbs per receive queue: `queue_mapping` survives GRO (the
    /// merged skb is the flow's first), so RSS shows without the hand-off.
    pub skb_queue: [u64; MAX_QUEUES],
    /// Skbs after GRO whose IP protocol is not TCP (UDP, ICMP, ARP...), and
    /// the segments they carry (`max(gso_segs, 1)` each). Every packet
    /// handed up ends in exactly one skb after GRO, so the segments are
    /// also the hand-offs that were not TCP. TCP's offloads are judged
    /// without them.
    pub nontcp_skbs: u64,
    pub nontcp_skb_segs: u64,
    /// Skbs after GRO that are IP fragments. GRO passes fragments up
    /// unmerged (net/ipv4/af_inet.c, inet_gro_receive() flushes at
    /// ip_is_fragment()), so each is one packet the driver handed up.
    pub ip_fragments: u64,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `#[repr(C)]`, `Copy`, made only of integers, with no padding
    // (pinned by the layout tests in lib.rs), so any bit pattern is valid.
    unsafe impl aya::Pod for super::SkbStats {}
}
