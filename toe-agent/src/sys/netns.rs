//! Network namespaces the lab creates, and running code inside one.
use std::{
    fs::File,
    io,
    os::{fd::AsRawFd, unix::fs::MetadataExt},
    path::PathBuf,
    process::Command,
};

/// Where `ip netns add` pins named namespaces.
pub(crate) fn path(name: &str) -> PathBuf {
    PathBuf::from("/run/netns").join(name)
}

pub(crate) fn exists(name: &str) -> bool {
    path(name).exists()
}

/// The namespace's inode, as `/proc/self/ns/net` shows it from inside.
pub(crate) fn inode(name: &str) -> io::Result<u32> {
    Ok(std::fs::metadata(path(name))?.ino() as u32)
}

/// Run `f` on a thread that has joined namespace `name`: sockets it creates
/// and ioctls it makes belong there. Only that thread changes namespace.
pub(crate) fn run_in<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    let file = File::open(path(name))?;
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns(2) on an open nsfs file; affects this thread only.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("thread in the namespace panicked")))
    })
}

/// `ip ...`, with its stderr in the error.
pub(crate) fn ip(args: &[&str]) -> io::Result<()> {
    ip_output(args).map(drop)
}

/// `ip ...`: its stdout, or an error with its stderr.
fn ip_output(args: &[&str]) -> io::Result<String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("running ip (iproute2): {e}")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What a command run inside namespace `ns` printed.
pub(crate) fn output(ns: &str, args: &[&str]) -> io::Result<String> {
    let mut full = vec!["netns", "exec", ns];
    full.extend_from_slice(args);
    ip_output(&full)
}

/// Run a command inside namespace `ns` with `ip netns exec`, which also
/// mounts that namespace's sysfs for it (/sys/class/net shows its devices).
pub(crate) fn exec(ns: &str, args: &[&str]) -> io::Result<()> {
    let mut full = vec!["netns", "exec", ns];
    full.extend_from_slice(args);
    ip(&full)
}

/// A namespace deleted when dropped (with every device in it).
pub(crate) struct Netns {
    pub name: String,
}

impl Netns {
    pub(crate) fn create(name: &str) -> io::Result<Netns> {
        ip(&["netns", "add", name])?;
        let ns = Netns {
            name: name.to_string(),
        };
        // No IPv6: its router solicitations and DAD would be traffic the
        // lab did not ask for. Loopback up for local sockets.
        ns.exec(&["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"])?;
        ns.exec(&["sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"])?;
        ip(&["-n", name, "link", "set", "lo", "up"])?;
        Ok(ns)
    }

    fn exec(&self, args: &[&str]) -> io::Result<()> {
        exec(&self.name, args)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}
