//! Reading a [`Snapshot`] from the running system: ioctls, sysfs, procfs,
//! /dev/kmsg. Read-only: nothing here changes a setting.
use std::{collections::BTreeMap, fs, io, path::Path, time::Duration};

use super::snapshot::{
    CpuTicks, Host, Interface, KernelLog, KmsgLine, SNAPSHOT_VERSION, Sampled, Snapshot, Softnet,
    Xfrm,
};
use crate::sys::{ethtool, host};

fn read(path: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

pub(crate) fn parse_softnet(text: &str) -> Vec<Softnet> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let f: Vec<u64> = l
                .split_whitespace()
                .filter_map(|x| u64::from_str_radix(x, 16).ok())
                .collect();
            // Column 13 (index 12) is the CPU id on kernels since 5.10; older
            // ones list CPUs in order.
            Some(Softnet {
                cpu: f.get(12).map(|&c| c as u32).unwrap_or(i as u32),
                processed: *f.first()?,
                dropped: *f.get(1)?,
                time_squeeze: *f.get(2)?,
            })
        })
        .collect()
}

/// The counters the rules read, of the stack's SNMP tables
/// (include/uapi/linux/snmp.h; net/ipv4/proc.c prints them).
pub(crate) const SNMP: &[&str] = &[
    // Received with a bad checksum, dropped (tcp_v4_rcv() → csum_error,
    // __udp4_lib_rcv(), icmp_rcv()).
    "Tcp.InCsumErrors",
    "Udp.InCsumErrors",
    "Icmp.InCsumErrors",
    // Too big to forward: ip_forward() → ip_exceeds_mtu() counts FragFails
    // and drops (what LRO's merged frames become on a forwarding path).
    "Ip.FragFails",
    "Ip.ForwDatagrams",
    "Ip.InDiscards",
    "Ip.OutDiscards",
];

/// `Group.Name` → value for the names in [`SNMP`], from the text of
/// /proc/net/snmp or /proc/net/netstat: each group is a line of names and
/// a line of values, both starting with `Group:`.
pub(crate) fn parse_snmp(text: &str) -> BTreeMap<String, u64> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = BTreeMap::new();
    for pair in lines.chunks_exact(2) {
        let (Some((group, names)), Some((group2, values))) =
            (pair[0].split_once(':'), pair[1].split_once(':'))
        else {
            continue;
        };
        if group != group2 {
            continue;
        }
        for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
            let key = format!("{group}.{name}");
            if let (true, Ok(v)) = (SNMP.contains(&key.as_str()), value.parse()) {
                out.insert(key, v);
            }
        }
    }
    out
}

fn snmp() -> BTreeMap<String, u64> {
    ["/proc/net/snmp", "/proc/net/netstat"]
        .iter()
        .flat_map(|p| parse_snmp(&read(p).unwrap_or_default()))
        .collect()
}

pub(crate) fn parse_proc_stat(text: &str) -> Vec<CpuTicks> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let cpu = it.next()?.strip_prefix("cpu")?.parse().ok()?;
            let v: Vec<u64> = it.filter_map(|x| x.parse().ok()).collect();
            // user nice system idle iowait irq softirq steal ...
            Some(CpuTicks {
                cpu,
                softirq: *v.get(6)?,
                total: v.iter().take(8).sum(),
            })
        })
        .collect()
}

/// Phrases of offload trouble, matched without regard to case.
const TROUBLE: &[&str] = &[
    "offload",
    "dependent on",
    "dropping netif_f",
    "features changed",
    "hw csum failure",
    // Not "checksum" alone: "table checksum verification", "checksumming
    // function" are boot lines about other things.
    "bad checksum",
    "checksum error",
    "checksum fail",
    "operation not supported",
    "tx timeout",
    "transmit queue timed out",
];

/// Offload names matched as whole words ("gro" must not match "group").
const TROUBLE_WORDS: &[&str] = &["tso", "gso", "gro", "lro", "csum"];

/// How drivers say the link came up ("NIC Link is Up 25 Gbps", "link up").
const LINK_UP: &[&str] = &["link is up", "link up"];

