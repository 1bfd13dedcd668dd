//! The drops family's per-CPU map value (map `DROPS`), shared by its kernel
//! programs and the agent (compiled into toe-agent-common).

/// Slots for `enum skb_drop_reason` values (include/net/dropreason-core.h;
/// 128 of them on 6.18). A larger value, a subsystem's own reasons among
/// them (`SKB_DROP_REASON_SUBSYS_SHIFT`), is counted in the last slot.
pub const DROP_REASONS: usize = 256;

/// skbs of the device the stack freed as dropped, one per CPU.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DropStats {
    pub by_reason: [u64; DROP_REASONS],
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: `#[repr(C)]`, `Copy`, made only of integers, with no padding
    // (pinned by the layout tests in lib.rs), so any bit pattern is valid.
    unsafe impl aya::Pod for super::DropStats {}
}
