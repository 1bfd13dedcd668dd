//! Frame logic, without devices: frames built by hand (`testframes`)
//! through both sides of the NIC.
use super::{
    PathStats, RxMode,
    coalesce::{Delivery, receive},
    frame::{self, transmit},
    rss,
    tap::VnetHdr,
    testframes::*,
};

fn check_segmentation(flow: Flow) {
    let data = payload(3 * MSS + 500);
    let wire = segments(flow, PSH | FIN | CWR, &data);
    assert_eq!(wire.len(), 4);
    let hl = l4(flow) + 32;
    for (i, seg) in wire.iter().enumerate() {
        let want = if i < 3 { MSS } else { 500 };
        assert_eq!(seg.len(), hl + want, "segment {i} length");
        assert_eq!(&seg[hl..], &data[i * MSS..i * MSS + want]);
        assert_eq!(seq_of(seg, flow), 1000 + (i * MSS) as u32);
        let f = flags_of(seg, flow);
        assert_eq!(f & (PSH | FIN) != 0, i == 3, "PSH/FIN on segment {i}");
        assert_eq!(f & CWR != 0, i == 0, "CWR on segment {i}");
        assert!(f & ACK != 0);
        if !flow.v6 {
            assert_eq!(
                u16::from_be_bytes([seg[18], seg[19]]),
                0x1234 + i as u16,
                "IPv4 id"
            );
        }
        assert_verifies(seg, flow);
    }
}

#[test]
fn tso_segments_ipv4() {
    check_segmentation(V4);
}

#[test]
fn tso_segments_ipv6() {
    check_segmentation(V6);
}

#[test]
fn tso_of_a_frame_within_one_mss_is_one_segment() {
    let wire = segments(V4, PSH, &payload(100));
    assert_eq!(wire.len(), 1);
    assert_verifies(&wire[0], V4);
}

fn rx(mode: RxMode, wire: Vec<Vec<u8>>) -> (Vec<Delivery>, PathStats) {
    let mut tally = PathStats::default();
    (receive(mode, wire, &mut tally), tally)
}

fn check_lro(flow: Flow) {
    let data = payload(3 * MSS + 500);
    let (out, tally) = rx(RxMode::Lro, segments(flow, PSH, &data));
    assert_eq!(out.len(), 1);
    let Delivery { hdr, frame: f } = &out[0];
    let hl = l4(flow) + 32;
    assert_eq!(&f[hl..], &data[..]);
    assert_verifies(f, flow);
    assert_eq!(seq_of(f, flow), 1000);
    assert_eq!(flags_of(f, flow), ACK | PSH);
    let gso = if flow.v6 {
        VnetHdr::GSO_TCPV6
    } else {
        VnetHdr::GSO_TCPV4
    };
    assert_eq!(
        *hdr,
        VnetHdr {
            flags: VnetHdr::F_DATA_VALID,
            gso_type: gso,
            hdr_len: hl as u16,
            gso_size: MSS as u16,
            ..VnetHdr::default()
        }
    );
    assert_eq!((tally.coalesced_in, tally.coalesced_out), (4, 1));
}

#[test]
fn lro_merges_segments_back_ipv4() {
    check_lro(V4);
}

#[test]
fn lro_merges_segments_back_ipv6() {
    check_lro(V6);
}

#[test]
fn fin_segment_is_handed_up_alone() {
    let data = payload(3 * MSS + 500);
    let (out, _) = rx(RxMode::Lro, segments(V4, PSH | FIN, &data));
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].frame.len(), 34 + 32 + 3 * MSS);
    assert_eq!(out[0].hdr.gso_size, MSS as u16);
    assert_verifies(&out[0].frame, V4);
    assert_eq!(flags_of(&out[1].frame, V4) & FIN, FIN);
    assert_eq!(out[1].hdr.flags, VnetHdr::F_DATA_VALID);
    assert_eq!(out[1].hdr.gso_type, VnetHdr::GSO_NONE);
}

#[test]
fn hw_gro_leaves_the_pseudo_header_sum() {
    let data = payload(3 * MSS + 500);
    let (mut out, _) = rx(RxMode::HwGro, segments(V4, PSH, &data));
    assert_eq!(out.len(), 1);
    let Delivery { hdr, frame: f } = &mut out[0];
    assert_eq!(hdr.flags, VnetHdr::F_NEEDS_CSUM);
    assert_eq!((hdr.csum_start, hdr.csum_offset), (34, 16));
    assert_eq!(
        (hdr.gso_type, hdr.gso_size),
        (VnetHdr::GSO_TCPV4, MSS as u16)
    );
    let pseudo = naive_sum(&[&pseudo_bytes(f, V4, f.len() - 34)]);
    assert_eq!(u16::from_be_bytes([f[50], f[51]]), pseudo);
    // What a stack that must checksum it after all would compute verifies.
    frame::complete_csum(f, 34, 16).unwrap();
    assert_verifies(f, V4);
}

