//! IPsec security associations, and whether the kernel handed each to a
//! device: the xfrm netlink family's SA dump (include/uapi/linux/xfrm.h,
//! XFRM_MSG_GETSA with NLM_F_DUMP; an offloaded SA carries
//! XFRMA_OFFLOAD_DEV). Every xfrm request needs CAP_NET_ADMIN
//! (net/xfrm/xfrm_user.c, xfrm_user_rcv_msg()).
use std::io;

use serde::{Deserialize, Serialize};

use crate::sys::netlink::{NLM_F_DUMP, NLM_F_REQUEST, Socket, attrs, request};

const NETLINK_XFRM: i32 = 6;
const XFRM_MSG_NEWSA: u16 = 0x10;
const XFRM_MSG_GETSA: u16 = 0x12;
const XFRMA_OFFLOAD_DEV: u16 = 28;
const XFRM_OFFLOAD_INBOUND: u8 = 2;
const XFRM_OFFLOAD_PACKET: u8 = 4;

/// `struct xfrm_usersa_info`: the selector (56 bytes), `xfrm_id` (daddr,
/// spi @72 big-endian, proto @76), saddr, the lifetimes (u64s, so the
/// struct is 8-aligned), stats, seq, reqid, family @212, mode, replay
/// window, flags; 224 bytes, the attributes after it.
const USERSA_INFO: usize = 224;
const SPI: usize = 72;
const PROTO: usize = 76;
const FAMILY: usize = 212;

/// One security association.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Sa {
    pub spi: u32,
    /// `esp`, `ah`, `comp`, or the IP protocol number.
    pub proto: String,
    /// `ipv4` or `ipv6`.
    pub family: String,
    /// Where the crypto is done: None on the CPU.
    pub offload: Option<SaOffload>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SaOffload {
    pub ifindex: u32,
    pub inbound: bool,
    /// Packet offload (the device does the whole ESP encapsulation), not
    /// crypto offload alone.
    pub packet: bool,
}

/// Every SA of this network namespace.
pub(crate) fn states() -> io::Result<Vec<Sa>> {
    let sock = Socket::open(NETLINK_XFRM)?;
    sock.send(&request(XFRM_MSG_GETSA, NLM_F_REQUEST | NLM_F_DUMP, &[]))?;
    Ok(sock
        .receive(true)?
        .iter()
        .filter(|(kind, _)| *kind == XFRM_MSG_NEWSA)
        .filter_map(|(_, body)| decode(body))
        .collect())
}

/// One XFRM_MSG_NEWSA body; None when it is too short to be one.
pub(crate) fn decode(body: &[u8]) -> Option<Sa> {
    let info = body.get(..USERSA_INFO)?;
    let spi = u32::from_be_bytes(info[SPI..SPI + 4].try_into().ok()?);
    let proto = match info[PROTO] {
        50 => "esp".to_string(),
        51 => "ah".to_string(),
        108 => "comp".to_string(),
        p => p.to_string(),
    };
    let family = match u16::from_ne_bytes([info[FAMILY], info[FAMILY + 1]]) as i32 {
        libc::AF_INET => "ipv4",
        libc::AF_INET6 => "ipv6",
        _ => "other",
    }
    .to_string();
    // struct xfrm_user_offload { int ifindex; __u8 flags; }
    let offload = attrs(&body[USERSA_INFO..])
        .into_iter()
        .find(|(kind, p)| *kind == XFRMA_OFFLOAD_DEV && p.len() >= 5)
        .map(|(_, p)| SaOffload {
            ifindex: u32::from_ne_bytes([p[0], p[1], p[2], p[3]]),
            inbound: p[4] & XFRM_OFFLOAD_INBOUND != 0,
            packet: p[4] & XFRM_OFFLOAD_PACKET != 0,
        });
    Some(Sa {
        spi,
        proto,
        family,
        offload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::netlink::attr;

    fn body(spi: u32, proto: u8, offload: Option<(u32, u8)>) -> Vec<u8> {
        let mut b = vec![0u8; USERSA_INFO];
        b[SPI..SPI + 4].copy_from_slice(&spi.to_be_bytes());
        b[PROTO] = proto;
        b[FAMILY..FAMILY + 2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        if let Some((ifindex, flags)) = offload {
            let mut p = ifindex.to_ne_bytes().to_vec();
            p.push(flags);
            attr(&mut b, XFRMA_OFFLOAD_DEV, &p);
        }
        b
    }

    #[test]
    fn an_sa_says_where_its_crypto_is_done() {
        let sw = decode(&body(0x100, 50, None)).unwrap();
        assert_eq!(
            (sw.spi, sw.proto.as_str(), sw.family.as_str()),
            (0x100, "esp", "ipv4")
        );
        assert!(sw.offload.is_none());
        let hw = decode(&body(0x200, 50, Some((7, XFRM_OFFLOAD_INBOUND)))).unwrap();
        assert_eq!(
            hw.offload,
            Some(SaOffload {
                ifindex: 7,
                inbound: true,
                packet: false
            })
        );
        assert!(decode(&[0u8; 100]).is_none(), "too short");
    }
}
