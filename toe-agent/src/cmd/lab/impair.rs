//! The lab's impairments ([`Impair`]): loss from an nftables rule in the
//! receiver's namespace, and a receiving application that reads slowly;
//! and what they did to TCP, from both agents' counts.
use std::{
    io::{self, Read},
    net::TcpStream,
    os::fd::AsRawFd,
    time::{Duration, Instant},
};

use serde::Serialize;

use super::{NS_RX, PORT, configs::Impair};
use crate::{
    model::period::{Blocks, Drops},
    sys::netns,
};

/// nftables table of the loss rule, in the receiver's namespace.
const TABLE: &str = "toe_lab";

/// Set the impairment up, after removing an earlier configuration's.
pub(super) fn set_up(impair: Impair) -> anyhow::Result<()> {
    let _ = netns::exec(NS_RX, &["nft", "delete", "table", "inet", TABLE]);
    let Impair::Loss(percent) = impair else {
        return Ok(());
    };
    let chain = format!("inet {TABLE} input");
    netns::exec(NS_RX, &["nft", "add", "table", "inet", TABLE])?;
    netns::exec(
        NS_RX,
        &[
            "nft",
            &format!("add chain {chain} {{ type filter hook input priority 0; }}"),
        ],
    )?;
    // The transfer's packets only, so the count is the transfer's.
    netns::exec(
        NS_RX,
        &[
            "nft",
            &format!(
                "add rule {chain} tcp dport {PORT} numgen random mod 100 < {percent} counter drop"
            ),
        ],
    )?;
    Ok(())
}

/// Packets the loss rule dropped: its counter (`nft -j`), None without one.
pub(super) fn nft_dropped(impair: Impair) -> anyhow::Result<Option<u64>> {
    if !matches!(impair, Impair::Loss(_)) {
        return Ok(None);
    }
    let text = netns::output(NS_RX, &["nft", "-j", "list", "table", "inet", TABLE])?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    let packets = json["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["rule"]["expr"].as_array())
        .flatten()
        .find_map(|e| e["counter"]["packets"].as_u64());
    packets
        .map(Some)
        .ok_or_else(|| anyhow::anyhow!("no counter in nft's listing of {TABLE}"))
}

/// The receive buffer of a slow reader's sockets: small, so that the
/// window closes within milliseconds of the reader falling behind.
const SLOW_RCVBUF: libc::c_int = 64 * 1024;

/// Make the listener's future connections slow readers' (SO_RCVBUF is
/// inherited by accepted sockets, and must be set before the handshake
/// to size the window scale: net/ipv4/tcp_output.c, tcp_select_initial_window()).
pub(super) fn small_buffer(listener: &impl AsRawFd) -> io::Result<()> {
    // SAFETY: setsockopt on a socket we own, with a c_int of the right size.
    let rc = unsafe {
        libc::setsockopt(
            listener.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&SLOW_RCVBUF as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Read a connection to its end at most `rate` bytes a second (any rate
/// when None); bytes read.
pub(super) fn drain(mut conn: TcpStream, rate: Option<u64>) -> io::Result<u64> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = vec![
        0u8;
        if rate.is_some() {
            16 * 1024
        } else {
            256 * 1024
        }
    ];
    let started = Instant::now();
    let mut total = 0u64;
    loop {
        match conn.read(&mut buf)? {
            0 => return Ok(total),
            n => total += n as u64,
        }
        if let Some(rate) = rate {
            // Sleep until the bytes read so far are due.
            let due = Duration::from_secs_f64(total as f64 / rate as f64);
            if let Some(ahead) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(ahead);
            }
        }
    }
}

/// What a configuration's transfer cost TCP, where it happened.
#[derive(Serialize)]
pub(crate) struct TcpReport {
    /// skbs the sender's TCP retransmitted on the link, and the segments
    /// they carried (`tcp.retransmits`, `tcp.retransmitted_segments`).
    pub retransmits: u64,
    pub retransmitted_segments: u64,
    /// Their share of the segments the sender put on the wire.
    pub retransmitted_share: f64,
    /// The stack's drops of the receiver's and the sender's packets, by
    /// reason (`drops`).
    pub receiver_drops: Drops,
    pub sender_drops: Drops,
    /// Packets the loss rule dropped, by its own counter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nft_dropped: Option<u64>,
}

impl TcpReport {
    pub(super) fn of(tx: &Blocks, rx: &Blocks, nft_dropped: Option<u64>) -> TcpReport {
        let sent = tx.tx.wire_segments.max(1);
        TcpReport {
            retransmits: tx.tcp.retransmit.retransmits,
            retransmitted_segments: tx.tcp.retransmit.retransmitted_segments,
            retransmitted_share: tx.tcp.retransmit.retransmitted_segments as f64 / sent as f64,
            receiver_drops: rx.drops.clone(),
            sender_drops: tx.drops.clone(),
            nft_dropped,
        }
    }

    /// One line: "tcp: 597 retransmits (0.9% of segments); receiver
    /// dropped 337 (NETFILTER_DROP 337); nftables dropped 337".
    pub(super) fn line(&self) -> String {
        let drops = |d: &Drops| {
            let mut reasons: Vec<_> = d.by_reason.iter().collect();
            reasons.sort_by(|a, b| b.1.cmp(a.1));
            let top: Vec<String> = reasons
                .iter()
                .take(3)
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            if top.is_empty() {
                "0".to_string()
            } else {
                format!("{} ({})", d.total, top.join(", "))
            }
        };
        let mut line = format!(
            "tcp: {} retransmits ({} segments, {:.2}% of segments sent); receiver dropped {}; sender dropped {}",
            self.retransmits,
            self.retransmitted_segments,
            self.retransmitted_share * 100.0,
            drops(&self.receiver_drops),
            drops(&self.sender_drops),
        );
        if let Some(n) = self.nft_dropped {
            line.push_str(&format!("; nftables dropped {n}"));
        }
        line
    }
}
