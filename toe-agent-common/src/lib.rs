//! Layouts shared by the eBPF programs and the userspace agent.
//!
//! Everything here is `#[repr(C)]` and made only of `u32`/`u64` so that the
//! bytes a BPF program writes into a per-CPU map value are the bytes userspace
//! reads back. The tests at the bottom pin sizes and offsets: changing a layout
//! is a deliberate act on both sides at once.
#![no_std]

pub mod hist;

pub use hist::{HIST_BUCKETS, Hist};

// Each probe family's per-CPU map value lives in the family's folder, next
// to the programs that fill it and the userspace that reads it
// (toe-agent/src/probes/<family>/layout.rs): build.rs lists the folders,
// and each family's public items are this crate's.
include!(concat!(env!("OUT_DIR"), "/families.rs"));

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

/// The driver hand-off hooks, in the order of `HandoffStats::handoff_by_hook`.
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
    /// `struct sock` → `sk_dst_cache`, the socket's cached route, and
    /// `struct dst_entry` → `dev`, the device it leaves by.
    pub sk_dst_cache: u32,
    pub dst_dev: u32,
    /// `struct tcp_sock`: `srtt_us` (smoothed RTT << 3) and `snd_cwnd`.
    pub tcp_srtt_us: u32,
    pub tcp_snd_cwnd: u32,
}

impl Offsets {
    /// Before the loader fills them in.
    pub const ZERO: Offsets = Offsets {
        skb_len: 0,
        skb_dev: 0,
        skb_head: 0,
        skb_end: 0,
        skb_ip_summed_byte: 0,
        skb_ip_summed_shift: 0,
        skb_queue_mapping: 0,
        skb_protocol: 0,
        skb_data: 0,
        shinfo_gso_size: 0,
        shinfo_gso_segs: 0,
        shinfo_gso_type: 0,
        dev_ifindex: 0,
        dev_nd_net: 0,
        dev_mtu: 0,
        net_ns_inum: 0,
        napi_dev: 0,
        napi_id: 0,
        sk_dst_cache: 0,
        dst_dev: 0,
        tcp_srtt_us: 0,
        tcp_snd_cwnd: 0,
    };
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
            size_of::<HandoffStats>(),
            2 * size_of::<Hist>() + (CSUM_STATES + HANDOFF_HOOKS + MAX_QUEUES + 1) * 8
        );
        assert_eq!(
            size_of::<SkbStats>(),
            2 * size_of::<Hist>() + (CSUM_STATES + MAX_QUEUES + 3) * 8
        );
        assert_eq!(size_of::<TcpStats>(), 8);
        assert_eq!(
            size_of::<GroStats>(),
            size_of::<Hist>() + (GRO_RESULTS + 1) * 8
        );
        assert_eq!(size_of::<GroHeld>(), GRO_HELD_SLOTS * 16 + 8);
        assert_eq!(size_of::<DropStats>(), DROP_REASONS * 8);
        assert_eq!(size_of::<RetransmitStats>(), 16);
        assert_eq!(size_of::<TcpProbeStats>(), 2 * size_of::<Hist>());
        assert_eq!(
            size_of::<TxStats>(),
            5 * size_of::<Hist>() + (2 * CSUM_STATES + MAX_QUEUES + 2 * GSO_CLASSES) * 8
        );
        assert_eq!(size_of::<SoftirqStats>(), 4 * size_of::<Hist>() + 8 * 8);
        assert_eq!(size_of::<NapiStats>(), 2 * size_of::<Hist>() + 16);
        assert_eq!(size_of::<NapiIdStats>(), 32);
        assert_eq!(size_of::<Offsets>(), 22 * 4);
        assert_eq!(size_of::<Config>(), 8 + 16 + 22 * 4);
    }

    #[test]
    fn offsets_are_pinned() {
        assert_eq!(offset_of!(HandoffStats, segment_csum), size_of::<Hist>());
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
            size_of::<HandoffStats>(),
            size_of::<SkbStats>(),
            size_of::<TxStats>(),
            size_of::<SoftirqStats>(),
            size_of::<NapiStats>(),
        ] {
            assert!(size <= 32 * 1024, "{size}");
        }
    }
}
