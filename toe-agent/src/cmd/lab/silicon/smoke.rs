//! Privileged smoke tests: real TCP transfers through the emulated NIC, one
//! per NIC model, between two namespaces these tests create and delete.
//! Run by hand, as root, with iperf3 installed (a release build gives
//! figures worth comparing; this also runs `kernel_facts`):
//!
//! ```text
//! cargo test -p toe-agent --release --lib silicon -- --ignored --nocapture
//! ```
//!
//! `SILICON_CASES=lro,hw-gro` picks cases by name, `SILICON_SECS` sets the
//! transfer length (default 3), `SILICON_GRO_FLUSH_NS` writes that
//! `gro_flush_timeout` on both taps (the default, 0, flushes GRO at the end
//! of every NAPI poll, and tun polls once per written frame).
use std::{
    process::{Child, Command, Stdio},
    sync::{Mutex, MutexGuard, PoisonError},
    thread,
    time::{Duration, Instant},
};

use super::{NicSpec, RxMode, Silicon, SiliconStats};

pub(super) const NS_A: &str = "toe-silicon-a";
const NS_B: &str = "toe-silicon-b";
pub(super) const DEV_A: &str = "sil-a";
const DEV_B: &str = "sil-b";

struct Case {
    name: &'static str,
    spec: NicSpec,
    flows: u16,
    v6: bool,
}

fn cases() -> Vec<Case> {
    let nic = |tx_csum, tso, rx, queues| NicSpec {
        tx_csum,
        tso,
        rx,
        queues,
    };
    let case = |name, spec, flows, v6| Case {
        name,
        spec,
        flows,
        v6,
    };
    vec![
        case("tso-plain", nic(true, true, RxMode::Plain, 1), 1, false),
        case(
            "none-verified",
            nic(false, false, RxMode::Verified, 1),
            1,
            false,
        ),
        case(
            "csum-verified",
            nic(true, false, RxMode::Verified, 1),
            1,
            false,
        ),
        case("lro", nic(true, true, RxMode::Lro, 1), 1, false),
        case("csum-lro", nic(true, false, RxMode::Lro, 1), 1, false),
        case("lro-v6", nic(true, true, RxMode::Lro, 1), 1, true),
        case("hw-gro", nic(true, true, RxMode::HwGro, 1), 1, false),
        case("lro-no-gso", nic(true, true, RxMode::LroNoGso, 1), 1, false),
        case("q4-p16", nic(true, true, RxMode::Lro, 4), 16, false),
        case("q32-p64", nic(true, true, RxMode::Lro, 32), 64, false),
    ]
}

/// The two namespaces, deleted (with the taps in them) when dropped. The
/// tests share their names, so one holds them at a time.
pub(super) struct Namespaces {
    _held: MutexGuard<'static, ()>,
}

static NAMESPACES: Mutex<()> = Mutex::new(());

