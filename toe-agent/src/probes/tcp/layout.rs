//! The TCP family's per-CPU map value (map `TCP`), shared by its kernel
//! programs and the agent (compiled into toe-agent-common).

/// What TCP reported about the device's segments, one per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TcpStats {
    /// `tcp:tcp_bad_csum` hits for skbs received on the interface.
    pub bad_csum: u64,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `#[repr(C)]`, `Copy`, made only of integers, with no padding
    // (pinned by the layout tests in lib.rs), so any bit pattern is valid.
    unsafe impl aya::Pod for super::TcpStats {}
}
