//! The driver's hand-off, before GRO merges: once per packet from the wire
//! (or per coalesced packet when the NIC did LRO / hardware GRO). Five
//! tracepoints, because a driver hands packets up in one of five ways:
//! napi_gro_receive(), napi_gro_frags() (net/core/gro.c),
//! netif_receive_skb(), netif_receive_skb_list() and netif_rx()
//! (net/core/dev.c). Which one fired tells the receive path.
pub(crate) mod period;

use crate::{
    kernel::btf::OffsetGroup,
    model::catalogue::{Needs, Quantity, Unit, by_queue, by_state},
};

use super::{Family, Spec};

pub(super) const FAMILY: Family = Family {
    name: "hand-off",
    programs: &[
        Spec::btf("napi_gro_receive_entry")
            .or_classic("net", "napi_gro_receive_entry_tp")
            .per_segment(),
        Spec::btf("napi_gro_frags_entry")
            .or_classic("net", "napi_gro_frags_entry_tp")
            .per_segment(),
        Spec::btf("netif_receive_skb_entry")
            .or_classic("net", "netif_receive_skb_entry_tp")
            .per_segment(),
        Spec::btf("netif_receive_skb_list_entry")
            .or_classic("net", "netif_receive_skb_list_entry_tp")
            .per_segment(),
        Spec::btf("netif_rx_entry")
            .or_classic("net", "netif_rx_entry_tp")
            .per_segment(),
    ],
    reads: &[OffsetGroup::Skb, OffsetGroup::Dev],
    learn: None,
    quantities: &[
        Quantity::count(
            "rx.segments",
            "toe_rx_segments",
            "RX packets at the driver hand-off",
            "Packets handed up by the driver (before GRO).",
            Unit::Packets,
            Needs::Handoff,
            |b| b.rx.handoff.segments,
        ),
        Quantity::split(
            "rx.csum",
            "toe_rx_csum",
            "RX ip_summed at the hand-off",
            "Received packets by ip_summed state.",
            Unit::Packets,
            Needs::Handoff,
            "state",
            |b| by_state(&b.rx.handoff.csum),
        )
        .with(&[("stage", "handoff")]),
        Quantity::split(
            "rx.handoff",
            "toe_rx_handoffs",
            "RX hand-offs by hook",
            "Packets handed up, by the driver's hand-off function (NAPI/GRO or backlog).",
            Unit::Packets,
            Needs::Handoff,
            "hook",
            |b| b.rx.handoff.by_hook.split(),
        ),
        Quantity::split(
            "rx.queues",
            "toe_rx_queue_segments",
            "RX packets per receive queue",
            "Packets handed up, by the receive queue the driver recorded.",
            Unit::Packets,
            Needs::Handoff,
            "queue",
            |b| by_queue(&b.rx.handoff.queues),
        ),
        Quantity::count(
            "rx.queue_unrecorded",
            "toe_rx_segments_without_queue",
            "RX packets without a recorded queue",
            "Packets handed up whose driver recorded no receive queue.",
            Unit::Packets,
            Needs::Handoff,
            |b| b.rx.handoff.queue_unrecorded,
        ),
        Quantity::count(
            "rx.non_tcp.handoff_large",
            "toe_rx_non_tcp_large_handoffs",
            "RX hand-offs above the MTU, not TCP",
            "Hand-offs longer than the MTU whose IP protocol is not TCP (UDP GSO or GRO).",
            Unit::Packets,
            Needs::Handoff,
            |b| b.rx.handoff.non_tcp.handoff_large,
        ),
        Quantity::hist(
            "rx.segment_len",
            "toe_rx_segment_bytes",
            "RX segment length before GRO",
            "Length of packets at the driver hand-off (before GRO).",
            Unit::Bytes,
            Needs::Handoff,
            |b| &b.rx.handoff.segment_len,
        ),
        Quantity::hist(
            "rx.handoff_gso_size",
            "toe_rx_handoff_gso_size_bytes",
            "RX gso_size of coalesced hand-offs",
            "gso_size of hand-offs that already carried one (LRO, hardware GRO).",
            Unit::Bytes,
            Needs::Handoff,
            |b| &b.rx.handoff.handoff_gso_size,
        ),
    ],
};

// How the family's map value sums over CPUs and differences over time.
crate::kernel::collect::counters!(toe_agent_common::HandoffStats {
    segment_len,
    segment_csum,
    handoff_by_hook,
    handoff_gso_size,
    queue,
    nontcp_handoff_large,
});
