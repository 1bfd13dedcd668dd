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
use aya_ebpf::{
    macros::{btf_tracepoint, map, tracepoint},
    maps::PerCpuArray,
    programs::{BtfTracePointContext, TracePointContext},
};
use toe_agent_common::{GRO_RESULTS, GroStats};

use crate::{
    classic::{PASS, field},
    percpu::this_cpu,
};

#[map]
static GRO: PerCpuArray<GroStats> = PerCpuArray::with_max_entries(1, 0);

/// A packet of the traced device enters GRO on this CPU.
#[inline(always)]
pub fn mark() {
    if let Some(s) = this_cpu(&GRO) {
        s.pending = 1;
    }
}

/// GRO returned `ret` for the packet that entered last on this CPU.
#[inline(always)]
fn exit(ret: i32) {
    let Some(s) = this_cpu(&GRO) else {
        return;
    };
    if s.pending != 0 {
        s.pending = 0;
        s.result[ret as usize & (GRO_RESULTS - 1)] += 1;
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
