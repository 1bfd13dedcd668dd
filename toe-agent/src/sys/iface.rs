//! Network interfaces as the agent's own network namespace sees them.
use std::{ffi::CString, io, os::unix::fs::MetadataExt};

use crate::model::class::DeviceClass;

/// The traced interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Iface {
    pub name: String,
    pub index: u32,
    /// Inode of our network namespace: with `index`, unique on the host.
    pub netns_ino: u32,
    pub driver: String,
    /// From the driver, unless the user said otherwise (`--device-class`).
    pub class: DeviceClass,
    pub mtu: u32,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum IfaceError {
    #[error("no interface named '{name}' in this network namespace; interfaces here: {}", .existing.join(", "))]
    Unknown { name: String, existing: Vec<String> },
    #[error("reading the network namespace of this process: {0}")]
    Netns(io::Error),
}

/// Interfaces of the current network namespace, by index.
pub(crate) fn list() -> Vec<(u32, String)> {
    // if_nameindex() asks the kernel over netlink in the caller's namespace,
    // unlike /sys/class/net, which shows the namespace sysfs was mounted in.
    let mut out = Vec::new();
    // SAFETY: if_nameindex returns an array terminated by a zero entry, freed below.
    unsafe {
        let head = libc::if_nameindex();
        if head.is_null() {
            return out;
        }
        let mut p = head;
        while (*p).if_index != 0 && !(*p).if_name.is_null() {
            let name = std::ffi::CStr::from_ptr((*p).if_name)
                .to_string_lossy()
                .into_owned();
            out.push(((*p).if_index, name));
            p = p.add(1);
        }
        libc::if_freenameindex(head);
    }
    out.sort();
    out
}

/// Index of `name` in this namespace, if it exists.
pub(crate) fn index_of(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (index != 0).then_some(index)
}

pub(crate) fn netns_ino() -> io::Result<u32> {
    // The kernel's ns_common.inum is an unsigned int; nsfs reports it as st_ino.
    Ok(std::fs::metadata("/proc/self/ns/net")?.ino() as u32)
}

/// The interface `name` of this namespace, of the class its driver says,
/// or of `class` when given.
pub(crate) fn resolve(name: &str, class: Option<DeviceClass>) -> Result<Iface, IfaceError> {
    let Some(index) = index_of(name) else {
        return Err(IfaceError::Unknown {
            name: name.to_string(),
            existing: list().into_iter().map(|(_, n)| n).collect(),
        });
    };
    let netns_ino = netns_ino().map_err(IfaceError::Netns)?;
    let driver = crate::sys::ethtool::driver(name).unwrap_or_default();
    Ok(Iface {
        name: name.to_string(),
        index,
        netns_ino,
        class: class.unwrap_or_else(|| DeviceClass::of_driver(&driver)),
        driver,
        mtu: crate::sys::ethtool::mtu(name).unwrap_or(0),
    })
}

/// What the verdicts need to know about the device, read now (features
/// can change during a run), and what the attached probes can see. Reads
/// happen in the caller's namespace.
pub(crate) fn device(
    iface: &Iface,
    coverage: crate::model::verdict::Coverage,
) -> crate::model::verdict::Device {
    crate::model::verdict::Device {
        coverage,
        mtu: crate::sys::ethtool::mtu(&iface.name).unwrap_or(iface.mtu),
        driver: iface.driver.clone(),
        class: iface.class,
        features: crate::sys::ethtool::features(&iface.name).ok(),
        rx_queues: crate::sys::ethtool::rx_queues(&iface.name),
        rps: rps_configured(&iface.name),
    }
}

/// Any rx queue with a non-zero `rps_cpus` mask (net/core/net-sysfs.c).
/// sysfs shows the namespace it was mounted in; `ip netns exec` remounts it.
fn rps_configured(name: &str) -> bool {
    let Ok(dir) = std::fs::read_dir(format!("/sys/class/net/{name}/queues")) else {
        return false;
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
        .filter_map(|e| std::fs::read_to_string(e.path().join("rps_cpus")).ok())
        .any(|mask| mask.trim().chars().any(|c| c != '0' && c != ','))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_exists_and_unknown_lists_it() {
        assert_eq!(index_of("lo"), Some(1));
        let err = resolve("no-such-if0", None).unwrap_err().to_string();
        assert!(err.contains("no interface named 'no-such-if0'"), "{err}");
        assert!(err.contains("lo"), "{err}");
    }
}
