//! Text rendering of a period's measurements, bcc-histogram style.
use std::fmt::Write as _;

use crate::model::nic::Nic;
use crate::{
    kernel::overhead::Overhead,
    model::catalogue::Value,
    model::period::Rates,
    model::units::group,
    model::verdict::{Check, Coverage, Mechanism, Verdict},
    model::{
        period::{Blocks, Sampling},
        summary::{Csum, HistSummary},
    },
};

/// What the view says about the run, above the numbers.
pub(crate) struct Context<'a> {
    pub iface: &'a str,
    pub ifindex: u32,
    pub driver: &'a str,
    /// None for recordings made before device classes existed.
    pub class: Option<crate::model::class::DeviceClass>,
    pub mtu: u32,
    pub probes: &'a [crate::kernel::attach::ProbeStatus],
}

impl<'a> Context<'a> {
    /// What a recording's header (or a run's) says about the device.
    pub(crate) fn of(h: &'a crate::sinks::ndjson::Header) -> Self {
        Context {
            iface: &h.iface,
            ifindex: h.ifindex,
            driver: &h.driver,
            class: h.device_class,
            mtu: h.mtu,
            probes: &h.probes,
        }
    }
}

/// "7/15 attached, 8 left out (--per-skb)": probes counting, of all.
pub(crate) fn probe_summary(probes: &[crate::kernel::attach::ProbeStatus]) -> String {
    use crate::kernel::attach::ProbeState;
    let on = probes.iter().filter(|p| p.status.counts()).count();
    let skipped = probes
        .iter()
        .filter(|p| p.status == ProbeState::Skipped)
        .count();
    let mut s = format!("{on}/{} attached", probes.len());
    if skipped > 0 {
        s += &format!(", {skipped} left out (--per-skb)");
    }
    s
}

pub(crate) fn rate(n: u64, secs: f64) -> String {
    if secs <= 0.0 {
        return group(n);
    }
    group((n as f64 / secs).round() as u64)
}

pub(crate) fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

pub(crate) fn csum_line(c: &Csum) -> String {
    let t = c.total();
    if t == 0 {
        return "-".into();
    }
    format!(
        "none {:.0}% unnecessary {:.0}% complete {:.0}% partial {:.0}%",
        pct(c.none, t),
        pct(c.unnecessary, t),
        pct(c.complete, t),
        pct(c.partial, t)
    )
}

/// One histogram, rows merged to powers of two (a log-linear bucket never
/// straddles a power of two, so the merge is exact). When its hook is not
/// attached (`seen` false) it says so rather than "no events".
fn histogram_seen(out: &mut String, title: &str, unit: &str, h: &HistSummary, seen: bool) {
    if !seen {
        let _ = writeln!(
            out,
            "{title} ({unit})\n    (not attached: --per-skb, or missing from this kernel)"
        );
        return;
    }
    let _ = writeln!(
        out,
        "{title} ({unit})  count {}  mean {}  p50 {}  p99 {}",
        group(h.count),
        group(h.mean().round() as u64),
        group(h.p50),
        group(h.p99)
    );
    if h.count == 0 {
        let _ = writeln!(out, "    (no events)");
        return;
    }
    let rows = pow2_rows(h);
    let peak = rows.iter().map(|r| r.2).max().unwrap_or(1).max(1);
    for (low, high, count) in rows {
        let stars = ((count as f64 / peak as f64) * 40.0).round() as usize;
        let _ = writeln!(
            out,
            "    {:>10} -> {:<10} : {:<12} |{:<40}|",
            group(low),
            group(high),
            group(count),
            "*".repeat(stars.max(usize::from(count > 0)))
        );
    }
}

/// A histogram's rows merged to powers of two, `(low, high, count)`: a
/// log-linear bucket never straddles a power of two, so the merge is exact.
pub(crate) fn pow2_rows(h: &HistSummary) -> Vec<(u64, u64, u64)> {
    let mut rows: Vec<(u64, u64, u64)> = Vec::new();
    for &(upper, count) in &h.buckets {
        let low = if upper < 2 {
            upper
        } else {
            (upper + 1).next_power_of_two() / 2
        };
        let low = low.min(upper);
        match rows.last_mut() {
            Some(r) if r.0 == low => {
                r.1 = upper;
                r.2 += count;
            }
            _ => rows.push((low, upper, count)),
        }
    }
    rows
}

