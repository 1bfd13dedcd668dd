//! NAPI polls of the traced device: `napi:napi_poll` after each poll in
//! __napi_poll() (net/core/dev.c), with the packets processed (`work`) and
//! the budget.
use crate::{
    kernel::btf::OffsetGroup,
    model::catalogue::{Needs, Quantity, Unit},
};

use super::{Family, Spec};

pub(super) const FAMILY: Family = Family {
    name: "NAPI",
    programs: &[Spec::btf("napi_poll").or_classic("napi", "napi_poll_tp")],
    reads: &[OffsetGroup::Napi, OffsetGroup::Dev],
    quantities: &[
        Quantity::count(
            "napi.polls",
            "toe_napi_polls",
            "NAPI polls",
            "NAPI polls of the interface.",
            Unit::Polls,
            Needs::Always,
            |b| b.napi.polls,
        ),
        Quantity::count(
            "napi.budget_exhausted",
            "toe_napi_budget_exhausted",
            "NAPI polls that used their budget",
            "NAPI polls that used their whole budget.",
            Unit::Polls,
            Needs::Always,
            |b| b.napi.budget_exhausted,
        ),
        Quantity::split(
            "napi.by_id",
            "toe_napi_instance_polls",
            "NAPI polls per instance",
            "NAPI polls, by NAPI instance (napi_id; one per queue).",
            Unit::Polls,
            Needs::Always,
            "napi_id",
            |b| {
                b.napi
                    .by_id
                    .iter()
                    .map(|n| (n.napi_id.to_string(), n.polls))
                    .collect()
            },
        ),
        Quantity::split(
            "napi.by_id",
            "toe_napi_instance_packets",
            "NAPI packets per instance",
            "Packets processed by NAPI polls, by NAPI instance.",
            Unit::Packets,
            Needs::Always,
            "napi_id",
            |b| {
                b.napi
                    .by_id
                    .iter()
                    .map(|n| (n.napi_id.to_string(), n.work))
                    .collect()
            },
        ),
        Quantity::hist(
            "napi.work",
            "toe_napi_work_packets",
            "NAPI work per poll",
            "Packets processed per NAPI poll.",
            Unit::Packets,
            Needs::Always,
            |b| &b.napi.work,
        ),
    ],
};
