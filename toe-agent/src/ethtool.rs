//! Read-only device queries through the SIOCETHTOOL / SIOCGIF* ioctls
//! (include/uapi/linux/ethtool.h, include/uapi/linux/sockios.h). Never a
//! setter: the agent does not change device settings.
use std::{io, os::fd::AsRawFd, os::fd::FromRawFd, os::fd::OwnedFd};

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GDRVINFO: u32 = 0x0000_0003;

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
            name: crate::iface::name_bytes(ifname),
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
pub(crate) fn ethtool<T>(ifname: &str, arg: &mut T) -> io::Result<()> {
    let mut ifr = IfReq::new(ifname);
    let ptr = arg as *mut T as usize;
    ifr.data[..8].copy_from_slice(&ptr.to_ne_bytes());
    ioctl(SIOCETHTOOL, &mut ifr)
}

fn c_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The driver name `ethtool -i` shows ("veth", "virtio_net", "ice", ...).
pub fn driver(ifname: &str) -> io::Result<String> {
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
    Ok(c_str(&info.driver))
}

pub fn mtu(ifname: &str) -> io::Result<u32> {
    let mut ifr = IfReq::new(ifname);
    ioctl(libc::SIOCGIFMTU as libc::c_ulong, &mut ifr)?;
    let mut b = [0u8; 4];
    b.copy_from_slice(&ifr.data[..4]);
    Ok(i32::from_ne_bytes(b) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_uapi() {
        assert_eq!(std::mem::size_of::<DrvInfo>(), 196);
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
    }

    #[test]
    fn loopback_mtu_is_readable() {
        assert!(mtu("lo").unwrap() >= 1500);
    }
}
