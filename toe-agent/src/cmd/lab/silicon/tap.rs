//! The tap device: the emulated NIC's bus to its driver. What the kernel
//! transmits on the tap, the silicon reads from the tap's queue fds; what
//! the silicon writes there, the kernel receives as from a NIC.
use std::{
    ffi::CString,
    fs::{File, OpenOptions},
    io::{self, Read},
    os::{
        fd::{AsRawFd, RawFd},
        unix::fs::OpenOptionsExt,
    },
};

use crate::sys::netns;

/// `struct virtio_net_hdr` (include/uapi/linux/virtio_net.h), which leads
/// every frame read from or written to a tap opened with `IFF_VNET_HDR`:
/// the offload metadata a NIC's descriptors would carry. Little-endian, as
/// tun uses on x86 (`tun_vnet_is_little_endian()`, drivers/net/tun_vnet.h).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct VnetHdr {
    pub(super) flags: u8,
    pub(super) gso_type: u8,
    /// Length of the headers (Ethernet + IP + TCP); tun sizes the skb's
    /// linear part by it.
    pub(super) hdr_len: u16,
    pub(super) gso_size: u16,
    pub(super) csum_start: u16,
    pub(super) csum_offset: u16,
}

impl VnetHdr {
    pub(super) const LEN: usize = 10;
    pub(super) const F_NEEDS_CSUM: u8 = 1;
    pub(super) const F_DATA_VALID: u8 = 2;
    pub(super) const GSO_NONE: u8 = 0;
    pub(super) const GSO_TCPV4: u8 = 1;
    pub(super) const GSO_TCPV6: u8 = 4;
    pub(super) const GSO_ECN: u8 = 0x80;

    pub(super) fn parse(b: &[u8]) -> Option<VnetHdr> {
        let b: &[u8; Self::LEN] = b.get(..Self::LEN)?.try_into().ok()?;
        let le16 = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Some(VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: le16(2),
            gso_size: le16(4),
            csum_start: le16(6),
            csum_offset: le16(8),
        })
    }

    pub(super) fn to_bytes(self) -> [u8; Self::LEN] {
        let mut b = [0; Self::LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        for (i, v) in [
            self.hdr_len,
            self.gso_size,
            self.csum_start,
            self.csum_offset,
        ]
        .into_iter()
        .enumerate()
        {
            b[2 + 2 * i..4 + 2 * i].copy_from_slice(&v.to_le_bytes());
        }
        b
    }
}

// include/uapi/linux/if_tun.h, x86_64.
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETOFFLOAD: libc::c_ulong = 0x4004_54d0;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NAPI: libc::c_short = 0x0010;
const IFF_MULTI_QUEUE: libc::c_short = 0x0100;
const IFF_NO_PI: libc::c_short = 0x1000;
const IFF_VNET_HDR: libc::c_short = 0x4000;
pub(super) const TUN_F_CSUM: libc::c_uint = 0x01;
pub(super) const TUN_F_TSO4: libc::c_uint = 0x02;
pub(super) const TUN_F_TSO6: libc::c_uint = 0x04;
pub(super) const TUN_F_TSO_ECN: libc::c_uint = 0x08;
/// `MAX_TAP_QUEUES` in drivers/net/tun.c.
pub(super) const MAX_QUEUES: u16 = 256;

/// One tap device, as the fds of its queues. The device exists while any
/// of them is open: tun devices created without `TUNSETPERSIST` are
/// unregistered when their last queue detaches (`tun_detach()` ->
/// `__tun_detach()` in drivers/net/tun.c).
pub(super) struct Tap {
    pub(super) name: String,
    queues: Vec<File>,
}

