//! Offload verdicts: what the measurements say happened, against what the
//! device's feature flags say should happen. Pure functions of a period's
//! [`Blocks`] and a [`Device`]; the rules and the kernel code they rest on
//! are in docs/verdicts.md.
use serde::{Deserialize, Serialize};

use crate::{
    ethtool::Features,
    report::{Blocks, Csum, HistSummary},
    view::group,
};

/// Fewer packets than this in a period: not enough to judge.
pub const MIN_PACKETS: u64 = 100;
/// NET_RX softirq share of one CPU above which the seed manual worries.
pub const NET_RX_SHARE_PCT: f64 = 5.0;

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
    /// The kernel does it on the CPU.
    Software,
    /// The skb crossed a virtual device intact; the work is left to whatever is next.
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
pub struct Coverage {
    /// Some driver hand-off hook is attached.
    pub handoff: bool,
    /// `net_dev_start_xmit` is attached.
    pub driver_xmit: bool,
}

impl Default for Coverage {
    fn default() -> Self {
        Coverage {
            handoff: true,
            driver_xmit: true,
        }
    }
}

impl Coverage {
    /// From the probes' states: a hook that failed or was skipped gives nothing.
    pub fn of(status: &[crate::probes::ProbeStatus]) -> Coverage {
        let on = |names: &[&str]| {
            status
                .iter()
                .any(|s| names.contains(&s.name.as_str()) && s.status.counts())
        };
        Coverage {
            handoff: on(crate::probes::HANDOFF_HOOKS),
            driver_xmit: on(&["net_dev_start_xmit"]),
        }
    }
}

/// Why a per-segment view is missing, for evidence.
const UNMEASURED: &str = "not attached (--per-skb, or missing from this kernel)";

/// What the verdicts need to know about the device besides the counts.
#[derive(Debug, Clone, Default)]
pub struct Device {
    pub mtu: u32,
    pub driver: String,
    pub features: Option<Features>,
    /// Receive queues the device has (channels), when known.
    pub rx_queues: Option<u32>,
    /// Receive Packet Steering configured on some rx queue.
    pub rps: bool,
    /// What the attached probes can see.
    pub coverage: Coverage,
}

/// Drivers of virtual devices, which hand skbs on instead of to a wire.
const VIRTUAL_DRIVERS: &[&str] = &[
    "veth",
    "bridge",
    "bonding",
    "team",
    "vxlan",
    "geneve",
    "tun",
    "macvlan",
    "macvtap",
    "ipvlan",
    "dummy",
    "openvswitch",
    "vrf",
    "nlmon",
    "wireguard",
    "",
];

