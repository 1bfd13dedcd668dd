//! Receive-side scaling: which queue of the destination NIC a frame is
//! handed over on, so that one flow always lands on one queue and many
//! flows spread over all of them.
use super::frame::{IPPROTO_TCP, IPPROTO_UDP, Ip};

/// The default RSS key of Microsoft's RSS specification, which many NIC
/// drivers also program by default.
const KEY: [u8; 40] = [
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
    0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
    0x6a, 0x42, 0xb3, 0xbb, 0xbe, 0xac, 0x01, 0xfa,
];

/// Entries of the indirection table a hash indexes, as NICs size it.
const INDIRECTION: u32 = 128;

/// The Toeplitz hash of `input` under [`KEY`]: for every input bit that is
/// set, XOR in the 32 key bits that start at that bit's position.
/// Inputs longer than the key allows (36 bytes) are cut there.
pub(super) fn toeplitz(input: &[u8]) -> u32 {
    let key_bit = |i: usize| {
        KEY.get(i / 8)
            .map_or(0, |b| u32::from(b >> (7 - i % 8)) & 1)
    };
    let mut window = u32::from_be_bytes([KEY[0], KEY[1], KEY[2], KEY[3]]);
    let mut hash = 0;
    for (i, byte) in input.iter().take(KEY.len() - 4).enumerate() {
        for bit in 0..8 {
            if byte & (0x80 >> bit) != 0 {
                hash ^= window;
            }
            window = (window << 1) | key_bit(32 + i * 8 + bit);
        }
    }
    hash
}

/// The queue, among `queues`, that a frame is handed over on: the Toeplitz
/// hash of source address, destination address, source port and
/// destination port (the order of the RSS specification) picks an entry
/// of a 128-entry indirection table filled round-robin, the default that
/// `ethtool_rxfh_indir_default()` (include/linux/ethtool.h) gives drivers.
/// Frames without ports (ARP, ICMP, fragments) go to queue 0.
pub(super) fn queue(frame: &[u8], queues: usize) -> usize {
    if queues <= 1 {
        return 0;
    }
    let Some(ip) = Ip::parse(frame) else {
        return 0;
    };
    if !matches!(ip.proto, IPPROTO_TCP | IPPROTO_UDP) || ip.fragment {
        return 0;
    }
    let Some(ports) = frame.get(ip.l4..ip.l4 + 4) else {
        return 0;
    };
    let mut input = [0u8; 36];
    let addrs = ip.addrs(frame);
    input[..addrs.len()].copy_from_slice(addrs);
    input[addrs.len()..addrs.len() + 4].copy_from_slice(ports);
    let hash = toeplitz(&input[..addrs.len() + 4]);
    ((hash % INDIRECTION) as usize) % queues
}
