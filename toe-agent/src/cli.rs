//! Command line (docs/cli.md).
use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand};

use crate::model::class::DeviceClass;

#[derive(Debug, Parser)]
#[command(
    name = "toe-agent",
    version,
    about = "Are your NIC's TCP offloads done in silicon, or on the CPU? An eBPF tracer that tells.",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Trace one interface: live histograms of what GRO/GSO and checksum offload really did.
    Trace(TraceCmd),
    /// Prove the verdicts: two namespaces, a veth pair, a matrix of offload configurations.
    Lab(LabCmd),
    /// Audit offload capabilities and tuning: findings with evidence and the fixing command.
    Audit(AuditCmd),
    /// Keep the probes attached and expose /metrics for Prometheus.
    Serve(ServeCmd),
    /// Offline analysis of NDJSON files from `trace`: summary, comparison, plots.
    Report(ReportCmd),
    /// Measure the agent's overhead on the lab (what `cargo xtask bench` runs).
    Bench(BenchCmd),
}

#[derive(Debug, clap::Args)]
pub struct AuditCmd {
    /// Interface to audit (repeatable), in this network namespace.
    #[arg(short, long)]
    pub iface: Vec<String>,
    /// Audit every interface with hardware behind it.
    #[arg(long, conflicts_with = "iface")]
    pub all: bool,
    /// Print the report as JSON (docs/audit.md), for machines and --diff.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when a finding is at or above this severity (1-10, or info, low, medium, high, critical).
    #[arg(long, value_name = "SEVERITY", value_parser = crate::cmd::audit::parse_severity)]
    pub fail_on: Option<u8>,
    /// Seconds between the two readings of counters (drops, errors, softnet).
    #[arg(long, default_value = "1", value_parser = positive_seconds)]
    pub sample: Duration,
    /// Kernel log lines older than this many seconds (or from before the
    /// interface's last link-up) are history, not findings.
    #[arg(long, default_value = "86400", value_parser = positive_seconds)]
    pub log_since: Duration,
    /// Judge a report or snapshot saved earlier (--json output) instead of this host.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["iface", "all"])]
    pub from: Option<PathBuf>,
    /// Show what differs between hosts' --json reports: each host against
    /// the first (the baseline), then each setting with the hosts where it
    /// differs.
    #[arg(long, num_args = 2.., value_names = ["BASELINE", "HOST"], conflicts_with_all = ["iface", "all", "from"])]
    pub diff: Option<Vec<PathBuf>>,
}

#[derive(Debug, clap::Args)]
pub struct ServeCmd {
    /// Interface to trace (repeatable), in this network namespace.
    #[arg(short, long, required = true)]
    pub iface: Vec<String>,
    /// Address for /metrics and /healthz (loopback unless told otherwise).
    #[arg(long, default_value = "127.0.0.1:9469")]
    pub listen: std::net::SocketAddr,
    /// Seconds between readings of the kernel maps.
    #[arg(long, default_value = "1", value_parser = positive_seconds)]
    pub interval: Duration,
    /// Readings the verdicts are judged over.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..))]
    pub window: u16,
    /// Turn on the kernel's BPF statistics to export the programs' run time.
    #[arg(long)]
    pub self_stats: bool,
    /// Attach only the hooks that fire once per skb, not per wire segment:
    /// much cheaper at high packet rates, but the verdicts that need the
    /// driver hand-off or net_dev_start_xmit become not_measured.
    #[arg(long, conflicts_with = "sample")]
    pub per_skb: bool,
    /// The share of time the per-segment hooks (driver hand-off, GRO's
    /// outcome, net_dev_start_xmit) run: 0.1 is 100 ms in every second, 1
    /// always. Verdicts are judged on the sampled windows (docs/sampling.md).
    #[arg(long, default_value = "0.1", value_parser = fraction)]
    pub sample: f64,
    /// Use classic tracepoints only (the fallback for kernels without BTF).
    #[arg(long)]
    pub classic: bool,
    /// The programs' own diagnostics at this level and above, on stderr:
    /// off, error, warn, info, debug (the first packet each hand-off hook
    /// sees on each CPU), trace.
    #[arg(long, default_value = "warn", value_parser = log_level)]
    pub log_level: log::LevelFilter,
    /// Judge the devices as this class instead of the one their driver
    /// implies (docs/device-classes.md): physical, paravirtual or virtual.
    #[arg(long, value_name = "CLASS")]
    pub device_class: Option<DeviceClass>,
}

