//! Not probes: `toe-agent bench` attaches each of these alone to the
//! busiest hook to measure what any tp_btf program costs on the machine
//! (the floor under the probes' own ns per run), and what the building
//! blocks the probes are made of cost on top of it: a per-CPU slot, a
//! clock read, a helper read of kernel memory.
use aya_ebpf::{
    helpers::{bpf_ktime_get_ns, bpf_probe_read_kernel},
    macros::{btf_tracepoint, map},
    maps::PerCpuArray,
    programs::BtfTracePointContext,
};

use crate::percpu::this_cpu;

/// Where the building blocks leave what they read, so that nothing is
/// optimised away.
#[map]
static BASELINE: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

#[btf_tracepoint(function = "napi_gro_receive_entry")]
pub fn baseline_empty(_ctx: BtfTracePointContext) -> i32 {
    0
}

/// This CPU's slot, and one add: every probe does this at least once.
#[btf_tracepoint(function = "napi_gro_receive_entry")]
pub fn baseline_slot(_ctx: BtfTracePointContext) -> i32 {
    if let Some(v) = this_cpu(&BASELINE) {
        *v += 1;
    }
    0
}

/// The slot and a clock read (bpf_ktime_get_ns): what timing an event
/// (softirq, poll, GRO hold) adds.
#[btf_tracepoint(function = "napi_gro_receive_entry")]
pub fn baseline_clock(_ctx: BtfTracePointContext) -> i32 {
    if let Some(v) = this_cpu(&BASELINE) {
        *v = unsafe { bpf_ktime_get_ns() };
    }
    0
}

/// The slot and one bpf_probe_read_kernel of 8 bytes: what reading memory
/// a BTF load cannot reach (skb_shared_info, the IP header, tcp_sock
/// beyond struct sock) adds.
#[btf_tracepoint(function = "napi_gro_receive_entry")]
pub fn baseline_read(ctx: BtfTracePointContext) -> i32 {
    let skb: u64 = ctx.arg(0);
    if let Some(v) = this_cpu(&BASELINE) {
        // SAFETY: bpf_probe_read_kernel checks the address itself.
        *v = unsafe { bpf_probe_read_kernel(skb as *const u64) }.unwrap_or(0);
    }
    0
}
