//! Layouts shared by the eBPF programs and the userspace agent.
//!
//! Everything here is `#[repr(C)]` and made only of `u32`/`u64` so that the
//! bytes a BPF program writes into a per-CPU map value are the bytes userspace
//! reads back. The tests at the bottom pin sizes and offsets: changing a layout
//! is a deliberate act on both sides at once.
#![no_std]

pub mod hist;

pub use hist::{HIST_BUCKETS, Hist};

/// `skb->ip_summed` values, in the order of `include/linux/skbuff.h`
/// (`CHECKSUM_NONE 0`, `CHECKSUM_UNNECESSARY 1`, `CHECKSUM_COMPLETE 2`,
/// `CHECKSUM_PARTIAL 3`). The field is two bits wide, so every value indexes
/// a `[u64; CSUM_STATES]` without a bounds check.
pub const CSUM_STATES: usize = 4;
pub const CSUM_NONE: usize = 0;
pub const CSUM_UNNECESSARY: usize = 1;
pub const CSUM_COMPLETE: usize = 2;
pub const CSUM_PARTIAL: usize = 3;

/// Per-queue counters are kept for queue indexes `0..MAX_QUEUES`; a higher
/// `queue_mapping` is folded with `& (MAX_QUEUES - 1)` (documented in docs/ndjson.md).
pub const MAX_QUEUES: usize = 64;

/// The driver hand-off hooks, in the order of `RxStats::handoff_by_hook`.
/// Which one fires tells the receive path: NAPI + GRO, or the per-CPU backlog.
pub const HANDOFF_HOOKS: usize = 5;
pub const HOOK_NAPI_GRO_RECEIVE: usize = 0;
pub const HOOK_NAPI_GRO_FRAGS: usize = 1;
pub const HOOK_NETIF_RECEIVE_SKB: usize = 2;
pub const HOOK_NETIF_RECEIVE_SKB_LIST: usize = 3;
pub const HOOK_NETIF_RX: usize = 4;
/// The tracepoints behind `HOOK_*`, in the same order.
pub const HANDOFF_HOOK_NAMES: [&str; HANDOFF_HOOKS] = [
    "napi_gro_receive_entry",
    "napi_gro_frags_entry",
    "netif_receive_skb_entry",
    "netif_receive_skb_list_entry",
    "netif_rx_entry",
];

/// Classes of multi-segment skbs, from `skb_shinfo(skb)->gso_type`
/// (include/linux/skbuff.h: `SKB_GSO_TCPV4 = 1 << 0`, `SKB_GSO_TCPV6 = 1 << 4`;
/// everything else, UDP GSO included, is "other"). TSO is judged on TCP only,
/// and per address family, because `tx-tcp-segmentation` and
/// `tx-tcp6-segmentation` are separate features.
pub const GSO_CLASSES: usize = 3;
pub const GSO_TCP4: usize = 0;
pub const GSO_TCP6: usize = 1;
pub const GSO_OTHER: usize = 2;
pub const SKB_GSO_TCPV4: u32 = 1 << 0;
pub const SKB_GSO_TCPV6: u32 = 1 << 4;

/// The GSO class of a `gso_type`.
#[inline(always)]
pub fn gso_class(gso_type: u32) -> usize {
    if gso_type & SKB_GSO_TCPV4 != 0 {
        GSO_TCP4
    } else if gso_type & SKB_GSO_TCPV6 != 0 {
        GSO_TCP6
    } else {
        GSO_OTHER
    }
}

/// Softirq vectors traced, from `include/linux/interrupt.h`
/// (`NET_TX_SOFTIRQ = 2`, `NET_RX_SOFTIRQ = 3`). Index = vector - `NET_TX_SOFTIRQ`.
pub const NET_TX_SOFTIRQ: u32 = 2;
pub const NET_RX_SOFTIRQ: u32 = 3;
pub const SOFTIRQ_NET_TX: usize = 0;
pub const SOFTIRQ_NET_RX: usize = 1;

