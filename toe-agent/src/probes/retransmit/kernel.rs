//! Kernel side of the retransmit family (compiled into toe-agent-ebpf):
//! TCP retransmissions of sockets whose route leaves by the traced device.
use aya_ebpf::{
    macros::{btf_tracepoint, map},
    maps::PerCpuArray,
    programs::BtfTracePointContext,
};
use toe_agent_common::RetransmitStats;

use crate::{
    percpu::this_cpu,
    skb::{Skb, Sock},
};

#[map]
static RETRANSMIT: PerCpuArray<RetransmitStats> = PerCpuArray::with_max_entries(1, 0);

/// `trace_tcp_retransmit_skb(sk, skb, ...)` in tcp_retransmit_skb()
/// (net/ipv4/tcp_output.c). The skb has no device yet: it is still the
/// write queue's, not a clone on its way out. The socket's cached route
/// says which device its segments leave by.
#[btf_tracepoint(function = "tcp_retransmit_skb")]
pub fn tcp_retransmit_skb(ctx: BtfTracePointContext) -> i32 {
    let sk = Sock::new(ctx.arg(0));
    if !sk.route_dev().is_traced() {
        return 0;
    }
    // tcp_skb_pcount() is the write-queue skb's gso_segs.
    let segs = Skb::new(ctx.arg(1)).gso().segs;
    if let Some(s) = this_cpu(&RETRANSMIT) {
        s.skbs += 1;
        s.segments += if segs == 0 { 1 } else { segs };
    }
    0
}
