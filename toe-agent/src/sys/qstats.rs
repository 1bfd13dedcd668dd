//! Standard per-queue statistics ("qstats") from the kernel's `netdev`
//! generic netlink family (Documentation/netlink/specs/netdev.yaml,
//! NETDEV_CMD_QSTATS_GET, kernels 6.10 and later, drivers that implement
//! `netdev_stat_ops`). A few dozen lines of netlink rather than a netlink
//! stack: one request, one dump.
use std::{collections::BTreeMap, io};

use serde::{Deserialize, Serialize};

use crate::sys::netlink::{NLM_F_DUMP, NLM_F_REQUEST, Socket, attr, attrs, split, uint};

/// One queue's counters, by the names netdev.yaml gives them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct QueueStats {
    /// "rx" or "tx".
    pub queue_type: String,
    pub queue_id: u32,
    pub stats: BTreeMap<String, u64>,
}

// include/uapi/linux/netlink.h, genetlink.h
const NETLINK_GENERIC: i32 = 16;
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
// include/uapi/linux/netdev.h
const NETDEV_CMD_QSTATS_GET: u8 = 12;
const NETDEV_A_QSTATS_IFINDEX: u16 = 1;
const NETDEV_A_QSTATS_QUEUE_TYPE: u16 = 2;
const NETDEV_A_QSTATS_QUEUE_ID: u16 = 3;
const NETDEV_A_QSTATS_SCOPE: u16 = 4;
const NETDEV_QSTATS_SCOPE_QUEUE: u32 = 1;

/// Names of NETDEV_A_QSTATS_* from 8 (rx-packets) on, in attribute order.
const STAT_NAMES: [&str; 27] = [
    "rx-packets",
    "rx-bytes",
    "tx-packets",
    "tx-bytes",
    "rx-alloc-fail",
    "rx-hw-drops",
    "rx-hw-drop-overruns",
    "rx-csum-complete",
    "rx-csum-unnecessary",
    "rx-csum-none",
    "rx-csum-bad",
    "rx-hw-gro-packets",
    "rx-hw-gro-bytes",
    "rx-hw-gro-wire-packets",
    "rx-hw-gro-wire-bytes",
    "rx-hw-drop-ratelimits",
    "tx-hw-drops",
    "tx-hw-drop-errors",
    "tx-csum-none",
    "tx-needs-csum",
    "tx-hw-gso-packets",
    "tx-hw-gso-bytes",
    "tx-hw-gso-wire-packets",
    "tx-hw-gso-wire-bytes",
    "tx-hw-drop-ratelimits",
    "tx-stop",
    "tx-wake",
];

/// A generic netlink request: nlmsghdr + genlmsghdr + attributes.
fn message(family: u16, flags: u16, cmd: u8, attrs: &[u8]) -> Vec<u8> {
    let mut payload = vec![cmd, 1, 0, 0]; // genlmsghdr: cmd, version, reserved
    payload.extend(attrs);
    crate::sys::netlink::request(family, flags, &payload)
}

/// The attributes of a generic netlink message body (after its 4-byte
/// genlmsghdr); none when the body is shorter than that.
fn genl_attrs(body: &[u8]) -> Vec<(u16, &[u8])> {
    attrs(body.get(4..).unwrap_or_default())
}

