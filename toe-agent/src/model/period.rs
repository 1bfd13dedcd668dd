//! The measurement blocks as users see them: NDJSON records and the
//! terminal view are both rendered from these (docs/ndjson.md).
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use toe_agent_common::{
    CSUM_COMPLETE, CSUM_NONE, CSUM_PARTIAL, CSUM_STATES, CSUM_UNNECESSARY, GRO_CONSUMED, GRO_HELD,
    GRO_MERGED, GRO_MERGED_FREE, GRO_NORMAL, GRO_RESULTS, GSO_CLASSES, GSO_OTHER, GSO_TCP4,
    GSO_TCP6, HANDOFF_HOOKS, HOOK_NAPI_GRO_FRAGS, HOOK_NAPI_GRO_RECEIVE, HOOK_NETIF_RECEIVE_SKB,
    HOOK_NETIF_RECEIVE_SKB_LIST, HOOK_NETIF_RX, Hist, MAX_QUEUES, SOFTIRQ_NET_RX, SOFTIRQ_NET_TX,
    hist::{bucket_index, bucket_lower_bound, bucket_upper_bound},
};

use crate::{kernel::collect::Totals, model::drops::Drops};

/// A histogram summary. Percentiles, min and max are bucket bounds (the
/// kernel keeps log-linear buckets, at most 25% wide); `sum` is exact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HistSummary {
    pub count: u64,
    pub sum: u64,
    pub min: u64,
    pub max: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    /// Non-empty buckets only, as `[upper_bound, count]`, ascending.
    pub buckets: Vec<(u64, u64)>,
}

impl HistSummary {
    pub fn from_hist(h: &Hist) -> Self {
        let buckets: Vec<(usize, u64)> = h
            .buckets
            .iter()
            .enumerate()
            .filter(|(_, c)| **c != 0)
            .map(|(i, c)| (i, *c))
            .collect();
        let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
            return HistSummary::default();
        };
        // Each bucket is recorded at its upper bound, so a percentile is
        // never understated by more than the bucket width.
        let mut hdr = Histogram::<u64>::new(3).expect("3 significant figures is a valid precision");
        for &(i, c) in &buckets {
            // Auto-resizing histogram: recording cannot fail for u32-range values.
            let _ = hdr.record_n(bucket_upper_bound(i), c);
        }
        let q = |q: f64| hdr.value_at_quantile(q).min(bucket_upper_bound(last.0));
        HistSummary {
            count: hdr.len(),
            sum: h.sum,
            min: bucket_lower_bound(first.0),
            max: bucket_upper_bound(last.0),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            buckets: buckets
                .iter()
                .map(|&(i, c)| (bucket_upper_bound(i), c))
                .collect(),
        }
    }

    /// Events whose bucket lies entirely above `x` (a conservative count of
    /// values greater than `x`).
    pub fn count_above(&self, x: u64) -> u64 {
        self.buckets
            .iter()
            .filter(|(upper, _)| bucket_lower_bound(bucket_index(*upper)) > x)
            .map(|(_, c)| c)
            .sum()
    }

    /// Events of exactly `v`, for the values below 4 that have a bucket of
    /// their own (segment counts of 1, say).
    pub fn count_exact(&self, v: u64) -> u64 {
        debug_assert!(v < 4, "only 0..4 have exact buckets");
        self.buckets
            .iter()
            .filter(|(u, _)| *u == v)
            .map(|(_, c)| c)
            .sum()
    }

    /// Exact mean (from the exact sum), 0 when empty.
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        }
    }
}

/// `ip_summed` counts (include/linux/skbuff.h CHECKSUM_*).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Csum {
    pub none: u64,
    pub unnecessary: u64,
    pub complete: u64,
    pub partial: u64,
}

impl Csum {
    fn from(c: &[u64; CSUM_STATES]) -> Self {
        Csum {
            none: c[CSUM_NONE],
            unnecessary: c[CSUM_UNNECESSARY],
            complete: c[CSUM_COMPLETE],
            partial: c[CSUM_PARTIAL],
        }
    }

