//! This CPU's slot of a one-entry per-CPU array: every statistics map of
//! the programs is one.
use aya_ebpf::maps::PerCpuArray;

/// This CPU's value of `map`, to update in place.
#[inline(always)]
#[expect(
    clippy::mut_from_ref,
    reason = "a per-CPU slot is this CPU's alone while the program runs"
)]
pub fn this_cpu<T>(map: &PerCpuArray<T>) -> Option<&mut T> {
    // SAFETY: the slot belongs to this CPU, and tracing programs run with
    // migration disabled (kernel/trace/bpf_trace.c, bpf_trace_run*()), so
    // nothing else holds it while this reference lives.
    map.get_ptr_mut(0).map(|p| unsafe { &mut *p })
}
