//! Load the eBPF object, resolve what it needs from the running kernel,
//! attach every probe it can, and report each one's fate.
//!
//! Dropping [`Probes`] detaches and unloads everything (aya closes the link
//! and program file descriptors), which is how every exit path cleans up.
use std::{
    collections::BTreeMap,
    os::fd::AsFd,
    path::Path,
    sync::{Arc, Mutex},
};

use anyhow::Context as _;
use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{PerCpuArray, PerCpuHashMap, PerCpuValues},
    programs::{
        BtfTracePoint, Program, TracePoint,
        tp_btf::{BtfTracePointLink, BtfTracePointLinkId},
        trace_point::{TracePointLink, TracePointLinkId},
    },
};
use serde::{Deserialize, Serialize};
use toe_agent_common::Config;

use crate::{
    kernel::btf::Resolved,
    kernel::btf::{KernelBtf, VMLINUX_BTF},
    kernel::collect::{Counters, Maps, Source, Totals, sum},
    model::verdict::Coverage,
    probes::{Family, Spec},
    sys::iface::Iface,
};

/// The compiled eBPF object (built by build.rs; empty when the build skipped it).
pub(crate) static OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/toe-agent"));

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeState {
    /// The preferred hook is attached.
    Attached,
    /// A fallback hook is attached: the data is there, with less detail.
    Degraded,
    /// Nothing attached for this probe.
    Failed,
    /// Left out on request (`--per-skb`).
    Skipped,
}

impl ProbeState {
    /// As NDJSON spells it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ProbeState::Attached => "attached",
            ProbeState::Degraded => "degraded",
            ProbeState::Failed => "failed",
            ProbeState::Skipped => "skipped",
        }
    }

    /// Is the probe counting (on its preferred hook or a fallback)?
    pub fn counts(self) -> bool {
        matches!(self, ProbeState::Attached | ProbeState::Degraded)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeStatus {
    pub name: String,
    /// `tp_btf/<tracepoint>` or `tracepoint/<group>/<name>`, whichever is attached.
    pub hook: String,
    pub status: ProbeState,
    pub reason: Option<String>,
}

/// The driver hand-off, before GRO merges: once per packet from the wire
/// (net/core/gro.c, net/core/dev.c).
pub(crate) const HANDOFF_HOOKS: &[&str] = &toe_agent_common::HANDOFF_HOOK_NAMES;

/// What probes in these states can see: a hook that failed or was skipped
/// gives nothing. Computed once after attach ([`Probes::coverage`]), and
/// from a recording's header by `report`.
pub(crate) fn coverage(status: &[ProbeStatus]) -> Coverage {
    let counts = |name: &str| status.iter().any(|s| s.name == name && s.status.counts());
    let missing = HANDOFF_HOOKS
        .iter()
        .enumerate()
        .filter(|(_, h)| !counts(h))
        .fold(0u8, |m, (i, _)| m | 1 << i);
    let handoff = HANDOFF_HOOKS.iter().any(|h| counts(h));
    Coverage {
        handoff,
        handoff_missing: if handoff { missing } else { 0 },
        driver_xmit: counts("net_dev_start_xmit"),
    }
}

/// The share of time the per-segment programs run unless told otherwise:
/// 100 ms in every second.
pub(crate) const DEFAULT_SAMPLE: f64 = 0.1;

#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Skip BTF tracepoints and use classic tracepoints only.
    pub classic_only: bool,
    /// Leave out the per-segment hooks ([`Spec::per_segment`]).
    pub per_skb: bool,
    /// The programs' diagnostics at this level and above (`--log-level`).
    pub log_level: log::LevelFilter,
    /// The share of time the per-segment programs run (`--sample`), and
    /// the cycle a window opens in (docs/sampling.md).
    pub sample: f64,
    pub cycle: std::time::Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            classic_only: false,
            per_skb: false,
            log_level: log::LevelFilter::Warn,
            sample: DEFAULT_SAMPLE,
            cycle: std::time::Duration::from_secs(1),
        }
    }
}

