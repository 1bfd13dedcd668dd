//! Packets of the device the stack dropped, and why: `skb:kfree_skb` with
//! its `enum skb_drop_reason` (include/net/dropreason-core.h), whose names
//! are read from the running kernel's BTF, since every kernel version adds
//! reasons. Beside the NIC's own drop counters (the audit) and TCP's
//! retransmits, they tell a drop by the stack (and its cause) from one by
//! the NIC or the wire.
pub(crate) mod period;

use crate::{
    kernel::btf::{KernelBtf, OffsetGroup},
    model::{
        catalogue::{Needs, Quantity, Unit},
        drops,
    },
};

use super::{Family, Spec};

pub(super) const FAMILY: Family = Family {
    name: "drops",
    // The classic tracepoint has no device to filter on: no fallback.
    programs: &[Spec::btf("kfree_skb")],
    reads: &[OffsetGroup::Skb, OffsetGroup::Dev],
    learn: Some(learn),
    quantities: &[
        Quantity::count(
            "drops.total",
            "toe_drops",
            "packets dropped by the stack",
            "skbs of the interface the stack dropped (skb:kfree_skb).",
            Unit::Packets,
            Needs::Always,
            |b| b.drops.total,
        ),
        Quantity::split(
            "drops.by_reason",
            "toe_drops_by_reason",
            "packets dropped, by reason",
            "skbs of the interface the stack dropped, by enum skb_drop_reason (names from the kernel's BTF).",
            Unit::Packets,
            Needs::Always,
            "reason",
            |b| {
                b.drops
                    .by_reason
                    .iter()
                    .map(|(k, n)| (k.clone(), *n))
                    .collect()
            },
        ),
    ],
};

/// The reason names of this kernel, for the period model to label counts.
fn learn(btf: &KernelBtf) {
    if let Ok(values) = btf.enum_values("skb_drop_reason") {
        drops::set_reason_names(values.into_iter().map(|(v, name)| {
            let short = name.strip_prefix("SKB_DROP_REASON_").unwrap_or(&name);
            (v, short.to_string())
        }));
    }
}

crate::kernel::collect::counters!(toe_agent_common::DropStats { by_reason });
