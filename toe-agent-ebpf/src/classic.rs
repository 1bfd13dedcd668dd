//! Classic tracepoint fallbacks, for kernels without BTF (or `--classic`).
//!
//! These read the trace record, whose layout is the TP_STRUCT__entry of the
//! event (include/trace/events/net.h, napi.h, irq.h) after the 8-byte common
//! header. The offsets below are the ones the kernel reports in
//! `/sys/kernel/tracing/events/<group>/<event>/format`; userspace checks
//! them there (`toe-agent/src/classic.rs`) before attaching, and refuses a
//! probe whose layout differs. The records carry the device *name* only, so
//! the filter cannot tell namespaces apart: the probes report as degraded.
//!
//! Every program returns 1: for a BPF program on a perf tracepoint event,
//! the return value decides whether the event still reaches the perf
//! buffers of *other* users of that event (kernel/trace/bpf_trace.c,
//! trace_call_bpf(), and perf_trace_run_bpf_submit() in
//! kernel/events/core.c). Returning 0 would silently blind `perf` running
//! beside the agent.
use aya_ebpf::{
    EbpfContext, helpers::bpf_probe_read_kernel_str_bytes, macros::tracepoint,
    programs::TracePointContext,
};
use toe_agent_common::{
    HOOK_NAPI_GRO_FRAGS, HOOK_NAPI_GRO_RECEIVE, HOOK_NETIF_RECEIVE_SKB,
    HOOK_NETIF_RECEIVE_SKB_LIST, HOOK_NETIF_RX,
};

use crate::{config, napi, rx, softirq, tx};

/// Let the event go on to other perf users (see the module comment).
const PASS: u32 = 1;

#[inline(always)]
fn field<T: Copy>(ctx: &TracePointContext, off: usize) -> T {
    // SAFETY: constant, aligned offsets inside the trace record, which the
    // verifier checks against the event's record size.
    unsafe { core::ptr::read_volatile((ctx.as_ptr() as *const u8).add(off) as *const T) }
}

/// Does the `__data_loc char[]` at `off` name the traced device? The u32
/// holds the string's offset in the record (low 16 bits) and its length.
#[inline(always)]
fn names_traced_dev(ctx: &TracePointContext, off: usize) -> bool {
    let loc: u32 = field(ctx, off);
    let mut name = [0u8; 16];
    let src = unsafe { (ctx.as_ptr() as *const u8).add((loc & 0xffff) as usize) };
    if unsafe { bpf_probe_read_kernel_str_bytes(src, &mut name) }.is_err() {
        return false;
    }
    let want = config!(ifname);
    let word = |b: &[u8; 16], i: usize| {
        u64::from_ne_bytes([
            b[i],
            b[i + 1],
            b[i + 2],
            b[i + 3],
            b[i + 4],
            b[i + 5],
            b[i + 6],
            b[i + 7],
        ])
    };
    word(&name, 0) == word(&want, 0) && word(&name, 8) == word(&want, 8)
}

/// net_dev_rx_verbose_template: name@8 queue_mapping@16 ip_summed@40 len@52 gso_size@74.
#[inline(always)]
fn handoff(ctx: &TracePointContext, hook: usize) -> u32 {
    if !names_traced_dev(ctx, 8) {
        return PASS;
    }
    let q: u16 = field(ctx, 16);
    let csum: u8 = field(ctx, 40);
    let len: u32 = field(ctx, 52);
    let gso_size: u16 = field(ctx, 74);
    // The record carries no IP protocol: every packet counts as TCP.
    rx::record_handoff(&rx::Handoff {
        hook,
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
    handoff(&ctx, HOOK_NAPI_GRO_RECEIVE)
}

#[tracepoint]
pub fn napi_gro_frags_entry_tp(ctx: TracePointContext) -> u32 {
    handoff(&ctx, HOOK_NAPI_GRO_FRAGS)
}

#[tracepoint]
pub fn netif_receive_skb_entry_tp(ctx: TracePointContext) -> u32 {
    handoff(&ctx, HOOK_NETIF_RECEIVE_SKB)
}

#[tracepoint]
pub fn netif_receive_skb_list_entry_tp(ctx: TracePointContext) -> u32 {
    handoff(&ctx, HOOK_NETIF_RECEIVE_SKB_LIST)
}

#[tracepoint]
pub fn netif_rx_entry_tp(ctx: TracePointContext) -> u32 {
    handoff(&ctx, HOOK_NETIF_RX)
}

/// net_dev_template: skbaddr@8 len@16 name@20. No gso_segs, no ip_summed.
#[tracepoint]
pub fn netif_receive_skb_tp(ctx: TracePointContext) -> u32 {
    if names_traced_dev(&ctx, 20) {
        rx::record_skb(field(&ctx, 16), None);
    }
    PASS
}

#[tracepoint]
pub fn net_dev_queue_tp(ctx: TracePointContext) -> u32 {
    if names_traced_dev(&ctx, 20) {
        tx::record_queued(field(&ctx, 16), None);
    }
    PASS
}

/// net_dev_start_xmit: name@8 queue_mapping@12 ip_summed@32 len@36
/// gso_segs@60 gso_type@62 (the low 16 bits, which hold the TCP classes).
#[tracepoint]
pub fn net_dev_start_xmit_tp(ctx: TracePointContext) -> u32 {
    if names_traced_dev(&ctx, 8) {
        let q: u16 = field(&ctx, 12);
        let csum: u8 = field(&ctx, 32);
        let segs: u16 = field(&ctx, 60);
        let gso_type: u16 = field(&ctx, 62);
        tx::record_xmit(&tx::Xmit {
            len: field(&ctx, 36),
            segs: segs as u64,
            csum: csum as usize,
            queue: q as usize,
            gso_type: gso_type as u32,
        });
    }
    PASS
}

/// softirq: vec@8.
#[tracepoint]
pub fn softirq_entry_tp(ctx: TracePointContext) -> u32 {
    if let Some(i) = softirq::index(field(&ctx, 8)) {
        softirq::on_entry(i);
    }
    PASS
}

#[tracepoint]
pub fn softirq_exit_tp(ctx: TracePointContext) -> u32 {
    if let Some(i) = softirq::index(field(&ctx, 8)) {
        softirq::on_exit(i);
    }
    PASS
}

#[tracepoint]
pub fn softirq_raise_tp(ctx: TracePointContext) -> u32 {
    if let Some(i) = softirq::index(field(&ctx, 8)) {
        softirq::on_raise(i);
    }
    PASS
}

/// napi_poll: napi@8 dev_name@16 work@20 budget@24. No napi id without BTF.
#[tracepoint]
pub fn napi_poll_tp(ctx: TracePointContext) -> u32 {
    if names_traced_dev(&ctx, 16) {
        let work: i32 = field(&ctx, 20);
        let budget: i32 = field(&ctx, 24);
        napi::record_poll(work as i64, budget as i64, None);
    }
    PASS
}
