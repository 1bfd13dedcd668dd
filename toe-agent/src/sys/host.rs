//! Facts about the host the agent runs on, shared by every command.

/// `uname -r`, empty if /proc cannot say.
pub(crate) fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The kernel settings that decide how offloads and the receive path
/// behave: read by the audit, exported by serve for a fleet's comparison.
pub(crate) const SYSCTLS: &[&str] = &[
    "net.core.netdev_max_backlog",
    "net.core.netdev_budget",
    "net.core.netdev_budget_usecs",
    "net.core.rmem_max",
    "net.core.wmem_max",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
];

/// A sysctl by its dotted name, as /proc/sys shows it (None if absent:
/// a host-wide one inside a container's namespace, or an older kernel).
pub(crate) fn sysctl(name: &str) -> Option<String> {
    std::fs::read_to_string(format!("/proc/sys/{}", name.replace('.', "/")))
        .ok()
        .map(|s| s.trim().to_string())
}