impl Device {
    pub fn is_virtual(&self) -> bool {
        VIRTUAL_DRIVERS.contains(&self.driver.as_str())
    }

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

/// Multi-segment skbs in a segments-per-skb histogram.
fn multi(h: &HistSummary) -> u64 {
    h.count - h.count_exact(1) - h.count_exact(0)
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

const TSO: &[&str] = &["tx-tcp-segmentation", "tx-tcp6-segmentation"];
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

pub fn tx_segmentation(b: &Blocks, dev: &Device) -> Verdict {
    let t = &b.tx;
    let cfg = dev.configured(TSO);
    let tso_on = cfg.as_ref().is_some_and(|c| c.active);
    let o = Offload::TxSegmentation;
    if t.queued_skbs < MIN_PACKETS && t.xmit_skbs < MIN_PACKETS {
        let e = format!("only {} skbs queued for transmission", group(t.queued_skbs));
        return verdict(o, Mechanism::NotExercised, cfg, false, e);
    }
    // Multi-segment skbs built by the stack; classic tracepoints have no
    // gso_segs at net_dev_queue, so fall back to "longer than the MTU".
    let link = dev.mtu as u64 + 64;
    let built = if t.segs_per_queued.count > 0 {
        multi(&t.segs_per_queued)
    } else {
        t.queued_len.count_above(link)
    };
    if !dev.coverage.driver_xmit {
        let e = format!(
            "net_dev_queue saw {} skbs averaging {}, {} with more than one segment; who segments them shows only at net_dev_start_xmit, {UNMEASURED}",
            group(t.queued_skbs),
            kb(t.queued_len.mean()),
            group(built)
        );
        return verdict(o, Mechanism::NotMeasured, cfg, false, e);
    }
    let intact = multi(&t.segs_per_xmit);
    if built == 0 && intact == 0 {
        let small = bulk_traffic(
            t.xmit_skbs,
            "skbs",
            &t.xmit_len,
            dev,
            "no bulk transfer to judge on",
        );
        if let Err(e) = small {
            return verdict(o, Mechanism::NotExercised, cfg, false, e);
        }
        let e = format!(
            "net_dev_queue saw {} skbs, none with more than one segment (largest {} B): the stack built MTU-sized packets, nobody segments{}{}",
            group(t.queued_skbs),
            group(t.queued_len.max),
            although(&cfg),
            not_active_note(&cfg)
        );
        return verdict(o, Mechanism::Off, cfg, tso_on, e);
    }
    if intact * 2 >= built.max(1) {
        let (mechanism, whom) = if dev.is_virtual() {
            (
                Mechanism::Deferred,
                format!(
                    "left to whatever is behind the {} device",
                    if dev.driver.is_empty() {
                        "virtual"
                    } else {
                        &dev.driver
                    }
                ),
            )
        } else {
            (Mechanism::Hardware, "done by the NIC (TSO)".to_string())
        };
        let e = format!(
            "{} multi-segment skbs reached the driver intact ({:.1} segments and {} each): segmentation {whom}{}",
            group(intact),
            t.segs_per_xmit.mean(),
            kb(t.xmit_len.mean()),
            if tso_on {
                String::new()
            } else {
                although(&cfg)
            }
        );
        return verdict(o, mechanism, cfg, !tso_on, e);
    }
    // TCP sockets always get NETIF_F_GSO (net/core/sock.c, sk_setup_caps()),
    // so with tx-generic-segmentation off the kernel still segments: that
    // flag is then the one that disagrees with the observation.
    let gso = dev.configured(GSO);
    let gso_off = gso.as_ref().is_some_and(|c| !c.active);
    let (cfg, mismatch, why) = if tso_on {
        let why = although(&cfg);
        (cfg, true, why)
    } else if gso_off {
        let why = format!("{} (TCP always uses GSO)", although(&gso));
        (gso, true, why)
    } else {
        let note = not_active_note(&cfg);
        (cfg, false, note)
    };
    let e = format!(
        "net_dev_queue saw {} skbs averaging {}; the driver received {} skbs averaging {} ({:.1}% single-segment): segmentation done in software (GSO){why}",
        group(t.queued_skbs),
        kb(t.queued_len.mean()),
        group(t.xmit_skbs),
        kb(t.xmit_len.mean()),
        pct(t.xmit_skbs - intact, t.xmit_skbs),
    );
    verdict(o, Mechanism::Software, cfg, mismatch, e)
}

fn csum_shares(c: &Csum) -> (f64, f64, f64) {
    let t = c.total();
    (
        pct(c.unnecessary + c.complete, t),
        pct(c.none, t),
        pct(c.partial, t),
    )
}

pub fn tx_checksum(b: &Blocks, dev: &Device) -> Verdict {
    let c = &b.tx.csum;
    let cfg = dev.configured(TX_CSUM);
    let on = cfg.as_ref().is_some_and(|c| c.active);
    let o = Offload::TxChecksum;
    if !dev.coverage.driver_xmit {
        let e = format!(
            "the checksum state the driver receives shows only at net_dev_start_xmit, {UNMEASURED}"
        );
        return verdict(o, Mechanism::NotMeasured, cfg, false, e);
    }
    if c.total() < MIN_PACKETS {
        let e = format!("only {} skbs reached the driver", group(c.total()));
        return verdict(o, Mechanism::NotExercised, cfg, false, e);
    }
    let (_, none, partial) = csum_shares(c);
    if partial >= 50.0 {
        let (mechanism, whom) = if dev.is_virtual() {
            (
                Mechanism::Deferred,
                "left to whatever is behind the virtual device",
            )
        } else {
            (Mechanism::Hardware, "the NIC computes them")
        };
        let e = format!(
            "{partial:.1}% of {} skbs reached the driver with ip_summed=PARTIAL: checksums {whom}{}",
            group(c.total()),
            if on { String::new() } else { although(&cfg) }
        );
        return verdict(o, mechanism, cfg, !on, e);
    }
    let e = format!(
        "{none:.1}% of {} skbs reached the driver with ip_summed=NONE: checksums computed by the CPU{}",
        group(c.total()),
        if on { although(&cfg) } else { String::new() }
    );
    verdict(o, Mechanism::Software, cfg, on, e)
}

pub fn rx_checksum(b: &Blocks, dev: &Device) -> Verdict {
    let c = &b.rx.csum;
    let cfg = dev.configured(RX_CSUM);
    let on = cfg.as_ref().is_some_and(|c| c.active);
    let o = Offload::RxChecksum;
    if !dev.coverage.handoff {
        // After GRO the state says nothing of who verified: every merged
        // skb leaves as CHECKSUM_PARTIAL, ready to be segmented again
        // (net/ipv4/tcp_offload.c, tcp_gro_complete()).
        let e = format!(
            "the checksum state the NIC reports shows only at the driver hand-off, {UNMEASURED}"
        );
        return verdict(o, Mechanism::NotMeasured, cfg, false, e);
    }
    if c.total() < MIN_PACKETS {
        let e = format!("only {} packets received", group(c.total()));
        return verdict(o, Mechanism::NotExercised, cfg, false, e);
    }
    let (hw, none, partial) = csum_shares(c);
    let n = group(c.total());
    if partial >= 50.0 {
        let e = format!(
            "{partial:.1}% of {n} received packets had ip_summed=PARTIAL: built on this host and never checksummed, verification skipped (virtual path)"
        );
        return verdict(o, Mechanism::Deferred, cfg, false, e);
    }
    if hw >= 50.0 {
        let e = format!(
            "{hw:.1}% of {n} received packets had ip_summed=UNNECESSARY or COMPLETE: checksums verified by the NIC{}",
            if on { String::new() } else { although(&cfg) }
        );
        return verdict(o, Mechanism::Hardware, cfg, !on, e);
    }
    let e = format!(
        "{none:.1}% of {n} received packets had ip_summed=NONE: checksums verified by the CPU{}",
        if on { although(&cfg) } else { String::new() }
    );
    verdict(o, Mechanism::Software, cfg, on, e)
}

pub fn rx_coalescing(b: &Blocks, dev: &Device) -> Verdict {
    let r = &b.rx;
    let o = Offload::RxCoalescing;
    let gro = dev.configured(GRO);
    let gro_on = gro.as_ref().is_some_and(|c| c.active);
    if !dev.coverage.handoff {
        return rx_coalescing_per_skb(b, dev, gro);
    }
    if r.segments < MIN_PACKETS {
        let e = format!("only {} packets received", group(r.segments));
        return verdict(o, Mechanism::NotExercised, gro, false, e);
    }
    let large = r.handoff_gso_size.count;
    if large * 2 >= r.segments {
        let (_, _, partial) = csum_shares(&r.csum);
        if partial >= 50.0 {
            let e = format!(
                "{} of {} packets arrived at the driver hand-off already {} on average with gso_size {}: GSO skbs crossed the virtual device intact, nothing to coalesce",
                group(large),
                group(r.segments),
                kb(r.segment_len.mean()),
                group(r.handoff_gso_size.mean().round() as u64)
            );
            return verdict(o, Mechanism::Deferred, gro, false, e);
        }
        let hw = dev.configured(HW_GRO);
        let hw_on = hw.as_ref().is_some_and(|c| c.active);
        let e = format!(
            "{} of {} packets were larger than the MTU at the driver hand-off (gso_size {}): coalesced by the NIC (LRO / hardware GRO){}",
            group(large),
            group(r.segments),
            group(r.handoff_gso_size.mean().round() as u64),
            if hw_on { String::new() } else { although(&hw) }
        );
        return verdict(o, Mechanism::Hardware, hw, !hw_on, e);
    }
    // Merged after the hand-off: segments per skb from gso_segs, or (classic
    // tracepoints) from the ratio of hand-offs to delivered skbs.
    let per_skb = if r.segs_per_skb.count > 0 {
        r.segs_per_skb.mean()
    } else if r.skbs > 0 {
        r.segments as f64 / r.skbs as f64
    } else {
        0.0
    };
    if per_skb >= 1.5 {
        let e = format!(
            "{} packets of {} on average at the hand-off became {} skbs after GRO ({per_skb:.1} segments per skb): coalesced by the CPU (software GRO){}",
            group(r.segments),
            kb(r.segment_len.mean()),
            group(r.skbs),
            if gro_on {
                String::new()
            } else {
                although(&gro)
            }
        );
        return verdict(o, Mechanism::Software, gro, !gro_on, e);
    }
    let bulk = match bulk_traffic(
        r.segments,
        "packets",
        &r.segment_len,
        dev,
        "nothing to coalesce",
    ) {
        Ok(bulk) => bulk,
        Err(e) => return verdict(o, Mechanism::NotExercised, gro, false, e),
    };
    // GRO only runs on the NAPI path; on the backlog it cannot merge.
    let napi = r.handoff.napi_gro_receive + r.handoff.napi_gro_frags;
    let on_gro_path = napi * 2 >= r.segments;
    let e = format!(
        "{} packets at the hand-off ({} of them near MTU size), {} skbs after GRO: nothing coalesced{}{}",
        group(r.segments),
        group(bulk),
        group(r.skbs),
        although(&gro),
        if on_gro_path {
            ""
        } else {
            "; packets took the backlog path (netif_rx), where GRO does not run"
        }
    );
    verdict(o, Mechanism::Off, gro, gro_on && on_gro_path, e)
}

/// Coalescing judged from the skbs after GRO alone: whether packets were
/// merged shows in `gso_segs`, but not whether the NIC or the CPU merged
/// them (an LRO skb and a GRO skb look alike by then).
fn rx_coalescing_per_skb(b: &Blocks, dev: &Device, gro: Option<Configured>) -> Verdict {
    let r = &b.rx;
    let o = Offload::RxCoalescing;
    if r.skbs < MIN_PACKETS {
        let e = format!("only {} skbs received", group(r.skbs));
        return verdict(o, Mechanism::NotExercised, gro, false, e);
    }
    let per_skb = r.segs_per_skb.mean();
    // A GSO skb that crossed a virtual device whole and a GRO skb look alike
    // here: both multi-segment and CHECKSUM_PARTIAL (tcp_gro_complete()).
    if per_skb >= 1.5 {
        let e = format!(
            "{} skbs after GRO carried {per_skb:.1} segments each: packets were coalesced; whether by the NIC or the CPU shows only at the driver hand-off, {UNMEASURED}",
            group(r.skbs)
        );
        return verdict(o, Mechanism::NotMeasured, gro, false, e);
    }
    let bulk = match bulk_traffic(r.skbs, "skbs", &r.skb_len, dev, "nothing to coalesce") {
        Ok(bulk) => bulk,
        Err(e) => return verdict(o, Mechanism::NotExercised, gro, false, e),
    };
    let gro_on = gro.as_ref().is_some_and(|c| c.active);
    let e = format!(
        "{} skbs after GRO ({} of them near MTU size), one segment each: nothing coalesced{}",
        group(r.skbs),
        group(bulk),
        although(&gro)
    );
    verdict(o, Mechanism::Off, gro, gro_on, e)
}

pub fn rss(b: &Blocks, dev: &Device) -> Verdict {
    let r = &b.rx;
    let o = Offload::Rss;
    let cfg = dev.configured(RXHASH);
    // Without the hand-off, the skbs after GRO carry the same queue.
    let (what, total, by_queue) = if dev.coverage.handoff {
        ("packets", r.segments, &r.queues)
    } else {
        ("skbs", r.skbs, &r.skb_queues)
    };
    if total < MIN_PACKETS {
        let e = format!("only {} {what} received", group(total));
        return verdict(o, Mechanism::NotExercised, cfg, false, e);
    }
    if by_queue.is_empty() {
        // Classic tracepoints carry no queue.
        let e =
            format!("the receive queue of each skb is not read by this probe set, {UNMEASURED}");
        return verdict(o, Mechanism::NotMeasured, cfg, false, e);
    }
    let used: Vec<&(u32, u64)> = by_queue
        .iter()
        .filter(|(_, c)| pct(*c, total) >= 5.0)
        .collect();
    let queues = dev
        .rx_queues
        .map(|q| format!(" of {q}"))
        .unwrap_or_default();
    if used.len() >= 2 {
        let shares: Vec<String> = used
            .iter()
            .map(|(q, c)| format!("queue {q} {:.0}%", pct(*c, total)))
            .collect();
        let e = format!(
            "{what} spread over {} receive queues{queues} ({}): the NIC hashes flows to queues",
            used.len(),
            shares.join(", ")
        );
        return verdict(o, Mechanism::Hardware, cfg, false, e);
    }
    let q = used.first().map(|(q, _)| *q).unwrap_or(0);
    if dev.rps {
        let e = format!(
            "all {what} arrived on receive queue {q}{queues}; RPS (rps_cpus) spreads them over CPUs in software"
        );
        return verdict(o, Mechanism::Software, cfg, false, e);
    }
    let e = format!(
        "all {what} arrived on receive queue {q}{queues}: no spreading (one flow always hashes to one queue; judge RSS with several flows)"
    );
    verdict(o, Mechanism::Off, cfg, false, e)
}

pub fn judge(b: &Blocks, dev: &Device) -> Vec<Verdict> {
    vec![
        tx_segmentation(b, dev),
        tx_checksum(b, dev),
        rx_coalescing(b, dev),
        rx_checksum(b, dev),
        rss(b, dev),
    ]
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
pub fn checks(b: &Blocks, secs: f64) -> Vec<Check> {
    let mut out = Vec::new();
    let traffic = b.rx.segments + b.tx.xmit_skbs >= MIN_PACKETS;
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
mod tests {
    use super::*;
    use crate::{
        collect::Totals,
        ethtool::{Feature, Features},
    };
    use toe_agent_common::{Hist, hist::bucket_index};

    fn add(h: &mut Hist, v: u64, n: u64) {
        h.buckets[bucket_index(v)] += n;
        h.sum += v * n;
    }

    fn features(on: &[&str], off: &[&str]) -> Features {
        let f = |name: &&str, active: bool| Feature {
            name: name.to_string(),
            available: true,
            requested: active,
            active,
            never_changed: false,
        };
        Features(
            on.iter()
                .map(|n| f(n, true))
                .chain(off.iter().map(|n| f(n, false)))
                .collect(),
        )
    }

    fn veth(on: &[&str], off: &[&str]) -> Device {
        Device {
            mtu: 1500,
            driver: "veth".into(),
            features: Some(features(on, off)),
            rx_queues: Some(1),
            rps: false,
            coverage: Coverage::default(),
        }
    }

    /// Sender with software GSO: 60K skbs of ~49 KB (34 segments) become
    /// 2.05M MTU-sized ones at the driver, checksum left to the device.
    fn software_gso() -> Totals {
        let mut t = Totals::default();
        add(&mut t.tx.queued_len, 49_000, 60_000);
        add(&mut t.tx.segs_per_queued, 34, 60_000);
        t.tx.queued_csum[3] = 60_000;
        add(&mut t.tx.xmit_len, 1514, 2_040_000);
        add(&mut t.tx.segs_per_xmit, 1, 2_040_000);
        t.tx.xmit_csum[3] = 2_040_000;
        t
    }

    /// Receiver on the NAPI path: MTU-sized hand-offs merged ~34 to 1.
    fn software_gro(csum_state: usize) -> Totals {
        let mut t = Totals::default();
        add(&mut t.rx.segment_len, 1500, 2_040_000);
        t.rx.segment_csum[csum_state] = 2_040_000;
        t.rx.handoff_by_hook[0] = 2_040_000;
        t.rx.queue[0] = 2_040_000;
        add(&mut t.rx.skb_len, 49_000, 60_000);
        add(&mut t.rx.segs_per_skb, 34, 60_000);
        t
    }

    /// What `--per-skb` leaves: the per-skb hooks' counts only.
    fn per_skb_only(t: &Totals) -> Totals {
        let mut p = Totals::default();
        p.tx.queued_len = t.tx.queued_len;
        p.tx.segs_per_queued = t.tx.segs_per_queued;
        p.tx.queued_csum = t.tx.queued_csum;
        p.rx.skb_len = t.rx.skb_len;
        p.rx.segs_per_skb = t.rx.segs_per_skb;
        p.rx.skb_csum = t.rx.skb_csum;
        p
    }

    fn per_skb_veth(on: &[&str], off: &[&str]) -> Device {
        Device {
            coverage: Coverage {
                handoff: false,
                driver_xmit: false,
            },
            ..veth(on, off)
        }
    }

    #[test]
    fn per_skb_probe_set_says_what_it_cannot_see() {
        let mut t = software_gso();
        t.add(&software_gro(0));
        // What GRO hands up is CHECKSUM_PARTIAL, whoever verified the segments.
        t.rx.skb_csum[3] = 60_000;
        let b = Blocks::from_totals(&per_skb_only(&t));
        let dev = per_skb_veth(&["tx-tcp-segmentation", "rx-gro", "rx-checksum"], &[]);
        let v = judge(&b, &dev);
        let got: Vec<(Mechanism, bool)> = v.iter().map(|v| (v.mechanism, v.mismatch)).collect();
        assert_eq!(got, [(Mechanism::NotMeasured, false); 5]);
        assert_eq!(
            v[0].evidence,
            "net_dev_queue saw 60,000 skbs averaging 47.9 KB, 60,000 with more than one segment; who segments them shows only at net_dev_start_xmit, not attached (--per-skb, or missing from this kernel)"
        );
        assert_eq!(
            v[2].evidence,
            "60,000 skbs after GRO carried 34.0 segments each: packets were coalesced; whether by the NIC or the CPU shows only at the driver hand-off, not attached (--per-skb, or missing from this kernel)"
        );
        for i in [1, 3, 4] {
            assert!(v[i].evidence.ends_with(UNMEASURED), "{}", v[i].evidence);
        }
    }

    #[test]
    fn per_skb_probe_set_still_sees_that_nothing_coalesced() {
        let mut t = Totals::default();
        add(&mut t.rx.skb_len, 1500, 50_000);
        add(&mut t.rx.segs_per_skb, 1, 50_000);
        let b = Blocks::from_totals(&t);
        let v = rx_coalescing(&b, &per_skb_veth(&["rx-gro"], &[]));
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::Off, true));
        assert_eq!(
            v.evidence,
            "50,000 skbs after GRO (50,000 of them near MTU size), one segment each: nothing coalesced although rx-gro is on"
        );
        // Too little traffic is still not_exercised, not not_measured.
        let quiet = rx_coalescing(&Blocks::default(), &per_skb_veth(&["rx-gro"], &[]));
        assert_eq!(quiet.mechanism, Mechanism::NotExercised);
    }

    #[test]
    fn per_skb_probe_set_judges_rss_from_the_skbs_queues() {
        let mut t = Totals::default();
        add(&mut t.rx.skb_len, 49_000, 30_000);
        add(&mut t.rx.segs_per_skb, 34, 30_000);
        t.rx.skb_queue[2] = 14_000;
        t.rx.skb_queue[5] = 16_000;
        let b = Blocks::from_totals(&t);
        let nic = Device {
            rx_queues: Some(8),
            ..per_skb_veth(&["rx-hashing"], &[])
        };
        let v = rss(&b, &nic);
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::Hardware, false));
        assert_eq!(
            v.evidence,
            "skbs spread over 2 receive queues of 8 (queue 2 47%, queue 5 53%): the NIC hashes flows to queues"
        );
        // Classic tracepoints count skbs but read no queue.
        t.rx.skb_queue = [0; toe_agent_common::MAX_QUEUES];
        let v = rss(&Blocks::from_totals(&t), &nic);
        assert_eq!(v.mechanism, Mechanism::NotMeasured);
    }