    pub fn total(&self) -> u64 {
        self.none + self.unnecessary + self.complete + self.partial
    }
}

/// Which driver hand-off hook saw the packets: NAPI/GRO versus backlog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    pub napi_gro_receive: u64,
    pub napi_gro_frags: u64,
    pub netif_receive_skb: u64,
    pub netif_receive_skb_list: u64,
    pub netif_rx: u64,
}

impl Handoff {
    /// Counts by hook name (the tracepoint without `_entry`).
    pub(crate) fn by_hook(&self) -> Vec<(String, u64)> {
        [
            ("napi_gro_receive", self.napi_gro_receive),
            ("napi_gro_frags", self.napi_gro_frags),
            ("netif_receive_skb", self.netif_receive_skb),
            ("netif_receive_skb_list", self.netif_receive_skb_list),
            ("netif_rx", self.netif_rx),
        ]
        .into_iter()
        .map(|(h, n)| (h.to_string(), n))
        .collect()
    }

    fn from(h: &[u64; HANDOFF_HOOKS]) -> Self {
        Handoff {
            napi_gro_receive: h[HOOK_NAPI_GRO_RECEIVE],
            napi_gro_frags: h[HOOK_NAPI_GRO_FRAGS],
            netif_receive_skb: h[HOOK_NETIF_RECEIVE_SKB],
            netif_receive_skb_list: h[HOOK_NETIF_RECEIVE_SKB_LIST],
            netif_rx: h[HOOK_NETIF_RX],
        }
    }
}

/// Received packets whose IP protocol is not TCP: counted, but left out of
/// the judgement of TCP's offloads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct NonTcpRx {
    /// skbs after GRO, and the segments they carry: the packets the driver
    /// handed up that were not TCP.
    pub skbs: u64,
    pub skb_segments: u64,
    /// Hand-offs longer than the MTU (UDP GSO or GRO before the stack).
    pub handoff_large: u64,
}

/// Packets by what GRO returned for them (`gro_result_t`,
/// include/linux/netdevice.h): the evidence for why GRO did or did not
/// merge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GroResults {
    /// Merged into an skb GRO holds (GRO_MERGED, GRO_MERGED_FREE).
    pub merged: u64,
    /// Held as the first packet of a flow, for later ones to merge into.
    pub held: u64,
    /// Passed up as it was: not mergeable (another protocol, a flag, a
    /// checksum GRO could not trust) or flushed at once.
    pub normal: u64,
    /// Consumed (by a tunnel's GRO, for one).
    pub consumed: u64,
    /// A result this agent does not know.
    pub other: u64,
}

impl GroResults {
    fn from(r: &[u64; GRO_RESULTS]) -> Self {
        let known = GRO_CONSUMED + 1;
        GroResults {
            merged: r[GRO_MERGED] + r[GRO_MERGED_FREE],
            held: r[GRO_HELD],
            normal: r[GRO_NORMAL],
            consumed: r[GRO_CONSUMED],
            other: r[known..].iter().sum(),
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.merged + self.held + self.normal + self.consumed + self.other
    }

    /// Counts by result, as a split value.
    pub(crate) fn by_result(&self) -> Vec<(String, u64)> {
        [
            ("merged", self.merged),
            ("held", self.held),
            ("normal", self.normal),
            ("consumed", self.consumed),
            ("other", self.other),
        ]
        .into_iter()
        .map(|(k, n)| (k.to_string(), n))
        .collect()
    }
}

/// Multi-segment skbs by `gso_type` class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GsoClasses {
    pub tcp4: u64,
    pub tcp6: u64,
    /// UDP GSO, tunnels without TCP, anything else.
    pub other: u64,
}

impl GsoClasses {
    fn from(c: &[u64; GSO_CLASSES]) -> Self {
        GsoClasses {
            tcp4: c[GSO_TCP4],
            tcp6: c[GSO_TCP6],
            other: c[GSO_OTHER],
        }
    }

