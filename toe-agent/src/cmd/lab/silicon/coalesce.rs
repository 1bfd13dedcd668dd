//! The receive side of the destination NIC: how each [`RxMode`] hands the
//! frames of one batch to the driver, merging segments of a flow for the
//! LRO and hardware-GRO modes.
use super::{
    PathStats, RxMode, csum,
    frame::{self, Tcp, flag},
    tap::VnetHdr,
};

/// A frame as the destination NIC hands it to its driver.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Delivery {
    pub(super) hdr: VnetHdr,
    pub(super) frame: Vec<u8>,
}

/// Merged frames stay one IP packet (`tot_len` is 16 bits) ...
const MAX_IP_LEN: usize = 65535;
/// ... of at most this many segments (`MAX_SKB_FRAGS`-sized, as GRO and
/// LRO engines keep it).
const MAX_SEGS: u16 = 64;

/// Hand over the frames of one batch, as `mode` says.
pub(super) fn receive(mode: RxMode, wire: Vec<Vec<u8>>, tally: &mut PathStats) -> Vec<Delivery> {
    match mode {
        RxMode::Plain => wire
            .into_iter()
            .map(|frame| Delivery {
                hdr: VnetHdr::default(),
                frame,
            })
            .collect(),
        RxMode::Verified => wire.into_iter().map(|f| single(f, tally)).collect(),
        RxMode::Lro | RxMode::HwGro | RxMode::LroNoGso => {
            let mut merger = Merger {
                mode,
                open: Vec::new(),
                out: Vec::with_capacity(wire.len()),
            };
            for f in wire {
                merger.push(f, tally);
            }
            merger.flush_all(tally);
            merger.out
        }
    }
}

/// A frame handed over on its own: `DATA_VALID` when the NIC verified its
/// TCP or UDP checksum, no flag (the stack checks) otherwise, as
/// `ixgbe_rx_checksum()` and `mlx5e_handle_csum()` report
/// `CHECKSUM_UNNECESSARY` only for a good L4 checksum.
fn single(frame: Vec<u8>, tally: &mut PathStats) -> Delivery {
    let flags = match frame::l4_csum_ok(&frame) {
        Some(ok) => {
            tally.csum_verified += 1;
            tally.csum_bad += u64::from(!ok);
            if ok { VnetHdr::F_DATA_VALID } else { 0 }
        }
        None => 0,
    };
    Delivery {
        hdr: VnetHdr {
            flags,
            ..VnetHdr::default()
        },
        frame,
    }
}

/// A flow as the merge rules see it: IP version, both addresses and both
/// ports.
#[derive(PartialEq, Eq)]
struct FlowKey {
    v6: bool,
    addrs: [u8; 32],
    ports: [u8; 4],
}

impl FlowKey {
    fn of(tcp: &Tcp, frame: &[u8]) -> FlowKey {
        let mut addrs = [0; 32];
        let a = tcp.ip.addrs(frame);
        addrs[..a.len()].copy_from_slice(a);
        let mut ports = [0; 4];
        ports.copy_from_slice(&frame[tcp.ip.l4..tcp.ip.l4 + 4]);
        FlowKey {
            v6: tcp.ip.v6,
            addrs,
            ports,
        }
    }
}

/// A merge in progress: the first segment's frame with the later payloads
/// appended.
struct Session {
    key: FlowKey,
    tcp: Tcp,
    frame: Vec<u8>,
    /// Payload of the first segment: the MSS the merged frame reports.
    mss: usize,
    segs: u16,
    next_seq: u32,
    /// Sum of the payload so far, for the merged checksum without a second
    /// pass over the data.
    payload_sum: u16,
    /// A short or PSH segment ended the train: nothing more joins.
    closed: bool,
}

struct Merger {
    mode: RxMode,
    /// Open sessions, oldest first.
    open: Vec<Session>,
    out: Vec<Delivery>,
}