/// The programs' diagnostics (`toe-agent-ebpf/src/diag.rs`), as aya-log
/// hands them over: kept as lines until the agent shows them.
#[derive(Clone, Default)]
struct KernelLog(Arc<Mutex<Vec<String>>>);

impl log::Log for KernelLog {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        // The kernel side only emits what the level lets through.
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!(
            "kernel: {}: {}",
            record.level().as_str().to_lowercase(),
            record.args()
        );
        if let Ok(mut lines) = self.0.lock() {
            lines.push(line);
        }
    }

    fn flush(&self) {}
}

pub(crate) struct Probes {
    ebpf: Ebpf,
    /// Reads the programs' diagnostics; None when aya-log could not start.
    logger: Option<aya_log::EbpfLogger<KernelLog>>,
    log: KernelLog,
    pub status: Vec<ProbeStatus>,
    /// What the attached probes can see, from `status` once attached.
    pub coverage: Coverage,
    /// The programs attached, by name in the object.
    attached: Vec<Attached>,
}

/// A program attached: what to detach it by, and where to attach it again.
struct Attached {
    prog: &'static str,
    /// `(group, event)` when it is on its classic tracepoint.
    classic: Option<(&'static str, &'static str)>,
    /// Attached only in sampling windows ([`Spec::windowed`]).
    windowed: bool,
    /// None while a sampling window is closed.
    link: Option<Link>,
}

enum Link {
    Btf(BtfTracePointLinkId),
    Classic(TracePointLinkId),
}

/// ` (missing CAP_X)` for the error message, when known.
fn missing_text(missing: &[&str]) -> String {
    if missing.is_empty() {
        String::new()
    } else {
        format!(" (missing {})", missing.join(" and "))
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ProbeError {
    #[error(
        "this binary was built without its eBPF programs (AYA_BUILD_SKIP); build it with `cargo xtask build`"
    )]
    NoObject,
    #[error(
        "permission denied loading eBPF programs{}: run as root, or grant CAP_BPF and CAP_PERFMON",
        missing_text(.0)
    )]
    Permission(Vec<&'static str>),
    #[error("no probe could be attached: {0}")]
    NothingAttached(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The effective capability set, from /proc/self/status; None when it
/// cannot be read (then the kernel decides).
fn effective_caps() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// The capabilities loading and attaching the programs needs that the
/// effective set `eff` lacks: CAP_BPF (39) for bpf(), CAP_PERFMON (38) for
/// tracing programs and their perf events, or else CAP_SYS_ADMIN (21),
/// which stands for both (include/uapi/linux/capability.h;
/// kernel/bpf/syscall.c: bpf_capable(), perfmon_capable()).
fn missing_bpf_caps(eff: u64) -> Vec<&'static str> {
    let has = |bit: u32| eff & (1 << bit) != 0;
    if has(21) {
        return Vec::new();
    }
    [(39, "CAP_BPF"), (38, "CAP_PERFMON")]
        .into_iter()
        .filter(|&(bit, _)| !has(bit))
        .map(|(_, name)| name)
        .collect()
}

/// An EPERM anywhere in the chain: aya's syscall, load and map errors
/// carry the kernel's `io::Error` as their source. EPERM only: the verifier
/// rejects a program with EACCES, which is a bug or an unsupported kernel,
/// not missing privileges.
fn is_permission_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.raw_os_error() == Some(libc::EPERM))
    })
}

/// Config for the programs: the device and, when BTF allows, the offsets.
fn config(iface: &Iface, offsets: toe_agent_common::Offsets) -> Config {
    Config {
        ifindex: iface.index,
        netns_ino: iface.netns_ino,
        ifname: crate::sys::ethtool::name_bytes(&iface.name),
        off: offsets,
    }
}