/// Receive side, one per CPU (map `RX`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct RxStats {
    /// Length of each packet the driver hands to the stack (before GRO).
    pub segment_len: Hist,
    /// `ip_summed` of each packet at the driver hand-off.
    pub segment_csum: [u64; CSUM_STATES],
    /// Hand-offs by hook (`HOOK_*`): NAPI/GRO path versus backlog.
    pub handoff_by_hook: [u64; HANDOFF_HOOKS],
    /// `gso_size` of hand-offs that already carry one (LRO/HW-GRO, or a GSO
    /// skb that crossed a virtual device intact); its count is how many did.
    pub handoff_gso_size: Hist,
    /// Hand-offs per receive queue (`skb->queue_mapping`).
    pub queue: [u64; MAX_QUEUES],
    /// Length of each skb delivered to the stack (`netif_receive_skb`, after GRO).
    pub skb_len: Hist,
    /// `max(gso_segs, 1)` of each delivered skb: segments merged into it.
    pub segs_per_skb: Hist,
    /// `ip_summed` of each delivered skb.
    pub skb_csum: [u64; CSUM_STATES],
    /// Delivered skbs per receive queue: `queue_mapping` survives GRO (the
    /// merged skb is the flow's first), so RSS shows without the hand-off.
    pub skb_queue: [u64; MAX_QUEUES],
    /// `tcp:tcp_bad_csum` hits for skbs received on the interface.
    pub bad_csum: u64,
    /// Hand-offs longer than the MTU whose IP protocol is not TCP (UDP
    /// GSO or GRO). The protocol is read at the hand-off only for these:
    /// reading it for every packet costs a helper call per wire segment.
    pub nontcp_handoff_large: u64,
    /// Skbs after GRO whose IP protocol is not TCP (UDP, ICMP, ARP...), and
    /// the segments they carry (`max(gso_segs, 1)` each). Every packet
    /// handed up ends in exactly one skb after GRO, so the segments are
    /// also the hand-offs that were not TCP. TCP's offloads are judged
    /// without them.
    pub nontcp_skbs: u64,
    pub nontcp_skb_segs: u64,
}

/// Transmit side, one per CPU (map `TX`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TxStats {
    /// Length of each skb at `net_dev_queue` (before software GSO/checksum).
    pub queued_len: Hist,
    pub queued_csum: [u64; CSUM_STATES],
    /// `max(gso_segs, 1)` at `net_dev_queue`: segments the stack asked for.
    pub segs_per_queued: Hist,
    /// Length of each skb the driver receives (`net_dev_start_xmit`).
    pub xmit_len: Hist,
    pub xmit_csum: [u64; CSUM_STATES],
    /// `max(gso_segs, 1)` at `net_dev_start_xmit`: segments the device must
    /// still produce. Its sum is the number of wire segments.
    pub segs_per_xmit: Hist,
    /// Transmissions per queue (`skb->queue_mapping`).
    pub queue: [u64; MAX_QUEUES],
    /// Multi-segment skbs at `net_dev_queue`, by `GSO_*` class.
    pub queued_gso: [u64; GSO_CLASSES],
    /// Multi-segment skbs at `net_dev_start_xmit` (left for the device to
    /// segment), by `GSO_*` class.
    pub xmit_gso: [u64; GSO_CLASSES],
}

/// Softirq accounting, one per CPU (map `SOFTIRQ`). Index with `SOFTIRQ_*`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SoftirqStats {
    /// Total time spent in the handler, ns.
    pub time_ns: [u64; 2],
    /// Handler runs.
    pub count: [u64; 2],
    /// Duration of each run, ns.
    pub duration: [Hist; 2],
    /// `softirq_raise` to `softirq_entry`, ns.
    pub raise_latency: [Hist; 2],
    /// Program state, not statistics: timestamp of the pending entry and of
    /// the first raise since the last entry (0 = none).
    pub entry_ts: [u64; 2],
    pub raise_ts: [u64; 2],
}

/// NAPI polls of the interface, one per CPU (map `NAPI`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct NapiStats {
    /// Packets processed per poll; its count is the number of polls.
    pub work: Hist,
    /// Polls that used their whole budget (`work >= budget`): the device had
    /// more to give, so the softirq will come back (or hand off to ksoftirqd).
    pub budget_exhausted: u64,
}

/// Per NAPI instance (map `NAPI_BY_ID`, per-CPU hash keyed by `napi_id`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct NapiIdStats {
    pub polls: u64,
    pub work: u64,
    pub budget_exhausted: u64,
    pub budget: u64,
}