#[test]
fn lro_without_gso_is_one_big_valid_frame() {
    let data = payload(3 * MSS + 500);
    let (out, _) = rx(RxMode::LroNoGso, segments(V6, PSH, &data));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].hdr.gso_type, VnetHdr::GSO_NONE);
    assert_eq!(out[0].hdr.gso_size, 0);
    assert_eq!(out[0].hdr.flags, VnetHdr::F_DATA_VALID);
    assert!(out[0].frame.len() > 1514);
    assert_verifies(&out[0].frame, V6);
}

#[test]
fn out_of_order_segments_are_not_merged() {
    let mut wire = segments(V4, 0, &payload(4 * MSS));
    wire.swap(1, 2);
    let (out, tally) = rx(RxMode::Lro, wire);
    assert_eq!(out.len(), 4);
    assert!(out.iter().all(|d| d.hdr.gso_type == VnetHdr::GSO_NONE));
    assert_eq!(tally.coalesced_out, 0);
}

#[test]
fn flows_merge_apart() {
    let b = Flow { sport: 40001, ..V4 };
    let (sa, sb) = (
        segments(V4, 0, &payload(3 * MSS)),
        segments(b, 0, &payload(3 * MSS)),
    );
    let wire: Vec<Vec<u8>> = sa.into_iter().zip(sb).flat_map(|(x, y)| [x, y]).collect();
    let (out, tally) = rx(RxMode::Lro, wire);
    assert_eq!(out.len(), 2);
    assert_eq!((tally.coalesced_in, tally.coalesced_out), (6, 2));
    for (d, flow) in out.iter().zip([V4, b]) {
        assert_eq!(&d.frame[34..36], &flow.sport.to_be_bytes());
        assert_eq!(d.frame.len(), 34 + 32 + 3 * MSS);
        assert_verifies(&d.frame, flow);
    }
}

#[test]
fn pure_acks_and_syns_are_never_merged() {
    let wire = vec![
        tcp_frame(V4, 1, 0, &[]),
        tcp_frame(V4, 1, 0, &[]),
        tcp_frame(V4, 1, SYN, &[]),
    ];
    let (out, tally) = rx(RxMode::HwGro, wire.clone());
    assert_eq!(out.len(), 3);
    assert_eq!(tally.coalesced_out, 0);
    for (d, f) in out.iter().zip(&wire) {
        assert_eq!(&d.frame, f);
        assert_eq!(d.hdr.flags, VnetHdr::F_DATA_VALID);
    }
}

#[test]
fn a_length_field_shorter_than_the_headers_is_handed_up_as_it_came() {
    let mut f = tcp_frame(V4, 1, 0, &payload(100));
    f[16..18].copy_from_slice(&30u16.to_be_bytes());
    for mode in MODES {
        let (out, _) = rx(mode, vec![f.clone(), f.clone()]);
        assert_eq!(out.len(), 2, "{mode:?}");
        assert!(
            out.iter().all(|d| d.frame == f && d.hdr.gso_type == 0),
            "{mode:?}"
        );
    }
}

#[test]
fn corrupt_segment_is_handed_up_unflagged_and_unmerged() {
    let mut wire = segments(V4, 0, &payload(3 * MSS));
    let last = wire[1].len() - 1;
    wire[1][last] ^= 0xff;
    let (out, tally) = rx(RxMode::Lro, wire);
    assert_eq!(out.len(), 3);
    assert_eq!(out[1].hdr, VnetHdr::default());
    assert_eq!(tally.csum_bad, 1);
}

#[test]
fn arp_passes_untouched() {
    let mut wire = Vec::new();
    transmit(
        &VnetHdr::default(),
        &arp(),
        &mut wire,
        &mut PathStats::default(),
    )
    .unwrap();
    assert_eq!(wire, vec![arp()]);
    for mode in MODES {
        let (out, _) = rx(mode, wire.clone());
        assert_eq!(
            out,
            vec![Delivery {
                hdr: VnetHdr::default(),
                frame: arp()
            }],
            "{mode:?}"
        );
    }
    assert_eq!(rss::queue(&arp(), 32), 0);
}