/// A probe whose tp_btf hook failed with `btf_err`: its classic tracepoint
/// when it has one and tracefs is usable, otherwise a failure with both
/// reasons.
fn fall_back(
    ebpf: &mut Ebpf,
    spec: &Spec,
    tracefs: &Result<(), String>,
    btf_err: &anyhow::Error,
    attached: &mut Vec<Attached>,
) -> ProbeStatus {
    let failed = |reason: String| ProbeStatus {
        name: spec.name.into(),
        hook: format!("tp_btf/{}", spec.name),
        status: ProbeState::Failed,
        reason: Some(reason),
    };
    let Some((group, event, prog)) = spec.classic else {
        return failed(format!("{btf_err:#}"));
    };
    let fallback = tracefs
        .clone()
        .map_err(anyhow::Error::msg)
        .and_then(|()| attach_classic(ebpf, prog, group, event));
    match fallback {
        Ok(link) => {
            attached.push(Attached {
                prog,
                classic: Some((group, event)),
                windowed: spec.windowed,
                link: Some(link),
            });
            ProbeStatus {
                name: spec.name.into(),
                hook: format!("tracepoint/{group}/{event}"),
                status: ProbeState::Degraded,
                reason: Some(format!(
                    "tp_btf unavailable ({btf_err:#}); classic tracepoint matches the device by name only"
                )),
            }
        }
        Err(e) => failed(format!(
            "{btf_err:#}; fallback tracepoint/{group}/{event}: {e:#}"
        )),
    }
}

/// SIGINT and SIGTERM held off the calling thread while it loads the
/// programs. The verifier gives up on a program when a signal is pending
/// for the loading thread (kernel/bpf/verifier.c, do_check():
/// `if (signal_pending(current)) return -EAGAIN;`), and aya probes the
/// kernel's features once per process by loading small programs: a signal
/// at that moment makes it decide, for the rest of the process, that the
/// kernel has no global data, and the object then fails to load ("section
/// not found", its .rodata; docs/kernel-notes.md, "A signal during the
/// load"). A blocked signal is not pending to the thread: it waits until
/// the guard drops, and the agent's handlers then take it (the run ends at
/// its first reading).
struct SignalsHeld(libc::sigset_t);

impl SignalsHeld {
    fn new() -> SignalsHeld {
        // SAFETY: the sets are initialised by sigemptyset before use, and
        // pthread_sigmask changes only this thread's mask, writing the
        // old one into `old`.
        unsafe {
            let mut held: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut held);
            libc::sigaddset(&mut held, libc::SIGINT);
            libc::sigaddset(&mut held, libc::SIGTERM);
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::pthread_sigmask(libc::SIG_BLOCK, &held, &mut old);
            SignalsHeld(old)
        }
    }
}

impl Drop for SignalsHeld {
    fn drop(&mut self) {
        // SAFETY: restores the mask new() saved; the guard is a local of
        // the loading function, so this runs on the thread that saved it.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.0, std::ptr::null_mut()) };
    }
}

