//! Kernel side of the softirq family (compiled into toe-agent-ebpf):
//! NET_RX and NET_TX softirq time per CPU.
use aya_ebpf::{
    helpers::bpf_ktime_get_ns,
    macros::{btf_tracepoint, map, tracepoint},
    maps::PerCpuArray,
    programs::{BtfTracePointContext, TracePointContext},
};
use toe_agent_common::{NET_TX_SOFTIRQ, SOFTIRQ_NET_RX, SoftirqStats};

use crate::{
    classic::{PASS, field},
    hist,
    percpu::this_cpu,
};

#[map]
static SOFTIRQ: PerCpuArray<SoftirqStats> = PerCpuArray::with_max_entries(1, 0);

/// Index of a traced vector, from `unsigned int vec_nr`, the only argument of
/// softirq_entry/exit/raise (include/trace/events/irq.h, softirq class).
#[inline(always)]
fn vector(ctx: &BtfTracePointContext) -> Option<usize> {
    index(ctx.arg::<u64>(0) as u32)
}

#[inline(always)]
pub fn index(vec: u32) -> Option<usize> {
    let i = (vec as u32).wrapping_sub(NET_TX_SOFTIRQ);
    if i >= 2 {
        return None;
    }
    // LLVM knows i < 2 and drops a plain mask; the verifier does not carry
    // that bound to the 64-bit index, so launder it (docs/kernel-notes.md, "Verifier traps").
    let i = unsafe { core::ptr::read_volatile(&i) } & 1;
    Some(i as usize)
}

/// Softirqs of one CPU do not nest (kernel/softirq.c, handle_softirqs() runs
/// them one after another with the pending mask cleared), so one start
/// timestamp per vector and CPU is enough.
#[btf_tracepoint(function = "softirq_entry")]
pub fn softirq_entry(ctx: BtfTracePointContext) -> i32 {
    if let Some(i) = vector(&ctx) {
        on_entry(i);
    }
    0
}

#[inline(always)]
pub fn on_entry(i: usize) {
    let Some(s) = this_cpu(&SOFTIRQ) else {
        return;
    };
    let now = unsafe { bpf_ktime_get_ns() };
    s.entry_ts[i] = now;
    if s.raise_ts[i] != 0 {
        hist::add(&mut s.raise_latency[i], now.wrapping_sub(s.raise_ts[i]));
        s.raise_ts[i] = 0;
    }
}

#[btf_tracepoint(function = "softirq_exit")]
pub fn softirq_exit(ctx: BtfTracePointContext) -> i32 {
    if let Some(i) = vector(&ctx) {
        on_exit(i);
    }
    0
}

#[inline(always)]
pub fn on_exit(i: usize) {
    let Some(s) = this_cpu(&SOFTIRQ) else {
        return;
    };
    // An exit without a recorded entry: the program was attached mid-run.
    if s.entry_ts[i] == 0 {
        return;
    }
    let d = unsafe { bpf_ktime_get_ns() }.wrapping_sub(s.entry_ts[i]);
    s.entry_ts[i] = 0;
    s.time_ns[i] += d;
    s.count[i] += 1;
    hist::add(&mut s.duration[i], d);
}

/// When the NET_RX softirq running on this CPU began, 0 when none runs:
/// the NAPI family measures polls from it.
#[inline(always)]
pub fn net_rx_entered() -> u64 {
    this_cpu(&SOFTIRQ).map_or(0, |s| s.entry_ts[SOFTIRQ_NET_RX])
}

/// raise_softirq() marks the vector pending on the local CPU
/// (kernel/softirq.c, __raise_softirq_irqoff → or_softirq_pending), so the
/// first raise and the next entry on this CPU bound the wait.
#[btf_tracepoint(function = "softirq_raise")]
pub fn softirq_raise(ctx: BtfTracePointContext) -> i32 {
    if let Some(i) = vector(&ctx) {
        on_raise(i);
    }
    0
}

#[inline(always)]
pub fn on_raise(i: usize) {
    let Some(s) = this_cpu(&SOFTIRQ) else {
        return;
    };
    if s.raise_ts[i] == 0 {
        s.raise_ts[i] = unsafe { bpf_ktime_get_ns() };
    }
}

/// softirq: vec@8.
#[tracepoint]
pub fn softirq_entry_tp(ctx: TracePointContext) -> u32 {
    if let Some(i) = index(field(&ctx, 8)) {
        on_entry(i);
    }
    PASS
}

#[tracepoint]
pub fn softirq_exit_tp(ctx: TracePointContext) -> u32 {
    if let Some(i) = index(field(&ctx, 8)) {
        on_exit(i);
    }
    PASS
}

#[tracepoint]
pub fn softirq_raise_tp(ctx: TracePointContext) -> u32 {
    if let Some(i) = index(field(&ctx, 8)) {
        on_raise(i);
    }
    PASS
}
