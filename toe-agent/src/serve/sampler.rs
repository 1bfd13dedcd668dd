//! The sampler thread: owns the probes (one set per interface), reads them
//! every interval, folds the deltas into cumulative totals and the verdict
//! window, and re-attaches when an interface comes back.
use super::*;

/// Packets that one period's verdicts say the CPU handled, per offload.
fn fallback_counts(b: &Blocks, verdicts: &[Verdict]) -> Vec<(&'static str, u64)> {
    verdicts
        .iter()
        .filter(|v| v.mechanism == Mechanism::Software)
        .map(|v| {
            let n = match v.offload {
                Offload::TxSegmentation => b.tx.xmit_skbs,
                Offload::TxChecksum => b.tx.csum.none,
                Offload::RxCoalescing => b.rx.segments,
                Offload::RxChecksum => b.rx.csum.none,
                Offload::Rss => b.rx.segments,
            };
            (v.offload.name(), n)
        })
        .collect()
}

/// One interface's sampling session and the window of recent periods.
pub(super) struct Attached {
    pub(super) session: Session,
    pub(super) window: VecDeque<Totals>,
}

fn attach(name: &str, opts: &Options, class: Option<DeviceClass>) -> Option<Attached> {
    let iface = iface::resolve(name, class).ok()?;
    match Session::attach(iface, opts) {
        Ok(session) => Some(Attached {
            session,
            window: VecDeque::new(),
        }),
        Err(e) => {
            eprintln!("toe-agent serve: {name}: {:#}", anyhow::Error::from(e));
            None
        }
    }
}

pub(super) fn run(
    args: &ServeArgs,
    state: &Arc<Mutex<State>>,
    stop: &AtomicBool,
    first: Vec<Option<Attached>>,
) {
    let opts = Options {
        per_skb: args.per_skb,
        ..Options::default()
    };
    let mut attached = first;
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
            // Gone (or replaced by a new device of the same name): detach.
            if attached[k].as_ref().is_some_and(|a| !a.session.present()) {
                attached[k] = None;
                eprintln!("toe-agent serve: {name} is gone; its series stop until it returns");
            }
            if attached[k].is_none() && iface::index_of(name).is_some() {
                // The session reads its baseline as it attaches: the first
                // interval counts from there.
                attached[k] = attach(name, &opts, args.device_class);
                if attached[k].is_some() {
                    eprintln!("toe-agent serve: {name} attached");
                }
            }
            let mut st = match state.lock() {
                Ok(s) => s,
                Err(_) => return,
            };
            let entry = st.ifaces.entry(name.clone()).or_default();
            let Some(a) = attached[k].as_mut() else {
                entry.up = false;
                continue;
            };
            let Ok(delta) = a.session.interval() else {
                entry.up = false;
                continue;
            };
            entry.up = true;
            entry.device = Some((a.session.iface.driver.clone(), a.session.iface.class));
            entry.totals.add(&delta);
            a.window.push_back(delta);
            while a.window.len() > args.window {
                a.window.pop_front();
            }
            let mut window = Totals::default();
            a.window.iter().for_each(|d| window.add(d));
            let blocks = Blocks::from_totals(&window);
            let device = a.session.device();
            entry.verdicts = verdict::judge(&blocks, &device);
            let newest = Blocks::from_totals(a.window.back().unwrap_or(&Totals::default()));
            for (o, n) in fallback_counts(&newest, &entry.verdicts) {
                *entry.fallbacks.entry(o).or_default() += n;
            }
        }
        if let Ok(mut st) = state.lock() {
            st.agent_cpu_ns = overhead::process_cpu_ns();
            st.agent_rss = overhead::rss_bytes("self").0;
            let programs: overhead::ProgramStats = attached
                .iter()
                .flatten()
                .map(|a| a.session.probes.stats())
                .sum();
            st.bpf_runs = programs.run_count;
            st.bpf_run_ns = programs.run_time_ns;
            st.bpf_missed = programs.missed_runs;
        }
    }
    // Detach everything before saying goodbye.
    drop(attached);
    if let Ok(mut st) = state.lock() {
        st.sampler_alive = false;
    }
}
