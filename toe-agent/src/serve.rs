//! `toe-agent serve`: the probes stay attached and `/metrics` exposes what
//! they measured, in the Prometheus/OpenMetrics text format (encoded by the
//! prometheus-client library), for fleets. Metric names: docs/metrics.md.
//!
//! One sampler thread owns the probes (one set per interface) and folds
//! each interval into cumulative totals; HTTP requests only read them. An
//! interface that disappears is detached and its series stop; when a device
//! of that name comes back, probes are attached again and its counters go on
//! from where they were.
use std::{
    collections::{BTreeMap, VecDeque},
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use http_body_util::Full;
use hyper::{Request, Response, StatusCode, body::Bytes, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::Registry,
};
use toe_agent_common::{Hist, SOFTIRQ_NET_RX, SOFTIRQ_NET_TX, hist::bucket_upper_bound};

use crate::{
    Failure,
    class::DeviceClass,
    collect::Totals,
    iface::{self, Iface},
    overhead,
    probes::{Options, Probes},
    report::Blocks,
    verdict::{self, Mechanism, Offload, Verdict},
};

pub struct ServeArgs {
    pub ifaces: Vec<String>,
    pub listen: SocketAddr,
    pub interval: Duration,
    /// Intervals the verdicts are judged over.
    pub window: usize,
    pub self_stats: bool,
    /// Leave out the per-segment hooks (`--per-skb`).
    pub per_skb: bool,
    /// `--device-class`: judge every device as this class.
    pub device_class: Option<crate::class::DeviceClass>,
}

/// What the sampler knows about one interface.
#[derive(Debug, Default)]
struct IfaceState {
    up: bool,
    /// Cumulative since the agent started, across re-attachments.
    totals: Totals,
    /// Software fallbacks by offload, cumulative.
    fallbacks: BTreeMap<&'static str, u64>,
    verdicts: Vec<Verdict>,
    /// Driver and device class of the device last attached.
    device: Option<(String, DeviceClass)>,
}

#[derive(Debug, Default)]
struct State {
    ifaces: BTreeMap<String, IfaceState>,
    agent_cpu_ns: u64,
    agent_rss: u64,
    bpf_runs: u64,
    bpf_run_ns: u64,
    bpf_missed: u64,
    self_stats: bool,
    kernel: String,
    sampler_alive: bool,
}

#[derive(Debug, Clone)]
struct Metrics(Arc<Mutex<State>>);

/// Labels as prometheus-client wants them.
type Labels = Vec<(&'static str, String)>;

/// One metric family of constant values: a counter (`ConstCounter`) or a
/// gauge (`ConstGauge`), whatever the value type.
fn family<M: EncodeMetric, V: Copy>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    series: &[(Labels, V)],
    metric: impl Fn(V) -> M,
) -> std::fmt::Result {
    if series.is_empty() {
        return Ok(());
    }
    let mut m = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, v) in series {
        metric(*v).encode(m.encode_family(labels)?)?;
    }
    Ok(())
}

/// A counter family, of integer or floating-point values.
fn counter<V: Copy>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Labels, V)],
) -> std::fmt::Result
where
    ConstCounter<V>: EncodeMetric,
{
    family(
        enc,
        name,
        help,
        MetricType::Counter,
        series,
        ConstCounter::new,
    )
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Labels, i64)],
) -> std::fmt::Result {
    family(enc, name, help, MetricType::Gauge, series, ConstGauge::new)
}

/// The kernel's log-linear buckets merged to powers of two (a log-linear
/// bucket never straddles one, so the merge is exact), plus +Inf.
fn pow2_buckets(h: &Hist, scale: f64) -> Vec<(f64, u64)> {
    let mut out: Vec<(f64, u64)> = (0..=32)
        .map(|p| (((1u64 << p) as f64 - 1.0).max(0.0) * scale, 0))
        .collect();
    for (i, &c) in h.buckets.iter().enumerate().filter(|(_, c)| **c != 0) {
        let upper = bucket_upper_bound(i);
        let p = (64 - upper.leading_zeros()).min(32) as usize;
        out[p].1 += c;
    }
    out.push((f64::INFINITY, 0));
    out
}

