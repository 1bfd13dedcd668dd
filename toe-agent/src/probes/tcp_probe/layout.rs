//! The tcp_probe family's per-CPU map value (map `TCP_PROBE`), shared by
//! its kernel program and the agent (compiled into toe-agent-common).
use crate::Hist;

/// TCP's state, sampled at each segment a socket receives on the device,
/// one per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TcpProbeStats {
    /// Smoothed round-trip time, µs (`tp->srtt_us >> 3`).
    pub srtt_us: Hist,
    /// Congestion window, segments (`tp->snd_cwnd`).
    pub cwnd: Hist,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `#[repr(C)]`, `Copy`, made only of integers, with no padding
    // (pinned by the layout tests in lib.rs), so any bit pattern is valid.
    unsafe impl aya::Pod for super::TcpProbeStats {}
}