impl Tap {
    /// Create tap `name` in namespace `ns` with `queues` queues. A tun
    /// device is created in the network namespace of the task that opened
    /// /dev/net/tun (`tun_chr_open()` allocates the queue's socket in
    /// `current->nsproxy->net_ns`, and `tun_set_iff()` registers the device
    /// in that socket's namespace), so the opens and ioctls run on a thread
    /// inside `ns`; the fds then work from any thread.
    /// `IFF_NAPI` makes written frames enter the stack through the queue's
    /// NAPI poll and `napi_gro_receive()`, as a NIC driver's do
    /// (`tun_get_user()` -> `tun_napi_poll()`).
    pub(super) fn create(ns: &str, name: &str, queues: u16) -> io::Result<Tap> {
        if !(1..=MAX_QUEUES).contains(&queues) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a tap has 1 to {MAX_QUEUES} queues, not {queues}"),
            ));
        }
        let ifreq = ifreq(name, queues > 1)?;
        let c_name = CString::new(name).map_err(|_| invalid_name(name))?;
        let fds = netns::run_in(ns, || -> io::Result<Vec<File>> {
            // TUNSETIFF attaches to an existing tun device of that name
            // rather than failing: never borrow someone else's device.
            // SAFETY: if_nametoindex reads a NUL-terminated string.
            if unsafe { libc::if_nametoindex(c_name.as_ptr()) } != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("a device named {name} already exists in namespace {ns}"),
                ));
            }
            (0..queues).map(|_| open_queue(&ifreq)).collect()
        })??;
        Ok(Tap {
            name: name.to_string(),
            queues: fds,
        })
    }

    /// Tell the kernel which offloads the device does on transmit
    /// (`set_offload()` in drivers/net/tun.c turns `TUN_F_*` into the
    /// device's `NETIF_F_HW_CSUM` and `NETIF_F_TSO*` features). The setting
    /// is the device's, so one queue's fd serves.
    pub(super) fn set_offload(&self, flags: libc::c_uint) -> io::Result<()> {
        let fd = self.queues.first().map_or(-1, AsRawFd::as_raw_fd);
        // SAFETY: TUNSETOFFLOAD takes its argument by value.
        if unsafe { libc::ioctl(fd, TUNSETOFFLOAD as _, libc::c_ulong::from(flags)) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub(super) fn queue_count(&self) -> usize {
        self.queues.len()
    }

    pub(super) fn raw_fd(&self, queue: usize) -> RawFd {
        self.queues.get(queue).map_or(-1, AsRawFd::as_raw_fd)
    }

    /// Read one frame (virtio_net_hdr first) from `queue`; `None` when the
    /// queue is empty.
    pub(super) fn recv(&self, queue: usize, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let mut file = self.file(queue)?;
        match file.read(buf) {
            Ok(n) => Ok(Some(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Write one frame to `queue`, header and frame in one `writev(2)`: tun
    /// takes one frame per write, and records it as received on the queue
    /// written to (`skb_record_rx_queue()` in `tun_get_user()`).
    pub(super) fn send(&self, queue: usize, hdr: &VnetHdr, frame: &[u8]) -> io::Result<()> {
        let fd = self.file(queue)?.as_raw_fd();
        let hdr = hdr.to_bytes();
        let iov = [
            libc::iovec {
                iov_base: hdr.as_ptr() as *mut libc::c_void,
                iov_len: hdr.len(),
            },
            libc::iovec {
                iov_base: frame.as_ptr() as *mut libc::c_void,
                iov_len: frame.len(),
            },
        ];
        // SAFETY: both iovecs point at live buffers of the stated lengths,
        // which writev only reads.
        let n = unsafe { libc::writev(fd, iov.as_ptr(), iov.len() as libc::c_int) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn file(&self, queue: usize) -> io::Result<&File> {
        self.queues
            .get(queue)
            .ok_or_else(|| io::Error::other(format!("{} has no queue {queue}", self.name)))
    }
}

/// `struct ifreq` for TUNSETIFF: the name, then `ifr_flags` at offset 16.
fn ifreq(name: &str, multi_queue: bool) -> io::Result<[u8; 40]> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['\0', '/']) {
        return Err(invalid_name(name));
    }
    let mut flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_NAPI;
    if multi_queue {
        flags |= IFF_MULTI_QUEUE;
    }
    let mut req = [0u8; 40];
    req[..name.len()].copy_from_slice(name.as_bytes());
    req[16..18].copy_from_slice(&flags.to_ne_bytes());
    Ok(req)
}

fn invalid_name(name: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{name:?} is not a valid interface name"),
    )
}

/// Open /dev/net/tun and attach it to the device: the first open creates
/// it, each further one (with `IFF_MULTI_QUEUE`) adds a queue. Nonblocking,
/// so that the forwarding thread can poll all queues and see its stop flag.
fn open_queue(ifreq: &[u8; 40]) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open("/dev/net/tun")
        .map_err(|e| io::Error::new(e.kind(), format!("opening /dev/net/tun: {e}")))?;
    let mut req = *ifreq;
    // SAFETY: TUNSETIFF reads and writes a struct ifreq, which `req` is
    // laid out as and sized for.
    if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF as _, req.as_mut_ptr()) } < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("TUNSETIFF: {e}")));
    }
    Ok(file)
}
