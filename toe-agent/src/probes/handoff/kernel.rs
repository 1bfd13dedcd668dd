//! Kernel side of the hand-off family (compiled into toe-agent-ebpf): the
//! driver's hand-off of each packet, before GRO.
use aya_ebpf::{
    macros::{btf_tracepoint, map, tracepoint},
    maps::PerCpuArray,
    programs::{BtfTracePointContext, TracePointContext},
};
use toe_agent_common::{
    HOOK_NAPI_GRO_FRAGS, HOOK_NAPI_GRO_RECEIVE, HOOK_NETIF_RECEIVE_SKB,
    HOOK_NETIF_RECEIVE_SKB_LIST, HOOK_NETIF_RX, HandoffStats, MAX_QUEUES,
};

use crate::{
    classic::{PASS, field, names_traced_dev},
    diag::{self, diag},
    hist,
    percpu::this_cpu,
    skb::{NetDev, Skb},
};

#[map]
static HANDOFF: PerCpuArray<HandoffStats> = PerCpuArray::with_max_entries(1, 0);

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
        skb: skb.addr(),
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
    /// The skb's address, for the GRO family (1 when unknown).
    pub skb: u64,
    /// The IP protocol is TCP; read only for packets longer than the MTU
    /// (true otherwise, and with the classic fallback, which cannot tell).
    pub tcp: bool,
}

/// Count one driver hand-off (shared with the classic tracepoint fallback).
#[inline(always)]
pub fn record_handoff(h: &Handoff) {
    let Some(s) = this_cpu(&HANDOFF) else {
        return;
    };
    hist::add(&mut s.segment_len, h.len as u64);
    s.segment_csum[h.csum & 3] += 1;
    s.handoff_by_hook[h.hook] += 1;
    diag!(
        Debug,
        diag::FIRST_HANDOFF + h.hook,
        "first packet at hand-off hook {} on this CPU: len {}, gso_size {}, ip_summed {}, queue {}",
        h.hook,
        h.len,
        h.gso_size,
        h.csum,
        h.queue
    );
    if h.hook == HOOK_NAPI_GRO_RECEIVE || h.hook == HOOK_NAPI_GRO_FRAGS {
        // The GRO family counts what GRO does with this packet at the exit.
        crate::gro::mark(h.skb);
    }
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

/// net_dev_rx_verbose_template: name@8 queue_mapping@16 ip_summed@40 len@52 gso_size@74.
#[inline(always)]
fn classic_handoff(ctx: &TracePointContext, hook: usize) -> u32 {
    if !names_traced_dev(ctx, 8) {
        return PASS;
    }
    let q: u16 = field(ctx, 16);
    let csum: u8 = field(ctx, 40);
    let len: u32 = field(ctx, 52);
    let gso_size: u16 = field(ctx, 74);
    // The record carries no IP protocol: every packet counts as TCP.
    record_handoff(&Handoff {
        hook,
        skb: 1,
        len,
        csum: csum as usize,
        queue: q as usize,
        gso_size: gso_size as u64,
        tcp: true,
    });
    PASS
}

#[tracepoint]
pub fn napi_gro_receive_entry_tp(ctx: TracePointContext) -> u32 {
    classic_handoff(&ctx, HOOK_NAPI_GRO_RECEIVE)
}

#[tracepoint]
pub fn napi_gro_frags_entry_tp(ctx: TracePointContext) -> u32 {
    classic_handoff(&ctx, HOOK_NAPI_GRO_FRAGS)
}

#[tracepoint]
pub fn netif_receive_skb_entry_tp(ctx: TracePointContext) -> u32 {
    classic_handoff(&ctx, HOOK_NETIF_RECEIVE_SKB)
}

#[tracepoint]
pub fn netif_receive_skb_list_entry_tp(ctx: TracePointContext) -> u32 {
    classic_handoff(&ctx, HOOK_NETIF_RECEIVE_SKB_LIST)
}

#[tracepoint]
pub fn netif_rx_entry_tp(ctx: TracePointContext) -> u32 {
    classic_handoff(&ctx, HOOK_NETIF_RX)
}
