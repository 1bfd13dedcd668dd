//! `toe-agent audit`: the offload capability audit. Reads the device and
//! kernel settings (ioctl, sysfs, procfs, /dev/kmsg), applies the seed
//! manual's checks, and reports findings with evidence and the fixing
//! command. It never changes a setting. Schema: docs/audit.md.
pub(crate) mod gather;
pub(crate) mod rules;
pub(crate) mod snapshot;

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use crate::Failure;
use rules::{Finding, level};
use snapshot::Snapshot;

pub(crate) const AUDIT_VERSION: u32 = 1;

pub struct AuditArgs {
    pub ifaces: Vec<String>,
    pub all: bool,
    pub json: bool,
    pub fail_on: Option<u8>,
    pub sample: Duration,
    /// `--log-since`: kernel log lines older than this are history.
    pub log_since: Duration,
    pub from: Option<PathBuf>,
    /// `--diff BASELINE HOST...`.
    pub diff: Option<Vec<PathBuf>>,
}

/// One audit: the host as it was read, and the findings the rules made
/// from it (`audit --json`, docs/audit.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Audit {
    pub schema_version: u32,
    pub agent_version: String,
    pub snapshot: Snapshot,
    pub findings: Vec<Finding>,
}

impl Audit {
    pub(crate) fn new(snapshot: Snapshot) -> Self {
        Audit {
            schema_version: AUDIT_VERSION,
            agent_version: env!("CARGO_PKG_VERSION").into(),
            findings: rules::findings(&snapshot),
            snapshot,
        }
    }
}

/// `--fail-on`: a number 1-10 or a level name.
pub(crate) fn parse_severity(s: &str) -> Result<u8, String> {
    match s.to_ascii_lowercase().as_str() {
        "info" => Ok(1),
        "low" => Ok(2),
        "medium" => Ok(4),
        "high" => Ok(7),
        "critical" => Ok(9),
        n => match n.parse::<u8>() {
            Ok(v) if (1..=10).contains(&v) => Ok(v),
            _ => Err(format!(
                "'{s}' is not a severity: use 1-10 or info, low, medium, high, critical"
            )),
        },
    }
}

/// Interfaces with hardware behind them, for `--all`.
fn physical_interfaces() -> Vec<String> {
    crate::sys::iface::list()
        .into_iter()
        .map(|(_, n)| n)
        .filter(|n| gather::is_physical(n))
        .collect()
}

/// A report (or a bare snapshot) from a file, with the reason when it is not one.
pub(crate) fn load(path: &Path) -> Result<Audit, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::BadInput(format!("cannot read {}: {e}", path.display())))?;
    parse(&text, &path.display())
}

/// A report (or a bare snapshot) from the text of a file named `name`.
pub(crate) fn parse(text: &str, name: &dyn std::fmt::Display) -> Result<Audit, Failure> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Failure::BadInput(format!("{name}: not JSON ({e})")))?;
    if let Some(v) = value
        .get("schema_version")
        .and_then(|v| v.as_u64())
        .filter(|&v| v != AUDIT_VERSION as u64)
    {
        return Err(Failure::BadInput(format!(
            "{}: audit schema version {v}; this agent reads version {AUDIT_VERSION}",
            name
        )));
    }
    if value.get("snapshot").is_some() {
        let report: Audit = serde_json::from_value(value)
            .map_err(|e| Failure::BadInput(format!("{}: not an audit report: {e}", name)))?;
        // Judge with this agent's rules, so old reports compare fairly.
        return Ok(Audit::new(report.snapshot));
    }
    let snapshot: Snapshot = serde_json::from_value(value).map_err(|e| {
        Failure::BadInput(format!("{}: not an audit report or snapshot: {e}", name))
    })?;
    Ok(Audit::new(snapshot))
}

/// `--diff BASELINE HOST...`: what differs on each host from the first,
/// then each setting with the hosts where it differs. Exit 1 when
/// anything does.
fn compare(files: &[PathBuf]) -> Result<(), Failure> {
    let reports = files
        .iter()
        .map(|f| load(f))
        .collect::<Result<Vec<_>, _>>()?;
    let (Some(base), Some(base_file)) = (reports.first(), files.first()) else {
        return Err(Failure::BadInput("--diff needs two files or more".into()));
    };
    let name = |f: &PathBuf| f.display().to_string();
    let mut by_setting: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut total = 0;
    for (file, r) in files.iter().zip(&reports).skip(1) {
        let lines = diff(base, r);
        if lines.is_empty() {
            println!(
                "no differences between {} and {}",
                name(base_file),
                name(file)
            );
            continue;
        }
        println!("--- {}\n+++ {}", name(base_file), name(file));
        for l in &lines {
            println!("{l}");
            let setting = l.split_once(": ").map_or(l.as_str(), |(k, _)| k);
            by_setting
                .entry(setting.to_string())
                .or_default()
                .push(name(file));
        }
        total += lines.len();
    }
    if files.len() > 2 && !by_setting.is_empty() {
        println!("\nwhere each setting differs from {}:", name(base_file));
        for (setting, hosts) in &by_setting {
            println!("  {setting}: {}", hosts.join(", "));
        }
    }
    if total == 0 {
        return Ok(());
    }
    let hosts = match files.len() - 1 {
        1 => String::new(),
        n => format!(" across {n} hosts"),
    };
    Err(Failure::Runtime(format!(
        "{total} differences from {}{hosts}",
        name(base_file)
    )))
}

