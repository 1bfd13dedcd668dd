//! Receive path: the driver's hand-off (before GRO) and `netif_receive_skb`
//! (after GRO), plus `tcp:tcp_bad_csum`.
use aya_ebpf::{
    macros::{btf_tracepoint, map},
    maps::PerCpuArray,
    programs::BtfTracePointContext,
};
use toe_agent_common::{
    HOOK_NAPI_GRO_FRAGS, HOOK_NAPI_GRO_RECEIVE, HOOK_NETIF_RECEIVE_SKB,
    HOOK_NETIF_RECEIVE_SKB_LIST, HOOK_NETIF_RX, MAX_QUEUES, RxStats,
};

use crate::{
    hist,
    percpu::this_cpu,
    skb::{NetDev, Skb},
};

#[map]
static RX: PerCpuArray<RxStats> = PerCpuArray::with_max_entries(1, 0);

/// A packet handed up by the driver, one per received segment unless the
/// NIC coalesced (LRO / HW-GRO). The `*_entry` tracepoints fire at the top of
/// napi_gro_receive(), napi_gro_frags(), netif_receive_skb(),
/// netif_receive_skb_list() and __netif_rx() (net/core/gro.c, net/core/dev.c),
/// all with `const struct sk_buff *skb` (include/trace/events/net.h,
/// DECLARE_EVENT_CLASS(net_dev_rx_verbose_template)).
#[inline(always)]
fn handoff(ctx: &BtfTracePointContext, hook: usize) -> i32 {
    let skb = Skb::new(ctx.arg(0));
    let dev: NetDev = skb.dev();
    if !dev.is_traced() {
        return 0;
    }
    let len = skb.len();
    // skb->len counts from the network header here (eth_type_trans() has
    // pulled the MAC header), so only a packet longer than the MTU can
    // carry a gso_size: skip the helper calls for the common case. The
    // protocol of the others is counted after GRO, once per skb.
    let (gso_size, tcp) = if len > dev.mtu() {
        (skb.gso().size, skb.is_tcp())
    } else {
        (0, true)
    };
    record_handoff(&Handoff {
        hook,
        len,
        csum: skb.ip_summed(),
        queue: skb.queue(),
        gso_size,
        tcp,
    });
    0
}

/// What a hand-off hook reads of a packet.
pub struct Handoff {
    /// `HOOK_*`
    pub hook: usize,
    /// `skb->len`
    pub len: u32,
    /// `skb->ip_summed`
    pub csum: usize,
    /// `skb->queue_mapping`
    pub queue: usize,
    /// `skb_shinfo(skb)->gso_size`, 0 when none or not read
    pub gso_size: u64,
    /// The IP protocol is TCP; read only for packets longer than the MTU
    /// (true otherwise, and with the classic fallback, which cannot tell).
    pub tcp: bool,
}

/// Count one driver hand-off (shared with the classic tracepoint fallback).
#[inline(always)]
pub fn record_handoff(h: &Handoff) {
    let Some(s) = this_cpu(&RX) else {
        return;
    };
    hist::add(&mut s.segment_len, h.len as u64);
    s.segment_csum[h.csum & 3] += 1;
    s.handoff_by_hook[h.hook] += 1;
    s.queue[h.queue & (MAX_QUEUES - 1)] += 1;
    if h.gso_size != 0 {
        hist::add(&mut s.handoff_gso_size, h.gso_size);
    }
    if !h.tcp {
        s.nontcp_handoff_large += 1;
    }
}

#[btf_tracepoint(function = "napi_gro_receive_entry")]
pub fn napi_gro_receive_entry(ctx: BtfTracePointContext) -> i32 {
    handoff(&ctx, HOOK_NAPI_GRO_RECEIVE)
}

#[btf_tracepoint(function = "napi_gro_frags_entry")]
pub fn napi_gro_frags_entry(ctx: BtfTracePointContext) -> i32 {
    handoff(&ctx, HOOK_NAPI_GRO_FRAGS)
}

#[btf_tracepoint(function = "netif_receive_skb_entry")]
pub fn netif_receive_skb_entry(ctx: BtfTracePointContext) -> i32 {
    handoff(&ctx, HOOK_NETIF_RECEIVE_SKB)
}

#[btf_tracepoint(function = "netif_receive_skb_list_entry")]
pub fn netif_receive_skb_list_entry(ctx: BtfTracePointContext) -> i32 {
    handoff(&ctx, HOOK_NETIF_RECEIVE_SKB_LIST)
}

#[btf_tracepoint(function = "netif_rx_entry")]
pub fn netif_rx_entry(ctx: BtfTracePointContext) -> i32 {
    handoff(&ctx, HOOK_NETIF_RX)
}

/// An skb as the stack receives it, after GRO: `trace_netif_receive_skb(skb)`
/// in __netif_receive_skb_core() (net/core/dev.c), once per skb on both the
/// NAPI and the backlog path. GRO records the merged count in
/// `skb_shinfo(skb)->gso_segs` (net/ipv4/tcp_offload.c, tcp_gro_complete()).
#[btf_tracepoint(function = "netif_receive_skb")]
pub fn netif_receive_skb(ctx: BtfTracePointContext) -> i32 {
    let skb = Skb::new(ctx.arg(0));
    if !skb.dev().is_traced() {
        return 0;
    }
    let detail = SkbDetail {
        segs: skb.gso().segs,
        csum: skb.ip_summed(),
        queue: skb.queue(),
        tcp: skb.is_tcp(),
    };
    record_skb(skb.len(), Some(detail));
    0
}

/// What a BTF hook reads of an skb after GRO besides its length.
pub struct SkbDetail {
    /// `skb_shinfo(skb)->gso_segs`
    pub segs: u64,
    /// `skb->ip_summed`
    pub csum: usize,
    /// `skb->queue_mapping`
    pub queue: usize,
    /// The IP protocol is TCP.
    pub tcp: bool,
}

/// Count one skb after GRO; the classic fallback knows only its length.
#[inline(always)]
pub fn record_skb(len: u32, detail: Option<SkbDetail>) {
    let Some(s) = this_cpu(&RX) else {
        return;
    };
    hist::add(&mut s.skb_len, len as u64);
    if let Some(d) = detail {
        let segs = if d.segs == 0 { 1 } else { d.segs };
        hist::add(&mut s.segs_per_skb, segs);
        s.skb_csum[d.csum & 3] += 1;
        s.skb_queue[d.queue & (MAX_QUEUES - 1)] += 1;
        if !d.tcp {
            s.nontcp_skbs += 1;
            s.nontcp_skb_segs += segs;
        }
    }
}

/// A TCP segment whose checksum the CPU found bad (net/ipv4/tcp_ipv4.c,
/// tcp_v4_rcv() `csum_error:` → `trace_tcp_bad_csum(skb)`); `skb->dev` is
/// still the receiving device there.
#[btf_tracepoint(function = "tcp_bad_csum")]
pub fn tcp_bad_csum(ctx: BtfTracePointContext) -> i32 {
    let skb = Skb::new(ctx.arg(0));
    if skb.dev().is_traced()
        && let Some(s) = this_cpu(&RX)
    {
        s.bad_csum += 1;
    }
    0
}
