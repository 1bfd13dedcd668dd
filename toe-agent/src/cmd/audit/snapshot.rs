//! Everything the audit reads, as one serialisable value: gathered from the
//! running system (`gather`), or loaded from a file recorded earlier
//! (`--from`, the test fixtures). The rules only ever see this.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sys::ethtool::{Channels, Coalesce, DriverInfo, Feature, Rings, Rss};

pub(crate) const SNAPSHOT_VERSION: u32 = 1;

/// A value read twice, `sample_ms` apart, to turn counters into rates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Sampled<T> {
    pub first: T,
    pub second: T,
}

/// One CPU's line of /proc/net/softnet_stat (net/core/net-procfs.c,
/// softnet_seq_show): packets processed, dropped (backlog full), time_squeeze.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Softnet {
    pub cpu: u32,
    pub processed: u64,
    pub dropped: u64,
    pub time_squeeze: u64,
}

/// One CPU's line of /proc/stat: softirq and total time, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CpuTicks {
    pub cpu: u32,
    pub softirq: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Host {
    pub hostname: String,
    pub kernel: String,
    pub online_cpus: u32,
    /// The CPU reports a hypervisor (the `hypervisor` cpuinfo flag), with
    /// the DMI vendor when readable.
    pub hypervisor: Option<String>,
    /// The audit ran outside the initial network namespace (a container).
    pub container: bool,
    /// net.core.* and net.ipv4.* settings that matter here, by sysctl name.
    pub sysctls: BTreeMap<String, String>,
    pub sample_ms: u64,
    pub softnet: Sampled<Vec<Softnet>>,
    pub cpu_ticks: Sampled<Vec<CpuTicks>>,
    pub kmsg: KernelLog,
    /// The stack's own counters of this network namespace that say where
    /// it dropped packets (/proc/net/snmp and /proc/net/netstat, as
    /// `Group.Name`: `Tcp.InCsumErrors`, `Ip.FragFails`, ...); absent from
    /// snapshots recorded before they were read.
    #[serde(default)]
    pub snmp: Sampled<BTreeMap<String, u64>>,
    /// IPsec SAs of this network namespace and where their crypto is
    /// done (absent from older snapshots).
    #[serde(default)]
    pub xfrm: Xfrm,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Xfrm {
    pub sas: Vec<crate::sys::xfrm::Sa>,
    /// Why they could not be read (xfrm netlink needs CAP_NET_ADMIN).
    pub error: Option<String>,
}

/// Kernel log lines about offload trouble, or why they could not be read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct KernelLog {
    pub lines: Vec<String>,
    /// The same lines with their age, the interface they name, and the
    /// audited interfaces' link-up lines (absent from older snapshots).
    #[serde(default)]
    pub entries: Vec<KmsgLine>,
    /// Lines older than this many seconds are history (`audit --log-since`).
    #[serde(default = "default_log_window")]
    pub window_s: u64,
    pub error: Option<String>,
}

/// A day: a boot-time message is history after it.
pub(crate) const LOG_WINDOW_S: u64 = 24 * 3600;

fn default_log_window() -> u64 {
    LOG_WINDOW_S
}

/// One kernel log line the audit kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct KmsgLine {
    /// Seconds before the audit that the kernel logged it.
    pub age_s: u64,
    /// The audited interface it names, by name or by its driver's.
    pub iface: Option<String>,
    /// `offload` (trouble), or `link_up` (the interface's link came up:
    /// its older trouble is history).
    pub kind: String,
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Interface {
    pub name: String,
    pub ifindex: u32,
    pub driver: DriverInfo,
    /// Has a bus device behind it (/sys/class/net/<if>/device).
    pub physical: bool,
    /// An SR-IOV virtual function (/sys/class/net/<if>/device/physfn).
    pub sriov_vf: bool,
    pub speed_mbps: Option<u32>,
    pub duplex: Option<String>,
    /// Physical layer, from /sys/class/net/<if> (absent from snapshots
    /// recorded before it was read): autonegotiation (ethtool), operstate
    /// (`up`, `down`, `lowerlayerdown`, ...), carrier, and the count of
    /// carrier changes at the two readings.
    #[serde(default)]
    pub autoneg: Option<bool>,
    #[serde(default)]
    pub operstate: Option<String>,
    #[serde(default)]
    pub carrier: Option<bool>,
    #[serde(default)]
    pub carrier_changes: Sampled<u64>,
    pub mtu: u32,
    /// Bridge, bond or team this device is a port of.
    pub master: Option<String>,
    /// Devices stacked on this one (macvlan, vlan, ...).
    pub uppers: Vec<String>,
    /// The device forwards: `net.ipv4.conf.<if>.forwarding` or
    /// `net.ipv6.conf.<if>.forwarding` is 1 (absent from older snapshots:
    /// the host-wide settings stand in).
    #[serde(default)]
    pub forwarding: Option<bool>,
    pub features: Vec<Feature>,
    pub rings: Option<Rings>,
    pub channels: Option<Channels>,
    pub rss: Option<Rss>,
    pub coalesce: Option<Coalesce>,
    /// Receive Packet Steering masks, per rx queue.
    pub rps_cpus: Vec<String>,
    /// `ethtool -S`.
    pub nic_stats: Sampled<BTreeMap<String, u64>>,
    /// /sys/class/net/<if>/statistics.
    pub counters: Sampled<BTreeMap<String, u64>>,
    /// Standard per-queue statistics (netdev netlink qstats), where the
    /// kernel and driver offer them; else why not.
    #[serde(default)]
    pub qstats: Sampled<Vec<crate::sys::qstats::QueueStats>>,
    #[serde(default)]
    pub qstats_error: Option<String>,
}

impl Interface {
    pub(crate) fn feature(&self, name: &str) -> Option<&Feature> {
        self.features.iter().find(|f| f.name == name)
    }

    pub(crate) fn active(&self, name: &str) -> bool {
        self.feature(name).is_some_and(|f| f.active)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub snapshot_version: u32,
    pub host: Host,
    pub interfaces: Vec<Interface>,
}
