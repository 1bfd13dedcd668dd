//! Offload verdicts: what the measurements say happened, against what the
//! device's feature flags say should happen. Pure functions of a period's
//! [`Blocks`] and a [`Device`]; the rules and the kernel code they rest on
//! are in docs/verdicts.md.
//!
//! TCP's offloads are judged on TCP: packets of other protocols are counted
//! in the blocks (`non_tcp`, `gso_*.other`) and left out here, so that UDP
//! bulk on the same device cannot pass for a TSO or GRO fault.
use serde::{Deserialize, Serialize};
use toe_agent_common::HANDOFF_HOOK_NAMES;

use crate::{
    model::class::DeviceClass,
    model::units::group,
    model::{
        period::Blocks,
        summary::{Csum, HistSummary},
    },
    probes::gro::period::GroResults,
    sys::ethtool::Features,
};

/// Fewer packets than this in a period: not enough to judge.
pub(crate) const MIN_PACKETS: u64 = 100;
/// NET_RX softirq share of one CPU above which the seed manual worries.
pub(crate) const NET_RX_SHARE_PCT: f64 = 5.0;
/// The largest skb GSO builds without BIG TCP (include/linux/netdevice.h,
/// `GSO_LEGACY_MAX_SIZE`).
const GSO_MAX_SIZE: u64 = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Offload {
    TxSegmentation,
    TxChecksum,
    RxCoalescing,
    RxChecksum,
    Rss,
}

impl Offload {
    pub const ALL: [Offload; 5] = [
        Offload::TxSegmentation,
        Offload::TxChecksum,
        Offload::RxCoalescing,
        Offload::RxChecksum,
        Offload::Rss,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Offload::TxSegmentation => "tx_segmentation",
            Offload::TxChecksum => "tx_checksum",
            Offload::RxCoalescing => "rx_coalescing",
            Offload::RxChecksum => "rx_checksum",
            Offload::Rss => "rss",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    /// The NIC does it.
    Hardware,
    /// The host behind a paravirtual device does it (in its own silicon or
    /// on its CPU: a guest cannot tell which).
    Host,
    /// The kernel does it on the CPU.
    Software,
    /// The skb crossed a virtual device intact; the work is done (or was
    /// skipped) by whatever comes next, or came before.
    Deferred,
    /// Nobody does it.
    Off,
    /// No traffic of the kind to judge on.
    NotExercised,
    /// The hook that would show it is not attached (left out by `--per-skb`,
    /// or missing from the kernel).
    NotMeasured,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Hardware => "hardware",
            Mechanism::Host => "host",
            Mechanism::Software => "software",
            Mechanism::Deferred => "deferred",
            Mechanism::Off => "off",
            Mechanism::NotExercised => "not_exercised",
            Mechanism::NotMeasured => "not_measured",
        }
    }
}

/// The ethtool feature that governs an offload, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Configured {
    pub feature: String,
    pub requested: bool,
    pub active: bool,
    pub fixed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub offload: Offload,
    pub mechanism: Mechanism,
    /// None when the device's features could not be read.
    pub configured: Option<Configured>,
    /// The configuration and the observation disagree.
    pub mismatch: bool,
    pub evidence: String,
}

/// Which of the per-segment views the attached probes give. Only these
/// hooks see what the NIC did to each packet: the checksum state and queue
/// it reported and whether it coalesced (the driver hand-off, before GRO),
/// and the skbs the driver was given after software GSO
/// (`net_dev_start_xmit`). Everything else is counted per skb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Coverage {
    /// Some driver hand-off hook is attached.
    pub handoff: bool,
    /// Hand-off hooks that are not attached while another is, as a bit per
    /// position in [`HANDOFF_HOOK_NAMES`]: a driver that uses one
    /// of them hands up packets nobody counts.
    pub handoff_missing: u8,
    /// `net_dev_start_xmit` is attached.
    pub driver_xmit: bool,
}

impl Default for Coverage {
    fn default() -> Self {
        Coverage {
            handoff: true,
            handoff_missing: 0,
            driver_xmit: true,
        }
    }
}