impl Probes {
    pub(crate) fn attach(iface: &Iface, opts: &Options) -> Result<Probes, ProbeError> {
        if OBJECT.is_empty() {
            return Err(ProbeError::NoObject);
        }
        let _held = SignalsHeld::new();
        let missing = effective_caps().map(missing_bpf_caps).unwrap_or_default();
        if !missing.is_empty() {
            return Err(ProbeError::Permission(missing));
        }
        // Offsets first; a family whose structures the BTF lacks, or every
        // family without BTF, goes to its classic tracepoints.
        let offsets = if opts.classic_only {
            Err("classic tracepoints requested (--classic)".to_string())
        } else {
            KernelBtf::open(Path::new(VMLINUX_BTF))
                .map(|k| {
                    // What the families learn from BTF besides offsets.
                    for learn in crate::probes::FAMILIES.iter().filter_map(|f| f.learn) {
                        learn(&k);
                    }
                    k.offsets()
                })
                .map_err(|e| e.to_string())
        };
        let cfg = config(iface, offsets.as_ref().map(|r| r.off).unwrap_or_default());
        let mut ebpf = load(&cfg, opts.log_level)?;
        // aya-log takes the programs' AYA_LOGS ring buffer; without it they
        // still count, and only their diagnostics are lost.
        let log = KernelLog::default();
        let logger = aya_log::EbpfLogger::init_with_logger(&mut ebpf, log.clone()).ok();
        let btf = offsets.and_then(|r| Ok((r, Btf::from_sys_fs().map_err(|e| e.to_string())?)));
        let mut tracefs = None;
        let mut status = Vec::new();
        let mut attached = Vec::new();
        for (family, spec) in crate::probes::specs() {
            let s = if opts.per_skb && spec.per_segment {
                ProbeStatus {
                    name: spec.name.into(),
                    hook: format!("tp_btf/{}", spec.name),
                    status: ProbeState::Skipped,
                    reason: Some("per-segment hook left out (--per-skb)".into()),
                }
            } else {
                let mut one = Attaching {
                    ebpf: &mut ebpf,
                    btf: &btf,
                    tracefs: &mut tracefs,
                    attached: &mut attached,
                };
                one.attach(family, spec)?
            };
            status.push(s);
        }
        if let Some(e) = nothing_attached(&status) {
            return Err(e);
        }
        drop(btf);
        // The BTF parses are freed, but glibc keeps the pages; give them back
        // so the resident size reflects what a long run really holds.
        // SAFETY: malloc_trim only releases free heap memory.
        unsafe { libc::malloc_trim(0) };
        Ok(Probes {
            ebpf,
            logger,
            log,
            coverage: coverage(&status),
            status,
            attached,
        })
    }

    /// The kernel's counts for the attached programs, summed: one
    /// BPF_OBJ_GET_INFO_BY_FD per program.
    pub(crate) fn stats(&self) -> crate::kernel::overhead::ProgramStats {
        self.attached
            .iter()
            .filter_map(|a| {
                let fd = self.ebpf.program(a.prog)?.fd().ok()?;
                crate::kernel::overhead::program_stats(fd.as_fd())
            })
            .sum()
    }

    /// The programs' diagnostics since the last call, one line each.
    pub(crate) fn kernel_log(&mut self) -> Vec<String> {
        if let Some(l) = &mut self.logger {
            l.flush();
        }
        self.log
            .0
            .lock()
            .map(|mut lines| std::mem::take(&mut *lines))
            .unwrap_or_default()
    }

    /// What a user should hear about the attachment: one line for the
    /// probes that fell back (they share a reason), one per failure.
    pub(crate) fn problems(&self) -> Vec<String> {
        let degraded: Vec<_> = self
            .status
            .iter()
            .filter(|s| s.status == ProbeState::Degraded)
            .collect();
        let fell_back = degraded.first().map(|first| {
            format!(
                "{} of {} probes on classic tracepoints: {}",
                degraded.len(),
                self.status.len(),
                first.reason.as_deref().unwrap_or_default()
            )
        });
        let failed = self
            .status
            .iter()
            .filter(|s| s.status == ProbeState::Failed)
            .map(|s| {
                format!(
                    "probe {} ({}) failed: {}",
                    s.name,
                    s.hook,
                    s.reason.as_deref().unwrap_or_default()
                )
            });
        fell_back.into_iter().chain(failed).collect()
    }