pub fn run(args: AuditArgs) -> Result<(), Failure> {
    if let Some(files) = &args.diff {
        return compare(files);
    }
    let report = match &args.from {
        Some(path) => load(path)?,
        None => {
            let names = if args.all {
                physical_interfaces()
            } else {
                args.ifaces.clone()
            };
            if names.is_empty() {
                return Err(Failure::BadInput(if args.all {
                    "no physical interfaces here (use --iface for a virtual one)".into()
                } else {
                    "nothing to audit: give --iface IF (repeatable), --all, --from FILE or --diff A B".into()
                }));
            }
            for n in &names {
                crate::sys::iface::resolve(n, None)
                    .map_err(|e| Failure::BadInput(e.to_string()))?;
            }
            Audit::new(
                gather::gather(&names, args.sample, args.log_since.as_secs())
                    .map_err(|e| Failure::Runtime(e.to_string()))?,
            )
        }
    };
    if args.json {
        let json =
            serde_json::to_string_pretty(&report).map_err(|e| Failure::Runtime(e.to_string()))?;
        println!("{json}");
    } else {
        print!("{}", render(&report));
    }
    if let Some(t) = args.fail_on {
        let n = report.findings.iter().filter(|f| f.severity >= t).count();
        if n > 0 {
            return Err(Failure::Runtime(format!(
                "{n} findings at severity {t} or above"
            )));
        }
    }
    Ok(())
}

pub(crate) fn render(r: &Audit) -> String {
    let mut o = String::new();
    let h = &r.snapshot.host;
    let names: Vec<&str> = r
        .snapshot
        .interfaces
        .iter()
        .map(|i| i.name.as_str())
        .collect();
    let _ = writeln!(
        o,
        "toe-agent audit: {} (kernel {}, {} CPUs{}{}), {}; counters sampled {:.1} s apart",
        if h.hostname.is_empty() {
            "host"
        } else {
            &h.hostname
        },
        h.kernel,
        h.online_cpus,
        h.hypervisor
            .as_ref()
            .map(|v| format!(", {v}"))
            .unwrap_or_default(),
        if h.container { ", container" } else { "" },
        names.join(", "),
        h.sample_ms as f64 / 1000.0
    );
    for band in ["critical", "high", "medium", "low", "info"] {
        let items: Vec<&Finding> = r
            .findings
            .iter()
            .filter(|f| level(f.severity) == band)
            .collect();
        if items.is_empty() {
            continue;
        }
        let _ = writeln!(o, "\n{}", band.to_uppercase());
        for f in items {
            let who = f
                .iface
                .as_ref()
                .map(|i| format!("{i}: "))
                .unwrap_or_default();
            let _ = writeln!(o, "  [{:>2}] {who}{}", f.severity, f.title);
            let _ = writeln!(o, "       {}", f.evidence);
            if let Some(fix) = &f.fix {
                let _ = writeln!(o, "       fix: {fix}");
            }
        }
    }
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for f in &r.findings {
        *counts.entry(level(f.severity)).or_default() += 1;
    }
    let summary: Vec<String> = ["critical", "high", "medium", "low", "info"]
        .iter()
        .filter_map(|b| counts.get(b).map(|n| format!("{n} {b}")))
        .collect();
    let _ = writeln!(o, "\n{} findings: {}", r.findings.len(), summary.join(", "));
    o
}

/// What differs between two hosts' reports: configuration, then findings.
/// Interfaces are matched by name; when each side has exactly one, they are
/// compared whatever their names.
/// Lines of a comparison: `what: before | after` where the two differ.
#[derive(Default)]
struct Diff(Vec<String>);

impl Diff {
    fn line(&mut self, what: String, x: String, y: String) {
        if x != y {
            self.0.push(format!("{what}: {x} | {y}"));
        }
    }
}

/// What differs between two audits: host, interfaces, findings.
pub(crate) fn diff(a: &Audit, b: &Audit) -> Vec<String> {
    let mut d = Diff::default();
    hosts(&mut d, &a.snapshot.host, &b.snapshot.host);
    interfaces(&mut d, &a.snapshot.interfaces, &b.snapshot.interfaces);
    findings(&mut d, a, b);
    d.0
}

