//! Every quantity the agent measures, declared once: its place in the
//! period model (and so in NDJSON), its Prometheus family, unit, help text
//! and the hooks it comes from. The sinks iterate this list: the view's
//! detail section, the Prometheus exposition, `report --compare`, the plots
//! and the table in docs/metrics.md. A test renders every sink and fails
//! when an entry is missing from one.
//!
//! The entries themselves live with their probe family
//! (`crate::probes::<family>`); `crate::probes::quantities()` strings them
//! together.
//! Families that are not quantities of a period (verdicts, the device, the
//! agent's own cost) are declared here, in [`OTHER_FAMILIES`].
use crate::model::{
    period::Blocks,
    summary::{Csum, HistSummary, split},
    verdict::Coverage,
};

/// What one measurement unit of a quantity is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Packets,
    Skbs,
    Bytes,
    Segments,
    Polls,
    Runs,
    Nanoseconds,
    Microseconds,
}

impl Unit {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Unit::Packets => "packets",
            Unit::Skbs => "skbs",
            Unit::Bytes => "bytes",
            Unit::Segments => "segments",
            Unit::Polls => "polls",
            Unit::Runs => "runs",
            Unit::Nanoseconds => "ns",
            Unit::Microseconds => "µs",
        }
    }

    /// Prometheus wants base units: nanoseconds are exported as seconds.
    pub(crate) fn prometheus_scale(self) -> f64 {
        match self {
            Unit::Nanoseconds => 1e-9,
            Unit::Microseconds => 1e-6,
            _ => 1.0,
        }
    }
}

/// The hooks a quantity needs: without them it is not measured (rather
/// than zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Needs {
    /// A per-skb hook, attached in every mode.
    Always,
    /// The driver hand-off hooks (left out by `--per-skb`).
    Handoff,
    /// `net_dev_start_xmit` (left out by `--per-skb`).
    DriverXmit,
}

/// How the value is read from a period.
#[derive(Clone, Copy)]
pub(crate) enum Value {
    /// One count.
    Count(fn(&Blocks) -> u64),
    /// Counts by a label (`key`): checksum states, queues, hooks, CPUs.
    Split {
        key: &'static str,
        of: fn(&Blocks) -> Vec<(String, u64)>,
    },
    /// A distribution.
    Hist(fn(&Blocks) -> &HistSummary),
}

/// Does the quantity belong to the traced device, or to the whole host
/// (softirqs serve every device)?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Device,
    Host,
}

#[derive(Clone, Copy)]
pub(crate) struct Quantity {
    /// Its path in an NDJSON period record (`rx.segments`); the name the
    /// view's detail section and `report --compare` show.
    pub(crate) path: &'static str,
    /// Its Prometheus family. Entries may share one, told apart by `labels`.
    pub(crate) metric: &'static str,
    pub(crate) labels: &'static [(&'static str, &'static str)],
    /// A title for the view and the plots.
    pub(crate) title: &'static str,
    pub(crate) help: &'static str,
    pub(crate) unit: Unit,
    pub(crate) value: Value,
    pub(crate) needs: Needs,
    pub(crate) scope: Scope,
}

impl Quantity {
    /// A count at the top level of the device's quantities.
    pub(crate) const fn count(
        path: &'static str,
        metric: &'static str,
        title: &'static str,
        help: &'static str,
        unit: Unit,
        needs: Needs,
        of: fn(&Blocks) -> u64,
    ) -> Quantity {
        Quantity {
            path,
            metric,
            labels: &[],
            title,
            help,
            unit,
            value: Value::Count(of),
            needs,
            scope: Scope::Device,
        }
    }

    pub(crate) const fn hist(
        path: &'static str,
        metric: &'static str,
        title: &'static str,
        help: &'static str,
        unit: Unit,
        needs: Needs,
        of: fn(&Blocks) -> &HistSummary,
    ) -> Quantity {
        Quantity {
            path,
            metric,
            labels: &[],
            title,
            help,
            unit,
            value: Value::Hist(of),
            needs,
            scope: Scope::Device,
        }
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one declaration per entry, in the order of the others"
    )]
    pub(crate) const fn split(
        path: &'static str,
        metric: &'static str,
        title: &'static str,
        help: &'static str,
        unit: Unit,
        needs: Needs,
        key: &'static str,
        of: fn(&Blocks) -> Vec<(String, u64)>,
    ) -> Quantity {
        Quantity {
            path,
            metric,
            labels: &[],
            title,
            help,
            unit,
            value: Value::Split { key, of },
            needs,
            scope: Scope::Device,
        }
    }

    /// The same entry with fixed labels on its series.
    pub(crate) const fn with(mut self, labels: &'static [(&'static str, &'static str)]) -> Self {
        self.labels = labels;
        self
    }

    /// The same entry, host-wide.
    pub(crate) const fn host(mut self) -> Self {
        self.scope = Scope::Host;
        self
    }

    /// Do probes with this coverage measure the quantity?
    pub(crate) fn measured(&self, c: Coverage) -> bool {
        match self.needs {
            Needs::Always => true,
            Needs::Handoff => c.handoff,
            Needs::DriverXmit => c.driver_xmit,
        }
    }

    /// Prometheus kind of the family.
    pub(crate) fn is_histogram(&self) -> bool {
        matches!(self.value, Value::Hist(_))
    }
}

