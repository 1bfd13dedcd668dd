//! Read-only device queries through the SIOCETHTOOL / SIOCGIF* ioctls
//! (include/uapi/linux/ethtool.h, include/uapi/linux/sockios.h). Never a
//! setter: the agent does not change device settings.
use std::{io, os::fd::AsRawFd, os::fd::FromRawFd, os::fd::OwnedFd};

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GDRVINFO: u32 = 0x0000_0003;
const ETHTOOL_GSTRINGS: u32 = 0x0000_001b;
const ETHTOOL_GSSET_INFO: u32 = 0x0000_0037;
const ETHTOOL_GFEATURES: u32 = 0x0000_003a;
const ETHTOOL_GCHANNELS: u32 = 0x0000_003c;
const ETHTOOL_GSET: u32 = 0x0000_0001;
const ETHTOOL_GCOALESCE: u32 = 0x0000_000e;
const ETHTOOL_GRINGPARAM: u32 = 0x0000_0010;
const ETHTOOL_GSTATS: u32 = 0x0000_001d;
const ETHTOOL_GRSSH: u32 = 0x0000_0046;
/// `enum ethtool_stringset`: ETH_SS_STATS
const ETH_SS_STATS: u32 = 1;
/// `enum ethtool_stringset`: ETH_SS_FEATURES
const ETH_SS_FEATURES: u32 = 4;
const ETH_GSTRING_LEN: usize = 32;

/// `struct ethtool_drvinfo`
#[repr(C)]
struct DrvInfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

/// `struct ifreq`: the name and a 24-byte union (a pointer or an int here).
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    data: [u8; 24],
}

impl IfReq {
    fn new(ifname: &str) -> Self {
        IfReq {
            name: name_bytes(ifname),
            data: [0; 24],
        }
    }
}

