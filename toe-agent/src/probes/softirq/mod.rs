//! NET_RX and NET_TX softirq time per CPU: `irq:softirq_entry`,
//! `softirq_exit` and `softirq_raise` (kernel/softirq.c,
//! handle_softirqs() and raise_softirq_irqoff()). Host-wide: a softirq
//! serves every device, so these are not per interface. The programs read
//! only the tracepoint's `vec_nr`, no kernel structure.
pub(crate) mod period;

use crate::model::{
    catalogue::{Needs, Quantity, Unit},
    period::Blocks,
};

use super::{Family, Spec};

const NET_RX: &[(&str, &str)] = &[("vec", "net_rx")];
const NET_TX: &[(&str, &str)] = &[("vec", "net_tx")];

pub(super) const FAMILY: Family = Family {
    name: "softirq",
    programs: &[
        Spec::btf("softirq_entry").or_classic("irq", "softirq_entry_tp"),
        Spec::btf("softirq_exit").or_classic("irq", "softirq_exit_tp"),
        // Its only figure is the raise latency, a distribution: it runs in
        // the sampling windows, and saves a clock read (45 ns here) on
        // every softirq raise of the host outside them.
        Spec::btf("softirq_raise")
            .or_classic("irq", "softirq_raise_tp")
            .windowed(),
    ],
    reads: &[],
    learn: None,
    quantities: &[
        time("softirq.net_rx.time_ns", NET_RX, |b| {
            b.softirq.net_rx.time_by_cpu()
        }),
        runs("softirq.net_rx.count", NET_RX, |b| b.softirq.net_rx.count),
        Quantity::hist(
            "softirq.net_rx.duration_ns",
            "toe_softirq_duration_seconds",
            "NET_RX softirq duration",
            "Duration of NET_RX/NET_TX softirq runs.",
            Unit::Nanoseconds,
            Needs::Always,
            |b| &b.softirq.net_rx.duration_ns,
        )
        .with(&[("vec", "net_rx")])
        .host(),
        Quantity::hist(
            "softirq.net_rx.raise_latency_ns",
            "toe_softirq_raise_latency_seconds",
            "NET_RX softirq raise-to-run latency",
            "Time from raising the NET_RX/NET_TX softirq to its run.",
            Unit::Nanoseconds,
            Needs::Always,
            |b| &b.softirq.net_rx.raise_latency_ns,
        )
        .with(&[("vec", "net_rx")])
        .host(),
        time("softirq.net_tx.time_ns", NET_TX, |b| {
            b.softirq.net_tx.time_by_cpu()
        }),
        runs("softirq.net_tx.count", NET_TX, |b| b.softirq.net_tx.count),
        Quantity::hist(
            "softirq.net_tx.duration_ns",
            "toe_softirq_duration_seconds",
            "NET_TX softirq duration",
            "Duration of NET_RX/NET_TX softirq runs.",
            Unit::Nanoseconds,
            Needs::Always,
            |b| &b.softirq.net_tx.duration_ns,
        )
        .with(&[("vec", "net_tx")])
        .host(),
        Quantity::hist(
            "softirq.net_tx.raise_latency_ns",
            "toe_softirq_raise_latency_seconds",
            "NET_TX softirq raise-to-run latency",
            "Time from raising the NET_RX/NET_TX softirq to its run.",
            Unit::Nanoseconds,
            Needs::Always,
            |b| &b.softirq.net_tx.raise_latency_ns,
        )
        .with(&[("vec", "net_tx")])
        .host(),
    ],
};

/// Time in the softirq, per CPU.
const fn time(
    path: &'static str,
    labels: &'static [(&'static str, &'static str)],
    of: fn(&Blocks) -> Vec<(String, u64)>,
) -> Quantity {
    Quantity::split(
        path,
        "toe_softirq_seconds",
        "softirq time per CPU",
        "Time spent in the NET_RX/NET_TX softirq, per CPU.",
        Unit::Nanoseconds,
        Needs::Always,
        "cpu",
        of,
    )
    .with(labels)
    .host()
}

/// Runs of the softirq.
const fn runs(
    path: &'static str,
    labels: &'static [(&'static str, &'static str)],
    of: fn(&Blocks) -> u64,
) -> Quantity {
    Quantity::count(
        path,
        "toe_softirq_runs",
        "softirq runs",
        "Runs of the NET_RX/NET_TX softirq handler.",
        Unit::Runs,
        Needs::Always,
        of,
    )
    .with(labels)
    .host()
}

// How the family's map value sums over CPUs and differences over time;
// the timestamps are program state, zero in sums and differences.
crate::kernel::collect::counters!(toe_agent_common::SoftirqStats {
    time_ns,
    count,
    duration,
    raise_latency
} rest: entry_ts, raise_ts);