/// One line per offload: mechanism, configured flag, mismatch, evidence.
/// With `colour`, ANSI colours: green hardware, yellow software, cyan
/// deferred, dim off/not exercised, red for a mismatch.
pub(crate) fn verdict_lines(
    out: &mut String,
    verdicts: &[Verdict],
    checks: &[Check],
    colour: bool,
) {
    let paint = |code: &str, text: &str| {
        if colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    for v in verdicts {
        let code = match v.mechanism {
            Mechanism::Hardware => "32",
            Mechanism::Host => "34",
            Mechanism::Software => "33",
            Mechanism::Deferred => "36",
            Mechanism::Off | Mechanism::NotExercised | Mechanism::NotMeasured => "2",
        };
        let configured = match &v.configured {
            Some(c) => format!(
                "{} {}{}",
                c.feature,
                if c.active { "on" } else { "off" },
                if c.fixed { " [fixed]" } else { "" }
            ),
            None => "flag unknown".into(),
        };
        let _ = writeln!(
            out,
            "{:<16} {} ({configured}){}  {}",
            v.offload.name(),
            paint(code, &format!("{:<13}", v.mechanism.name())),
            if v.mismatch {
                format!("  {}", paint("1;31", "MISMATCH"))
            } else {
                String::new()
            },
            v.evidence
        );
    }
    for c in checks {
        let _ = writeln!(out, "{} {}", paint("1;33", "check"), c.message);
    }
}

/// One period's results, as the view needs them.
pub(crate) struct Period<'a> {
    pub blocks: &'a Blocks,
    pub verdicts: &'a [Verdict],
    pub checks: &'a [Check],
    pub overhead: &'a Overhead,
    pub secs: f64,
    /// A run's summary: with the table of every count, which intervals
    /// leave out to stay short.
    pub summary: bool,
    /// The driver's counters over the same time, when they were read.
    pub nic: Option<&'a Nic>,
}

/// The agent's own cost, one line.
fn overhead_line(o: &Overhead, secs: f64) -> String {
    let bpf = match (o.program_runs, o.bpf_ns_per_event) {
        (Some(runs), Some(ns)) => format!("  program runs {}/s at {ns:.1} ns", rate(runs, secs)),
        (Some(_), None) => "  no program runs".into(),
        _ => "  (--self-stats for ns per run)".into(),
    };
    // Runs the kernel skipped are events nobody counted: say so.
    let missed = match o.missed_runs {
        0 => String::new(),
        n => format!("  MISSED {} program runs (recursion)", group(n)),
    };
    format!(
        "agent  events {}/s{bpf}{missed}  cpu {:.2}%  rss {:.1} MiB",
        rate(o.events, secs),
        o.agent_cpu_pct,
        o.agent_rss_bytes as f64 / (1024.0 * 1024.0)
    )
}

/// The whole view for one period.
pub(crate) fn render(ctx: &Context, title: &str, p: &Period, colour: bool) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "toe-agent trace {} (ifindex {}, driver {}{}, mtu {})  {title}  probes {}",
        ctx.iface,
        ctx.ifindex,
        if ctx.driver.is_empty() {
            "?"
        } else {
            ctx.driver
        },
        ctx.class.map(|c| format!(", {c}")).unwrap_or_default(),
        ctx.mtu,
        probe_summary(ctx.probes)
    );
    if let Some(note) = sample_note(&p.blocks.sample) {
        let _ = writeln!(
            o,
            "per-segment probes {note}: {:.2} s of {:.2} s in windows; verdicts judged on the windows",
            p.blocks.sample.secs, p.secs
        );
    }
    // Without the per-segment hooks (--per-skb) the same rates come from
    // gso_segs of the skbs instead, and what only those hooks see is marked.
    let cov = crate::kernel::attach::coverage(ctx.probes);
    rate_lines(&mut o, p.blocks, cov, p.secs);
    if let Some(line) = p.nic.and_then(nic_line) {
        let _ = writeln!(o, "{line}");
    }
    cpu_lines(&mut o, p.blocks, p.secs);
    let _ = writeln!(o, "{}", overhead_line(p.overhead, p.secs));
    o.push('\n');
    verdict_lines(&mut o, p.verdicts, p.checks, colour);
    o.push('\n');
    details(&mut o, p, cov);
    o
}

const NOT_ATTACHED: &str = "not attached";

/// "sampled 10%" when the per-segment probes ran only in windows.
pub(crate) fn sample_note(s: &Sampling) -> Option<String> {
    (s.partial() && s.fraction > 0.0).then(|| format!("sampled {:.0}%", s.fraction * 100.0))
}