fn socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the fd is owned and closed on drop.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ioctl(req: libc::c_ulong, ifr: &mut IfReq) -> io::Result<()> {
    let sock = socket()?;
    // SAFETY: `ifr` is a properly sized ifreq that outlives the call.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), req as _, ifr as *mut IfReq) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Run an ethtool command whose argument is `T` (starting with its `cmd`).
fn ethtool<T>(ifname: &str, arg: &mut T) -> io::Result<()> {
    let mut ifr = IfReq::new(ifname);
    let ptr = arg as *mut T as usize;
    ifr.data[..8].copy_from_slice(&ptr.to_ne_bytes());
    ioctl(SIOCETHTOOL, &mut ifr)
}

fn c_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Run an ethtool command on a buffer of 32-bit words (the variable-length
/// structures: sset_info, gstrings, gfeatures). The queries here only
/// read; the lab's one write, ETHTOOL_SFEATURES on devices of its own
/// namespaces, is its own (cmd/lab/features.rs).
pub(crate) fn ethtool_words(ifname: &str, words: &mut [u32]) -> io::Result<()> {
    let mut ifr = IfReq::new(ifname);
    let ptr = words.as_mut_ptr() as usize;
    ifr.data[..8].copy_from_slice(&ptr.to_ne_bytes());
    ioctl(SIOCETHTOOL, &mut ifr)
}

/// One netdev feature as `ethtool -k` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Feature {
    pub name: String,
    /// Changeable by the user (in `hw_features`).
    pub available: bool,
    pub requested: bool,
    pub active: bool,
    pub never_changed: bool,
}

impl Feature {
    /// `[fixed]` in ethtool's words: the user cannot change it.
    pub(crate) fn fixed(&self) -> bool {
        !self.available || self.never_changed
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Features(pub Vec<Feature>);

impl Features {
    pub(crate) fn get(&self, name: &str) -> Option<&Feature> {
        self.0.iter().find(|f| f.name == name)
    }

    /// Set `name` as a device would report it when it is fixed `on` or off:
    /// the lab's emulated NIC declares the receive features a tap cannot.
    pub(crate) fn declare(&mut self, name: &str, on: bool) {
        let f = Feature {
            name: name.to_string(),
            available: false,
            requested: on,
            active: on,
            never_changed: false,
        };
        match self.0.iter_mut().find(|f| f.name == name) {
            Some(old) => *old = f,
            None => self.0.push(f),
        }
    }
}

/// The offload features: what the audit reports as the hardware's limits
/// when they are off and fixed, and what serve exports for a fleet's
/// comparison (`toe_feature_info`).
pub(crate) const OFFLOAD_FEATURES: &[&str] = &[
    "tx-scatter-gather",
    "tx-checksum-ipv4",
    "tx-checksum-ipv6",
    "tx-checksum-ip-generic",
    "tx-tcp-segmentation",
    "tx-tcp6-segmentation",
    "tx-generic-segmentation",
    "tx-udp-segmentation",
    "rx-checksum",
    "rx-gro",
    "rx-gro-hw",
    "rx-lro",
    "rx-hashing",
    "esp-hw-offload",
    "tls-hw-tx-offload",
    "tls-hw-rx-offload",
];

/// Room for `count` entries and more: ETHTOOL_GSTRINGS and ETHTOOL_GSTATS
/// write the kernel's count at the time of the call, not the caller's
/// (net/ethtool/ioctl.c, `ethtool_get_strings()` sets `gstrings.len` from
/// `__ethtool_get_sset_count()` and copies that many; `ethtool_get_stats()`
/// likewise), and a driver's count can grow between ETHTOOL_GSSET_INFO and
/// the read (queues added). Buffers sized exactly could be overrun.
fn room(count: usize) -> usize {
    count + count / 2 + 64
}

/// How many entries the kernel says it wrote, checked against the room
/// the buffer had: `Ok(None)` when it differs from what was asked (read
/// again), an error when it did not fit.
fn written(kernel: u32, asked: usize, room: usize) -> io::Result<Option<usize>> {
    let n = kernel as usize;
    if n > room {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the driver's count grew from {asked} to {n}, past the buffer"),
        ));
    }
    Ok((n == asked).then_some(n))
}

/// The count of a string set (ETHTOOL_GSSET_INFO).
fn set_count(ifname: &str, set: u32) -> io::Result<usize> {
    // struct ethtool_sset_info { cmd; reserved; u64 sset_mask; u32 data[]; }
    let mut info = [ETHTOOL_GSSET_INFO, 0, 1 << set, 0, 0];
    ethtool_words(ifname, &mut info)?;
    Ok(info[4] as usize)
}

/// The strings of a set, with the count they were read at.
fn strings(ifname: &str, set: u32, count: usize) -> io::Result<Option<Vec<String>>> {
    // struct ethtool_gstrings { cmd; string_set; len; u8 data[len * 32]; }
    let room = room(count);
    let mut buf = vec![0u32; 3 + room * ETH_GSTRING_LEN / 4];
    buf[0] = ETHTOOL_GSTRINGS;
    buf[1] = set;
    buf[2] = count as u32;
    ethtool_words(ifname, &mut buf)?;
    decode_strings(&buf, count)
}

/// The strings in a filled `struct ethtool_gstrings` asked for `asked`
/// entries: `Ok(None)` when the kernel wrote another count (read again),
/// an error when its count is more than the buffer holds.
fn decode_strings(buf: &[u32], asked: usize) -> io::Result<Option<Vec<String>>> {
    let data = buf.get(3..).unwrap_or_default();
    let kernel = buf.get(2).copied().unwrap_or_default();
    let Some(n) = written(kernel, asked, data.len() * 4 / ETH_GSTRING_LEN)? else {
        return Ok(None);
    };
    let bytes: Vec<u8> = data.iter().flat_map(|w| w.to_ne_bytes()).collect();
    Ok(Some(
        bytes.chunks(ETH_GSTRING_LEN).take(n).map(c_str).collect(),
    ))
}

/// Names with the values of a filled `struct ethtool_stats` asked for
/// `names.len()` values; `Ok(None)` and errors as [`decode_strings`].
fn decode_stats(names: Vec<String>, values: &[u32]) -> io::Result<Option<Vec<(String, u64)>>> {
    let data = values.get(2..).unwrap_or_default();
    let kernel = values.get(1).copied().unwrap_or_default();
    let Some(n) = written(kernel, names.len(), data.len() / 2)? else {
        return Ok(None);
    };
    let numbers = data[..2 * n]
        .chunks(2)
        .map(|w| w[0] as u64 | (w[1] as u64) << 32);
    Ok(Some(names.into_iter().zip(numbers).collect()))
}

/// What the decoders make of buffers as the kernel might fill them (for
/// the fuzz target): `words` as a `struct ethtool_gstrings` asked for
/// `asked` strings, then as a `struct ethtool_stats` for as many values.
pub(crate) fn decode_buffers(words: &[u32], asked: usize) -> io::Result<usize> {
    let names = decode_strings(words, asked)?.unwrap_or_default();
    let stats = decode_stats(names, words)?.unwrap_or_default();
    Ok(stats.len())
}

/// Tries at reading a set whose count keeps changing under us.
const TRIES: usize = 3;

/// Names of the feature bits (`ETH_SS_FEATURES` strings), in bit order.
pub(crate) fn feature_names(ifname: &str) -> io::Result<Vec<String>> {
    for _ in 0..TRIES {
        let count = set_count(ifname, ETH_SS_FEATURES)?;
        if let Some(names) = strings(ifname, ETH_SS_FEATURES, count)? {
            return Ok(names);
        }
    }
    Err(io::Error::other("the feature count kept changing"))
}

/// Every feature of the device with its state (ETHTOOL_GFEATURES).
pub(crate) fn features(ifname: &str) -> io::Result<Features> {
    let names = feature_names(ifname)?;
    let blocks = names.len().div_ceil(32);
    // struct ethtool_gfeatures { cmd; size; { available; requested; active; never_changed; }[size] }
    let mut buf = vec![0u32; 2 + 4 * blocks];
    buf[0] = ETHTOOL_GFEATURES;
    buf[1] = blocks as u32;
    ethtool_words(ifname, &mut buf)?;
    let bit = |field: usize, i: usize| buf[2 + 4 * (i / 32) + field] & (1 << (i % 32)) != 0;
    Ok(Features(
        names
            .into_iter()
            .enumerate()
            .filter(|(_, n)| !n.is_empty())
            .map(|(i, name)| Feature {
                name,
                available: bit(0, i),
                requested: bit(1, i),
                active: bit(2, i),
                never_changed: bit(3, i),
            })
            .collect(),
    ))
}

/// Receive queues: `rx_count + combined_count` of ETHTOOL_GCHANNELS, or
/// None when the driver does not report channels.
pub(crate) fn rx_queues(ifname: &str) -> Option<u32> {
    // struct ethtool_channels: cmd, max_rx, max_tx, max_other, max_combined,
    // rx_count, tx_count, other_count, combined_count
    let mut ch = [0u32; 9];
    ch[0] = ETHTOOL_GCHANNELS;
    ethtool_words(ifname, &mut ch).ok()?;
    Some((ch[5] + ch[8]).max(1))
}

/// `ethtool -i`: driver, version, firmware, bus.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct DriverInfo {
    pub driver: String,
    pub version: String,
    pub firmware_version: String,
    pub bus_info: String,
}

