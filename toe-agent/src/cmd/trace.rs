//! `toe-agent trace`: attach, sample every interval, render, detach.
use std::{
    io::{IsTerminal, Write},
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
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
    model::nic::Nic,
    model::period::{Blocks, Rates},
    model::verdict,
    sinks::ndjson::{EndReason, Header, Interval, NdjsonWriter, Record, SCHEMA_VERSION, Summary},
    sinks::tui::{Action, Snapshot, Tui},
    sinks::view,
    sys::iface,
};

pub struct TraceArgs {
    pub iface: String,
    pub interval: Duration,
    pub duration: Option<Duration>,
    pub ndjson: Option<PathBuf>,
    pub classic_only: bool,
    /// `--log-level`: the programs' diagnostics shown.
    pub log_level: log::LevelFilter,
    pub self_stats: bool,
    /// Leave out the per-segment hooks.
    pub per_skb: bool,
    /// `--sample`: the share of time the per-segment hooks run.
    pub sample: f64,
    /// `--device-class`: judge the device as this class.
    pub device_class: Option<DeviceClass>,
    /// `--plain`: text blocks even on a terminal.
    pub plain: bool,
}

fn unix_ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Where the text view goes.
enum Screen {
    /// The live terminal view (stdout is a terminal), and the programs'
    /// diagnostics held until it gives the terminal back.
    Live(Box<Tui>, Vec<String>),
    /// One block per interval (stdout is a pipe or file, or `--plain`).
    Blocks,
    /// Nothing: stdout carries NDJSON.
    Quiet,
}

impl Screen {
    /// Nothing when NDJSON goes to stdout; the live view on a terminal;
    /// plain blocks into a pipe or file, or when asked for.
    fn of(args: &TraceArgs) -> anyhow::Result<Screen> {
        Ok(
            if args.ndjson.as_deref() == Some(std::path::Path::new("-")) {
                Screen::Quiet
            } else if args.plain || !std::io::stdout().is_terminal() {
                Screen::Blocks
            } else {
                Screen::Live(
                    Box::new(Tui::start().context("starting the live view")?),
                    Vec::new(),
                )
            },
        )
    }

    /// The next key or resize of the live view; never, otherwise.
    async fn event(&mut self) -> crossterm::event::Event {
        match self {
            Screen::Live(tui, _) => tui.event().await,
            _ => std::future::pending().await,
        }
    }

    /// A diagnostic of the programs: on stderr now, or once the live view
    /// has given the terminal back.
    fn say(&mut self, line: String) {
        match self {
            Screen::Live(_, held) => held.push(line),
            _ => eprintln!("toe-agent: {line}"),
        }
    }

    /// Give the terminal back (the live view's alternate screen and raw
    /// mode) and say whether the summary still goes to stdout, and in
    /// colour.
    fn close(self) -> Option<bool> {
        match self {
            Screen::Live(tui, held) => {
                drop(tui);
                held.iter().for_each(|l| eprintln!("toe-agent: {l}"));
                Some(true)
            }
            Screen::Blocks => Some(false),
            Screen::Quiet => None,
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
        probes: session.status.clone(),
    }
}

pub fn run(args: TraceArgs) -> Result<(), Failure> {
    let dev = iface::resolve(&args.iface, args.device_class)
        .map_err(|e| Failure::BadInput(e.to_string()))?;
    // A bad output path fails before anything is attached; the file itself
    // is truncated only once the probes are (a failed start keeps it).
    let cannot_write = |p: &std::path::Path, e| {
        Failure::BadInput(format!("cannot write NDJSON to {}: {e}", p.display()))
    };
    if let Some(p) = &args.ndjson {
        NdjsonWriter::check(p).map_err(|e| cannot_write(p, e))?;
    }

    // SIGINT or SIGTERM while the programs load and attach must not kill
    // the agent half-way (an empty NDJSON file, no summary): note it, and
    // end the run at its first reading.
    let early_stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&early_stop))
            .map_err(|e| Failure::Runtime(format!("installing the signal handlers: {e}")))?;
    }
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
        log_level: args.log_level,
        sample: args.sample,
        cycle: cycle(args.interval),
    };
    let mut session = Session::attach(dev.clone(), &options).map_err(Failure::runtime)?;
    let mut ndjson = match &args.ndjson {
        Some(p) => Some(NdjsonWriter::create(p).map_err(|e| cannot_write(p, e))?),
        None => None,
    };
    for line in session.problems() {
        eprintln!("toe-agent: {line}");
    }
    let header = header(&dev, &args, &session);
    let ctx = view::Context::of(&header);

    // The live view takes the terminal once the probe notices are out:
    // they stay on the normal screen, above the summary.
    let mut screen = Screen::of(&args).map_err(|e| Failure::Runtime(format!("{e:#}")))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .map_err(|e| Failure::Runtime(format!("{e:#}")))?;
    let outcome = runtime.block_on(sample_loop(
        &args,
        &mut session,
        &ctx,
        &mut screen,
        &header,
        &mut ndjson,
        &early_stop,
    ));
    // Detach everything before the final words, whatever happened.
    drop(session);
    drop(stats);
    // The terminal back before any final words, error or summary.
    let summary_colour = screen.close();
    let (summary, reason) = outcome.map_err(|e| Failure::Runtime(format!("{e:#}")))?;
    let secs = (summary.end_unix_ns.saturating_sub(summary.start_unix_ns)) as f64 / 1e9;
    if let Some(colour) = summary_colour {
        print_summary(&ctx, &summary, secs, colour);
    }
    match reason {
        EndReason::IfaceGone => Err(Failure::Runtime(format!(
            "interface {} disappeared; stopped after {secs:.1} s (summary written)",
            dev.name
        ))),
        _ => Ok(()),
    }
}

