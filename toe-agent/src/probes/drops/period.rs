//! The drops family's part of a period: the `drops` block
//! (docs/ndjson.md), packets of the device the stack dropped, by reason.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toe_agent_common::DropStats;

use crate::model::drops::reason_name;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub total: u64,
    /// Reasons that dropped something, by name.
    pub by_reason: BTreeMap<String, u64>,
}

impl Part {
    pub(crate) fn of(d: &DropStats) -> Part {
        let by_reason: BTreeMap<String, u64> = d
            .by_reason
            .iter()
            .enumerate()
            .filter(|(_, n)| **n != 0)
            .map(|(v, n)| (reason_name(v), *n))
            .collect();
        Part {
            total: by_reason.values().sum(),
            by_reason,
        }
    }
}