    /// Open a sampling window: attach the windowed programs again.
    /// Every program is tried; the first failure is returned.
    pub(crate) fn open_window(&mut self) -> anyhow::Result<()> {
        let mut first_err = None;
        for a in self.attached.iter_mut().filter(|a| a.windowed) {
            if a.link.is_none() {
                match relink(&mut self.ebpf, a.prog, a.classic) {
                    Ok(l) => a.link = Some(l),
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Close a sampling window: take the windowed programs' links, for
    /// the caller to drop. Dropping one unregisters its program from the
    /// tracepoint at once, then waits for an RCU grace period before it
    /// returns (kernel/bpf/syscall.c bpf_raw_tp_link_release(),
    /// kernel/trace/bpf_trace.c bpf_probe_unregister(); 10 to 150 ms for
    /// a window's programs here): the caller does it without holding up
    /// the readings.
    pub(crate) fn close_window(&mut self) -> anyhow::Result<Vec<Detached>> {
        let mut taken = Vec::new();
        for a in self.attached.iter_mut().filter(|a| a.windowed) {
            if let Some(link) = a.link.take() {
                taken.push(take(&mut self.ebpf, a.prog, link)?);
            }
        }
        Ok(taken)
    }

    /// Are there programs a sampling window attaches and detaches?
    pub(crate) fn has_windowed(&self) -> bool {
        self.attached.iter().any(|a| a.windowed)
    }

    pub(crate) fn source(&self) -> KernelSource<'_> {
        KernelSource { ebpf: &self.ebpf }
    }
}

/// Load the object with its configuration. The loader parses the kernel
/// BTF itself (EbpfLoader::new) and the tp_btf programs need a parse of
/// their own to find their attach points. Each parse of vmlinux BTF takes
/// ~10 MiB: the loader is a temporary, so its copy is gone before the
/// second one is made.
fn load(cfg: &Config, log_level: log::LevelFilter) -> Result<Ebpf, ProbeError> {
    // aya-log's level is a constant to the verifier too: the diagnostics
    // of a level that is off are removed from the programs. Its numbers
    // are log's (aya-log-common: Error = 1 ... Trace = 5; Off = 0).
    let level = log_level as u8;
    EbpfLoader::new()
        .override_global("CONFIG", cfg, true)
        .override_global(aya_log::LEVEL, &level, true)
        .load(OBJECT)
        .map_err(anyhow::Error::from)
        .map_err(|e| {
            if is_permission_error(&e) {
                ProbeError::Permission(Vec::new())
            } else {
                ProbeError::Other(e.context("loading the eBPF object"))
            }
        })
}

/// The error when every probe tried has failed, naming the first.
fn nothing_attached(status: &[ProbeStatus]) -> Option<ProbeError> {
    let tried: Vec<&ProbeStatus> = status
        .iter()
        .filter(|s| s.status != ProbeState::Skipped)
        .collect();
    let first = tried
        .first()
        .filter(|_| tried.iter().all(|s| s.status == ProbeState::Failed))?;
    Some(ProbeError::NothingAttached(format!(
        "all {} failed; the first, {}: {}",
        tried.len(),
        first.name,
        first.reason.as_deref().unwrap_or("?")
    )))
}

/// What attaching one probe needs: the loaded object, the kernel's BTF
/// (with the offsets it gave) or why there is none, tracefs once some probe
/// needed it, and the names of the programs attached so far.
struct Attaching<'a> {
    ebpf: &'a mut Ebpf,
    btf: &'a Result<(Resolved, Btf), String>,
    tracefs: &'a mut Option<Result<(), String>>,
    attached: &'a mut Vec<Attached>,
}

impl Attaching<'_> {
    /// The probe on its tp_btf hook, or else on its classic fallback.
    fn attach(&mut self, family: &Family, spec: &'static Spec) -> Result<ProbeStatus, ProbeError> {
        let primary = match self.btf {
            Ok((resolved, kbtf)) => match resolved.refusal(family.reads) {
                Some(why) => Err(anyhow::anyhow!(
                    "the {} probes cannot read this kernel: {why}",
                    family.name
                )),
                None => attach_btf(self.ebpf, spec.name, kbtf),
            },
            Err(e) => Err(anyhow::anyhow!("no usable kernel BTF: {e}")),
        };
        match primary {
            Ok(link) => {
                self.attached.push(Attached {
                    prog: spec.name,
                    classic: None,
                    windowed: spec.windowed,
                    link: Some(link),
                });
                Ok(ProbeStatus {
                    name: spec.name.into(),
                    hook: format!("tp_btf/{}", spec.name),
                    status: ProbeState::Attached,
                    reason: None,
                })
            }
            Err(e) if is_permission_error(&e) => Err(ProbeError::Permission(Vec::new())),
            Err(btf_err) => {
                // Mounted only if some probe falls back; a failure shows in
                // their reasons.
                let tracefs = self.tracefs.get_or_insert_with(|| {
                    crate::kernel::classic::ensure_tracefs().map_err(|e| format!("{e:#}"))
                });
                Ok(fall_back(self.ebpf, spec, tracefs, &btf_err, self.attached))
            }
        }
    }
}

fn program<'a>(ebpf: &'a mut Ebpf, name: &str) -> anyhow::Result<&'a mut Program> {
    ebpf.program_mut(name)
        .with_context(|| format!("program {name} missing from the eBPF object"))
}

