//! Transmit path: `net_dev_queue` (what the stack built) and
//! `net_dev_start_xmit` (what the driver receives).
use aya_ebpf::{
    macros::{btf_tracepoint, map},
    maps::PerCpuArray,
    programs::BtfTracePointContext,
};
use toe_agent_common::{MAX_QUEUES, TxStats};

use crate::{hist, skb};

#[map]
static TX: PerCpuArray<TxStats> = PerCpuArray::with_max_entries(1, 0);

/// `trace_net_dev_queue(skb)` at the top of __dev_queue_xmit() (net/core/dev.c),
/// before validate_xmit_skb() may segment (skb_gso_segment) or checksum
/// (skb_checksum_help) it in software.
#[btf_tracepoint(function = "net_dev_queue")]
pub fn net_dev_queue(ctx: BtfTracePointContext) -> i32 {
    let skb: *const u8 = ctx.arg(0);
    unsafe {
        if !skb::is_traced_dev(skb::dev(skb)) {
            return 0;
        }
        let (_, segs) = skb::gso(skb);
        record_queued(skb::len(skb), Some((segs, skb::ip_summed(skb))));
    }
    0
}

/// Count one skb at net_dev_queue; the classic fallback knows only its length.
#[inline(always)]
pub fn record_queued(len: u32, segs_csum: Option<(u64, usize)>) {
    let Some(s) = TX.get_ptr_mut(0) else {
        return;
    };
    let s = unsafe { &mut *s };
    hist::add(&mut s.queued_len, len as u64);
    if let Some((segs, csum)) = segs_csum {
        hist::add(&mut s.segs_per_queued, if segs == 0 { 1 } else { segs });
        s.queued_csum[csum & 3] += 1;
    }
}

/// `trace_net_dev_start_xmit(skb, dev)` in netdev_start_xmit()
/// (include/linux/netdevice.h), after validate_xmit_skb(): an skb that still
/// has gso_segs > 1 here is segmented by the device (TSO) or by whatever
/// virtual device forwards it.
#[btf_tracepoint(function = "net_dev_start_xmit")]
pub fn net_dev_start_xmit(ctx: BtfTracePointContext) -> i32 {
    let skb: *const u8 = ctx.arg(0);
    unsafe {
        if !skb::is_traced_dev(skb::dev(skb)) {
            return 0;
        }
        let (_, segs) = skb::gso(skb);
        record_xmit(skb::len(skb), segs, skb::ip_summed(skb), skb::queue(skb));
    }
    0
}

/// Count one skb handed to the driver (shared with the classic fallback).
#[inline(always)]
pub fn record_xmit(len: u32, segs: u64, csum: usize, queue: usize) {
    let Some(s) = TX.get_ptr_mut(0) else {
        return;
    };
    let s = unsafe { &mut *s };
    hist::add(&mut s.xmit_len, len as u64);
    hist::add(&mut s.segs_per_xmit, if segs == 0 { 1 } else { segs });
    s.xmit_csum[csum & 3] += 1;
    s.queue[queue & (MAX_QUEUES - 1)] += 1;
}