    pub fn tcp(&self) -> u64 {
        self.tcp4 + self.tcp6
    }
}

/// Transmit queues: `queue_mapping` is the queue index.
fn queues(q: &[u64; MAX_QUEUES]) -> Vec<(u32, u64)> {
    q.iter()
        .enumerate()
        .filter(|(_, c)| **c != 0)
        .map(|(i, c)| (i as u32, *c))
        .collect()
}

/// Receive queues: a driver records queue `n` as `queue_mapping = n + 1`,
/// and 0 means no queue was recorded (include/linux/skbuff.h,
/// skb_record_rx_queue() and skb_get_rx_queue()). The recorded queues,
/// and the count of packets without one.
fn rx_queues(q: &[u64; MAX_QUEUES]) -> (Vec<(u32, u64)>, u64) {
    let recorded = q
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, c)| **c != 0)
        .map(|(i, c)| (i as u32 - 1, *c))
        .collect();
    (recorded, q[0])
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rx {
    /// Packets handed up by the driver (before GRO).
    pub segments: u64,
    /// skbs delivered to the stack (after GRO).
    pub skbs: u64,
    /// Sum of `skb->len` after GRO (from the network header).
    pub bytes: u64,
    pub segment_len: HistSummary,
    pub skb_len: HistSummary,
    pub segs_per_skb: HistSummary,
    /// `ip_summed` at the driver hand-off: what the NIC reported.
    pub csum: Csum,
    /// `ip_summed` after GRO.
    pub skb_csum: Csum,
    pub handoff: Handoff,
    /// `gso_size` of hand-offs that already carried one (count = how many).
    pub handoff_gso_size: HistSummary,
    /// `[queue, segments]` for queues that received.
    pub queues: Vec<(u32, u64)>,
    /// `[queue, skbs]` after GRO (absent from files of earlier versions).
    #[serde(default)]
    pub skb_queues: Vec<(u32, u64)>,
    /// Packets, and skbs after GRO, whose driver recorded no receive queue
    /// (absent from earlier files, whose `queues` held `queue_mapping` as is).
    #[serde(default)]
    pub queue_unrecorded: u64,
    #[serde(default)]
    pub skb_queue_unrecorded: u64,
    pub bad_csum: u64,
    /// The part of the above that is not TCP (absent from earlier files).
    #[serde(default)]
    pub non_tcp: NonTcpRx,
    /// What software GRO did with the packets handed to it (absent from
    /// earlier files).
    #[serde(default)]
    pub gro: GroResults,
    /// How long GRO held the first packet of each merged skb, ns (absent
    /// from earlier files).
    #[serde(default)]
    pub gro_hold_ns: HistSummary,
    /// Packets received as IP fragments (absent from earlier files).
    #[serde(default)]
    pub ip_fragments: u64,
}

