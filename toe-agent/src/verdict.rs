//! Offload verdicts: what the measurements say happened, against what the
//! device's feature flags say should happen. Pure functions of a period's
//! [`Blocks`] and a [`Device`]; the rules and the kernel code they rest on
//! are in docs/verdicts.md.
//!
//! TCP's offloads are judged on TCP: packets of other protocols are counted
//! in the blocks (`non_tcp`, `gso_*.other`) and left out here, so that UDP
//! bulk on the same device cannot pass for a TSO or GRO fault.
use serde::{Deserialize, Serialize};

use crate::{
    class::DeviceClass,
    ethtool::Features,
    report::{Blocks, Csum, HistSummary},
    view::group,
};

/// Fewer packets than this in a period: not enough to judge.
pub const MIN_PACKETS: u64 = 100;
/// NET_RX softirq share of one CPU above which the seed manual worries.
pub const NET_RX_SHARE_PCT: f64 = 5.0;
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
pub struct Coverage {
    /// Some driver hand-off hook is attached.
    pub handoff: bool,
    /// Hand-off hooks that are not attached while another is, as a bit per
    /// position in [`crate::probes::HANDOFF_HOOKS`]: a driver that uses one
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
    /// From the probes' states: a hook that failed or was skipped gives nothing.
    pub fn of(status: &[crate::probes::ProbeStatus]) -> Coverage {
        let counts = |name: &str| status.iter().any(|s| s.name == name && s.status.counts());
        let hooks = crate::probes::HANDOFF_HOOKS;
        let missing = hooks
            .iter()
            .enumerate()
            .filter(|(_, h)| !counts(h))
            .fold(0u8, |m, (i, _)| m | 1 << i);
        let handoff = hooks.iter().any(|h| counts(h));
        Coverage {
            handoff,
            handoff_missing: if handoff { missing } else { 0 },
            driver_xmit: counts("net_dev_start_xmit"),
        }
    }