fn attach_btf(ebpf: &mut Ebpf, name: &str, btf: &Btf) -> anyhow::Result<Link> {
    let p: &mut BtfTracePoint = program(ebpf, name)?.try_into()?;
    p.load(name, btf)
        .with_context(|| format!("loading tp_btf/{name}"))?;
    relink(ebpf, name, None)
}

fn attach_classic(ebpf: &mut Ebpf, prog: &str, group: &str, event: &str) -> anyhow::Result<Link> {
    crate::kernel::classic::check_layout(group, event)?;
    let p: &mut TracePoint = program(ebpf, prog)?.try_into()?;
    p.load()
        .with_context(|| format!("loading tracepoint/{group}/{event}"))?;
    relink(ebpf, prog, Some((group, event)))
}

/// Attach the loaded program `prog` to its tp_btf hook, or to the classic
/// tracepoint `(group, event)`.
fn relink(ebpf: &mut Ebpf, prog: &str, classic: Option<(&str, &str)>) -> anyhow::Result<Link> {
    Ok(match classic {
        None => {
            let p: &mut BtfTracePoint = program(ebpf, prog)?.try_into()?;
            Link::Btf(
                p.attach()
                    .with_context(|| format!("attaching tp_btf/{prog}"))?,
            )
        }
        Some((group, event)) => {
            let p: &mut TracePoint = program(ebpf, prog)?.try_into()?;
            Link::Classic(
                p.attach(group, event)
                    .with_context(|| format!("attaching tracepoint/{group}/{event}"))?,
            )
        }
    })
}

/// A link taken from its program: dropping it detaches the program.
pub(crate) enum Detached {
    Btf(#[expect(dead_code, reason = "held to be dropped")] BtfTracePointLink),
    Classic(#[expect(dead_code, reason = "held to be dropped")] TracePointLink),
}

/// Take the link `link` of `prog` out of aya's keeping.
fn take(ebpf: &mut Ebpf, prog: &str, link: Link) -> anyhow::Result<Detached> {
    Ok(match link {
        Link::Btf(id) => {
            let p: &mut BtfTracePoint = program(ebpf, prog)?.try_into()?;
            Detached::Btf(p.take_link(id)?)
        }
        Link::Classic(id) => {
            let p: &mut TracePoint = program(ebpf, prog)?.try_into()?;
            Detached::Classic(p.take_link(id)?)
        }
    })
}

/// Reads the kernel maps: one syscall per map per interval.
pub(crate) struct KernelSource<'a> {
    ebpf: &'a Ebpf,
}

impl KernelSource<'_> {
    fn values<T: aya::Pod>(&self, name: &str) -> anyhow::Result<PerCpuValues<T>> {
        let map = self
            .ebpf
            .map(name)
            .with_context(|| format!("map {name} missing from the eBPF object"))?;
        let array = PerCpuArray::<_, T>::try_from(map)?;
        array
            .get(&0, 0)
            .with_context(|| format!("reading map {name}"))
    }
}