/// The lines of /dev/kmsg records (`prio,seq,usec,flags;message`) that
/// speak of offload trouble, and the link-up lines of the audited
/// interfaces; `uptime_s` dates them, and each names the interface of
/// `ifaces` (name, driver) it mentions.
pub(crate) fn kmsg_lines(log: &str, uptime_s: f64, ifaces: &[(String, String)]) -> Vec<KmsgLine> {
    log.lines()
        .filter_map(|record| {
            let (prefix, text) = record.split_once(';')?;
            let usec: f64 = prefix.split(',').nth(2)?.parse().ok()?;
            let lower = text.to_lowercase();
            let words: Vec<&str> = lower
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .collect();
            let named = |n: &str| words.contains(&n.to_lowercase().as_str());
            let iface = ifaces
                .iter()
                .find(|(name, _)| named(name))
                .or_else(|| {
                    ifaces
                        .iter()
                        .find(|(_, driver)| !driver.is_empty() && named(driver))
                })
                .map(|(name, _)| name.clone());
            let trouble = TROUBLE.iter().any(|p| lower.contains(p))
                || TROUBLE_WORDS.iter().any(|w| words.contains(w));
            let kind = if trouble {
                "offload"
            } else if iface.is_some() && LINK_UP.iter().any(|p| lower.contains(p)) {
                "link_up"
            } else {
                return None;
            };
            Some(KmsgLine {
                age_s: (uptime_s - usec / 1e6).max(0.0) as u64,
                iface,
                kind: kind.into(),
                text: text.trim().to_string(),
            })
        })
        .collect()
}

/// Everything already in the kernel ring buffer, without blocking.
fn read_kmsg() -> Result<String, String> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/kmsg")
        .map_err(|e| format!("cannot read /dev/kmsg: {e}"))?;
    let mut out = String::new();
    // /dev/kmsg returns one record per read; EAGAIN at the end, EPIPE when
    // a record was overwritten (skip it and go on).
    let mut buf = vec![0u8; 8192];
    for _ in 0..100_000 {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
            Err(e) => return Err(format!("reading /dev/kmsg: {e}")),
        }
    }
    Ok(out)
}

/// The kernel log's offload lines, dated and attributed to `interfaces`.
fn kernel_log(interfaces: &[Interface], window_s: u64) -> KernelLog {
    // /dev/kmsg stamps records with the monotonic clock since boot, as
    // /proc/uptime counts (kernel/printk/printk.c, local_clock()).
    let uptime = read("/proc/uptime")
        .and_then(|u| u.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    let ifaces: Vec<(String, String)> = interfaces
        .iter()
        .map(|i| (i.name.clone(), i.driver.driver.clone()))
        .collect();
    match read_kmsg() {
        Ok(log) => {
            let entries = kmsg_lines(&log, uptime, &ifaces);
            KernelLog {
                lines: entries
                    .iter()
                    .filter(|e| e.kind == "offload")
                    .map(|e| e.text.clone())
                    .collect(),
                entries,
                window_s,
                error: None,
            }
        }
        Err(e) => KernelLog {
            window_s,
            error: Some(e),
            ..KernelLog::default()
        },
    }
}

fn in_initial_netns() -> bool {
    // The initial namespaces have these inode numbers (include/linux/proc_ns.h,
    // PROC_NET_INIT_INO = 0xF0000098 since 6.x; older kernels allocate one).
    match (
        fs::metadata("/proc/self/ns/net"),
        fs::metadata("/proc/1/ns/net"),
    ) {
        (Ok(a), Ok(b)) => {
            use std::os::unix::fs::MetadataExt;
            a.ino() == b.ino()
        }
        _ => true,
    }
}

fn hypervisor() -> Option<String> {
    let cpuinfo = read("/proc/cpuinfo")?;
    let flagged = cpuinfo
        .lines()
        .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "hypervisor"));
    flagged.then(|| {
        read("/sys/class/dmi/id/sys_vendor")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "unknown hypervisor".into())
    })
}

fn counters(name: &str) -> BTreeMap<String, u64> {
    let dir = format!("/sys/class/net/{name}/statistics");
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = read(e.path())?.parse().ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), v))
        })
        .collect()
}

fn nic_stats(name: &str) -> BTreeMap<String, u64> {
    ethtool::stats(name)
        .map(|v| v.into_iter().collect())
        .unwrap_or_default()
}

/// Is this a device with hardware behind it (sysfs `device` link)?
pub(crate) fn is_physical(name: &str) -> bool {
    Path::new(&format!("/sys/class/net/{name}/device")).exists()
}

