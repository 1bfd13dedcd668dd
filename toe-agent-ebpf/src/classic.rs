//! What the classic tracepoint fallbacks share (each family keeps its own
//! programs), for kernels without BTF (or `--classic`).
//!
//! These read the trace record, whose layout is the TP_STRUCT__entry of the
//! event (include/trace/events/net.h, napi.h, irq.h) after the 8-byte common
//! header. The offsets below are the ones the kernel reports in
//! `/sys/kernel/tracing/events/<group>/<event>/format`; userspace checks
//! them there (`toe-agent/src/kernel/classic.rs`) before attaching, and refuses a
//! probe whose layout differs. The records carry the device *name* only, so
//! the filter cannot tell namespaces apart: the probes report as degraded.
//!
//! Every program returns 1: for a BPF program on a perf tracepoint event,
//! the return value decides whether the event still reaches the perf
//! buffers of *other* users of that event (kernel/trace/bpf_trace.c,
//! trace_call_bpf(), and perf_trace_run_bpf_submit() in
//! kernel/events/core.c). Returning 0 would silently blind `perf` running
//! beside the agent.
use crate::config;
use aya_ebpf::{
    EbpfContext, helpers::bpf_probe_read_kernel_str_bytes, programs::TracePointContext,
};

/// Let the event go on to other perf users (see the module comment).
pub(crate) const PASS: u32 = 1;

#[inline(always)]
pub(crate) fn field<T: Copy>(ctx: &TracePointContext, off: usize) -> T {
    // SAFETY: constant, aligned offsets inside the trace record, which the
    // verifier checks against the event's record size.
    unsafe { core::ptr::read_volatile((ctx.as_ptr() as *const u8).add(off) as *const T) }
}

/// Does the `__data_loc char[]` at `off` name the traced device? The u32
/// holds the string's offset in the record (low 16 bits) and its length.
#[inline(always)]
pub(crate) fn names_traced_dev(ctx: &TracePointContext, off: usize) -> bool {
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
