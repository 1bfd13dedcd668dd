//! Kernel side of the TCP family (compiled into toe-agent-ebpf): what TCP
//! reports about segments of the traced device.
use aya_ebpf::{
    macros::{btf_tracepoint, map},
    maps::PerCpuArray,
    programs::BtfTracePointContext,
};
use toe_agent_common::TcpStats;

use crate::{percpu::this_cpu, skb::Skb};

#[map]
static TCP: PerCpuArray<TcpStats> = PerCpuArray::with_max_entries(1, 0);

/// A TCP segment whose checksum the CPU found bad (net/ipv4/tcp_ipv4.c,
/// tcp_v4_rcv() `csum_error:` → `trace_tcp_bad_csum(skb)`); `skb->dev` is
/// still the receiving device there.
#[btf_tracepoint(function = "tcp_bad_csum")]
pub fn tcp_bad_csum(ctx: BtfTracePointContext) -> i32 {
    let skb = Skb::new(ctx.arg(0));
    if skb.dev().is_traced()
        && let Some(s) = this_cpu(&TCP)
    {
        s.bad_csum += 1;
    }
    0
}
