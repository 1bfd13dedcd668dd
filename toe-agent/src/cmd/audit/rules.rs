//! The seed manual's checks as rules over a [`Snapshot`]. Each finding has
//! a severity (the manual's 1-10 impact scale), the evidence read from the
//! system, and the command that would fix it. Pure functions: tested on
//! recorded snapshots (tests/fixtures).
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sys::ethtool;

use super::snapshot::{Host, Interface, KmsgLine, Sampled, Snapshot, Softnet};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Finding {
    /// Stable identifier of the rule (docs/audit.md).
    pub id: String,
    /// 1 (information) to 10 (critical), the seed manual's impact scale.
    pub severity: u8,
    /// The interface it is about; None for host-wide findings.
    pub iface: Option<String>,
    pub title: String,
    pub evidence: String,
    /// The command that would fix it (the audit itself never runs it).
    pub fix: Option<String>,
}

/// Severity bands, for grouping and `--fail-on`.
pub(crate) fn level(severity: u8) -> &'static str {
    match severity {
        9.. => "critical",
        7..=8 => "high",
        4..=6 => "medium",
        2..=3 => "low",
        _ => "info",
    }
}

fn finding(
    id: &str,
    severity: u8,
    iface: Option<&str>,
    title: String,
    evidence: String,
    fix: Option<String>,
) -> Finding {
    Finding {
        id: id.into(),
        severity,
        iface: iface.map(str::to_string),
        title,
        evidence,
        fix,
    }
}

/// Per-second increase of a counter between the two samples.
fn rate(s: &Sampled<std::collections::BTreeMap<String, u64>>, key: &str, secs: f64) -> Option<f64> {
    let (a, b) = (s.first.get(key)?, s.second.get(key)?);
    Some(b.saturating_sub(*a) as f64 / secs.max(1e-3))
}

/// Feature dependencies the kernel enforces (net/core/dev.c,
/// netdev_fix_features()), to explain a requested-but-inactive feature.
fn dependency_hint(feature: &str) -> &'static str {
    match feature {
        f if f.starts_with("tx-tcp") && f.ends_with("segmentation") => {
            " (TSO needs scatter-gather, which needs TX checksum offload)"
        }
        "tx-scatter-gather" | "tx-scatter-gather-fraglist" => {
            " (scatter-gather needs TX checksum offload)"
        }
        "rx-gro-hw" => " (hardware GRO needs GRO and RX checksum offload)",
        "rx-lro" => " (LRO is turned off by the kernel on forwarding devices and under XDP)",
        _ => "",
    }
}

/// ethtool -K short names for the features people toggle.
fn short_name(feature: &str) -> &str {
    match feature {
        "tx-tcp-segmentation" => "tso",
        "tx-generic-segmentation" => "gso",
        "rx-gro" => "gro",
        "rx-lro" => "lro",
        "rx-gro-hw" => "rx-gro-hw",
        "rx-checksum" => "rx",
        "tx-scatter-gather" => "sg",
        f if f.starts_with("tx-checksum") => "tx",
        f => f,
    }
}

pub(super) const TX_CSUM: &[&str] = &[
    "tx-checksum-ip-generic",
    "tx-checksum-ipv4",
    "tx-checksum-ipv6",
];

fn features(i: &Interface, out: &mut Vec<Finding>) {
    inactive_features(i, out);
    tx_checksum_off(i, out);
    hardware_limits(i, out);
    offloads_off(i, out);
}

/// One finding for every feature the kernel kept off although asked: they
/// usually share a cause.
fn inactive_features(i: &Interface, out: &mut Vec<Finding>) {
    let n = Some(i.name.as_str());
    let inactive: Vec<&crate::sys::ethtool::Feature> = i
        .features
        .iter()
        .filter(|f| f.requested && !f.active && !f.fixed())
        .collect();
    if let Some(first) = inactive.first() {
        let names: Vec<String> = inactive
            .iter()
            .map(|f| format!("{}{}", f.name, dependency_hint(&f.name)))
            .collect();
        let title = if inactive.len() == 1 {
            format!("{} is requested but not active", first.name)
        } else {
            format!("{} features are requested but not active", inactive.len())
        };
        out.push(finding(
            "feature_not_active",
            6,
            n,
            title,
            format!("requested on, active off: {}", names.join("; ")),
            Some(format!(
                "ethtool -k {} | grep -E 'requested|fixed'   # enable what they depend on, then: ethtool -K {} {} on",
                i.name,
                i.name,
                short_name(&first.name)
            )),
        ));
    }
}

