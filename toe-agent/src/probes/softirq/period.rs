//! The softirq family's part of a period: the `softirq` block
//! (docs/ndjson.md), NET_RX and NET_TX time per CPU, host-wide.
use serde::{Deserialize, Serialize};
use toe_agent_common::{Hist, SOFTIRQ_NET_RX, SOFTIRQ_NET_TX, SoftirqStats};

use crate::{kernel::collect::Counters, model::summary::HistSummary};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Part {
    pub net_rx: SoftirqVec,
    pub net_tx: SoftirqVec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SoftirqVec {
    pub time_ns: u64,
    pub count: u64,
    pub duration_ns: HistSummary,
    pub raise_latency_ns: HistSummary,
    /// CPUs that ran the softirq in the period.
    pub per_cpu: Vec<CpuTime>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuTime {
    pub cpu: u32,
    pub time_ns: u64,
    pub count: u64,
    /// Median and 99th percentile of this CPU's run durations (bucket bounds).
    pub duration_p50_ns: u64,
    pub duration_p99_ns: u64,
}

impl Part {
    /// From the map's value per CPU (indexed by CPU number).
    pub(crate) fn of(per_cpu: &[SoftirqStats]) -> Part {
        Part {
            net_rx: SoftirqVec::of(per_cpu, SOFTIRQ_NET_RX),
            net_tx: SoftirqVec::of(per_cpu, SOFTIRQ_NET_TX),
        }
    }
}

impl SoftirqVec {
    fn of(per_cpu: &[SoftirqStats], v: usize) -> SoftirqVec {
        let mut duration = Hist::ZERO;
        let mut latency = Hist::ZERO;
        let mut cpus = Vec::new();
        for (cpu, s) in per_cpu.iter().enumerate() {
            duration.add(&s.duration[v]);
            latency.add(&s.raise_latency[v]);
            if s.count[v] != 0 || s.time_ns[v] != 0 {
                let d = HistSummary::from_hist(&s.duration[v]);
                cpus.push(CpuTime {
                    cpu: cpu as u32,
                    time_ns: s.time_ns[v],
                    count: s.count[v],
                    duration_p50_ns: d.p50,
                    duration_p99_ns: d.p99,
                });
            }
        }
        SoftirqVec {
            time_ns: cpus.iter().map(|c| c.time_ns).sum(),
            count: cpus.iter().map(|c| c.count).sum(),
            duration_ns: HistSummary::from_hist(&duration),
            raise_latency_ns: HistSummary::from_hist(&latency),
            per_cpu: cpus,
        }
    }

    /// Time per CPU, as a split value.
    pub(crate) fn time_by_cpu(&self) -> Vec<(String, u64)> {
        self.per_cpu
            .iter()
            .map(|c| (c.cpu.to_string(), c.time_ns))
            .collect()
    }
}
