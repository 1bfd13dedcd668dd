//! What TCP's state looks like for the flows on the device: `tcp:tcp_probe`
//! (net/ipv4/tcp_input.c, tcp_rcv_established()) fires for each segment or
//! ACK an established socket receives; the program reads the socket's
//! smoothed RTT and congestion window. The device is the one of the
//! socket's cached route (`sk->sk_dst_cache->dev`, as for retransmits), so
//! a sender sees its flows at each ACK and a receiver at each data skb.
//! One sample per received skb, not per flow.
pub(crate) mod period;

use crate::{
    kernel::btf::OffsetGroup,
    model::catalogue::{Needs, Quantity, Unit},
};

use super::{Family, Spec};

pub(super) const FAMILY: Family = Family {
    name: "tcp_probe",
    // The classic tracepoint has no device: no fallback.
    programs: &[Spec::btf("tcp_probe")],
    reads: &[OffsetGroup::Sock, OffsetGroup::Dev, OffsetGroup::TcpSock],
    learn: None,
    quantities: &[
        Quantity::hist(
            "tcp.srtt_us",
            "toe_tcp_srtt_seconds",
            "TCP smoothed RTT",
            "Smoothed RTT of TCP sockets routed over the interface, sampled at each skb they receive.",
            Unit::Microseconds,
            Needs::Always,
            |b| &b.tcp.tcp_probe.srtt_us,
        ),
        Quantity::hist(
            "tcp.cwnd",
            "toe_tcp_cwnd_segments",
            "TCP congestion window",
            "Congestion window of TCP sockets routed over the interface, sampled at each skb they receive.",
            Unit::Segments,
            Needs::Always,
            |b| &b.tcp.tcp_probe.cwnd,
        ),
    ],
};

crate::kernel::collect::counters!(toe_agent_common::TcpProbeStats { srtt_us, cwnd });
