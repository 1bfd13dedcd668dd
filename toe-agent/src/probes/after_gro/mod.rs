//! Each skb as the stack receives it, after GRO: `trace_netif_receive_skb()`
//! in __netif_receive_skb_core() (net/core/dev.c), once per skb on the NAPI
//! and the backlog path alike. GRO records how many segments it merged in
//! `skb_shinfo(skb)->gso_segs` (net/ipv4/tcp_offload.c, tcp_gro_complete()).
pub(crate) mod period;

use crate::{
    kernel::btf::OffsetGroup,
    model::catalogue::{Needs, Quantity, Unit, by_queue, by_state},
};

use super::{Family, Spec};

pub(super) const FAMILY: Family = Family {
    name: "after GRO",
    programs: &[Spec::btf("netif_receive_skb").or_classic("net", "netif_receive_skb_tp")],
    reads: &[OffsetGroup::Skb, OffsetGroup::Dev],
    learn: None,
    quantities: &[
        Quantity::count(
            "rx.skbs",
            "toe_rx_skbs",
            "RX skbs after GRO",
            "skbs delivered to the stack after GRO.",
            Unit::Skbs,
            Needs::Always,
            |b| b.rx.after_gro.skbs,
        ),
        Quantity::count(
            "rx.bytes",
            "toe_rx_bytes",
            "RX bytes after GRO",
            "Bytes delivered to the stack (skb->len after GRO).",
            Unit::Bytes,
            Needs::Always,
            |b| b.rx.after_gro.bytes,
        ),
        Quantity::split(
            "rx.skb_csum",
            "toe_rx_csum",
            "RX ip_summed after GRO",
            "Received packets by ip_summed state.",
            Unit::Skbs,
            Needs::Always,
            "state",
            |b| by_state(&b.rx.after_gro.skb_csum),
        )
        .with(&[("stage", "after_gro")]),
        Quantity::split(
            "rx.skb_queues",
            "toe_rx_queue_skbs",
            "RX skbs per receive queue",
            "skbs after GRO, by the receive queue the driver recorded.",
            Unit::Skbs,
            Needs::Always,
            "queue",
            |b| by_queue(&b.rx.after_gro.skb_queues),
        ),
        Quantity::count(
            "rx.skb_queue_unrecorded",
            "toe_rx_skbs_without_queue",
            "RX skbs without a recorded queue",
            "skbs after GRO whose driver recorded no receive queue.",
            Unit::Skbs,
            Needs::Always,
            |b| b.rx.after_gro.skb_queue_unrecorded,
        ),
        Quantity::count(
            "rx.non_tcp.skbs",
            "toe_rx_non_tcp_skbs",
            "RX skbs that are not TCP",
            "skbs after GRO whose IP protocol is not TCP (not judged).",
            Unit::Skbs,
            Needs::Always,
            |b| b.rx.after_gro.non_tcp.skbs,
        ),
        Quantity::count(
            "rx.non_tcp.skb_segments",
            "toe_rx_non_tcp_segments",
            "RX packets that are not TCP",
            "Segments carried by skbs that are not TCP: the packets handed up that were not TCP.",
            Unit::Segments,
            Needs::Always,
            |b| b.rx.after_gro.non_tcp.skb_segments,
        ),
        Quantity::count(
            "rx.ip_fragments",
            "toe_rx_ip_fragments",
            "RX IP fragments",
            "Packets received as IP fragments (GRO never merges them; the stack reassembles them after).",
            Unit::Packets,
            Needs::Always,
            |b| b.rx.after_gro.ip_fragments,
        ),
        Quantity::hist(
            "rx.skb_len",
            "toe_rx_skb_bytes",
            "RX skb length after GRO",
            "Length of skbs after GRO.",
            Unit::Bytes,
            Needs::Always,
            |b| &b.rx.after_gro.skb_len,
        ),
        Quantity::hist(
            "rx.segs_per_skb",
            "toe_rx_segments_per_skb",
            "RX segments per skb",
            "Segments merged into each skb by GRO.",
            Unit::Segments,
            Needs::Always,
            |b| &b.rx.after_gro.segs_per_skb,
        ),
    ],
};

// How the family's map value sums over CPUs and differences over time.
crate::kernel::collect::counters!(toe_agent_common::SkbStats {
    skb_len,
    segs_per_skb,
    skb_csum,
    skb_queue,
    nontcp_skbs,
    nontcp_skb_segs,
    ip_fragments,
});
