//! `toe-agent lab`: prove the verdicts on this machine. Two namespaces
//! joined by a veth pair or by an emulated NIC (two taps and the userspace
//! silicon between them), a named offload configuration, a TCP transfer,
//! both ends traced with the real probes, and the verdicts compared with
//! what the kernel and the emulated drivers are known to do
//! ([`configs::CONFIGS`], each expectation with its source).
//!
//! Everything happens inside namespaces the lab creates and deletes (on
//! every exit path: errors, Ctrl-C, SIGTERM); nothing outside is touched.
use std::{
    io::{self, Write},
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
    kernel::attach::Options,
    kernel::session::Session,
    model::class::DeviceClass,
    model::period::Sampling,
    model::verdict::{self, Configured, Mechanism, Offload, Verdict},
    sys::ethtool,
    sys::iface::Iface,
    sys::netns::{self, Netns},
};

pub(crate) const NS_TX: &str = "toe-lab-tx";
pub(crate) const NS_RX: &str = "toe-lab-rx";
pub(crate) const DEV_TX: &str = "lab-tx";
pub(crate) const DEV_RX: &str = "lab-rx";
const ADDR_TX: &str = "10.254.77.1";
const ADDR_RX: &str = "10.254.77.2";
const PORT: u16 = 5201;

mod configs;
mod features;
mod impair;
mod silicon;

pub(crate) use configs::{CONFIGS, LabConfig, Link};
use silicon::Silicon;

#[derive(Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Side {
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

pub struct LabArgs {
    pub config: Option<String>,
    pub json: bool,
    pub list: bool,
    pub duration: Duration,
    /// `--sample`: the share of time the per-segment hooks run.
    pub sample: f64,
}

#[derive(Serialize)]
pub(crate) struct Expected {
    pub mechanism: Mechanism,
    pub mismatch: bool,
    /// The kernel or driver code that makes it so.
    pub because: &'static str,
}

#[derive(Serialize)]
pub(crate) struct Row {
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
pub(crate) struct ConfigResult {
    pub name: &'static str,
    pub description: &'static str,
    /// `veth` or `emulated_nic`.
    pub link: &'static str,
    /// The class the two ends were judged as.
    pub device_class: DeviceClass,
    pub flows: usize,
    pub throughput_gbps: f64,
    /// What the emulated silicon did (frames per second, segmented,
    /// coalesced, per queue); absent on veth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub silicon: Option<SiliconReport>,
    /// Retransmits and drops: what the transfer cost TCP.
    pub tcp: impair::TcpReport,
    /// How the receiver's per-segment probes were sampled (the sender's
    /// windows are alike).
    pub sample: Sampling,
    pub verdicts: Vec<Row>,
    pub as_expected: bool,
}

/// The emulated link's work in the data direction (sender to receiver).
#[derive(Serialize)]
pub(crate) struct SiliconReport {
    pub frames_per_s: f64,
    pub read: u64,
    pub segmented: u64,
    pub segments: u64,
    pub coalesced_in: u64,
    pub coalesced_out: u64,
    pub written: u64,
    pub written_per_queue: Vec<u64>,
    pub dropped: u64,
}

#[derive(Serialize)]
pub(crate) struct LabReport {
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
            println!("{:<15} {}", c.name, c.description);
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
        let result = run_config(config, args.duration, args.sample, &stop)
            .map_err(|e| runtime(format!("lab {}: {e:#}", config.name)))?;
        if stop.load(Ordering::Relaxed) {
            return Err(runtime("interrupted; the lab's namespaces were removed"));
        }
        results.push(result);
    }
    drop((tx, rx));

