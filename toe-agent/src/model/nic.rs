//! The NIC's own word next to the agent's. Over each period the driver's
//! counters (the netdev qstats summed over the device's queues, and the
//! interface counters in /sys/class/net/<if>/statistics) are read beside
//! the probes. Where both describe the same packets, both figures are
//! shown with their ratio, and a disagreement beyond [`agree`]'s tolerance
//! is evidence: a flag on while the hardware ignores it, or coalescing
//! nobody admits to. No I/O here: `sys::nic` reads the counters.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{
    period::Blocks,
    units::group,
    verdict::{Check, Offload, Verdict},
};

/// What the driver counted over a period, and how it compares.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Nic {
    /// netdev qstats (Documentation/netlink/specs/netdev.yaml), summed
    /// over the device's queues: the increase over the period.
    pub qstats: BTreeMap<String, u64>,
    /// Why there are none: no netdev family in the kernel, or a driver
    /// without queue statistics (EOPNOTSUPP), as veth and tun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qstats_error: Option<String>,
    /// /sys/class/net/<if>/statistics: the increase over the period.
    pub counters: BTreeMap<String, u64>,
    /// The figures both sides have.
    pub reconcile: Vec<Reconciled>,
    /// The RX ring's size and its maximum, when the driver says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx_ring: Option<Ring>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ring {
    pub rx: u32,
    pub rx_max: u32,
}

/// One figure the driver and the agent both have.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reconciled {
    /// What both count.
    pub what: String,
    /// The offload whose verdict it bears on.
    pub offload: Offload,
    /// Where the driver's figure comes from: `qstats rx-packets`, ...
    pub source: String,
    pub nic: u64,
    pub agent: u64,
    /// nic / agent; 0 when the agent counted nothing.
    pub ratio: f64,
    pub agree: bool,
}

/// One figure both sides have.
fn reconciled(what: &str, offload: Offload, source: String, nic: u64, agent: u64) -> Reconciled {
    Reconciled {
        what: what.into(),
        offload,
        source,
        nic,
        agent,
        ratio: if agent == 0 {
            0.0
        } else {
            nic as f64 / agent as f64
        },
        agree: agree(nic, agent),
    }
}

/// Agreement: within 8 packets or 2% of the larger figure. The driver's
/// counters and the probes' maps are read one after the other, not at
/// one instant, and packets in flight between the driver's count and the
/// hand-off fall on either side of a period's edge.
pub(crate) fn agree(nic: u64, agent: u64) -> bool {
    let slack = (nic.max(agent) as f64 * 0.02).max(8.0);
    nic.abs_diff(agent) as f64 <= slack
}

/// Interface counters that say the NIC dropped packets before the CPU saw
/// them (include/uapi/linux/if_link.h, struct rtnl_link_stats64), and the
/// qstats that say the same per queue.
const DROPPED_BEFORE_CPU: &[&str] = &[
    "statistics rx_missed_errors",
    "statistics rx_fifo_errors",
    "qstats rx-hw-drops",
    "qstats rx-hw-drop-overruns",
    "qstats rx-alloc-fail",
];

impl Nic {
    /// The driver's counters for a period, compared with the agent's
    /// blocks of the same period.
    pub(crate) fn of(
        qstats: BTreeMap<String, u64>,
        qstats_error: Option<String>,
        counters: BTreeMap<String, u64>,
        b: &Blocks,
    ) -> Nic {
        let mut nic = Nic {
            qstats,
            qstats_error,
            counters,
            reconcile: Vec::new(),
            rx_ring: None,
        };
        nic.reconcile = nic.pairs(b);
        nic
    }

    /// With the RX ring's size and maximum, `(rx, rx_max)`.
    pub(crate) fn with_ring(mut self, ring: Option<(u32, u32)>) -> Nic {
        self.rx_ring = ring.map(|(rx, rx_max)| Ring { rx, rx_max });
        self
    }

    fn q(&self, name: &str) -> Option<u64> {
        self.qstats.get(name).copied()
    }

    /// Every figure the two sides share, by the driver's names.
    fn pairs(&self, b: &Blocks) -> Vec<Reconciled> {
        let mut out = self.rx_pairs(b);
        out.extend(self.tx_pairs(b));
        out
    }

