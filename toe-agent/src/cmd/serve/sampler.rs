//! The sampler thread: owns the probes (one set per interface), reads them
//! every interval, folds the deltas into cumulative totals and the verdict
//! window, and re-attaches when an interface comes back.
use std::{
    collections::VecDeque,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use super::{ServeArgs, Shared};
use crate::{
    kernel::{
        attach::Options,
        collect::Totals,
        overhead,
        session::{Period, Session},
    },
    model::{
        class::DeviceClass,
        period::{Blocks, Sampling},
        verdict::{self, Mechanism, Offload, Verdict},
    },
    sinks::prometheus::ExposedIface,
    sys::{host, iface},
};

/// Packets that one period's verdicts say the CPU handled, per offload:
/// the period's whole packet counts (`b`), and for the checksums, their
/// share without one in the sampling windows (`sampled`).
fn fallback_counts(b: &Blocks, sampled: &Blocks, verdicts: &[Verdict]) -> Vec<(&'static str, u64)> {
    let share = |part: u64, of: u64, n: u64| match of {
        0 => 0,
        of => (n as f64 * part as f64 / of as f64).round() as u64,
    };
    let (rx, tx) = (b.rx.whole_segments(), b.tx.whole_segments());
    verdicts
        .iter()
        .filter(|v| v.mechanism == Mechanism::Software)
        .map(|v| {
            let n = match v.offload {
                // Software GSO hands the driver one skb per segment.
                Offload::TxSegmentation => tx,
                Offload::TxChecksum => share(sampled.tx.csum.none, sampled.tx.csum.total(), tx),
                Offload::RxCoalescing | Offload::Rss => rx,
                Offload::RxChecksum => share(
                    sampled.rx.handoff.csum.none,
                    sampled.rx.handoff.csum.total(),
                    rx,
                ),
            };
            (v.offload.name(), n)
        })
        .collect()
}

/// One interface's sampling session and the window of recent periods.
pub(super) struct Attached {
    session: Session,
    /// The recent periods' sampling windows, judged together.
    window: VecDeque<(Totals, Sampling)>,
}

impl Attached {
    /// Says which probes fell back or failed, as trace does.
    pub(super) fn new(session: Session) -> Attached {
        for line in session.problems() {
            eprintln!("toe-agent serve: {}: {line}", session.iface.name);
        }
        Attached {
            session,
            window: VecDeque::new(),
        }
    }
}

fn attach(name: &str, opts: &Options, class: Option<DeviceClass>) -> Option<Attached> {
    let iface = iface::resolve(name, class).ok()?;
    match Session::attach(iface, opts) {
        Ok(session) => Some(Attached::new(session)),
        Err(e) => {
            eprintln!("toe-agent serve: {name}: {:#}", anyhow::Error::from(e));
            None
        }
    }
}

/// Fold one interval of `a` into the interface's exposed state: the run
/// total (`cumulative`, kept across re-attachments), the verdicts over the
/// window, the fallbacks of the newest period.
fn fold(
    a: &mut Attached,
    delta: Period,
    window: usize,
    cumulative: &mut Totals,
    e: &mut ExposedIface,
) {
    e.up = true;
    e.device = Some((a.session.iface.driver.clone(), a.session.iface.class));
    e.coverage = a.session.coverage;
    e.probes.clone_from(&a.session.status);
    cumulative.add(&delta.all);
    let before = e.run.sample;
    e.run = Blocks::from_totals(cumulative);
    e.run.sample = Sampling {
        fraction: delta.sampling.fraction,
        secs: before.secs + delta.sampling.secs,
        windows: before.windows + delta.sampling.windows,
    };
    let (all, newest) = delta.blocks();
    a.window.push_back((delta.sampled, delta.sampling));
    while a.window.len() > window {
        a.window.pop_front();
    }
    let mut judged = Totals::default();
    let mut sampling = Sampling {
        fraction: delta.sampling.fraction,
        ..Sampling::default()
    };
    for (d, s) in &a.window {
        judged.add(d);
        sampling.secs += s.secs;
        sampling.windows += s.windows;
    }
    let device = a.session.device();
    let mut judged = Blocks::from_totals(&judged);
    judged.sample = sampling;
    e.verdicts = verdict::judge(&judged, &device);
    e.features = device.features.map(|f| f.0).unwrap_or_default();
    e.nic = a.session.nic(&newest).reconcile;
    for (o, n) in fallback_counts(&all, &newest, &e.verdicts) {
        *e.fallbacks.entry(o).or_default() += n;
    }
}

/// Detach an interface that is gone, attach one that came back.
fn reattach(name: &str, slot: &mut Option<Attached>, opts: &Options, class: Option<DeviceClass>) {
    // Gone (or replaced by a new device of the same name): detach.
    if slot.as_ref().is_some_and(|a| !a.session.present()) {
        *slot = None;
        eprintln!("toe-agent serve: {name} is gone; its series stop until it returns");
    }
    if slot.is_none() && iface::index_of(name).is_some() {
        // The session reads its baseline as it attaches: the first
        // interval counts from there.
        *slot = attach(name, opts, class);
        if slot.is_some() {
            eprintln!("toe-agent serve: {name} attached");
        }
    }
}

pub(super) fn run(
    args: &ServeArgs,
    shared: &Shared,
    stop: &AtomicBool,
    first: Vec<Option<Attached>>,
) {
    let opts = args.options();
    let mut attached = first;
    let mut cumulative = vec![Totals::default(); args.ifaces.len()];
    let mut next = Instant::now() + args.interval;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(
            Duration::from_millis(50).min(next.saturating_duration_since(Instant::now())),
        );
        if Instant::now() < next {
            continue;
        }
        next += args.interval;
        for (k, name) in args.ifaces.iter().enumerate() {
            reattach(name, &mut attached[k], &opts, args.device_class);
            let delta = attached[k].as_mut().map(|a| {
                for line in a.session.kernel_log() {
                    eprintln!("toe-agent serve: {name}: {line}");
                }
                a.session.interval()
            });
            let Ok(mut exposed) = shared.exposed.lock() else {
                return;
            };
            let entry = exposed.ifaces.entry(name.clone()).or_default();
            match (attached[k].as_mut(), delta) {
                (Some(a), Some(Ok(delta))) => {
                    fold(a, delta, args.window, &mut cumulative[k], entry)
                }
                _ => entry.up = false,
            }
        }
        if let Ok(mut t) = shared.last_read.lock() {
            *t = Some(Instant::now());
        }
        let programs: overhead::ProgramStats =
            attached.iter().flatten().map(|a| a.session.stats()).sum();
        let sysctls = host::SYSCTLS
            .iter()
            .filter_map(|n| Some((n.to_string(), host::sysctl(n)?)))
            .collect();
        if let Ok(mut exposed) = shared.exposed.lock() {
            exposed.sysctls = sysctls;
            let agent = &mut exposed.agent;
            agent.cpu_ns = overhead::process_cpu_ns();
            agent.rss = overhead::rss_bytes("self").0;
            agent.bpf_runs = programs.run_count;
            agent.bpf_run_ns = programs.run_time_ns;
            agent.bpf_missed = programs.missed_runs;
        }
    }
    // Detach everything before saying goodbye.
    drop(attached);
    shared.sampler_alive.store(false, Ordering::Relaxed);
}
