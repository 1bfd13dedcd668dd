//! The TCP checksum family's part of a period's `rx` block
//! (docs/ndjson.md).
use serde::{Deserialize, Serialize};
use toe_agent_common::TcpStats;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// `tcp:tcp_bad_csum` hits for skbs received on the interface.
    pub bad_csum: u64,
}

impl Part {
    pub(crate) fn of(t: &TcpStats) -> Part {
        Part {
            bad_csum: t.bad_csum,
        }
    }
}
