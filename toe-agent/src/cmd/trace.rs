//! `toe-agent trace`: attach, sample every interval, render, detach.
use std::{
    io::{IsTerminal, Write},
    path::PathBuf,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use tokio::{
    signal::unix::{SignalKind, signal},
    time::{Instant, MissedTickBehavior},
};

use crate::{
    Failure,
    kernel::attach::Options,
    kernel::overhead,
    kernel::session::Session,
    model::class::DeviceClass,
    model::period::Blocks,
    model::verdict,
    sinks::ndjson::{EndReason, Header, Interval, NdjsonWriter, Record, SCHEMA_VERSION, Summary},
    sinks::view,
    sys::iface,
};

pub struct TraceArgs {
    pub iface: String,
    pub interval: Duration,
    pub duration: Option<Duration>,
    pub ndjson: Option<PathBuf>,
    pub classic_only: bool,
    pub self_stats: bool,
    /// Leave out the per-segment hooks.
    pub per_skb: bool,
    /// `--device-class`: judge the device as this class.
    pub device_class: Option<DeviceClass>,
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Where the text view goes.
enum Screen {
    /// Redraw in place (stdout is a terminal).
    Live,
    /// One block per interval (stdout is a pipe or file).
    Blocks,
    /// Nothing: stdout carries NDJSON.
    Quiet,
}

impl Screen {
    /// Nothing when NDJSON goes to stdout; live and coloured on a
    /// terminal; plain blocks into a pipe or file.
    fn of(args: &TraceArgs) -> Screen {
        if args.ndjson.as_deref() == Some(std::path::Path::new("-")) {
            Screen::Quiet
        } else if std::io::stdout().is_terminal() {
            Screen::Live
        } else {
            Screen::Blocks
        }
    }
}

/// The first record of a recording: the device, the kernel, the probes.
fn header(dev: &crate::sys::iface::Iface, args: &TraceArgs, session: &Session) -> Header {
    Header {
        schema_version: SCHEMA_VERSION,
        agent_version: env!("CARGO_PKG_VERSION").into(),
        kernel: crate::sys::host::kernel_release(),
        iface: dev.name.clone(),
        ifindex: dev.index,
        netns_ino: dev.netns_ino,
        driver: dev.driver.clone(),
        device_class: Some(dev.class),
        mtu: dev.mtu,
        interval_ms: args.interval.as_millis() as u64,
        probes: session.probes.status.clone(),
    }
}

pub fn run(args: TraceArgs) -> Result<(), Failure> {
    let dev = iface::resolve(&args.iface, args.device_class)
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    // Open the output before attaching anything: a bad path must fail early.
    let mut ndjson = match &args.ndjson {
        Some(p) => Some(NdjsonWriter::create(p).map_err(|e| {
            Failure::BadInput(format!("cannot write NDJSON to {}: {e}", p.display()))
        })?),
        None => None,
    };
    let screen = Screen::of(&args);

    // Statistics on before the programs load, so their first runs count.
    let stats = match args.self_stats {
        true => Some(overhead::enable_bpf_stats().map_err(|e| Failure::Runtime(format!("{e:#}")))?),
        false => None,
    };
    // The baseline is read at attach, before the header goes out: whoever
    // waits for the header to start traffic finds every packet counted.
    let options = Options {
        classic_only: args.classic_only,
        per_skb: args.per_skb,
    };
    let mut session = Session::attach(dev.clone(), &options).map_err(Failure::runtime)?;
    report_probe_problems(&session.probes.status);
    let header = header(&dev, &args, &session);
    let ctx = view::Context {
        iface: &dev.name,
        ifindex: dev.index,
        driver: &dev.driver,
        class: Some(dev.class),
        mtu: dev.mtu,
        probes: &header.probes,
    };

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .map_err(|e| Failure::Runtime(format!("{e:#}")))?;
    let outcome = runtime.block_on(sample_loop(
        &args,
        &mut session,
        &ctx,
        &screen,
        &header,
        &mut ndjson,
    ));
    // Detach everything before the final words, whatever happened.
    drop(session);
    drop(stats);
    let (summary, reason) = outcome.map_err(|e| Failure::Runtime(format!("{e:#}")))?;

    let secs = (summary.end_unix_ns.saturating_sub(summary.start_unix_ns)) as f64 / 1e9;
    if !matches!(screen, Screen::Quiet) {
        let period = view::Period {
            blocks: &summary.blocks,
            verdicts: &summary.verdicts,
            checks: &summary.checks,
            overhead: &summary.overhead,
            secs,
            summary: true,
        };
        let title = format!("summary over {secs:.1} s");
        let text = view::render(&ctx, &title, &period, matches!(screen, Screen::Live));
        // A closed stdout (`| head`) is not worth an error at the end.
        let _ = writeln!(std::io::stdout().lock(), "\n{text}");
    }
    match reason {
        EndReason::IfaceGone => Err(Failure::Runtime(format!(
            "interface {} disappeared; stopped after {secs:.1} s (summary written)",
            dev.name
        ))),
        _ => Ok(()),
    }
}

/// Draw one period on the screen; true when stdout is closed.
fn show(screen: &Screen, ctx: &view::Context<'_>, title: &str, period: &view::Period) -> bool {
    match screen {
        Screen::Live => {
            let text = view::render(ctx, title, period, true);
            let mut out = std::io::stdout().lock();
            // Home, clear, redraw: the view replaces itself in place.
            write!(out, "\x1b[H\x1b[2J{text}")
                .and_then(|()| out.flush())
                .is_err()
        }
        Screen::Blocks => {
            let text = view::render(ctx, title, period, false);
            writeln!(std::io::stdout().lock(), "{text}").is_err()
        }
        Screen::Quiet => false,
    }
}

/// One line for the probes that fell back (they share a reason), one per failure.
fn report_probe_problems(status: &[crate::kernel::attach::ProbeStatus]) {
    use crate::kernel::attach::ProbeState;
    let degraded: Vec<_> = status
        .iter()
        .filter(|s| s.status == ProbeState::Degraded)
        .collect();
    if let Some(first) = degraded.first() {
        eprintln!(
            "toe-agent: {} of {} probes on classic tracepoints: {}",
            degraded.len(),
            status.len(),
            first.reason.as_deref().unwrap_or_default()
        );
    }
    for s in status.iter().filter(|s| s.status == ProbeState::Failed) {
        eprintln!(
            "toe-agent: probe {} ({}) failed: {}",
            s.name,
            s.hook,
            s.reason.as_deref().unwrap_or_default()
        );
    }
}

/// Write a record if NDJSON is on; `Ok(true)` when the reader went away.
fn emit(w: &mut Option<NdjsonWriter>, r: &Record) -> anyhow::Result<bool> {
    match w.as_mut().map(|w| w.write(r)) {
        Some(Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(true),
        Some(Err(e)) => Err(anyhow::Error::from(e).context("writing NDJSON")),
        _ => Ok(false),
    }
}

/// One period's record: the reading since `start`, judged.
fn interval(
    session: &mut Session,
    tracker: &mut overhead::Tracker,
    seq: u64,
    start: SystemTime,
    now: SystemTime,
) -> anyhow::Result<Interval> {
    let collect_start = Instant::now();
    let blocks = Blocks::from_totals(&session.interval()?);
    let collect_us = collect_start.elapsed().as_micros() as u64;
    let (start_unix_ns, end_unix_ns) = (unix_ns(start), unix_ns(now).max(unix_ns(start)));
    let secs = (end_unix_ns - start_unix_ns) as f64 / 1e9;
    let device = session.device();
    Ok(Interval {
        seq,
        start_unix_ns,
        end_unix_ns,
        verdicts: verdict::judge(&blocks, &device),
        checks: verdict::checks(&blocks, secs),
        overhead: tracker.sample(session.probes.stats(), &blocks, collect_us),
        blocks,
    })
}

async fn sample_loop(
    args: &TraceArgs,
    session: &mut Session,
    ctx: &view::Context<'_>,
    screen: &Screen,
    header: &Header,
    ndjson: &mut Option<NdjsonWriter>,
) -> anyhow::Result<(Summary, EndReason)> {
    let mut tracker = overhead::Tracker::new(session.probes.stats(), args.self_stats);
    let mut run_tracker = overhead::Tracker::new(session.probes.stats(), args.self_stats);
    let mut output_closed = emit(ndjson, &Record::Header(header.clone()))?;
    let run_start = SystemTime::now();
    let mut period_start = run_start;
    let start = Instant::now();
    let mut ticker = tokio::time::interval_at(start + args.interval, args.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let deadline = args.duration.map(|d| start + d);
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut seq = 0u64;

    let reason = loop {
        let mut ended = tokio::select! {
            _ = ticker.tick() => None,
            _ = async { tokio::time::sleep_until(deadline.unwrap_or(start)).await }, if deadline.is_some() => Some(EndReason::Duration),
            _ = sigterm.recv() => Some(EndReason::Signal),
            _ = sigint.recv() => Some(EndReason::Signal),
        };
        // A tick that lands on the deadline ends the run: no empty period after it.
        if ended.is_none() && deadline.is_some_and(|d| Instant::now() >= d) {
            ended = Some(EndReason::Duration);
        }
        // Every period ends with a reading, a short last one included.
        let now = SystemTime::now();
        seq += 1;
        let record = Record::Interval(interval(session, &mut tracker, seq, period_start, now)?);
        output_closed |= emit(ndjson, &record)?;
        if let Record::Interval(i) = &record {
            let secs = (i.end_unix_ns - i.start_unix_ns) as f64 / 1e9;
            let title = format!("interval {seq} ({secs:.2} s)");
            let period = view::Period {
                blocks: &i.blocks,
                verdicts: &i.verdicts,
                checks: &i.checks,
                overhead: &i.overhead,
                secs,
                summary: false,
            };
            output_closed |= show(screen, ctx, &title, &period);
        }
        period_start = now;
        if let Some(r) = ended {
            break r;
        }
        if output_closed {
            break EndReason::OutputClosed;
        }
        if !session.present() {
            break EndReason::IfaceGone;
        }
    };

    let blocks = Blocks::from_totals(&session.run_total());
    let secs = period_start
        .duration_since(run_start)
        .unwrap_or_default()
        .as_secs_f64();
    let device = session.device();
    let summary = Summary {
        start_unix_ns: unix_ns(run_start),
        end_unix_ns: unix_ns(period_start),
        intervals: seq,
        end_reason: reason,
        verdicts: verdict::judge(&blocks, &device),
        checks: verdict::checks(&blocks, secs),
        overhead: run_tracker.sample(session.probes.stats(), &blocks, 0),
        blocks,
    };
    emit(ndjson, &Record::Summary(summary.clone()))?;
    Ok((summary, reason))
}