fn histogram(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    scale: f64,
    series: &[(Labels, &Hist)],
) -> std::fmt::Result {
    if series.is_empty() {
        return Ok(());
    }
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
    for (labels, h) in series {
        let buckets = pow2_buckets(h, scale);
        m.encode_family(labels)?.encode_histogram::<NoLabelSet>(
            h.sum as f64 * scale,
            h.count(),
            &buckets,
            None,
        )?;
    }
    Ok(())
}

const CSUM_STATES: [&str; 4] = ["none", "unnecessary", "complete", "partial"];

impl Collector for Metrics {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0.lock().map_err(|_| std::fmt::Error)?;
        let l = |iface: &str| -> Labels { vec![("iface", iface.to_string())] };
        gauge(
            &mut enc,
            "toe_build_info",
            "Agent version and kernel.",
            &[(
                vec![
                    ("version", env!("CARGO_PKG_VERSION").to_string()),
                    ("kernel", s.kernel.clone()),
                ],
                1,
            )],
        )?;
        let all: Vec<(&String, &IfaceState)> = s.ifaces.iter().collect();
        gauge(
            &mut enc,
            "toe_iface_up",
            "1 while the interface exists and its probes are attached.",
            &all.iter()
                .map(|(n, i)| (l(n), i.up as i64))
                .collect::<Vec<_>>(),
        )?;
        let up: Vec<&(&String, &IfaceState)> = all.iter().filter(|(_, i)| i.up).collect();
        gauge(
            &mut enc,
            "toe_device_info",
            "Driver and device class (physical, paravirtual, virtual) the verdicts judge the device as.",
            &up.iter()
                .filter_map(|(n, i)| {
                    let (driver, class) = i.device.as_ref()?;
                    Some((
                        vec![
                            ("iface", n.to_string()),
                            ("driver", driver.clone()),
                            ("device_class", class.name().to_string()),
                        ],
                        1,
                    ))
                })
                .collect::<Vec<_>>(),
        )?;
        let per = |f: &dyn Fn(&Totals) -> u64| -> Vec<(Labels, u64)> {
            up.iter().map(|(n, i)| (l(n), f(&i.totals))).collect()
        };
        counter(
            &mut enc,
            "toe_rx_segments",
            "Packets handed up by the driver (before GRO).",
            &per(&|t| t.rx.segment_len.count()),
        )?;
        counter(
            &mut enc,
            "toe_rx_skbs",
            "skbs delivered to the stack after GRO.",
            &per(&|t| t.rx.skb_len.count()),
        )?;
        counter(
            &mut enc,
            "toe_rx_bytes",
            "Bytes delivered to the stack (skb->len after GRO).",
            &per(&|t| t.rx.skb_len.sum),
        )?;
        counter(
            &mut enc,
            "toe_tx_queued_skbs",
            "skbs at net_dev_queue (before GSO).",
            &per(&|t| t.tx.queued_len.count()),
        )?;
        counter(
            &mut enc,
            "toe_tx_xmit_skbs",
            "skbs handed to the driver (net_dev_start_xmit).",
            &per(&|t| t.tx.xmit_len.count()),
        )?;
        counter(
            &mut enc,
            "toe_tx_wire_segments",
            "Segments the device must put on the wire.",
            &per(&|t| t.tx.segs_per_xmit.sum),
        )?;
        counter(
            &mut enc,
            "toe_tx_bytes",
            "Bytes handed to the driver.",
            &per(&|t| t.tx.xmit_len.sum),
        )?;
        counter(
            &mut enc,
            "toe_napi_polls",
            "NAPI polls of the interface.",
            &per(&|t| t.napi.work.count()),
        )?;
        counter(
            &mut enc,
            "toe_napi_budget_exhausted",
            "NAPI polls that used their whole budget.",
            &per(&|t| t.napi.budget_exhausted),
        )?;
        counter(
            &mut enc,
            "toe_tcp_bad_csum",
            "TCP segments with a bad checksum found by the CPU.",
            &per(&|t| t.rx.bad_csum),
        )?;
        type CsumOf = fn(&Totals) -> &[u64; 4];
        let csum = |stages: [(&str, CsumOf); 2]| -> Vec<(Labels, u64)> {
            let mut out = Vec::new();
            for (n, i) in &up {
                for (stage, of) in stages {
                    for (state, count) in CSUM_STATES.iter().zip(of(&i.totals)) {
                        let labels = vec![
                            ("iface", n.to_string()),
                            ("stage", stage.to_string()),
                            ("state", state.to_string()),
                        ];
                        out.push((labels, *count));
                    }
                }
            }
            out
        };
        let rx_csum = csum([
            ("handoff", |t| &t.rx.segment_csum),
            ("after_gro", |t| &t.rx.skb_csum),
        ]);
        counter(
            &mut enc,
            "toe_rx_csum",
            "Received packets by ip_summed state.",
            &rx_csum,
        )?;
        let tx_csum = csum([
            ("queue", |t| &t.tx.queued_csum),
            ("xmit", |t| &t.tx.xmit_csum),
        ]);
        counter(
            &mut enc,
            "toe_tx_csum",
            "Transmitted skbs by ip_summed state.",
            &tx_csum,
        )?;
        let fallbacks: Vec<(Labels, u64)> = up
            .iter()
            .flat_map(|(n, i)| {
                i.fallbacks.iter().map(move |(o, v)| {
                    (
                        vec![("iface", n.to_string()), ("offload", o.to_string())],
                        *v,
                    )
                })
            })
            .collect();
        counter(
            &mut enc,
            "toe_software_fallback",
            "Packets whose offload work was done by the CPU (per offload verdict).",
            &fallbacks,
        )?;
        let hists = |f: &dyn Fn(&Totals) -> &Hist| -> Vec<(Labels, &Hist)> {
            up.iter().map(|(n, i)| (l(n), f(&i.totals))).collect()
        };
        histogram(
            &mut enc,
            "toe_rx_segment_bytes",
            "Length of packets at the driver hand-off (before GRO).",
            1.0,
            &hists(&|t| &t.rx.segment_len),
        )?;
        histogram(
            &mut enc,
            "toe_rx_skb_bytes",
            "Length of skbs after GRO.",
            1.0,
            &hists(&|t| &t.rx.skb_len),
        )?;
        histogram(
            &mut enc,
            "toe_rx_segments_per_skb",
            "Segments merged into each skb by GRO.",
            1.0,
            &hists(&|t| &t.rx.segs_per_skb),
        )?;
        histogram(
            &mut enc,
            "toe_tx_queued_bytes",
            "Length of skbs at net_dev_queue (before GSO).",
            1.0,
            &hists(&|t| &t.tx.queued_len),
        )?;
        histogram(
            &mut enc,
            "toe_tx_xmit_bytes",
            "Length of skbs handed to the driver (after GSO).",
            1.0,
            &hists(&|t| &t.tx.xmit_len),
        )?;
        histogram(
            &mut enc,
            "toe_tx_segments_per_xmit",
            "Segments per skb handed to the driver.",
            1.0,
            &hists(&|t| &t.tx.segs_per_xmit),
        )?;
        histogram(
            &mut enc,
            "toe_napi_work_packets",
            "Packets processed per NAPI poll.",
            1.0,
            &hists(&|t| &t.napi.work),
        )?;
        // Softirqs are host-wide: every interface's probes see the same ones,
        // so the first interface up speaks for the host.
        if let Some((_, i)) = up.first() {
            let mut dur = Vec::new();
            let mut time: Vec<(Labels, f64)> = Vec::new();
            let mut merged = [Hist::ZERO, Hist::ZERO];
            for (name, v) in [("net_rx", SOFTIRQ_NET_RX), ("net_tx", SOFTIRQ_NET_TX)] {
                for (cpu, c) in i
                    .totals
                    .softirq
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.count[v] != 0)
                {
                    crate::collect::Counters::add(&mut merged[v], &c.duration[v]);
                    time.push((
                        vec![("vec", name.to_string()), ("cpu", cpu.to_string())],
                        c.time_ns[v] as f64 * 1e-9,
                    ));
                }
            }
            for (name, v) in [("net_rx", SOFTIRQ_NET_RX), ("net_tx", SOFTIRQ_NET_TX)] {
                dur.push((vec![("vec", name.to_string())], &merged[v]));
            }
            counter(
                &mut enc,
                "toe_softirq_seconds",
                "Time spent in the NET_RX/NET_TX softirq, per CPU.",
                &time,
            )?;
            histogram(
                &mut enc,
                "toe_softirq_duration_seconds",
                "Duration of NET_RX/NET_TX softirq runs.",
                1e-9,
                &dur,
            )?;
        }
        let mut verdicts = Vec::new();
        let mut mismatch = Vec::new();
        for (n, i) in &up {
            for v in &i.verdicts {
                let configured = v
                    .configured
                    .as_ref()
                    .map(|c| format!("{}={}", c.feature, if c.active { "on" } else { "off" }))
                    .unwrap_or_else(|| "unknown".into());
                verdicts.push((
                    vec![
                        ("iface", n.to_string()),
                        ("offload", v.offload.name().to_string()),
                        ("mechanism", v.mechanism.name().to_string()),
                        ("configured", configured),
                        ("mismatch", v.mismatch.to_string()),
                    ],
                    1,
                ));
                mismatch.push((
                    vec![
                        ("iface", n.to_string()),
                        ("offload", v.offload.name().to_string()),
                    ],
                    v.mismatch as i64,
                ));
            }
        }
        gauge(
            &mut enc,
            "toe_offload_verdict",
            "1 for the current verdict of each offload (over the verdict window).",
            &verdicts,
        )?;
        gauge(
            &mut enc,
            "toe_offload_mismatch",
            "1 when an offload's configuration and observation disagree.",
            &mismatch,
        )?;
        counter(
            &mut enc,
            "toe_agent_cpu_seconds",
            "CPU time of the agent (user + system).",
            &[(vec![], s.agent_cpu_ns as f64 * 1e-9)],
        )?;
        gauge(
            &mut enc,
            "toe_agent_resident_memory_bytes",
            "Resident set size of the agent.",
            &[(vec![], s.agent_rss as i64)],
        )?;
        counter(
            &mut enc,
            "toe_bpf_program_missed_runs",
            "Runs of the agent's BPF programs the kernel skipped (recursion): events not seen.",
            &[(vec![], s.bpf_missed)],
        )?;
        if s.self_stats {
            counter(
                &mut enc,
                "toe_bpf_program_runs",
                "Runs of the agent's BPF programs (kernel BPF statistics).",
                &[(vec![], s.bpf_runs)],
            )?;
            counter(
                &mut enc,
                "toe_bpf_program_run_seconds",
                "Run time of the agent's BPF programs.",
                &[(vec![], s.bpf_run_ns as f64 * 1e-9)],
            )?;
        }
        Ok(())
    }
}

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

