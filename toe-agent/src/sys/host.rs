//! Facts about the host the agent runs on, shared by every command.

/// `uname -r`, empty if /proc cannot say.
pub(crate) fn kernel_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