/// The device's first reading; `None` when it vanished.
fn interface(name: &str) -> io::Result<Interface> {
    let gone = || {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("interface {name} disappeared during the audit"),
        )
    };
    let ifindex = crate::sys::iface::index_of(name).ok_or_else(gone)?;
    let sys = format!("/sys/class/net/{name}");
    let link = ethtool::link(name).unwrap_or_default();
    let carrier_changes = read(format!("{sys}/carrier_changes")).and_then(|v| v.parse().ok());
    let qstats = crate::sys::qstats::queue_stats(ifindex);
    let uppers = fs::read_dir(&sys)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_prefix("upper_")
                .map(str::to_string)
        })
        .collect();
    let rps_cpus = fs::read_dir(format!("{sys}/queues"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .filter_map(|e| read(e.path().join("rps_cpus")))
        .collect();
    Ok(Interface {
        name: name.to_string(),
        ifindex,
        driver: ethtool::driver_info(name).unwrap_or_default(),
        physical: is_physical(name),
        sriov_vf: Path::new(&format!("{sys}/device/physfn")).exists(),
        speed_mbps: link.speed,
        duplex: link.duplex,
        autoneg: link.autoneg,
        operstate: read(format!("{sys}/operstate")),
        // Reading carrier of a device that is down fails (EINVAL).
        carrier: read(format!("{sys}/carrier")).map(|v| v == "1"),
        carrier_changes: Sampled {
            first: carrier_changes.unwrap_or(0),
            second: carrier_changes.unwrap_or(0),
        },
        mtu: ethtool::mtu(name).map_err(|_| gone())?,
        master: fs::read_link(format!("{sys}/master"))
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())),
        uppers,
        forwarding: ["ipv4", "ipv6"]
            .iter()
            .map(|v| host::sysctl(&format!("net.{v}.conf.{name}.forwarding")))
            .try_fold(false, |any, v| Some(any || v? == "1")),
        features: ethtool::features(name).map(|f| f.0).unwrap_or_default(),
        rings: ethtool::rings(name).ok(),
        channels: ethtool::channels(name).ok(),
        rss: ethtool::rss(name).ok(),
        coalesce: ethtool::coalesce(name).ok(),
        rps_cpus,
        nic_stats: Sampled {
            first: nic_stats(name),
            second: BTreeMap::new(),
        },
        qstats: Sampled {
            first: qstats.as_ref().cloned().unwrap_or_default(),
            second: Vec::new(),
        },
        qstats_error: qstats.err().map(|e| e.to_string()),
        counters: Sampled {
            first: counters(name),
            second: BTreeMap::new(),
        },
    })
}

