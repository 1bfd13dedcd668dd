//! The NAPI family's part of a period: the `napi` block (docs/ndjson.md),
//! the device's NAPI polls, in all and per instance.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toe_agent_common::{NapiIdStats, NapiStats};

use crate::model::summary::HistSummary;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub polls: u64,
    pub work: HistSummary,
    /// Duration of each poll in a NET_RX softirq (absent from earlier files).
    #[serde(default)]
    pub poll_ns: HistSummary,
    pub budget_exhausted: u64,
    pub by_id: Vec<NapiInstance>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NapiInstance {
    pub napi_id: u32,
    pub polls: u64,
    pub work: u64,
    pub budget_exhausted: u64,
    pub budget: u64,
}

impl Part {
    /// From the family's two maps: its totals, and its counts by napi_id.
    pub(crate) fn of(n: &NapiStats, by_id: &BTreeMap<u32, NapiIdStats>) -> Part {
        let work = HistSummary::from_hist(&n.work);
        Part {
            polls: work.count,
            work,
            poll_ns: HistSummary::from_hist(&n.poll_ns),
            budget_exhausted: n.budget_exhausted,
            by_id: by_id
                .iter()
                .map(|(id, s)| NapiInstance {
                    napi_id: *id,
                    polls: s.polls,
                    work: s.work,
                    budget_exhausted: s.budget_exhausted,
                    budget: s.budget,
                })
                .collect(),
        }
    }
}
