//! The GRO family's per-CPU map value (map `GRO`), shared by its kernel
//! programs and the agent (compiled into toe-agent-common).
use crate::Hist;

/// `gro_result_t` (include/linux/netdevice.h): `GRO_MERGED`,
/// `GRO_MERGED_FREE`, `GRO_HELD`, `GRO_NORMAL`, `GRO_CONSUMED`, in that
/// order. Room for eight, so that a value a later kernel adds is counted
/// (masked with `& 7`) rather than lost.
pub const GRO_RESULTS: usize = 8;
pub const GRO_MERGED: usize = 0;
pub const GRO_MERGED_FREE: usize = 1;
pub const GRO_HELD: usize = 2;
pub const GRO_NORMAL: usize = 3;
pub const GRO_CONSUMED: usize = 4;

/// What GRO did with each packet of the device the driver gave it, one per
/// CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GroStats {
    /// Packets by `gro_result_t`, from the `*_exit` tracepoints' `ret`.
    pub result: [u64; GRO_RESULTS],
    /// How long GRO held the first packet of each merged skb: from its exit
    /// with GRO_HELD to the skb's `netif_receive_skb`, ns.
    pub hold_ns: Hist,
    /// Program state, not statistics: the address of the traced device's
    /// skb that entered napi_gro_receive() or napi_gro_frags() (1 when the
    /// classic hand-off cannot tell it), cleared at the exit that follows
    /// it on this CPU.
    pub pending: u64,
}

/// Skbs GRO holds, per CPU (map `GRO_HELD`): `[address, time held]`, in a
/// slot chosen by the address. A slot another skb takes first loses that
/// sample, never a count.
pub const GRO_HELD_SLOTS: usize = 64;

#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct GroHeld {
    pub slots: [[u64; 2]; GRO_HELD_SLOTS],
    /// Program state: an skb address passed through the map, which turns
    /// the verifier's pointer into a number it lets the program hash.
    pub key: u64,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `#[repr(C)]`, `Copy`, made only of integers, with no padding
    // (pinned by the layout tests in lib.rs), so any bit pattern is valid.
    unsafe impl aya::Pod for super::GroStats {}
    unsafe impl aya::Pod for super::GroHeld {}
}
