//! `toe-agent lab`: prove the verdicts on this machine. Two namespaces
//! joined by a veth pair, a named offload configuration on each end, a TCP
//! transfer, both ends traced with the real probes, and the verdicts
//! compared with what veth on these kernels is known to do.
//!
//! Everything happens inside namespaces the lab creates and deletes (on
//! every exit path: errors, Ctrl-C, SIGTERM); nothing outside is touched.
use std::{
    io::{self, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::{
    Failure,
    collect::Collector,
    ethtool,
    iface::Iface,
    netns::{self, Netns},
    probes::{Options, Probes},
    report::Blocks,
    verdict::{self, Configured, Mechanism, Offload, Verdict},
};

pub const NS_TX: &str = "toe-lab-tx";
pub const NS_RX: &str = "toe-lab-rx";
pub const DEV_TX: &str = "lab-tx";
pub const DEV_RX: &str = "lab-rx";
const ADDR_TX: &str = "10.254.77.1";
const ADDR_RX: &str = "10.254.77.2";
const PORT: u16 = 5201;

/// ethtool -K names and the features they stand for on veth.
const TSO: &[&str] = &[
    "tx-tcp-segmentation",
    "tx-tcp-ecn-segmentation",
    "tx-tcp-mangleid-segmentation",
    "tx-tcp6-segmentation",
];
const GSO: &[&str] = &["tx-generic-segmentation"];
const TX_CSUM: &[&str] = &["tx-checksum-ip-generic", "tx-checksum-sctp"];
const SG: &[&str] = &["tx-scatter-gather", "tx-scatter-gather-fraglist"];
const GRO: &[&str] = &["rx-gro"];
const RX_CSUM: &[&str] = &["rx-checksum"];

#[derive(Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Sender,
    Receiver,
}

/// Which end an offload is judged on: transmit offloads on the sender,
/// receive offloads on the receiver.
fn side(o: Offload) -> Side {
    match o {
        Offload::TxSegmentation | Offload::TxChecksum => Side::Sender,
        _ => Side::Receiver,
    }
}

pub struct LabConfig {
    pub name: &'static str,
    pub description: &'static str,
    /// Feature groups turned on/off at the sender and the receiver.
    pub sender: &'static [(&'static [&'static str], bool)],
    pub receiver: &'static [(&'static [&'static str], bool)],
    /// What veth on these kernels does (KERNEL-NOTES.md), per offload:
    /// mechanism and mismatch, in `Offload::ALL` order.
    pub expected: [(Mechanism, bool); 5],
}

use Mechanism::{Deferred as Def, Off, Software as Sw};

pub const CONFIGS: &[LabConfig] = &[
    LabConfig {
        name: "all-on",
        description: "every offload on (receiver GRO on)",
        sender: &[],
        receiver: &[(GRO, true)],
        expected: [
            (Def, false),
            (Def, false),
            (Def, false),
            (Def, false),
            (Off, false),
        ],
    },
    LabConfig {
        name: "gro-no-tso",
        description: "sender TSO off, receiver GRO on: software GSO, then software GRO on the NAPI path",
        sender: &[(TSO, false)],
        receiver: &[(GRO, true)],
        expected: [
            (Sw, false),
            (Def, false),
            (Sw, false),
            (Def, false),
            (Off, false),
        ],
    },
    LabConfig {
        name: "no-tso-gso",
        description: "sender TSO and GSO off, receiver GRO off: TCP still builds large skbs, the kernel segments them",
        sender: &[(TSO, false), (GSO, false)],
        receiver: &[(GRO, false)],
        // TCP always builds GSO skbs (net/core/sock.c sk_setup_caps), so
        // the kernel segments in software although GSO is off: a mismatch.
        expected: [
            (Sw, true),
            (Def, false),
            (Off, false),
            (Def, false),
            (Off, false),
        ],
    },
    LabConfig {
        name: "no-txcsum-gro",
        description: "sender TX checksum off, receiver GRO on",
        sender: &[(TX_CSUM, false)],
        receiver: &[(GRO, true)],
        expected: [
            (Sw, false),
            (Sw, false),
            (Sw, false),
            (Sw, true),
            (Off, false),
        ],
    },
    LabConfig {
        name: "no-txcsum",
        description: "sender TX checksum off, receiver GRO off",
        sender: &[(TX_CSUM, false)],
        receiver: &[(GRO, false)],
        expected: [
            (Sw, false),
            (Sw, false),
            (Off, false),
            (Sw, true),
            (Off, false),
        ],
    },
    LabConfig {
        name: "rx-gro-off",
        description: "receiver GRO off, sender all on",
        sender: &[],
        receiver: &[(GRO, false)],
        expected: [
            (Def, false),
            (Def, false),
            (Def, false),
            (Def, false),
            (Off, false),
        ],
    },
    LabConfig {
        name: "all-off",
        description: "everything off at both ends",
        sender: &[(TSO, false), (GSO, false), (TX_CSUM, false), (SG, false)],
        receiver: &[(GRO, false), (RX_CSUM, false)],
        // TCP always builds GSO skbs (net/core/sock.c sk_setup_caps), so
        // the kernel segments in software although GSO is off: a mismatch.
        expected: [
            (Sw, true),
            (Sw, false),
            (Off, false),
            (Sw, false),
            (Off, false),
        ],
    },
];

pub struct LabArgs {
    pub config: Option<String>,
    pub json: bool,
    pub list: bool,
    pub duration: Duration,
}

#[derive(Serialize)]
pub struct Expected {
    pub mechanism: Mechanism,
    pub mismatch: bool,
}

#[derive(Serialize)]
pub struct Row {
    pub offload: Offload,
    pub side: Side,
    pub mechanism: Mechanism,
    pub configured: Option<Configured>,
    pub mismatch: bool,
    pub evidence: String,
    pub expected: Expected,
    pub as_expected: bool,
}

#[derive(Serialize)]
pub struct ConfigResult {
    pub name: &'static str,
    pub description: &'static str,
    pub throughput_gbps: f64,
    pub verdicts: Vec<Row>,
    pub as_expected: bool,
}

#[derive(Serialize)]
pub struct LabReport {
    pub kernel: String,
    pub duration_s: f64,
    pub configs: Vec<ConfigResult>,
    pub as_expected: bool,
}

pub(crate) fn runtime(e: impl std::fmt::Display) -> Failure {
    Failure::Runtime(e.to_string())
}

pub fn run(args: LabArgs) -> Result<(), Failure> {
    if args.list {
        for c in CONFIGS {
            println!("{:<14} {}", c.name, c.description);
        }
        return Ok(());
    }
    let configs: Vec<&LabConfig> = match &args.config {
        None => CONFIGS.iter().collect(),
        Some(name) => vec![CONFIGS.iter().find(|c| c.name == name).ok_or_else(|| {
            let names: Vec<&str> = CONFIGS.iter().map(|c| c.name).collect();
            Failure::BadInput(format!(
                "no lab configuration '{name}'; there are: {}",
                names.join(", ")
            ))
        })?],
    };
    let (tx, rx, stop) = prepare()?;
    let mut results = Vec::new();
    for config in configs {
        if !args.json {
            eprintln!(
                "toe-agent lab: running {} ({:.1} s)",
                config.name,
                args.duration.as_secs_f64()
            );
        }
        let result = run_config(config, &tx, &rx, args.duration, &stop)
            .map_err(|e| runtime(format!("lab {}: {e:#}", config.name)))?;
        if stop.load(Ordering::Relaxed) {
            return Err(runtime("interrupted; the lab's namespaces were removed"));
        }
        results.push(result);
    }
    drop((tx, rx));

    let report = LabReport {
        kernel: crate::trace::kernel_release(),
        duration_s: args.duration.as_secs_f64(),
        as_expected: results.iter().all(|r| r.as_expected),
        configs: results,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(runtime)?
        );
    } else {
        print!("{}", render(&report));
    }
    if report.as_expected {
        Ok(())
    } else {
        let n: usize = report
            .configs
            .iter()
            .map(|c| c.verdicts.iter().filter(|v| !v.as_expected).count())
            .sum();
        Err(runtime(format!(
            "{n} verdicts differ from the expected table (marked ✗)"
        )))
    }
}

/// Refuse unless root and the lab's names are free; then create the two
/// namespaces (deleted when the returned guards drop) and route SIGINT and
/// SIGTERM to a flag, so that every exit path runs those drops.
pub(crate) fn prepare() -> Result<(Netns, Netns, Arc<AtomicBool>), Failure> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(runtime(
            "toe-agent lab must run as root: it creates network namespaces, configures their veth devices and loads eBPF programs",
        ));
    }
    for ns in [NS_TX, NS_RX] {
        if netns::exists(ns) {
            return Err(runtime(format!(
                "network namespace {ns} already exists: another lab is running, or one was killed (remove it with `ip netns del {ns}`)"
            )));
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(runtime)?;
    }
    let tx = Netns::create(NS_TX).map_err(runtime)?;
    let rx = Netns::create(NS_RX).map_err(runtime)?;
    Ok((tx, rx, stop))
}

/// A fresh veth pair per configuration, so every one starts from defaults.
pub(crate) fn make_pair() -> io::Result<()> {
    let _ = netns::ip(&["-n", NS_TX, "link", "del", DEV_TX]);
    netns::ip(&[
        "link", "add", DEV_TX, "netns", NS_TX, "type", "veth", "peer", "name", DEV_RX, "netns",
        NS_RX,
    ])?;
    netns::ip(&[
        "-n",
        NS_TX,
        "addr",
        "add",
        &format!("{ADDR_TX}/30"),
        "dev",
        DEV_TX,
    ])?;
    netns::ip(&[
        "-n",
        NS_RX,
        "addr",
        "add",
        &format!("{ADDR_RX}/30"),
        "dev",
        DEV_RX,
    ])?;
    netns::ip(&["-n", NS_TX, "link", "set", DEV_TX, "up"])?;
    netns::ip(&["-n", NS_RX, "link", "set", DEV_RX, "up"])
}

pub(crate) fn apply(ns: &str, dev: &str, groups: &[(&[&str], bool)]) -> anyhow::Result<()> {
    let changes: Vec<(&str, bool)> = groups
        .iter()
        .flat_map(|(names, on)| names.iter().map(move |n| (*n, *on)))
        .collect();
    if changes.is_empty() {
        return Ok(());
    }
    netns::run_in(ns, || ethtool::set_features(dev, &changes))??;
    Ok(())
}

fn iface_in(ns: &str, dev: &str) -> anyhow::Result<Iface> {
    let (index, mtu, driver) = netns::run_in(ns, || {
        (
            crate::iface::index_of(dev),
            ethtool::mtu(dev).unwrap_or(1500),
            ethtool::driver(dev).unwrap_or_default(),
        )
    })?;
    Ok(Iface {
        name: dev.to_string(),
        index: index.ok_or_else(|| anyhow::anyhow!("{dev} vanished from {ns}"))?,
        netns_ino: netns::inode(ns)?,
        class: crate::class::DeviceClass::of_driver(&driver),
        driver,
        mtu,
    })
}

fn device_in(ns: &str, iface: &Iface) -> anyhow::Result<verdict::Device> {
    // RPS is a sysfs setting the lab never makes: false.
    Ok(netns::run_in(ns, || verdict::Device {
        mtu: iface.mtu,
        driver: iface.driver.clone(),
        class: iface.class,
        features: ethtool::features(&iface.name).ok(),
        rx_queues: ethtool::rx_queues(&iface.name),
        rps: false,
        coverage: verdict::Coverage::default(),
    })?)
}

/// Bulk TCP from the sender to the receiver for `secs`; bytes received.
pub(crate) fn transfer(secs: Duration, stop: &AtomicBool) -> anyhow::Result<u64> {
    let addr: SocketAddr = format!("{ADDR_RX}:{PORT}").parse()?;
    // A socket stays in the namespace it was created in, whichever thread
    // uses it afterwards: only creation happens inside run_in.
    let listener = netns::run_in(NS_RX, || TcpListener::bind(addr))??;
    std::thread::scope(|s| {
        let server = s.spawn(move || -> io::Result<u64> {
            let (mut conn, _) = listener.accept()?;
            conn.set_read_timeout(Some(Duration::from_secs(5)))?;
            let mut buf = vec![0u8; 256 * 1024];
            let mut total = 0u64;
            loop {
                match conn.read(&mut buf)? {
                    0 => return Ok(total),
                    n => total += n as u64,
                }
            }
        });
        let mut client = netns::run_in(NS_TX, || {
            TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        })??;
        client.set_write_timeout(Some(Duration::from_secs(5)))?;
        let chunk = vec![0x5au8; 128 * 1024];
        let deadline = Instant::now() + secs;
        while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
            client.write_all(&chunk)?;
        }
        drop(client);
        let received = server
            .join()
            .map_err(|_| anyhow::anyhow!("receiver thread panicked"))??;
        Ok(received)
    })
}