/// Counts by checksum state, as a split value.
pub(crate) fn by_state(c: &Csum) -> Vec<(String, u64)> {
    split(&[
        ("none", c.none),
        ("unnecessary", c.unnecessary),
        ("complete", c.complete),
        ("partial", c.partial),
    ])
}

/// Counts by queue index.
pub(crate) fn by_queue(q: &[(u32, u64)]) -> Vec<(String, u64)> {
    q.iter().map(|(i, n)| (i.to_string(), *n)).collect()
}

/// A Prometheus family that is not a quantity of a period.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MetricFamily {
    pub(crate) metric: &'static str,
    pub(crate) help: &'static str,
    pub(crate) counter: bool,
    /// Its labels, for the docs.
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the docs table's test"))]
    pub(crate) labels: &'static str,
}

macro_rules! families {
    ($($id:ident: $metric:literal, $kind:ident, $labels:literal, $help:literal;)+) => {
        $(pub(crate) const $id: MetricFamily = MetricFamily {
            metric: $metric,
            help: $help,
            counter: families!(@counter $kind),
            labels: $labels,
        };)+
        #[cfg(test)]
        pub(crate) const OTHER_FAMILIES: &[MetricFamily] = &[$($id),+];
    };
    (@counter counter) => { true };
    (@counter gauge) => { false };
}

families! {
    BUILD_INFO: "toe_build_info", gauge, "version, kernel",
        "Agent version and kernel.";
    IFACE_UP: "toe_iface_up", gauge, "iface",
        "1 while the interface exists and its probes are attached.";
    PROBE_ATTACHED: "toe_probe_attached", gauge, "iface, probe, hook, state",
        "1 for each probe attached (state attached on its BTF tracepoint, degraded on its classic fallback), 0 for one left out or failed.";
    FEATURE_INFO: "toe_feature_info", gauge, "iface, feature, active, requested, fixed",
        "1 for each offload feature of the device with its state, for comparing hosts (count by (active) (toe_feature_info{feature=\"rx-gro\"})).";
    SYSCTL_INFO: "toe_sysctl_info", gauge, "name, value",
        "1 for each offload-related sysctl with its value, for comparing hosts.";
    NIC_AGREES: "toe_nic_agrees", gauge, "iface, offload, what, source",
        "1 when the driver's own counter (source) and the probes agree on a figure in the newest reading (docs/ndjson.md, nic), 0 when they do not.";
    NIC_RATIO: "toe_nic_ratio", gauge, "iface, offload, what, source",
        "The driver's figure over the probes' in the newest reading.";
    SAMPLE_FRACTION: "toe_sample_fraction", gauge, "iface",
        "The share of time the per-segment probes run (--sample; 0 with --per-skb): the counters fed by the driver hand-off, GRO's outcome and net_dev_start_xmit count only the sampling windows (docs/sampling.md).";
    SAMPLED_SECONDS: "toe_sampled_seconds", counter, "iface",
        "Time the sampling windows were open: the per-segment counters' rate within the windows is their increase over this one's.";
    DEVICE_INFO: "toe_device_info", gauge, "iface, driver, device_class",
        "Driver and device class (physical, paravirtual, virtual) the verdicts judge the device as.";
    SOFTWARE_FALLBACK: "toe_software_fallback", counter, "iface, offload",
        "Packets whose offload work was done by the CPU (per offload verdict).";
    OFFLOAD_VERDICT: "toe_offload_verdict", gauge, "iface, offload, mechanism, configured, mismatch",
        "1 for the current verdict of each offload (over the verdict window).";
    OFFLOAD_MISMATCH: "toe_offload_mismatch", gauge, "iface, offload",
        "1 when an offload's configuration and observation disagree.";
    AGENT_CPU: "toe_agent_cpu_seconds", counter, "",
        "CPU time of the agent (user + system).";
    AGENT_RSS: "toe_agent_resident_memory_bytes", gauge, "",
        "Resident set size of the agent.";
    BPF_MISSED: "toe_bpf_program_missed_runs", counter, "",
        "Runs of the agent's BPF programs the kernel skipped (recursion): events not seen.";
    BPF_RUNS: "toe_bpf_program_runs", counter, "",
        "Runs of the agent's BPF programs (kernel BPF statistics).";
    BPF_RUN_TIME: "toe_bpf_program_run_seconds", counter, "",
        "Run time of the agent's BPF programs.";
}
