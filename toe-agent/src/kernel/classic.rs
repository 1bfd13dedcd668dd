//! Layout checks for the classic tracepoint fallbacks.
//!
//! The fallback programs (each family's `probes/<family>/kernel.rs`, over
//! the record readers of toe-agent-ebpf/src/classic.rs) read trace-record
//! fields at fixed offsets. Before one is attached, the offsets are checked
//! against the event's `format` file: a kernel whose layout differs gets a
//! failed probe with the reason, never wrong numbers.
use std::path::{Path, PathBuf};

/// `(field, offset, size)` each fallback program reads, per event.
fn expected(group: &str, event: &str) -> Option<&'static [(&'static str, u32, u32)]> {
    const RX_VERBOSE: &[(&str, u32, u32)] = &[
        ("name", 8, 4),
        ("queue_mapping", 16, 2),
        ("ip_summed", 40, 1),
        ("len", 52, 4),
        ("gso_size", 74, 2),
    ];
    const DEV_TEMPLATE: &[(&str, u32, u32)] = &[("len", 16, 4), ("name", 20, 4)];
    Some(match (group, event) {
        ("net", "napi_gro_receive_entry" | "napi_gro_frags_entry" | "netif_receive_skb_entry")
        | ("net", "netif_receive_skb_list_entry" | "netif_rx_entry") => RX_VERBOSE,
        ("net", "netif_receive_skb" | "net_dev_queue") => DEV_TEMPLATE,
        ("net", "net_dev_start_xmit") => &[
            ("name", 8, 4),
            ("queue_mapping", 12, 2),
            ("ip_summed", 32, 1),
            ("len", 36, 4),
            ("gso_segs", 60, 2),
            ("gso_type", 62, 2),
        ],
        ("irq", "softirq_entry" | "softirq_exit" | "softirq_raise") => &[("vec", 8, 4)],
        ("napi", "napi_poll") => &[("dev_name", 16, 4), ("work", 20, 4), ("budget", 24, 4)],
        _ => return None,
    })
}

fn tracefs_event_dir(group: &str, event: &str) -> Option<PathBuf> {
    [
        "/sys/kernel/tracing/events",
        "/sys/kernel/debug/tracing/events",
    ]
    .iter()
    .map(|root| Path::new(root).join(group).join(event))
    .find(|p| p.join("format").exists())
}

/// `(name, offset, size)` of every field in a `format` file.
pub(crate) fn parse_format(text: &str) -> Vec<(String, u32, u32)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.trim().split(';').map(str::trim);
            let decl = parts.next()?.strip_prefix("field:")?;
            let offset = parts.next()?.strip_prefix("offset:")?.parse().ok()?;
            let size = parts.next()?.strip_prefix("size:")?.parse().ok()?;
            let name = decl.split_whitespace().last()?;
            let name = name.split('[').next()?.to_string();
            Some((name, offset, size))
        })
        .collect()
}

/// Make tracefs reachable for aya (which reads event ids there) and for the
/// layout checks. `ip netns exec` remounts /sys, hiding a host tracefs
/// mount; when none is visible, mount one in a private mount namespace of
/// this process only, so the host's mounts stay as they were.
pub(crate) fn ensure_tracefs() -> anyhow::Result<()> {
    if tracefs_event_dir("irq", "softirq_entry").is_some() {
        return Ok(());
    }
    // Mounted but closed to this user: tracefs's root is mode 0700, owned
    // by root (fs/tracefs/inode.c: TRACEFS_DEFAULT_MODE), and aya reads
    // each event's id there.
    let closed = |dir: &str| {
        std::fs::read_dir(dir).is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
    };
    if let Some(dir) = ["/sys/kernel/tracing", "/sys/kernel/debug"]
        .into_iter()
        .find(|d| closed(d))
    {
        anyhow::bail!(
            "{dir} is readable by root only: classic tracepoints need root (or CAP_DAC_READ_SEARCH)"
        );
    }
    let fail = |what: &str| anyhow::anyhow!("{what}: {}", std::io::Error::last_os_error());
    // unshare(CLONE_NEWNS) implies CLONE_FS; in a multi-threaded process
    // the kernel gives the calling thread a copy of the shared fs_struct
    // (kernel/fork.c: ksys_unshare() -> unshare_fs()), so the mount is seen
    // by this thread and the threads it starts later. trace and serve
    // attach first from the main thread before starting any other, and
    // serve re-attaches from its sampler thread, which then already sees
    // the mount (tests/tests/serve.rs runs both under `ip netns exec`).
    // SAFETY: plain syscalls with static NUL-terminated strings.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(fail(
                "unshare(CLONE_NEWNS) for a private tracefs mount (needs CAP_SYS_ADMIN)",
            ));
        }
        if libc::mount(
            c"none".as_ptr(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(fail("making mounts private"));
        }
        if libc::mount(
            c"nodev".as_ptr(),
            c"/sys/kernel/tracing".as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        ) != 0
        {
            return Err(fail("mounting tracefs on /sys/kernel/tracing"));
        }
    }
    Ok(())
}

