//! TCP retransmissions of the sockets whose cached route leaves by the
//! device: `tcp:tcp_retransmit_skb` (net/ipv4/tcp_output.c,
//! tcp_retransmit_skb()). At that tracepoint `skb->dev` is not the egress
//! device (the skb is the write queue's own), so the device is the one of
//! `sk->sk_dst_cache`, the route the socket last used; a socket whose
//! route was reset is not counted until it has one again.
pub(crate) mod period;

use crate::{
    kernel::btf::OffsetGroup,
    model::catalogue::{Needs, Quantity, Unit},
};

use super::{Family, Spec};

pub(super) const FAMILY: Family = Family {
    name: "retransmit",
    // The classic tracepoint names no device: no fallback.
    programs: &[Spec::btf("tcp_retransmit_skb")],
    reads: &[OffsetGroup::Sock, OffsetGroup::Dev, OffsetGroup::Skb],
    learn: None,
    quantities: &[
        Quantity::count(
            "tcp.retransmits",
            "toe_tcp_retransmits",
            "TCP retransmissions",
            "TCP skbs retransmitted by sockets routed over the interface (tcp:tcp_retransmit_skb).",
            Unit::Skbs,
            Needs::Always,
            |b| b.tcp.retransmit.retransmits,
        ),
        Quantity::count(
            "tcp.retransmitted_segments",
            "toe_tcp_retransmitted_segments",
            "TCP segments retransmitted",
            "Segments those retransmitted skbs carried (tcp_skb_pcount()).",
            Unit::Segments,
            Needs::Always,
            |b| b.tcp.retransmit.retransmitted_segments,
        ),
    ],
};

crate::kernel::collect::counters!(toe_agent_common::RetransmitStats { skbs, segments });