fn family_id(sock: &Socket, name: &str) -> io::Result<u16> {
    let mut a = Vec::new();
    attr(
        &mut a,
        CTRL_ATTR_FAMILY_NAME,
        format!("{name}\0").as_bytes(),
    );
    sock.send(&message(
        GENL_ID_CTRL,
        NLM_F_REQUEST,
        CTRL_CMD_GETFAMILY,
        &a,
    ))?;
    for (_, body) in sock.receive(false)? {
        for (kind, p) in genl_attrs(&body) {
            if kind == CTRL_ATTR_FAMILY_ID && p.len() >= 2 {
                return Ok(u16::from_ne_bytes([p[0], p[1]]));
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("no generic netlink family {name}"),
    ))
}

/// Per-queue statistics of the device, or an error saying why the kernel
/// or driver does not offer them (ENOENT: no netdev family; EOPNOTSUPP: the
/// driver has no qstats).
pub(crate) fn queue_stats(ifindex: u32) -> io::Result<Vec<QueueStats>> {
    let sock = Socket::open(NETLINK_GENERIC)?;
    let family = family_id(&sock, "netdev")?;
    let mut a = Vec::new();
    attr(&mut a, NETDEV_A_QSTATS_IFINDEX, &ifindex.to_ne_bytes());
    attr(
        &mut a,
        NETDEV_A_QSTATS_SCOPE,
        &NETDEV_QSTATS_SCOPE_QUEUE.to_ne_bytes(),
    );
    sock.send(&message(
        family,
        NLM_F_REQUEST | NLM_F_DUMP,
        NETDEV_CMD_QSTATS_GET,
        &a,
    ))?;
    Ok(decode(&sock.receive(true)?, ifindex))
}

/// The queues of `ifindex` in the bodies of a qstats dump, sorted; other
/// devices' queues and attributes this agent does not know are left out.
fn decode(bodies: &[(u16, Vec<u8>)], ifindex: u32) -> Vec<QueueStats> {
    let mut out = Vec::new();
    for (_, body) in bodies {
        let mut q = QueueStats::default();
        let mut ours = true;
        for (kind, p) in genl_attrs(body) {
            match kind {
                NETDEV_A_QSTATS_IFINDEX => ours = uint(p) == ifindex as u64,
                NETDEV_A_QSTATS_QUEUE_TYPE => {
                    q.queue_type = if uint(p) == 0 {
                        "rx".into()
                    } else {
                        "tx".into()
                    }
                }
                NETDEV_A_QSTATS_QUEUE_ID => q.queue_id = uint(p) as u32,
                k @ 8.. => {
                    if let Some(name) = STAT_NAMES.get((k - 8) as usize) {
                        q.stats.insert(name.to_string(), uint(p));
                    }
                }
                _ => {}
            }
        }
        if ours {
            out.push(q);
        }
    }
    out.sort_by(|a, b| (&a.queue_type, a.queue_id).cmp(&(&b.queue_type, b.queue_id)));
    out
}

/// What the decoder makes of one datagram of a qstats dump from the kernel
/// (for the fuzz target): its messages split, then their queues decoded.
pub(crate) fn decode_datagram(datagram: &[u8], ifindex: u32) -> io::Result<Vec<QueueStats>> {
    let mut bodies = Vec::new();
    split(datagram, true, &mut bodies)?;
    Ok(decode(&bodies, ifindex))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::netlink::NLMSG_ERROR;

    #[test]
    fn short_and_lying_messages_are_errors_not_panics() {
        let mut out = Vec::new();
        // A genl message whose body is shorter than its own header.
        let mut m = 18u32.to_ne_bytes().to_vec();
        m.extend([0x20, 0, 0, 0]);
        m.extend([0u8; 10]);
        assert!(!split(&m, true, &mut out).unwrap());
        assert_eq!(genl_attrs(&out[0].1), vec![]);
        // NLMSG_ERROR cut after its header: no error code to read.
        let mut e = 16u32.to_ne_bytes().to_vec();
        e.extend(NLMSG_ERROR.to_ne_bytes());
        e.extend([0u8; 10]);
        assert!(split(&e, false, &mut out).is_err());
        // A length past the datagram.
        let mut l = 400u32.to_ne_bytes().to_vec();
        l.extend([0u8; 16]);
        assert!(split(&l, true, &mut out).is_err());
        // An attribute longer than the rest is dropped, not sliced.
        assert_eq!(attrs(&[8, 0, 1, 0, 0]), vec![]);
        assert_eq!(uint(&[1, 2, 3]), 0);
    }

    #[test]
    fn messages_are_laid_out_as_netlink_wants() {
        let mut a = Vec::new();
        attr(&mut a, CTRL_ATTR_FAMILY_NAME, b"netdev\0");
        assert_eq!(a.len(), 12); // 4 header + 7 payload, padded to 4
        let m = message(GENL_ID_CTRL, NLM_F_REQUEST, CTRL_CMD_GETFAMILY, &a);
        assert_eq!(
            u32::from_ne_bytes([m[0], m[1], m[2], m[3]]) as usize,
            m.len()
        );
        assert_eq!(m[16], CTRL_CMD_GETFAMILY);
        let parsed = attrs(&m[20..]);
        assert_eq!(parsed, vec![(CTRL_ATTR_FAMILY_NAME, &b"netdev\0"[..])]);
        assert_eq!(uint(&7u64.to_ne_bytes()), 7);
        assert_eq!(uint(&9u32.to_ne_bytes()), 9);
    }

    #[test]
    fn the_kernel_answers_for_loopback() {
        // Loopback has no qstats: the answer is an error or an empty list,
        // never a hang or a panic.
        match queue_stats(1) {
            Ok(q) => assert!(
                q.iter()
                    .all(|q| q.queue_type == "rx" || q.queue_type == "tx")
            ),
            Err(e) => assert!(
                e.raw_os_error().is_some() || e.kind() == io::ErrorKind::NotFound,
                "{e}"
            ),
        }
    }
}
