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

mod sampler;

use sampler::Attached;

use crate::{
    Failure,
    kernel::{attach::Options, overhead, session::Session},
    sinks::prometheus::{Exposed, Metrics, classic_text, openmetrics},
    sys::iface,
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
    /// `--sample`: the share of time the per-segment hooks run.
    pub sample: f64,
    /// `--classic`: classic tracepoints only.
    pub classic_only: bool,
    /// `--log-level`: the programs' diagnostics shown.
    pub log_level: log::LevelFilter,
    /// `--device-class`: judge every device as this class.
    pub device_class: Option<crate::model::class::DeviceClass>,
}

impl ServeArgs {
    /// How every interface is attached, the first time and each time it
    /// comes back.
    fn options(&self) -> Options {
        Options {
            per_skb: self.per_skb,
            classic_only: self.classic_only,
            log_level: self.log_level,
            sample: self.sample,
            cycle: crate::cmd::trace::cycle(self.interval),
        }
    }
}

/// What the HTTP side shares with the sampler thread.
#[derive(Clone)]
struct Shared {
    exposed: Arc<Mutex<Exposed>>,
    /// Cleared when the sampler stops, by returning or by panicking.
    sampler_alive: Arc<AtomicBool>,
    /// When the sampler last finished a reading of every interface.
    last_read: Arc<Mutex<Option<Instant>>>,
    interval: Duration,
}

impl Shared {
    /// `/healthz`: 200 only while the sampler runs, has read the maps
    /// within three intervals (and a second), and traces an interface.
    /// Otherwise 503 and why: frozen metrics must not look healthy.
    fn health(&self) -> (StatusCode, String) {
        let up = self
            .exposed
            .lock()
            .map(|s| s.ifaces.values().filter(|i| i.up).count())
            .unwrap_or(0);
        let since = self
            .last_read
            .lock()
            .ok()
            .and_then(|t| t.map(|t| t.elapsed()));
        health(
            self.sampler_alive.load(Ordering::Relaxed),
            up,
            since,
            self.interval,
        )
    }
}

fn health(
    alive: bool,
    up: usize,
    since_read: Option<Duration>,
    interval: Duration,
) -> (StatusCode, String) {
    let stale = interval * 3 + Duration::from_secs(1);
    match since_read {
        _ if !alive => (
            StatusCode::SERVICE_UNAVAILABLE,
            "sampler stopped: the metrics are frozen\n".into(),
        ),
        Some(d) if d > stale => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "sampler stalled: last reading {:.1} s ago\n",
                d.as_secs_f64()
            ),
        ),
        _ if up == 0 => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no interface traced\n".into(),
        ),
        since => (
            StatusCode::OK,
            format!(
                "ok: {up} interface(s) traced, last reading {} ms ago\n",
                since.unwrap_or_default().as_millis()
            ),
        ),
    }
}

/// Run the sampler; whichever way it ends, a panic included, the health
/// check learns it stopped (its probes are dropped, so detached, as the
/// panic unwinds).
fn guarded(shared: &Shared, sampler: impl FnOnce()) {
    if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(sampler)) {
        let why = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        eprintln!("toe-agent serve: the sampler stopped: {why}");
    }
    shared.sampler_alive.store(false, Ordering::Relaxed);
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    shared: Shared,
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
            let wants_openmetrics = req
                .headers()
                .get(hyper::header::ACCEPT)
                .and_then(|a| a.to_str().ok())
                .is_some_and(|a| a.contains("application/openmetrics-text"));
            match openmetrics(&Metrics(Arc::clone(&shared.exposed))) {
                Ok(text) if wants_openmetrics => reply(
                    StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    text,
                ),
                Ok(text) => reply(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    classic_text(&text),
                ),
                Err(_) => reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    "encoding failed\n".into(),
                ),
            }
        }
        (&hyper::Method::GET, "/healthz") => {
            let (code, text) = shared.health();
            reply(code, "text/plain", text)
        }
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: try /metrics or /healthz\n".into(),
        ),
    })
}

/// Every interface's session, before serving: an interface that cannot be
/// traced at start is an error, not a series that is down.
fn attach_all(args: &ServeArgs) -> Result<Vec<Option<Attached>>, Failure> {
    let opts = args.options();
    args.ifaces
        .iter()
        .map(|n| {
            let iface = iface::resolve(n, args.device_class)
                .map_err(|e| Failure::BadInput(e.to_string()))?;
            let session = Session::attach(iface, &opts).map_err(Failure::runtime)?;
            Ok(Some(Attached::new(session)))
        })
        .collect()
}

/// Answer HTTP on `listener` until SIGTERM or SIGINT.
async fn serve_http(listener: &tokio::net::TcpListener, shared: &Shared) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let shared = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, shared.clone()));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        }
    }
}

pub fn run(args: ServeArgs) -> Result<(), Failure> {
    if args.ifaces.is_empty() {
        return Err(Failure::BadInput("give at least one --iface".into()));
    }
    // Interfaces must exist at start (a typo is not "down").
    for n in &args.ifaces {
        iface::resolve(n, args.device_class).map_err(|e| Failure::BadInput(e.to_string()))?;
    }
    let mut exposed = Exposed {
        kernel: crate::sys::host::kernel_release(),
        ..Exposed::default()
    };
    exposed.agent.self_stats = args.self_stats;
    let shared = Shared {
        exposed: Arc::new(Mutex::new(exposed)),
        sampler_alive: Arc::new(AtomicBool::new(true)),
        last_read: Arc::new(Mutex::new(None)),
        interval: args.interval,
    };
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
    let first = attach_all(&args)?;
    eprintln!(
        "toe-agent serve: {} on http://{}/metrics",
        args.ifaces.join(", "),
        args.listen
    );

    let result = std::thread::scope(|scope| {
        let sampler_stop = Arc::clone(&stop);
        let sampler_shared = shared.clone();
        let args_ref = &args;
        scope.spawn(move || {
            guarded(&sampler_shared, || {
                sampler::run(args_ref, &sampler_shared, &sampler_stop, first)
            })
        });
        let served = runtime.block_on(serve_http(&listener, &shared));
        stop.store(true, Ordering::Relaxed);
        served
    });
    drop(stats);
    result.map_err(|e| Failure::Runtime(format!("serving: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        Shared {
            exposed: Arc::new(Mutex::new(Exposed::default())),
            sampler_alive: Arc::new(AtomicBool::new(true)),
            last_read: Arc::new(Mutex::new(None)),
            interval: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_panicking_sampler_turns_health_to_503() {
        let s = shared();
        std::thread::scope(|scope| {
            scope.spawn(|| guarded(&s, || panic!("a bug in the sampler")));
        });
        let (code, text) = s.health();
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(text.contains("sampler stopped"), "{text}");
    }

    #[test]
    fn stale_readings_are_unhealthy() {
        let second = Duration::from_secs(1);
        let ok = health(true, 1, Some(Duration::from_millis(900)), second);
        assert_eq!(ok.0, StatusCode::OK, "{}", ok.1);
        let stalled = health(true, 1, Some(Duration::from_secs(5)), second);
        assert_eq!(stalled.0, StatusCode::SERVICE_UNAVAILABLE);
        assert!(stalled.1.contains("stalled"), "{}", stalled.1);
        assert_eq!(
            health(true, 0, None, second).0,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            health(false, 1, None, second).0,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
}