fn hosts(d: &mut Diff, ha: &snapshot::Host, hb: &snapshot::Host) {
    d.line("kernel".into(), ha.kernel.clone(), hb.kernel.clone());
    d.line(
        "online CPUs".into(),
        ha.online_cpus.to_string(),
        hb.online_cpus.to_string(),
    );
    for k in ha
        .sysctls
        .keys()
        .chain(hb.sysctls.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        let get = |h: &snapshot::Host| h.sysctls.get(k).cloned().unwrap_or_else(|| "-".into());
        d.line(k.clone(), get(ha), get(hb));
    }
}

/// Interfaces paired by name (or the only one of each side), and those on
/// one side only.
fn interfaces(d: &mut Diff, ia: &[snapshot::Interface], ib: &[snapshot::Interface]) {
    let pairs: Vec<(&snapshot::Interface, &snapshot::Interface)> = if ia.len() == 1 && ib.len() == 1
    {
        vec![(&ia[0], &ib[0])]
    } else {
        ia.iter()
            .filter_map(|x| ib.iter().find(|y| y.name == x.name).map(|y| (x, y)))
            .collect()
    };
    for x in ia
        .iter()
        .filter(|x| !pairs.iter().any(|(p, _)| p.name == x.name))
    {
        d.line(
            format!("interface {}", x.name),
            "present".into(),
            "absent".into(),
        );
    }
    for y in ib
        .iter()
        .filter(|y| !pairs.iter().any(|(_, q)| q.name == y.name))
    {
        d.line(
            format!("interface {}", y.name),
            "absent".into(),
            "present".into(),
        );
    }
    for (x, y) in pairs {
        interface(d, x, y);
    }
}

fn interface(d: &mut Diff, x: &snapshot::Interface, y: &snapshot::Interface) {
    let n = if x.name == y.name {
        x.name.clone()
    } else {
        format!("{}|{}", x.name, y.name)
    };
    d.line(
        format!("{n} driver"),
        format!("{} {}", x.driver.driver, x.driver.version),
        format!("{} {}", y.driver.driver, y.driver.version),
    );
    d.line(
        format!("{n} firmware"),
        x.driver.firmware_version.clone(),
        y.driver.firmware_version.clone(),
    );
    d.line(
        format!("{n} speed"),
        format!("{:?}", x.speed_mbps),
        format!("{:?}", y.speed_mbps),
    );
    d.line(format!("{n} mtu"), x.mtu.to_string(), y.mtu.to_string());
    let names: std::collections::BTreeSet<&str> = x
        .features
        .iter()
        .chain(&y.features)
        .map(|f| f.name.as_str())
        .collect();
    for f in names {
        let state = |i: &snapshot::Interface| {
            i.feature(f)
                .map(|f| if f.active { "on" } else { "off" })
                .unwrap_or("-")
                .to_string()
        };
        d.line(format!("{n} feature {f}"), state(x), state(y));
    }
    d.line(
        format!("{n} rings"),
        format!("{:?}", x.rings),
        format!("{:?}", y.rings),
    );
    d.line(
        format!("{n} channels"),
        format!("{:?}", x.channels),
        format!("{:?}", y.channels),
    );
    d.line(
        format!("{n} coalescing"),
        format!("{:?}", x.coalesce),
        format!("{:?}", y.coalesce),
    );
    d.line(
        format!("{n} rss"),
        x.rss
            .as_ref()
            .map(|r| format!("{} entries, {} key bytes", r.indirection.len(), r.key_bytes))
            .unwrap_or_else(|| "-".into()),
        y.rss
            .as_ref()
            .map(|r| format!("{} entries, {} key bytes", r.indirection.len(), r.key_bytes))
            .unwrap_or_else(|| "-".into()),
    );
}

