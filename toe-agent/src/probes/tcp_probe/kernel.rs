//! Kernel side of the tcp_probe family (compiled into toe-agent-ebpf):
//! the RTT and congestion window of TCP sockets receiving on the device.
use aya_ebpf::{
    macros::{btf_tracepoint, map},
    maps::PerCpuArray,
    programs::BtfTracePointContext,
};
use toe_agent_common::TcpProbeStats;

use crate::{hist, percpu::this_cpu, skb::Sock};

#[map]
static TCP_PROBE: PerCpuArray<TcpProbeStats> = PerCpuArray::with_max_entries(1, 0);

/// `trace_tcp_probe(sk, skb)` at the top of tcp_rcv_established()
/// (net/ipv4/tcp_input.c): every segment or ACK an established socket
/// receives. The socket's cached route names the device its flow uses
/// (the skb, possibly taken from the socket's backlog, is no safe guide).
#[btf_tracepoint(function = "tcp_probe")]
pub fn tcp_probe(ctx: BtfTracePointContext) -> i32 {
    let sk = Sock::new(ctx.arg(0));
    if !sk.route_dev().is_traced() {
        return 0;
    }
    if let Some(s) = this_cpu(&TCP_PROBE) {
        hist::add(&mut s.srtt_us, (sk.srtt_us() >> 3) as u64);
        hist::add(&mut s.cwnd, sk.cwnd() as u64);
    }
    0
}