    /// The receive figures: packets handed up, those hardware GRO
    /// coalesced, their checksum states.
    fn rx_pairs(&self, b: &Blocks) -> Vec<Reconciled> {
        let mut out = Vec::new();
        // rx-packets counts wire packets; a hardware-GRO packet is handed
        // up once for several of them (netdev.yaml, rx-hw-gro-wire-packets).
        let merged_away = self
            .q("rx-hw-gro-wire-packets")
            .zip(self.q("rx-hw-gro-packets"))
            .map_or(0, |(wire, skbs)| wire.saturating_sub(skbs));
        let handed_up = match self.q("rx-packets") {
            Some(n) => Some(("qstats rx-packets", n.saturating_sub(merged_away))),
            None => self
                .counters
                .get("rx_packets")
                .map(|&n| ("statistics rx_packets", n)),
        };
        if let Some((source, n)) = handed_up {
            out.push(reconciled(
                "packets handed up",
                Offload::RxCoalescing,
                source.into(),
                n,
                b.rx.handoff.segments,
            ));
        }
        if let Some(n) = self.q("rx-hw-gro-packets") {
            out.push(reconciled(
                "coalesced packets handed up",
                Offload::RxCoalescing,
                "qstats rx-hw-gro-packets".into(),
                n,
                b.rx.handoff.handoff_gso_size.count,
            ));
        }
        let csum = [
            (
                "rx-csum-unnecessary",
                "UNNECESSARY",
                b.rx.handoff.csum.unnecessary,
            ),
            ("rx-csum-complete", "COMPLETE", b.rx.handoff.csum.complete),
            ("rx-csum-none", "NONE", b.rx.handoff.csum.none),
        ];
        for (stat, state, agent) in csum {
            if let Some(n) = self.q(stat) {
                out.push(reconciled(
                    &format!("packets handed up CHECKSUM_{state}"),
                    Offload::RxChecksum,
                    format!("qstats {stat}"),
                    n,
                    agent,
                ));
            }
        }
        out
    }

    /// The transmit figures: skbs the driver was given with more than one
    /// segment (its TSO work), the segments they became on the wire, and
    /// the skbs it was to checksum.
    fn tx_pairs(&self, b: &Blocks) -> Vec<Reconciled> {
        let tso_skbs = b.tx.segs_per_xmit.count_above(1);
        let single = b.tx.xmit_skbs.saturating_sub(tso_skbs);
        let figures = [
            (
                "tx-hw-gso-packets",
                "skbs segmented by the NIC",
                Offload::TxSegmentation,
                tso_skbs,
            ),
            (
                "tx-hw-gso-wire-packets",
                "segments the NIC's TSO sent",
                Offload::TxSegmentation,
                b.tx.wire_segments.saturating_sub(single),
            ),
            (
                "tx-needs-csum",
                "skbs the NIC checksummed",
                Offload::TxChecksum,
                b.tx.csum.partial,
            ),
        ];
        figures
            .into_iter()
            .filter_map(|(stat, what, offload, agent)| {
                let n = self.q(stat)?;
                Some(reconciled(
                    what,
                    offload,
                    format!("qstats {stat}"),
                    n,
                    agent,
                ))
            })
            .collect()
    }

    /// Packets the NIC dropped before the CPU saw them, by counter.
    fn dropped_before_cpu(&self) -> Vec<(&'static str, u64)> {
        DROPPED_BEFORE_CPU
            .iter()
            .filter_map(|&name| {
                let n = match name.split_once(' ') {
                    Some(("qstats", stat)) => self.q(stat),
                    Some((_, counter)) => self.counters.get(counter).copied(),
                    None => None,
                }?;
                (n > 0).then_some((name, n))
            })
            .collect()
    }

