//! Kernel side of the transmit family (compiled into toe-agent-ebpf):
//! skbs queued to the device (before GSO) and handed to its driver.
use aya_ebpf::{
    macros::{btf_tracepoint, map, tracepoint},
    maps::PerCpuArray,
    programs::{BtfTracePointContext, TracePointContext},
};
use toe_agent_common::{MAX_QUEUES, TxStats, gso_class};

use crate::{
    classic::{PASS, field, names_traced_dev},
    hist,
    percpu::this_cpu,
    skb::Skb,
};

#[map]
static TX: PerCpuArray<TxStats> = PerCpuArray::with_max_entries(1, 0);

/// `trace_net_dev_queue(skb)` at the top of __dev_queue_xmit() (net/core/dev.c),
/// before validate_xmit_skb() may segment (skb_gso_segment) or checksum
/// (skb_checksum_help) it in software.
#[btf_tracepoint(function = "net_dev_queue")]
pub fn net_dev_queue(ctx: BtfTracePointContext) -> i32 {
    let skb = Skb::new(ctx.arg(0));
    if !skb.dev().is_traced() {
        return 0;
    }
    let segs = skb.gso().segs;
    let detail = QueuedDetail {
        segs,
        csum: skb.ip_summed(),
        gso_type: if segs > 1 { skb.gso_type() } else { 0 },
    };
    record_queued(skb.len(), Some(detail));
    0
}

/// What a BTF hook reads of a queued skb besides its length.
pub struct QueuedDetail {
    /// `skb_shinfo(skb)->gso_segs`
    pub segs: u64,
    /// `skb->ip_summed`
    pub csum: usize,
    /// `skb_shinfo(skb)->gso_type`, read for multi-segment skbs only
    pub gso_type: u32,
}

/// Count one skb at net_dev_queue; the classic fallback knows only its length.
#[inline(always)]
pub fn record_queued(len: u32, detail: Option<QueuedDetail>) {
    let Some(s) = this_cpu(&TX) else {
        return;
    };
    hist::add(&mut s.queued_len, len as u64);
    if let Some(d) = detail {
        hist::add(&mut s.segs_per_queued, if d.segs == 0 { 1 } else { d.segs });
        s.queued_csum[d.csum & 3] += 1;
        if d.segs > 1 {
            s.queued_gso[gso_class(d.gso_type)] += 1;
        }
    }
}

/// `trace_net_dev_start_xmit(skb, dev)` in xmit_one() (net/core/dev.c), just
/// before netdev_start_xmit() calls the driver and after validate_xmit_skb():
/// an skb that still
/// has gso_segs > 1 here is segmented by the device (TSO) or by whatever
/// virtual device forwards it.
#[btf_tracepoint(function = "net_dev_start_xmit")]
pub fn net_dev_start_xmit(ctx: BtfTracePointContext) -> i32 {
    let skb = Skb::new(ctx.arg(0));
    if !skb.dev().is_traced() {
        return 0;
    }
    // gso_size and gso_segs come in one read of skb_shared_info.
    let gso = skb.gso();
    let segs = gso.segs;
    record_xmit(&Xmit {
        len: skb.len(),
        segs,
        gso_size: gso.size,
        csum: skb.ip_summed(),
        queue: skb.queue(),
        gso_type: if segs > 1 { skb.gso_type() } else { 0 },
    });
    0
}

/// What the hooks read of an skb handed to the driver.
pub struct Xmit {
    pub len: u32,
    /// `skb_shinfo(skb)->gso_segs`
    pub segs: u64,
    /// `skb_shinfo(skb)->gso_size`: the payload per segment (tcp_gso_size,
    /// the MSS, set in tcp_set_skb_tso_segs(), net/ipv4/tcp_output.c)
    pub gso_size: u64,
    pub csum: usize,
    pub queue: usize,
    /// `skb_shinfo(skb)->gso_type`, for multi-segment skbs
    pub gso_type: u32,
}

/// Count one skb handed to the driver (shared with the classic fallback).
#[inline(always)]
pub fn record_xmit(x: &Xmit) {
    let Some(s) = this_cpu(&TX) else {
        return;
    };
    hist::add(&mut s.xmit_len, x.len as u64);
    hist::add(&mut s.segs_per_xmit, if x.segs == 0 { 1 } else { x.segs });
    s.xmit_csum[x.csum & 3] += 1;
    s.queue[x.queue & (MAX_QUEUES - 1)] += 1;
    if x.segs > 1 {
        s.xmit_gso[gso_class(x.gso_type)] += 1;
        hist::add(&mut s.xmit_gso_size, x.gso_size);
    }
}

#[tracepoint]
pub fn net_dev_queue_tp(ctx: TracePointContext) -> u32 {
    if names_traced_dev(&ctx, 20) {
        record_queued(field(&ctx, 16), None);
    }
    PASS
}

/// net_dev_start_xmit: name@8 queue_mapping@12 ip_summed@32 len@36
/// gso_size@58 gso_segs@60 gso_type@62 (the low 16 bits, which hold the
/// TCP classes); include/trace/events/net.h.
#[tracepoint]
pub fn net_dev_start_xmit_tp(ctx: TracePointContext) -> u32 {
    if names_traced_dev(&ctx, 8) {
        let q: u16 = field(&ctx, 12);
        let csum: u8 = field(&ctx, 32);
        let gso_size: u16 = field(&ctx, 58);
        let segs: u16 = field(&ctx, 60);
        let gso_type: u16 = field(&ctx, 62);
        record_xmit(&Xmit {
            len: field(&ctx, 36),
            segs: segs as u64,
            gso_size: gso_size as u64,
            csum: csum as usize,
            queue: q as usize,
            gso_type: gso_type as u32,
        });
    }
    PASS
}
