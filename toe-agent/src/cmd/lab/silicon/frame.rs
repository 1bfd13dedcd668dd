//! Packet surgery: just enough Ethernet, IP and TCP parsing to do what a
//! NIC's offload engines do, and the transmit side of the emulated NIC
//! (segmentation and checksum insertion).
use super::{PathStats, csum, tap::VnetHdr};

pub(super) const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const IPV4_HLEN: usize = 20;
const IPV6_HLEN: usize = 40;
pub(super) const IPPROTO_TCP: u8 = 6;
pub(super) const IPPROTO_UDP: u8 = 17;
const TCP_HLEN: usize = 20;
const UDP_HLEN: usize = 8;
/// `offsetof(struct tcphdr, check)`.
pub(super) const TCP_CSUM_OFFSET: usize = 16;

/// TCP header flag bits (the header's 14th byte).
pub(super) mod flag {
    pub(in super::super) const FIN: u8 = 0x01;
    pub(in super::super) const SYN: u8 = 0x02;
    pub(in super::super) const RST: u8 = 0x04;
    pub(in super::super) const PSH: u8 = 0x08;
    pub(in super::super) const URG: u8 = 0x20;
    pub(in super::super) const CWR: u8 = 0x80;
}

/// A frame the silicon cannot do what its header asks for.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Malformed(pub(super) &'static str);

/// Where an IP packet's parts are in an Ethernet frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Ip {
    pub(super) v6: bool,
    pub(super) proto: u8,
    /// Offset of the L4 header.
    pub(super) l4: usize,
    /// End of the packet by its length field: not checked against the
    /// frame here (a GSO frame's may be stale), so callers that rely on it
    /// check it.
    pub(super) end: usize,
    /// An IPv4 fragment (MF set or a fragment offset).
    pub(super) fragment: bool,
}

impl Ip {
    /// IPv4 or IPv6 (extension headers are not followed: `proto` is then
    /// the extension's, which no offload here handles).
    pub(super) fn parse(frame: &[u8]) -> Option<Ip> {
        let ip = frame.get(ETH_HLEN..)?;
        match u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]) {
            ETH_P_IP => {
                let ihl = usize::from(ip.first()? & 0x0f) * 4;
                if ip[0] >> 4 != 4 || ihl < IPV4_HLEN || ip.len() < ihl {
                    return None;
                }
                Some(Ip {
                    v6: false,
                    proto: ip[9],
                    l4: ETH_HLEN + ihl,
                    end: ETH_HLEN + usize::from(get16(ip, 2)),
                    fragment: get16(ip, 6) & 0x3fff != 0,
                })
            }
            ETH_P_IPV6 if ip.len() >= IPV6_HLEN && ip[0] >> 4 == 6 => Some(Ip {
                v6: true,
                proto: ip[6],
                l4: ETH_HLEN + IPV6_HLEN,
                end: ETH_HLEN + IPV6_HLEN + usize::from(get16(ip, 4)),
                fragment: false,
            }),
            _ => None,
        }
    }

    /// IPv4 options: offload engines that merge packets leave such alone.
    pub(super) fn has_options(&self) -> bool {
        !self.v6 && self.l4 != ETH_HLEN + IPV4_HLEN
    }

    /// Source then destination address.
    pub(super) fn addrs<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        if self.v6 {
            &frame[ETH_HLEN + 8..ETH_HLEN + 40]
        } else {
            &frame[ETH_HLEN + 12..ETH_HLEN + 20]
        }
    }

    /// Sum of the pseudo-header for an L4 segment of `l4_len` bytes.
    pub(super) fn pseudo(&self, frame: &[u8], l4_len: usize) -> u16 {
        let (src, dst) = self.addrs(frame).split_at(if self.v6 { 16 } else { 4 });
        csum::pseudo(src, dst, self.proto, l4_len)
    }

    /// Set the length field for a packet ending at `end`, and on IPv4 the
    /// header checksum that covers it.
    pub(super) fn set_len(&self, frame: &mut [u8], end: usize) {
        if self.v6 {
            put16(frame, ETH_HLEN + 4, (end - self.l4) as u16);
        } else {
            put16(frame, ETH_HLEN + 2, (end - ETH_HLEN) as u16);
            put16(frame, ETH_HLEN + 10, 0);
            let check = csum::finish(csum::sum(&frame[ETH_HLEN..self.l4]));
            put16(frame, ETH_HLEN + 10, check);
        }
    }
}