/// One interface's probes and the window of recent periods.
struct Attached {
    iface: Iface,
    probes: Probes,
    window: VecDeque<Totals>,
}

fn attach(name: &str, opts: &Options, class: Option<DeviceClass>) -> Option<Attached> {
    let iface = iface::resolve(name, class).ok()?;
    match Probes::attach(&iface, opts) {
        Ok(probes) => Some(Attached {
            iface,
            probes,
            window: VecDeque::new(),
        }),
        Err(e) => {
            eprintln!("toe-agent serve: {name}: {:#}", anyhow::Error::from(e));
            None
        }
    }
}

fn sampler(
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
    // The previous cumulative reading per interface (None right after an
    // attach: the first period only sets the baseline).
    // The baseline of each interface is read as soon as it is attached, so
    // the first interval counts from there.
    let baseline = |a: &mut Option<Attached>| {
        a.as_mut()
            .and_then(|a| crate::collect::Source::read(&mut a.probes.source()).ok())
    };
    let mut last: Vec<Option<Totals>> = attached.iter_mut().map(baseline).collect();
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
            let present = iface::index_of(name);
            if let Some(a) = &attached[k]
                && present != Some(a.iface.index)
            {
                attached[k] = None;
                last[k] = None;
                eprintln!("toe-agent serve: {name} is gone; its series stop until it returns");
            }
            if attached[k].is_none() && present.is_some() {
                attached[k] = attach(name, &opts, args.device_class);
                last[k] = baseline(&mut attached[k]);
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
            let Ok(now) = crate::collect::Source::read(&mut a.probes.source()) else {
                entry.up = false;
                continue;
            };
            let delta = match &last[k] {
                Some(prev) => now.delta(prev),
                None => Totals::default(),
            };
            last[k] = Some(now);
            entry.up = true;
            entry.device = Some((a.iface.driver.clone(), a.iface.class));
            entry.totals.add(&delta);
            a.window.push_back(delta);
            while a.window.len() > args.window {
                a.window.pop_front();
            }
            let mut window = Totals::default();
            a.window.iter().for_each(|d| window.add(d));
            let blocks = Blocks::from_totals(&window);
            let device = iface::device(&a.iface, a.probes.coverage);
            entry.verdicts = verdict::judge(&blocks, &device);
            let newest = Blocks::from_totals(a.window.back().unwrap_or(&Totals::default()));
            for (o, n) in fallback_counts(&newest, &entry.verdicts) {
                *entry.fallbacks.entry(o).or_default() += n;
            }
        }
        if let Ok(mut st) = state.lock() {
            st.agent_cpu_ns = overhead::process_cpu_ns();
            st.agent_rss = overhead::rss_bytes("self").0;
            let programs: overhead::ProgramStats =
                attached.iter().flatten().map(|a| a.probes.stats()).sum();
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

/// The classic Prometheus text format (0.0.4) for clients that do not ask
/// for OpenMetrics (curl, `promtool check metrics`, older scrapers). The
/// library writes OpenMetrics; the two differ only in that counter families
/// are named with their `_total` suffix in HELP/TYPE and there is no
/// `# EOF` or `# UNIT`.
pub(crate) fn prometheus_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    registry: Arc<Registry>,
    state: Arc<Mutex<State>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let reply = |code: StatusCode, ctype: &str, body: String| {
        Response::builder()
            .status(code)
            .header("content-type", ctype)
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
    };
    Ok(match (req.method(), req.uri().path()) {
        (&hyper::Method::GET, "/metrics") => {
            let openmetrics = req
                .headers()
                .get(hyper::header::ACCEPT)
                .and_then(|a| a.to_str().ok())
                .is_some_and(|a| a.contains("application/openmetrics-text"));
            let mut text = String::new();
            match prometheus_client::encoding::text::encode(&mut text, &registry) {
                Ok(()) if openmetrics => reply(
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    text,
                ),
                Ok(()) => reply(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    prometheus_text(&text),
                ),
                Err(_) => reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    "encoding failed\n".into(),
                ),
            }
        }
        (&hyper::Method::GET, "/healthz") => {
            let (alive, up) = state
                .lock()
                .map(|s| (s.sampler_alive, s.ifaces.values().filter(|i| i.up).count()))
                .unwrap_or((false, 0));
            if alive && up > 0 {
                reply(
                    StatusCode::OK,
                    "text/plain",
                    format!("ok: {up} interface(s) traced\n"),
                )
            } else {
                reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain",
                    "no interface traced\n".into(),
                )
            }
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics or /healthz\n".into(),
        ),
    })
}