fn run_config(
    config: &LabConfig,
    _tx: &Netns,
    _rx: &Netns,
    secs: Duration,
    stop: &AtomicBool,
) -> anyhow::Result<ConfigResult> {
    make_pair()?;
    apply(NS_TX, DEV_TX, config.sender)?;
    apply(NS_RX, DEV_RX, config.receiver)?;
    let sender = iface_in(NS_TX, DEV_TX)?;
    let receiver = iface_in(NS_RX, DEV_RX)?;
    let tx_probes = Probes::attach(&sender, &Options::default())?;
    let rx_probes = Probes::attach(&receiver, &Options::default())?;
    let mut tx_collect = Collector::new(tx_probes.source())?;
    let mut rx_collect = Collector::new(rx_probes.source())?;
    let started = Instant::now();
    let bytes = transfer(secs, stop)?;
    let elapsed = started.elapsed().as_secs_f64();
    let tx_blocks = Blocks::from_totals(&tx_collect.interval()?);
    let rx_blocks = Blocks::from_totals(&rx_collect.interval()?);
    drop((tx_probes, rx_probes));

    let tx_dev = device_in(NS_TX, &sender)?;
    let rx_dev = device_in(NS_RX, &receiver)?;
    let judged: Vec<Verdict> = Offload::ALL
        .iter()
        .map(|&o| {
            match side(o) {
                Side::Sender => verdict::judge(&tx_blocks, &tx_dev),
                Side::Receiver => verdict::judge(&rx_blocks, &rx_dev),
            }
            .into_iter()
            .find(|v| v.offload == o)
            .expect("judge covers every offload")
        })
        .collect();
    let verdicts: Vec<Row> = judged
        .into_iter()
        .zip(config.expected)
        .map(|(v, (mechanism, mismatch))| Row {
            side: side(v.offload),
            as_expected: v.mechanism == mechanism && v.mismatch == mismatch,
            expected: Expected {
                mechanism,
                mismatch,
            },
            offload: v.offload,
            mechanism: v.mechanism,
            configured: v.configured,
            mismatch: v.mismatch,
            evidence: v.evidence,
        })
        .collect();
    Ok(ConfigResult {
        name: config.name,
        description: config.description,
        throughput_gbps: bytes as f64 * 8.0 / elapsed / 1e9,
        as_expected: verdicts.iter().all(|v| v.as_expected),
        verdicts,
    })
}

