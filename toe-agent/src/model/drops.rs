//! Drops by reason: the numbers the kernel counts in, the names its BTF
//! gives them. The names are a fact of the running kernel (each version
//! adds reasons), learnt once when the probes attach; a recording carries
//! them as text.
use std::{
    collections::BTreeMap,
    sync::{OnceLock, RwLock},
};

use serde::{Deserialize, Serialize};
use toe_agent_common::DROP_REASONS;

fn names() -> &'static RwLock<BTreeMap<u32, String>> {
    static NAMES: OnceLock<RwLock<BTreeMap<u32, String>>> = OnceLock::new();
    NAMES.get_or_init(Default::default)
}

/// This kernel's `enum skb_drop_reason` names, without their prefix.
pub(crate) fn set_reason_names(values: impl IntoIterator<Item = (u32, String)>) {
    if let Ok(mut n) = names().write() {
        n.extend(values);
    }
}

/// The name of reason `v`: the kernel's, or its number when the kernel's
/// BTF did not say. The last slot holds every value past the others.
pub(crate) fn reason_name(v: usize) -> String {
    if v == DROP_REASONS - 1 {
        return "other".into();
    }
    names()
        .read()
        .ok()
        .and_then(|n| n.get(&(v as u32)).cloned())
        .unwrap_or_else(|| format!("reason_{v}"))
}

/// Packets of the device the stack dropped in a period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Drops {
    pub total: u64,
    /// Reasons that dropped something, by name.
    pub by_reason: BTreeMap<String, u64>,
}

impl Drops {
    pub(crate) fn from(by_reason: &[u64; DROP_REASONS]) -> Drops {
        let by_reason: BTreeMap<String, u64> = by_reason
            .iter()
            .enumerate()
            .filter(|(_, n)| **n != 0)
            .map(|(v, n)| (reason_name(v), *n))
            .collect();
        Drops {
            total: by_reason.values().sum(),
            by_reason,
        }
    }
}