#[test]
fn verified_flags_only_good_checksums() {
    let good = tcp_frame(V4, 1, 0, &payload(100));
    let mut bad = good.clone();
    bad[80] ^= 1;
    let (out, tally) = rx(RxMode::Verified, vec![good, bad, arp()]);
    let flags: Vec<u8> = out.iter().map(|d| d.hdr.flags).collect();
    assert_eq!(flags, [VnetHdr::F_DATA_VALID, 0, 0]);
    assert_eq!((tally.csum_verified, tally.csum_bad), (2, 1));
}

#[test]
fn needs_csum_is_completed() {
    for flow in [V4, V6] {
        let (mut hdr, f) = gso_frame(flow, PSH, &payload(777));
        hdr.gso_type = VnetHdr::GSO_NONE;
        hdr.gso_size = 0;
        let mut wire = Vec::new();
        let mut tally = PathStats::default();
        transmit(&hdr, &f, &mut wire, &mut tally).unwrap();
        assert_eq!(tally.csum_computed, 1);
        assert_verifies(&wire[0], flow);
    }
}

#[test]
fn offload_requests_that_cannot_be_parsed_are_refused() {
    let gso_arp = VnetHdr {
        gso_type: VnetHdr::GSO_TCPV4,
        gso_size: MSS as u16,
        ..VnetHdr::default()
    };
    assert!(transmit(&gso_arp, &arp(), &mut Vec::new(), &mut PathStats::default()).is_err());
    let (mut hdr, f) = gso_frame(V4, 0, &payload(3000));
    hdr.gso_type = VnetHdr::GSO_TCPV6;
    assert!(transmit(&hdr, &f, &mut Vec::new(), &mut PathStats::default()).is_err());
    let past_end = VnetHdr {
        flags: VnetHdr::F_NEEDS_CSUM,
        csum_start: 40,
        csum_offset: 16,
        ..VnetHdr::default()
    };
    assert!(
        transmit(
            &past_end,
            &arp(),
            &mut Vec::new(),
            &mut PathStats::default()
        )
        .is_err()
    );
}

#[test]
fn toeplitz_matches_the_rss_specification() {
    // "Verifying the RSS hash calculation": 66.9.149.187:2794 ->
    // 161.142.100.80:1766.
    let addrs = [66, 9, 149, 187, 161, 142, 100, 80];
    assert_eq!(rss::toeplitz(&addrs), 0x323e_8fc2);
    let mut four = addrs.to_vec();
    four.extend_from_slice(&[0x0a, 0xea, 0x06, 0xe6]);
    assert_eq!(rss::toeplitz(&four), 0x51cc_c178);
}

#[test]
fn rss_spreads_flows_and_keeps_each_on_one_queue() {
    let mut load = [0usize; 32];
    for i in 0..64 {
        let flow = Flow {
            sport: 40000 + i,
            ..V4
        };
        let q = rss::queue(&tcp_frame(flow, 1, 0, &[]), 32);
        assert_eq!(rss::queue(&tcp_frame(flow, 99, PSH, &payload(10)), 32), q);
        load[q] += 1;
    }
    let used = load.iter().filter(|&&n| n > 0).count();
    let most = load.iter().copied().max().unwrap_or(0);
    assert!(used >= 20, "only {used} of 32 queues used: {load:?}");
    assert!(
        most * 100 <= 64 * 15,
        "one queue took {most} of 64 flows: {load:?}"
    );
}

/// Whatever a header says, the silicon drops or forwards the frame: it
/// never panics (a panic would stop one direction of the link).
#[test]
fn mangled_headers_never_panic() {
    let (gso4, gso6) = (
        gso_frame(V4, PSH, &payload(2000)),
        gso_frame(V6, 0, &payload(1600)),
    );
    let plain = (VnetHdr::default(), tcp_frame(V4, 1, 0, &payload(300)));
    for (hdr, f) in [gso4, gso6, plain] {
        for at in 0..100 {
            for v in [0x00, 0x45, 0x60, 0x80, 0xff] {
                let mut m = f.clone();
                m[at] = v;
                let mut hdrs = vec![hdr];
                for size in [0, 500, 0xffff] {
                    hdrs.push(VnetHdr {
                        gso_size: size,
                        ..hdr
                    });
                    hdrs.push(VnetHdr {
                        csum_start: at as u16,
                        csum_offset: size,
                        ..hdr
                    });
                }
                for h in hdrs {
                    let mut wire = vec![m.clone(), m.clone()];
                    let _ = transmit(&h, &m, &mut wire, &mut PathStats::default());
                    for mode in MODES {
                        for d in rx(mode, wire.clone()).0 {
                            rss::queue(&d.frame, 32);
                        }
                    }
                }
            }
        }
    }
}