    /// The disagreements and the drops before the CPU, as checks.
    pub(crate) fn checks(&self) -> Vec<Check> {
        let mut out: Vec<Check> = self
            .reconcile
            .iter()
            .filter(|r| !r.agree)
            .map(|r| Check {
                check: "nic_disagrees".into(),
                value: r.ratio,
                threshold: 1.0,
                message: format!(
                    "{}: the driver reports {} ({}), the agent counted {}",
                    r.what,
                    group(r.nic),
                    r.source,
                    group(r.agent)
                ),
            })
            .collect();
        let dropped = self.dropped_before_cpu();
        if !dropped.is_empty() {
            let largest = dropped.iter().map(|(_, n)| *n).max().unwrap_or(0);
            let by: Vec<String> = dropped
                .iter()
                .map(|(name, n)| format!("{name} +{}", group(*n)))
                .collect();
            let ring = match self.rx_ring {
                Some(r) if r.rx < r.rx_max => format!(
                    "; RX ring {} of a possible {}: a larger ring absorbs longer bursts",
                    r.rx, r.rx_max
                ),
                Some(r) => format!("; RX ring {} (its maximum)", r.rx),
                None => String::new(),
            };
            out.push(Check {
                check: "nic_dropped".into(),
                value: largest as f64,
                threshold: 0.0,
                message: format!(
                    "the NIC dropped packets before the CPU saw them: {}{ring}",
                    by.join(", ")
                ),
            });
        }
        // rx_dropped is not the NIC's alone: drivers count buffers they
        // could not get, and the core counts frames no protocol took
        // (net/core/dev.c, __netif_receive_skb_core(): dev_core_stats_
        // rx_dropped_inc()), an LLDP frame on most hosts.
        if let Some(&n) = self.counters.get("rx_dropped").filter(|n| **n > 0) {
            out.push(Check {
                check: "rx_dropped".into(),
                value: n as f64,
                threshold: 0.0,
                message: format!(
                    "rx_dropped +{}: dropped by the driver (no buffer) or by the stack (no protocol for the frame); the stack's own drops by reason are in drops",
                    group(n)
                ),
            });
        }
        out
    }

