//! The lab's configurations: what joins the two namespaces, what each end
//! is set to, and the verdict each offload should get, with the kernel or
//! driver code that makes it so.
//!
//! Two kinds of link. A veth pair shows what the kernel does on a virtual
//! device (docs/kernel-notes.md, "veth as a lab"). The emulated NIC (two
//! taps joined by [`super::silicon`]) is judged as a physical device: each
//! of its rows reproduces what a named real driver hands the stack, and
//! cites it.
use crate::model::verdict::Mechanism::{
    self, Deferred as Def, Hardware as Hw, Off, Software as Sw,
};

use super::silicon::{NicSpec, RxMode};

/// ethtool -K names and the features they stand for on veth.
const TSO: &[&str] = &[
    "tx-tcp-segmentation",
    "tx-tcp-ecn-segmentation",
    "tx-tcp-mangleid-segmentation",
    "tx-tcp6-segmentation",
];
const GSO: &[&str] = &["tx-generic-segmentation"];
const TX_CSUM: &[&str] = &["tx-checksum-ip-generic", "tx-checksum-sctp"];
const SG: &[&str] = &["tx-scatter-gather", "tx-scatter-gather-fraglist"];
const GRO: &[&str] = &["rx-gro"];
const RX_CSUM: &[&str] = &["rx-checksum"];

/// Feature groups turned on or off on one end.
pub(crate) type Groups = &'static [(&'static [&'static str], bool)];

/// What joins the namespaces.
pub(crate) enum Link {
    /// A veth pair, with ethtool changes at the sender and the receiver.
    Veth { sender: Groups, receiver: Groups },
    /// Two taps joined by the emulated silicon.
    Nic(Nic),
}

/// An emulated NIC model (the same at both ends).
pub(crate) struct Nic {
    pub spec: NicSpec,
    /// Receive features the emulated NIC declares. A tap's own ethtool view
    /// cannot show them (its rx-checksumming reads `off [fixed]`, it has no
    /// LRO or hardware GRO), so the verdicts see these instead, as they
    /// would see a real NIC's.
    pub declares: &'static [(&'static str, bool)],
}

/// One expected verdict and why.
pub(crate) struct Expect {
    pub mechanism: Mechanism,
    pub mismatch: bool,
    /// The kernel or driver code that makes it so.
    pub because: &'static str,
}

const fn expect(mechanism: Mechanism, mismatch: bool, because: &'static str) -> Expect {
    Expect {
        mechanism,
        mismatch,
        because,
    }
}

/// What the lab does to the traffic besides the link's settings, to show
/// what offload costs TCP where it happens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Impair {
    None,
    /// An nftables rule in the receiver's namespace drops this share, in
    /// percent, of the transfer's packets at input (`numgen random`: this
    /// kernel has no netem). The stack counts them as NETFILTER_DROP; TCP
    /// retransmits them.
    Loss(u8),
    /// The receiving application reads at most this many bytes a second
    /// into a small receive buffer: a receiver that cannot keep up.
    SlowReader(u64),
}

pub(crate) struct LabConfig {
    pub name: &'static str,
    pub description: &'static str,
    pub link: Link,
    /// TCP connections in the transfer (several are needed to see RSS).
    pub flows: usize,
    pub impair: Impair,
    /// Per offload, in `Offload::ALL` order.
    pub expected: [Expect; 5],
}

impl LabConfig {
    pub(crate) fn is_emulated(&self) -> bool {
        matches!(self.link, Link::Nic(_))
    }
}

// Why, on veth (drivers/net/veth.c and the core code it relies on).
const VETH_TSO: &str = "veth_xmit() hands the GSO skb to the peer whole; validate_xmit_skb() leaves it intact because veth has TSO";
const VETH_CSUM: &str = "the skb crosses veth with CHECKSUM_PARTIAL; nobody computes it (skb_csum_unnecessary() on receive)";
const VETH_RX_INTACT: &str =
    "with TSO on at the sender, GSO skbs reach the peer through netif_rx() intact";
