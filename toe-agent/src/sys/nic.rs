//! The driver's counters of one device, read beside the probes each
//! period (model::nic compares them): the netdev qstats summed over its
//! queues, and /sys/class/net/<if>/statistics. Read-only; one netlink dump
//! and a few sysfs reads per period.
use std::collections::BTreeMap;

use crate::sys::{ethtool, qstats};

/// The interface counters read (include/uapi/linux/if_link.h, struct
/// rtnl_link_stats64, exposed by net/core/net-sysfs.c).
const COUNTERS: &[&str] = &[
    "rx_packets",
    "tx_packets",
    "rx_dropped",
    "tx_dropped",
    "rx_missed_errors",
    "rx_fifo_errors",
    "rx_crc_errors",
    "rx_errors",
];

/// `total + period`, key by key.
pub(crate) fn add(total: &mut BTreeMap<String, u64>, period: &BTreeMap<String, u64>) {
    for (k, v) in period {
        *total.entry(k.clone()).or_default() += v;
    }
}

/// One reading of the device's counters, cumulative.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reading {
    pub qstats: BTreeMap<String, u64>,
    /// Why there are no qstats (the first error seen).
    pub qstats_error: Option<String>,
    pub counters: BTreeMap<String, u64>,
    /// The RX ring's size and its maximum (`ethtool -g`), when the driver
    /// says: what a drop before the CPU is judged against.
    pub rx_ring: Option<(u32, u32)>,
}

impl Reading {
    pub(crate) fn take(name: &str, ifindex: u32) -> Reading {
        let (qstats, qstats_error) = match qstats::queue_stats(ifindex) {
            // A driver without queue statistics (veth, tun) is left out of
            // the dump rather than refused (net/core/netdev-genl.c,
            // netdev_nl_stats_by_netdev(): no stat ops, nothing written).
            Ok(queues) if queues.is_empty() => (
                BTreeMap::new(),
                Some("the driver reports no queue statistics".to_string()),
            ),
            Ok(queues) => {
                let mut sum = BTreeMap::new();
                for q in queues {
                    add(&mut sum, &q.stats);
                }
                (sum, None)
            }
            Err(e) => (BTreeMap::new(), Some(e.to_string())),
        };
        let counters = COUNTERS
            .iter()
            .filter_map(|c| {
                let path = format!("/sys/class/net/{name}/statistics/{c}");
                let v = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
                Some((c.to_string(), v))
            })
            .collect();
        Reading {
            qstats,
            qstats_error,
            counters,
            rx_ring: ethtool::rings(name).ok().map(|r| (r.rx, r.rx_max)),
        }
    }

    /// `self + other`, for rises over periods laid end to end: the latest
    /// error and ring stand.
    pub(crate) fn add(&mut self, other: &Reading) {
        add(&mut self.qstats, &other.qstats);
        add(&mut self.counters, &other.counters);
        if other.qstats_error.is_some() || other.rx_ring.is_some() {
            self.qstats_error.clone_from(&other.qstats_error);
            self.rx_ring = other.rx_ring;
        }
    }

    /// What rose from `earlier` to this reading; a counter that went back
    /// (a queue removed, a driver reset) counts as 0, not as a wrap.
    pub(crate) fn since(&self, earlier: &Reading) -> Reading {
        let rise = |now: &BTreeMap<String, u64>, before: &BTreeMap<String, u64>| {
            now.iter()
                .map(|(k, v)| (k.clone(), v.saturating_sub(*before.get(k).unwrap_or(&0))))
                .collect()
        };
        Reading {
            qstats: rise(&self.qstats, &earlier.qstats),
            qstats_error: self.qstats_error.clone(),
            counters: rise(&self.counters, &earlier.counters),
            rx_ring: self.rx_ring,
        }
    }
}
