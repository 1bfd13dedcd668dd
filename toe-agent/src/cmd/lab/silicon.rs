//! An emulated NIC for `toe-agent lab`: two tap devices, one in each of two
//! network namespaces, joined by userspace "silicon" that does what a pair
//! of NICs and the wire between them do. Unlike veth, which hands skbs
//! across whole, this makes each stack see a NIC driver's view: TSO and
//! checksum offload on transmit, MTU frames on the wire, and on receive
//! whatever the chosen [`RxMode`] hands up (plain frames, verified ones,
//! LRO or hardware-GRO aggregates), spread over queues by RSS.
//!
//! Per direction, one thread polls every queue of the source tap, and for
//! each batch of frames:
//! 1. the source NIC's transmit side segments GSO frames and fills in
//!    checksums left to it ([`frame::transmit`]);
//! 2. the resulting MTU frames are the wire;
//! 3. the destination NIC's receive side marks or merges them by
//!    [`RxMode`] ([`coalesce::receive`]);
//! 4. RSS picks the destination queue ([`rss::queue`]) and the frame is
//!    written there with its `virtio_net_hdr`.
//!
//! What tun makes of a written `virtio_net_hdr` (drivers/net/tun.c
//! `tun_get_user()` -> `tun_vnet_hdr_tnl_to_skb()` ->
//! `virtio_net_hdr_tnl_to_skb()` in include/linux/virtio_net.h):
//! `NEEDS_CSUM` gives `CHECKSUM_PARTIAL`, which the receiving stack trusts
//! (`skb_csum_unnecessary()`); `gso_type`/`gso_size` make a GSO skb
//! (flagged `SKB_GSO_DODGY`, so GRO passes it up unmerged). `DATA_VALID`,
//! however, is *ignored* on this path as of Linux 6.18: only virtio_net's
//! own receive path turns it into `CHECKSUM_UNNECESSARY`
//! (`virtio_net_handle_csum_offload()`), so frames written with it arrive
//! `CHECKSUM_NONE` and the CPU verifies them (checked on 6.18: a corrupt
//! segment written with `DATA_VALID` is counted in `TcpInCsumErrors`). The
//! modes still set it, as the NIC they emulate reports it.
//!
//! Software GRO on the receiving tap merges nothing by default: tun
//! schedules its NAPI poll for every frame written (`tun_get_user()`, no
//! `MSG_MORE` from write(2)), and `napi_complete_done()` (net/core/dev.c)
//! flushes GRO at the end of each poll unless the device's
//! `gro_flush_timeout` is set. With it set (e.g. 20000 ns), held packets
//! wait for the next poll and MTU frames are merged (seen on 6.18: about
//! three frames per skb, at lower throughput).
use std::{
    fmt, io,
    sync::{Arc, Mutex, PoisonError, atomic::AtomicBool, atomic::Ordering},
    thread::{self, JoinHandle},
};

mod coalesce;
mod csum;
mod frame;
#[cfg(test)]
mod kernel_facts;
mod pump;
mod rss;
#[cfg(test)]
mod smoke;
mod tap;
#[cfg(test)]
mod testframes;
#[cfg(test)]
mod tests;

use tap::Tap;

/// How the emulated NIC hands received frames to its driver (what the
/// `virtio_net_hdr` written with each frame says).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RxMode {
    /// MTU frames, no checksum flag: `CHECKSUM_NONE`, the CPU verifies. A
    /// NIC with RX checksum off, or e1000e under QEMU, where
    /// `e1000_rx_checksum()` (drivers/net/ethernet/intel/e1000e/netdev.c)
    /// finds no checksum status.
    Plain,
    /// MTU frames with `DATA_VALID` when their TCP/UDP checksum verifies:
    /// `CHECKSUM_UNNECESSARY` from `ixgbe_rx_checksum()` or
    /// `mlx5e_handle_csum()`. (tun ignores the flag; see the module doc.)
    Verified,
    /// In-order segments of a flow merged into one frame with `gso_type`
    /// TCPV4/6, `gso_size` = MSS and `DATA_VALID`: LRO as mlx5
    /// (`mlx5e_lro_update_hdr()`) and ixgbe RSC (`ixgbe_set_rsc_gso_size()`)
    /// do it.
    Lro,
    /// Merged the same way but handed up `CHECKSUM_PARTIAL`: `NEEDS_CSUM`
    /// with the TCP check field holding the pseudo-header sum for the
    /// merged length. Hardware GRO as bnxt does it (`bnxt_gro_skb()` ->
    /// `tcp_gro_complete()`).
    HwGro,
    /// Merged into one frame longer than the MTU without `gso_type` or
    /// `gso_size`, `DATA_VALID`: bnxt's TPA in LRO mode, which sets no
    /// `gso_size`. Lengths and checksums of the big frame are correct.
    LroNoGso,
}

