//! `toe-agent bench` (run by `cargo xtask bench`): what tracing costs the
//! traffic it traces, measured on the lab's veth pair.
//!
//! The agent under test is this very binary, started as `trace` in the
//! receiver's namespace exactly as a user would start it; the benchmark
//! watches it from outside (/proc, the kernel's BPF statistics).
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use serde::Serialize;

use crate::{
    Failure,
    cmd::lab::{self, CONFIGS, DEV_RX, NS_RX, runtime},
    kernel::overhead,
};

pub struct BenchArgs {
    pub pairs: usize,
    pub duration: Duration,
    pub out: PathBuf,
}

/// Targets from the overhead issues, checked in the closing table.
const TARGET_NS_PER_RUN: f64 = 30.0;
/// A per-skb program's own work: ns per run above an empty program's.
const TARGET_NS_ABOVE_FLOOR: f64 = 30.0;
const TARGET_RATIO: f64 = 0.98;
/// Programs that ran fewer times than this have no meaningful mean.
const MIN_RUNS_FOR_A_MEAN: u64 = 1_000;
const TARGET_CPU_1S: f64 = 1.0;
const TARGET_CPU_100MS: f64 = 5.0;
const TARGET_RSS: u64 = 32 * 1024 * 1024;
const TARGET_STARTUP_MS: f64 = 500.0;

#[derive(Serialize)]
pub(crate) struct Throughput {
    pub config: &'static str,
    /// What ran in the "on" runs: `agent` (the default: every probe, the
    /// per-segment ones sampled), `agent-whole` (`trace --sample 1`),
    /// `agent-per-skb` (`trace --per-skb`),
    /// `empty` (an empty program on each of the same hooks: the share of
    /// the loss that is the kernel's tracepoint dispatch, not our code) or
    /// `empty-per-skb` (the same, leaving out the per-segment hooks).
    pub probes: &'static str,
    pub off_gbps: Vec<f64>,
    pub on_gbps: Vec<f64>,
    pub ratios: Vec<f64>,
    pub median_ratio: f64,
}

#[derive(Serialize)]
pub(crate) struct ProgramFigures {
    pub name: String,
    pub runs: u64,
    pub runs_per_s: f64,
    /// As the kernel's BPF statistics measure it: the program and one of
    /// the two clock reads the statistics add.
    pub ns_per_run: f64,
    /// `ns_per_run` less an empty program's in the same run: the program's
    /// own work, without the statistics' clock read.
    pub ns_above_empty: f64,
    pub per_segment: bool,
}

/// Each lab configuration's verdicts with the default sampling and with
/// every packet (`--sample 1`).
#[derive(Serialize)]
pub(crate) struct VerdictCheck {
    pub config: &'static str,
    pub sampled: Vec<String>,
    pub whole: Vec<String>,
    pub same: bool,
}

#[derive(Serialize)]
pub(crate) struct Userspace {
    pub interval_s: f64,
    pub cpu_pct: f64,
    pub peak_rss_bytes: u64,
}

/// What a bench run measured (target/bench/overhead.json).
#[derive(Serialize)]
pub(crate) struct Figures {
    pub kernel: String,
    pub cpus: usize,
    pub transfer_s: f64,
    pub throughput: Vec<Throughput>,
    pub programs: Vec<ProgramFigures>,
    pub events_per_s: f64,
    pub mean_ns_per_run: f64,
    /// An empty tp_btf program alone on napi_gro_receive_entry: the floor.
    pub empty_program_ns_per_run: f64,
    /// The probes' building blocks, each alone on the same hook.
    pub building_blocks: Vec<BuildingBlock>,
    /// Mean ns per run over a short and a long run: independent of run length?
    pub ns_per_run_by_length: Vec<(f64, f64)>,
    pub userspace: Vec<Userspace>,
    pub startup_ms: f64,
    pub detach_ms: f64,
    pub verdicts: Vec<VerdictCheck>,
    pub targets: Vec<Target>,
}