pub fn run(args: ServeArgs) -> Result<(), Failure> {
    if args.ifaces.is_empty() {
        return Err(Failure::BadInput("give at least one --iface".into()));
    }
    // Interfaces must exist at start (a typo is not "down").
    for n in &args.ifaces {
        iface::resolve(n, args.device_class).map_err(|e| Failure::BadInput(e.to_string()))?;
    }
    let state = Arc::new(Mutex::new(State {
        self_stats: args.self_stats,
        kernel: crate::host::kernel_release(),
        sampler_alive: true,
        ..State::default()
    }));
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Metrics(Arc::clone(&state))));
    let registry = Arc::new(registry);
    let stop = Arc::new(AtomicBool::new(false));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("starting the runtime: {e}")))?;
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(args.listen))
        .map_err(|e| Failure::BadInput(format!("cannot listen on {}: {e}", args.listen)))?;
    // Bound first: a bad address fails before anything is attached.
    let stats = if args.self_stats {
        Some(overhead::enable_bpf_stats().map_err(|e| Failure::Runtime(format!("{e:#}")))?)
    } else {
        None
    };
    let opts = Options {
        per_skb: args.per_skb,
        ..Options::default()
    };
    let mut first = Vec::new();
    for n in &args.ifaces {
        let iface =
            iface::resolve(n, args.device_class).map_err(|e| Failure::BadInput(e.to_string()))?;
        let probes = Probes::attach(&iface, &opts).map_err(Failure::runtime)?;
        first.push(Some(Attached {
            iface,
            probes,
            window: VecDeque::new(),
        }));
    }
    eprintln!(
        "toe-agent serve: {} on http://{}/metrics",
        args.ifaces.join(", "),
        args.listen
    );

    let result = std::thread::scope(|scope| {
        let sampler_stop = Arc::clone(&stop);
        let sampler_state = Arc::clone(&state);
        let args_ref = &args;
        scope.spawn(move || sampler(args_ref, &sampler_state, &sampler_stop, first));
        let served = runtime.block_on(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        let (registry, state) = (Arc::clone(&registry), Arc::clone(&state));
                        tokio::spawn(async move {
                            let service = service_fn(move |req| handle(req, Arc::clone(&registry), Arc::clone(&state)));
                            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                        });
                    }
                }
            }
            Ok::<(), std::io::Error>(())
        });
        stop.store(true, Ordering::Relaxed);
        served
    });
    drop(stats);
    result.map_err(|e| Failure::Runtime(format!("serving: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use toe_agent_common::hist::bucket_index;

    #[test]
    fn classic_text_names_counters_with_total() {
        let om = "# HELP toe_rx_segments Packets.\n# TYPE toe_rx_segments counter\ntoe_rx_segments_total{iface=\"a\"} 5\n# HELP toe_iface_up Up.\n# TYPE toe_iface_up gauge\ntoe_iface_up{iface=\"a\"} 1\n# EOF\n";
        let text = prometheus_text(om);
        assert_eq!(
            text,
            "# HELP toe_rx_segments_total Packets.\n# TYPE toe_rx_segments_total counter\ntoe_rx_segments_total{iface=\"a\"} 5\n# HELP toe_iface_up Up.\n# TYPE toe_iface_up gauge\ntoe_iface_up{iface=\"a\"} 1\n"
        );
    }

    #[test]
    fn buckets_merge_to_powers_of_two_with_inf() {
        let mut h = Hist::ZERO;
        for (v, n) in [(1500u64, 10u64), (64, 2), (65_000, 1)] {
            h.buckets[bucket_index(v)] += n;
            h.sum += v * n;
        }
        let b = pow2_buckets(&h, 1.0);
        assert_eq!(b.last(), Some(&(f64::INFINITY, 0)));
        assert_eq!(b.iter().map(|x| x.1).sum::<u64>(), 13);
        let at = |le: f64| b.iter().find(|x| x.0 == le).unwrap().1;
        assert_eq!(at(2047.0), 10);
        assert_eq!(at(127.0), 2);
        assert_eq!(at(65535.0), 1);
    }

    #[test]
    fn exposition_has_the_families() {
        let mut totals = Totals::default();
        totals.rx.segment_len.buckets[bucket_index(1500)] = 5;
        totals.rx.segment_len.sum = 7500;
        totals.rx.segment_csum[0] = 5;
        let state = State {
            ifaces: BTreeMap::from([(
                "eth0".to_string(),
                IfaceState {
                    up: true,
                    totals,
                    fallbacks: BTreeMap::from([("rx_checksum", 5)]),
                    verdicts: verdict::judge(&Blocks::default(), &verdict::Device::default()),
                    device: Some(("virtio_net".into(), DeviceClass::Paravirtual)),
                },
            )]),
            kernel: "6.18".into(),
            sampler_alive: true,
            ..State::default()
        };
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Metrics(Arc::new(Mutex::new(state)))));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for want in [
            "toe_rx_segments_total{iface=\"eth0\"} 5",
            "toe_device_info{iface=\"eth0\",driver=\"virtio_net\",device_class=\"paravirtual\"} 1",
            "toe_rx_csum_total{iface=\"eth0\",stage=\"handoff\",state=\"none\"} 5",
            "toe_rx_segment_bytes_bucket{le=\"2047.0\",iface=\"eth0\"} 5",
            "toe_rx_segment_bytes_sum{iface=\"eth0\"} 7500.0",
            "toe_software_fallback_total{iface=\"eth0\",offload=\"rx_checksum\"} 5",
            "toe_offload_verdict{iface=\"eth0\",offload=\"tx_segmentation\",mechanism=\"not_exercised\",configured=\"unknown\",mismatch=\"false\"} 1",
            "toe_build_info{version=\"",
            "# EOF",
        ] {
            assert!(text.contains(want), "missing {want} in:\n{text}");
        }
    }
}