/// TX checksum offload off: with TSO wanted, it takes TSO with it.
fn tx_checksum_off(i: &Interface, out: &mut Vec<Finding>) {
    let n = Some(i.name.as_str());
    let tso_wanted = i
        .feature("tx-tcp-segmentation")
        .is_some_and(|f| f.requested);
    let csum_on = TX_CSUM.iter().any(|c| i.active(c));
    let has_csum = TX_CSUM
        .iter()
        .any(|c| i.feature(c).is_some_and(|f| !f.fixed()));
    if tso_wanted && !csum_on && has_csum {
        out.push(finding(
            "csum_off_tso_wanted",
            7,
            n,
            "TX checksum offload is off while TSO is wanted".into(),
            "tx-tcp-segmentation is requested but every tx-checksum feature is off: the kernel disables TSO and segments and checksums on the CPU".into(),
            Some(format!("ethtool -K {} tx on", i.name)),
        ));
    }
    if i.physical && !tso_wanted && !csum_on && has_csum {
        out.push(finding(
            "tx_csum_off",
            5,
            n,
            "TX checksum offload is off".into(),
            "every tx-checksum feature is off although the device offers one: the CPU computes every checksum before the driver (skb_checksum_help(), net/core/dev.c)".into(),
            Some(format!("ethtool -K {} tx on", i.name)),
        ));
    }
}

/// TSO, GRO or RX checksum off on hardware that offers them.
fn offloads_off(i: &Interface, out: &mut Vec<Finding>) {
    let n = Some(i.name.as_str());
    if i.physical {
        for (feature, severity, what) in [
            (
                "tx-tcp-segmentation",
                5,
                "the kernel segments every large send on the CPU (GSO)",
            ),
            (
                "rx-gro",
                4,
                "every received segment travels the stack on its own",
            ),
            ("rx-checksum", 5, "the CPU verifies every received checksum"),
        ] {
            if let Some(f) = i
                .feature(feature)
                .filter(|f| !f.active && !f.fixed() && !f.requested)
            {
                out.push(finding(
                    &format!("{}_off", short_name(feature)),
                    severity,
                    n,
                    format!("{} is off", f.name),
                    format!("{} is off although the device supports it: {what}", f.name),
                    Some(format!("ethtool -K {} {} on", i.name, short_name(feature))),
                ));
            }
        }
    }
}

/// Offloads the device cannot do: off and `[fixed]`. Not a setting to
/// change, but what the hardware (or its driver) lacks.
fn hardware_limits(i: &Interface, out: &mut Vec<Finding>) {
    if !i.physical {
        return;
    }
    // The TX checksum features are alternatives (a device offers the
    // generic one or the per-protocol ones): one active covers them all.
    let csum_on = TX_CSUM.iter().any(|c| i.active(c));
    let fixed_off: Vec<&str> = i
        .features
        .iter()
        .filter(|f| ethtool::OFFLOAD_FEATURES.contains(&f.name.as_str()) && !f.active && f.fixed())
        .filter(|f| !(csum_on && TX_CSUM.contains(&f.name.as_str())))
        .map(|f| f.name.as_str())
        .collect();
    if !fixed_off.is_empty() {
        out.push(finding(
            "hardware_limits",
            1,
            Some(&i.name),
            "offloads the device cannot do".into(),
            format!(
                "off [fixed]: {}: the device or its driver does not offer them, so the kernel does this work on the CPU; nothing to turn on",
                fixed_off.join(", ")
            ),
            None,
        ));
    }
}

/// LRO where the device forwards: a port of a bridge, bond or team, or a
/// device whose own forwarding sysctl is on (the host-wide ones stand in
/// for snapshots without it). A VLAN or macvlan on top does not forward
/// by itself, so it is no reason here.
fn lro_forwarding(s: &Snapshot, i: &Interface, out: &mut Vec<Finding>) {
    if !i.active("rx-lro") {
        return;
    }
    let host_forwards = s
        .host
        .sysctls
        .get("net.ipv4.ip_forward")
        .is_some_and(|v| v == "1")
        || s.host
            .sysctls
            .get("net.ipv6.conf.all.forwarding")
            .is_some_and(|v| v == "1");
    let why = if let Some(m) = &i.master {
        Some(format!("{} is a port of {m}", i.name))
    } else if i.forwarding.unwrap_or(host_forwards) {
        Some(format!(
            "{} forwards packets (its forwarding sysctl is 1)",
            i.name
        ))
    } else {
        None
    };
    if let Some(why) = why {
        // What it costs now: merged frames too big for the way out are
        // dropped (ip_forward() → ip_exceeds_mtu(), counted in FragFails).
        let too_big = match snmp_rise(&s.host, "Ip.FragFails") {
            0 => String::new(),
            n => format!(
                "; the stack dropped {n} packets too big to forward during the sample (Ip FragFails)"
            ),
        };
        out.push(finding(
            "lro_forwarding",
            10,
            Some(&i.name),
            "LRO is on while packets are forwarded".into(),
            format!("rx-lro is active and {why}: LRO merges frames that must leave as they came (it is not reversible, unlike GRO){too_big}"),
            Some(format!("ethtool -K {} lro off", i.name)),
        ));
    }
}