#[derive(Serialize)]
pub(crate) struct Target {
    pub name: &'static str,
    pub target: String,
    pub measured: String,
    pub met: bool,
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// The agent, tracing the receiver, started as a user would.
struct Agent {
    child: Child,
    ndjson: PathBuf,
    started: Instant,
    startup: Duration,
}

impl Agent {
    fn start(interval: &str, dir: &Path, extra: &[&str]) -> anyhow::Result<Agent> {
        let exe = std::env::current_exe()?;
        let ndjson = dir.join("bench-agent.ndjson");
        let _ = std::fs::remove_file(&ndjson);
        let started = Instant::now();
        let child = Command::new("ip")
            .args(["netns", "exec", NS_RX])
            .arg(exe)
            .args([
                "trace",
                "--iface",
                DEV_RX,
                "--interval",
                interval,
                "--ndjson",
            ])
            .arg(&ndjson)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let mut agent = Agent {
            child,
            ndjson,
            started,
            startup: Duration::ZERO,
        };
        // The header is written once every probe is attached.
        while std::fs::read_to_string(&agent.ndjson)
            .map(|s| s.lines().count())
            .unwrap_or(0)
            < 1
        {
            if agent.started.elapsed() > Duration::from_secs(20) {
                anyhow::bail!("the agent did not attach within 20 s");
            }
            if let Some(status) = agent.child.try_wait()? {
                anyhow::bail!("the agent exited during start-up ({status})");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        agent.startup = agent.started.elapsed();
        Ok(agent)
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// CPU time of the agent so far, ns: the sum over its threads of the
    /// first field of /proc/<pid>/task/<tid>/schedstat (time on CPU, ns),
    /// which unlike /proc/<pid>/stat is not rounded to clock ticks.
    fn cpu_ns(&self) -> u64 {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{}/task", self.pid())) else {
            return 0;
        };
        tasks
            .filter_map(|t| t.ok())
            .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }

    /// SIGTERM, and how long until it is gone (detach, final summary).
    fn stop(mut self) -> anyhow::Result<Duration> {
        let t = Instant::now();
        // SAFETY: kill(2) on the child we spawned and have not reaped.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait()?;
        if !status.success() {
            anyhow::bail!("the agent exited with {status}");
        }
        Ok(t.elapsed())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn gbps(bytes: u64, secs: f64) -> f64 {
    bytes as f64 * 8.0 / secs / 1e9
}

/// Build the lab link of configuration `name`; it lasts while the guard does.
fn configure(name: &str) -> anyhow::Result<lab::LinkGuard> {
    let config = CONFIGS
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| anyhow::anyhow!("no config {name}"))?;
    lab::set_up(config)
}

/// Run count and total run time of one program, since it was loaded.
struct ProgramCost {
    id: u32,
    name: String,
    run_count: u64,
    run_time_ns: u64,
}

/// Our programs among everything loaded. The kernel keeps 15 characters
/// of a name (BPF_OBJ_NAME_LEN, include/uapi/linux/bpf.h) and several of
/// ours share them (napi_gro_receive_entry and _exit; netif_receive_skb
/// and its _entry and _list_entry), so each is told apart by its id: the
/// agent loads its programs in the order of the probe list, and the kernel
/// numbers programs in the order they load (kernel/bpf/syscall.c,
/// bpf_prog_alloc_id()).
fn our_costs() -> Vec<ProgramCost> {
    let hooks = crate::probes::btf_hooks();
    let mut ours: Vec<ProgramCost> = aya::programs::loaded_programs()
        .filter_map(|p| p.ok())
        .filter_map(|info| {
            let short = info.name_as_str()?.to_string();
            (!short.is_empty() && hooks.iter().any(|h| h.starts_with(&short))).then(|| {
                ProgramCost {
                    id: info.id(),
                    name: short,
                    run_count: info.run_count(),
                    run_time_ns: info.run_time().as_nanos() as u64,
                }
            })
        })
        .collect();
    ours.sort_by_key(|p| p.id);
    let mut taken: BTreeMap<String, usize> = BTreeMap::new();
    for p in &mut ours {
        let k = taken.entry(p.name.clone()).or_default();
        if let Some(full) = hooks.iter().filter(|h| h.starts_with(&p.name)).nth(*k) {
            p.name = full.to_string();
        }
        *k += 1;
    }
    ours
}

fn cost_delta(before: &[ProgramCost], after: &[ProgramCost], secs: f64) -> Vec<ProgramFigures> {
    after
        .iter()
        .map(|a| {
            let b = before.iter().find(|b| b.id == a.id);
            let runs = a.run_count - b.map_or(0, |b| b.run_count);
            let time = a.run_time_ns - b.map_or(0, |b| b.run_time_ns);
            ProgramFigures {
                per_segment: crate::probes::is_per_segment(&a.name),
                name: a.name.clone(),
                runs,
                runs_per_s: runs as f64 / secs,
                ns_per_run: if runs == 0 {
                    0.0
                } else {
                    time as f64 / runs as f64
                },
                ns_above_empty: 0.0,
            }
        })
        .filter(|p| p.runs > 0)
        .collect()
}

fn mean_ns(p: &[ProgramFigures]) -> f64 {
    let runs: u64 = p.iter().map(|p| p.runs).sum();
    let time: f64 = p.iter().map(|p| p.ns_per_run * p.runs as f64).sum();
    if runs == 0 { 0.0 } else { time / runs as f64 }
}

/// The bench's own programs (toe-agent-ebpf/src/baseline.rs): an empty
/// one, then the building blocks of the probes, each alone.
pub(crate) const BASELINES: [&str; 4] = [
    "baseline_empty",
    "baseline_slot",
    "baseline_clock",
    "baseline_read",
];

/// What each building block costs: ns per run, and above the empty one.
#[derive(Serialize)]
pub(crate) struct BuildingBlock {
    pub name: &'static str,
    pub what: &'static str,
    pub ns_per_run: f64,
    pub ns_above_empty: f64,
}

/// ns per run of the program `name` (one of [`BASELINES`]), attached
/// alone to the per-segment hook during a transfer (BPF statistics
/// already on).
fn baseline_cost(name: &str, secs: Duration, stop: &AtomicBool) -> anyhow::Result<f64> {
    let mut ebpf = aya::EbpfLoader::new().load(crate::kernel::attach::OBJECT)?;
    let btf = aya::Btf::from_sys_fs()?;
    let prog: &mut aya::programs::BtfTracePoint = ebpf
        .program_mut(name)
        .ok_or_else(|| anyhow::anyhow!("{name} missing from the object"))?
        .try_into()?;
    prog.load("napi_gro_receive_entry", &btf)?;
    prog.attach()?;
    lab::transfer(secs, stop, 1)?;
    let info = prog.info()?;
    let runs = info.run_count().max(1);
    Ok(info.run_time().as_nanos() as f64 / runs as f64)
}

/// An empty program on every hook of the default set, so that a transfer
/// pays the dispatch (tracepoint → bpf_trace_runN → program) and nothing
/// else. aya loads a program once per object, hence one object per hook.
fn attach_empty_programs(per_segment: bool) -> anyhow::Result<Vec<aya::Ebpf>> {
    let btf = aya::Btf::from_sys_fs()?;
    crate::probes::btf_hooks()
        .into_iter()
        .filter(|h| per_segment || !crate::probes::is_per_segment(h))
        .map(|hook| {
            let mut ebpf = aya::EbpfLoader::new().load(crate::kernel::attach::OBJECT)?;
            let prog: &mut aya::programs::BtfTracePoint = ebpf
                .program_mut("baseline_empty")
                .ok_or_else(|| anyhow::anyhow!("baseline_empty missing from the object"))?
                .try_into()?;
            prog.load(hook, &btf)?;
            prog.attach()?;
            Ok(ebpf)
        })
        .collect()
}

/// What the "on" half of a throughput pair runs.
#[derive(Clone, Copy)]
enum Load {
    /// `trace`, the default: the per-segment probes sampled.
    Agent,
    /// `trace --sample 1`: every probe on every packet.
    AgentWhole,
    /// `trace --per-skb`.
    AgentPerSkb,
    /// An empty program on each hook of the default set.
    Empty,
    /// An empty program on each hook that fires once per skb only: what a
    /// probe set without the per-segment hooks could cost at best.
    EmptyPerSkb,
}

impl Load {
    fn name(self) -> &'static str {
        match self {
            Load::Agent => "agent",
            Load::AgentWhole => "agent-whole",
            Load::AgentPerSkb => "agent-per-skb",
            Load::Empty => "empty",
            Load::EmptyPerSkb => "empty-per-skb",
        }
    }
}

fn check(stop: &AtomicBool) -> anyhow::Result<()> {
    if stop.load(Ordering::Relaxed) {
        anyhow::bail!("interrupted");
    }
    Ok(())
}

pub fn run(args: BenchArgs) -> Result<(), Failure> {
    let out_dir = args
        .out
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| Failure::BadInput(format!("cannot create {}: {e}", out_dir.display())))?;
    let (tx, rx, stop) = lab::prepare()?;
    let report = measure(&args, &out_dir, &stop).map_err(|e| runtime(format!("bench: {e:#}")));
    drop((tx, rx));
    let report = report?;
    let json = serde_json::to_string_pretty(&report).map_err(runtime)?;
    std::fs::write(&args.out, json + "\n")
        .map_err(|e| runtime(format!("writing {}: {e}", args.out.display())))?;
    print!("{}", render(&report));
    println!("\nwritten to {}", args.out.display());
    Ok(())
}

/// What the agent's own runs showed besides throughput.
#[derive(Default)]
struct AgentRuns {
    startups_ms: Vec<f64>,
    detaches_ms: Vec<f64>,
    cpu_pct: Vec<f64>,
    peak_rss: u64,
}

/// One throughput series: `pairs` transfers without and with `load`.
fn throughput(
    args: &BenchArgs,
    dir: &Path,
    stop: &AtomicBool,
    (config, load): (&'static str, Load),
    runs: &mut AgentRuns,
) -> anyhow::Result<Throughput> {
    let secs = args.duration.as_secs_f64();
    let _link = configure(config)?;
    eprintln!(
        "bench: {config}: {} pairs of {secs:.1} s, off then {}",
        args.pairs,
        load.name()
    );
    lab::transfer(Duration::from_millis(500), stop, 1)?; // warm up
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for _ in 0..args.pairs {
        check(stop)?;
        off.push(gbps(lab::transfer(args.duration, stop, 1)?, secs));
        match load {
            Load::Agent => {
                let agent = Agent::start("1", dir, &[])?;
                runs.startups_ms.push(agent.startup.as_secs_f64() * 1e3);
                let cpu0 = agent.cpu_ns();
                let t0 = Instant::now();
                on.push(gbps(lab::transfer(args.duration, stop, 1)?, secs));
                let cpu = agent.cpu_ns() - cpu0;
                runs.cpu_pct
                    .push(100.0 * cpu as f64 / t0.elapsed().as_nanos() as f64);
                runs.peak_rss = runs.peak_rss.max(overhead::rss_bytes(&agent.pid()).1);
                runs.detaches_ms.push(agent.stop()?.as_secs_f64() * 1e3);
            }
            Load::AgentWhole | Load::AgentPerSkb => {
                let flags: &[&str] = match load {
                    Load::AgentWhole => &["--sample", "1"],
                    _ => &["--per-skb"],
                };
                let agent = Agent::start("1", dir, flags)?;
                on.push(gbps(lab::transfer(args.duration, stop, 1)?, secs));
                agent.stop()?;
            }
            Load::Empty | Load::EmptyPerSkb => {
                let attached = attach_empty_programs(matches!(load, Load::Empty))?;
                on.push(gbps(lab::transfer(args.duration, stop, 1)?, secs));
                drop(attached);
            }
        }
    }
    let ratios: Vec<f64> = on.iter().zip(&off).map(|(a, b)| a / b).collect();
    Ok(Throughput {
        config,
        probes: load.name(),
        median_ratio: median(&ratios),
        off_gbps: off,
        on_gbps: on,
        ratios,
    })
}

struct KernelCost {
    programs: Vec<ProgramFigures>,
    /// `(transfer seconds, mean ns per run)`.
    by_length: Vec<(f64, f64)>,
    /// The empty program's ns per run.
    floor: f64,
    blocks: Vec<BuildingBlock>,
}

/// Kernel-side cost at the highest event rate, BPF statistics on (held by
/// us): per program over a long transfer, the mean over a short and a long
/// one, and the empty program's floor.
fn kernel_cost(args: &BenchArgs, dir: &Path, stop: &AtomicBool) -> anyhow::Result<KernelCost> {
    let _link = configure("gro-no-tso")?;
    let stats = overhead::enable_bpf_stats()?;
    let mut by_length = Vec::new();
    let mut programs = Vec::new();
    for length in [args.duration / 2, args.duration * 2] {
        check(stop)?;
        // Every packet, so that each program's runs per second are its
        // full rate.
        let agent = Agent::start("1", dir, &["--sample", "1"])?;
        let before = our_costs();
        let t = Instant::now();
        lab::transfer(length, stop, 1)?;
        let elapsed = t.elapsed().as_secs_f64();
        let p = cost_delta(&before, &our_costs(), elapsed);
        agent.stop()?;
        by_length.push((length.as_secs_f64(), mean_ns(&p)));
        programs = p;
    }
    let floor = baseline_cost("baseline_empty", args.duration, stop)?;
    let what = [
        "this CPU's slot of a per-CPU array, and an add",
        "the slot and a clock read (bpf_ktime_get_ns)",
        "the slot and one bpf_probe_read_kernel of 8 bytes",
    ];
    let mut blocks = Vec::new();
    for (name, what) in BASELINES[1..].iter().zip(what) {
        check(stop)?;
        let ns = baseline_cost(name, args.duration, stop)?;
        blocks.push(BuildingBlock {
            name,
            what,
            ns_per_run: ns,
            ns_above_empty: ns - floor,
        });
    }
    drop(stats);
    for p in &mut programs {
        p.ns_above_empty = p.ns_per_run - floor;
    }
    Ok(KernelCost {
        programs,
        by_length,
        floor,
        blocks,
    })
}

/// The agent's CPU share and peak RSS at a 100 ms interval.
fn userspace_100ms(args: &BenchArgs, dir: &Path, stop: &AtomicBool) -> anyhow::Result<Userspace> {
    check(stop)?;
    let agent = Agent::start("0.1", dir, &[])?;
    let cpu0 = agent.cpu_ns();
    let t0 = Instant::now();
    lab::transfer(args.duration, stop, 1)?;
    let cpu_pct = 100.0 * (agent.cpu_ns() - cpu0) as f64 / t0.elapsed().as_nanos() as f64;
    let peak_rss_bytes = overhead::rss_bytes(&agent.pid()).1;
    agent.stop()?;
    Ok(Userspace {
        interval_s: 0.1,
        cpu_pct,
        peak_rss_bytes,
    })
}

fn measure(args: &BenchArgs, dir: &Path, stop: &AtomicBool) -> anyhow::Result<Figures> {
    let mut runs = AgentRuns::default();
    let series = [
        ("gro-no-tso", Load::Agent),
        ("gro-no-tso", Load::AgentWhole),
        ("gro-no-tso", Load::AgentPerSkb),
        ("gro-no-tso", Load::Empty),
        ("gro-no-tso", Load::EmptyPerSkb),
        ("all-on", Load::Agent),
    ];
    let throughput = series
        .into_iter()
        .map(|s| throughput(args, dir, stop, s, &mut runs))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let KernelCost {
        programs,
        by_length,
        floor,
        blocks,
    } = kernel_cost(args, dir, stop)?;
    let userspace = vec![
        Userspace {
            interval_s: 1.0,
            cpu_pct: median(&runs.cpu_pct),
            peak_rss_bytes: runs.peak_rss,
        },
        userspace_100ms(args, dir, stop)?,
    ];
    let verdicts = lab_verdicts(args, stop)?;
    let mut report = Figures {
        kernel: crate::sys::host::kernel_release(),
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        transfer_s: args.duration.as_secs_f64(),
        throughput,
        events_per_s: programs.iter().map(|p| p.runs_per_s).sum(),
        mean_ns_per_run: mean_ns(&programs),
        programs,
        empty_program_ns_per_run: floor,
        building_blocks: blocks,
        ns_per_run_by_length: by_length,
        userspace,
        startup_ms: median(&runs.startups_ms),
        detach_ms: median(&runs.detaches_ms),
        verdicts,
        targets: Vec::new(),
    };
    report.targets = targets(&report);
    Ok(report)
}

/// Every lab configuration, run with the default sampling and with every
/// packet: the verdicts (mechanism and mismatch) must be the same.
fn lab_verdicts(args: &BenchArgs, stop: &AtomicBool) -> anyhow::Result<Vec<VerdictCheck>> {
    let secs = args.duration.min(Duration::from_millis(1500));
    let judged = |config, sample| -> anyhow::Result<Vec<String>> {
        check(stop)?;
        let r = lab::run_config(config, secs, sample, stop)?;
        Ok(r.verdicts
            .iter()
            .map(|v| {
                let mismatch = if v.mismatch { " (mismatch)" } else { "" };
                format!("{}: {}{mismatch}", v.offload.name(), v.mechanism.name())
            })
            .collect())
    };
    eprintln!("bench: the lab's verdicts, sampled and whole");
    CONFIGS
        .iter()
        .map(|config| {
            let sampled = judged(config, crate::kernel::attach::DEFAULT_SAMPLE)?;
            let whole = judged(config, 1.0)?;
            Ok(VerdictCheck {
                config: config.name,
                same: sampled == whole,
                sampled,
                whole,
            })
        })
        .collect()
}

/// The figures against their targets.
fn targets(r: &Figures) -> Vec<Target> {
    let mut all = kernel_targets(r);
    all.extend(throughput_targets(r));
    all.extend(userspace_targets(r));
    all
}

fn target(name: &'static str, target: String, measured: String, met: bool) -> Target {
    Target {
        name,
        target,
        measured,
        met,
    }
}

/// The programs' cost per run.
fn kernel_targets(r: &Figures) -> Vec<Target> {
    let mean = r.mean_ns_per_run;
    // The per-skb program with the most work of its own, among those that
    // ran often enough for a mean (kfree_skb and tcp_retransmit_skb run a
    // handful of times, their first runs cold).
    let worst = r
        .programs
        .iter()
        .filter(|p| !p.per_segment && p.runs >= MIN_RUNS_FOR_A_MEAN)
        .max_by(|a, b| a.ns_above_empty.total_cmp(&b.ns_above_empty));
    let (worst_name, worst_ns) =
        worst.map_or(("none", 0.0), |p| (p.name.as_str(), p.ns_above_empty));
    vec![
        target(
            "ns per program run",
            format!("<= {TARGET_NS_PER_RUN}"),
            format!("{mean:.1}"),
            mean <= TARGET_NS_PER_RUN,
        ),
        target(
            "per-skb programs above empty",
            format!("<= {TARGET_NS_ABOVE_FLOOR} ns"),
            format!("{worst_ns:.1} ns ({worst_name})"),
            worst_ns <= TARGET_NS_ABOVE_FLOOR,
        ),
    ]
}

/// What the traffic keeps, and the verdicts sampling keeps.
fn throughput_targets(r: &Figures) -> Vec<Target> {
    let ratio = |config: &str, load: Load| {
        r.throughput
            .iter()
            .find(|t| t.config == config && t.probes == load.name())
            .map_or(0.0, |t| t.median_ratio)
    };
    let at_least = |name, v: f64| {
        target(
            name,
            format!(">= {TARGET_RATIO}"),
            format!("{v:.3}"),
            v >= TARGET_RATIO,
        )
    };
    let differ: Vec<&str> = r
        .verdicts
        .iter()
        .filter(|v| !v.same)
        .map(|v| v.config)
        .collect();
    vec![
        at_least(
            "throughput on/off, NAPI+GRO",
            ratio("gro-no-tso", Load::Agent),
        ),
        at_least("the same, all offloads on", ratio("all-on", Load::Agent)),
        at_least(
            "the same, trace --per-skb",
            ratio("gro-no-tso", Load::AgentPerSkb),
        ),
        target(
            "verdicts sampled = whole",
            format!("all {} lab configs", r.verdicts.len()),
            if differ.is_empty() {
                format!("{} of {}", r.verdicts.len(), r.verdicts.len())
            } else {
                format!("differ: {}", differ.join(", "))
            },
            differ.is_empty(),
        ),
    ]
}

/// The agent's own CPU, memory and start-up.
fn userspace_targets(r: &Figures) -> Vec<Target> {
    let (cpu_1s, cpu_100ms) = (r.userspace[0].cpu_pct, r.userspace[1].cpu_pct);
    let peak = r
        .userspace
        .iter()
        .map(|u| u.peak_rss_bytes)
        .max()
        .unwrap_or(0);
    let startup_ms = r.startup_ms;
    vec![
        target(
            "agent CPU at 1 s interval",
            format!("<= {TARGET_CPU_1S}%"),
            format!("{cpu_1s:.2}%"),
            cpu_1s <= TARGET_CPU_1S,
        ),
        target(
            "agent CPU at 0.1 s interval",
            format!("<= {TARGET_CPU_100MS}%"),
            format!("{cpu_100ms:.2}%"),
            cpu_100ms <= TARGET_CPU_100MS,
        ),
        target(
            "peak RSS",
            "<= 32 MiB".into(),
            format!("{:.1} MiB", peak as f64 / 1048576.0),
            peak <= TARGET_RSS,
        ),
        target(
            "start-up (load + attach)",
            format!("<= {TARGET_STARTUP_MS} ms"),
            format!("{startup_ms:.0} ms"),
            startup_ms <= TARGET_STARTUP_MS,
        ),
    ]
}

/// The kernel side's cost, program by program.
fn programs(o: &mut String, r: &Figures) {
    use std::fmt::Write as _;
    let _ = writeln!(o, "\nper program (NAPI+GRO, BPF statistics on):");
    let _ = writeln!(
        o,
        "  {:<28} {:>10} {:>10} {:>8} {:>12}",
        "program", "runs", "runs/s", "ns/run", "above empty"
    );
    for p in &r.programs {
        let _ = writeln!(
            o,
            "  {:<28} {:>10} {:>10.0} {:>8.1} {:>12.1}{}",
            p.name,
            p.runs,
            p.runs_per_s,
            p.ns_per_run,
            p.ns_above_empty,
            if p.per_segment { "  (per segment)" } else { "" }
        );
    }
    let _ = writeln!(
        o,
        "  {:<28} {:>10} {:>10.0} {:>8.1}",
        "all",
        r.programs.iter().map(|p| p.runs).sum::<u64>(),
        r.events_per_s,
        r.mean_ns_per_run
    );
    let _ = writeln!(
        o,
        "  an empty tp_btf program on napi_gro_receive_entry: {:.1} ns per run (the floor)",
        r.empty_program_ns_per_run
    );
    for b in &r.building_blocks {
        let _ = writeln!(
            o,
            "  {}: {:.1} ns per run, {:.1} above empty",
            b.what, b.ns_per_run, b.ns_above_empty
        );
    }
    let by_len: Vec<String> = r
        .ns_per_run_by_length
        .iter()
        .map(|(s, ns)| format!("{s:.1} s run: {ns:.1} ns"))
        .collect();
    let _ = writeln!(o, "  mean by run length: {}", by_len.join(", "));
}

pub(crate) fn render(r: &Figures) -> String {
    use std::fmt::Write as _;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "toe-agent bench: kernel {}, {} CPUs, {:.1} s transfers on the lab veth pair\n",
        r.kernel, r.cpus, r.transfer_s
    );
    let _ = writeln!(
        o,
        "throughput (Gbit/s), agent off / on, tracing the receiver:"
    );
    for t in &r.throughput {
        let label = match t.probes {
            "agent-per-skb" => format!("{}, trace --per-skb", t.config),
            "agent-whole" => format!("{}, trace --sample 1", t.config),
            "empty" => format!("{}, empty programs, same hooks", t.config),
            "empty-per-skb" => format!("{}, empty programs, per-skb hooks", t.config),
            _ => t.config.to_string(),
        };
        let pairs: Vec<String> = t
            .off_gbps
            .iter()
            .zip(&t.on_gbps)
            .map(|(a, b)| format!("{a:.1}/{b:.1}"))
            .collect();
        let _ = writeln!(
            o,
            "  {label:<45} median on/off {:.3}   [{}]",
            t.median_ratio,
            pairs.join("  ")
        );
    }
    programs(&mut o, r);
    let _ = writeln!(o, "\nlab verdicts, default sampling against --sample 1:");
    for v in &r.verdicts {
        let _ = writeln!(
            o,
            "  {:<16} {}",
            v.config,
            if v.same {
                "same".to_string()
            } else {
                format!(
                    "sampled [{}], whole [{}]",
                    v.sampled.join(", "),
                    v.whole.join(", ")
                )
            }
        );
    }
    let _ = writeln!(o, "\nagent userspace:");
    for u in &r.userspace {
        let _ = writeln!(
            o,
            "  interval {:.1} s: CPU {:.2}% of one core, peak RSS {:.1} MiB",
            u.interval_s,
            u.cpu_pct,
            u.peak_rss_bytes as f64 / 1048576.0
        );
    }
    let _ = writeln!(
        o,
        "  start-up (exec, BTF, load, attach) {:.0} ms, detach (SIGTERM to exit) {:.0} ms",
        r.startup_ms, r.detach_ms
    );
    let _ = writeln!(o, "\ntargets:");
    for t in &r.targets {
        let _ = writeln!(
            o,
            "  {:<30} {:<12} measured {:<10} {}",
            t.name,
            t.target,
            t.measured,
            if t.met { "met" } else { "NOT MET" }
        );
    }
    o
}
