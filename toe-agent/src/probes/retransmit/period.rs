//! The retransmit family's part of a period's `tcp` block
//! (docs/ndjson.md): TCP retransmissions of sockets routed over the
//! device.
use serde::{Deserialize, Serialize};
use toe_agent_common::RetransmitStats;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// skbs retransmitted.
    pub retransmits: u64,
    /// The segments they carried.
    pub retransmitted_segments: u64,
}

impl Part {
    pub(crate) fn of(r: &RetransmitStats) -> Part {
        Part {
            retransmits: r.skbs,
            retransmitted_segments: r.segments,
        }
    }
}