pub(crate) fn driver_info(ifname: &str) -> io::Result<DriverInfo> {
    let mut info = DrvInfo {
        cmd: ETHTOOL_GDRVINFO,
        driver: [0; 32],
        version: [0; 32],
        fw_version: [0; 32],
        bus_info: [0; 32],
        erom_version: [0; 32],
        reserved2: [0; 12],
        n_priv_flags: 0,
        n_stats: 0,
        testinfo_len: 0,
        eedump_len: 0,
        regdump_len: 0,
    };
    ethtool(ifname, &mut info)?;
    Ok(DriverInfo {
        driver: c_str(&info.driver),
        version: c_str(&info.version),
        firmware_version: c_str(&info.fw_version),
        bus_info: c_str(&info.bus_info),
    })
}

/// Speed, duplex and autonegotiation of the link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LinkSettings {
    /// Mb/s; None for an unknown speed (link down).
    pub speed: Option<u32>,
    pub duplex: Option<String>,
    pub autoneg: Option<bool>,
}

/// [`LinkSettings`] from the legacy ETHTOOL_GSET (`struct ethtool_cmd`,
/// include/uapi/linux/ethtool.h): the kernel fills it from the driver's
/// link_ksettings for every driver.
pub(crate) fn link(ifname: &str) -> io::Result<LinkSettings> {
    // cmd, supported, advertising, then speed u16 @12, duplex u8 @14,
    // port, phy_address, transceiver, autoneg u8 @18, mdio_support,
    // maxtxpkt u32 @20, maxrxpkt u32 @24, speed_hi u16 @28; 44 bytes in all.
    let mut words = [0u32; 11];
    words[0] = ETHTOOL_GSET;
    ethtool_words(ifname, &mut words)?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    Ok(link_settings(&bytes))
}