impl Coverage {
    /// The hand-off hooks that are not attached while others are.
    pub(crate) fn missing_handoffs(&self) -> Vec<&'static str> {
        HANDOFF_HOOK_NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.handoff_missing & (1 << i) != 0)
            .map(|(_, h)| *h)
            .collect()
    }
}

/// Why a per-segment view is missing, for evidence.
const UNMEASURED: &str = "not attached (--per-skb, or missing from this kernel)";

/// What the verdicts need to know about the device besides the counts.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    pub mtu: u32,
    pub driver: String,
    /// From the driver (docs/device-classes.md), or `--device-class`.
    pub class: DeviceClass,
    pub features: Option<Features>,
    /// Receive queues the device has (channels), when known.
    pub rx_queues: Option<u32>,
    /// Receive Packet Steering configured on some rx queue.
    pub rps: bool,
    /// What the attached probes can see.
    pub coverage: Coverage,
}

impl Default for Device {
    fn default() -> Self {
        Device {
            mtu: 0,
            driver: String::new(),
            class: DeviceClass::Virtual,
            features: None,
            rx_queues: None,
            rps: false,
            coverage: Coverage::default(),
        }
    }
}

impl Device {
    fn configured(&self, names: &[&str]) -> Option<Configured> {
        let f = self.features.as_ref()?;
        // The first feature of the list the device has and uses, else the
        // first it has at all.
        let pick = names
            .iter()
            .filter_map(|n| f.get(n))
            .find(|x| x.active)
            .or_else(|| names.iter().find_map(|n| f.get(n)))?;
        Some(Configured {
            feature: pick.name.clone(),
            requested: pick.requested,
            active: pick.active,
            fixed: pick.fixed(),
        })
    }

    fn driver_name(&self) -> &str {
        if self.driver.is_empty() {
            "driverless"
        } else {
            &self.driver
        }
    }