impl Merger {
    fn push(&mut self, frame: Vec<u8>, tally: &mut PathStats) {
        let Some(tcp) = Tcp::parse(&frame) else {
            self.out.push(single(frame, tally));
            return;
        };
        let key = FlowKey::of(&tcp, &frame);
        if !mergeable_ip(&tcp, &frame) {
            // Handed up alone, after what the flow has pending.
            self.close(&key, tally);
            self.out.push(single(frame, tally));
            return;
        }
        let end = tcp.ip.end;
        // The NIC verifies before it merges: a corrupt segment is handed
        // over alone and unflagged, for the stack to count and drop.
        let hdr_sum = csum::sum(&frame[tcp.ip.l4..tcp.data]);
        let payload_sum = csum::sum(&frame[tcp.data..end]);
        let headers = csum::add(tcp.ip.pseudo(&frame, end - tcp.ip.l4), hdr_sum);
        tally.csum_verified += 1;
        if csum::add(headers, payload_sum) != 0xffff {
            tally.csum_bad += 1;
            self.close(&key, tally);
            self.out.push(Delivery {
                hdr: VnetHdr::default(),
                frame,
            });
            return;
        }
        let flags = tcp.flags(&frame);
        if end == tcp.data || flags & (flag::SYN | flag::FIN | flag::RST | flag::URG) != 0 {
            // Pure ACKs and control segments are never merged, and end the
            // flow's merge so that it reaches the stack first.
            self.close(&key, tally);
            self.out.push(valid(frame));
            return;
        }
        if let Some(i) = self.open.iter().position(|s| s.key == key) {
            let joined = self.open[i].append(&tcp, &frame, payload_sum);
            if !joined || self.open[i].closed {
                let s = self.open.remove(i);
                self.finish(s, tally);
            }
            if joined {
                return;
            }
        }
        let mut frame = frame;
        frame.truncate(end);
        let session = Session {
            key,
            tcp,
            mss: end - tcp.data,
            segs: 1,
            next_seq: tcp.seq(&frame).wrapping_add((end - tcp.data) as u32),
            payload_sum,
            closed: flags & flag::PSH != 0,
            frame,
        };
        if session.closed {
            self.finish(session, tally);
        } else {
            self.open.push(session);
        }
    }

    /// End the flow's merge, if one is open.
    fn close(&mut self, key: &FlowKey, tally: &mut PathStats) {
        if let Some(i) = self.open.iter().position(|s| &s.key == key) {
            let s = self.open.remove(i);
            self.finish(s, tally);
        }
    }

    fn flush_all(&mut self, tally: &mut PathStats) {
        for s in std::mem::take(&mut self.open) {
            self.finish(s, tally);
        }
    }

    /// Hand over a session's frame: alone as it came when nothing joined
    /// it, else fixed up the way the mode's hardware does.
    fn finish(&mut self, s: Session, tally: &mut PathStats) {
        if s.segs == 1 {
            self.out.push(valid(s.frame));
            return;
        }
        tally.coalesced_in += u64::from(s.segs);
        tally.coalesced_out += 1;
        let Session {
            tcp,
            mut frame,
            mss,
            payload_sum,
            ..
        } = s;
        let end = frame.len();
        tcp.ip.set_len(&mut frame, end);
        let l4_len = end - tcp.ip.l4;
        let check_at = tcp.ip.l4 + frame::TCP_CSUM_OFFSET;
        let pseudo = tcp.ip.pseudo(&frame, l4_len);
        let gso_type = match (tcp.ip.v6, tcp.flags(&frame) & flag::CWR != 0) {
            (false, false) => VnetHdr::GSO_TCPV4,
            (true, false) => VnetHdr::GSO_TCPV6,
            // tcp_gro_complete() marks a train that starts with CWR as ECN.
            (false, true) => VnetHdr::GSO_TCPV4 | VnetHdr::GSO_ECN,
            (true, true) => VnetHdr::GSO_TCPV6 | VnetHdr::GSO_ECN,
        };
        let hdr_len = tcp.data as u16;
        let hdr = if self.mode == RxMode::HwGro {
            // tcp_gro_complete() (net/ipv4/tcp_offload.c) leaves the
            // pseudo-header sum in the check field for CHECKSUM_PARTIAL,
            // the state bnxt_gro_skb() hands up.
            frame::put16(&mut frame, check_at, pseudo);
            VnetHdr {
                flags: VnetHdr::F_NEEDS_CSUM,
                gso_type,
                hdr_len,
                gso_size: mss as u16,
                csum_start: tcp.ip.l4 as u16,
                csum_offset: frame::TCP_CSUM_OFFSET as u16,
            }
        } else {
            frame::put16(&mut frame, check_at, 0);
            let hdr_sum = csum::sum(&frame[tcp.ip.l4..tcp.data]);
            let check = csum::finish(csum::add(csum::add(pseudo, hdr_sum), payload_sum));
            frame::put16(&mut frame, check_at, check);
            tally.csum_computed += 1;
            let (gso_type, gso_size) = match self.mode {
                RxMode::Lro => (gso_type, mss as u16),
                _ => (VnetHdr::GSO_NONE, 0),
            };
            VnetHdr {
                flags: VnetHdr::F_DATA_VALID,
                gso_type,
                hdr_len,
                gso_size,
                ..VnetHdr::default()
            }
        };
        self.out.push(Delivery { hdr, frame });
    }
}