impl Rx {
    /// Packets the driver handed up, from the skbs after GRO and the
    /// segments they carry (`gso_segs`): whole even when the hand-off is
    /// sampled. The hand-off count where it is larger (classic
    /// tracepoints have no gso_segs).
    pub(crate) fn whole_segments(&self) -> u64 {
        self.segs_per_skb.sum.max(self.segments)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tx {
    pub queued_skbs: u64,
    pub xmit_skbs: u64,
    /// Sum over xmit skbs of max(gso_segs, 1).
    pub wire_segments: u64,
    /// Sum of lengths handed to the driver (with the link-layer header).
    pub bytes: u64,
    pub queued_len: HistSummary,
    pub xmit_len: HistSummary,
    pub segs_per_queued: HistSummary,
    pub segs_per_xmit: HistSummary,
    /// `ip_summed` at `net_dev_start_xmit`: what the driver is asked to do.
    pub csum: Csum,
    /// `ip_summed` at `net_dev_queue`.
    pub queued_csum: Csum,
    pub queues: Vec<(u32, u64)>,
    /// Multi-segment skbs at net_dev_queue and at net_dev_start_xmit, by
    /// GSO class (absent from earlier files).
    #[serde(default)]
    pub gso_queued: GsoClasses,
    #[serde(default)]
    pub gso_xmit: GsoClasses,
}

impl Tx {
    /// Segments the stack asked for at net_dev_queue (`gso_segs`): whole
    /// even when net_dev_start_xmit is sampled. The driver's count where
    /// it is larger (classic tracepoints have no gso_segs at the queue).
    pub(crate) fn whole_segments(&self) -> u64 {
        self.segs_per_queued.sum.max(self.wire_segments)
    }
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
pub struct Softirq {
    pub net_rx: SoftirqVec,
    pub net_tx: SoftirqVec,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NapiInstance {
    pub napi_id: u32,
    pub polls: u64,
    pub work: u64,
    pub budget_exhausted: u64,
    pub budget: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Napi {
    pub polls: u64,
    pub work: HistSummary,
    /// Duration of each poll in a NET_RX softirq (absent from earlier files).
    #[serde(default)]
    pub poll_ns: HistSummary,
    pub budget_exhausted: u64,
    pub by_id: Vec<NapiInstance>,
}

/// Everything measured over one period (an interval or the whole run).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Blocks {
    pub rx: Rx,
    pub tx: Tx,
    pub softirq: Softirq,
    pub napi: Napi,
    /// Packets of the device the stack dropped (absent from earlier files).
    #[serde(default)]
    pub drops: Drops,
    /// TCP's own account of the device's traffic (absent from earlier files).
    #[serde(default)]
    pub tcp: Tcp,
    /// How much of the period the per-segment programs ran (absent from
    /// earlier files, which counted every packet).
    #[serde(default)]
    pub sample: Sampling,
}

/// TCP retransmissions of sockets routed over the device, and the state of
/// the sockets receiving on it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tcp {
    /// skbs retransmitted.
    pub retransmits: u64,
    /// The segments they carried.
    pub retransmitted_segments: u64,
    /// Smoothed RTT, µs, and congestion window, segments, sampled at each
    /// skb a socket receives on the device.
    #[serde(default)]
    pub srtt_us: HistSummary,
    #[serde(default)]
    pub cwnd: HistSummary,
}

/// How much of a period the per-segment programs ran (docs/sampling.md).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// The share of time asked for (`--sample`): 1 always, 0 never
    /// (`--per-skb`, or no per-segment probe attached).
    pub fraction: f64,
    /// Seconds the sampling windows were open in the period, and how many
    /// closed in it (a window open across a reading counts where it
    /// closes; with a fraction of 1 none ever does).
    pub secs: f64,
    pub windows: u32,
}

impl Default for Sampling {
    /// Files written before sampling existed counted every packet.
    fn default() -> Self {
        Sampling {
            fraction: 1.0,
            secs: 0.0,
            windows: 0,
        }
    }
}

impl Sampling {
    /// Does the period hold per-segment counts only from windows?
    pub(crate) fn partial(&self) -> bool {
        self.fraction < 1.0
    }
}

fn softirq_vec(t: &Totals, v: usize) -> SoftirqVec {
    let mut duration = Hist::ZERO;
    let mut latency = Hist::ZERO;
    let mut per_cpu = Vec::new();
    for (cpu, s) in t.softirq.iter().enumerate() {
        crate::kernel::collect::Counters::add(&mut duration, &s.duration[v]);
        crate::kernel::collect::Counters::add(&mut latency, &s.raise_latency[v]);
        if s.count[v] != 0 || s.time_ns[v] != 0 {
            let d = HistSummary::from_hist(&s.duration[v]);
            per_cpu.push(CpuTime {
                cpu: cpu as u32,
                time_ns: s.time_ns[v],
                count: s.count[v],
                duration_p50_ns: d.p50,
                duration_p99_ns: d.p99,
            });
        }
    }
    SoftirqVec {
        time_ns: per_cpu.iter().map(|c| c.time_ns).sum(),
        count: per_cpu.iter().map(|c| c.count).sum(),
        duration_ns: HistSummary::from_hist(&duration),
        raise_latency_ns: HistSummary::from_hist(&latency),
        per_cpu,
    }
}

impl Blocks {
    pub fn from_totals(t: &Totals) -> Self {
        let (rx_queues_seen, queue_unrecorded) = rx_queues(&t.handoff.queue);
        let (skb_queues, skb_queue_unrecorded) = rx_queues(&t.skb.skb_queue);
        let skb_len = HistSummary::from_hist(&t.skb.skb_len);
        let xmit_len = HistSummary::from_hist(&t.tx.xmit_len);
        let segs_per_xmit = HistSummary::from_hist(&t.tx.segs_per_xmit);
        let queued_len = HistSummary::from_hist(&t.tx.queued_len);
        let segment_len = HistSummary::from_hist(&t.handoff.segment_len);
        let work = HistSummary::from_hist(&t.napi.work);
        Blocks {
            rx: Rx {
                segments: segment_len.count,
                skbs: skb_len.count,
                bytes: skb_len.sum,
                segment_len,
                skb_len,
                segs_per_skb: HistSummary::from_hist(&t.skb.segs_per_skb),
                csum: Csum::from(&t.handoff.segment_csum),
                skb_csum: Csum::from(&t.skb.skb_csum),
                handoff: Handoff::from(&t.handoff.handoff_by_hook),
                handoff_gso_size: HistSummary::from_hist(&t.handoff.handoff_gso_size),
                queues: rx_queues_seen,
                skb_queues,
                queue_unrecorded,
                skb_queue_unrecorded,
                bad_csum: t.tcp.bad_csum,
                gro: GroResults::from(&t.gro.result),
                gro_hold_ns: HistSummary::from_hist(&t.gro.hold_ns),
                ip_fragments: t.skb.ip_fragments,
                non_tcp: NonTcpRx {
                    handoff_large: t.handoff.nontcp_handoff_large,
                    skbs: t.skb.nontcp_skbs,
                    skb_segments: t.skb.nontcp_skb_segs,
                },
            },
            tx: Tx {
                queued_skbs: queued_len.count,
                xmit_skbs: xmit_len.count,
                wire_segments: segs_per_xmit.sum,
                bytes: xmit_len.sum,
                queued_len,
                xmit_len,
                segs_per_queued: HistSummary::from_hist(&t.tx.segs_per_queued),
                segs_per_xmit,
                csum: Csum::from(&t.tx.xmit_csum),
                queued_csum: Csum::from(&t.tx.queued_csum),
                queues: queues(&t.tx.queue),
                gso_queued: GsoClasses::from(&t.tx.queued_gso),
                gso_xmit: GsoClasses::from(&t.tx.xmit_gso),
            },
            drops: Drops::from(&t.drops.by_reason),
            tcp: Tcp {
                retransmits: t.retransmit.skbs,
                retransmitted_segments: t.retransmit.segments,
                srtt_us: HistSummary::from_hist(&t.tcp_probe.srtt_us),
                cwnd: HistSummary::from_hist(&t.tcp_probe.cwnd),
            },
            softirq: Softirq {
                net_rx: softirq_vec(t, SOFTIRQ_NET_RX),
                net_tx: softirq_vec(t, SOFTIRQ_NET_TX),
            },
            napi: Napi {
                polls: work.count,
                work,
                poll_ns: HistSummary::from_hist(&t.napi.poll_ns),
                budget_exhausted: t.napi.budget_exhausted,
                by_id: t
                    .napi_by_id
                    .iter()
                    .map(|(id, s)| NapiInstance {
                        napi_id: *id,
                        polls: s.polls,
                        work: s.work,
                        budget_exhausted: s.budget_exhausted,
                        budget: s.budget,
                    })
                    .collect(),
            },
            sample: Sampling::default(),
        }
    }
}

/// `n` events over `secs` seconds, per second (0 for an empty period).
pub(crate) fn per_second(n: u64, secs: f64) -> f64 {
    if secs > 0.0 { n as f64 / secs } else { 0.0 }
}

/// The rates a period's blocks give, derived here once for the view,
/// `report --compare` and the plots.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Rates {
    /// Bytes delivered after GRO, in Gbit/s.
    pub(crate) rx_gbps: f64,
    /// Bytes handed to the driver, in Gbit/s; queued bytes when the
    /// driver's hook is not attached.
    pub(crate) tx_gbps: f64,
    /// Mean segments per skb after GRO.
    pub(crate) segs_per_skb: f64,
    /// NET_RX softirq time, in % of one CPU, summed over CPUs and of the
    /// busiest CPU.
    pub(crate) net_rx_pct: f64,
    pub(crate) net_rx_busiest_pct: f64,
}

impl Rates {
    pub(crate) fn of(b: &Blocks, secs: f64, driver_xmit: bool) -> Rates {
        let gbps = |bytes: u64| per_second(bytes, secs) * 8e-9;
        let pct = |ns: u64| per_second(ns, secs) * 1e-7;
        let busiest = b.softirq.net_rx.per_cpu.iter().map(|c| c.time_ns).max();
        Rates {
            rx_gbps: gbps(b.rx.bytes),
            // The driver's bytes only when every packet reached the
            // program that counts them.
            tx_gbps: gbps(if driver_xmit && !b.sample.partial() {
                b.tx.bytes
            } else {
                b.tx.queued_len.sum
            }),
            segs_per_skb: b.rx.segs_per_skb.mean(),
            net_rx_pct: pct(b.softirq.net_rx.time_ns),
            net_rx_busiest_pct: pct(busiest.unwrap_or(0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(pairs: &[(u64, u64)]) -> Hist {
        let mut h = Hist::ZERO;
        for &(v, n) in pairs {
            h.buckets[bucket_index(v)] += n;
            h.sum += v * n;
        }
        h
    }

    #[test]
    fn summary_of_an_empty_histogram_is_all_zero() {
        assert_eq!(HistSummary::from_hist(&Hist::ZERO), HistSummary::default());
    }

    #[test]
    fn percentiles_are_bucket_upper_bounds() {
        // 98 MTU-sized segments and 2 pure ACKs.
        let s = HistSummary::from_hist(&hist(&[(1500, 98), (52, 2)]));
        assert_eq!(s.count, 100);
        assert_eq!(s.sum, 1500 * 98 + 52 * 2);
        assert_eq!(s.min, 48);
        assert_eq!(s.max, 1535);
        assert_eq!(s.p50, 1535);
        assert_eq!(s.p99, 1535);
        assert_eq!(s.buckets, vec![(55, 2), (1535, 98)]);
        assert!((s.mean() - 1471.04).abs() < 1e-9);
    }

    #[test]
    fn tail_percentiles_see_the_big_skbs() {
        let s = HistSummary::from_hist(&hist(&[(1500, 900), (65_000, 100)]));
        assert_eq!(s.p50, 1535);
        assert!(s.p99 >= 65_000 && s.p99 <= s.max, "{s:?}");
        assert_eq!(s.max, 65_535);
    }

    #[test]
    fn blocks_derive_counts_from_histograms() {
        let mut t = Totals::default();
        t.handoff.segment_len = hist(&[(1448, 340)]);
        t.skb.skb_len = hist(&[(49_232, 10)]);
        t.skb.segs_per_skb = hist(&[(34, 10)]);
        t.tx.xmit_len = hist(&[(1514, 30), (66_000, 2)]);
        t.tx.segs_per_xmit = hist(&[(1, 30), (45, 2)]);
        let b = Blocks::from_totals(&t);
        assert_eq!(b.rx.segments, 340);
        assert_eq!(b.rx.skbs, 10);
        assert_eq!(b.rx.bytes, 492_320);
        assert_eq!(b.tx.xmit_skbs, 32);
        assert_eq!(b.tx.wire_segments, 120);
        assert_eq!(b.tx.bytes, 1514 * 30 + 132_000);
    }
}
