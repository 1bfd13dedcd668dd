//! Kernel side of the drops family (compiled into toe-agent-ebpf): skbs
//! of the traced device that the stack dropped, by reason.
use aya_ebpf::{
    macros::{btf_tracepoint, map},
    maps::PerCpuArray,
    programs::BtfTracePointContext,
};
use toe_agent_common::{DROP_REASONS, DropStats};

use crate::{
    diag::{self, diag},
    percpu::this_cpu,
    skb::Skb,
};

#[map]
static DROPS: PerCpuArray<DropStats> = PerCpuArray::with_max_entries(1, 0);

/// `trace_kfree_skb(skb, location, reason, rx_sk)` in
/// sk_skb_reason_drop() (net/core/skbuff.c), for skbs freed as dropped
/// (consumed ones go to `consume_skb`). `skb->dev` is the device the skb
/// arrived on, or is leaving by (a qdisc's drop).
#[btf_tracepoint(function = "kfree_skb")]
pub fn kfree_skb(ctx: BtfTracePointContext) -> i32 {
    let skb = Skb::new(ctx.arg(0));
    if !skb.dev().is_traced() {
        return 0;
    }
    let reason: u32 = ctx.arg(2);
    let slot = if (reason as usize) < DROP_REASONS {
        reason as usize
    } else {
        // A subsystem's reasons (the high 16 bits name it,
        // include/net/dropreason.h) or a kernel with more than the table.
        diag!(
            Warn,
            diag::DROP_REASON_RANGE,
            "kfree_skb: drop reason {:x} is beyond the {} the agent counts; counted in the last",
            reason,
            DROP_REASONS
        );
        DROP_REASONS - 1
    };
    if let Some(s) = this_cpu(&DROPS) {
        s.by_reason[slot & (DROP_REASONS - 1)] += 1;
    }
    0
}
