//! Frames built by hand for the tests, and a checksum verifier written
//! apart from `csum`, so that the code is not checked against itself.
use super::{PathStats, RxMode, frame::transmit, tap::VnetHdr};

pub(super) const MODES: [RxMode; 5] = [
    RxMode::Plain,
    RxMode::Verified,
    RxMode::Lro,
    RxMode::HwGro,
    RxMode::LroNoGso,
];
pub(super) const MSS: usize = 1448;
pub(super) const FIN: u8 = 0x01;
pub(super) const SYN: u8 = 0x02;
pub(super) const PSH: u8 = 0x08;
pub(super) const ACK: u8 = 0x10;
pub(super) const CWR: u8 = 0x80;
/// NOP, NOP, timestamps: what Linux sends on an established flow.
pub(super) const TS_OPTIONS: [u8; 12] = [1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9];

#[derive(Clone, Copy)]
pub(super) struct Flow {
    pub(super) v6: bool,
    pub(super) sport: u16,
    pub(super) dport: u16,
}

/// 10.254.78.1:40000 (MAC 02::01) -> 10.254.78.2:5201 (MAC 02::02).
pub(super) const V4: Flow = Flow {
    v6: false,
    sport: 40000,
    dport: 5201,
};
pub(super) const V6: Flow = Flow { v6: true, ..V4 };

pub(super) fn l4(flow: Flow) -> usize {
    if flow.v6 { 54 } else { 34 }
}

/// Plain 16-bit-word ones'-complement sum, kept apart from `csum`.
pub(super) fn naive_sum(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.concat();
    let mut s: u32 = 0;
    for pair in bytes.chunks(2) {
        s += u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

pub(super) fn pseudo_bytes(frame: &[u8], flow: Flow, l4_len: usize) -> Vec<u8> {
    let addrs = if flow.v6 {
        &frame[22..54]
    } else {
        &frame[26..34]
    };
    let mut p = addrs.to_vec();
    p.extend_from_slice(&[0, 6]);
    p.extend_from_slice(&(l4_len as u16).to_be_bytes());
    p
}

/// A TCP frame (ACK set, with timestamps) with correct lengths and
/// checksums.
pub(super) fn tcp_frame(flow: Flow, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];
    let tcp_len = 20 + TS_OPTIONS.len() + payload.len();
    if flow.v6 {
        f.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0]);
        f.extend_from_slice(&(tcp_len as u16).to_be_bytes());
        f.extend_from_slice(&[6, 64]);
        f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        f.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    } else {
        f.extend_from_slice(&[0x08, 0x00, 0x45, 0]);
        f.extend_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
        f.extend_from_slice(&[
            0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 254, 78, 1, 10, 254, 78, 2,
        ]);
        let check = !naive_sum(&[&f[14..34]]);
        f[24..26].copy_from_slice(&check.to_be_bytes());
    }
    f.extend_from_slice(&flow.sport.to_be_bytes());
    f.extend_from_slice(&flow.dport.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&0x0102_0304u32.to_be_bytes());
    f.extend_from_slice(&[0x80, flags | ACK, 0x10, 0x00, 0, 0, 0, 0]);
    f.extend_from_slice(&TS_OPTIONS);
    f.extend_from_slice(payload);
    let at = l4(flow);
    let check = !naive_sum(&[&pseudo_bytes(&f, flow, tcp_len), &f[at..]]);
    f[at + 16..at + 18].copy_from_slice(&check.to_be_bytes());
    f
}

pub(super) fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// The GSO frame a stack with TSO hands its tap: one header, all the
/// payload, the check field holding the pseudo-header sum.
pub(super) fn gso_frame(flow: Flow, flags: u8, data: &[u8]) -> (VnetHdr, Vec<u8>) {
    let mut f = tcp_frame(flow, 1000, flags, data);
    let at = l4(flow);
    let pseudo = naive_sum(&[&pseudo_bytes(&f, flow, f.len() - at)]);
    f[at + 16..at + 18].copy_from_slice(&pseudo.to_be_bytes());
    let hdr = VnetHdr {
        flags: VnetHdr::F_NEEDS_CSUM,
        gso_type: if flow.v6 {
            VnetHdr::GSO_TCPV6
        } else {
            VnetHdr::GSO_TCPV4
        },
        hdr_len: (at + 32) as u16,
        gso_size: MSS as u16,
        csum_start: at as u16,
        csum_offset: 16,
    };
    (hdr, f)
}

/// Both checksums of a TCP frame verify, by the naive sum.
pub(super) fn assert_verifies(f: &[u8], flow: Flow) {
    let at = l4(flow);
    if !flow.v6 {
        assert_eq!(naive_sum(&[&f[14..34]]), 0xffff, "IPv4 header checksum");
    }
    let ip_end = if flow.v6 {
        54 + usize::from(u16::from_be_bytes([f[18], f[19]]))
    } else {
        14 + usize::from(u16::from_be_bytes([f[16], f[17]]))
    };
    assert_eq!(ip_end, f.len(), "IP length");
    let sum = naive_sum(&[&pseudo_bytes(f, flow, f.len() - at), &f[at..]]);
    assert_eq!(sum, 0xffff, "TCP checksum");
}

pub(super) fn seq_of(f: &[u8], flow: Flow) -> u32 {
    let at = l4(flow) + 4;
    u32::from_be_bytes([f[at], f[at + 1], f[at + 2], f[at + 3]])
}

pub(super) fn flags_of(f: &[u8], flow: Flow) -> u8 {
    f[l4(flow) + 13]
}

pub(super) fn segments(flow: Flow, flags: u8, data: &[u8]) -> Vec<Vec<u8>> {
    let (hdr, f) = gso_frame(flow, flags, data);
    let mut wire = Vec::new();
    let mut tally = PathStats::default();
    transmit(&hdr, &f, &mut wire, &mut tally).unwrap();
    assert_eq!(tally.gso_frames, 1);
    assert_eq!(tally.gso_segments, wire.len() as u64);
    wire
}

pub(super) fn arp() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&[
        2, 0, 0, 0, 0, 1, 10, 254, 78, 1, 0, 0, 0, 0, 0, 0, 10, 254, 78, 2,
    ]);
    f
}