const VETH_RX_CSUM_PARTIAL: &str =
    "veth_forward_skb() keeps the sender's CHECKSUM_PARTIAL; the receiver trusts it";
const SW_GSO: &str = "TSO off: validate_xmit_skb() → skb_gso_segment() segments on the CPU";
const SW_GSO_ALWAYS: &str = "TCP always gets NETIF_F_GSO (sk_setup_caps(), net/core/sock.c): with GSO off the kernel still segments, so the GSO flag disagrees";
const SW_CSUM: &str =
    "checksum offload off: TCP or skb_checksum_help() computes the checksum on the CPU";
const SW_GRO: &str = "veth_poll() → napi_gro_receive(): software GRO merges MTU segments (the NAPI path needs GRO on, veth_skb_is_eligible_for_gro())";
const NO_GRO: &str =
    "GRO off: veth_xmit() uses netif_rx(), the backlog path, where nothing is merged";
const RX_CSUM_NONE: &str = "the sender computed the checksum, so the skb arrives CHECKSUM_NONE and tcp_v4_rcv() → skb_checksum_init() verifies it on the CPU although rx-checksum is on";
const RX_CSUM_NONE_OFF: &str = "CHECKSUM_NONE: tcp_v4_rcv() → skb_checksum_init() verifies on the CPU (rx-checksum is off, as configured)";
const ONE_QUEUE: &str = "veth hands skbs up without recording a receive queue (queue_mapping 0, see skb_rx_queue_recorded()): one path, no spreading";

// Why, on the emulated NIC (drivers/net/tun.c and the drivers each row imitates).
const NIC_TSO: &str = "TUNSETOFFLOAD TSO: the kernel hands the tap intact GSO skbs and the silicon segments them, as ixgbe_tso() / e1000_tso() hand the job to the NIC";
const NIC_NO_TSO: &str = "no TSO (TUNSETOFFLOAD without TUN_F_TSO*): validate_xmit_skb() → skb_gso_segment() segments on the CPU, as for e1000 with tso off";
const NIC_CSUM: &str = "TUN_F_CSUM: skbs reach the driver CHECKSUM_PARTIAL and the silicon fills the checksum in (ixgbe_tx_csum())";
const NIC_NO_CSUM: &str =
    "no TUN_F_CSUM: skb_checksum_help() computes checksums on the CPU before the driver";
const NIC_SW_GRO: &str = "MTU frames handed to napi_gro_receive() (tun_napi_poll(), as e1000e_receive_skb()): software GRO merges them";
const NIC_CSUM_NONE: &str = "frames handed up CHECKSUM_NONE, as e1000_rx_checksum() leaves them when the NIC reports no status (e1000e under QEMU): the CPU verifies";
const NIC_CSUM_IGNORED: &str = "the NIC declares rx-checksum on, yet tun_get_user() hands its frames up CHECKSUM_NONE (it ignores VIRTIO_NET_HDR_F_DATA_VALID), as e1000_rx_checksum() leaves e1000e's under QEMU: the CPU verifies, a mismatch";
const NIC_LRO: &str = "LRO: one GSO frame with gso_size per flow burst, as mlx5e_lro_update_hdr() and ixgbe_set_rsc_gso_size() build it";
const NIC_LRO_CSUM: &str = "tun_get_user() passes no checksum mark for the LRO frames (it ignores DATA_VALID), so they arrive CHECKSUM_NONE and the CPU verifies them, as vmxnet3_rx_csum() leaves vmxnet3's LRO frames under QEMU";
const NIC_HW_GRO: &str = "hardware GRO: merged frames handed up CHECKSUM_PARTIAL with gso_size, as bnxt_gro_skb() → tcp_gro_complete() does";
const NIC_HW_GRO_CSUM: &str = "CHECKSUM_PARTIAL from a physical NIC is hardware GRO's mark, set after verifying each merged segment (bnxt_gro_skb(), qede_gro_ip_csum())";
const NIC_LRO_NO_GSO: &str = "LRO without gso_size: frames longer than the MTU and no gso_type, as bnxt_tpa_end() in LRO mode hands them up";
const NIC_RSS: &str = "flows hashed over the tap's queues (Toeplitz, as the NIC's RSS engine); tun records the queue with skb_record_rx_queue()";
const NIC_ONE_QUEUE: &str =
    "one queue: tun_get_user() records every frame on queue 0 (skb_record_rx_queue())";