    #[test]
    fn coverage_follows_the_probes_that_count() {
        use crate::probes::{ProbeState, ProbeStatus};
        let st = |name: &str, status| ProbeStatus {
            name: name.into(),
            hook: String::new(),
            status,
            reason: None,
        };
        let all = [
            st("napi_gro_receive_entry", ProbeState::Degraded),
            st("net_dev_start_xmit", ProbeState::Attached),
        ];
        assert_eq!(Coverage::of(&all), Coverage::default());
        let per_skb = [
            st("napi_gro_receive_entry", ProbeState::Skipped),
            st("netif_rx_entry", ProbeState::Failed),
            st("net_dev_start_xmit", ProbeState::Skipped),
            st("netif_receive_skb", ProbeState::Attached),
        ];
        assert_eq!(
            Coverage::of(&per_skb),
            Coverage {
                handoff: false,
                driver_xmit: false
            }
        );
    }

    #[test]
    fn no_traffic_is_not_exercised() {
        let v = judge(&Blocks::from_totals(&Totals::default()), &veth(&[], &[]));
        assert_eq!(v.len(), 5);
        assert!(
            v.iter()
                .all(|x| x.mechanism == Mechanism::NotExercised && !x.mismatch),
            "{v:?}"
        );
        assert!(checks(&Blocks::default(), 1.0).is_empty());
    }