fn rings(s: &Snapshot, i: &Interface, out: &mut Vec<Finding>) {
    let Some(r) = i.rings else { return };
    if r.rx_max == 0 || r.rx >= r.rx_max {
        return;
    }
    let secs = s.host.sample_ms as f64 / 1000.0;
    let drops: Vec<String> = [
        "rx_missed_errors",
        "rx_fifo_errors",
        "rx_dropped",
        "rx_over_errors",
    ]
    .iter()
    .filter_map(|k| {
        rate(&i.counters, k, secs)
            .filter(|&r| r > 0.0)
            .map(|r| format!("{k} +{r:.0}/s"))
    })
    .collect();
    let fix = Some(format!("ethtool -G {} rx {}", i.name, r.rx_max));
    if drops.is_empty() {
        out.push(finding(
            "ring_below_max",
            2,
            Some(&i.name),
            "RX ring below its maximum".into(),
            format!(
                "RX ring {} of a possible {} (no drops during the sample)",
                r.rx, r.rx_max
            ),
            fix,
        ));
    } else {
        out.push(finding(
            "nic_buffer_exhaustion",
            8,
            Some(&i.name),
            "NIC buffer exhaustion: drops with the RX ring below its maximum".into(),
            format!(
                "RX ring {} of a possible {}, and {}",
                r.rx,
                r.rx_max,
                drops.join(", ")
            ),
            fix,
        ));
    }
}

fn queues(s: &Snapshot, i: &Interface, out: &mut Vec<Finding>) {
    let n = Some(i.name.as_str());
    let cpus = s.host.online_cpus;
    if let Some(c) = i.channels {
        let q = c.rx_queues();
        let max = c.max_combined.max(c.max_rx);
        if i.physical && q < cpus && max > q {
            out.push(finding(
                "queues_below_cpus",
                4,
                n,
                "fewer receive queues than CPUs".into(),
                format!("{q} receive queues for {cpus} online CPUs; the device allows {max}"),
                Some(format!("ethtool -L {} combined {}", i.name, cpus.min(max))),
            ));
        }
    }
    let Some(rss) = &i.rss else { return };
    let q = i.channels.map(|c| c.rx_queues()).unwrap_or(0);
    if rss.indirection.is_empty() || q < 2 {
        return;
    }
    let mut weight = vec![0u32; q as usize];
    for &e in &rss.indirection {
        if let Some(w) = weight.get_mut(e as usize) {
            *w += 1;
        }
    }
    let unused: Vec<String> = weight
        .iter()
        .enumerate()
        .filter(|(_, w)| **w == 0)
        .map(|(q, _)| q.to_string())
        .collect();
    let equal = Some(format!("ethtool -X {} equal {q}", i.name));
    if !unused.is_empty() {
        out.push(finding(
            "rss_unused_queues",
            6,
            n,
            "RSS indirection table leaves queues unused".into(),
            format!(
                "{} entries spread over {} of {q} queues; queue(s) {} never receive",
                rss.indirection.len(),
                q as usize - unused.len(),
                unused.join(", ")
            ),
            equal,
        ));
    } else {
        let (min, max) = (
            *weight.iter().min().unwrap_or(&0),
            *weight.iter().max().unwrap_or(&0),
        );
        if min > 0 && max as f64 / min as f64 > 1.5 {
            out.push(finding(
                "rss_uneven",
                4,
                n,
                "RSS indirection table weights queues unevenly".into(),
                format!(
                    "queues get between {min} and {max} of {} entries",
                    rss.indirection.len()
                ),
                equal,
            ));
        }
    }
    if rss.key_bytes == 0 {
        out.push(finding(
            "rss_no_key",
            3,
            n,
            "no RSS hash key reported".into(),
            format!("{q} receive queues but the driver reports no hash key"),
            Some(format!("ethtool -x {}", i.name)),
        ));
    }
}

fn coalescing(i: &Interface, out: &mut Vec<Finding>) {
    let Some(c) = i.coalesce else { return };
    let high = !c.adaptive_rx && c.rx_usecs > 50;
    out.push(finding(
        "interrupt_coalescing",
        if high { 3 } else { 1 },
        Some(&i.name),
        "interrupt coalescing".into(),
        format!(
            "rx-usecs {} rx-frames {} adaptive-rx {}, tx-usecs {} adaptive-tx {}; for small latency-sensitive packets keep the rx timer low (or adaptive); for bulk throughput a higher timer saves interrupts",
            c.rx_usecs,
            c.rx_frames,
            if c.adaptive_rx { "on" } else { "off" },
            c.tx_usecs,
            if c.adaptive_tx { "on" } else { "off" }
        ),
        high.then(|| format!("ethtool -C {} adaptive-rx on   # or: rx-usecs 8", i.name)),
    ));
}

