//! One sampling session: a device's probes attached, the baseline read at
//! once (whoever waits for the session finds every later packet counted),
//! then one delta per period. trace, serve and lab all sample through it.
//!
//! The programs that fire once per wire segment (the driver hand-off, GRO's
//! outcome, net_dev_start_xmit) run only in sampling windows: a thread
//! attaches them for `fraction` of every cycle and detaches them for the
//! rest (docs/sampling.md). The maps are read as a window opens and as it
//! closes, so the session knows what *every* program counted inside the
//! windows: the verdicts and the NIC's reconciliation are judged on that,
//! where the per-segment and the per-skb counts cover the same time.
use std::{
    sync::{Arc, Condvar, Mutex, MutexGuard},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::{
    kernel::attach::{Detached, Options, ProbeError, ProbeStatus, Probes},
    kernel::collect::{Collector, Source as _, Totals},
    kernel::overhead::ProgramStats,
    model::{nic::Nic, period::Blocks, period::Sampling, verdict},
    sys::{
        iface::{self, Iface},
        nic,
    },
};

/// What the probes counted over one period (an interval, or the run).
#[derive(Debug, Clone, Default)]
pub(crate) struct Period {
    /// Everything counted: the per-skb programs' counts are whole, the
    /// per-segment programs' only what the windows saw.
    pub(crate) all: Totals,
    /// Everything counted inside the sampling windows: what the verdicts
    /// are judged on. The same as `all` when every moment is sampled.
    pub(crate) sampled: Totals,
    pub(crate) sampling: Sampling,
}

impl Period {
    /// The period as users see it (`all`), and as the verdicts judge it
    /// (`sampled`), each saying how it was sampled.
    pub(crate) fn blocks(&self) -> (Blocks, Blocks) {
        let mut all = Blocks::from_totals(&self.all);
        let mut sampled = Blocks::from_totals(&self.sampled);
        all.sample = self.sampling;
        sampled.sample = self.sampling;
        (all, sampled)
    }
}

/// A window's opening: the readings it started from.
struct Mark {
    totals: Totals,
    nic: nic::Reading,
    at: Instant,
}

/// What the windows counted, summed, with the driver's counters over the
/// same time.
#[derive(Debug, Clone, Default)]
struct Windows {
    totals: Totals,
    nic: nic::Reading,
    secs: f64,
    count: u32,
}

impl Windows {
    fn add(&mut self, other: &Windows) {
        self.totals.add(&other.totals);
        self.nic.add(&other.nic);
        self.secs += other.secs;
        self.count += other.count;
    }
}

/// What the session and its window thread share.
struct State {
    probes: Probes,
    collector: Collector,
    iface: Iface,
    /// The open window, if one is.
    open: Option<Mark>,
    /// Windows (or their parts) since the last interval, and the run's.
    period: Windows,
    run: Windows,
    /// The last interval's windows, for [`Session::nic`].
    last: Windows,
    /// A window that could not open or close, said once by `kernel_log`.
    trouble: Vec<String>,
}

impl State {
    fn mark(&mut self) -> anyhow::Result<Mark> {
        Ok(Mark {
            totals: self.probes.source().read()?,
            nic: nic::Reading::take(&self.iface.name, self.iface.index),
            at: Instant::now(),
        })
    }

    /// Fold the open window into `period` up to `now`; `again` keeps it
    /// open from there.
    fn fold(&mut self, now: Mark, again: bool) {
        if let Some(m) = self.open.take() {
            self.period.add(&Windows {
                totals: now.totals.delta(&m.totals),
                nic: now.nic.since(&m.nic),
                secs: now.at.duration_since(m.at).as_secs_f64(),
                // A window split by a reading counts once, in the period
                // it closes in.
                count: u32::from(!again),
            });
            if again {
                self.open = Some(now);
            }
        }
    }

    /// What the per-segment programs counted in the open window so far:
    /// hand-offs and skbs given to the driver. A window that cannot be read
    /// counts as having seen enough, so that it closes.
    fn window_packets(&mut self) -> u64 {
        // No window open (it failed to): nothing to wait for; the next
        // cycle tries again.
        let Some(m) = &self.open else {
            return u64::MAX;
        };
        let Ok(now) = self.probes.source().read() else {
            return u64::MAX;
        };
        let seen = now.delta(&m.totals);
        let handoffs: u64 = seen.handoff.handoff_by_hook.iter().sum();
        let xmits: u64 = seen.tx.xmit_csum.iter().sum();
        handoffs + xmits
    }

    /// Attach, then read: every program runs for the whole window.
    fn open_window(&mut self) {
        if self.open.is_some() {
            return;
        }
        let done = self.probes.open_window().and_then(|()| self.mark());
        match done {
            Ok(m) => self.open = Some(m),
            Err(e) => self
                .trouble
                .push(format!("sampling window did not open: {e:#}")),
        }
    }

    /// Read, then take the per-segment links, for the caller to drop
    /// once the lock is released: what they count while they go is left
    /// out of the window.
    fn close_window(&mut self) -> Vec<Detached> {
        if self.open.is_none() {
            return Vec::new();
        }
        let done = self.mark().and_then(|now| {
            self.fold(now, false);
            self.probes.close_window()
        });
        done.unwrap_or_else(|e| {
            self.trouble
                .push(format!("sampling window did not close: {e:#}"));
            Vec::new()
        })
    }
}

/// The driver's counters `r`, beside the probes' `b` over the same time.
fn nic_of(r: &nic::Reading, b: &Blocks) -> Nic {
    Nic::of(
        r.qstats.clone(),
        r.qstats_error.clone(),
        r.counters.clone(),
        b,
    )
}

/// The thread that opens and closes the windows.
struct WindowThread {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl WindowThread {
    fn start(state: Arc<Mutex<State>>, fraction: f64, cycle: Duration) -> WindowThread {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("toe-windows".into())
            .spawn(move || windows(&state, &flag, fraction, cycle))
            .ok();
        WindowThread { stop, handle }
    }
}

impl Drop for WindowThread {
    fn drop(&mut self) {
        let (lock, cv) = &*self.stop;
        if let Ok(mut stop) = lock.lock() {
            *stop = true;
        }
        cv.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Sleep until `t`, or until asked to stop (then true).
fn stopped_before(stop: &(Mutex<bool>, Condvar), t: Instant) -> bool {
    let (lock, cv) = stop;
    let Ok(mut stopped) = lock.lock() else {
        return true;
    };
    while !*stopped {
        let left = t.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        match cv.wait_timeout(stopped, left) {
            Ok((s, _)) => stopped = s,
            Err(_) => return true,
        }
    }
    true
}

fn locked(state: &Mutex<State>) -> Option<MutexGuard<'_, State>> {
    state.lock().ok()
}

/// A window closes after its share of the cycle only once the per-segment
/// programs have counted this many packets in it (hand-offs and skbs given
/// to the driver); until then it stays open, into the following cycles if
/// need be. Below about 10,000 packets a second they cost the traffic
/// next to nothing (a few hundred ns each), and a short window would give
/// the verdicts too little to judge: a slow TCP transfer saw 57 skbs in
/// two 100 ms windows.
pub(crate) const MIN_WINDOW_PACKETS: u64 = 1_000;

/// Each cycle: the window opens at its start and is open for `fraction` of
/// it, or longer while it has seen fewer than [`MIN_WINDOW_PACKETS`]. The
/// first window opened with the attach.
fn windows(state: &Mutex<State>, stop: &(Mutex<bool>, Condvar), fraction: f64, cycle: Duration) {
    let open_for = cycle.mul_f64(fraction);
    let mut start = Instant::now();
    loop {
        let mut check = start + open_for;
        let links = loop {
            if stopped_before(stop, check) {
                return;
            }
            let Some(mut s) = locked(state) else {
                return;
            };
            if s.window_packets() >= MIN_WINDOW_PACKETS {
                break s.close_window();
            }
            check += open_for;
        };
        // Outside the lock: each waits for an RCU grace period.
        drop(links);
        // The next cycle's start; a late wake-up (a loaded machine) or a
        // window that ran long skips cycles rather than opening windows
        // back to back.
        let now = Instant::now();
        while start <= now {
            start += cycle;
        }
        if stopped_before(stop, start) {
            return;
        }
        match locked(state) {
            Some(mut s) => s.open_window(),
            None => return,
        }
    }
}

pub(crate) struct Session {
    pub(crate) iface: Iface,
    /// Each probe's fate at attach, and what they can see together.
    pub(crate) status: Vec<ProbeStatus>,
    pub(crate) coverage: verdict::Coverage,
    /// The share of time the per-segment programs run: 1 always, 0 never
    /// (`--per-skb`).
    fraction: f64,
    state: Arc<Mutex<State>>,
    /// Opens and closes the windows; `Drop` stops and joins it before
    /// the probes go.
    thread: Option<WindowThread>,
}

impl Session {
    /// Attach the probes to `iface` and take the baseline reading.
    pub(crate) fn attach(iface: Iface, opts: &Options) -> Result<Session, ProbeError> {
        let probes = Probes::attach(&iface, opts)?;
        // With the per-segment programs left out (--per-skb), the others
        // stay attached: no windows.
        let fraction = match probes.has_windowed() && !opts.per_skb {
            true => opts.sample.clamp(0.0, 1.0),
            false => 0.0,
        };
        let collector = Collector::new(&mut probes.source())
            .map_err(|e| ProbeError::Other(e.context("reading the probes' first counts")))?;
        let (status, coverage) = (probes.status.clone(), probes.coverage);
        let mut state = State {
            probes,
            collector,
            iface: iface.clone(),
            open: None,
            period: Windows::default(),
            run: Windows::default(),
            last: Windows::default(),
            trouble: Vec::new(),
        };
        // Every program is attached now: the first window is open, and
        // starts at the baseline.
        state.open = Some(
            state
                .mark()
                .map_err(|e| ProbeError::Other(e.context("reading the probes' first counts")))?,
        );
        let state = Arc::new(Mutex::new(state));
        let thread = (fraction > 0.0 && fraction < 1.0)
            .then(|| WindowThread::start(Arc::clone(&state), fraction, opts.cycle));
        Ok(Session {
            iface,
            status,
            coverage,
            fraction,
            state,
            thread,
        })
    }

    fn state(&self) -> anyhow::Result<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| anyhow::anyhow!("the sampling window thread failed"))
    }

    /// What the probes counted since the previous reading.
    pub(crate) fn interval(&mut self) -> anyhow::Result<Period> {
        let fraction = self.fraction;
        let mut st = self.state()?;
        let now = st.mark()?;
        let all = st.collector.advance(now.totals.clone());
        // The windows' time in this interval ends here; an open one goes on.
        let again = st.open.is_some();
        st.fold(now, again);
        let period = std::mem::take(&mut st.period);
        st.run.add(&period);
        st.last = period.clone();
        let sampling = self.sampling(&period);
        // With no per-segment programs, the windows are the whole time.
        let sampled = match fraction > 0.0 {
            true => period.totals,
            false => all.clone(),
        };
        Ok(Period {
            all,
            sampled,
            sampling,
        })
    }

    /// What they counted since the session began, up to the last reading.
    pub(crate) fn run_total(&self) -> Period {
        let Ok(st) = self.state() else {
            return Period::default();
        };
        let all = st.collector.run_total();
        Period {
            sampled: match self.fraction > 0.0 {
                true => st.run.totals.clone(),
                false => all.clone(),
            },
            all,
            sampling: self.sampling(&st.run),
        }
    }

    /// How `w` was sampled; with no per-segment programs (`--per-skb`),
    /// there are no windows.
    fn sampling(&self, w: &Windows) -> Sampling {
        let none = self.fraction == 0.0;
        Sampling {
            fraction: self.fraction,
            secs: if none { 0.0 } else { w.secs },
            windows: if none { 0 } else { w.count },
        }
    }

    /// The driver's word on the last period's windows, beside the probes'
    /// `b` over the same windows.
    pub(crate) fn nic(&self, b: &Blocks) -> Nic {
        self.state()
            .map(|st| nic_of(&st.last.nic, b))
            .unwrap_or_default()
    }

    /// The driver's word on the whole session's windows, with its RX ring.
    pub(crate) fn nic_run(&self, b: &Blocks) -> Nic {
        self.state()
            .map(|st| nic_of(&st.run.nic, b).with_ring(st.run.nic.rx_ring))
            .unwrap_or_default()
    }

    /// The programs' diagnostics since the last call, and any window that
    /// failed to open or close.
    pub(crate) fn kernel_log(&mut self) -> Vec<String> {
        let Ok(mut st) = self.state() else {
            return Vec::new();
        };
        let mut lines = st.probes.kernel_log();
        lines.append(&mut st.trouble);
        lines
    }

    /// The kernel's run counts and times of the programs.
    pub(crate) fn stats(&self) -> ProgramStats {
        self.state().map(|st| st.probes.stats()).unwrap_or_default()
    }

    /// What a user should hear about the attachment.
    pub(crate) fn problems(&self) -> Vec<String> {
        self.state()
            .map(|st| st.probes.problems())
            .unwrap_or_default()
    }

    /// What the verdicts need to know about the device now.
    pub(crate) fn device(&self) -> verdict::Device {
        iface::device(&self.iface, self.coverage)
    }

    /// The traced device still exists (a device of the same name that came
    /// back is another device, with another index).
    pub(crate) fn present(&self) -> bool {
        iface::index_of(&self.iface.name) == Some(self.iface.index)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // The thread first: it holds the probes too, and must not open a
        // window on a session going away.
        self.thread.take();
    }
}