    #[test]
    fn software_gso_with_tso_off_is_expected() {
        let b = Blocks::from_totals(&software_gso());
        let dev = veth(
            &["tx-generic-segmentation", "tx-checksum-ip-generic"],
            &["tx-tcp-segmentation"],
        );
        let v = tx_segmentation(&b, &dev);
        assert_eq!(v.mechanism, Mechanism::Software);
        assert!(!v.mismatch);
        assert_eq!(
            v.evidence,
            "net_dev_queue saw 60,000 skbs averaging 47.9 KB; the driver received 2,040,000 skbs averaging 1.5 KB (100.0% single-segment): segmentation done in software (GSO)"
        );
        assert_eq!(
            v.configured.as_ref().unwrap().feature,
            "tx-tcp-segmentation"
        );
        let c = tx_checksum(&b, &dev);
        assert_eq!(c.mechanism, Mechanism::Deferred);
        assert!(!c.mismatch);
    }

    #[test]
    fn tso_on_but_segmented_in_software_is_the_headline_mismatch() {
        let b = Blocks::from_totals(&software_gso());
        let nic = Device {
            driver: "ice".into(),
            ..veth(&["tx-tcp-segmentation", "tx-checksum-ip-generic"], &[])
        };
        let v = tx_segmentation(&b, &nic);
        assert_eq!(v.mechanism, Mechanism::Software);
        assert!(v.mismatch);
        assert!(
            v.evidence.ends_with(
                "segmentation done in software (GSO) although tx-tcp-segmentation is on"
            ),
            "{}",
            v.evidence
        );
        // The same device doing TSO: intact multi-segment skbs at the driver.
        let mut t = Totals::default();
        add(&mut t.tx.queued_len, 64_000, 1000);
        add(&mut t.tx.segs_per_queued, 44, 1000);
        add(&mut t.tx.xmit_len, 64_000, 1000);
        add(&mut t.tx.segs_per_xmit, 44, 1000);
        t.tx.xmit_csum[3] = 1000;
        let b = Blocks::from_totals(&t);
        let v = tx_segmentation(&b, &nic);
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::Hardware, false));
        assert!(
            v.evidence.contains("segmentation done by the NIC (TSO)"),
            "{}",
            v.evidence
        );
        assert_eq!(tx_checksum(&b, &nic).mechanism, Mechanism::Hardware);
        // On veth the same skbs are deferred, not done.
        assert_eq!(
            tx_segmentation(&b, &veth(&["tx-tcp-segmentation"], &[])).mechanism,
            Mechanism::Deferred
        );
    }

    #[test]
    fn software_gro_and_cpu_checksums_on_receive() {
        let b = Blocks::from_totals(&software_gro(0));
        let dev = veth(&["rx-gro", "rx-checksum"], &[]);
        let v = rx_coalescing(&b, &dev);
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::Software, false));
        assert_eq!(
            v.evidence,
            "2,040,000 packets of 1.5 KB on average at the hand-off became 60,000 skbs after GRO (34.0 segments per skb): coalesced by the CPU (software GRO)"
        );
        let c = rx_checksum(&b, &dev);
        assert_eq!((c.mechanism, c.mismatch), (Mechanism::Software, true));
        assert_eq!(
            c.evidence,
            "100.0% of 2,040,000 received packets had ip_summed=NONE: checksums verified by the CPU although rx-checksum is on"
        );
        let r = rss(&b, &dev);
        assert_eq!(r.mechanism, Mechanism::Off);
        assert!(
            r.evidence
                .starts_with("all packets arrived on receive queue 0 of 1"),
            "{}",
            r.evidence
        );
    }

    #[test]
    fn nic_checksums_and_lro() {
        let mut t = software_gro(1);
        let nic = Device {
            driver: "mlx5_core".into(),
            ..veth(&["rx-checksum", "rx-lro"], &["rx-gro-hw"])
        };
        assert_eq!(
            rx_checksum(&Blocks::from_totals(&t), &nic).mechanism,
            Mechanism::Hardware
        );
        // LRO: hand-offs already 60 KB with gso_size set, checksum UNNECESSARY.
        t.rx = Totals::default().rx;
        add(&mut t.rx.segment_len, 60_000, 5000);
        add(&mut t.rx.handoff_gso_size, 1448, 5000);
        t.rx.segment_csum[1] = 5000;
        let v = rx_coalescing(&Blocks::from_totals(&t), &nic);
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::Hardware, false));
        assert_eq!(v.configured.unwrap().feature, "rx-lro");
        // Same hand-offs with PARTIAL: a GSO skb that crossed veth.
        t.rx.segment_csum = [0, 0, 0, 5000];
        let v = rx_coalescing(&Blocks::from_totals(&t), &veth(&["rx-gro"], &[]));
        assert_eq!(v.mechanism, Mechanism::Deferred);
        assert!(
            v.evidence.contains("crossed the virtual device intact"),
            "{}",
            v.evidence
        );
    }

    #[test]
    fn only_small_packets_are_not_enough() {
        let mut t = Totals::default();
        add(&mut t.rx.segment_len, 52, 5000);
        t.rx.segment_csum[3] = 5000;
        add(&mut t.rx.skb_len, 52, 5000);
        add(&mut t.rx.segs_per_skb, 1, 5000);
        add(&mut t.tx.queued_len, 66, 5000);
        add(&mut t.tx.segs_per_queued, 1, 5000);
        add(&mut t.tx.xmit_len, 66, 5000);
        add(&mut t.tx.segs_per_xmit, 1, 5000);
        let b = Blocks::from_totals(&t);
        let dev = veth(&["rx-gro"], &[]);
        let v = rx_coalescing(&b, &dev);
        assert_eq!(v.mechanism, Mechanism::NotExercised);
        assert!(
            v.evidence.contains("only small ones (p99 55 B)"),
            "{}",
            v.evidence
        );
        assert_eq!(tx_segmentation(&b, &dev).mechanism, Mechanism::NotExercised);
    }

    #[test]
    fn mixed_traffic_goes_by_the_majority_and_gro_off_path_is_named() {
        // MTU-sized packets through the backlog with GRO on: nothing merged,
        // but GRO never had the chance, so no mismatch.
        let mut t = Totals::default();
        add(&mut t.rx.segment_len, 1500, 9000);
        add(&mut t.rx.segment_len, 52, 1000);
        t.rx.handoff_by_hook[4] = 10_000;
        add(&mut t.rx.skb_len, 1500, 9000);
        add(&mut t.rx.skb_len, 52, 1000);
        add(&mut t.rx.segs_per_skb, 1, 10_000);
        let dev = veth(&["rx-gro"], &[]);
        let v = rx_coalescing(&Blocks::from_totals(&t), &dev);
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::Off, false));
        assert!(v.evidence.contains("backlog path"), "{}", v.evidence);
        // The same on the NAPI path: GRO is on and merged nothing.
        t.rx.handoff_by_hook = [10_000, 0, 0, 0, 0];
        let v = rx_coalescing(&Blocks::from_totals(&t), &dev);
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::Off, true));
    }

    #[test]
    fn gso_off_yet_segmented_in_software_is_a_mismatch() {
        let b = Blocks::from_totals(&software_gso());
        let dev = veth(&[], &["tx-tcp-segmentation", "tx-generic-segmentation"]);
        let v = tx_segmentation(&b, &dev);
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::Software, true));
        assert_eq!(v.configured.unwrap().feature, "tx-generic-segmentation");
        assert!(
            v.evidence
                .ends_with("although tx-generic-segmentation is off (TCP always uses GSO)"),
            "{}",
            v.evidence
        );
    }

    #[test]
    fn requested_but_inactive_features_are_named() {
        let b = Blocks::from_totals(&software_gso());
        let mut f = features(&[], &["tx-tcp-segmentation"]);
        f.0[0].requested = true;
        let dev = Device {
            features: Some(f),
            ..veth(&[], &[])
        };
        let v = tx_segmentation(&b, &dev);
        assert!(!v.mismatch);
        assert!(
            v.evidence.ends_with(
                "tx-tcp-segmentation is requested but not active (it depends on another feature)"
            ),
            "{}",
            v.evidence
        );
    }

    #[test]
    fn seed_thresholds() {
        let mut b = Blocks::from_totals(&software_gro(3));
        b.softirq.net_rx.per_cpu = vec![crate::report::CpuTime {
            cpu: 1,
            time_ns: 120_000_000,
            count: 10,
            ..Default::default()
        }];
        b.napi.budget_exhausted = 7;
        b.napi.polls = 100;
        let c = checks(&b, 1.0);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].check, "net_rx_softirq_share");
        assert!((c[0].value - 12.0).abs() < 1e-9);
        assert!(c[0].message.contains("cpu1"));
        assert_eq!(
            c[1].message,
            "7 of 100 NAPI polls used their whole budget: the device had more packets than a poll takes (net.core.netdev_budget, more queues)"
        );
    }
}
