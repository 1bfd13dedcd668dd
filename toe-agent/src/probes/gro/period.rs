//! The GRO family's part of a period's `rx` block (docs/ndjson.md): what
//! software GRO did with the packets handed to it.
use serde::{Deserialize, Serialize};
use toe_agent_common::{
    GRO_CONSUMED, GRO_HELD, GRO_MERGED, GRO_MERGED_FREE, GRO_NORMAL, GRO_RESULTS, GroStats,
};

use crate::model::summary::{HistSummary, split};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    /// Packets by GRO's result (absent from earlier files).
    #[serde(default, rename = "gro")]
    pub results: GroResults,
    /// How long GRO held the first packet of each merged skb, ns (absent
    /// from earlier files).
    #[serde(default, rename = "gro_hold_ns")]
    pub hold_ns: HistSummary,
}

/// Packets by what GRO returned for them (`gro_result_t`,
/// include/linux/netdevice.h): the evidence for why GRO did or did not
/// merge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GroResults {
    /// Merged into an skb GRO holds (GRO_MERGED, GRO_MERGED_FREE).
    pub merged: u64,
    /// Held as the first packet of a flow, for later ones to merge into.
    pub held: u64,
    /// Passed up as it was: not mergeable (another protocol, a flag, a
    /// checksum GRO could not trust) or flushed at once.
    pub normal: u64,
    /// Consumed (by a tunnel's GRO, for one).
    pub consumed: u64,
    /// A result this agent does not know.
    pub other: u64,
}

impl Part {
    pub(crate) fn of(g: &GroStats) -> Part {
        Part {
            results: GroResults::of(&g.result),
            hold_ns: HistSummary::from_hist(&g.hold_ns),
        }
    }
}

impl GroResults {
    fn of(r: &[u64; GRO_RESULTS]) -> Self {
        let known = GRO_CONSUMED + 1;
        GroResults {
            merged: r[GRO_MERGED] + r[GRO_MERGED_FREE],
            held: r[GRO_HELD],
            normal: r[GRO_NORMAL],
            consumed: r[GRO_CONSUMED],
            other: r[known..].iter().sum(),
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.merged + self.held + self.normal + self.consumed + self.other
    }

    /// Counts by result, as a split value.
    pub(crate) fn split(&self) -> Vec<(String, u64)> {
        split(&[
            ("merged", self.merged),
            ("held", self.held),
            ("normal", self.normal),
            ("consumed", self.consumed),
            ("other", self.other),
        ])
    }
}
