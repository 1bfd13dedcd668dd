//! The GRO family's per-CPU map value (map `GRO`), shared by its kernel
//! programs and the agent (compiled into toe-agent-common).

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
    /// Program state, not statistics: set by the hand-off program when a
    /// packet of the traced device enters napi_gro_receive() or
    /// napi_gro_frags(), cleared at the exit that follows it on this CPU.
    pub pending: u64,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `#[repr(C)]`, `Copy`, made only of integers, with no padding
    // (pinned by the layout tests in lib.rs), so any bit pattern is valid.
    unsafe impl aya::Pod for super::GroStats {}
}