/// Packet, skb and bit rates on receive and transmit, and what was not TCP.
fn rate_lines(o: &mut String, b: &Blocks, cov: Coverage, secs: f64) {
    let rates = Rates::of(b, secs, cov.driver_xmit);
    // Sampled per-segment hooks count only the windows: the packet rates
    // come from gso_segs then, and the windows' figures say they are
    // sampled.
    let sampled = sample_note(&b.sample);
    rx_line(o, b, cov, secs, &rates, sampled.as_deref());
    tx_line(o, b, cov, secs, &rates, sampled.as_deref());
    tcp_and_drop_lines(o, b, cov, secs, sampled.is_some());
}

fn rx_line(
    o: &mut String,
    b: &Blocks,
    cov: Coverage,
    secs: f64,
    rates: &Rates,
    sampled: Option<&str>,
) {
    let r = &b.rx;
    let (segments, handoff_csum) = match (cov.handoff, sampled) {
        (true, Some(note)) => (
            format!("{}/s (gso_segs)", rate(r.whole_segments(), secs)),
            format!("{} ({note})", csum_line(&r.handoff.csum)),
        ),
        (true, None) => (
            format!("{}/s", rate(r.handoff.segments, secs)),
            csum_line(&r.handoff.csum),
        ),
        (false, _) => (
            format!("{}/s (gso_segs)", rate(r.after_gro.segs_per_skb.sum, secs)),
            NOT_ATTACHED.to_string(),
        ),
    };
    let _ = writeln!(
        o,
        "RX  segments {segments}  skbs {}/s  {:.2} Gbit/s  segments/skb {:.1}  at hand-off: {handoff_csum}",
        rate(r.after_gro.skbs, secs),
        rates.rx_gbps,
        rates.segs_per_skb,
    );
}

fn tx_line(
    o: &mut String,
    b: &Blocks,
    cov: Coverage,
    secs: f64,
    rates: &Rates,
    sampled: Option<&str>,
) {
    let t = &b.tx;
    let (to_driver, wire, driver_csum) = match (cov.driver_xmit, sampled) {
        (true, Some(note)) => (
            format!("{}/s ({note})", rate(t.xmit_skbs, secs)),
            format!("{}/s (gso_segs)", rate(t.whole_segments(), secs)),
            csum_line(&t.csum),
        ),
        (true, None) => (
            format!("{}/s", rate(t.xmit_skbs, secs)),
            format!("{}/s", rate(t.wire_segments, secs)),
            csum_line(&t.csum),
        ),
        (false, _) => (
            "-".to_string(),
            format!("{}/s (gso_segs)", rate(t.segs_per_queued.sum, secs)),
            NOT_ATTACHED.to_string(),
        ),
    };
    let _ = writeln!(
        o,
        "TX  queued {}/s  to driver {to_driver}  wire segments {wire}  {:.2} Gbit/s  at driver: {driver_csum}",
        rate(t.queued_skbs, secs),
        rates.tx_gbps,
    );
}

/// What TCP retransmitted, what the stack dropped, what was not TCP.
fn tcp_and_drop_lines(o: &mut String, b: &Blocks, cov: Coverage, secs: f64, sampled: bool) {
    let (r, t) = (&b.rx, &b.tx);
    // What TCP retransmitted over the device, against what it sent.
    if b.tcp.retransmit.retransmits > 0 {
        let sent = if cov.driver_xmit && !sampled {
            t.wire_segments
        } else {
            t.segs_per_queued.sum
        };
        let _ = writeln!(
            o,
            "TCP retransmits  {}/s skbs, {}/s segments ({:.2}% of segments sent)",
            rate(b.tcp.retransmit.retransmits, secs),
            rate(b.tcp.retransmit.retransmitted_segments, secs),
            pct(b.tcp.retransmit.retransmitted_segments, sent),
        );
    }
    // Drops by the stack, most frequent reasons first.
    if b.drops.total > 0 {
        let mut reasons: Vec<(&String, &u64)> = b.drops.by_reason.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1));
        let top: Vec<String> = reasons
            .iter()
            .take(3)
            .map(|(r, n)| format!("{r} {}", group(**n)))
            .collect();
        let _ = writeln!(
            o,
            "dropped by the stack  {}/s  ({})",
            rate(b.drops.total, secs),
            top.join(", ")
        );
    }
    // TCP's offloads are judged on TCP: say how much else there was.
    let (rx_other, tx_other) = (r.after_gro.non_tcp.skb_segments, t.gso_queued.other);
    if rx_other + tx_other > 0 {
        let _ = writeln!(
            o,
            "not TCP (not judged)  RX {}/s packets  TX {}/s multi-segment skbs (UDP GSO and others)",
            rate(rx_other, secs),
            rate(tx_other, secs),
        );
    }
}