impl Namespaces {
    pub(super) fn create() -> Result<Namespaces, String> {
        let held = NAMESPACES.lock().unwrap_or_else(PoisonError::into_inner);
        for ns in [NS_A, NS_B] {
            let _ = run(&["ip", "netns", "del", ns]);
        }
        let guard = Namespaces { _held: held };
        for ns in [NS_A, NS_B] {
            run(&["ip", "netns", "add", ns])?;
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(guard)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in [NS_A, NS_B] {
            let _ = run(&["ip", "netns", "del", ns]);
        }
    }
}

/// A child process killed (by its PID) and reaped when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(super) fn run(argv: &[&str]) -> Result<String, String> {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| format!("{}: {e}", argv.join(" ")))?;
    if !out.status.success() {
        return Err(format!(
            "{}: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// rx packets and rx drops of a device, from /proc/net/dev in its namespace.
fn rx_counters(ns: &str, dev: &str) -> Result<(u64, u64), String> {
    let text = run(&["ip", "netns", "exec", ns, "cat", "/proc/net/dev"])?;
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix(&format!("{dev}:")))
        .ok_or_else(|| format!("{dev} not in /proc/net/dev of {ns}"))?;
    let n: Vec<u64> = line
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    Ok((n[1], n[3]))
}

/// One counter of the Tcp line of /proc/net/snmp in a namespace.
fn tcp_mib(ns: &str, name: &str) -> Result<u64, String> {
    let text = run(&["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"])?;
    let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next().unwrap_or(""), tcp.next().unwrap_or(""));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| format!("no Tcp {name} in /proc/net/snmp"))
}

struct Outcome {
    bytes: u64,
    secs: f64,
    stats: SiliconStats,
    tap_rx: u64,
    tap_drops: u64,
    csum_errors: u64,
    in_segs: u64,
}

fn transfer(case: &Case, secs: u64) -> Result<Outcome, String> {
    let _namespaces = Namespaces::create()?;
    let silicon = Silicon::start(&case.spec, (NS_A, DEV_A), (NS_B, DEV_B))
        .map_err(|e| format!("starting the silicon: {e}"))?;
    let (a, b, prefix) = if case.v6 {
        ("fd54:78::1", "fd54:78::2", "64")
    } else {
        ("10.254.78.1", "10.254.78.2", "30")
    };
    for (ns, dev, addr) in [(NS_A, DEV_A, a), (NS_B, DEV_B, b)] {
        let cidr = format!("{addr}/{prefix}");
        let mut argv = vec!["ip", "-n", ns, "addr", "add", &cidr, "dev", dev];
        if case.v6 {
            argv.push("nodad");
        }
        run(&argv)?;
        run(&["ip", "-n", ns, "link", "set", dev, "up"])?;
        if let Ok(ns_timeout) = std::env::var("SILICON_GRO_FLUSH_NS") {
            let path = format!("/sys/class/net/{dev}/gro_flush_timeout");
            let script = format!("echo {ns_timeout} > {path}");
            run(&["ip", "netns", "exec", ns, "sh", "-c", &script])?;
        }
    }
    let server = Command::new("ip")
        .args(["netns", "exec", NS_B, "iperf3", "-s", "-1", "-B", b])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(Reaped)
        .map_err(|e| format!("iperf3 server: {e}"))?;
    thread::sleep(Duration::from_millis(500));
    let (rx0, drops0) = rx_counters(NS_B, DEV_B)?;
    let segs0 = tcp_mib(NS_B, "InSegs")?;
    let (secs_arg, flows) = (secs.to_string(), case.flows.to_string());
    let mut client = Command::new("ip")
        .args(["netns", "exec", NS_A, "iperf3", "-c", b, "-J"])
        .args(["-t", &secs_arg, "-P", &flows, "--connect-timeout", "3000"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map(Reaped)
        .map_err(|e| format!("iperf3 client: {e}"))?;
    // The report is read while iperf3 runs: with many flows it outgrows a
    // pipe's buffer, and iperf3 would block writing it.
    let stdout = client.0.stdout.take();
    let reader = thread::spawn(move || {
        let mut json = String::new();
        if let Some(mut out) = stdout {
            let _ = std::io::Read::read_to_string(&mut out, &mut json);
        }
        json
    });
    // A transfer whose frames the kernel drops stalls: give up on it.
    let deadline = Instant::now() + Duration::from_secs(secs + 15);
    while client.0.try_wait().map_err(|e| e.to_string())?.is_none() {
        if Instant::now() > deadline {
            let st = silicon.stats();
            return Err(format!(
                "the transfer stalled (iperf3 client killed)\n    a>b: {}\n    b>a: {}",
                st.a_to_b, st.b_to_a
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
    let json = reader.join().unwrap_or_default();
    let (rx1, drops1) = rx_counters(NS_B, DEV_B)?;
    let in_segs = tcp_mib(NS_B, "InSegs")?.saturating_sub(segs0);
    let csum_errors = tcp_mib(NS_B, "InCsumErrors")?;
    let stats = silicon.stats();
    drop(silicon);
    drop(server);
    let report: serde_json::Value =
        serde_json::from_str(&json).map_err(|e| format!("iperf3 output: {e}"))?;
    let received = &report["end"]["sum_received"];
    Ok(Outcome {
        bytes: received["bytes"].as_u64().unwrap_or(0),
        secs: received["seconds"].as_f64().unwrap_or(0.0),
        stats,
        tap_rx: rx1.saturating_sub(rx0),
        tap_drops: drops1.saturating_sub(drops0),
        csum_errors,
        in_segs,
    })
}

#[test]
#[ignore = "needs root and iperf3; creates namespaces toe-silicon-a and toe-silicon-b"]
fn transfers_through_every_nic_model() {
    let secs = std::env::var("SILICON_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let only = std::env::var("SILICON_CASES").ok();
    let mut stalled = Vec::new();
    for case in cases() {
        if only
            .as_ref()
            .is_some_and(|o| !o.split(',').any(|n| n == case.name))
        {
            continue;
        }
        match transfer(&case, secs) {
            Ok(o) if o.bytes > 0 => {
                let (ab, per_s) = (&o.stats.a_to_b, |n: u64| n as f64 / o.secs.max(1e-9));
                println!(
                    "{:<14} {:>6.2} Gbit/s  silicon a>b {:>7.0} frames/s written ({:.0} on the wire)  tap rx {:>7.0}/s  InSegs {:>7.0}/s  rx drops {}  InCsumErrors {}",
                    case.name,
                    o.bytes as f64 * 8.0 / o.secs / 1e9,
                    per_s(ab.written),
                    per_s(ab.wire),
                    per_s(o.tap_rx),
                    per_s(o.in_segs),
                    o.tap_drops,
                    o.csum_errors,
                );
                println!("    a>b: {ab}\n    b>a: {}", o.stats.b_to_a);
            }
            Ok(_) => stalled.push(format!("{}: no data received", case.name)),
            Err(e) => stalled.push(format!("{}: {e}", case.name)),
        }
    }
    assert!(stalled.is_empty(), "{stalled:#?}");
}

#[test]
#[ignore = "needs root; creates namespaces toe-silicon-a and toe-silicon-b"]
fn drop_is_prompt_and_removes_the_taps() {
    let _namespaces = Namespaces::create().unwrap();
    let spec = NicSpec {
        tx_csum: true,
        tso: true,
        rx: RxMode::Lro,
        queues: 4,
    };
    let silicon = Silicon::start(&spec, (NS_A, DEV_A), (NS_B, DEV_B)).unwrap();
    run(&["ip", "-n", NS_A, "link", "show", DEV_A]).unwrap();
    let started = Instant::now();
    drop(silicon);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    assert!(run(&["ip", "-n", NS_A, "link", "show", DEV_A]).is_err());
    assert!(run(&["ip", "-n", NS_B, "link", "show", DEV_B]).is_err());

    // A tap removed under the silicon stops the directions that use it.
    let silicon = Silicon::start(&spec, (NS_A, DEV_A), (NS_B, DEV_B)).unwrap();
    run(&["ip", "-n", NS_B, "link", "del", DEV_B]).unwrap();
    thread::sleep(Duration::from_millis(300));
    let stats = silicon.stats();
    assert!(stats.b_to_a.tap_vanished, "{}", stats.b_to_a);
    let started = Instant::now();
    drop(silicon);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
}