/// Where a TCP segment's parts are in a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Tcp {
    pub(super) ip: Ip,
    /// Offset of the payload.
    pub(super) data: usize,
}

impl Tcp {
    pub(super) fn parse(frame: &[u8]) -> Option<Tcp> {
        let ip = Ip::parse(frame)?;
        if ip.proto != IPPROTO_TCP || ip.fragment {
            return None;
        }
        let doff = usize::from(frame.get(ip.l4 + 12)? >> 4) * 4;
        let data = ip.l4 + doff;
        (doff >= TCP_HLEN && data <= frame.len()).then_some(Tcp { ip, data })
    }

    pub(super) fn seq(&self, frame: &[u8]) -> u32 {
        get32(frame, self.ip.l4 + 4)
    }

    pub(super) fn flags(&self, frame: &[u8]) -> u8 {
        frame[self.ip.l4 + 13]
    }

    pub(super) fn set_flags(&self, frame: &mut [u8], flags: u8) {
        frame[self.ip.l4 + 13] = flags;
    }

    /// The header's options (empty without).
    pub(super) fn options<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        &frame[self.ip.l4 + TCP_HLEN..self.data]
    }

    /// Acknowledgment number and window, the fields a later segment of a
    /// flow updates.
    pub(super) fn ack_and_window<'a>(&self, frame: &'a [u8]) -> &'a [u8] {
        let at = self.ip.l4 + 8;
        // ack (4 bytes), then data offset and flags (2), then window (2).
        &frame[at..at + 8]
    }

    /// Copy ack and window from another segment of the flow, leaving the
    /// data offset and flags between them alone.
    pub(super) fn set_ack_and_window(&self, frame: &mut [u8], from: &[u8]) {
        let at = self.ip.l4 + 8;
        frame[at..at + 4].copy_from_slice(&from[..4]);
        frame[at + 6..at + 8].copy_from_slice(&from[6..8]);
    }

    /// Compute the TCP checksum of a segment that ends at the frame's end.
    pub(super) fn fill_csum(&self, frame: &mut [u8]) {
        let at = self.ip.l4 + TCP_CSUM_OFFSET;
        put16(frame, at, 0);
        let seg = csum::sum(&frame[self.ip.l4..]);
        let check = csum::finish(csum::add(
            self.ip.pseudo(frame, frame.len() - self.ip.l4),
            seg,
        ));
        put16(frame, at, check);
    }
}

/// The transmit side of the source NIC: put on the wire what the driver
/// handed over with `hdr`. A GSO frame is segmented, a frame with a checksum
/// left to the device gets it, anything else (ARP, frames checksummed by the
/// stack) goes out as it came.
pub(super) fn transmit(
    hdr: &VnetHdr,
    frame: &[u8],
    wire: &mut Vec<Vec<u8>>,
    tally: &mut PathStats,
) -> Result<(), Malformed> {
    match hdr.gso_type & !VnetHdr::GSO_ECN {
        VnetHdr::GSO_NONE => {
            let mut frame = frame.to_vec();
            if hdr.flags & VnetHdr::F_NEEDS_CSUM != 0 {
                complete_csum(
                    &mut frame,
                    usize::from(hdr.csum_start),
                    usize::from(hdr.csum_offset),
                )?;
                tally.csum_computed += 1;
            }
            wire.push(frame);
        }
        gso @ (VnetHdr::GSO_TCPV4 | VnetHdr::GSO_TCPV6) => {
            let v6 = gso == VnetHdr::GSO_TCPV6;
            let n = segment(frame, v6, usize::from(hdr.gso_size), wire)?;
            tally.gso_frames += 1;
            tally.gso_segments += n;
            tally.csum_computed += n;
        }
        // UFO and USO are never turned on (TUN_F_UFO, TUN_F_USO4/6).
        _ => return Err(Malformed("a GSO type this NIC does not offer")),
    }
    Ok(())
}

