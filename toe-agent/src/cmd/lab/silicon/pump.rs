//! One direction of the emulated link: the thread that takes what one
//! stack transmits on its tap through the sending NIC's transmit side, the
//! wire and the receiving NIC's receive side, into the other tap.
use std::{
    io,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, Ordering},
    },
};

use super::{
    PathStats, RxMode, coalesce,
    frame::{self, Malformed},
    rss,
    tap::{Tap, VnetHdr},
};

/// How long a thread sleeps in poll(2) before it looks at its stop flag:
/// the bound on how long dropping a `Silicon` waits.
const POLL_MS: libc::c_int = 50;
/// Frames read from one queue before they are processed together: the
/// window within which the receive side can merge segments, like a NIC's
/// interrupt moderation batch.
const BATCH: usize = 64;
/// Read buffer: twice the largest frame a tap hands over (a GSO frame is
/// at most 64 KiB, the tap's `gso_max_size`), so a full read means
/// something is wrong rather than a truncated frame passing as whole.
const READ_BUF: usize = 128 * 1024;

pub(super) struct Path {
    pub(super) src: Arc<Tap>,
    pub(super) dst: Arc<Tap>,
    pub(super) rx: RxMode,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) stats: Arc<Mutex<PathStats>>,
}

/// Whether the thread goes on.
#[derive(PartialEq, Eq)]
enum Flow {
    Go,
    /// A tap was unregistered under the silicon (its namespace deleted,
    /// `ip link del`): its fds now fail with EBADFD (`tun_get()` finds no
    /// device in drivers/net/tun.c) and poll reports EPOLLERR.
    TapGone,
}

impl Path {
    /// Forward until told to stop or a tap goes away.
    pub(super) fn run(self) {
        let mut buf = vec![0u8; READ_BUF];
        let mut tally = PathStats {
            written_per_queue: vec![0; self.dst.queue_count()],
            ..PathStats::default()
        };
        let mut fds: Vec<libc::pollfd> = (0..self.src.queue_count())
            .map(|q| libc::pollfd {
                fd: self.src.raw_fd(q),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let mut flow = Flow::Go;
        while flow == Flow::Go && !self.stop.load(Ordering::Relaxed) {
            // SAFETY: `fds` is a live array of that many pollfds.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, POLL_MS) };
            if ready < 0 {
                // Other than EINTR, poll fails only on bad arguments,
                // which no retry mends.
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            for (q, fd) in fds.iter().enumerate() {
                if flow != Flow::Go {
                    break;
                }
                if fd.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                    flow = Flow::TapGone;
                } else if fd.revents & libc::POLLIN != 0 {
                    flow = self.batch(q, &mut buf, &mut tally);
                }
            }
            tally.tap_vanished = flow == Flow::TapGone;
            self.publish(&mut tally);
        }
    }

    /// Read up to [`BATCH`] frames from source queue `q` and deliver what
    /// becomes of them.
    fn batch(&self, q: usize, buf: &mut [u8], tally: &mut PathStats) -> Flow {
        let mut wire = Vec::new();
        for _ in 0..BATCH {
            let n = match self.src.recv(q, buf) {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(e) if e.raw_os_error() == Some(libc::EBADFD) => return Flow::TapGone,
                Err(_) => break,
            };
            tally.read += 1;
            let sent = match VnetHdr::parse(&buf[..n]) {
                Some(hdr) if n < buf.len() => {
                    frame::transmit(&hdr, &buf[VnetHdr::LEN..n], &mut wire, tally)
                }
                _ => Err(Malformed(
                    "a read shorter than a virtio_net_hdr, or truncated",
                )),
            };
            tally.malformed += u64::from(sent.is_err());
        }
        tally.wire += wire.len() as u64;
        for d in coalesce::receive(self.rx, wire, tally) {
            let queue = rss::queue(&d.frame, self.dst.queue_count());
            if self.deliver(queue, &d, tally) == Flow::TapGone {
                return Flow::TapGone;
            }
        }
        Flow::Go
    }

    /// Write one frame to the destination tap, counting why when it fails:
    /// a failed write drops the frame, as a NIC drops what it cannot hand
    /// up, and the thread goes on.
    fn deliver(&self, queue: usize, d: &coalesce::Delivery, tally: &mut PathStats) -> Flow {
        let mut result = self.dst.send(queue, &d.hdr, &d.frame);
        if matches!(&result, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            wait_writable(self.dst.raw_fd(queue));
            result = self.dst.send(queue, &d.hdr, &d.frame);
        }
        match result.map_err(|e| e.raw_os_error()) {
            Ok(()) => {
                tally.written += 1;
                if let Some(n) = tally.written_per_queue.get_mut(queue) {
                    *n += 1;
                }
            }
            // The virtio_net_hdr was refused (`tun_get_user()` counts it
            // in the tap's rx_frame_errors).
            Err(Some(libc::EINVAL)) => tally.rejected += 1,
            // The destination link is down: `tun_get_user()` refuses
            // frames for a device that is not up.
            Err(Some(libc::EIO)) => tally.link_down += 1,
            Err(Some(libc::EBADFD)) => return Flow::TapGone,
            Err(_) => tally.write_errors += 1,
        }
        Flow::Go
    }

    /// Add what this thread counted to the path's shared figures.
    fn publish(&self, tally: &mut PathStats) {
        let mut shared = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        shared.absorb(tally);
        let queues = tally.written_per_queue.len();
        *tally = PathStats {
            written_per_queue: vec![0; queues],
            ..PathStats::default()
        };
    }
}

/// Wait, at most [`POLL_MS`], for a full queue to take a frame again.
fn wait_writable(fd: libc::c_int) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one live pollfd. The outcome is seen by the retried write.
    unsafe { libc::poll(&mut pfd, 1, POLL_MS) };
}
