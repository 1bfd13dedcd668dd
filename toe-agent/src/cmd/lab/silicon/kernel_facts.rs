//! What the module relies on the kernel for, checked on the running one
//! (privileged; run by hand with the smoke tests, see `smoke`).
use std::{
    thread,
    time::{Duration, Instant},
};

use super::{
    smoke::{DEV_A, NS_A, Namespaces, run},
    tap::{Tap, VnetHdr},
    testframes::{Flow, SYN, V4, tcp_frame},
};

/// What tun makes of the receive checksum flags, on the running kernel:
/// a SYN|ACK with a corrupt checksum, written with each flag, to a closed
/// port of the tap's address. A reply (RST) means the stack accepted it.
#[test]
#[ignore = "needs root; creates namespaces toe-silicon-a and toe-silicon-b"]
fn tun_trusts_needs_csum_but_not_data_valid() {
    let _namespaces = Namespaces::create().unwrap();
    let tap = Tap::create(NS_A, DEV_A, 1).unwrap();
    // The tap is 10.254.78.2 at the MAC the test frames are addressed to;
    // the sender's address resolves without ARP.
    for cmd in [
        format!("link set {DEV_A} address 02:00:00:00:00:02"),
        format!("addr add 10.254.78.2/30 dev {DEV_A}"),
        format!("link set {DEV_A} up"),
        format!("neigh add 10.254.78.1 lladdr 02:00:00:00:00:01 dev {DEV_A}"),
    ] {
        let mut argv = vec!["ip", "-n", NS_A];
        argv.extend(cmd.split_whitespace());
        run(&argv).unwrap();
    }
    let replied = |sport: u16, hdr: VnetHdr, corrupt: bool| {
        let mut f = tcp_frame(Flow { sport, ..V4 }, 1, SYN, &[]);
        if corrupt {
            f[50] ^= 0x5a;
        }
        tap.send(0, &hdr, &f).unwrap();
        let mut buf = vec![0u8; 2048];
        let deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < deadline {
            let Some(n) = tap.recv(0, &mut buf).unwrap() else {
                thread::sleep(Duration::from_millis(5));
                continue;
            };
            // IPv4 (ethertype at 12), TCP (protocol at 14 + 9), to our
            // port (destination port at 34 + 2).
            let f = &buf[VnetHdr::LEN..n];
            if f.len() >= 38
                && f[12..14] == [8, 0]
                && f[23] == 6
                && f[36..38] == sport.to_be_bytes()
            {
                return true;
            }
        }
        false
    };
    let data_valid = VnetHdr {
        flags: VnetHdr::F_DATA_VALID,
        ..VnetHdr::default()
    };
    let needs_csum = VnetHdr {
        flags: VnetHdr::F_NEEDS_CSUM,
        csum_start: 34,
        csum_offset: 16,
        ..VnetHdr::default()
    };
    assert!(replied(41000, VnetHdr::default(), false), "a good segment");
    assert!(
        !replied(41001, VnetHdr::default(), true),
        "a corrupt segment, no flag"
    );
    assert!(
        replied(41002, needs_csum, true),
        "NEEDS_CSUM: CHECKSUM_PARTIAL, trusted"
    );
    assert!(
        !replied(41003, data_valid, true),
        "DATA_VALID was trusted: tun now honours it; update the module doc of silicon.rs"
    );
}