/// Ok when the running kernel's record layout is what the program reads.
pub(crate) fn check_layout(group: &str, event: &str) -> anyhow::Result<()> {
    let want = expected(group, event)
        .ok_or_else(|| anyhow::anyhow!("no classic fallback for {group}/{event}"))?;
    let dir = tracefs_event_dir(group, event).ok_or_else(|| {
        anyhow::anyhow!(
            "tracepoint {group}/{event} not found in tracefs (is it mounted? mount -t tracefs nodev /sys/kernel/tracing)"
        )
    })?;
    let text = std::fs::read_to_string(dir.join("format"))?;
    check_fields(&parse_format(&text), want).map_err(|e| anyhow::anyhow!("{group}/{event}: {e}"))
}

fn check_fields(have: &[(String, u32, u32)], want: &[(&str, u32, u32)]) -> Result<(), String> {
    for (name, off, size) in want {
        match have.iter().find(|(n, _, _)| n == name) {
            Some((_, o, s)) if o == off && s == size => {}
            Some((_, o, s)) => {
                return Err(format!(
                    "field {name} is at offset {o} size {s}, the program reads offset {off} size {size}"
                ));
            }
            None => return Err(format!("the record has no field {name}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const XMIT_FORMAT: &str = "name: net_dev_start_xmit
ID: 2307
format:
\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
\tfield:__data_loc char[] name;\toffset:8;\tsize:4;\tsigned:0;
\tfield:u16 queue_mapping;\toffset:12;\tsize:2;\tsigned:0;
\tfield:u8 ip_summed;\toffset:32;\tsize:1;\tsigned:0;
\tfield:unsigned int len;\toffset:36;\tsize:4;\tsigned:0;
\tfield:u16 gso_segs;\toffset:60;\tsize:2;\tsigned:0;
\tfield:u16 gso_type;\toffset:62;\tsize:2;\tsigned:0;
";

    #[test]
    fn parses_format_files() {
        let f = parse_format(XMIT_FORMAT);
        assert_eq!(f[0], ("common_type".to_string(), 0, 2));
        assert_eq!(f[1], ("name".to_string(), 8, 4));
        assert_eq!(f.len(), 7);
    }

    #[test]
    fn a_moved_field_is_refused_with_the_reason() {
        let want = expected("net", "net_dev_start_xmit").unwrap();
        assert_eq!(check_fields(&parse_format(XMIT_FORMAT), want), Ok(()));
        let moved = XMIT_FORMAT.replace("offset:36", "offset:40");
        let err = check_fields(&parse_format(&moved), want).unwrap_err();
        assert_eq!(
            err,
            "field len is at offset 40 size 4, the program reads offset 36 size 4"
        );
        let gone = XMIT_FORMAT.replace("gso_segs", "segs");
        assert_eq!(
            check_fields(&parse_format(&gone), want).unwrap_err(),
            "the record has no field gso_segs"
        );
    }
}