/// The run's summary in the text view, on the normal screen.
fn print_summary(ctx: &view::Context<'_>, summary: &Summary, secs: f64, colour: bool) {
    let period = view::Period {
        blocks: &summary.blocks,
        verdicts: &summary.verdicts,
        checks: &summary.checks,
        overhead: &summary.overhead,
        secs,
        summary: true,
        nic: Some(&summary.nic),
    };
    let title = format!("summary over {secs:.1} s");
    let text = view::render(ctx, &title, &period, colour);
    // A closed stdout (`| head`) is not worth an error at the end.
    let _ = writeln!(std::io::stdout().lock(), "\n{text}");
}

/// Draw one interval; true when stdout is closed. The live view also
/// gets the run so far, for its run-totals mode and its trends.
fn show(
    screen: &mut Screen,
    ctx: &view::Context<'_>,
    session: &Session,
    run_start_ns: u64,
    i: &Interval,
) -> bool {
    let secs = (i.end_unix_ns - i.start_unix_ns) as f64 / 1e9;
    let title = format!("interval {} ({secs:.2} s)", i.seq);
    match screen {
        Screen::Live(tui, _) => {
            let run = run_so_far(session, run_start_ns, i);
            let interval = Snapshot {
                title,
                blocks: i.blocks.clone(),
                verdicts: i.verdicts.clone(),
                checks: i.checks.clone(),
                overhead: i.overhead.clone(),
                secs,
                nic: i.nic.clone(),
            };
            let cov = crate::kernel::attach::coverage(ctx.probes);
            let rates = Rates::of(&i.blocks, secs, cov.driver_xmit);
            tui.push(interval, run, &rates);
            !tui.draw(ctx)
        }
        Screen::Blocks => {
            let period = view::Period {
                blocks: &i.blocks,
                verdicts: &i.verdicts,
                checks: &i.checks,
                overhead: &i.overhead,
                secs,
                summary: false,
                nic: Some(&i.nic),
            };
            let text = view::render(ctx, &title, &period, false);
            writeln!(std::io::stdout().lock(), "{text}").is_err()
        }
        Screen::Quiet => false,
    }
}

/// The sampling cycle for readings every `interval`: a window in every
/// interval, and at least one a second (docs/sampling.md).
pub(crate) fn cycle(interval: Duration) -> Duration {
    interval.min(Duration::from_secs(1))
}

