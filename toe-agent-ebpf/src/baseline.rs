//! Not a probe: `toe-agent bench` attaches this alone to the busiest hook to
//! measure what any tp_btf program costs on the machine (the floor under
//! the probes' own ns per run).
use aya_ebpf::{macros::btf_tracepoint, programs::BtfTracePointContext};

#[btf_tracepoint(function = "napi_gro_receive_entry")]
pub fn baseline_empty(_ctx: BtfTracePointContext) -> i32 {
    0
}
