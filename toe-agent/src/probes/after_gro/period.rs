//! The after-GRO family's part of a period's `rx` block (docs/ndjson.md):
//! the skbs the stack receives, after GRO merged what it could.
use serde::{Deserialize, Serialize};
use toe_agent_common::SkbStats;

use crate::model::summary::{Csum, HistSummary, rx_queues};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// skbs delivered to the stack (after GRO).
    pub skbs: u64,
    /// Sum of `skb->len` after GRO (from the network header).
    pub bytes: u64,
    pub skb_len: HistSummary,
    pub segs_per_skb: HistSummary,
    /// `ip_summed` after GRO.
    pub skb_csum: Csum,
    /// `[queue, skbs]` (absent from files of earlier versions).
    #[serde(default)]
    pub skb_queues: Vec<(u32, u64)>,
    /// skbs whose driver recorded no receive queue (absent from earlier
    /// files).
    #[serde(default)]
    pub skb_queue_unrecorded: u64,
    /// The part of the above that is not TCP (absent from earlier files).
    #[serde(default)]
    pub non_tcp: NonTcpSkbs,
    /// Packets received as IP fragments (absent from earlier files).
    #[serde(default)]
    pub ip_fragments: u64,
}

/// skbs whose IP protocol is not TCP: counted, but left out of the
/// judgement of TCP's offloads. `rx.non_tcp` also holds the hand-off
/// family's count of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct NonTcpSkbs {
    /// skbs after GRO, and the segments they carry: the packets the driver
    /// handed up that were not TCP.
    pub skbs: u64,
    pub skb_segments: u64,
}

impl Part {
    pub(crate) fn of(s: &SkbStats) -> Part {
        let skb_len = HistSummary::from_hist(&s.skb_len);
        let (skb_queues, skb_queue_unrecorded) = rx_queues(&s.skb_queue);
        Part {
            skbs: skb_len.count,
            bytes: skb_len.sum,
            skb_len,
            segs_per_skb: HistSummary::from_hist(&s.segs_per_skb),
            skb_csum: Csum::of(&s.skb_csum),
            skb_queues,
            skb_queue_unrecorded,
            non_tcp: NonTcpSkbs {
                skbs: s.nontcp_skbs,
                skb_segments: s.nontcp_skb_segs,
            },
            ip_fragments: s.ip_fragments,
        }
    }
}
