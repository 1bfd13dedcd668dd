//! The lab's one write to a device: offload features on or off, on the
//! devices of the namespaces it made (ETHTOOL_SFEATURES,
//! include/uapi/linux/ethtool.h; net/ethtool/ioctl.c, ethtool_set_features()).
//! The agent's other commands only read (sys/ethtool.rs).
use std::io;

use crate::sys::ethtool::{ethtool_words, feature_names};

const ETHTOOL_SFEATURES: u32 = 0x0000_003b;

/// Request each named feature on or off.
pub(super) fn set(ifname: &str, changes: &[(&str, bool)]) -> io::Result<()> {
    let names = feature_names(ifname)?;
    let blocks = names.len().div_ceil(32);
    // struct ethtool_sfeatures { cmd; size; { valid; requested; }[size] }
    let mut buf = vec![0u32; 2 + 2 * blocks];
    buf[0] = ETHTOOL_SFEATURES;
    buf[1] = blocks as u32;
    for (name, on) in changes {
        let i = names.iter().position(|n| n == name).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{ifname} has no feature {name}"),
            )
        })?;
        buf[2 + 2 * (i / 32)] |= 1 << (i % 32);
        if *on {
            buf[2 + 2 * (i / 32) + 1] |= 1 << (i % 32);
        }
    }
    ethtool_words(ifname, &mut buf)
}