fn errors(s: &Snapshot, i: &Interface, out: &mut Vec<Finding>) {
    let secs = s.host.sample_ms as f64 / 1000.0;
    let bad = |k: &str| {
        let k = k.to_ascii_lowercase();
        [
            "drop", "miss", "err", "fifo", "discard", "timeout", "fail", "crc", "over",
        ]
        .iter()
        .any(|p| k.contains(p))
    };
    let mut rates: Vec<String> = Vec::new();
    for (what, sampled) in [("ethtool -S", &i.nic_stats), ("statistics", &i.counters)] {
        for k in sampled.second.keys().filter(|k| bad(k)) {
            if let Some(r) = rate(sampled, k, secs).filter(|&r| r > 0.0) {
                rates.push(format!("{k} +{r:.1}/s ({what})"));
            }
        }
    }
    let totals: Vec<String> = i
        .counters
        .second
        .iter()
        .filter(|(k, v)| bad(k) && **v > 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if !rates.is_empty() {
        out.push(finding(
            "nic_drops_rising",
            7,
            Some(&i.name),
            "drops or errors rising on the interface".into(),
            format!("during the {:.1} s sample: {}", secs, rates.join(", ")),
            Some(format!("ethtool -S {} | grep -iE 'drop|miss|err'", i.name)),
        ));
    } else if !totals.is_empty() {
        out.push(finding(
            "nic_drops_total",
            2,
            Some(&i.name),
            "drops or errors counted since boot (not rising now)".into(),
            totals.join(", "),
            None,
        ));
    }
}

/// Standard per-queue statistics: errors rising on a queue, and how the
/// packets spread over the queues during the sample.
fn queue_stats(s: &Snapshot, i: &Interface, out: &mut Vec<Finding>) {
    const ERRORS: [&str; 7] = [
        "rx-hw-drops",
        "rx-hw-drop-overruns",
        "rx-alloc-fail",
        "rx-csum-bad",
        "rx-hw-drop-ratelimits",
        "tx-hw-drops",
        "tx-hw-drop-errors",
    ];
    let secs = (s.host.sample_ms as f64 / 1000.0).max(1e-3);
    let n = Some(i.name.as_str());
    let mut rising = Vec::new();
    let mut spread = Vec::new();
    for b in &i.qstats.second {
        let Some(a) = i
            .qstats
            .first
            .iter()
            .find(|a| a.queue_type == b.queue_type && a.queue_id == b.queue_id)
        else {
            continue;
        };
        let d = |k: &str| {
            b.stats
                .get(k)
                .copied()
                .unwrap_or(0)
                .saturating_sub(a.stats.get(k).copied().unwrap_or(0))
        };
        for k in ERRORS {
            if d(k) > 0 {
                rising.push(format!(
                    "{}-{} {k} +{:.0}/s",
                    b.queue_type,
                    b.queue_id,
                    d(k) as f64 / secs
                ));
            }
        }
        let packets = d(&format!("{}-packets", b.queue_type));
        spread.push(format!(
            "{}-{} {:.0} pkt/s",
            b.queue_type,
            b.queue_id,
            packets as f64 / secs
        ));
    }
    if !rising.is_empty() {
        out.push(finding(
            "queue_errors_rising",
            7,
            n,
            "per-queue drops or errors rising".into(),
            format!("netdev qstats during the sample: {}", rising.join(", ")),
            Some(format!("ynl --family netdev --dump qstats-get --json '{{\"ifindex\": {}, \"scope\": \"queue\"}}'", i.ifindex)),
        ));
    }
    if !spread.is_empty() {
        out.push(finding(
            "queue_traffic",
            1,
            n,
            "per-queue traffic (netdev qstats)".into(),
            spread.join(", "),
            None,
        ));
    }
}

/// The physical layer (/sys/class/net/<if>): no carrier on a device that
/// is up, a link that went down and up during the sample, and a physical
/// link not autonegotiated.
fn physical_layer(s: &Snapshot, i: &Interface, out: &mut Vec<Finding>) {
    let n = Some(i.name.as_str());
    let state = i.operstate.as_deref().unwrap_or("unknown");
    if i.carrier == Some(false) || state == "lowerlayerdown" || (i.physical && state == "down") {
        out.push(finding(
            "no_carrier",
            8,
            n,
            "no link".into(),
            format!(
                "operstate {state}, carrier {}: no signal from the peer (cable, transceiver, the switch port)",
                match i.carrier {
                    Some(true) => "on",
                    Some(false) => "off",
                    None => "unknown (device down)",
                }
            ),
            Some(format!("ip link set {} up; ethtool {}", i.name, i.name)),
        ));
    }
    let flaps = i
        .carrier_changes
        .second
        .saturating_sub(i.carrier_changes.first);
    if flaps > 0 {
        out.push(finding(
            "link_flapping",
            7,
            n,
            "the link went down and up during the sample".into(),
            format!(
                "carrier_changes rose by {flaps} in {} ms ({} since boot): every change resets the link and drops what was in flight",
                s.host.sample_ms, i.carrier_changes.second
            ),
            Some(format!("ethtool {}; ethtool -S {}  # then the cable, transceiver and switch port", i.name, i.name)),
        ));
    }
    // Only silicon negotiates: a paravirtual or virtual device reports
    // autoneg off with nothing to negotiate (virtio_net, veth).
    let silicon = i.physical
        && crate::model::class::DeviceClass::of_driver(&i.driver.driver)
            == crate::model::class::DeviceClass::Physical;
    if silicon && i.autoneg == Some(false) {
        out.push(finding(
            "autoneg_off",
            3,
            n,
            "autonegotiation is off".into(),
            format!(
                "speed and duplex are forced ({}): a peer that autonegotiates falls back to half duplex",
                i.speed_mbps
                    .map(|s| format!("{s} Mb/s"))
                    .unwrap_or_else(|| "unknown speed".into())
            ),
            Some(format!("ethtool -s {} autoneg on", i.name)),
        ));
    }
}

fn link(s: &Snapshot, i: &Interface, out: &mut Vec<Finding>) {
    let n = Some(i.name.as_str());
    let speed = i
        .speed_mbps
        .map(|s| format!("{s} Mb/s"))
        .unwrap_or_else(|| "unknown speed".into());
    let duplex = i.duplex.clone().unwrap_or_else(|| "unknown".into());
    let d = &i.driver;
    out.push(finding(
        "device",
        1,
        n,
        "device".into(),
        format!(
            "driver {} {}, firmware {}, bus {}; link {speed}, {duplex} duplex; MTU {}",
            if d.driver.is_empty() { "?" } else { &d.driver },
            d.version,
            if d.firmware_version.is_empty() {
                "n/a"
            } else {
                &d.firmware_version
            },
            if d.bus_info.is_empty() {
                "n/a"
            } else {
                &d.bus_info
            },
            i.mtu
        ),
        None,
    ));
    physical_layer(s, i, out);
    if i.duplex.as_deref() == Some("half") {
        out.push(finding(
            "half_duplex",
            6,
            n,
            "link is half duplex".into(),
            format!("{speed}, half duplex"),
            Some(format!(
                "ethtool {}  # check autonegotiation with the peer",
                i.name
            )),
        ));
    }
    if i.physical && i.mtu > 9000 {
        out.push(finding(
            "mtu_unusual",
            3,
            n,
            "MTU above 9000".into(),
            format!(
                "MTU {}: beyond the jumbo frame size most switches forward",
                i.mtu
            ),
            Some(format!("ip link set {} mtu 9000", i.name)),
        ));
    } else if i.physical && i.mtu < 1500 {
        out.push(finding(
            "mtu_small",
            2,
            n,
            "MTU below 1500".into(),
            format!("MTU {}: more packets (and per-packet work) per byte; often set for a tunnel or overlay underneath, so confirm before raising it", i.mtu),
            None,
        ));
    } else if i.mtu > 1500 {
        out.push(finding(
            "jumbo_frames",
            1,
            n,
            "jumbo frames".into(),
            format!("MTU {}: the peer and every hop must use the same MTU; confirm it (not visible from here)", i.mtu),
            None,
        ));
    }
}

fn virtualisation(s: &Snapshot, i: &Interface, out: &mut Vec<Finding>) {
    let n = Some(i.name.as_str());
    if i.driver.driver == "virtio_net" {
        out.push(finding(
            "virtio",
            2,
            n,
            "offloads depend on the hypervisor".into(),
            format!(
                "{} is virtio_net{}: TSO, checksum and LRO-like features are what the host's vhost/virtio backend negotiated; 'hardware' means the host (its NIC or its kernel) does the work, not this guest",
                i.name,
                s.host.hypervisor.as_ref().map(|h| format!(" under {h}")).unwrap_or_default()
            ),
            None,
        ));
    }
    if i.sriov_vf {
        out.push(finding(
            "sriov_vf",
            2,
            n,
            "SR-IOV virtual function".into(),
            format!("{} is a VF ({}): its offloads and queues are limited by the physical function and the hypervisor's policy", i.name, i.driver.driver),
            None,
        ));
    }
}

/// A sysctl's number (the last one, for the three-number TCP buffers).
fn num(h: &Host, k: &str) -> Option<u64> {
    h.sysctls
        .get(k)
        .and_then(|v| v.split_whitespace().last()?.parse::<u64>().ok())
}

/// A sysctl as shown in evidence. Host-wide sysctls are not visible from
/// a container's namespace.
fn shown(h: &Host, k: &str) -> String {
    h.sysctls
        .get(k)
        .cloned()
        .unwrap_or_else(|| "unknown (not readable here)".into())
}

/// The CPUs whose softnet counter `f` rose during the sample.
fn rising(h: &Host, f: fn(&Softnet) -> u64) -> Vec<String> {
    h.softnet
        .second
        .iter()
        .filter_map(|b| {
            let a = h.softnet.first.iter().find(|a| a.cpu == b.cpu)?;
            let d = f(b).saturating_sub(f(a));
            (d > 0).then(|| format!("cpu{} +{d}", b.cpu))
        })
        .collect()
}

/// How much an SNMP counter rose during the sample (0 when unread).
fn snmp_rise(h: &Host, name: &str) -> u64 {
    let at = |m: &BTreeMap<String, u64>| m.get(name).copied().unwrap_or(0);
    at(&h.snmp.second).saturating_sub(at(&h.snmp.first))
}

/// Packets the stack dropped for a bad checksum during the sample, with
/// who verified them: the CPU where rx-checksum is off.
fn checksum_errors(s: &Snapshot, out: &mut Vec<Finding>) {
    let rises: Vec<(&str, u64)> = ["Tcp.InCsumErrors", "Udp.InCsumErrors", "Icmp.InCsumErrors"]
        .into_iter()
        .map(|k| (k, snmp_rise(&s.host, k)))
        .filter(|(_, n)| *n > 0)
        .collect();
    if rises.is_empty() {
        return;
    }
    let total: u64 = rises.iter().map(|(_, n)| n).sum();
    let by: Vec<String> = rises
        .iter()
        .map(|(k, n)| format!("{} +{n}", k.replace('.', " ")))
        .collect();
    let cpu_verified: Vec<&str> = s
        .interfaces
        .iter()
        .filter(|i| i.feature("rx-checksum").is_some_and(|f| !f.active))
        .map(|i| i.name.as_str())
        .collect();
    let who = if cpu_verified.is_empty() {
        String::new()
    } else {
        format!(
            "; rx-checksum is off on {}, so the CPU verified every packet and found these",
            cpu_verified.join(", ")
        )
    };
    out.push(finding(
        "checksum_errors",
        6,
        None,
        "packets dropped for bad checksums".into(),
        format!(
            "the stack dropped {total} packets with bad checksums during the sample ({}){who}: corruption on the wire or a broken offload (`toe-agent trace` names the device and the drop reasons)",
            by.join(", ")
        ),
        None,
    ));
}

/// IPsec and TLS: SAs whose crypto the CPU does on a host whose NIC
/// offers ESP offload, and offload features left off.
fn ipsec_tls(s: &Snapshot, out: &mut Vec<Finding>) {
    let x = &s.host.xfrm;
    if let Some(e) = &x.error {
        out.push(finding(
            "xfrm_unreadable",
            1,
            None,
            "IPsec SAs not read".into(),
            e.clone(),
            None,
        ));
    }
    let offers = |i: &&Interface, f: &str| i.feature(f).is_some_and(|f| f.active || !f.fixed());
    let esp_nics: Vec<&str> = s
        .interfaces
        .iter()
        .filter(|i| offers(i, "esp-hw-offload"))
        .map(|i| i.name.as_str())
        .collect();
    let software: Vec<String> = x
        .sas
        .iter()
        .filter(|sa| sa.proto == "esp" && sa.offload.is_none())
        .map(|sa| format!("spi 0x{:08x}", sa.spi))
        .collect();
    if !software.is_empty() && !esp_nics.is_empty() {
        out.push(finding(
            "ipsec_in_software",
            5,
            (esp_nics.len() == 1).then(|| esp_nics[0]),
            "IPsec runs on the CPU although the NIC offers ESP offload".into(),
            format!(
                "{} ESP SAs without offload ({}); {} offers esp-hw-offload",
                software.len(),
                software.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                esp_nics.join(", ")
            ),
            Some(format!(
                "ethtool -K {} esp-hw-offload on; then add the SAs with: ip xfrm state add ... offload dev {} dir out|in",
                esp_nics[0], esp_nics[0]
            )),
        ));
    }
    let offloaded = x.sas.iter().filter(|sa| sa.offload.is_some()).count();
    if offloaded > 0 {
        out.push(finding(
            "ipsec_offloaded",
            1,
            None,
            "IPsec SAs in hardware".into(),
            format!(
                "{offloaded} of {} SAs are offloaded to a device (XFRMA_OFFLOAD_DEV)",
                x.sas.len()
            ),
            None,
        ));
    }
    for i in s.interfaces.iter().filter(|i| i.physical) {
        let off: Vec<&str> = ["esp-hw-offload", "tls-hw-tx-offload", "tls-hw-rx-offload"]
            .into_iter()
            .filter(|f| i.feature(f).is_some_and(|f| !f.active && !f.fixed()))
            .collect();
        if !off.is_empty() {
            out.push(finding(
                "crypto_offload_off",
                2,
                Some(&i.name),
                "IPsec/TLS offload available but off".into(),
                format!(
                    "{} off although the device supports it: IPsec (xfrm) and kernel TLS traffic on it is encrypted by the CPU",
                    off.join(", ")
                ),
                Some(format!(
                    "ethtool -K {} {}",
                    i.name,
                    off.iter().map(|f| format!("{f} on")).collect::<Vec<_>>().join(" ")
                )),
            ));
        }
    }
}

fn host(s: &Snapshot, out: &mut Vec<Finding>) {
    let h = &s.host;
    ipsec_tls(s, out);
    checksum_errors(s, out);
    backlog(h, out);
    time_squeeze(h, out);
    softirq_share(h, out);
    socket_buffers(h, out);
    kernel_log(h, out);
    if h.container {
        out.push(finding(
            "container",
            1,
            None,
            "running in a container's network namespace".into(),
            "interfaces here are virtual (veth, macvlan, ...): their offloads defer to the host's physical NIC; audit the host too".into(),
            None,
        ));
    }
}

/// The seed manual's netdev_max_backlog for 10G+ bursts.
const MANUAL_BACKLOG: u64 = 5000;

/// Drops at the per-CPU backlog, or a backlog below the manual's value.
fn backlog(h: &Host, out: &mut Vec<Finding>) {
    let dropped = rising(h, |s| s.dropped);
    let backlog = num(h, "net.core.netdev_max_backlog");
    if !dropped.is_empty() {
        // The manual's value, or double what already overflowed.
        let raise = backlog.map_or(MANUAL_BACKLOG, |b| (b * 2).max(MANUAL_BACKLOG));
        out.push(finding(
            "backlog_drops",
            7,
            None,
            "packets dropped: the per-CPU backlog was full".into(),
            format!(
                "softnet_stat dropped during the sample: {}; net.core.netdev_max_backlog = {}",
                dropped.join(", "),
                shown(h, "net.core.netdev_max_backlog")
            ),
            Some(sysctl_fix(
                "net.core.netdev_max_backlog",
                &raise.to_string(),
            )),
        ));
    } else if backlog.is_some_and(|b| b < MANUAL_BACKLOG) {
        out.push(finding(
            "backlog_small",
            2,
            None,
            "small netdev_max_backlog".into(),
            format!(
                "net.core.netdev_max_backlog = {}, below {MANUAL_BACKLOG} (no drops now; bursts at 10G+ can fill it)",
                shown(h, "net.core.netdev_max_backlog")
            ),
            Some(sysctl_fix(
                "net.core.netdev_max_backlog",
                &MANUAL_BACKLOG.to_string(),
            )),
        ));
    }
}

/// A sysctl's fix as the manual writes it: a line in /etc/sysctl.d, so
/// that it survives a reboot (`sysctl -w` alone does not), loaded now.
fn sysctl_fix(key: &str, value: &str) -> String {
    format!(
        "echo '{key} = {value}' >> /etc/sysctl.d/90-network-offload.conf && sysctl -p /etc/sysctl.d/90-network-offload.conf"
    )
}

/// The NET_RX softirq ran out of budget.
fn time_squeeze(h: &Host, out: &mut Vec<Finding>) {
    let squeezed = rising(h, |s| s.time_squeeze);
    if !squeezed.is_empty() {
        out.push(finding(
            "time_squeeze",
            5,
            None,
            "NET_RX softirq ran out of budget".into(),
            format!(
                "time_squeeze rose during the sample ({}): net.core.netdev_budget = {}, netdev_budget_usecs = {}",
                squeezed.join(", "),
                shown(h, "net.core.netdev_budget"),
                shown(h, "net.core.netdev_budget_usecs")
            ),
            Some(sysctl_fix(
                "net.core.netdev_budget",
                &(num(h, "net.core.netdev_budget").unwrap_or(300) * 2).to_string(),
            )),
        ));
    }
}

/// The busiest CPU's share of softirq time.
fn softirq_share(h: &Host, out: &mut Vec<Finding>) {
    let secs = h.sample_ms as f64 / 1000.0;
    let busiest = h
        .cpu_ticks
        .second
        .iter()
        .filter_map(|b| {
            let a = h.cpu_ticks.first.iter().find(|a| a.cpu == b.cpu)?;
            let total = b.total.saturating_sub(a.total);
            (total > 0).then(|| {
                (
                    b.cpu,
                    100.0 * b.softirq.saturating_sub(a.softirq) as f64 / total as f64,
                )
            })
        })
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((cpu, share)) = busiest.filter(|(_, s)| *s > 5.0) {
        out.push(finding(
            "softirq_share",
            5,
            None,
            "softirq takes more than 5% of a CPU".into(),
            format!("cpu{cpu} spent {share:.1}% in softirq during the {secs:.1} s sample"),
            Some("toe-agent trace --iface <IF>   # which offload is missing".into()),
        ));
    }
}

/// Socket buffer limits too small for a fast flow's window.
fn socket_buffers(h: &Host, out: &mut Vec<Finding>) {
    for key in [
        "net.core.rmem_max",
        "net.core.wmem_max",
        "net.ipv4.tcp_wmem",
    ] {
        let min = 16u64 << 20;
        if let Some(v) = num(h, key).filter(|v| *v < min) {
            let value = if key == "net.ipv4.tcp_wmem" {
                format!("4096 16384 {min}")
            } else {
                min.to_string()
            };
            out.push(finding(
                "socket_buffers_small",
                3,
                None,
                format!("{key} limits a TCP window"),
                format!("{key} maximum is {v} bytes; a 10 Gbit/s flow at 1 ms RTT needs about 1.25 MB, at 10 ms 12.5 MB"),
                Some(sysctl_fix(key, &value)),
            ));
        }
    }
    // tcp_rmem as a whole, against the manual's triple: the minimum, the
    // default a new socket starts with, and the autotuning maximum.
    const MANUAL_RMEM: [u64; 3] = [4096, 87380, 16 << 20];
    let rmem: Vec<u64> = h
        .sysctls
        .get("net.ipv4.tcp_rmem")
        .map(|v| {
            v.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let below: Vec<&str> = ["minimum", "default", "maximum"]
        .into_iter()
        .zip(rmem.iter().zip(MANUAL_RMEM))
        .filter(|(_, (v, want))| **v < *want)
        .map(|(name, _)| name)
        .collect();
    if rmem.len() == 3 && !below.is_empty() {
        let manual = MANUAL_RMEM.map(|n| n.to_string()).join(" ");
        out.push(finding(
            "socket_buffers_small",
            3,
            None,
            "net.ipv4.tcp_rmem limits a TCP window".into(),
            format!(
                "net.ipv4.tcp_rmem = {} has its {} below the manual's {manual}",
                rmem.iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(" "),
                below.join(" and ")
            ),
            Some(sysctl_fix("net.ipv4.tcp_rmem", &manual)),
        ));
    }
}

/// What the kernel logged about offloads. A line is current when it is
/// younger than the window and no later link-up of its interface
/// followed it; older ones are history, so that a boot-time message does
/// not stay a finding for ever.
const KERNEL_LOG_FIX: &str = "dmesg -T | grep -iE 'offload|NETIF_F|csum|tso|gro|lro'";

/// A snapshot from before the kernel log's lines were dated: its last ten
/// offload lines, as they are.
fn undated_kernel_log(lines: &[String], out: &mut Vec<Finding>) {
    if lines.is_empty() {
        return;
    }
    let last: Vec<&str> = lines
        .iter()
        .rev()
        .take(10)
        .rev()
        .map(String::as_str)
        .collect();
    out.push(finding(
        "kernel_log",
        6,
        None,
        "the kernel logged offload trouble".into(),
        last.join(" | "),
        Some(KERNEL_LOG_FIX.to_string()),
    ));
}

fn kernel_log(h: &Host, out: &mut Vec<Finding>) {
    let log = &h.kmsg;
    if let Some(e) = &log.error {
        out.push(finding(
            "kernel_log_unreadable",
            1,
            None,
            "kernel log not read".into(),
            e.clone(),
            None,
        ));
        return;
    }
    if log.entries.is_empty() {
        undated_kernel_log(&log.lines, out);
        return;
    }
    let fix = Some(KERNEL_LOG_FIX.to_string());
    let link_up_since = |e: &KmsgLine| {
        log.entries.iter().any(|l| {
            l.kind == "link_up" && l.iface.is_some() && l.iface == e.iface && l.age_s < e.age_s
        })
    };
    let (current, history): (Vec<&KmsgLine>, Vec<&KmsgLine>) = log
        .entries
        .iter()
        .filter(|e| e.kind == "offload")
        .partition(|e| e.age_s <= log.window_s && !link_up_since(e));
    let shown = |lines: &[&KmsgLine]| {
        lines
            .iter()
            .rev()
            .take(10)
            .rev()
            .map(|e| format!("[{} ago] {}", age(e.age_s), e.text))
            .collect::<Vec<_>>()
            .join(" | ")
    };
    if !current.is_empty() {
        let mut ifaces: Vec<&str> = current.iter().filter_map(|e| e.iface.as_deref()).collect();
        ifaces.sort_unstable();
        ifaces.dedup();
        out.push(finding(
            "kernel_log",
            6,
            (ifaces.len() == 1).then(|| ifaces[0]),
            "the kernel logged offload trouble".into(),
            shown(&current),
            fix,
        ));
    }
    if !history.is_empty() {
        out.push(finding(
            "kernel_log_history",
            1,
            None,
            format!("{} older offload messages in the kernel log", history.len()),
            format!(
                "logged more than {} ago or before the interface's last link-up: {}",
                age(log.window_s),
                shown(&history)
            ),
            None,
        ));
    }
}

/// Seconds as "42 s", "17 min", "5 h", "3 d".
fn age(s: u64) -> String {
    match s {
        0..120 => format!("{s} s"),
        120..7200 => format!("{} min", s / 60),
        7200..172_800 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

/// Every finding for the snapshot, most severe first.
pub(crate) fn findings(s: &Snapshot) -> Vec<Finding> {
    let mut out = Vec::new();
    for i in &s.interfaces {
        link(s, i, &mut out);
        features(i, &mut out);
        lro_forwarding(s, i, &mut out);
        rings(s, i, &mut out);
        queues(s, i, &mut out);
        coalescing(i, &mut out);
        errors(s, i, &mut out);
        queue_stats(s, i, &mut out);
        virtualisation(s, i, &mut out);
    }
    host(s, &mut out);
    out.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.iface.cmp(&b.iface))
            .then_with(|| a.id.cmp(&b.id))
    });
    out
}
