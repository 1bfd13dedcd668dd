//! The agent's own cost: kernel-side from the kernel's BPF statistics
//! (`BPF_ENABLE_STATS`, opt-in), userspace from getrusage and /proc.
use std::{
    os::fd::{AsRawFd, BorrowedFd, OwnedFd},
    time::Instant,
};

use serde::{Deserialize, Serialize};

use crate::model::period::Blocks;

/// Holding this keeps the kernel's BPF run-time statistics on. The kernel
/// counts enablers: closing the descriptor (on any exit) restores the
/// previous state, so a sysctl someone else set is left alone
/// (kernel/bpf/syscall.c, bpf_enable_runtime_stats()).
pub(crate) struct StatsGuard(#[expect(dead_code, reason = "held for its Drop")] OwnedFd);

pub(crate) fn enable_bpf_stats() -> anyhow::Result<StatsGuard> {
    aya::sys::enable_stats(aya::sys::Stats::RunTime)
        .map(StatsGuard)
        .map_err(|e| anyhow::anyhow!("enabling BPF statistics (BPF_ENABLE_STATS): {e}"))
}

/// What the kernel counts for a program since it was loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ProgramStats {
    /// Runs (counted only while BPF statistics are enabled).
    pub run_count: u64,
    /// Time spent in the program, ns (likewise).
    pub run_time_ns: u64,
    /// Runs the kernel skipped because the program was already running on
    /// that CPU (`bpf_prog_get_recursion_context()` failing in
    /// `__bpf_trace_run()`, kernel/trace/bpf_trace.c, and in the tracepoint
    /// path of `trace_call_bpf()`): events the tracer did not see. Counted
    /// whether or not BPF statistics are on.
    pub missed_runs: u64,
}

impl std::iter::Sum for ProgramStats {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        iter.fold(ProgramStats::default(), |a, b| ProgramStats {
            run_count: a.run_count + b.run_count,
            run_time_ns: a.run_time_ns + b.run_time_ns,
            missed_runs: a.missed_runs + b.missed_runs,
        })
    }
}

/// One BPF_OBJ_GET_INFO_BY_FD for the program behind `fd`. aya's
/// ProgramInfo does not expose `recursion_misses`, so this reads the
/// kernel's struct itself, and takes the run statistics from the same call.
pub(crate) fn program_stats(fd: BorrowedFd<'_>) -> Option<ProgramStats> {
    use aya_obj::generated::{bpf_attr, bpf_cmd, bpf_prog_info};
    // SAFETY: both are plain C structs for which all-zero is valid.
    let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
    let mut attr: bpf_attr = unsafe { std::mem::zeroed() };
    attr.info.bpf_fd = fd.as_raw_fd() as u32;
    attr.info.info_len = size_of::<bpf_prog_info>() as u32;
    attr.info.info = &raw mut info as u64;
    // SAFETY: bpf(2) writes at most info_len bytes into `info`.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            bpf_cmd::BPF_OBJ_GET_INFO_BY_FD as libc::c_long,
            &raw mut attr,
            size_of::<bpf_attr>(),
        )
    };
    (r == 0).then_some(ProgramStats {
        run_count: info.run_cnt,
        run_time_ns: info.run_time_ns,
        missed_runs: info.recursion_misses,
    })
}

/// What NDJSON interval records carry as `overhead`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Overhead {
    /// Events the programs recorded (matched the device, or a NET softirq).
    pub events: u64,
    /// Program runs, matched or not (with --self-stats; else null).
    pub program_runs: Option<u64>,
    /// Mean run time of a program, ns (with --self-stats; else null).
    pub bpf_ns_per_event: Option<f64>,
    /// The agent's own CPU time (user + system) over the period, % of one CPU.
    pub agent_cpu_pct: f64,
    pub agent_rss_bytes: u64,
    /// Time the agent took to read the maps and summarise the period, µs.
    pub collect_us: u64,
    /// Program runs the kernel skipped (recursion): events not seen.
    /// Absent from files of earlier versions, read as 0.
    #[serde(default)]
    pub missed_runs: u64,
}

/// Events recorded in a period, from the counts themselves: one per
/// hand-off, delivered skb, queued or transmitted skb, NAPI poll, and three
/// per softirq run (raise, entry, exit).
pub(crate) fn recorded_events(b: &Blocks) -> u64 {
    b.rx.handoff.segments
        + b.rx.after_gro.skbs
        + b.tx.queued_skbs
        + b.tx.xmit_skbs
        + b.napi.polls
        + 3 * (b.softirq.net_rx.count + b.softirq.net_tx.count)
}

/// CPU time of this process (user + system), ns.
pub(crate) fn process_cpu_ns() -> u64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0;
    }
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// `(current, peak)` resident set size of a process, bytes, from
/// /proc/<pid>/status (VmRSS, VmHWM).
pub(crate) fn rss_bytes(pid: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (kb("VmRSS:"), kb("VmHWM:"))
}

/// Turns cumulative readings into per-period overhead figures.
pub(crate) struct Tracker {
    stats: bool,
    last_cpu_ns: u64,
    last_programs: ProgramStats,
    last: Instant,
}

impl Tracker {
    /// Start from the programs' statistics read now (`Probes::stats()`).
    pub(crate) fn new(programs: ProgramStats, stats: bool) -> Self {
        Tracker {
            stats,
            last_cpu_ns: process_cpu_ns(),
            last_programs: programs,
            last: Instant::now(),
        }
    }

    /// The period since the last sample, given the programs' statistics read now.
    pub(crate) fn sample(
        &mut self,
        programs: ProgramStats,
        blocks: &Blocks,
        collect_us: u64,
    ) -> Overhead {
        let now = Instant::now();
        let cpu = process_cpu_ns();
        let last = self.last_programs;
        // A period under a millisecond says nothing about CPU share.
        let wall = now.duration_since(self.last).as_nanos().max(1_000_000) as f64;
        let d_runs = programs.run_count.saturating_sub(last.run_count);
        let d_time = programs.run_time_ns.saturating_sub(last.run_time_ns);
        let o = Overhead {
            events: recorded_events(blocks),
            program_runs: self.stats.then_some(d_runs),
            bpf_ns_per_event: (self.stats && d_runs > 0).then(|| d_time as f64 / d_runs as f64),
            agent_cpu_pct: 100.0 * cpu.saturating_sub(self.last_cpu_ns) as f64 / wall,
            agent_rss_bytes: rss_bytes("self").0,
            collect_us,
            missed_runs: programs.missed_runs.saturating_sub(last.missed_runs),
        };
        (self.last, self.last_cpu_ns, self.last_programs) = (now, cpu, programs);
        o
    }
}