    /// Who did the work when it was left to the device: the mechanism, and
    /// its name for evidence.
    fn doer(&self, hardware: &str) -> (Mechanism, String) {
        match self.class {
            DeviceClass::Physical => (Mechanism::Hardware, hardware.to_string()),
            DeviceClass::Paravirtual => (
                Mechanism::Host,
                format!(
                    "the host behind the paravirtual {} device (whether the host used silicon cannot be seen from this guest)",
                    self.driver_name()
                ),
            ),
            DeviceClass::Virtual => (
                Mechanism::Deferred,
                format!(
                    "whatever is behind the {} virtual device",
                    self.driver_name()
                ),
            ),
        }
    }
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

fn kb(bytes: f64) -> String {
    if bytes >= 1024.0 {
        format!("{:.1} KB", bytes / 1024.0)
    } else {
        format!("{bytes:.0} B")
    }
}

/// Packets in `h` longer than half the MTU; fewer than [`MIN_PACKETS`] of
/// them is no bulk traffic, and the error is the evidence that says so.
fn bulk_traffic(
    n: u64,
    what: &str,
    h: &HistSummary,
    dev: &Device,
    so: &str,
) -> Result<u64, String> {
    let bulk = h.count_above(dev.mtu as u64 / 2);
    if bulk >= MIN_PACKETS {
        return Ok(bulk);
    }
    Err(format!(
        "{} {what}, only small ones (p99 {} B): {so}",
        group(n),
        group(h.p99)
    ))
}

fn verdict(
    offload: Offload,
    mechanism: Mechanism,
    configured: Option<Configured>,
    mismatch: bool,
    evidence: String,
) -> Verdict {
    Verdict {
        offload,
        mechanism,
        configured,
        mismatch,
        evidence,
    }
}

/// " although <feature> is on" / " although <feature> is off", for evidence.
fn although(c: &Option<Configured>) -> String {
    match c {
        Some(c) => format!(
            " although {} is {}",
            c.feature,
            if c.active { "on" } else { "off" }
        ),
        None => String::new(),
    }
}

/// Note a requested feature the kernel did not activate (it depends on another).
fn not_active_note(c: &Option<Configured>) -> String {
    match c {
        Some(c) if c.requested && !c.active => {
            format!(
                "; {} is requested but not active (it depends on another feature)",
                c.feature
            )
        }
        _ => String::new(),
    }
}

/// "; N <what> of other protocols not judged", when there are any;
/// `what` is a plural noun, made singular for one.
fn others_note(n: u64, what: &str) -> String {
    match n {
        0 => String::new(),
        1 => format!(
            "; 1 {} of another protocol not judged",
            what.trim_end_matches('s')
        ),
        n => format!("; {} {what} of other protocols not judged", group(n)),
    }
}

const TSO4: &[&str] = &["tx-tcp-segmentation"];
const TSO6: &[&str] = &["tx-tcp6-segmentation"];
const GSO: &[&str] = &["tx-generic-segmentation"];
const TX_CSUM: &[&str] = &[
    "tx-checksum-ip-generic",
    "tx-checksum-ipv4",
    "tx-checksum-ipv6",
    "tx-checksum-sctp",
];
const GRO: &[&str] = &["rx-gro"];
const HW_GRO: &[&str] = &["rx-gro-hw", "rx-lro"];
const RX_CSUM: &[&str] = &["rx-checksum"];
const RXHASH: &[&str] = &["rx-hashing"];

fn csum_shares(c: &Csum) -> (f64, f64, f64) {
    let t = c.total();
    (
        pct(c.unnecessary + c.complete, t),
        pct(c.none, t),
        pct(c.partial, t),
    )
}

mod rss;
mod rx;
mod tx;

pub(crate) use rss::rss;
pub(crate) use rx::{rx_checksum, rx_coalescing};
pub(crate) use tx::{tx_checksum, tx_segmentation};

/// The five verdicts on `b`: the blocks of a period's sampling windows
/// when the per-segment probes are sampled (docs/sampling.md).
pub(crate) fn judge(b: &Blocks, dev: &Device) -> Vec<Verdict> {
    let mut v = vec![
        tx_segmentation(b, dev),
        tx_checksum(b, dev),
        rx_coalescing(b, dev),
        rx_checksum(b, dev),
        rss(b, dev),
    ];
    // A period no window fell in (an interval shorter than the cycle):
    // the verdicts have nothing to go on, and "no traffic" would be untrue.
    let s = &b.sample;
    if s.partial() && s.fraction > 0.0 && s.secs == 0.0 {
        for v in &mut v {
            v.mechanism = Mechanism::NotMeasured;
            v.mismatch = false;
            v.evidence = format!(
                "no sampling window fell in this period: the per-segment probes run {:.0}% of the time (--sample {})",
                s.fraction * 100.0,
                s.fraction
            );
        }
    }
    v
}

/// A threshold from the seed manual, crossed in a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub check: String,
    pub value: f64,
    pub threshold: f64,
    pub message: String,
}

/// The seed manual's thresholds: NET_RX softirq above 5% of a CPU while
/// traffic flows, and NAPI polls that used their whole budget.
pub(crate) fn checks(b: &Blocks, secs: f64) -> Vec<Check> {
    let mut out = Vec::new();
    // Per-skb counts: whole even when the per-segment probes are sampled.
    let rx = b.rx.handoff.segments.max(b.rx.after_gro.segs_per_skb.sum);
    let traffic = rx + b.tx.xmit_skbs.max(b.tx.queued_skbs) >= MIN_PACKETS;
    if traffic && secs > 0.0 {
        let busiest = b.softirq.net_rx.per_cpu.iter().max_by_key(|c| c.time_ns);
        if let Some(c) = busiest {
            let share = 100.0 * c.time_ns as f64 / (secs * 1e9);
            if share > NET_RX_SHARE_PCT {
                out.push(Check {
                    check: "net_rx_softirq_share".into(),
                    value: share,
                    threshold: NET_RX_SHARE_PCT,
                    message: format!(
                        "NET_RX softirq took {share:.1}% of cpu{} during transfers (above {NET_RX_SHARE_PCT}%): receive processing is CPU-bound there",
                        c.cpu
                    ),
                });
            }
        }
    }
    if b.napi.budget_exhausted > 0 {
        out.push(Check {
            check: "napi_budget_exhausted".into(),
            value: b.napi.budget_exhausted as f64,
            threshold: 0.0,
            message: format!(
                "{} of {} NAPI polls used their whole budget: the device had more packets than a poll takes (net.core.netdev_budget, more queues)",
                group(b.napi.budget_exhausted),
                group(b.napi.polls)
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests;
