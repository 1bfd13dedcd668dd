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

mod metrics;
mod sampler;

use metrics::Metrics;
use sampler::Attached;

use crate::{
    Failure,
    class::DeviceClass,
    collect::Totals,
    iface, overhead,
    probes::Options,
    report::Blocks,
    session::Session,
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
        let session = Session::attach(iface, &opts).map_err(Failure::runtime)?;
        first.push(Some(Attached {
            session,
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
        scope.spawn(move || sampler::run(args_ref, &sampler_state, &sampler_stop, first));
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

    #[test]
    fn classic_text_names_counters_with_total() {
        let om = "# HELP toe_rx_segments Packets.\n# TYPE toe_rx_segments counter\ntoe_rx_segments_total{iface=\"a\"} 5\n# HELP toe_iface_up Up.\n# TYPE toe_iface_up gauge\ntoe_iface_up{iface=\"a\"} 1\n# EOF\n";
        let text = prometheus_text(om);
        assert_eq!(
            text,
            "# HELP toe_rx_segments_total Packets.\n# TYPE toe_rx_segments_total counter\ntoe_rx_segments_total{iface=\"a\"} 5\n# HELP toe_iface_up Up.\n# TYPE toe_iface_up gauge\ntoe_iface_up{iface=\"a\"} 1\n"
        );
    }
}