    /// Each verdict whose figures the driver contradicts says so, with
    /// which side each figure comes from.
    pub(crate) fn annotate(&self, verdicts: &mut [Verdict]) {
        for r in &self.reconcile {
            let Some(v) = verdicts.iter_mut().find(|v| v.offload == r.offload) else {
                continue;
            };
            if !r.agree {
                v.evidence.push_str(&format!(
                    "; the NIC disagrees on {}: the driver reports {} ({}), the probes saw {}",
                    r.what,
                    group(r.nic),
                    r.source,
                    group(r.agent)
                ));
            } else if r.nic > 0 && r.what != "packets handed up" {
                // Work done after the hooks (a NIC's TSO, its checksum
                // fill-in) the probes cannot see: the figure is the
                // driver's, and says so.
                v.evidence.push_str(&format!(
                    "; the driver's own count agrees: {} {} ({})",
                    group(r.nic),
                    r.what,
                    r.source
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::summary::{Csum, HistSummary};

    fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    fn blocks(handoffs: u64, coalesced: u64, unnecessary: u64) -> Blocks {
        let mut b = Blocks::default();
        b.rx.handoff.segments = handoffs;
        b.rx.handoff.handoff_gso_size = HistSummary {
            count: coalesced,
            ..HistSummary::default()
        };
        b.rx.handoff.csum = Csum {
            unnecessary,
            none: handoffs - unnecessary,
            ..Csum::default()
        };
        b
    }

    #[test]
    fn a_virtio_nic_agrees_with_the_probes() {
        // virtio_net reports rx-packets only (recorded on eth0 here).
        let qstats = map(&[("rx-packets", 1_000), ("rx-bytes", 9_000_000)]);
        let nic = Nic::of(qstats, None, BTreeMap::new(), &blocks(1_003, 0, 0));
        assert_eq!(nic.reconcile.len(), 1);
        let r = &nic.reconcile[0];
        assert_eq!((r.nic, r.agent, r.agree), (1_000, 1_003, true));
        assert_eq!(r.source, "qstats rx-packets");
        assert!(nic.checks().is_empty());
    }

    #[test]
    fn hardware_gro_nobody_admits_to_is_flagged() {
        // The driver says it merged nothing, yet half the hand-offs came
        // up coalesced: who coalesced?
        let qstats = map(&[
            ("rx-packets", 10_000),
            ("rx-hw-gro-packets", 0),
            ("rx-hw-gro-wire-packets", 0),
            ("rx-csum-unnecessary", 10_000),
        ]);
        let nic = Nic::of(
            qstats,
            None,
            BTreeMap::new(),
            &blocks(10_000, 5_000, 10_000),
        );
        let gro = nic
            .reconcile
            .iter()
            .find(|r| r.source == "qstats rx-hw-gro-packets")
            .unwrap();
        assert!(!gro.agree);
        let checks = nic.checks();
        assert_eq!(checks.len(), 1, "{checks:?}");
        assert_eq!(
            checks[0].message,
            "coalesced packets handed up: the driver reports 0 (qstats rx-hw-gro-packets), the agent counted 5,000"
        );
        let mut verdicts = vec![Verdict {
            offload: Offload::RxCoalescing,
            mechanism: crate::model::verdict::Mechanism::Software,
            configured: None,
            mismatch: false,
            evidence: String::new(),
        }];
        nic.annotate(&mut verdicts);
        assert!(
            verdicts[0]
                .evidence
                .contains("the NIC disagrees on coalesced packets")
        );
    }

    #[test]
    fn hardware_gro_wire_packets_are_not_hand_offs() {
        // 1,000 wire packets merged into 100 skbs, 50 more not merged:
        // 150 hand-offs, and the driver's rx-packets says 1,050.
        let qstats = map(&[
            ("rx-packets", 1_050),
            ("rx-hw-gro-packets", 100),
            ("rx-hw-gro-wire-packets", 1_000),
        ]);
        let nic = Nic::of(qstats, None, BTreeMap::new(), &blocks(150, 100, 0));
        assert!(nic.reconcile.iter().all(|r| r.agree), "{:?}", nic.reconcile);
        assert_eq!(nic.reconcile[0].nic, 150);
    }

    #[test]
    fn interface_counters_stand_in_without_qstats_and_drops_are_named() {
        let counters = map(&[
            ("rx_packets", 500),
            ("rx_missed_errors", 12),
            ("rx_dropped", 3),
        ]);
        let err = Some("Operation not supported (os error 95)".to_string());
        let nic = Nic::of(BTreeMap::new(), err, counters, &blocks(500, 0, 0))
            .with_ring(Some((512, 4096)));
        assert_eq!(nic.reconcile[0].source, "statistics rx_packets");
        assert!(nic.reconcile[0].agree);
        let checks = nic.checks();
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[0].check, "nic_dropped");
        assert!(
            checks[1]
                .message
                .starts_with("rx_dropped +3: dropped by the driver")
        );
        assert!(
            checks[0]
                .message
                .contains("statistics rx_missed_errors +12"),
            "{}",
            checks[0].message
        );
    }

    /// The transmit pairs and the checksum states: a NIC that says it
    /// segmented and checksummed what the probes saw leave as TSO agrees;
    /// one whose checksum count is short disagrees, on that figure only.
    #[test]
    fn transmit_and_checksum_figures_are_paired() {
        let mut b = blocks(1_000, 0, 900);
        b.tx.xmit_skbs = 110;
        b.tx.wire_segments = 10 + 100 * 44;
        b.tx.segs_per_xmit = HistSummary {
            count: 110,
            buckets: vec![(1, 10), (47, 100)],
            ..HistSummary::default()
        };
        b.tx.csum.partial = 110;
        let qstats = map(&[
            ("rx-csum-unnecessary", 900),
            ("rx-csum-none", 100),
            ("tx-hw-gso-packets", 100),
            ("tx-hw-gso-wire-packets", 4_400),
            ("tx-needs-csum", 60),
        ]);
        let nic = Nic::of(qstats, None, BTreeMap::new(), &b);
        let by: BTreeMap<&str, bool> = nic
            .reconcile
            .iter()
            .map(|r| (r.source.as_str(), r.agree))
            .collect();
        assert_eq!(
            by,
            BTreeMap::from([
                ("qstats rx-csum-none", true),
                ("qstats rx-csum-unnecessary", true),
                ("qstats tx-hw-gso-packets", true),
                ("qstats tx-hw-gso-wire-packets", true),
                ("qstats tx-needs-csum", false),
            ])
        );
        let checks = nic.checks();
        assert_eq!(checks.len(), 1);
        assert!(
            checks[0]
                .message
                .starts_with("skbs the NIC checksummed: the driver reports 60")
        );
    }

    #[test]
    fn tolerance_is_eight_packets_or_two_percent() {
        assert!(agree(0, 8) && !agree(0, 9));
        assert!(agree(10_000, 10_200) && !agree(10_000, 10_300));
    }
}