/// One NIC model; both ends of the emulated link are the same model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct NicSpec {
    /// TX checksum offload (`TUN_F_CSUM`): the stack leaves TCP/UDP
    /// checksums to the NIC.
    pub tx_csum: bool,
    /// TSO (`TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN`): the stack hands the
    /// NIC frames of up to 64 KiB to segment. Needs `tx_csum`.
    pub tso: bool,
    pub rx: RxMode,
    /// Queues per tap. More than one opens the taps with `IFF_MULTI_QUEUE`,
    /// one fd per queue, and RSS spreads received frames over them.
    pub queues: u16,
}

impl NicSpec {
    /// The `TUNSETOFFLOAD` argument. TSO without checksum offload is
    /// refused: the kernel never segments without it (`set_offload()` in
    /// drivers/net/tun.c reads the TSO bits only with `TUN_F_CSUM`, and
    /// `netdev_fix_features()` drops TSO from a device without checksum).
    fn offload_flags(&self) -> io::Result<libc::c_uint> {
        match (self.tx_csum, self.tso) {
            (false, false) => Ok(0),
            (true, false) => Ok(tap::TUN_F_CSUM),
            (true, true) => {
                Ok(tap::TUN_F_CSUM | tap::TUN_F_TSO4 | tap::TUN_F_TSO6 | tap::TUN_F_TSO_ECN)
            }
            (false, true) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "TSO needs TX checksum offload (tx_csum)",
            )),
        }
    }
}

/// The running emulated link. Dropping it stops both threads (within one
/// poll interval, 50 ms) and closes every queue fd, which removes the taps.
pub(crate) struct Silicon {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// a → b, then b → a.
    paths: [Arc<Mutex<PathStats>>; 2],
}

impl Silicon {
    /// Create tap `a.1` in namespace `a.0` and tap `b.1` in namespace `b.0`,
    /// both NICs of model `spec`, and start forwarding both ways. The
    /// caller then assigns addresses and sets the links up; until then
    /// frames for a tap that is down are dropped (counted as `link_down`).
    pub(crate) fn start(spec: &NicSpec, a: (&str, &str), b: (&str, &str)) -> io::Result<Silicon> {
        let offload = spec.offload_flags()?;
        let tap_a = Arc::new(Tap::create(a.0, a.1, spec.queues)?);
        let tap_b = Arc::new(Tap::create(b.0, b.1, spec.queues)?);
        for t in [&tap_a, &tap_b] {
            t.set_offload(offload).map_err(|e| {
                io::Error::new(e.kind(), format!("TUNSETOFFLOAD on {}: {e}", t.name))
            })?;
        }
        let mut silicon = Silicon {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::with_capacity(2),
            paths: Default::default(),
        };
        for (src, dst, stats) in [
            (&tap_a, &tap_b, &silicon.paths[0]),
            (&tap_b, &tap_a, &silicon.paths[1]),
        ] {
            let path = pump::Path {
                src: Arc::clone(src),
                dst: Arc::clone(dst),
                rx: spec.rx,
                stop: Arc::clone(&silicon.stop),
                stats: Arc::clone(stats),
            };
            // On failure, dropping `silicon` stops the thread already
            // started.
            let thread = thread::Builder::new()
                .name(format!("silicon>{}", dst.name))
                .spawn(move || path.run())?;
            silicon.threads.push(thread);
        }
        Ok(silicon)
    }

