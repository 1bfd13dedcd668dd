//! Drop reasons: the numbers the kernel counts in, the names its BTF
//! gives them. The names are a fact of the running kernel (each version
//! adds reasons), learnt once when the probes attach; a recording carries
//! them as text.
use std::{
    collections::BTreeMap,
    sync::{OnceLock, RwLock},
};

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
