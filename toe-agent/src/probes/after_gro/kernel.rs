//! Kernel side of the after-GRO family (compiled into toe-agent-ebpf):
//! each skb as the stack receives it.
use aya_ebpf::{
    macros::{btf_tracepoint, map, tracepoint},
    maps::PerCpuArray,
    programs::{BtfTracePointContext, TracePointContext},
};
use toe_agent_common::{MAX_QUEUES, SkbStats};

use crate::{
    classic::{PASS, field, names_traced_dev},
    hist,
    percpu::this_cpu,
    skb::Skb,
};

#[map]
static SKB: PerCpuArray<SkbStats> = PerCpuArray::with_max_entries(1, 0);

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
    crate::gro::released(skb.addr());
    let ip = skb.ip();
    let detail = SkbDetail {
        segs: skb.gso().segs,
        csum: skb.ip_summed(),
        queue: skb.queue(),
        tcp: ip.tcp,
        fragment: ip.fragment,
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
    /// An IP fragment: GRO never merges one, the stack reassembles it later.
    pub fragment: bool,
}

/// Count one skb after GRO; the classic fallback knows only its length.
#[inline(always)]
pub fn record_skb(len: u32, detail: Option<SkbDetail>) {
    let Some(s) = this_cpu(&SKB) else {
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
        if d.fragment {
            s.ip_fragments += 1;
        }
    }
}

/// net_dev_template: skbaddr@8 len@16 name@20. No gso_segs, no ip_summed.
#[tracepoint]
pub fn netif_receive_skb_tp(ctx: TracePointContext) -> u32 {
    if names_traced_dev(&ctx, 20) {
        record_skb(field(&ctx, 16), None);
    }
    PASS
}