/// The run up to the end of interval `i`, judged, for the live view.
fn run_so_far(session: &Session, run_start_ns: u64, i: &Interval) -> Snapshot {
    let (blocks, sampled) = session.run_total().blocks();
    let secs = i.end_unix_ns.saturating_sub(run_start_ns) as f64 / 1e9;
    let nic = session.nic_run(&sampled);
    let (verdicts, checks) = judged(&blocks, &sampled, &nic, &session.device(), secs);
    Snapshot {
        title: format!("run {secs:.1} s"),
        verdicts,
        checks,
        overhead: i.overhead.clone(),
        blocks,
        secs,
        nic,
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

/// A period's verdicts and checks: the verdicts judged on what its sampling
/// windows saw (`sampled`), with what the driver's counters over the same
/// windows say where they disagree; the thresholds on the whole period.
fn judged(
    blocks: &Blocks,
    sampled: &Blocks,
    nic: &Nic,
    device: &verdict::Device,
    secs: f64,
) -> (Vec<verdict::Verdict>, Vec<verdict::Check>) {
    let mut verdicts = verdict::judge(sampled, device);
    nic.annotate(&mut verdicts);
    let mut checks = verdict::checks(blocks, secs);
    checks.extend(nic.checks());
    (verdicts, checks)
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
    let (blocks, sampled) = session.interval()?.blocks();
    let collect_us = collect_start.elapsed().as_micros() as u64;
    let (start_unix_ns, end_unix_ns) = (unix_ns(start), unix_ns(now).max(unix_ns(start)));
    let secs = (end_unix_ns - start_unix_ns) as f64 / 1e9;
    let nic = session.nic(&sampled);
    let (verdicts, checks) = judged(&blocks, &sampled, &nic, &session.device(), secs);
    Ok(Interval {
        seq,
        start_unix_ns,
        end_unix_ns,
        verdicts,
        checks,
        overhead: tracker.sample(session.stats(), &blocks, collect_us),
        blocks,
        nic,
    })
}

/// A key or resize in the live view: redraw, or the reason to end.
fn on_event(
    screen: &mut Screen,
    ctx: &view::Context<'_>,
    e: crossterm::event::Event,
) -> Option<EndReason> {
    let Screen::Live(tui, _) = screen else {
        return None;
    };
    match tui.handle(e) {
        Action::Quit => Some(EndReason::Quit),
        // A terminal that cannot be drawn on any more ends the run as a
        // closed stdout does.
        Action::Redraw if !tui.draw(ctx) => Some(EndReason::OutputClosed),
        _ => None,
    }
}

async fn sample_loop(
    args: &TraceArgs,
    session: &mut Session,
    ctx: &view::Context<'_>,
    screen: &mut Screen,
    header: &Header,
    ndjson: &mut Option<NdjsonWriter>,
    early_stop: &AtomicBool,
) -> anyhow::Result<(Summary, EndReason)> {
    let mut tracker = overhead::Tracker::new(session.stats(), args.self_stats);
    let mut run_tracker = overhead::Tracker::new(session.stats(), args.self_stats);
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
        // A signal before the handlers below existed (during attach) ends
        // the run at once. Keys and resizes redraw the live view between
        // readings.
        let mut ended = if early_stop.swap(false, Ordering::Relaxed) {
            Some(EndReason::Signal)
        } else {
            loop {
                tokio::select! {
                    _ = ticker.tick() => break None,
                    _ = async { tokio::time::sleep_until(deadline.unwrap_or(start)).await }, if deadline.is_some() => break Some(EndReason::Duration),
                    _ = sigterm.recv() => break Some(EndReason::Signal),
                    _ = sigint.recv() => break Some(EndReason::Signal),
                    e = screen.event() => if let Some(r) = on_event(screen, ctx, e) { break Some(r) },
                }
            }
        };
        // A tick that lands on the deadline ends the run: no empty period after it.
        if ended.is_none() && deadline.is_some_and(|d| Instant::now() >= d) {
            ended = Some(EndReason::Duration);
        }
        // Every period ends with a reading, a short last one included.
        let now = SystemTime::now();
        seq += 1;
        let record = Record::Interval(interval(session, &mut tracker, seq, period_start, now)?);
        for line in session.kernel_log() {
            screen.say(line);
        }
        output_closed |= emit(ndjson, &record)?;
        if let Record::Interval(i) = &record {
            output_closed |= show(screen, ctx, session, unix_ns(run_start), i);
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

    let run = Run {
        start: run_start,
        end: period_start,
        intervals: seq,
        reason,
    };
    let summary = summary(session, &mut run_tracker, &run);
    emit(ndjson, &Record::Summary(summary.clone()))?;
    Ok((summary, reason))
}

/// A run's extent and how it ended.
struct Run {
    start: SystemTime,
    end: SystemTime,
    intervals: u64,
    reason: EndReason,
}

/// The whole run, judged.
fn summary(session: &Session, tracker: &mut overhead::Tracker, run: &Run) -> Summary {
    let (blocks, sampled) = session.run_total().blocks();
    let secs = run
        .end
        .duration_since(run.start)
        .unwrap_or_default()
        .as_secs_f64();
    let nic = session.nic_run(&sampled);
    let (verdicts, checks) = judged(&blocks, &sampled, &nic, &session.device(), secs);
    Summary {
        start_unix_ns: unix_ns(run.start),
        end_unix_ns: unix_ns(run.end),
        intervals: run.intervals,
        end_reason: run.reason,
        verdicts,
        checks,
        overhead: tracker.sample(session.stats(), &blocks, 0),
        blocks,
        nic,
    }
}