/// Offsets into kernel structures, resolved by userspace from the running
/// kernel's BTF (`/sys/kernel/btf/vmlinux`) because Rust eBPF gets no CO-RE
/// relocations. Byte offsets unless the name says otherwise.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Offsets {
    /// `struct sk_buff`
    pub skb_len: u32,
    pub skb_dev: u32,
    pub skb_head: u32,
    pub skb_end: u32,
    /// Byte holding the `ip_summed:2` bitfield, and the bit shift within it.
    pub skb_ip_summed_byte: u32,
    pub skb_ip_summed_shift: u32,
    pub skb_queue_mapping: u32,
    /// `skb->protocol` (`__be16` ethertype) and `skb->data`, which points at
    /// the network header at the receive hooks (eth_type_trans() pulled the
    /// MAC header).
    pub skb_protocol: u32,
    pub skb_data: u32,
    /// `struct skb_shared_info`: both fields lie in its first 8 bytes, which
    /// the programs read with one helper call.
    pub shinfo_gso_size: u32,
    pub shinfo_gso_segs: u32,
    pub shinfo_gso_type: u32,
    /// `struct net_device`
    pub dev_ifindex: u32,
    pub dev_nd_net: u32,
    pub dev_mtu: u32,
    /// `struct net` → `ns.inum` (`struct ns_common`)
    pub net_ns_inum: u32,
    /// `struct napi_struct`
    pub napi_dev: u32,
    pub napi_id: u32,
}

/// Read-only globals the loader fills in before load (`.rodata`, frozen, so
/// the verifier sees constants and offsets stay within its BTF checks).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Target device: index and network-namespace inode, both must match.
    pub ifindex: u32,
    pub netns_ino: u32,
    /// Device name, NUL-padded: the only handle classic tracepoints give.
    pub ifname: [u8; 16],
    pub off: Offsets,
}

#[cfg(feature = "user")]
mod pod {
    // SAFETY: all of these are `#[repr(C)]`, `Copy`, made only of integers,
    // with no padding (pinned by the layout tests), so any bit pattern is valid.
    unsafe impl aya::Pod for super::RxStats {}
    unsafe impl aya::Pod for super::TxStats {}
    unsafe impl aya::Pod for super::SoftirqStats {}
    unsafe impl aya::Pod for super::NapiStats {}
    unsafe impl aya::Pod for super::NapiIdStats {}
    unsafe impl aya::Pod for super::Config {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn layouts_have_no_padding() {
        assert_eq!(size_of::<Hist>(), (HIST_BUCKETS + 1) * 8);
        assert_eq!(
            size_of::<RxStats>(),
            4 * size_of::<Hist>() + (2 * CSUM_STATES + HANDOFF_HOOKS + 2 * MAX_QUEUES + 4) * 8
        );
        assert_eq!(
            size_of::<TxStats>(),
            4 * size_of::<Hist>() + (2 * CSUM_STATES + MAX_QUEUES + 2 * GSO_CLASSES) * 8
        );
        assert_eq!(size_of::<SoftirqStats>(), 4 * size_of::<Hist>() + 8 * 8);
        assert_eq!(size_of::<NapiStats>(), size_of::<Hist>() + 8);
        assert_eq!(size_of::<NapiIdStats>(), 32);
        assert_eq!(size_of::<Offsets>(), 18 * 4);
        assert_eq!(size_of::<Config>(), 8 + 16 + 18 * 4);
    }

    #[test]
    fn offsets_are_pinned() {
        assert_eq!(offset_of!(RxStats, segment_csum), size_of::<Hist>());
        assert_eq!(offset_of!(Config, off), 24);
        assert_eq!(
            offset_of!(SoftirqStats, entry_ts),
            4 * size_of::<Hist>() + 32
        );
    }

    #[test]
    fn gso_classes_follow_the_kernel_bits() {
        // SKB_GSO_TCPV4 | SKB_GSO_DODGY, as virtio_net_hdr_to_skb() sets it.
        assert_eq!(gso_class(SKB_GSO_TCPV4 | 1 << 1), GSO_TCP4);
        assert_eq!(gso_class(SKB_GSO_TCPV6 | 1 << 2), GSO_TCP6);
        // SKB_GSO_UDP_L4 = 1 << 16
        assert_eq!(gso_class(1 << 16), GSO_OTHER);
        assert_eq!(gso_class(0), GSO_OTHER);
    }

    #[test]
    fn per_cpu_values_fit_the_kernel_limit() {
        // Per-CPU map values are limited to PCPU_MIN_UNIT_SIZE (32 KiB), see
        // kernel/bpf/arraymap.c array_map_alloc_check().
        for size in [
            size_of::<RxStats>(),
            size_of::<TxStats>(),
            size_of::<SoftirqStats>(),
            size_of::<NapiStats>(),
        ] {
            assert!(size <= 32 * 1024, "{size}");
        }
    }
}