/// The driver's figures beside the probes' (✓ where they agree), or why
/// the driver gives none.
pub(crate) fn nic_line(nic: &Nic) -> Option<String> {
    if nic.reconcile.is_empty() {
        let err = nic.qstats_error.as_deref()?;
        return Some(format!("NIC  no queue statistics from the driver ({err})"));
    }
    let pairs: Vec<String> = nic
        .reconcile
        .iter()
        .map(|r| {
            format!(
                "{} {} (probes {}, ratio {:.2}) {}",
                r.what,
                group(r.nic),
                group(r.agent),
                r.ratio,
                if r.agree { "✓" } else { "✗" }
            )
        })
        .collect();
    Some(format!("NIC says  {}", pairs.join("  ")))
}

/// NET_RX / NET_TX softirq time per CPU, and NAPI polls.
fn cpu_lines(o: &mut String, b: &Blocks, secs: f64) {
    for (name, v) in [("NET_RX", &b.softirq.net_rx), ("NET_TX", &b.softirq.net_tx)] {
        let cpus: Vec<String> = v
            .per_cpu
            .iter()
            .map(|c| format!("cpu{} {:.1}%", c.cpu, pct(c.time_ns, (secs * 1e9) as u64)))
            .collect();
        let _ = writeln!(
            o,
            "softirq {name}  {}/s  {:.1}% of a CPU  [{}]",
            rate(v.count, secs),
            pct(v.time_ns, (secs * 1e9) as u64),
            cpus.join(", ")
        );
    }
    let _ = writeln!(
        o,
        "NAPI  polls {}/s  budget exhausted {}",
        rate(b.napi.polls, secs),
        group(b.napi.budget_exhausted)
    );
}

/// Every quantity of the catalogue, in its order: the histograms drawn,
/// and in a summary the counts in a table with their rates. What the
/// probes cannot see is marked, not shown as zero.
fn details(o: &mut String, p: &Period, cov: Coverage) {
    let (b, secs) = (p.blocks, p.secs);
    let mut counts = String::new();
    for q in crate::probes::quantities() {
        let seen = q.measured(cov);
        match q.value {
            Value::Hist(of) => histogram_seen(o, q.title, q.unit.name(), of(b), seen),
            _ if !seen => {
                let _ = writeln!(counts, "  {:<28} {NOT_ATTACHED}", q.path);
            }
            Value::Count(of) => {
                let n = of(b);
                let _ = writeln!(
                    counts,
                    "  {:<28} {:>16} {:>14}/s  {}",
                    q.path,
                    group(n),
                    rate(n, secs),
                    q.unit.name()
                );
            }
            Value::Split { key, of } => {
                let parts: Vec<String> = of(b)
                    .iter()
                    .filter(|(_, n)| *n != 0)
                    .map(|(k, n)| format!("{k} {}", group(*n)))
                    .collect();
                let parts = if parts.is_empty() {
                    "-".to_string()
                } else {
                    parts.join(", ")
                };
                let _ = writeln!(counts, "  {:<28} by {key}: {parts}", q.path);
            }
        }
    }
    if p.summary {
        let _ = write!(o, "counts ({secs:.1} s)\n{counts}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toe_agent_common::{Hist, hist::bucket_index};

    #[test]
    fn histogram_rows_merge_to_powers_of_two() {
        let mut h = Hist::ZERO;
        for v in [1100u64, 1300, 1500, 1500, 40_000] {
            h.buckets[bucket_index(v)] += 1;
            h.sum += v;
        }
        let s = HistSummary::from_hist(&h);
        let mut out = String::new();
        histogram_seen(&mut out, "len", "bytes", &s, true);
        let rows: Vec<&str> = out.lines().skip(1).collect();
        assert_eq!(rows.len(), 2, "{out}");
        assert!(rows[0].contains("1,024 -> 1,535"), "{out}");
        assert!(rows[0].contains(": 4 "), "{out}");
        assert!(rows[1].contains("32,768 -> 40,959"), "{out}");
        assert!(out.starts_with("len (bytes)  count 5"), "{out}");
    }

    #[test]
    fn empty_histogram_says_so() {
        let mut out = String::new();
        histogram_seen(&mut out, "x", "ns", &HistSummary::default(), true);
        assert!(out.contains("(no events)"));
    }
}