fn link_settings(bytes: &[u8]) -> LinkSettings {
    let speed = u16::from_ne_bytes([bytes[12], bytes[13]]) as u32
        | (u16::from_ne_bytes([bytes[28], bytes[29]]) as u32) << 16;
    // SPEED_UNKNOWN is -1 in the u32 (include/uapi/linux/ethtool.h).
    let speed = (speed != 0 && speed != u32::MAX).then_some(speed);
    let duplex = match bytes[14] {
        0 => Some("half".to_string()),
        1 => Some("full".to_string()),
        _ => None,
    };
    // AUTONEG_DISABLE 0, AUTONEG_ENABLE 1.
    let autoneg = match bytes[18] {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    };
    LinkSettings {
        speed,
        duplex,
        autoneg,
    }
}

/// `ethtool -g`: ring sizes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Rings {
    pub rx: u32,
    pub rx_max: u32,
    pub tx: u32,
    pub tx_max: u32,
}

pub(crate) fn rings(ifname: &str) -> io::Result<Rings> {
    // struct ethtool_ringparam: cmd, rx_max, rx_mini_max, rx_jumbo_max,
    // tx_max, rx, rx_mini, rx_jumbo, tx.
    let mut w = [0u32; 9];
    w[0] = ETHTOOL_GRINGPARAM;
    ethtool_words(ifname, &mut w)?;
    Ok(Rings {
        rx: w[5],
        rx_max: w[1],
        tx: w[8],
        tx_max: w[4],
    })
}

/// `ethtool -l`: channels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Channels {
    pub rx: u32,
    pub tx: u32,
    pub other: u32,
    pub combined: u32,
    pub max_rx: u32,
    pub max_tx: u32,
    pub max_combined: u32,
}

impl Channels {
    /// Queues that receive: rx-only plus combined.
    pub(crate) fn rx_queues(&self) -> u32 {
        self.rx + self.combined
    }
}

pub(crate) fn channels(ifname: &str) -> io::Result<Channels> {
    // struct ethtool_channels: cmd, max_rx, max_tx, max_other,
    // max_combined, rx_count, tx_count, other_count, combined_count.
    let mut w = [0u32; 9];
    w[0] = ETHTOOL_GCHANNELS;
    ethtool_words(ifname, &mut w)?;
    Ok(Channels {
        rx: w[5],
        tx: w[6],
        other: w[7],
        combined: w[8],
        max_rx: w[1],
        max_tx: w[2],
        max_combined: w[4],
    })
}

/// `ethtool -c`: the interrupt coalescing settings that matter here.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Coalesce {
    pub rx_usecs: u32,
    pub rx_frames: u32,
    pub tx_usecs: u32,
    pub tx_frames: u32,
    pub adaptive_rx: bool,
    pub adaptive_tx: bool,
}

pub(crate) fn coalesce(ifname: &str) -> io::Result<Coalesce> {
    // struct ethtool_coalesce: 23 u32, from cmd; rx_coalesce_usecs @1,
    // rx_max_coalesced_frames @2, tx_coalesce_usecs @5,
    // tx_max_coalesced_frames @6, use_adaptive_rx/tx_coalesce @10/@11.
    let mut w = [0u32; 23];
    w[0] = ETHTOOL_GCOALESCE;
    ethtool_words(ifname, &mut w)?;
    Ok(Coalesce {
        rx_usecs: w[1],
        rx_frames: w[2],
        tx_usecs: w[5],
        tx_frames: w[6],
        adaptive_rx: w[10] != 0,
        adaptive_tx: w[11] != 0,
    })
}

/// `ethtool -x`: the RSS indirection table and hash key.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Rss {
    /// Receive queue of each indirection table entry.
    pub indirection: Vec<u32>,
    pub key_bytes: u32,
    pub hfunc: u8,
}

pub(crate) fn rss(ifname: &str) -> io::Result<Rss> {
    // struct ethtool_rxfh: cmd, rss_context, indir_size, key_size,
    // {hfunc u8, input_xfrm u8, rsvd8[2]}, rsvd32, rss_config[]. A first
    // call with zero sizes returns the sizes.
    let mut head = [0u32; 6];
    head[0] = ETHTOOL_GRSSH;
    ethtool_words(ifname, &mut head)?;
    let (indir, key) = (head[2] as usize, head[3] as usize);
    let mut buf = vec![0u32; 6 + indir + key.div_ceil(4)];
    buf[0] = ETHTOOL_GRSSH;
    buf[2] = indir as u32;
    buf[3] = key as u32;
    ethtool_words(ifname, &mut buf)?;
    Ok(Rss {
        indirection: buf[6..6 + indir].to_vec(),
        key_bytes: key as u32,
        hfunc: buf[4].to_ne_bytes()[0],
    })
}

