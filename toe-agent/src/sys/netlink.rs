//! The few netlink pieces the agent needs, by hand: one socket, one
//! request, one answer or dump (include/uapi/linux/netlink.h). Every
//! length in a message is checked before it is used: a message that lies
//! about its length is an error, never a slice past the end.
use std::{io, os::fd::AsRawFd, os::fd::FromRawFd, os::fd::OwnedFd};

pub(crate) const NLM_F_REQUEST: u16 = 0x1;
pub(crate) const NLM_F_DUMP: u16 = 0x300;
pub(crate) const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

/// A request: nlmsghdr (type `kind`, `flags`) + `payload`.
pub(crate) fn request(kind: u16, flags: u16, payload: &[u8]) -> Vec<u8> {
    let len = 16 + payload.len();
    let mut m = Vec::with_capacity(len);
    m.extend((len as u32).to_ne_bytes());
    m.extend(kind.to_ne_bytes());
    m.extend(flags.to_ne_bytes());
    m.extend(1u32.to_ne_bytes()); // seq
    m.extend(0u32.to_ne_bytes()); // port id: the kernel fills it in
    m.extend(payload);
    m
}

pub(crate) fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Append attribute `kind` with `payload`, padded to 4 bytes.
pub(crate) fn attr(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    out.extend(((4 + payload.len()) as u16).to_ne_bytes());
    out.extend(kind.to_ne_bytes());
    out.extend(payload);
    out.resize(align4(out.len()), 0);
}

/// Attributes of a message body as (type, payload).
pub(crate) fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((kind, &b[4..len]));
        b = &b[align4(len).min(b.len())..];
    }
    out
}

/// A u32 or u64 attribute's value (0 for any other length).
pub(crate) fn uint(p: &[u8]) -> u64 {
    match p.len() {
        4 => u32::from_ne_bytes([p[0], p[1], p[2], p[3]]) as u64,
        8 => u64::from_ne_bytes([p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7]]),
        _ => 0,
    }
}

/// A netlink socket of one protocol.
pub(crate) struct Socket(OwnedFd);

impl Socket {
    /// A socket of `protocol` (NETLINK_GENERIC, NETLINK_XFRM, ...).
    pub(crate) fn open(protocol: i32) -> io::Result<Self> {
        // SAFETY: socket(2); the fd is owned below.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh descriptor we own.
        Ok(Socket(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub(crate) fn send(&self, msg: &[u8]) -> io::Result<()> {
        // SAFETY: the buffer is valid for its length.
        let n = unsafe { libc::send(self.0.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Every message of the answer (until NLMSG_DONE, or the one reply of a
    /// non-dump request), as (type, body after nlmsghdr).
    pub(crate) fn receive(&self, dump: bool) -> io::Result<Vec<(u16, Vec<u8>)>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: the buffer is valid for its length.
            let n =
                unsafe { libc::recv(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            if split(&buf[..n as usize], dump, &mut out)? {
                return Ok(out);
            }
            if !dump && !out.is_empty() {
                return Ok(out);
            }
        }
    }
}

/// The netlink messages in one datagram, appended to `out` as (type, body
/// after nlmsghdr); true when the answer is complete (NLMSG_DONE, or the
/// acknowledgement of a non-dump request). A message that says it is
/// longer or shorter than it can be is an error, never a slice past the end.
pub(crate) fn split(mut b: &[u8], dump: bool, out: &mut Vec<(u16, Vec<u8>)>) -> io::Result<bool> {
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad netlink message: {what}"),
        )
    };
    while b.len() >= 16 {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let kind = u16::from_ne_bytes([b[4], b[5]]);
        if len < 16 || len > b.len() {
            return Err(bad("length"));
        }
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                // struct nlmsgerr: the error code, then the request's header.
                let code = b
                    .get(16..20)
                    .filter(|_| len >= 20)
                    .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                    .ok_or_else(|| bad("short error message"))?;
                if code != 0 {
                    return Err(io::Error::from_raw_os_error(-code));
                }
                if !dump {
                    return Ok(true);
                }
            }
            _ => out.push((kind, b[16..len].to_vec())),
        }
        b = &b[align4(len).min(b.len())..];
    }
    Ok(false)
}