    /// The hand-off hooks that are not attached while others are.
    fn missing_handoffs(&self) -> Vec<&'static str> {
        crate::probes::HANDOFF_HOOKS
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
pub struct Device {
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

/// TCP skbs of more than one segment built by the stack (net_dev_queue) and
/// still whole at the driver (net_dev_start_xmit), and whether IPv6 is the
/// larger share. Classic tracepoints have no gso_segs at net_dev_queue:
/// there a queued skb longer than the MTU counts as multi-segment.
struct TcpGso {
    built: u64,
    intact: u64,
    v6: bool,
    other: u64,
}

fn tcp_gso(b: &Blocks, dev: &Device) -> TcpGso {
    let t = &b.tx;
    let classic = t.segs_per_queued.count == 0;
    let built = if classic {
        t.queued_len.count_above(dev.mtu as u64 + 64)
    } else {
        t.gso_queued.tcp()
    };
    TcpGso {
        built,
        intact: t.gso_xmit.tcp(),
        v6: t.gso_queued.tcp6 + t.gso_xmit.tcp6 > t.gso_queued.tcp4 + t.gso_xmit.tcp4,
        other: t.gso_queued.other.max(t.gso_xmit.other),
    }
}

pub fn tx_segmentation(b: &Blocks, dev: &Device) -> Verdict {
    let t = &b.tx;
    let o = Offload::TxSegmentation;
    let g = tcp_gso(b, dev);
    // The feature of the address family that carries most of the traffic:
    // tx-tcp6-segmentation governs IPv6 (net/core/dev.c, gso_features_check
    // and NETIF_F_TSO6 in netif_skb_features()).
    let (family, other) = if g.v6 { (TSO6, TSO4) } else { (TSO4, TSO6) };
    let cfg = dev.configured(family).or_else(|| dev.configured(other));
    let tso_on = cfg.as_ref().is_some_and(|c| c.active);
    if t.queued_skbs < MIN_PACKETS && t.xmit_skbs < MIN_PACKETS {
        let e = format!("only {} skbs queued for transmission", group(t.queued_skbs));
        return verdict(o, Mechanism::NotExercised, cfg, false, e);
    }
    let others = others_note(g.other, "multi-segment skbs");
    if !dev.coverage.driver_xmit {
        let e = format!(
            "net_dev_queue saw {} skbs averaging {}, {} TCP skbs with more than one segment; who segments them shows only at net_dev_start_xmit, {UNMEASURED}{others}",
            group(t.queued_skbs),
            kb(t.queued_len.mean()),
            group(g.built)
        );
        return verdict(o, Mechanism::NotMeasured, cfg, false, e);
    }
    if g.built == 0 && g.intact == 0 {
        return tx_single_segments(b, dev, cfg, &others);
    }
    if g.intact * 2 >= g.built.max(1) {
        let (mechanism, whom) = dev.doer("the NIC (TSO)");
        let e = format!(
            "{} multi-segment TCP skbs reached the driver intact ({:.1} segments and {} each on average): segmentation done by {whom}{}{others}",
            group(g.intact),
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
    if dev.mtu as u64 * 2 > GSO_MAX_SIZE {
        return tx_split_over_gso_limit(b, dev, &g, cfg, &others);
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
        "net_dev_queue saw {} TCP skbs of more than one segment ({} skbs averaging {}); the driver received {} skbs averaging {}, {} of them still multi-segment: segmentation done in software (GSO){why}{others}",
        group(g.built),
        group(t.queued_skbs),
        kb(t.queued_len.mean()),
        group(t.xmit_skbs),
        kb(t.xmit_len.mean()),
        group(g.intact),
    );
    verdict(o, Mechanism::Software, cfg, mismatch, e)
}

/// With an MTU over 32 KB (loopback's 64 KB) an skb of two segments is
/// already longer than the 64 KB GSO limit, and gso_features_check()
/// (net/core/dev.c) clears the device's GSO features for an skb that long:
/// the kernel splits it in software whatever TSO says. No mismatch; and
/// when such skbs are a small part of the traffic, nothing else needed
/// segmenting.
fn tx_split_over_gso_limit(
    b: &Blocks,
    dev: &Device,
    g: &TcpGso,
    cfg: Option<Configured>,
    others: &str,
) -> Verdict {
    let t = &b.tx;
    let o = Offload::TxSegmentation;
    let e = format!(
        "{} of {} skbs at net_dev_queue had more than one segment, and the driver received {} still multi-segment: with an MTU of {} such skbs exceed the 64 KB GSO limit and the kernel splits them whatever TSO says (gso_features_check()){}{others}",
        group(g.built),
        group(t.queued_skbs),
        group(g.intact),
        group(dev.mtu as u64),
        if g.built * 10 < t.queued_skbs {
            "; the other skbs were one segment each: nothing needed segmenting"
        } else {
            ""
        }
    );
    let mechanism = if g.built * 10 < t.queued_skbs {
        Mechanism::NotExercised
    } else {
        Mechanism::Software
    };
    verdict(o, mechanism, cfg, false, e)
}

/// No skb needed segmenting. Either TCP built MTU-sized skbs itself
/// (segmentation `off`, a mismatch when TSO is on), or the MTU is so large
/// that one segment per skb is all GSO could build (loopback's 64 KB):
/// nothing to judge.
fn tx_single_segments(b: &Blocks, dev: &Device, cfg: Option<Configured>, others: &str) -> Verdict {
    let t = &b.tx;
    let o = Offload::TxSegmentation;
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
    if dev.mtu as u64 * 2 > GSO_MAX_SIZE {
        let e = format!(
            "net_dev_queue saw {} skbs of up to {} B, each one segment: with an MTU of {} a GSO skb (at most 64 KB) holds only one, so nothing needed segmenting{others}",
            group(t.queued_skbs),
            group(t.queued_len.max),
            group(dev.mtu as u64)
        );
        return verdict(o, Mechanism::NotExercised, cfg, false, e);
    }
    let tso_on = cfg.as_ref().is_some_and(|c| c.active);
    let e = format!(
        "net_dev_queue saw {} skbs, none with more than one segment (largest {} B): the stack built MTU-sized packets, nobody segments{}{}{others}",
        group(t.queued_skbs),
        group(t.queued_len.max),
        although(&cfg),
        not_active_note(&cfg)
    );
    verdict(o, Mechanism::Off, cfg, tso_on, e)
}

fn csum_shares(c: &Csum) -> (f64, f64, f64) {
    let t = c.total();
    (
        pct(c.unnecessary + c.complete, t),
        pct(c.none, t),
        pct(c.partial, t),
    )
}

/// Checksum offload is judged on packets of every protocol: the same
/// features govern TCP's and UDP's checksums (NETIF_F_HW_CSUM / IP_CSUM /
/// IPV6_CSUM, include/linux/netdev_features.h).
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
        let (mechanism, whom) = dev.doer("the NIC");
        let e = format!(
            "{partial:.1}% of {} skbs reached the driver with ip_summed=PARTIAL: checksums computed by {whom}{}",
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

/// When only some hand-off hooks are attached, the packets a driver hands
/// up through a missing one are never counted. The hand-off is judged only
/// if the hooks that are attached saw (nearly) every TCP segment the stack
/// received after GRO; the error is the evidence that says otherwise.
fn handoff_accounts(b: &Blocks, dev: &Device) -> Result<(), String> {
    let missing = dev.coverage.missing_handoffs();
    if missing.is_empty() {
        return Ok(());
    }
    let r = &b.rx;
    let after = if r.segs_per_skb.count > 0 {
        r.segs_per_skb.sum.saturating_sub(r.non_tcp.skb_segments)
    } else {
        r.skbs.saturating_sub(r.non_tcp.skbs)
    };
    let seen = r.segments.saturating_sub(r.non_tcp.handoffs);
    if seen * 10 >= after * 9 {
        return Ok(());
    }
    Err(format!(
        "the attached hand-off hooks saw {} TCP packets, but {} segments reached the stack after GRO: the driver hands packets up through {}, not attached",
        group(seen),
        group(after),
        missing.join(", ")
    ))
}

/// The checksum state the NIC reported, at the driver hand-off. As on
/// transmit, every protocol counts.
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
    if let Err(e) = handoff_accounts(b, dev) {
        return verdict(o, Mechanism::NotMeasured, cfg, false, e);
    }
    if c.total() < MIN_PACKETS {
        let e = format!("only {} packets received", group(c.total()));
        return verdict(o, Mechanism::NotExercised, cfg, false, e);
    }
    let (hw, none, partial) = csum_shares(c);
    let n = group(c.total());
    if partial >= 50.0 {
        return rx_checksum_partial(partial, &n, dev, cfg);
    }
    if hw >= 50.0 {
        let (mechanism, whom) = match dev.class {
            // Someone before the virtual device vouched for them: the NIC
            // or the stack the packets came from.
            DeviceClass::Virtual => (
                Mechanism::Deferred,
                "before they reached the virtual device (by the NIC or stack they came from)"
                    .to_string(),
            ),
            _ => {
                let (m, w) = dev.doer("the NIC");
                (m, format!("by {w}"))
            }
        };
        let e = format!(
            "{hw:.1}% of {n} received packets had ip_summed=UNNECESSARY or COMPLETE: checksums verified {whom}{}",
            if on { String::new() } else { although(&cfg) }
        );
        let mismatch = !on && dev.class == DeviceClass::Physical;
        return verdict(o, mechanism, cfg, mismatch, e);
    }
    let e = format!(
        "{none:.1}% of {n} received packets had ip_summed=NONE: checksums verified by the CPU{}",
        if on { although(&cfg) } else { String::new() }
    );
    verdict(o, Mechanism::Software, cfg, on, e)
}

/// `CHECKSUM_PARTIAL` at the hand-off means different things by class. On
/// a virtual device the skb was built on this host and nobody ever
/// computes its checksum (the receiver trusts it, skb_csum_unnecessary()).
/// A physical NIC hands up PARTIAL only from hardware GRO, after verifying
/// every segment it merged: bnxt_gro_skb() → tcp_gro_complete()
/// (drivers/net/ethernet/broadcom/bnxt/bnxt.c), bnx2x_gro_csum(),
/// qede_gro_ip_csum(), mlx5e_shampo_update_hdr(). A paravirtual device's
/// host marks it so (VIRTIO_NET_HDR_F_NEEDS_CSUM, include/linux/virtio_net.h).
fn rx_checksum_partial(partial: f64, n: &str, dev: &Device, cfg: Option<Configured>) -> Verdict {
    let o = Offload::RxChecksum;
    let on = cfg.as_ref().is_some_and(|c| c.active);
    let (mechanism, e, mismatch) = match dev.class {
        DeviceClass::Virtual => (
            Mechanism::Deferred,
            format!(
                "{partial:.1}% of {n} received packets had ip_summed=PARTIAL: built on this host and never checksummed, verification skipped (virtual path)"
            ),
            false,
        ),
        DeviceClass::Physical => (
            Mechanism::Hardware,
            format!(
                "{partial:.1}% of {n} received packets had ip_summed=PARTIAL: from a physical NIC that is hardware GRO's mark, set after it verified each merged segment's checksum{}",
                if on { String::new() } else { although(&cfg) }
            ),
            !on,
        ),
        DeviceClass::Paravirtual => {
            let (m, whom) = dev.doer("");
            (
                m,
                format!(
                    "{partial:.1}% of {n} received packets had ip_summed=PARTIAL: vouched for by {whom}"
                ),
                false,
            )
        }
    };
    verdict(o, mechanism, cfg, mismatch, e)
}

/// TCP packets at the hand-off, and TCP skbs and their segments after GRO.
/// Classic tracepoints read neither the protocol nor gso_segs after GRO:
/// every packet counts as TCP, and segments per skb come from the ratio of
/// hand-offs to skbs.
struct TcpRx {
    segments: u64,
    skbs: u64,
    per_skb: Option<f64>,
}

fn tcp_rx(b: &Blocks) -> TcpRx {
    let r = &b.rx;
    let n = &r.non_tcp;
    let segments = r.segments.saturating_sub(n.handoffs);
    let skbs = r.skbs.saturating_sub(n.skbs);
    let per_skb = if r.segs_per_skb.count > 0 {
        let segs = r.segs_per_skb.sum.saturating_sub(n.skb_segments);
        (skbs > 0).then(|| segs as f64 / skbs as f64)
    } else {
        None
    };
    TcpRx {
        segments,
        skbs,
        per_skb,
    }
}

pub fn rx_coalescing(b: &Blocks, dev: &Device) -> Verdict {
    let r = &b.rx;
    let o = Offload::RxCoalescing;
    let gro = dev.configured(GRO);
    let gro_on = gro.as_ref().is_some_and(|c| c.active);
    if !dev.coverage.handoff {
        return rx_coalescing_per_skb(b, dev, gro);
    }
    if let Err(e) = handoff_accounts(b, dev) {
        return verdict(o, Mechanism::NotMeasured, gro, false, e);
    }
    let tcp = tcp_rx(b);
    let others = others_note(r.non_tcp.handoffs, "packets");
    if tcp.segments < MIN_PACKETS {
        let e = format!("only {} TCP packets received{others}", group(tcp.segments));
        return verdict(o, Mechanism::NotExercised, gro, false, e);
    }
    // Longer than the MTU at the hand-off: coalesced before the stack saw
    // it, with a gso_size (LRO, HW-GRO, GSO skbs crossing a virtual device)
    // or without one (bnxt's TPA in LRO mode, bnxt_tpa_end()).
    let over_mtu = r.segment_len.count_above(dev.mtu as u64);
    let large = over_mtu
        .max(r.handoff_gso_size.count)
        .saturating_sub(r.non_tcp.handoff_gso);
    if large * 2 >= tcp.segments {
        return rx_coalesced_before_stack(b, dev, large, tcp.segments, &others);
    }
    // Merged after the hand-off: segments per skb from gso_segs, or (classic
    // tracepoints) from the ratio of hand-offs to delivered skbs.
    let per_skb = tcp.per_skb.unwrap_or(if tcp.skbs > 0 {
        tcp.segments as f64 / tcp.skbs as f64
    } else {
        0.0
    });
    if per_skb >= 1.5 {
        let e = format!(
            "{} TCP packets of {} on average at the hand-off became {} skbs after GRO ({per_skb:.1} segments per skb): coalesced by the CPU (software GRO){}{others}",
            group(tcp.segments),
            kb(r.segment_len.mean()),
            group(tcp.skbs),
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
        "{} TCP packets at the hand-off ({} packets near MTU size), {} skbs after GRO: nothing coalesced{}{}{others}",
        group(tcp.segments),
        group(bulk),
        group(tcp.skbs),
        although(&gro),
        if on_gro_path {
            ""
        } else {
            "; packets took the backlog path (netif_rx), where GRO does not run"
        }
    );
    verdict(o, Mechanism::Off, gro, gro_on && on_gro_path, e)
}

/// Most TCP packets were already larger than the MTU when the driver handed
/// them up: coalesced before the stack. Who did it depends on the class;
/// on a physical NIC the checksum state tells the style apart (LRO hands up
/// UNNECESSARY, hardware GRO PARTIAL).
fn rx_coalesced_before_stack(
    b: &Blocks,
    dev: &Device,
    large: u64,
    segments: u64,
    others: &str,
) -> Verdict {
    let r = &b.rx;
    let o = Offload::RxCoalescing;
    let (_, _, partial) = csum_shares(&r.csum);
    let with_gso = r
        .handoff_gso_size
        .count
        .saturating_sub(r.non_tcp.handoff_gso);
    let gso_note = if with_gso * 2 >= large {
        format!(
            "with gso_size {}",
            group(r.handoff_gso_size.mean().round() as u64)
        )
    } else {
        "without a gso_size".to_string()
    };
    let arrived = format!(
        "{} of {} TCP packets arrived at the driver hand-off already {} on average, {gso_note}",
        group(large),
        group(segments),
        kb(r.segment_len.mean()),
    );
    match dev.class {
        DeviceClass::Virtual => {
            let e = if partial >= 50.0 {
                format!(
                    "{arrived}: GSO skbs crossed the virtual device intact, nothing to coalesce{others}"
                )
            } else {
                format!(
                    "{arrived}: coalesced before they reached the virtual device (by the NIC or stack they came from){others}"
                )
            };
            let gro = dev.configured(GRO);
            verdict(o, Mechanism::Deferred, gro, false, e)
        }
        DeviceClass::Paravirtual => {
            let (m, whom) = dev.doer("");
            let e = format!("{arrived}: coalesced by {whom}{others}");
            verdict(o, m, dev.configured(HW_GRO), false, e)
        }
        DeviceClass::Physical => {
            let hw = dev.configured(HW_GRO);
            let hw_on = hw.as_ref().is_some_and(|c| c.active);
            let style = if partial >= 50.0 {
                "hardware GRO: merged skbs marked CHECKSUM_PARTIAL"
            } else if with_gso * 2 >= large {
                "LRO"
            } else {
                "LRO that sets no gso_size"
            };
            let e = format!(
                "{arrived}: coalesced by the NIC ({style}){}{others}",
                if hw_on { String::new() } else { although(&hw) }
            );
            verdict(o, Mechanism::Hardware, hw, !hw_on, e)
        }
    }
}

/// Coalescing judged from the skbs after GRO alone: whether packets were
/// merged shows in `gso_segs`, but not whether the NIC or the CPU merged
/// them (an LRO skb and a GRO skb look alike by then).
fn rx_coalescing_per_skb(b: &Blocks, dev: &Device, gro: Option<Configured>) -> Verdict {
    let r = &b.rx;
    let o = Offload::RxCoalescing;
    let tcp = tcp_rx(b);
    if tcp.skbs < MIN_PACKETS {
        let e = format!(
            "only {} TCP skbs received{}",
            group(tcp.skbs),
            others_note(r.non_tcp.skbs, "skbs")
        );
        return verdict(o, Mechanism::NotExercised, gro, false, e);
    }
    // Classic tracepoints read no gso_segs after GRO: an empty histogram is
    // not "one segment each".
    let Some(per_skb) = tcp.per_skb else {
        let e = format!(
            "{} skbs after GRO, but this probe set reads no segments per skb there (classic tracepoints), and the driver hand-off is {UNMEASURED}",
            group(r.skbs)
        );
        return verdict(o, Mechanism::NotMeasured, gro, false, e);
    };
    // A GSO skb that crossed a virtual device whole and a GRO skb look alike
    // here: both multi-segment and CHECKSUM_PARTIAL (tcp_gro_complete()).
    if per_skb >= 1.5 {
        let e = format!(
            "{} TCP skbs after GRO carried {per_skb:.1} segments each: packets were coalesced; whether by the NIC or the CPU shows only at the driver hand-off, {UNMEASURED}",
            group(tcp.skbs)
        );
        return verdict(o, Mechanism::NotMeasured, gro, false, e);
    }
    // Coalesced skbs without a gso_segs (LRO that sets no gso_size) are
    // longer than the MTU: not "one segment each".
    if r.skb_len.count_above(dev.mtu as u64) * 2 >= tcp.skbs {
        let e = format!(
            "{} TCP skbs after GRO, most longer than the MTU but counted as one segment: coalesced by someone who set no gso_size; whether the NIC shows only at the driver hand-off, {UNMEASURED}",
            group(tcp.skbs)
        );
        return verdict(o, Mechanism::NotMeasured, gro, false, e);
    }
    let bulk = match bulk_traffic(r.skbs, "skbs", &r.skb_len, dev, "nothing to coalesce") {
        Ok(bulk) => bulk,
        Err(e) => return verdict(o, Mechanism::NotExercised, gro, false, e),
    };
    let gro_on = gro.as_ref().is_some_and(|c| c.active);
    let e = format!(
        "{} TCP skbs after GRO ({} skbs near MTU size), one segment each: nothing coalesced{}{}",
        group(tcp.skbs),
        group(bulk),
        although(&gro),
        others_note(r.non_tcp.skbs, "skbs")
    );
    verdict(o, Mechanism::Off, gro, gro_on, e)
}

/// A queue "takes part" with at least this share of the packets; the
/// verdict is spreading when the queues other than the busiest together
/// carry at least [`RSS_SPREAD_PCT`].
const RSS_QUEUE_PCT: f64 = 1.0;
const RSS_SPREAD_PCT: f64 = 5.0;

pub fn rss(b: &Blocks, dev: &Device) -> Verdict {
    let r = &b.rx;
    let o = Offload::Rss;
    let cfg = dev.configured(RXHASH);
    // Without the hand-off, the skbs after GRO carry the same queue.
    let (what, total, by_queue, unrecorded) = if dev.coverage.handoff {
        ("packets", r.segments, &r.queues, r.queue_unrecorded)
    } else {
        ("skbs", r.skbs, &r.skb_queues, r.skb_queue_unrecorded)
    };
    if total < MIN_PACKETS {
        let e = format!("only {} {what} received", group(total));
        return verdict(o, Mechanism::NotExercised, cfg, false, e);
    }
    if by_queue.is_empty() && unrecorded > 0 {
        // veth and the backlog path: no driver queue to speak of.
        let e = format!(
            "the device recorded no receive queue for its {what} (queue_mapping 0: skb_record_rx_queue() was not called): one path, no spreading"
        );
        return verdict(o, Mechanism::Off, cfg, false, e);
    }
    if by_queue.is_empty() {
        // Classic tracepoints carry no queue.
        let e =
            format!("the receive queue of each skb is not read by this probe set, {UNMEASURED}");
        return verdict(o, Mechanism::NotMeasured, cfg, false, e);
    }
    let queues = dev
        .rx_queues
        .map(|q| format!(" of {q}"))
        .unwrap_or_default();
    let mut used: Vec<(u32, u64)> = by_queue
        .iter()
        .copied()
        .filter(|(_, c)| pct(*c, total) >= RSS_QUEUE_PCT)
        .collect();
    used.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let (busiest, busiest_n) = used.first().copied().unwrap_or((0, total));
    // Many evenly loaded queues each hold a small share: judge the spread by
    // what the busiest queue did not get, not by a per-queue threshold.
    if used.len() >= 2 && pct(total - busiest_n, total) >= RSS_SPREAD_PCT {
        let shown: Vec<String> = used
            .iter()
            .take(4)
            .map(|(q, c)| format!("queue {q} {:.0}%", pct(*c, total)))
            .collect();
        let more = if used.len() > 4 {
            format!(", {} more", used.len() - 4)
        } else {
            String::new()
        };
        let (mechanism, whom) = match dev.class {
            DeviceClass::Virtual => (
                Mechanism::Deferred,
                "queues chosen before the virtual device (by its sender's transmit queue)"
                    .to_string(),
            ),
            _ => {
                let (m, w) = dev.doer("the NIC");
                (m, format!("{w} hashes flows to queues"))
            }
        };
        let e = format!(
            "{what} spread over {} receive queues{queues} ({}{more}): {whom}",
            used.len(),
            shown.join(", ")
        );
        return verdict(o, mechanism, cfg, false, e);
    }
    let share = if busiest_n == total {
        format!("all {what}")
    } else {
        format!("{:.1}% of {what}", pct(busiest_n, total))
    };
    if dev.rps {
        let e = format!(
            "{share} arrived on receive queue {busiest}{queues}; RPS (rps_cpus) spreads them over CPUs in software"
        );
        return verdict(o, Mechanism::Software, cfg, false, e);
    }
    let e = format!(
        "{share} arrived on receive queue {busiest}{queues}: no spreading (one flow always hashes to one queue; judge RSS with several flows)"
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
    use toe_agent_common::{GSO_OTHER, GSO_TCP4, Hist, hist::bucket_index};

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
            class: DeviceClass::Virtual,
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
        t.tx.queued_gso[GSO_TCP4] = 60_000;
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
        p.tx.queued_gso = t.tx.queued_gso;
        p.rx.skb_len = t.rx.skb_len;
        p.rx.segs_per_skb = t.rx.segs_per_skb;
        p.rx.skb_csum = t.rx.skb_csum;
        p
    }

    fn per_skb_veth(on: &[&str], off: &[&str]) -> Device {
        Device {
            coverage: Coverage {
                handoff: false,
                handoff_missing: 0,
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
            "net_dev_queue saw 60,000 skbs averaging 47.9 KB, 60,000 TCP skbs with more than one segment; who segments them shows only at net_dev_start_xmit, not attached (--per-skb, or missing from this kernel)"
        );
        assert_eq!(
            v[2].evidence,
            "60,000 TCP skbs after GRO carried 34.0 segments each: packets were coalesced; whether by the NIC or the CPU shows only at the driver hand-off, not attached (--per-skb, or missing from this kernel)"
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
            "50,000 TCP skbs after GRO (50,000 skbs near MTU size), one segment each: nothing coalesced although rx-gro is on"
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
            driver: "ice".into(),
            class: DeviceClass::Physical,
            ..per_skb_veth(&["rx-hashing"], &[])
        };
        let v = rss(&b, &nic);
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::Hardware, false));
        assert_eq!(
            v.evidence,
            "skbs spread over 2 receive queues of 8 (queue 4 53%, queue 1 47%): the NIC hashes flows to queues"
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
        let mut all: Vec<ProbeStatus> = crate::probes::HANDOFF_HOOKS
            .iter()
            .map(|h| st(h, ProbeState::Attached))
            .collect();
        all[0].status = ProbeState::Degraded;
        all.push(st("net_dev_start_xmit", ProbeState::Attached));
        assert_eq!(Coverage::of(&all), Coverage::default());
        // One hand-off hook the kernel refused: the others still count, and
        // the missing one is named.
        all[2].status = ProbeState::Failed;
        let partial = Coverage::of(&all);
        assert!(partial.handoff);
        assert_eq!(partial.missing_handoffs(), ["netif_receive_skb_entry"]);
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
                handoff_missing: 0,
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
            "net_dev_queue saw 60,000 TCP skbs of more than one segment (60,000 skbs averaging 47.9 KB); the driver received 2,040,000 skbs averaging 1.5 KB, 0 of them still multi-segment: segmentation done in software (GSO)"
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
            class: DeviceClass::Physical,
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
        t.tx.queued_gso[GSO_TCP4] = 1000;
        add(&mut t.tx.xmit_len, 64_000, 1000);
        add(&mut t.tx.segs_per_xmit, 44, 1000);
        t.tx.xmit_gso[GSO_TCP4] = 1000;
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
            "2,040,000 TCP packets of 1.5 KB on average at the hand-off became 60,000 skbs after GRO (34.0 segments per skb): coalesced by the CPU (software GRO)"
        );
        let c = rx_checksum(&b, &dev);
        assert_eq!((c.mechanism, c.mismatch), (Mechanism::Software, true));
        assert_eq!(
            c.evidence,
            "100.0% of 2,040,000 received packets had ip_summed=NONE: checksums verified by the CPU although rx-checksum is on"
        );
        let r = rss(&b, &dev);
        assert_eq!(r.mechanism, Mechanism::Off);
        assert_eq!(
            r.evidence,
            "the device recorded no receive queue for its packets (queue_mapping 0: skb_record_rx_queue() was not called): one path, no spreading"
        );
    }

    #[test]
    fn nic_checksums_and_lro() {
        let mut t = software_gro(1);
        let nic = Device {
            driver: "mlx5_core".into(),
            class: DeviceClass::Physical,
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

    fn nic(driver: &str, class: DeviceClass, on: &[&str], off: &[&str]) -> Device {
        Device {
            driver: driver.into(),
            class,
            ..veth(on, off)
        }
    }

    /// What a hardware-GRO NIC hands up: 5,000 skbs of ~43 KB, gso_size
    /// 1448, CHECKSUM_PARTIAL (bnxt_gro_skb() → tcp_gro_complete()).
    fn hw_gro_handoffs(csum_state: usize) -> Totals {
        let mut t = Totals::default();
        add(&mut t.rx.segment_len, 43_440, 5000);
        add(&mut t.rx.handoff_gso_size, 1448, 5000);
        t.rx.segment_csum[csum_state] = 5000;
        t.rx.handoff_by_hook[0] = 5000;
        t.rx.queue[0] = 5000;
        add(&mut t.rx.skb_len, 43_440, 5000);
        add(&mut t.rx.segs_per_skb, 30, 5000);
        t
    }

    #[test]
    fn hardware_gro_on_a_physical_nic_is_hardware_not_a_virtual_path() {
        let b = Blocks::from_totals(&hw_gro_handoffs(3));
        let bnxt = nic(
            "bnxt_en",
            DeviceClass::Physical,
            &["rx-gro", "rx-gro-hw", "rx-checksum"],
            &["rx-lro"],
        );
        let v = rx_coalescing(&b, &bnxt);
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::Hardware, false));
        assert_eq!(v.configured.as_ref().unwrap().feature, "rx-gro-hw");
        assert_eq!(
            v.evidence,
            "5,000 of 5,000 TCP packets arrived at the driver hand-off already 42.4 KB on average, with gso_size 1,448: coalesced by the NIC (hardware GRO: merged skbs marked CHECKSUM_PARTIAL)"
        );
        let c = rx_checksum(&b, &bnxt);
        assert_eq!((c.mechanism, c.mismatch), (Mechanism::Hardware, false));
        assert!(c.evidence.contains("hardware GRO"), "{}", c.evidence);
        for v in judge(&b, &bnxt) {
            assert!(!v.evidence.contains("virtual"), "{}", v.evidence);
            assert!(!v.evidence.contains("never checksummed"), "{}", v.evidence);
        }
        // Hardware GRO turned off, yet the NIC coalesced: a mismatch.
        let off = nic(
            "bnxt_en",
            DeviceClass::Physical,
            &["rx-gro"],
            &["rx-gro-hw", "rx-lro"],
        );
        let v = rx_coalescing(&b, &off);
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::Hardware, true));
    }

    #[test]
    fn lro_without_gso_size_is_coalescing_not_mtu_sized_traffic() {
        // bnxt TPA in LRO mode: 64 KB hand-offs, no gso_size, UNNECESSARY.
        let mut t = Totals::default();
        add(&mut t.rx.segment_len, 64_000, 3000);
        t.rx.segment_csum[1] = 3000;
        t.rx.handoff_by_hook[0] = 3000;
        add(&mut t.rx.skb_len, 64_000, 3000);
        add(&mut t.rx.segs_per_skb, 1, 3000);
        let b = Blocks::from_totals(&t);
        let dev = nic(
            "bnxt_en",
            DeviceClass::Physical,
            &["rx-gro", "rx-lro"],
            &["rx-gro-hw"],
        );
        let v = rx_coalescing(&b, &dev);
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::Hardware, false));
        assert_eq!(v.configured.as_ref().unwrap().feature, "rx-lro");
        assert!(
            v.evidence
                .ends_with("without a gso_size: coalesced by the NIC (LRO that sets no gso_size)"),
            "{}",
            v.evidence
        );
        assert!(!v.evidence.contains("near MTU"), "{}", v.evidence);
        // The same skbs seen only after GRO: coalesced by someone, not "off".
        let mut p = Totals::default();
        p.rx.skb_len = t.rx.skb_len;
        p.rx.segs_per_skb = t.rx.segs_per_skb;
        let dev = Device {
            coverage: Coverage {
                handoff: false,
                handoff_missing: 0,
                driver_xmit: false,
            },
            ..dev
        };
        let v = rx_coalescing(&Blocks::from_totals(&p), &dev);
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::NotMeasured, false));
    }

    #[test]
    fn paravirtual_devices_name_the_host_not_the_nic() {
        // virtio_net during a download: ~53 KB GSO packets with gso_size
        // 1348 and PARTIAL at the hand-off; the guest's own transmissions
        // leave as PARTIAL, TSO skbs intact.
        let mut t = hw_gro_handoffs(3);
        t.rx.segment_len = Hist::ZERO;
        add(&mut t.rx.segment_len, 53_000, 4000);
        t.rx.handoff_gso_size = Hist::ZERO;
        add(&mut t.rx.handoff_gso_size, 1348, 4000);
        t.rx.segment_csum = [0, 0, 0, 4000];
        t.rx.handoff_by_hook = [4000, 0, 0, 0, 0];
        t.rx.queue = [0; toe_agent_common::MAX_QUEUES];
        t.rx.queue[0] = 4000;
        add(&mut t.tx.queued_len, 30_000, 500);
        add(&mut t.tx.segs_per_queued, 22, 500);
        t.tx.queued_gso[GSO_TCP4] = 500;
        add(&mut t.tx.xmit_len, 30_000, 500);
        add(&mut t.tx.segs_per_xmit, 22, 500);
        t.tx.xmit_gso[GSO_TCP4] = 500;
        t.tx.xmit_csum[3] = 500;
        let b = Blocks::from_totals(&t);
        let virtio = nic(
            "virtio_net",
            DeviceClass::Paravirtual,
            &["tx-tcp-segmentation", "tx-checksum-ip-generic", "rx-gro"],
            &["rx-lro", "rx-gro-hw"],
        );
        let v = judge(&b, &virtio);
        let got: Vec<Mechanism> = v.iter().map(|v| v.mechanism).collect();
        assert_eq!(
            got,
            [
                Mechanism::Host,
                Mechanism::Host,
                Mechanism::Host,
                Mechanism::Host,
                Mechanism::Off
            ]
        );
        for v in &v[..4] {
            assert!(!v.mismatch, "{v:?}");
            assert!(
                v.evidence
                    .contains("the host behind the paravirtual virtio_net device"),
                "{}",
                v.evidence
            );
            assert!(!v.evidence.contains("the NIC"), "{}", v.evidence);
            assert!(!v.evidence.contains("built on this host"), "{}", v.evidence);
        }
    }

    #[test]
    fn rss_over_many_evenly_loaded_queues_is_spreading() {
        let mut t = software_gro(1);
        t.rx.queue = [0; toe_agent_common::MAX_QUEUES];
        // skb_record_rx_queue() stores queue n as n + 1.
        for q in 0..32 {
            t.rx.queue[q + 1] = 2_040_000 / 32;
        }
        let b = Blocks::from_totals(&t);
        let dev = Device {
            rx_queues: Some(32),
            ..nic("ice", DeviceClass::Physical, &["rx-hashing"], &[])
        };
        let v = rss(&b, &dev);
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::Hardware, false));
        assert!(
            v.evidence.starts_with("packets spread over 32 receive queues of 32 (queue 0 3%, queue 1 3%, queue 2 3%, queue 3 3%, 28 more)"),
            "{}",
            v.evidence
        );
        // One bulk flow and a trickle elsewhere is not spreading.
        t.rx.queue = [0; toe_agent_common::MAX_QUEUES];
        t.rx.queue[4] = 2_000_000;
        t.rx.queue[1] = 40_000;
        let v = rss(&Blocks::from_totals(&t), &dev);
        assert_eq!(v.mechanism, Mechanism::Off);
        assert!(
            v.evidence
                .starts_with("98.0% of packets arrived on receive queue 3 of 32"),
            "{}",
            v.evidence
        );
    }

    #[test]
    fn udp_bulk_does_not_pass_for_a_tcp_offload_fault() {
        // Receive: TCP merged 34 to 1 by GRO, beside 3M UDP datagrams GRO
        // leaves alone. Judged on all packets that is 1.04 per skb: "off".
        let mut t = software_gro(0);
        add(&mut t.rx.segment_len, 1200, 3_000_000);
        t.rx.segment_csum[0] += 3_000_000;
        t.rx.handoff_by_hook[0] += 3_000_000;
        t.rx.nontcp_handoffs = 3_000_000;
        add(&mut t.rx.skb_len, 1200, 3_000_000);
        add(&mut t.rx.segs_per_skb, 1, 3_000_000);
        t.rx.nontcp_skbs = 3_000_000;
        t.rx.nontcp_skb_segs = 3_000_000;
        let dev = veth(&["rx-gro"], &[]);
        let v = rx_coalescing(&Blocks::from_totals(&t), &dev);
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::Software, false));
        assert!(
            v.evidence
                .ends_with("; 3,000,000 packets of other protocols not judged"),
            "{}",
            v.evidence
        );
        // Transmit: the NIC does TSO for TCP, while UDP GSO skbs (no
        // tx-udp-segmentation) are split in software. Not a TSO mismatch.
        let mut t = Totals::default();
        add(&mut t.tx.queued_len, 64_000, 1000);
        add(&mut t.tx.segs_per_queued, 44, 1000);
        t.tx.queued_gso[GSO_TCP4] = 1000;
        add(&mut t.tx.queued_len, 60_000, 5000);
        add(&mut t.tx.segs_per_queued, 50, 5000);
        t.tx.queued_gso[GSO_OTHER] = 5000;
        add(&mut t.tx.xmit_len, 64_000, 1000);
        add(&mut t.tx.segs_per_xmit, 44, 1000);
        t.tx.xmit_gso[GSO_TCP4] = 1000;
        add(&mut t.tx.xmit_len, 1200, 250_000);
        add(&mut t.tx.segs_per_xmit, 1, 250_000);
        t.tx.xmit_csum[3] = 251_000;
        let dev = nic("ice", DeviceClass::Physical, &["tx-tcp-segmentation"], &[]);
        let v = tx_segmentation(&Blocks::from_totals(&t), &dev);
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::Hardware, false));
        assert!(
            v.evidence
                .ends_with("; 5,000 multi-segment skbs of other protocols not judged"),
            "{}",
            v.evidence
        );
    }

    #[test]
    fn classic_per_skb_reads_no_segments_per_skb_and_says_so() {
        // --classic --per-skb: skb lengths only, no gso_segs after GRO.
        let mut t = Totals::default();
        add(&mut t.rx.skb_len, 49_000, 60_000);
        let v = rx_coalescing(&Blocks::from_totals(&t), &per_skb_veth(&["rx-gro"], &[]));
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::NotMeasured, false));
        assert!(v.evidence.contains("classic tracepoints"), "{}", v.evidence);
    }

    #[test]
    fn ipv6_is_judged_against_the_ipv6_tso_flag() {
        let mut t = software_gso();
        t.tx.queued_gso = [0, 60_000, 0];
        let b = Blocks::from_totals(&t);
        // TSO for IPv4 on, for IPv6 off: software GSO is what was asked.
        let dev = nic(
            "ice",
            DeviceClass::Physical,
            &["tx-tcp-segmentation", "tx-checksum-ip-generic"],
            &["tx-tcp6-segmentation"],
        );
        let v = tx_segmentation(&b, &dev);
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::Software, false));
        assert_eq!(v.configured.unwrap().feature, "tx-tcp6-segmentation");
        // IPv6 TSO on, yet segmented in software: the mismatch names it.
        let dev = nic(
            "ice",
            DeviceClass::Physical,
            &["tx-tcp6-segmentation", "tx-tcp-segmentation"],
            &[],
        );
        let v = tx_segmentation(&b, &dev);
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::Software, true));
        assert!(
            v.evidence.ends_with("although tx-tcp6-segmentation is on"),
            "{}",
            v.evidence
        );
        // IPv4 traffic on the same device goes by the IPv4 flag.
        t.tx.queued_gso = [60_000, 0, 0];
        let v = tx_segmentation(&Blocks::from_totals(&t), &dev);
        assert_eq!(v.configured.unwrap().feature, "tx-tcp-segmentation");
    }

    #[test]
    fn loopback_single_segment_skbs_needed_no_segmenting() {
        // lo: MTU 65536, TCP's 64 KB skbs are one segment each.
        let mut t = Totals::default();
        add(&mut t.tx.queued_len, 65_483, 20_000);
        add(&mut t.tx.segs_per_queued, 1, 20_000);
        add(&mut t.tx.xmit_len, 65_483, 20_000);
        add(&mut t.tx.segs_per_xmit, 1, 20_000);
        t.tx.xmit_csum[3] = 20_000;
        let lo = Device {
            mtu: 65_536,
            driver: String::new(),
            ..veth(&["tx-tcp-segmentation", "tx-checksum-ip-generic"], &[])
        };
        let v = tx_segmentation(&Blocks::from_totals(&t), &lo);
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::NotExercised, false));
        assert!(
            v.evidence.contains("nothing needed segmenting"),
            "{}",
            v.evidence
        );
        // A few two-segment skbs over the 64 KB GSO limit, split in software
        // whatever TSO says (what lo shows under iperf3): no mismatch.
        t.tx.queued_gso[GSO_TCP4] = 1128;
        add(&mut t.tx.segs_per_queued, 2, 1128);
        add(&mut t.tx.queued_len, 65_600, 1128);
        let v = tx_segmentation(&Blocks::from_totals(&t), &lo);
        assert_eq!((v.mechanism, v.mismatch), (Mechanism::NotExercised, false));
        assert!(
            v.evidence.contains("gso_features_check()"),
            "{}",
            v.evidence
        );
        t.tx.queued_gso[GSO_TCP4] = 0;
        // With a 1500-byte MTU the same single-segment skbs would be "off".
        let v = tx_segmentation(&Blocks::from_totals(&t), &Device { mtu: 1500, ..lo });
        assert_eq!(v.mechanism, Mechanism::Off);
    }

    #[test]
    fn a_missing_handoff_hook_is_not_claimed_as_seen() {
        // The driver hands packets to netif_receive_skb(), whose hook did
        // not attach; napi_gro_receive's did and saw nothing.
        let mut t = Totals::default();
        add(&mut t.rx.skb_len, 1500, 50_000);
        add(&mut t.rx.segs_per_skb, 1, 50_000);
        let dev = Device {
            coverage: Coverage {
                handoff: true,
                handoff_missing: 1 << 2,
                driver_xmit: true,
            },
            ..veth(&["rx-gro", "rx-checksum"], &[])
        };
        let b = Blocks::from_totals(&t);
        for v in [rx_coalescing(&b, &dev), rx_checksum(&b, &dev)] {
            assert_eq!((v.mechanism, v.mismatch), (Mechanism::NotMeasured, false));
            assert_eq!(
                v.evidence,
                "the attached hand-off hooks saw 0 TCP packets, but 50,000 segments reached the stack after GRO: the driver hands packets up through netif_receive_skb_entry, not attached"
            );
        }
        // When the attached hooks saw the traffic, they are judged as usual.
        let mut t = software_gro(0);
        t.add(&Totals::default());
        let v = rx_coalescing(&Blocks::from_totals(&t), &dev);
        assert_eq!(v.mechanism, Mechanism::Software);
    }
}
