//! The receive map, shared by the hand-off, after-GRO and TCP families:
//! one per-CPU [`RxStats`] (layout in toe-agent-common).
use aya_ebpf::{macros::map, maps::PerCpuArray};
use toe_agent_common::RxStats;

#[map]
pub(crate) static RX: PerCpuArray<RxStats> = PerCpuArray::with_max_entries(1, 0);
