//! The transmit family's part of a period: the `tx` block
//! (docs/ndjson.md), skbs as the stack queues them and as the driver is
//! handed them.
use serde::{Deserialize, Serialize};
use toe_agent_common::{GSO_CLASSES, GSO_OTHER, GSO_TCP4, GSO_TCP6, TxStats};

use crate::model::summary::{Csum, HistSummary, queues, split};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub queued_skbs: u64,
    pub xmit_skbs: u64,
    /// Sum over xmit skbs of max(gso_segs, 1).
    pub wire_segments: u64,
    /// Sum of lengths handed to the driver (with the link-layer header).
    pub bytes: u64,
    pub queued_len: HistSummary,
    pub xmit_len: HistSummary,
    pub segs_per_queued: HistSummary,
    pub segs_per_xmit: HistSummary,
    /// `ip_summed` at `net_dev_start_xmit`: what the driver is asked to do.
    pub csum: Csum,
    /// `ip_summed` at `net_dev_queue`.
    pub queued_csum: Csum,
    pub queues: Vec<(u32, u64)>,
    /// Multi-segment skbs at net_dev_queue and at net_dev_start_xmit, by
    /// GSO class (absent from earlier files).
    #[serde(default)]
    pub gso_queued: GsoClasses,
    #[serde(default)]
    pub gso_xmit: GsoClasses,
    /// `gso_size` of the multi-segment skbs handed to the driver: what
    /// the device is asked to cut them at (absent from earlier files).
    #[serde(default)]
    pub xmit_gso_size: HistSummary,
}

/// Multi-segment skbs by `gso_type` class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GsoClasses {
    pub tcp4: u64,
    pub tcp6: u64,
    /// UDP GSO, tunnels without TCP, anything else.
    pub other: u64,
}

impl Part {
    pub(crate) fn of(t: &TxStats) -> Part {
        let xmit_len = HistSummary::from_hist(&t.xmit_len);
        let segs_per_xmit = HistSummary::from_hist(&t.segs_per_xmit);
        let queued_len = HistSummary::from_hist(&t.queued_len);
        Part {
            queued_skbs: queued_len.count,
            xmit_skbs: xmit_len.count,
            wire_segments: segs_per_xmit.sum,
            bytes: xmit_len.sum,
            queued_len,
            xmit_len,
            segs_per_queued: HistSummary::from_hist(&t.segs_per_queued),
            segs_per_xmit,
            csum: Csum::of(&t.xmit_csum),
            queued_csum: Csum::of(&t.queued_csum),
            queues: queues(&t.queue),
            gso_queued: GsoClasses::of(&t.queued_gso),
            gso_xmit: GsoClasses::of(&t.xmit_gso),
            xmit_gso_size: HistSummary::from_hist(&t.xmit_gso_size),
        }
    }

    /// Segments the stack asked for at net_dev_queue (`gso_segs`): whole
    /// even when net_dev_start_xmit is sampled. The driver's count where
    /// it is larger (classic tracepoints have no gso_segs at the queue).
    pub(crate) fn whole_segments(&self) -> u64 {
        self.segs_per_queued.sum.max(self.wire_segments)
    }
}

impl GsoClasses {
    fn of(c: &[u64; GSO_CLASSES]) -> Self {
        GsoClasses {
            tcp4: c[GSO_TCP4],
            tcp6: c[GSO_TCP6],
            other: c[GSO_OTHER],
        }
    }

    pub fn tcp(&self) -> u64 {
        self.tcp4 + self.tcp6
    }

    /// Counts by class, as a split value.
    pub(crate) fn by_class(&self) -> Vec<(String, u64)> {
        split(&[("tcp4", self.tcp4), ("tcp6", self.tcp6), ("other", self.other)])
    }
}