impl Session {
    /// Append the next segment of the flow if the merge rules allow: in
    /// sequence, headers that only differ where a merged frame may
    /// (`tcp_gro_receive()` in net/ipv4/tcp_offload.c compares the same
    /// fields, LRO engines likewise), no larger than the first segment, and
    /// the result within one IP packet of at most [`MAX_SEGS`] segments.
    fn append(&mut self, tcp: &Tcp, frame: &[u8], payload_sum: u16) -> bool {
        let first = &self.frame;
        let end = tcp.ip.end;
        let len = end - tcp.data;
        let flags = tcp.flags(frame);
        let same_headers = tcp.data == self.tcp.data
            && tcp.options(frame) == self.tcp.options(first)
            && same_ip_fields(tcp.ip.v6, frame, first)
            // Only PSH may differ (CWR may only be on the first).
            && flags & !flag::PSH == self.tcp.flags(first) & !(flag::PSH | flag::CWR);
        let fits = !self.closed
            && len <= self.mss
            && self.segs < MAX_SEGS
            && self.frame.len() - frame::ETH_HLEN + len <= MAX_IP_LEN;
        if !(same_headers && fits && tcp.seq(frame) == self.next_seq) {
            return false;
        }
        let offset = self.frame.len() - self.tcp.ip.l4;
        self.payload_sum = csum::add(self.payload_sum, csum::at(payload_sum, offset));
        self.frame.extend_from_slice(&frame[tcp.data..end]);
        // The merged header reports the latest ACK and window, as
        // mlx5e_lro_update_hdr() writes them, and PSH if any segment had it.
        let ack_win = tcp.ack_and_window(frame);
        self.tcp.set_ack_and_window(&mut self.frame, ack_win);
        let merged = self.tcp.flags(&self.frame) | (flags & flag::PSH);
        self.tcp.set_flags(&mut self.frame, merged);
        self.segs += 1;
        self.next_seq = self.next_seq.wrapping_add(len as u32);
        self.closed = len < self.mss || flags & flag::PSH != 0;
        true
    }
}

/// What merging engines require of the IP layer: a whole packet (its
/// length covering the TCP header and within the frame) without IPv4
/// options. (`Tcp::parse` already turned fragments away.)
fn mergeable_ip(tcp: &Tcp, frame: &[u8]) -> bool {
    !tcp.ip.has_options() && tcp.data <= tcp.ip.end && tcp.ip.end <= frame.len()
}

/// The IP fields that must match for two packets to become one: IPv4 TOS,
/// TTL and DF; IPv6 traffic class, flow label and hop limit.
fn same_ip_fields(v6: bool, a: &[u8], b: &[u8]) -> bool {
    let h = frame::ETH_HLEN;
    if v6 {
        a[h..h + 4] == b[h..h + 4] && a[h + 7] == b[h + 7]
    } else {
        a[h + 1] == b[h + 1] && a[h + 8] == b[h + 8] && (a[h + 6] ^ b[h + 6]) & 0x40 == 0
    }
}

/// A verified TCP segment handed over alone.
fn valid(frame: Vec<u8>) -> Delivery {
    Delivery {
        hdr: VnetHdr {
            flags: VnetHdr::F_DATA_VALID,
            ..VnetHdr::default()
        },
        frame,
    }
}
