//! NAPI polls of the traced device: `napi:napi_poll` after each poll in
//! __napi_poll() (net/core/dev.c), with the packets processed (`work`) and
//! the budget.
pub(crate) mod period;

use crate::{
    kernel::{btf::OffsetGroup, collect::Counters},
    model::catalogue::{Needs, Quantity, Unit},
};

use super::{Family, Spec};

pub(super) const FAMILY: Family = Family {
    name: "NAPI",
    programs: &[Spec::btf("napi_poll").or_classic("napi", "napi_poll_tp")],
    reads: &[OffsetGroup::Napi, OffsetGroup::Dev],
    learn: None,
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
            "napi.poll_ns",
            "toe_napi_poll_duration_seconds",
            "NAPI poll duration",
            "Duration of each NAPI poll of the interface in a NET_RX softirq.",
            Unit::Nanoseconds,
            Needs::Always,
            |b| &b.napi.poll_ns,
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

// How the family's map values sum over CPUs and difference over time.
crate::kernel::collect::counters!(toe_agent_common::NapiStats {
    work,
    budget_exhausted,
    poll_ns
} rest: last_poll_ts);

impl Counters for toe_agent_common::NapiIdStats {
    fn zero() -> Self {
        toe_agent_common::NapiIdStats::default()
    }
    fn add(&mut self, other: &Self) {
        self.polls.add(&other.polls);
        self.work.add(&other.work);
        self.budget_exhausted.add(&other.budget_exhausted);
        // A setting, not a counter: keep the latest non-zero one.
        self.budget = self.budget.max(other.budget);
    }
    fn sub(&self, earlier: &Self) -> Self {
        toe_agent_common::NapiIdStats {
            polls: self.polls.sub(&earlier.polls),
            work: self.work.sub(&earlier.work),
            budget_exhausted: self.budget_exhausted.sub(&earlier.budget_exhausted),
            budget: self.budget,
        }
    }
    /// An instance that was not polled in a period drops out of it.
    fn idle(&self) -> bool {
        self.polls == 0
    }
}