    /// The counters so far, per direction.
    pub(crate) fn stats(&self) -> SiliconStats {
        let read = |p: &Mutex<PathStats>| p.lock().unwrap_or_else(PoisonError::into_inner).clone();
        SiliconStats {
            a_to_b: read(&self.paths[0]),
            b_to_a: read(&self.paths[1]),
        }
    }
}

impl Drop for Silicon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            // A thread that panicked dropped its share of the taps as it
            // unwound: there is nothing left to do for it.
            let _ = t.join();
        }
    }
}

/// What the emulated link has done, per direction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SiliconStats {
    pub a_to_b: PathStats,
    pub b_to_a: PathStats,
}

/// What one direction has done, from the source tap to the destination's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PathStats {
    /// Frames read from the source tap (what its stack transmitted).
    pub read: u64,
    /// GSO frames among them, and the segments TSO cut them into.
    pub gso_frames: u64,
    pub gso_segments: u64,
    /// Frames that went on the wire (MTU-sized unless the stack sent
    /// larger ones itself).
    pub wire: u64,
    /// Checksums the silicon computed: TSO segments, completions of
    /// `NEEDS_CSUM` frames, and merged frames.
    pub csum_computed: u64,
    /// L4 checksums the receive side verified, and how many were wrong.
    pub csum_verified: u64,
    pub csum_bad: u64,
    /// Wire frames merged by the receive side, and the frames they became.
    pub coalesced_in: u64,
    pub coalesced_out: u64,
    /// Frames dropped because they asked for an offload the silicon could
    /// not carry out (unparseable, or a GSO type it does not offer).
    pub malformed: u64,
    /// Frames written to the destination tap, in total and per queue.
    pub written: u64,
    pub written_per_queue: Vec<u64>,
    /// Frames the destination tap refused: with EINVAL (its kernel rejected
    /// the `virtio_net_hdr`), with EIO (its link was down), otherwise.
    pub rejected: u64,
    pub link_down: u64,
    pub write_errors: u64,
    /// A tap was removed under the silicon, which stopped this direction.
    pub tap_vanished: bool,
}

impl PathStats {
    fn absorb(&mut self, o: &PathStats) {
        let sums = [
            (&mut self.read, o.read),
            (&mut self.gso_frames, o.gso_frames),
            (&mut self.gso_segments, o.gso_segments),
            (&mut self.wire, o.wire),
            (&mut self.csum_computed, o.csum_computed),
            (&mut self.csum_verified, o.csum_verified),
            (&mut self.csum_bad, o.csum_bad),
            (&mut self.coalesced_in, o.coalesced_in),
            (&mut self.coalesced_out, o.coalesced_out),
            (&mut self.malformed, o.malformed),
            (&mut self.written, o.written),
            (&mut self.rejected, o.rejected),
            (&mut self.link_down, o.link_down),
            (&mut self.write_errors, o.write_errors),
        ];
        for (total, n) in sums {
            *total += n;
        }
        if self.written_per_queue.len() < o.written_per_queue.len() {
            self.written_per_queue.resize(o.written_per_queue.len(), 0);
        }
        for (total, n) in self.written_per_queue.iter_mut().zip(&o.written_per_queue) {
            *total += n;
        }
        self.tap_vanished |= o.tap_vanished;
    }
}

impl fmt::Display for PathStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "read {}, TSO {} -> {} segments, wire {}, merged {} -> {}, written {}; checksums computed {}, verified {} ({} bad); dropped: {} malformed, {} refused, {} link down, {} write errors",
            self.read,
            self.gso_frames,
            self.gso_segments,
            self.wire,
            self.coalesced_in,
            self.coalesced_out,
            self.written,
            self.csum_computed,
            self.csum_verified,
            self.csum_bad,
            self.malformed,
            self.rejected,
            self.link_down,
            self.write_errors,
        )?;
        if self.written_per_queue.len() > 1 {
            write!(f, "; per queue {:?}", self.written_per_queue)?;
        }
        if self.tap_vanished {
            write!(f, "; stopped: a tap vanished")?;
        }
        Ok(())
    }
}