impl Maps for KernelSource<'_> {
    fn summed<T: aya::Pod + Counters>(&self, map: &str) -> anyhow::Result<T> {
        Ok(sum(self.values::<T>(map)?.iter()))
    }

    fn per_cpu<T: aya::Pod>(&self, map: &str) -> anyhow::Result<Vec<T>> {
        Ok(self.values::<T>(map)?.to_vec())
    }

    fn by_id<T: aya::Pod + Counters>(&self, map: &str) -> anyhow::Result<BTreeMap<u32, T>> {
        let hash = self
            .ebpf
            .map(map)
            .with_context(|| format!("map {map} missing from the eBPF object"))?;
        let by_id = PerCpuHashMap::<_, u32, T>::try_from(hash)?;
        by_id
            .iter()
            .map(|entry| {
                let (id, values) = entry.with_context(|| format!("reading map {map}"))?;
                Ok((id, sum(values.iter())))
            })
            .collect()
    }
}

impl Source for KernelSource<'_> {
    fn read(&mut self) -> anyhow::Result<Totals> {
        Totals::read(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_missing_capability_is_named() {
        let (sys_admin, perfmon, bpf) = (1u64 << 21, 1u64 << 38, 1u64 << 39);
        assert_eq!(missing_bpf_caps(0), ["CAP_BPF", "CAP_PERFMON"]);
        assert_eq!(missing_bpf_caps(bpf), ["CAP_PERFMON"]);
        assert_eq!(missing_bpf_caps(perfmon), ["CAP_BPF"]);
        assert!(missing_bpf_caps(bpf | perfmon).is_empty());
        assert!(missing_bpf_caps(sys_admin).is_empty());
        assert_eq!(
            ProbeError::Permission(vec!["CAP_PERFMON"]).to_string(),
            "permission denied loading eBPF programs (missing CAP_PERFMON): run as root, or grant CAP_BPF and CAP_PERFMON"
        );
        assert_eq!(
            ProbeError::Permission(Vec::new()).to_string(),
            "permission denied loading eBPF programs: run as root, or grant CAP_BPF and CAP_PERFMON"
        );
    }

    /// Every program compiled into the object is a probe of a family (or
    /// its classic fallback), or one of the bench's baselines; every probe of
    /// a family is in the object. A program added on the kernel side
    /// without its spec would never be attached.
    #[test]
    fn probe_list_matches_the_programs_in_the_object() {
        if OBJECT.is_empty() {
            eprintln!("skipped: built without the eBPF object (AYA_BUILD_SKIP)");
            return;
        }
        let object = aya_obj::Object::parse(OBJECT).expect("the embedded object parses");
        let compiled: std::collections::BTreeSet<&str> =
            object.programs.keys().map(String::as_str).collect();
        let mut declared = std::collections::BTreeSet::from(crate::cmd::bench::BASELINES);
        for (_, spec) in crate::probes::specs() {
            declared.insert(spec.name);
            if let Some((_, _, prog)) = spec.classic {
                declared.insert(prog);
            }
        }
        assert_eq!(compiled, declared);
    }

    #[test]
    fn coverage_follows_the_probes_that_count() {
        let st = |name: &str, status| ProbeStatus {
            name: name.into(),
            hook: String::new(),
            status,
            reason: None,
        };
        let mut all: Vec<ProbeStatus> = HANDOFF_HOOKS
            .iter()
            .map(|h| st(h, ProbeState::Attached))
            .collect();
        all[0].status = ProbeState::Degraded;
        all.push(st("net_dev_start_xmit", ProbeState::Attached));
        assert_eq!(coverage(&all), Coverage::default());
        // One hand-off hook the kernel refused: the others still count, and
        // the missing one is named.
        all[2].status = ProbeState::Failed;
        let partial = coverage(&all);
        assert!(partial.handoff);
        assert_eq!(partial.missing_handoffs(), ["netif_receive_skb_entry"]);
        let per_skb = [
            st("napi_gro_receive_entry", ProbeState::Skipped),
            st("netif_rx_entry", ProbeState::Failed),
            st("net_dev_start_xmit", ProbeState::Skipped),
            st("netif_receive_skb", ProbeState::Attached),
        ];
        assert_eq!(
            coverage(&per_skb),
            Coverage {
                handoff: false,
                handoff_missing: 0,
                driver_xmit: false
            }
        );
    }
}
