//! Kernel side of the drops family (compiled into toe-agent-ebpf): skbs
//! of the traced device that the stack dropped, by reason.
use aya_ebpf::{
    macros::{btf_tracepoint, map},
    maps::PerCpuArray,
    programs::BtfTracePointContext,
};
use toe_agent_common::{DROP_REASONS, DropStats};

use crate::{percpu::this_cpu, skb::Skb};

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
        DROP_REASONS - 1
    };
    if let Some(s) = this_cpu(&DROPS) {
        s.by_reason[slot & (DROP_REASONS - 1)] += 1;
    }
    0
}
