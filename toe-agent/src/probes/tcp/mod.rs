//! What TCP reports about the traced device's segments: `tcp:tcp_bad_csum`
//! (net/ipv4/tcp_ipv4.c, tcp_v4_rcv(), `csum_error:`), where `skb->dev` is
//! still the receiving device.
pub(crate) mod period;

use crate::{
    kernel::btf::OffsetGroup,
    model::catalogue::{Needs, Quantity, Unit},
};

use super::{Family, Spec};

pub(super) const FAMILY: Family = Family {
    name: "TCP",
    programs: &[Spec::btf("tcp_bad_csum")],
    reads: &[OffsetGroup::Skb, OffsetGroup::Dev],
    learn: None,
    quantities: &[Quantity::count(
        "rx.bad_csum",
        "toe_tcp_bad_csum",
        "TCP segments with a bad checksum",
        "TCP segments with a bad checksum found by the CPU.",
        Unit::Segments,
        Needs::Always,
        |b| b.rx.tcp.bad_csum,
    )],
};

// How the family's map value sums over CPUs and differences over time.
crate::kernel::collect::counters!(toe_agent_common::TcpStats { bad_csum });
