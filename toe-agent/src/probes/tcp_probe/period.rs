//! The tcp_probe family's part of a period's `tcp` block
//! (docs/ndjson.md): the state of the sockets receiving on the device.
use serde::{Deserialize, Serialize};
use toe_agent_common::TcpProbeStats;

use crate::model::summary::HistSummary;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// Smoothed RTT, µs, and congestion window, segments, sampled at each
    /// skb a socket receives on the device (absent from earlier files).
    #[serde(default)]
    pub srtt_us: HistSummary,
    #[serde(default)]
    pub cwnd: HistSummary,
}

impl Part {
    pub(crate) fn of(p: &TcpProbeStats) -> Part {
        Part {
            srtt_us: HistSummary::from_hist(&p.srtt_us),
            cwnd: HistSummary::from_hist(&p.cwnd),
        }
    }
}