pub fn render(report: &LabReport) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "toe-agent lab: veth pair between namespaces {NS_TX} and {NS_RX}, {:.1} s of TCP per configuration, kernel {}",
        report.duration_s, report.kernel
    );
    for c in &report.configs {
        let _ = writeln!(
            o,
            "\n{} ({}): {:.1} Gbit/s",
            c.name, c.description, c.throughput_gbps
        );
        let _ = writeln!(
            o,
            "  {:<16} {:<9} {:<14} {:<34} {:<9} expected",
            "offload", "side", "mechanism", "configured", "mismatch"
        );
        for v in &c.verdicts {
            let configured = v
                .configured
                .as_ref()
                .map(|c| {
                    format!(
                        "{} {}{}",
                        c.feature,
                        if c.active { "on" } else { "off" },
                        if c.requested != c.active {
                            " (requested)"
                        } else {
                            ""
                        }
                    )
                })
                .unwrap_or_else(|| "?".into());
            let _ = writeln!(
                o,
                "  {:<16} {:<9} {:<14} {:<34} {:<9} {} {}",
                v.offload.name(),
                if v.side == Side::Sender {
                    "sender"
                } else {
                    "receiver"
                },
                v.mechanism.name(),
                configured,
                if v.mismatch { "MISMATCH" } else { "no" },
                v.expected.mechanism.name(),
                if v.as_expected { "✓" } else { "✗" }
            );
            let _ = writeln!(o, "      {}", v.evidence);
        }
    }
    let _ = writeln!(
        o,
        "\n{}",
        if report.as_expected {
            "every verdict as expected"
        } else {
            "some verdicts differ from the expected table (✗)"
        }
    );
    o
}
