//! The hand-off family's part of a period's `rx` block (docs/ndjson.md):
//! every packet as the driver hands it to the stack, before GRO.
use serde::{Deserialize, Serialize};
use toe_agent_common::{
    HANDOFF_HOOKS, HOOK_NAPI_GRO_FRAGS, HOOK_NAPI_GRO_RECEIVE, HOOK_NETIF_RECEIVE_SKB,
    HOOK_NETIF_RECEIVE_SKB_LIST, HOOK_NETIF_RX, HandoffStats,
};

use crate::model::summary::{Csum, HistSummary, rx_queues, split};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// Packets handed up by the driver (before GRO).
    pub segments: u64,
    pub segment_len: HistSummary,
    /// `ip_summed` at the driver hand-off: what the NIC reported.
    pub csum: Csum,
    /// Which hook saw them.
    #[serde(rename = "handoff")]
    pub by_hook: Handoff,
    /// `gso_size` of hand-offs that already carried one (count = how many).
    pub handoff_gso_size: HistSummary,
    /// `[queue, segments]` for queues that received.
    pub queues: Vec<(u32, u64)>,
    /// Packets whose driver recorded no receive queue (absent from earlier
    /// files, whose `queues` held `queue_mapping` as is).
    #[serde(default)]
    pub queue_unrecorded: u64,
    /// The part of the above that is not TCP (absent from earlier files).
    #[serde(default)]
    pub non_tcp: NonTcpHandoffs,
}

/// Which driver hand-off hook saw the packets: NAPI/GRO versus backlog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    pub napi_gro_receive: u64,
    pub napi_gro_frags: u64,
    pub netif_receive_skb: u64,
    pub netif_receive_skb_list: u64,
    pub netif_rx: u64,
}

/// Hand-offs whose IP protocol is not TCP: counted, but left out of the
/// judgement of TCP's offloads. `rx.non_tcp` also holds the after-GRO
/// family's counts of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct NonTcpHandoffs {
    /// Hand-offs longer than the MTU (UDP GSO or GRO before the stack).
    pub handoff_large: u64,
}

impl Part {
    pub(crate) fn of(h: &HandoffStats) -> Part {
        let segment_len = HistSummary::from_hist(&h.segment_len);
        let (queues, queue_unrecorded) = rx_queues(&h.queue);
        Part {
            segments: segment_len.count,
            segment_len,
            csum: Csum::of(&h.segment_csum),
            by_hook: Handoff::of(&h.handoff_by_hook),
            handoff_gso_size: HistSummary::from_hist(&h.handoff_gso_size),
            queues,
            queue_unrecorded,
            non_tcp: NonTcpHandoffs {
                handoff_large: h.nontcp_handoff_large,
            },
        }
    }
}

impl Handoff {
    /// Counts by hook name (the tracepoint without `_entry`), as a split
    /// value.
    pub(crate) fn split(&self) -> Vec<(String, u64)> {
        split(&[
            ("napi_gro_receive", self.napi_gro_receive),
            ("napi_gro_frags", self.napi_gro_frags),
            ("netif_receive_skb", self.netif_receive_skb),
            ("netif_receive_skb_list", self.netif_receive_skb_list),
            ("netif_rx", self.netif_rx),
        ])
    }

    fn of(h: &[u64; HANDOFF_HOOKS]) -> Self {
        Handoff {
            napi_gro_receive: h[HOOK_NAPI_GRO_RECEIVE],
            napi_gro_frags: h[HOOK_NAPI_GRO_FRAGS],
            netif_receive_skb: h[HOOK_NETIF_RECEIVE_SKB],
            netif_receive_skb_list: h[HOOK_NETIF_RECEIVE_SKB_LIST],
            netif_rx: h[HOOK_NETIF_RX],
        }
    }
}