/// Findings present on one side only (by rule and interface name).
fn findings(d: &mut Diff, a: &Audit, b: &Audit) {
    let key = |f: &Finding| format!("finding {} {}", f.id, f.iface.clone().unwrap_or_default());
    let ka: std::collections::BTreeSet<String> = a
        .findings
        .iter()
        .filter(|f| f.severity > 1)
        .map(key)
        .collect();
    let kb: std::collections::BTreeSet<String> = b
        .findings
        .iter()
        .filter(|f| f.severity > 1)
        .map(key)
        .collect();
    for k in ka.difference(&kb) {
        d.0.push(format!("{k}: present | absent"));
    }
    for k in kb.difference(&ka) {
        d.0.push(format!("{k}: absent | present"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Snapshots recorded with `toe-agent audit --json`: virtio_net (this
    /// machine kind's eth0) and veth (in a namespace, TX checksum off,
    /// forwarding on); ice_multiqueue is built from the veth recording with
    /// the values of a 25G multi-queue NIC in trouble (see fixtures/README.md).
    fn fixture(name: &str) -> Audit {
        let text = match name {
            "virtio" => include_str!("../../../fixtures/audit/virtio_net.json"),
            "veth" => include_str!("../../../fixtures/audit/veth.json"),
            _ => include_str!("../../../fixtures/audit/ice_multiqueue.json"),
        };
        Audit::new(serde_json::from_str(text).unwrap())
    }

    fn ids(r: &Audit) -> Vec<(&str, u8)> {
        r.findings
            .iter()
            .map(|f| (f.id.as_str(), f.severity))
            .collect()
    }

    fn get<'a>(r: &'a Audit, id: &str) -> &'a Finding {
        r.findings
            .iter()
            .find(|f| f.id == id)
            .unwrap_or_else(|| panic!("no {id} in {:?}", ids(r)))
    }

    /// The stack's own drop counters over the sample make two findings
    /// stronger: bad checksums the CPU found, and LRO frames too big to
    /// forward.
    #[test]
    fn the_stacks_drop_counters_strengthen_findings() {
        let mut snap = with_lro(fixture("ice").snapshot);
        let counters = |csum: u64, frag: u64| {
            std::collections::BTreeMap::from([
                ("Tcp.InCsumErrors".to_string(), csum),
                ("Ip.FragFails".to_string(), frag),
            ])
        };
        // Before: no rise, no checksum finding, the LRO finding as it was.
        let quiet = Audit::new(snap.clone());
        assert!(!ids(&quiet).iter().any(|(id, _)| *id == "checksum_errors"));
        assert!(!get(&quiet, "lro_forwarding").evidence.contains("too big"));

        snap.host.snmp.first = counters(10, 0);
        snap.host.snmp.second = counters(25, 4);
        let i = &mut snap.interfaces[0];
        i.features.retain(|f| f.name != "rx-checksum");
        i.features.push(crate::sys::ethtool::Feature {
            name: "rx-checksum".into(),
            available: true,
            requested: false,
            active: false,
            never_changed: false,
        });
        let r = Audit::new(snap);
        let csum = get(&r, "checksum_errors");
        assert!(
            csum.evidence
                .contains("dropped 15 packets with bad checksums")
                && csum.evidence.contains("Tcp InCsumErrors +15")
                && csum.evidence.contains("rx-checksum is off on"),
            "{}",
            csum.evidence
        );
        assert!(
            get(&r, "lro_forwarding")
                .evidence
                .contains("dropped 4 packets too big to forward"),
            "{}",
            get(&r, "lro_forwarding").evidence
        );
    }

    /// The manual's kernel parameters: a backlog below 5000 and a tcp_rmem
    /// below 4096 87380 16777216 in any of its three parts are findings,
    /// with fixes that survive a reboot; the manual's values are silent.
    #[test]
    fn kernel_parameters_as_the_manual_states_them() {
        let mut snap = fixture("virtio").snapshot;
        let mut set = |k: &str, v: &str| {
            snap.host.sysctls.insert(k.to_string(), v.to_string());
        };
        set("net.core.netdev_max_backlog", "2000");
        set("net.ipv4.tcp_rmem", "4096\t65536\t33554432");
        let r = Audit::new(snap.clone());
        let backlog = get(&r, "backlog_small");
        assert!(
            backlog.evidence.contains("= 2000, below 5000"),
            "{}",
            backlog.evidence
        );
        assert_eq!(
            backlog.fix.as_deref(),
            Some(
                "echo 'net.core.netdev_max_backlog = 5000' >> /etc/sysctl.d/90-network-offload.conf && sysctl -p /etc/sysctl.d/90-network-offload.conf"
            )
        );
        let rmem = |r: &Audit| {
            r.findings
                .iter()
                .find(|f| f.title.starts_with("net.ipv4.tcp_rmem"))
                .cloned()
        };
        let found = rmem(&r).expect("a tcp_rmem finding");
        assert_eq!(
            found.evidence,
            "net.ipv4.tcp_rmem = 4096 65536 33554432 has its default below the manual's 4096 87380 16777216"
        );
        assert!(
            found
                .fix
                .unwrap()
                .starts_with("echo 'net.ipv4.tcp_rmem = 4096 87380 16777216' >> /etc/sysctl.d/")
        );

        let mut snap = fixture("virtio").snapshot;
        snap.host
            .sysctls
            .insert("net.core.netdev_max_backlog".into(), "5000".into());
        snap.host
            .sysctls
            .insert("net.ipv4.tcp_rmem".into(), "4096\t87380\t16777216".into());
        let r = Audit::new(snap);
        assert!(!ids(&r).iter().any(|(id, _)| *id == "backlog_small"));
        assert!(rmem(&r).is_none());
    }

    fn set_feature(i: &mut snapshot::Interface, name: &str, available: bool, active: bool) {
        i.features.retain(|f| f.name != name);
        i.features.push(crate::sys::ethtool::Feature {
            name: name.into(),
            available,
            requested: active,
            active,
            never_changed: false,
        });
    }

    /// Every TX checksum feature off though offered, and TSO not wanted:
    /// `tx_csum_off` rather than `csum_off_tso_wanted`.
    fn tx_checksum_off_tso_unwanted(i: &mut snapshot::Interface) {
        for c in super::rules::TX_CSUM {
            set_feature(i, c, true, false);
        }
        set_feature(i, "tx-tcp-segmentation", true, false);
    }

    /// The ice fixture on an LRO-capable port (ixgbe's RSC, mlx5): ice
    /// itself has no LRO.
    fn with_lro(mut snap: Snapshot) -> Snapshot {
        set_feature(&mut snap.interfaces[0], "rx-lro", true, true);
        snap
    }

    /// The physical layer: no carrier, a link that flapped during the
    /// sample, forced speed; and silence on a healthy link.
    #[test]
    fn the_physical_layer_is_audited() {
        let mut snap = fixture("ice").snapshot;
        let i = &mut snap.interfaces[0];
        i.operstate = Some("down".into());
        i.carrier = Some(false);
        i.carrier_changes = snapshot::Sampled {
            first: 3,
            second: 5,
        };
        i.autoneg = Some(false);
        let r = Audit::new(snap.clone());
        assert_eq!(get(&r, "no_carrier").severity, 8);
        assert!(
            get(&r, "no_carrier")
                .evidence
                .starts_with("operstate down, carrier off")
        );
        assert!(
            get(&r, "link_flapping")
                .evidence
                .starts_with("carrier_changes rose by 2 in")
        );
        assert_eq!(
            get(&r, "autoneg_off").fix.as_deref(),
            Some("ethtool -s ens1f0 autoneg on")
        );

        let i = &mut snap.interfaces[0];
        i.operstate = Some("up".into());
        i.carrier = Some(true);
        i.carrier_changes = snapshot::Sampled {
            first: 5,
            second: 5,
        };
        i.autoneg = Some(true);
        let quiet_report = Audit::new(snap);
        let quiet = ids(&quiet_report);
        for id in ["no_carrier", "link_flapping", "autoneg_off"] {
            assert!(!quiet.iter().any(|(f, _)| *f == id), "{id} in {quiet:?}");
        }
    }

    /// TX checksum offload off on its own (TSO not wanted) is a finding;
    /// offloads off and fixed are the hardware's limits, not settings.
    #[test]
    fn tx_checksum_off_and_hardware_limits() {
        let mut snap = fixture("ice").snapshot;
        let i = &mut snap.interfaces[0];
        tx_checksum_off_tso_unwanted(i);
        set_feature(i, "tls-hw-tx-offload", false, false);
        let r = Audit::new(snap);
        assert_eq!(get(&r, "tx_csum_off").severity, 5);
        assert!(!ids(&r).iter().any(|(id, _)| *id == "csum_off_tso_wanted"));
        let limits = get(&r, "hardware_limits");
        assert!(
            limits.evidence.contains("tls-hw-tx-offload"),
            "{}",
            limits.evidence
        );
        assert!(
            !limits.evidence.contains("tx-checksum"),
            "{}",
            limits.evidence
        );
    }

    /// Kernel log lines: current ones are a finding; one older than the
    /// window, or followed by its interface's link-up, is history.
    #[test]
    fn old_kernel_log_lines_are_history() {
        let mut snap = fixture("ice").snapshot;
        let line = |age_s, kind: &str, text: &str| snapshot::KmsgLine {
            age_s,
            iface: Some("ens1f0".into()),
            kind: kind.into(),
            text: text.into(),
        };
        snap.host.kmsg.window_s = 3600;
        snap.host.kmsg.entries = vec![
            line(5000, "offload", "ens1f0: Dropping NETIF_F_SG (boot)"),
            line(
                300,
                "offload",
                "ens1f0: hw csum failure (before the link came up)",
            ),
            line(200, "link_up", "ens1f0: NIC Link is up 25 Gbps"),
            line(10, "offload", "ens1f0: tx timeout"),
        ];
        let r = Audit::new(snap.clone());
        let now = get(&r, "kernel_log");
        assert_eq!(now.severity, 6);
        assert_eq!(now.iface.as_deref(), Some("ens1f0"));
        assert_eq!(now.evidence, "[10 s ago] ens1f0: tx timeout");
        let old = get(&r, "kernel_log_history");
        assert_eq!(old.severity, 1);
        assert!(
            old.evidence
                .contains("[83 min ago] ens1f0: Dropping NETIF_F_SG (boot)"),
            "{}",
            old.evidence
        );
        assert!(
            old.evidence.contains("[5 min ago] ens1f0: hw csum failure"),
            "{}",
            old.evidence
        );

        // Only history: no finding above information.
        snap.host.kmsg.entries.pop();
        let r = Audit::new(snap);
        assert!(!ids(&r).iter().any(|(id, _)| *id == "kernel_log"));
    }

    /// LRO is a finding only where the device forwards: its own
    /// forwarding sysctl or a bridge port, not a VLAN stacked on it.
    #[test]
    fn lro_counts_only_where_the_device_forwards() {
        let mut snap = with_lro(fixture("ice").snapshot);
        let i = &mut snap.interfaces[0];
        i.uppers = vec!["ens1f0.100".into()];
        i.forwarding = Some(false);
        let has = |snap: &Snapshot| {
            ids(&Audit::new(snap.clone()))
                .iter()
                .any(|(id, _)| *id == "lro_forwarding")
        };
        assert!(!has(&snap), "a VLAN on top, forwarding off on the device");
        snap.interfaces[0].forwarding = Some(true);
        assert!(has(&snap));
        snap.interfaces[0].forwarding = Some(false);
        snap.interfaces[0].master = Some("br0".into());
        assert!(has(&snap));
    }

    /// IPsec on the CPU beside a NIC that offers ESP offload, SAs in
    /// hardware, crypto offloads left off; silent without SAs on a device
    /// that cannot do them.
    #[test]
    fn ipsec_and_tls_offload_are_audited() {
        use crate::sys::xfrm::{Sa, SaOffload};
        let quiet = fixture("ice");
        for id in [
            "ipsec_in_software",
            "ipsec_offloaded",
            "crypto_offload_off",
            "xfrm_unreadable",
        ] {
            assert!(!ids(&quiet).iter().any(|(f, _)| *f == id), "{id}");
        }
        let mut snap = fixture("ice").snapshot;
        let esp = |spi, offload| Sa {
            spi,
            proto: "esp".into(),
            family: "ipv4".into(),
            offload,
        };
        snap.host.xfrm.sas = vec![
            esp(0x100, None),
            esp(
                0x101,
                Some(SaOffload {
                    ifindex: 4,
                    inbound: true,
                    packet: false,
                }),
            ),
        ];
        let i = &mut snap.interfaces[0];
        set_feature(i, "esp-hw-offload", true, false);
        set_feature(i, "tls-hw-tx-offload", true, false);
        let r = Audit::new(snap.clone());
        let sw = get(&r, "ipsec_in_software");
        assert_eq!(sw.severity, 5);
        assert_eq!(
            sw.evidence,
            "1 ESP SAs without offload (spi 0x00000100); ens1f0 offers esp-hw-offload"
        );
        assert!(
            get(&r, "ipsec_offloaded")
                .evidence
                .starts_with("1 of 2 SAs")
        );
        assert_eq!(
            get(&r, "crypto_offload_off").fix.as_deref(),
            Some("ethtool -K ens1f0 esp-hw-offload on tls-hw-tx-offload on")
        );
        snap.host.xfrm.error =
            Some("IPsec SAs not read (xfrm netlink): Operation not permitted (os error 1)".into());
        assert_eq!(get(&Audit::new(snap), "xfrm_unreadable").severity, 1);
    }

    /// The snapshots the rules are tested on: the three fixtures, and the
    /// variants the tests above build from them.
    fn every_variant() -> Vec<Audit> {
        let mut out = vec![fixture("ice"), fixture("veth"), fixture("virtio")];
        let ice = || fixture("ice").snapshot;
        let mut trouble = with_lro(ice());
        {
            let i = &mut trouble.interfaces[0];
            i.operstate = Some("down".into());
            i.carrier = Some(false);
            i.carrier_changes = snapshot::Sampled {
                first: 3,
                second: 5,
            };
            i.autoneg = Some(false);
            tx_checksum_off_tso_unwanted(i);
            set_feature(i, "esp-hw-offload", true, false);
        }
        trouble.host.snmp.first = [("Tcp.InCsumErrors".to_string(), 1)].into();
        trouble.host.snmp.second = [("Tcp.InCsumErrors".to_string(), 9)].into();
        trouble.host.xfrm.sas = vec![
            crate::sys::xfrm::Sa {
                spi: 1,
                proto: "esp".into(),
                family: "ipv4".into(),
                offload: None,
            },
            crate::sys::xfrm::Sa {
                spi: 2,
                proto: "esp".into(),
                family: "ipv4".into(),
                offload: Some(crate::sys::xfrm::SaOffload::default()),
            },
        ];
        trouble.host.kmsg.entries = vec![snapshot::KmsgLine {
            age_s: 10 * 86_400,
            iface: None,
            kind: "offload".into(),
            text: "eth9: tx timeout".into(),
        }];
        out.push(Audit::new(trouble));
        // The same port with other quirks and quiet counters, in a
        // container whose socket buffers follow the manual.
        let mut quirks = ice();
        {
            let i = &mut quirks.interfaces[0];
            i.duplex = Some("half".into());
            i.mtu = 9216;
            i.sriov_vf = true;
            set_feature(i, "rx-checksum", true, false);
            if let Some(rss) = i.rss.as_mut() {
                rss.key_bytes = 0;
                rss.indirection = (0..128u32)
                    .map(|e| if e < 64 { 0 } else { 1 + e % 3 })
                    .collect();
            }
            i.counters.second = i.counters.first.clone();
            i.qstats.second = i.qstats.first.clone();
            i.nic_stats.second = i.nic_stats.first.clone();
        }
        quirks.host.container = true;
        for (k, v) in [
            ("net.core.rmem_max", "16777216"),
            ("net.core.wmem_max", "16777216"),
            ("net.ipv4.tcp_wmem", "4096\t16384\t16777216"),
            ("net.ipv4.tcp_rmem", "4096\t87380\t16777216"),
        ] {
            quirks.host.sysctls.insert(k.into(), v.into());
        }
        out.push(Audit::new(quirks));
        let mut blind = ice();
        blind.host.kmsg.error = Some("cannot read /dev/kmsg: Operation not permitted".into());
        blind.host.xfrm.error =
            Some("IPsec SAs not read (xfrm netlink): Operation not permitted".into());
        out.push(Audit::new(blind));
        out
    }

    /// Every rule in docs/audit.md's table fires on some snapshot and
    /// stays silent on another: no rule is untested either way.
    #[test]
    fn every_rule_fires_somewhere_and_is_silent_somewhere() {
        let doc = include_str!("../../../../docs/audit.md");
        let table = &doc[doc.find("## Findings").unwrap()..doc.find("## JSON").unwrap()];
        let rules: Vec<&str> = table
            .lines()
            .filter(|l| l.starts_with("| `"))
            .flat_map(|l| {
                l.split('|')
                    .nth(1)
                    .unwrap_or("")
                    .split('`')
                    .skip(1)
                    .step_by(2)
            })
            .collect();
        assert!(rules.len() > 40, "{rules:?}");
        let reports = every_variant();
        let fired = |id: &str| {
            reports
                .iter()
                .filter(|r| r.findings.iter().any(|f| f.id == id))
                .count()
        };
        let never: Vec<&&str> = rules.iter().filter(|id| fired(id) == 0).collect();
        // `device` describes every interface: information, not a rule.
        let always: Vec<&&str> = rules
            .iter()
            .filter(|id| **id != "device" && fired(id) == reports.len())
            .collect();
        assert!(
            never.is_empty() && always.is_empty(),
            "never fire: {never:?}; always fire: {always:?}"
        );
    }

    #[test]
    fn multiqueue_nic_in_trouble() {
        let r = fixture("ice");
        // ice has no LRO: nothing to turn off, and the NIC's limit.
        assert!(!ids(&r).iter().any(|(id, _)| *id == "lro_forwarding"));
        assert!(get(&r, "hardware_limits").evidence.contains("rx-lro"));
        // The same host on an LRO port: the most severe finding of all.
        let lro = Audit::new(with_lro(r.snapshot.clone()));
        assert_eq!(
            lro.findings[0].id,
            "lro_forwarding",
            "most severe first: {:?}",
            ids(&lro)
        );
        assert_eq!(lro.findings[0].severity, 10);
        assert_eq!(
            lro.findings[0].fix.as_deref(),
            Some("ethtool -K ens1f0 lro off")
        );
        let ring = get(&r, "nic_buffer_exhaustion");
        assert_eq!(
            ring.evidence,
            "RX ring 512 of a possible 8192, and rx_missed_errors +450/s"
        );
        assert_eq!(ring.fix.as_deref(), Some("ethtool -G ens1f0 rx 8192"));
        let rss = get(&r, "rss_unused_queues");
        assert_eq!(
            rss.evidence,
            "128 entries spread over 3 of 4 queues; queue(s) 3 never receive"
        );
        assert_eq!(
            get(&r, "queues_below_cpus").fix.as_deref(),
            Some("ethtool -L ens1f0 combined 16")
        );
        assert_eq!(get(&r, "csum_off_tso_wanted").severity, 7);
        assert!(get(&r, "backlog_drops").evidence.contains("cpu3 +25"));
        assert!(
            get(&r, "time_squeeze")
                .evidence
                .contains("netdev_budget = 300")
        );
        assert!(
            get(&r, "softirq_share")
                .evidence
                .contains("cpu3 spent 30.0%")
        );
        assert!(
            get(&r, "kernel_log")
                .evidence
                .contains("Dropping NETIF_F_SG")
        );
        assert_eq!(get(&r, "interrupt_coalescing").severity, 3);
        assert!(get(&r, "jumbo_frames").evidence.contains("peer"));
        assert_eq!(
            get(&r, "queue_errors_rising").evidence,
            "netdev qstats during the sample: rx-2 rx-hw-drops +120/s"
        );
        assert!(
            get(&r, "queue_traffic").evidence.starts_with(
                "rx-0 300000 pkt/s, rx-1 300000 pkt/s, rx-2 300000 pkt/s, rx-3 0 pkt/s"
            )
        );
        let sorted: Vec<u8> = r.findings.iter().map(|f| f.severity).collect();
        assert!(sorted.windows(2).all(|w| w[0] >= w[1]), "{sorted:?}");
    }

    #[test]
    fn virtio_guest() {
        let r = fixture("virtio");
        assert!(
            get(&r, "virtio").evidence.contains("vhost"),
            "{:?}",
            ids(&r)
        );
        // virtio_net offers the standard per-queue statistics.
        assert!(
            get(&r, "queue_traffic").evidence.starts_with("rx-0 "),
            "{:?}",
            ids(&r)
        );
        assert!(get(&r, "mtu_small").evidence.starts_with("MTU 1400"));
        assert!(
            !r.findings
                .iter()
                .any(|f| f.id == "lro_forwarding" || f.id == "feature_not_active"),
            "{:?}",
            ids(&r)
        );
        assert!(r.findings.iter().all(|f| f.severity <= 3), "{:?}", ids(&r));
    }

    #[test]
    fn veth_with_tx_checksum_off() {
        let r = fixture("veth");
        assert_eq!(
            get(&r, "csum_off_tso_wanted").fix.as_deref(),
            Some("ethtool -K veth0 tx on")
        );
        let f = get(&r, "feature_not_active");
        assert_eq!(f.title, "5 features are requested but not active");
        assert!(f.evidence.contains(
            "tx-tcp-segmentation (TSO needs scatter-gather, which needs TX checksum offload)"
        ));
        // Virtual device: no advice to turn on what it cannot do in hardware.
        assert!(
            !r.findings
                .iter()
                .any(|f| f.id.ends_with("_off") || f.id == "queues_below_cpus"),
            "{:?}",
            ids(&r)
        );
    }

    #[test]
    fn report_groups_by_severity() {
        let text = render(&Audit::new(with_lro(fixture("ice").snapshot)));
        let pos = |s: &str| {
            text.find(s)
                .unwrap_or_else(|| panic!("{s} missing:\n{text}"))
        };
        assert!(pos("\nCRITICAL\n") < pos("\nHIGH\n") && pos("\nHIGH\n") < pos("\nMEDIUM\n"));
        assert!(pos("\nLOW\n") < pos("\nINFO\n"));
        assert!(text.contains("       fix: ethtool -K ens1f0 lro off"));
        assert!(
            text.trim_end()
                .ends_with("21 findings: 1 critical, 5 high, 7 medium, 4 low, 4 info"),
            "{text}"
        );
    }

    #[test]
    fn diff_shows_configuration_differences() {
        let (a, b) = (
            Audit::new(with_lro(fixture("ice").snapshot)),
            fixture("veth"),
        );
        assert!(diff(&a, &a).is_empty());
        let d = diff(&a, &b);
        assert!(
            d.contains(&"ens1f0|veth0 feature rx-lro: on | off".to_string()),
            "{d:#?}"
        );
        assert!(
            d.contains(&"ens1f0|veth0 mtu: 9000 | 1500".to_string()),
            "{d:#?}"
        );
        assert!(d.contains(&"online CPUs: 16 | 2".to_string()), "{d:#?}");
        assert!(
            d.iter()
                .any(|l| l.starts_with("finding lro_forwarding ens1f0: present | absent")),
            "{d:#?}"
        );
    }

    #[test]
    fn severities_parse() {
        assert_eq!(parse_severity("high"), Ok(7));
        assert_eq!(parse_severity("9"), Ok(9));
        assert!(parse_severity("11").is_err());
        assert!(parse_severity("urgent").unwrap_err().contains("1-10"));
    }

    #[test]
    fn malformed_files_are_refused_with_the_reason() {
        let dir = std::env::temp_dir().join(format!("toe-audit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "{\"snapshot\": {\"host\": 3").unwrap();
        let err = load(&bad).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(
            err.message().contains("not JSON") && err.message().contains("line 1"),
            "{}",
            err.message()
        );
        let future = dir.join("future.json");
        std::fs::write(&future, "{\"schema_version\": 9, \"snapshot\": {}}").unwrap();
        assert!(
            load(&future)
                .unwrap_err()
                .message()
                .contains("audit schema version 9")
        );
        assert!(
            load(&dir.join("missing.json"))
                .unwrap_err()
                .message()
                .starts_with("cannot read")
        );
    }
}
