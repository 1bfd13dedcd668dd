//! Kernel side of the GRO family (compiled into toe-agent-ebpf): what GRO
//! did with each packet the driver handed to it.
//!
//! The exit tracepoints carry only the result (`int ret`,
//! include/trace/events/net.h, `net_dev_rx_exit_template`), not the skb or
//! its device. napi_gro_receive() and napi_gro_frags() (net/core/gro.c)
//! fire their `*_entry` tracepoint, run GRO and fire `*_exit`, in softirq
//! context and never nested on one CPU; so the hand-off program marks the
//! CPU when the entering packet is the traced device's ([`mark`]), and the
//! exit that follows counts its result and clears the mark. Exits of other
//! devices' packets find no mark.
//!
//! The packets GRO holds are the first of each merged skb; the after-GRO
//! program tells [`released`] when such an skb reaches the stack, which
//! gives how long GRO held it.
use aya_ebpf::helpers::bpf_ktime_get_ns;
use aya_ebpf::{
    macros::{btf_tracepoint, map, tracepoint},
    maps::PerCpuArray,
    programs::{BtfTracePointContext, TracePointContext},
};
use toe_agent_common::{GRO_HELD, GRO_HELD_SLOTS, GRO_RESULTS, GroHeld, GroStats};

use crate::{
    classic::{PASS, field},
    hist,
    percpu::this_cpu,
};

#[map]
static GRO: PerCpuArray<GroStats> = PerCpuArray::with_max_entries(1, 0);

#[map]
static GRO_HOLDS: PerCpuArray<GroHeld> = PerCpuArray::with_max_entries(1, 0);

/// The slot of the skb at `addr`: a Fibonacci hash of the address (skbs
/// come from a slab, so their low bits say little).
#[inline(always)]
fn slot(addr: u64) -> usize {
    ((addr >> 6).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize & (GRO_HELD_SLOTS - 1)
}

/// A packet of the traced device enters GRO on this CPU: `skb` is its
/// address (1 when the classic hand-off cannot tell it).
#[inline(always)]
pub fn mark(skb: u64) {
    if let Some(s) = this_cpu(&GRO) {
        s.pending = skb;
    }
}

/// GRO returned `ret` for the packet that entered last on this CPU. A held
/// packet is the first of what becomes a merged skb: note when, for
/// [`released`].
#[inline(always)]
fn exit(ret: i32) {
    let Some(s) = this_cpu(&GRO) else {
        return;
    };
    if s.pending == 0 {
        return;
    }
    let skb = s.pending;
    s.pending = 0;
    let r = ret as usize & (GRO_RESULTS - 1);
    s.result[r] += 1;
    if r == GRO_HELD
        && skb != 1
        && let Some(h) = this_cpu(&GRO_HOLDS)
    {
        h.slots[slot(skb)] = [skb, unsafe { bpf_ktime_get_ns() }];
    }
}

/// The skb at `skb` reaches the stack (`netif_receive_skb`): if GRO held
/// it, record for how long. The flush that delivers it runs on the CPU
/// that held it (the same NAPI poll, or napi_complete_done()).
#[inline(always)]
pub fn released(skb: u64) {
    let Some(h) = this_cpu(&GRO_HOLDS) else {
        return;
    };
    // The verifier forbids arithmetic on the skb pointer; the same value
    // read back from map memory is a plain number.
    h.key = skb;
    let skb = unsafe { core::ptr::read_volatile(&h.key) };
    let i = slot(skb);
    let [addr, since] = h.slots[i];
    if addr != skb {
        return;
    }
    h.slots[i][0] = 0;
    if let Some(s) = this_cpu(&GRO) {
        hist::add(
            &mut s.hold_ns,
            unsafe { bpf_ktime_get_ns() }.wrapping_sub(since),
        );
    }
}

#[btf_tracepoint(function = "napi_gro_receive_exit")]
pub fn napi_gro_receive_exit(ctx: BtfTracePointContext) -> i32 {
    exit(ctx.arg::<i32>(0));
    0
}

#[btf_tracepoint(function = "napi_gro_frags_exit")]
pub fn napi_gro_frags_exit(ctx: BtfTracePointContext) -> i32 {
    exit(ctx.arg::<i32>(0));
    0
}

/// net_dev_rx_exit_template: ret@8.
#[tracepoint]
pub fn napi_gro_receive_exit_tp(ctx: TracePointContext) -> u32 {
    exit(field(&ctx, 8));
    PASS
}

#[tracepoint]
pub fn napi_gro_frags_exit_tp(ctx: TracePointContext) -> u32 {
    exit(field(&ctx, 8));
    PASS
}