/// Read the host and `names`, wait `sample`, read the counters again.
pub(crate) fn gather(
    names: &[String],
    sample: Duration,
    log_window_s: u64,
) -> io::Result<Snapshot> {
    let softnet_0 = parse_softnet(&read("/proc/net/softnet_stat").unwrap_or_default());
    let ticks_0 = parse_proc_stat(&read("/proc/stat").unwrap_or_default());
    let snmp_0 = snmp();
    let mut interfaces = names
        .iter()
        .map(|n| interface(n))
        .collect::<io::Result<Vec<_>>>()?;
    std::thread::sleep(sample);
    for i in &mut interfaces {
        if crate::sys::iface::index_of(&i.name) != Some(i.ifindex) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("interface {} disappeared during the audit", i.name),
            ));
        }
        i.nic_stats.second = nic_stats(&i.name);
        if i.qstats_error.is_none() {
            i.qstats.second = crate::sys::qstats::queue_stats(i.ifindex).unwrap_or_default();
        }
        i.counters.second = counters(&i.name);
        if let Some(n) =
            read(format!("/sys/class/net/{}/carrier_changes", i.name)).and_then(|v| v.parse().ok())
        {
            i.carrier_changes.second = n;
        }
    }
    let host = Host {
        hostname: read("/proc/sys/kernel/hostname").unwrap_or_default(),
        kernel: crate::sys::host::kernel_release(),
        online_cpus: std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1),
        hypervisor: hypervisor(),
        container: !in_initial_netns(),
        sysctls: host::SYSCTLS
            .iter()
            .filter_map(|n| Some((n.to_string(), host::sysctl(n)?)))
            .collect(),
        sample_ms: sample.as_millis() as u64,
        softnet: Sampled {
            first: softnet_0,
            second: parse_softnet(&read("/proc/net/softnet_stat").unwrap_or_default()),
        },
        snmp: Sampled {
            first: snmp_0,
            second: snmp(),
        },
        cpu_ticks: Sampled {
            first: ticks_0,
            second: parse_proc_stat(&read("/proc/stat").unwrap_or_default()),
        },
        kmsg: kernel_log(&interfaces, log_window_s),
        xfrm: match crate::sys::xfrm::states() {
            Ok(sas) => Xfrm { sas, error: None },
            Err(e) => Xfrm {
                sas: Vec::new(),
                error: Some(format!("IPsec SAs not read (xfrm netlink): {e}")),
            },
        },
    };
    Ok(Snapshot {
        snapshot_version: SNAPSHOT_VERSION,
        host,
        interfaces,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_softnet_stat() {
        let text = "00f2d078 00000002 00000019 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n\
                    00f7ecf9 00000000 00000009 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000";
        let s = parse_softnet(text);
        assert_eq!(s.len(), 2);
        assert_eq!(
            s[0],
            Softnet {
                cpu: 0,
                processed: 0xf2d078,
                dropped: 2,
                time_squeeze: 0x19
            }
        );
        assert_eq!(s[1].cpu, 1);
    }

    #[test]
    fn parses_the_snmp_tables() {
        let text = "Ip: Forwarding DefaultTTL InDiscards FragFails\nIp: 1 64 3 7\n\
                    Tcp: RtoAlgorithm InCsumErrors\nTcp: 1 12\nUdp: InCsumErrors\n";
        let got = parse_snmp(text);
        assert_eq!(got.get("Ip.FragFails"), Some(&7));
        assert_eq!(got.get("Ip.InDiscards"), Some(&3));
        assert_eq!(got.get("Tcp.InCsumErrors"), Some(&12));
        // Not among the names read, and a group without its values.
        assert!(!got.contains_key("Ip.DefaultTTL") && !got.contains_key("Udp.InCsumErrors"));
    }

    #[test]
    fn parses_proc_stat() {
        let t = parse_proc_stat(
            "cpu  10 0 10 100 0 0 5 0 0 0\ncpu0 5 0 5 50 0 0 3 0 0 0\ncpu1 5 0 5 50 0 0 2 0 0 0\nintr 1",
        );
        assert_eq!(
            t,
            vec![
                CpuTicks {
                    cpu: 0,
                    softirq: 3,
                    total: 63
                },
                CpuTicks {
                    cpu: 1,
                    softirq: 2,
                    total: 62
                }
            ]
        );
    }

    #[test]
    fn finds_offload_lines_in_the_kernel_log() {
        let log = "6,1,2000000,-;ice 0000:3b:00.0 ens1f0: Dropping NETIF_F_SG since no checksum feature.\n\
                   6,2,3000000,-;usb 1-1: new device\n\
                   6,3,4000000,-;Built 1 zonelists, mobility grouping on.\n\
                   4,4,5000000,-;eth1: hw csum failure\n\
                   4,5,6000000,-;TCP: sil-b: Driver has suspect GRO implementation\n\
                   6,6,9000000,-;ice 0000:3b:00.0 ens1f0: NIC Link is up 25 Gbps Full Duplex\n\
                   6,7,9500000,-;eth1: IPsec OFFLOAD unavailable\n\
                   6,8,9600000,-;ACPI: Early table checksum verification disabled\n";
        let ifaces = [("ens1f0".to_string(), "ice".to_string())];
        let got = kmsg_lines(log, 10.0, &ifaces);
        let seen: Vec<(u64, Option<&str>, &str)> = got
            .iter()
            .map(|e| (e.age_s, e.iface.as_deref(), e.kind.as_str()))
            .collect();
        assert_eq!(
            seen,
            vec![
                (8, Some("ens1f0"), "offload"),
                (5, None, "offload"),
                (4, None, "offload"),
                (1, Some("ens1f0"), "link_up"),
                (0, None, "offload"),
            ]
        );
        assert_eq!(
            got[0].text,
            "ice 0000:3b:00.0 ens1f0: Dropping NETIF_F_SG since no checksum feature."
        );
    }
}