/// Insert a checksum the stack left to the device (`CHECKSUM_PARTIAL`, sent
/// as `VIRTIO_NET_HDR_F_NEEDS_CSUM`): the field at `start + offset` already
/// holds the pseudo-header sum, so the device sums from `start` to the end
/// of the frame and stores the complement there. This is generic: a NIC
/// with `NETIF_F_HW_CSUM` needs no parsing, and neither does the kernel's
/// fallback, `skb_checksum_help()` in net/core/dev.c.
pub(super) fn complete_csum(
    frame: &mut [u8],
    start: usize,
    offset: usize,
) -> Result<(), Malformed> {
    let field = start + offset;
    if field + 2 > frame.len() {
        return Err(Malformed("checksum offsets past the end of the frame"));
    }
    let check = csum::finish(csum::sum(&frame[start..]));
    put16(frame, field, check);
    Ok(())
}

/// TCP segmentation offload: cut a GSO frame into segments of `mss`
/// payload bytes, each with the template's headers, as the kernel's own
/// fallback does it: IPv4 total length, id + 1 per segment and header
/// checksum (`inet_gso_segment()`, net/ipv4/af_inet.c), IPv6 payload length
/// (`ipv6_gso_segment()`, net/ipv6/ip6_offload.c), sequence number advanced,
/// CWR only on the first segment, FIN and PSH only on the last, and each
/// TCP checksum complete (`tcp_gso_segment()`, net/ipv4/tcp_offload.c).
/// Returns how many segments went on the wire.
fn segment(frame: &[u8], v6: bool, mss: usize, wire: &mut Vec<Vec<u8>>) -> Result<u64, Malformed> {
    let tcp = Tcp::parse(frame).ok_or(Malformed("a TSO frame that is not TCP over IP"))?;
    if tcp.ip.v6 != v6 {
        return Err(Malformed(
            "a TSO frame whose GSO type is not its IP version",
        ));
    }
    if mss == 0 {
        return Err(Malformed("a TSO frame with gso_size 0"));
    }
    // The template's length fields are not trusted: the frame's length is
    // the packet's.
    let payload = &frame[tcp.data..];
    let count = payload.len().div_ceil(mss).max(1);
    let (seq, flags) = (tcp.seq(frame), tcp.flags(frame));
    let id = get16(frame, ETH_HLEN + 4);
    for i in 0..count {
        let chunk = &payload[(i * mss).min(payload.len())..((i + 1) * mss).min(payload.len())];
        let mut seg = Vec::with_capacity(tcp.data + chunk.len());
        seg.extend_from_slice(&frame[..tcp.data]);
        seg.extend_from_slice(chunk);
        if !v6 {
            put16(&mut seg, ETH_HLEN + 4, id.wrapping_add(i as u16));
        }
        let end = seg.len();
        tcp.ip.set_len(&mut seg, end);
        put32(&mut seg, tcp.ip.l4 + 4, seq.wrapping_add((i * mss) as u32));
        let mut f = flags;
        if i > 0 {
            f &= !flag::CWR;
        }
        if i + 1 < count {
            f &= !(flag::FIN | flag::PSH);
        }
        tcp.set_flags(&mut seg, f);
        tcp.fill_csum(&mut seg);
        wire.push(seg);
    }
    Ok(count as u64)
}

/// What a NIC's receive checksum engine finds: `Some(true)` when a TCP or
/// UDP packet's checksum verifies, `Some(false)` when it does not, `None`
/// when there is none to check (another protocol, a fragment, a truncated
/// packet, UDP over IPv4 sent without a checksum).
pub(super) fn l4_csum_ok(frame: &[u8]) -> Option<bool> {
    let ip = Ip::parse(frame)?;
    let min = match ip.proto {
        IPPROTO_TCP => TCP_HLEN,
        IPPROTO_UDP => UDP_HLEN,
        _ => return None,
    };
    if ip.fragment || ip.end > frame.len() || ip.end < ip.l4 + min {
        return None;
    }
    if ip.proto == IPPROTO_UDP && !ip.v6 && get16(frame, ip.l4 + 6) == 0 {
        return None;
    }
    let seg = csum::sum(&frame[ip.l4..ip.end]);
    Some(csum::add(ip.pseudo(frame, ip.end - ip.l4), seg) == 0xffff)
}

fn get16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn get32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(super) fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}