#[derive(Debug, clap::Args)]
pub struct ReportCmd {
    /// NDJSON file written by `trace --ndjson` ("-" for stdin).
    #[arg(required_unless_present = "compare")]
    pub file: Option<PathBuf>,
    /// Compare two runs side by side: BEFORE AFTER.
    #[arg(long, num_args = 2, value_names = ["BEFORE", "AFTER"], conflicts_with = "file")]
    pub compare: Option<Vec<PathBuf>>,
    /// Draw the histograms and time series as SVG files into this directory.
    #[arg(long, value_name = "DIR")]
    pub svg: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct BenchCmd {
    /// Agent-off/agent-on transfer pairs per configuration.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub pairs: u16,
    /// Seconds per transfer.
    #[arg(long, default_value = "3", value_parser = positive_seconds)]
    pub duration: Duration,
    /// Where to write the figures as JSON.
    #[arg(long, default_value = "target/bench/overhead.json")]
    pub out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct LabCmd {
    /// Run one configuration (see --list) instead of the whole matrix.
    #[arg(long, value_name = "NAME")]
    pub config: Option<String>,
    /// Print the results as JSON (docs/lab.md).
    #[arg(long)]
    pub json: bool,
    /// List the configurations and exit.
    #[arg(long)]
    pub list: bool,
    /// Seconds of TCP transfer per configuration.
    #[arg(long, default_value = "2", value_parser = positive_seconds)]
    pub duration: Duration,
    /// The share of time the per-segment hooks run, as in trace.
    #[arg(long, default_value = "0.1", value_parser = fraction)]
    pub sample: f64,
}

#[derive(Debug, clap::Args)]
pub struct TraceCmd {
    /// Interface to trace, by name, in this process's network namespace.
    #[arg(short, long)]
    pub iface: String,
    /// Seconds between samples (decimals allowed, e.g. 0.1).
    #[arg(long, default_value = "1", value_parser = positive_seconds)]
    pub interval: Duration,
    /// Stop after this many seconds (default: run until Ctrl-C or SIGTERM).
    #[arg(long, value_parser = positive_seconds)]
    pub duration: Option<Duration>,
    /// Write NDJSON records to this file ("-" for stdout, which silences the text view).
    #[arg(long, value_name = "PATH")]
    pub ndjson: Option<PathBuf>,
    /// Print plain text blocks, one per interval, even on a terminal
    /// (the live view is the default there).
    #[arg(long)]
    pub plain: bool,
    /// Use classic tracepoints only (the fallback for kernels without BTF).
    #[arg(long)]
    pub classic: bool,
    /// The programs' own diagnostics at this level and above, on stderr:
    /// off, error, warn, info, debug (the first packet each hand-off hook
    /// sees on each CPU), trace.
    #[arg(long, default_value = "warn", value_parser = log_level)]
    pub log_level: log::LevelFilter,
    /// Turn on the kernel's BPF run-time statistics while tracing, to report
    /// ns per program run (costs a little; the previous state is restored on exit).
    #[arg(long)]
    pub self_stats: bool,
    /// Attach only the hooks that fire once per skb, not per wire segment:
    /// much cheaper at high packet rates, but the verdicts that need the
    /// driver hand-off or net_dev_start_xmit become not_measured.
    #[arg(long, conflicts_with = "sample")]
    pub per_skb: bool,
    /// The share of time the per-segment hooks (driver hand-off, GRO's
    /// outcome, net_dev_start_xmit) run: 0.1 is 100 ms in every second, 1
    /// always. Verdicts are judged on the sampled windows (docs/sampling.md).
    #[arg(long, default_value = "0.1", value_parser = fraction)]
    pub sample: f64,
    /// Judge the device as this class instead of the one its driver implies
    /// (docs/device-classes.md): physical, paravirtual or virtual.
    #[arg(long, value_name = "CLASS")]
    pub device_class: Option<DeviceClass>,
}

/// A strictly positive, finite number of seconds.
/// The longest time argument: a year. Beyond it, deadlines computed from
/// `Instant::now()` could overflow (`--duration 1e19` did, with a panic).
pub(crate) const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// A share of time in (0, 1].
fn fraction(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number"))?;
    if !(v > 0.0 && v <= 1.0) {
        return Err(format!(
            "must be more than 0 and at most 1 (the share of time), got {s}"
        ));
    }
    Ok(v)
}

fn log_level(s: &str) -> Result<log::LevelFilter, String> {
    s.parse()
        .map_err(|_| "expected off, error, warn, info, debug or trace".to_string())
}

pub(crate) fn positive_seconds(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !v.is_finite() || v <= 0.0 {
        return Err(format!("must be greater than zero, got {s}"));
    }
    if v < 0.001 {
        return Err(format!("must be at least 0.001 s, got {s}"));
    }
    if v > MAX_SECONDS {
        return Err(format!("must be at most {MAX_SECONDS} s (a year), got {s}"));
    }
    Duration::try_from_secs_f64(v).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_must_be_positive() {
        assert_eq!(positive_seconds("0.1").unwrap(), Duration::from_millis(100));
        assert_eq!(positive_seconds("2").unwrap(), Duration::from_secs(2));
        assert!(positive_seconds("31536000").is_ok());
        for bad in [
            "0",
            "-1",
            "abc",
            "inf",
            "NaN",
            "0.0000001",
            "1e19",
            "31536001",
        ] {
            assert!(positive_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn trace_parses() {
        let cli =
            Cli::try_parse_from(["toe-agent", "trace", "--iface", "eth0", "--interval", "0.5"])
                .unwrap();
        let Command::Trace(t) = cli.command else {
            panic!("not trace")
        };
        assert_eq!(t.iface, "eth0");
        assert_eq!(t.interval, Duration::from_millis(500));
        assert!(
            Cli::try_parse_from(["toe-agent", "trace", "--iface", "eth0", "--duration", "-3"])
                .is_err()
        );
    }
}
