//! What software GRO did with each packet the driver handed to it:
//! `net:napi_gro_receive_exit` and `napi_gro_frags_exit` (net/core/gro.c)
//! report a `gro_result_t`: merged into a held skb, held as the first of a
//! flow, passed up as it was (normal), consumed. The evidence for how well
//! GRO does its job, and the answer to "why did GRO merge nothing?".
pub(crate) mod period;

use crate::model::catalogue::{Needs, Quantity, Unit};

use super::{Family, Spec};

pub(super) const FAMILY: Family = Family {
    name: "GRO",
    programs: &[
        Spec::btf("napi_gro_receive_exit")
            .or_classic("net", "napi_gro_receive_exit_tp")
            .per_segment(),
        Spec::btf("napi_gro_frags_exit")
            .or_classic("net", "napi_gro_frags_exit_tp")
            .per_segment(),
    ],
    // Only the tracepoint's result; the device comes from the hand-off.
    reads: &[],
    learn: None,
    quantities: &[
        Quantity::split(
            "rx.gro",
            "toe_rx_gro_results",
            "RX packets by GRO result",
            "Packets by what GRO did with them (gro_result_t): merged, merged_free, held, normal, consumed.",
            Unit::Packets,
            Needs::Handoff,
            "result",
            |b| b.rx.gro.results.split(),
        ),
        Quantity::hist(
            "rx.gro_hold_ns",
            "toe_rx_gro_hold_seconds",
            "RX time GRO held a merged skb",
            "How long GRO held the first packet of each merged skb before the stack received it.",
            Unit::Nanoseconds,
            Needs::Handoff,
            |b| &b.rx.gro.hold_ns,
        ),
    ],
};

// How the family's map value sums over CPUs and differences over time; the
// pending mark is program state.
crate::kernel::collect::counters!(toe_agent_common::GroStats { result, hold_ns } rest: pending);