    let report = LabReport {
        kernel: crate::sys::host::kernel_release(),
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
            "toe-agent lab must run as root: it creates network namespaces, configures their devices and loads eBPF programs",
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

/// The link a configuration runs on, alive while this lives: the emulated
/// NIC's taps vanish when its silicon is dropped; a veth pair stays until
/// the next configuration replaces it or its namespaces go.
pub(crate) struct LinkGuard {
    silicon: Option<Silicon>,
}

/// Build the configuration's link between the lab's namespaces, fresh, so
/// that every configuration starts from the defaults.
pub(crate) fn set_up(config: &LabConfig) -> anyhow::Result<LinkGuard> {
    let _ = netns::ip(&["-n", NS_TX, "link", "del", DEV_TX]);
    impair::set_up(config.impair)?;
    let silicon = match &config.link {
        Link::Veth { sender, receiver } => {
            netns::ip(&[
                "link", "add", DEV_TX, "netns", NS_TX, "type", "veth", "peer", "name", DEV_RX,
                "netns", NS_RX,
            ])?;
            apply(NS_TX, DEV_TX, sender)?;
            apply(NS_RX, DEV_RX, receiver)?;
            None
        }
        Link::Nic(nic) => Some(Silicon::start(&nic.spec, (NS_TX, DEV_TX), (NS_RX, DEV_RX))?),
    };
    for (ns, dev, addr) in [(NS_TX, DEV_TX, ADDR_TX), (NS_RX, DEV_RX, ADDR_RX)] {
        netns::ip(&["-n", ns, "addr", "add", &format!("{addr}/30"), "dev", dev])?;
        netns::ip(&["-n", ns, "link", "set", dev, "up"])?;
    }
    if silicon.is_some() {
        // A tap's NAPI poll takes the frames written since the last one;
        // without a flush timeout napi_complete_done() (net/core/dev.c)
        // flushes GRO at the end of every poll, and frames written one at
        // a time would never meet. A NIC interrupt delivers a burst per
        // poll; the timeout lets GRO hold a flow across polls the same way.
        for (ns, dev) in [(NS_TX, DEV_TX), (NS_RX, DEV_RX)] {
            netns::exec(
                ns,
                &[
                    "sh",
                    "-c",
                    &format!("echo 50000 > /sys/class/net/{dev}/gro_flush_timeout"),
                ],
            )?;
        }
    }
    Ok(LinkGuard { silicon })
}

pub(crate) fn apply(ns: &str, dev: &str, groups: &[(&[&str], bool)]) -> anyhow::Result<()> {
    let changes: Vec<(&str, bool)> = groups
        .iter()
        .flat_map(|(names, on)| names.iter().map(move |n| (*n, *on)))
        .collect();
    if changes.is_empty() {
        return Ok(());
    }
    netns::run_in(ns, || features::set(dev, &changes))??;
    Ok(())
}

/// The traced device in namespace `ns`, judged as `class`.
fn iface_in(ns: &str, dev: &str, class: DeviceClass) -> anyhow::Result<Iface> {
    let (index, mtu, driver) = netns::run_in(ns, || {
        (
            crate::sys::iface::index_of(dev),
            ethtool::mtu(dev).unwrap_or(1500),
            ethtool::driver(dev).unwrap_or_default(),
        )
    })?;
    Ok(Iface {
        name: dev.to_string(),
        index: index.ok_or_else(|| anyhow::anyhow!("{dev} vanished from {ns}"))?,
        netns_ino: netns::inode(ns)?,
        class,
        driver,
        mtu,
    })
}

/// What the verdicts know of the device. An emulated NIC's receive
/// features are the ones its model declares (see [`configs::Nic`]).
fn device_in(ns: &str, iface: &Iface, link: &Link) -> anyhow::Result<verdict::Device> {
    // RPS is a sysfs setting the lab never makes: false.
    let mut dev = netns::run_in(ns, || verdict::Device {
        mtu: iface.mtu,
        driver: iface.driver.clone(),
        class: iface.class,
        features: ethtool::features(&iface.name).ok(),
        rx_queues: ethtool::rx_queues(&iface.name),
        rps: false,
        coverage: verdict::Coverage::default(),
    })?;
    if let (Link::Nic(nic), Some(f)) = (link, dev.features.as_mut()) {
        for (name, on) in nic.declares {
            f.declare(name, *on);
        }
        dev.rx_queues = Some(nic.spec.queues as u32);
    }
    Ok(dev)
}

/// Bulk TCP from the sender to the receiver over `flows` connections for
/// `secs`; bytes received.
pub(crate) fn transfer(secs: Duration, stop: &AtomicBool, flows: usize) -> anyhow::Result<u64> {
    transfer_to(secs, stop, flows, None)
}

/// [`transfer`] to a receiver that reads at most `rate` bytes a second.
fn transfer_to(
    secs: Duration,
    stop: &AtomicBool,
    flows: usize,
    rate: Option<u64>,
) -> anyhow::Result<u64> {
    let addr: SocketAddr = format!("{ADDR_RX}:{PORT}").parse()?;
    // A socket stays in the namespace it was created in, whichever thread
    // uses it afterwards: only creation happens inside run_in.
    let listener = netns::run_in(NS_RX, || TcpListener::bind(addr))??;
    if rate.is_some() {
        impair::small_buffer(&listener)?;
    }
    let deadline = Instant::now() + secs;
    std::thread::scope(|s| {
        let server = s.spawn(move || -> io::Result<u64> {
            std::thread::scope(|s| {
                let mut readers = Vec::new();
                for _ in 0..flows {
                    let (conn, _) = listener.accept()?;
                    readers.push(s.spawn(move || impair::drain(conn, rate)));
                }
                readers.into_iter().try_fold(0u64, |total, r| {
                    let n = r
                        .join()
                        .map_err(|_| io::Error::other("receiver thread panicked"))??;
                    Ok(total + n)
                })
            })
        });
        let senders: Vec<_> = (0..flows)
            .map(|_| {
                s.spawn(move || -> anyhow::Result<()> {
                    let mut client = netns::run_in(NS_TX, || {
                        TcpStream::connect_timeout(&addr, Duration::from_secs(5))
                    })??;
                    client.set_write_timeout(Some(Duration::from_secs(5)))?;
                    let chunk = vec![0x5au8; 128 * 1024];
                    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
                        client.write_all(&chunk)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for t in senders {
            t.join()
                .map_err(|_| anyhow::anyhow!("sender thread panicked"))??;
        }
        let received = server
            .join()
            .map_err(|_| anyhow::anyhow!("receiver thread panicked"))??;
        Ok(received)
    })
}

pub(crate) fn run_config(
    config: &LabConfig,
    secs: Duration,
    sample: f64,
    stop: &AtomicBool,
) -> anyhow::Result<ConfigResult> {
    let link = set_up(config)?;
    let class = if config.is_emulated() {
        DeviceClass::Physical
    } else {
        DeviceClass::Virtual
    };
    let sender = iface_in(NS_TX, DEV_TX, class)?;
    let receiver = iface_in(NS_RX, DEV_RX, class)?;
    let opts = Options {
        sample,
        ..Options::default()
    };
    let mut tx_session = Session::attach(sender.clone(), &opts)?;
    let mut rx_session = Session::attach(receiver.clone(), &opts)?;
    let started = Instant::now();
    let rate = match config.impair {
        configs::Impair::SlowReader(rate) => Some(rate),
        _ => None,
    };
    let bytes = transfer_to(secs, stop, config.flows, rate)?;
    let elapsed = started.elapsed().as_secs_f64();
    // The counts as a whole for what TCP and the link did, the sampling
    // windows' for the verdicts.
    let (tx_blocks, tx_sampled) = tx_session.interval()?.blocks();
    let (rx_blocks, rx_sampled) = rx_session.interval()?.blocks();
    drop((tx_session, rx_session));
    let silicon = link.silicon.as_ref().map(|s| silicon_report(s, elapsed));
    let tcp = impair::TcpReport::of(&tx_blocks, &rx_blocks, impair::nft_dropped(config.impair)?);

    let tx_dev = device_in(NS_TX, &sender, &config.link)?;
    let rx_dev = device_in(NS_RX, &receiver, &config.link)?;
    drop(link);
    let tx_verdicts = verdict::judge(&tx_sampled, &tx_dev);
    let rx_verdicts = verdict::judge(&rx_sampled, &rx_dev);
    let verdicts: Vec<Row> = Offload::ALL
        .iter()
        .zip(&config.expected)
        .map(|(&o, want)| {
            let judged = match side(o) {
                Side::Sender => &tx_verdicts,
                Side::Receiver => &rx_verdicts,
            };
            let v = judged
                .iter()
                .find(|v| v.offload == o)
                .cloned()
                .expect("judge covers every offload");
            row(v, want)
        })
        .collect();
    Ok(ConfigResult {
        name: config.name,
        description: config.description,
        link: if config.is_emulated() {
            "emulated_nic"
        } else {
            "veth"
        },
        device_class: class,
        flows: config.flows,
        throughput_gbps: bytes as f64 * 8.0 / elapsed / 1e9,
        silicon,
        tcp,
        sample: rx_blocks.sample,
        as_expected: verdicts.iter().all(|v| v.as_expected),
        verdicts,
    })
}

fn row(v: Verdict, want: &configs::Expect) -> Row {
    Row {
        side: side(v.offload),
        as_expected: v.mechanism == want.mechanism && v.mismatch == want.mismatch,
        expected: Expected {
            mechanism: want.mechanism,
            mismatch: want.mismatch,
            because: want.because,
        },
        offload: v.offload,
        mechanism: v.mechanism,
        configured: v.configured,
        mismatch: v.mismatch,
        evidence: v.evidence,
    }
}

fn silicon_report(s: &Silicon, secs: f64) -> SiliconReport {
    let p = s.stats().a_to_b;
    SiliconReport {
        frames_per_s: if secs > 0.0 {
            p.wire as f64 / secs
        } else {
            0.0
        },
        read: p.read,
        segmented: p.gso_frames,
        segments: p.gso_segments,
        coalesced_in: p.coalesced_in,
        coalesced_out: p.coalesced_out,
        written: p.written,
        written_per_queue: p.written_per_queue,
        dropped: p.malformed + p.rejected + p.link_down + p.write_errors,
    }
}

pub(crate) fn render(report: &LabReport) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "toe-agent lab: namespaces {NS_TX} and {NS_RX}, {:.1} s of TCP per configuration, kernel {}",
        report.duration_s, report.kernel
    );
    for c in &report.configs {
        let _ = writeln!(
            o,
            "\n{} ({}): {:.1} Gbit/s over {} flow{}, judged as {}",
            c.name,
            c.description,
            c.throughput_gbps,
            c.flows,
            if c.flows == 1 { "" } else { "s" },
            c.device_class
        );
        if let Some(s) = &c.silicon {
            let _ = writeln!(
                o,
                "  silicon: {:.0} wire frames/s, {} GSO frames segmented into {}, {} frames merged into {}",
                s.frames_per_s, s.segmented, s.segments, s.coalesced_in, s.coalesced_out
            );
        }
        let _ = writeln!(o, "  {}", c.tcp.line());
        let _ = writeln!(
            o,
            "  {:<16} {:<9} {:<14} {:<34} {:<9} expected",
            "offload", "side", "mechanism", "configured", "mismatch"
        );
        for v in &c.verdicts {
            render_row(&mut o, v);
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

fn render_row(o: &mut String, v: &Row) {
    use std::fmt::Write as _;
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
    if !v.as_expected {
        let _ = writeln!(o, "      expected because: {}", v.expected.because);
    }
}