const PLAIN_NIC: NicSpec = NicSpec {
    tx_csum: false,
    tso: false,
    rx: RxMode::Plain,
    queues: 1,
};

const fn offloading_nic(rx: RxMode, queues: u16) -> NicSpec {
    NicSpec {
        tx_csum: true,
        tso: true,
        rx,
        queues,
    }
}

/// What a NIC with RSS and receive checksum declares.
const RSS_NIC: &[(&str, bool)] = &[
    ("rx-checksum", true),
    ("rx-hashing", true),
    ("rx-lro", false),
    ("rx-gro-hw", false),
];

/// veth with every offload on, the receiver's GRO included.
const ALL_ON_LINK: Link = Link::Veth {
    sender: &[],
    receiver: &[(GRO, true)],
};

/// What veth does while the sender's TSO and checksum offload are on: it
/// defers every offload, the receiver's GRO on or off (the GSO skbs cross
/// intact).
const ALL_ON: [Expect; 5] = [
    expect(Def, false, VETH_TSO),
    expect(Def, false, VETH_CSUM),
    expect(Def, false, VETH_RX_INTACT),
    expect(Def, false, VETH_RX_CSUM_PARTIAL),
    expect(Off, false, ONE_QUEUE),
];

pub(crate) const CONFIGS: &[LabConfig] = &[
    LabConfig {
        name: "all-on",
        description: "veth, every offload on (receiver GRO on)",
        link: ALL_ON_LINK,
        flows: 1,
        impair: Impair::None,
        expected: ALL_ON,
    },
    LabConfig {
        name: "gro-no-tso",
        description: "veth, sender TSO off, receiver GRO on: software GSO, then software GRO on the NAPI path",
        link: Link::Veth {
            sender: &[(TSO, false)],
            receiver: &[(GRO, true)],
        },
        flows: 1,
        impair: Impair::None,
        expected: [
            expect(Sw, false, SW_GSO),
            expect(Def, false, VETH_CSUM),
            expect(Sw, false, SW_GRO),
            expect(Def, false, VETH_RX_CSUM_PARTIAL),
            expect(Off, false, ONE_QUEUE),
        ],
    },
    LabConfig {
        name: "no-tso-gso",
        description: "veth, sender TSO and GSO off, receiver GRO off: TCP still builds large skbs, the kernel segments them",
        link: Link::Veth {
            sender: &[(TSO, false), (GSO, false)],
            receiver: &[(GRO, false)],
        },
        flows: 1,
        impair: Impair::None,
        expected: [
            expect(Sw, true, SW_GSO_ALWAYS),
            expect(Def, false, VETH_CSUM),
            expect(Off, false, NO_GRO),
            expect(Def, false, VETH_RX_CSUM_PARTIAL),
            expect(Off, false, ONE_QUEUE),
        ],
    },
    LabConfig {
        name: "no-txcsum-gro",
        description: "veth, sender TX checksum off, receiver GRO on",
        link: Link::Veth {
            sender: &[(TX_CSUM, false)],
            receiver: &[(GRO, true)],
        },
        flows: 1,
        impair: Impair::None,
        expected: [
            expect(
                Sw,
                false,
                "TX checksum off drops scatter-gather and with it TSO (netdev_fix_features()): software GSO",
            ),
            expect(Sw, false, SW_CSUM),
            expect(Sw, false, SW_GRO),
            expect(Sw, true, RX_CSUM_NONE),
            expect(Off, false, ONE_QUEUE),
        ],
    },
    LabConfig {
        name: "no-txcsum",
        description: "veth, sender TX checksum off, receiver GRO off",
        link: Link::Veth {
            sender: &[(TX_CSUM, false)],
            receiver: &[(GRO, false)],
        },
        flows: 1,
        impair: Impair::None,
        expected: [
            expect(
                Sw,
                false,
                "TX checksum off drops scatter-gather and with it TSO (netdev_fix_features()): software GSO",
            ),
            expect(Sw, false, SW_CSUM),
            expect(Off, false, NO_GRO),
            expect(Sw, true, RX_CSUM_NONE),
            expect(Off, false, ONE_QUEUE),
        ],
    },
    LabConfig {
        name: "rx-gro-off",
        description: "veth, receiver GRO off, sender all on",
        link: Link::Veth {
            sender: &[],
            receiver: &[(GRO, false)],
        },
        flows: 1,
        impair: Impair::None,
        expected: ALL_ON,
    },
    LabConfig {
        name: "all-off",
        description: "veth, everything off at both ends",
        link: Link::Veth {
            sender: &[(TSO, false), (GSO, false), (TX_CSUM, false), (SG, false)],
            receiver: &[(GRO, false), (RX_CSUM, false)],
        },
        flows: 1,
        impair: Impair::None,
        expected: [
            expect(Sw, true, SW_GSO_ALWAYS),
            expect(Sw, false, SW_CSUM),
            expect(Off, false, NO_GRO),
            expect(Sw, false, RX_CSUM_NONE_OFF),
            expect(Off, false, ONE_QUEUE),
        ],
    },
    LabConfig {
        name: "loss",
        description: "veth, every offload on (receiver GRO on), 1% of the packets dropped at the receiver's input: retransmits at the sender, NETFILTER_DROP at the receiver",
        link: ALL_ON_LINK,
        flows: 1,
        impair: Impair::Loss(1),
        expected: ALL_ON,
    },
    LabConfig {
        name: "slow-reader",
        description: "veth, every offload on (receiver GRO on), a receiving application that reads 20 MB/s from a 64 KiB buffer: TCP's flow control, and what the stack drops",
        link: ALL_ON_LINK,
        flows: 1,
        impair: Impair::SlowReader(20_000_000),
        expected: ALL_ON,
    },
    LabConfig {
        name: "nic-no-offload",
        description: "emulated NIC without offloads: the kernel segments and checksums, the NIC hands up plain frames",
        link: Link::Nic(Nic {
            spec: PLAIN_NIC,
            declares: &[
                ("rx-checksum", false),
                ("rx-hashing", false),
                ("rx-lro", false),
                ("rx-gro-hw", false),
            ],
        }),
        flows: 1,
        impair: Impair::None,
        expected: [
            expect(Sw, false, NIC_NO_TSO),
            expect(Sw, false, NIC_NO_CSUM),
            expect(Sw, false, NIC_SW_GRO),
            expect(Sw, false, NIC_CSUM_NONE),
            expect(Off, false, NIC_ONE_QUEUE),
        ],
    },
    LabConfig {
        name: "nic-tso-csum",
        description: "emulated NIC with TSO and TX checksum; receive checksum declared on but handed up NONE",
        link: Link::Nic(Nic {
            spec: offloading_nic(RxMode::Verified, 1),
            declares: RSS_NIC,
        }),
        flows: 1,
        impair: Impair::None,
        expected: [
            expect(Hw, false, NIC_TSO),
            expect(Hw, false, NIC_CSUM),
            expect(Sw, false, NIC_SW_GRO),
            expect(Sw, true, NIC_CSUM_IGNORED),
            expect(Off, false, NIC_ONE_QUEUE),
        ],
    },
    LabConfig {
        name: "nic-lro",
        description: "emulated NIC with LRO (gso_size set, as mlx5 and ixgbe RSC)",
        link: Link::Nic(Nic {
            spec: offloading_nic(RxMode::Lro, 1),
            declares: &[
                ("rx-checksum", false),
                ("rx-hashing", true),
                ("rx-lro", true),
                ("rx-gro-hw", false),
            ],
        }),
        flows: 1,
        impair: Impair::None,
        expected: [
            expect(Hw, false, NIC_TSO),
            expect(Hw, false, NIC_CSUM),
            expect(Hw, false, NIC_LRO),
            expect(Sw, false, NIC_LRO_CSUM),
            expect(Off, false, NIC_ONE_QUEUE),
        ],
    },
    LabConfig {
        name: "nic-hw-gro",
        description: "emulated NIC with hardware GRO (CHECKSUM_PARTIAL, as bnxt)",
        link: Link::Nic(Nic {
            spec: offloading_nic(RxMode::HwGro, 1),
            declares: &[
                ("rx-checksum", true),
                ("rx-hashing", true),
                ("rx-lro", false),
                ("rx-gro-hw", true),
            ],
        }),
        flows: 1,
        impair: Impair::None,
        expected: [
            expect(Hw, false, NIC_TSO),
            expect(Hw, false, NIC_CSUM),
            expect(Hw, false, NIC_HW_GRO),
            expect(Hw, false, NIC_HW_GRO_CSUM),
            expect(Off, false, NIC_ONE_QUEUE),
        ],
    },
    LabConfig {
        name: "nic-lro-no-gso",
        description: "emulated NIC with LRO that sets no gso_size (bnxt TPA in LRO mode), declared off: a mismatch",
        link: Link::Nic(Nic {
            spec: offloading_nic(RxMode::LroNoGso, 1),
            declares: &[
                ("rx-checksum", false),
                ("rx-hashing", true),
                ("rx-lro", false),
                ("rx-gro-hw", false),
            ],
        }),
        flows: 1,
        impair: Impair::None,
        expected: [
            expect(Hw, false, NIC_TSO),
            expect(Hw, false, NIC_CSUM),
            expect(Hw, true, NIC_LRO_NO_GSO),
            expect(Sw, false, NIC_LRO_CSUM),
            expect(Off, false, NIC_ONE_QUEUE),
        ],
    },
    LabConfig {
        name: "nic-rss-2",
        description: "emulated NIC with RSS over 2 queues, 8 flows",
        link: Link::Nic(Nic {
            spec: offloading_nic(RxMode::HwGro, 2),
            declares: RSS_NIC_HW_GRO,
        }),
        flows: 8,
        impair: Impair::None,
        expected: RSS_EXPECTED,
    },
    LabConfig {
        name: "nic-rss-4",
        description: "emulated NIC with RSS over 4 queues, 16 flows",
        link: Link::Nic(Nic {
            spec: offloading_nic(RxMode::HwGro, 4),
            declares: RSS_NIC_HW_GRO,
        }),
        flows: 16,
        impair: Impair::None,
        expected: RSS_EXPECTED,
    },
    LabConfig {
        name: "nic-rss-32",
        description: "emulated NIC with RSS over 32 queues, 64 flows",
        link: Link::Nic(Nic {
            spec: offloading_nic(RxMode::HwGro, 32),
            declares: RSS_NIC_HW_GRO,
        }),
        flows: 64,
        impair: Impair::None,
        expected: RSS_EXPECTED,
    },
];

const RSS_NIC_HW_GRO: &[(&str, bool)] = &[
    ("rx-checksum", true),
    ("rx-hashing", true),
    ("rx-lro", false),
    ("rx-gro-hw", true),
];

const RSS_EXPECTED: [Expect; 5] = [
    expect(Hw, false, NIC_TSO),
    expect(Hw, false, NIC_CSUM),
    expect(Hw, false, NIC_HW_GRO),
    expect(Hw, false, NIC_HW_GRO_CSUM),
    expect(Hw, false, NIC_RSS),
];