/// `ethtool -S`: the driver's statistics, by name.
pub(crate) fn stats(ifname: &str) -> io::Result<Vec<(String, u64)>> {
    for _ in 0..TRIES {
        let count = set_count(ifname, ETH_SS_STATS)?;
        if count == 0 {
            return Ok(Vec::new());
        }
        let Some(names) = strings(ifname, ETH_SS_STATS, count)? else {
            continue;
        };
        // struct ethtool_stats { cmd; n_stats; u64 data[]; }
        let room = room(count);
        let mut values = vec![0u32; 2 + 2 * room];
        values[0] = ETHTOOL_GSTATS;
        values[1] = count as u32;
        ethtool_words(ifname, &mut values)?;
        // Names and values of one count only.
        if let Some(stats) = decode_stats(names, &values)? {
            return Ok(stats);
        }
    }
    Err(io::Error::other("the statistics count kept changing"))
}

/// The driver name `ethtool -i` shows ("veth", "virtio_net", "ice", ...).
pub(crate) fn driver(ifname: &str) -> io::Result<String> {
    driver_info(ifname).map(|d| d.driver)
}

pub(crate) fn mtu(ifname: &str) -> io::Result<u32> {
    let mut ifr = IfReq::new(ifname);
    ioctl(libc::SIOCGIFMTU as libc::c_ulong, &mut ifr)?;
    let mut b = [0u8; 4];
    b.copy_from_slice(&ifr.data[..4]);
    Ok(i32::from_ne_bytes(b) as u32)
}

/// `ifname` as the NUL-padded 16 bytes (IFNAMSIZ) the kernel stores.
pub(crate) fn name_bytes(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().zip(name.bytes().take(15)) {
        *o = b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_that_grew_is_read_again_or_refused() {
        assert_eq!(written(10, 10, room(10)).unwrap(), Some(10));
        // Grew within the room: read again at the new count.
        assert_eq!(written(12, 10, room(10)).unwrap(), None);
        assert_eq!(written(8, 10, room(10)).unwrap(), None);
        // Grew past it: an error, never a parse of what was not written.
        assert!(written(room(10) as u32 + 1, 10, room(10)).is_err());
        assert!(room(0) >= 64 && room(1000) >= 1500);
    }

    /// A 100 Gb/s link: 100000 Mb/s needs speed_hi (@28), which an
    /// earlier reading took from maxtxpkt's upper half (@22) and so
    /// reported 34464.
    #[test]
    fn link_settings_read_speed_hi_and_autoneg() {
        let mut b = [0u8; 44];
        let speed: u32 = 100_000;
        b[12..14].copy_from_slice(&(speed as u16).to_ne_bytes());
        b[28..30].copy_from_slice(&((speed >> 16) as u16).to_ne_bytes());
        b[14] = 1;
        b[18] = 1;
        b[22] = 0xff; // maxtxpkt's upper half: not the speed
        let l = link_settings(&b);
        assert_eq!(l.speed, Some(100_000));
        assert_eq!(l.duplex.as_deref(), Some("full"));
        assert_eq!(l.autoneg, Some(true));
        // Link down: SPEED_UNKNOWN and DUPLEX_UNKNOWN.
        let mut b = [0u8; 44];
        b[12..14].copy_from_slice(&u16::MAX.to_ne_bytes());
        b[28..30].copy_from_slice(&u16::MAX.to_ne_bytes());
        b[14] = 0xff;
        let l = link_settings(&b);
        assert_eq!((l.speed, l.duplex, l.autoneg), (None, None, Some(false)));
    }

    #[test]
    fn names_are_nul_padded() {
        assert_eq!(&name_bytes("eth0")[..5], b"eth0\0");
        assert_eq!(name_bytes("a-very-long-interface-name")[15], 0);
    }

    #[test]
    fn layouts_match_the_uapi() {
        assert_eq!(std::mem::size_of::<DrvInfo>(), 196);
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
    }

    #[test]
    fn loopback_features_are_readable() {
        let f = features("lo").unwrap();
        assert!(f.0.len() > 30, "{f:?}");
        let tso = f.get("tx-tcp-segmentation").unwrap();
        assert!(tso.active);
        assert!(f.get("rx-gro").is_some());
    }

    #[test]
    fn loopback_mtu_is_readable() {
        assert!(mtu("lo").unwrap() >= 1500);
    }
}
