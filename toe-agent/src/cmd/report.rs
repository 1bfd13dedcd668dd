//! `toe-agent report`: offline analysis of `trace --ndjson` files, read
//! with [`crate::sinks::recording`]: a summary, a comparison of two runs, plots.
use std::{fmt::Write as _, path::PathBuf};

use crate::{
    Failure,
    model::verdict::Verdict,
    model::{
        catalogue::Value,
        period::{Rates, per_second},
    },
    sinks::ndjson::Summary,
    sinks::recording::{Run, read_path},
    sinks::view,
};

pub struct ReportArgs {
    pub file: Option<PathBuf>,
    pub compare: Option<(PathBuf, PathBuf)>,
    pub svg: Option<PathBuf>,
}

fn secs(s: &Summary) -> f64 {
    (s.end_unix_ns.saturating_sub(s.start_unix_ns)) as f64 / 1e9
}

pub(crate) fn render_run(run: &Run) -> String {
    let h = &run.header;
    let ctx = view::Context::of(h);
    let s = &run.summary;
    let period = view::Period {
        blocks: &s.blocks,
        verdicts: &s.verdicts,
        checks: &s.checks,
        overhead: &s.overhead,
        secs: secs(s),
        summary: true,
        nic: Some(&s.nic),
    };
    let mut o = format!(
        "run of toe-agent {} on kernel {}: {} intervals of {} ms, ended by {}\n",
        h.agent_version,
        h.kernel,
        run.intervals,
        h.interval_ms,
        serde_json::to_value(s.end_reason)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    );
    o.push_str(&view::render(
        &ctx,
        &format!("summary over {:.1} s", secs(s)),
        &period,
        false,
    ));
    o
}

fn change(a: f64, b: f64) -> String {
    if a == 0.0 && b == 0.0 {
        "=".into()
    } else if a == 0.0 {
        "new".into()
    } else {
        format!("{:+.1}%", 100.0 * (b - a) / a)
    }
}

/// The rates of a run's summary.
fn rates(run: &Run) -> Rates {
    let driver_xmit = crate::kernel::attach::coverage(&run.header.probes).driver_xmit;
    Rates::of(&run.summary.blocks, secs(&run.summary), driver_xmit)
}

fn verdict_of(v: &[Verdict], o: crate::model::verdict::Offload) -> Option<&Verdict> {
    v.iter().find(|x| x.offload == o)
}

pub(crate) fn render_compare(a: &Run, b: &Run, names: (&str, &str)) -> String {
    let mut o = String::new();
    let (sa, sb) = (&a.summary, &b.summary);
    let (ta, tb) = (secs(sa), secs(sb));
    let _ = writeln!(
        o,
        "before: {} ({} on {}, {:.1} s)\nafter:  {} ({} on {}, {:.1} s)\n",
        names.0, a.header.iface, a.header.kernel, ta, names.1, b.header.iface, b.header.kernel, tb
    );
    let _ = writeln!(
        o,
        "{:<48} {:>14} {:>14} {:>9}",
        "", "before", "after", "change"
    );
    let mut row = |name: &str, x: f64, y: f64, unit: &str| {
        let _ = writeln!(
            o,
            "{:<48} {:>14} {:>14} {:>9}",
            name,
            format!("{x:.2}{unit}"),
            format!("{y:.2}{unit}"),
            change(x, y)
        );
    };
    let (ra, rb) = (rates(a), rates(b));
    row("RX Gbit/s", ra.rx_gbps, rb.rx_gbps, "");
    row("TX Gbit/s", ra.tx_gbps, rb.tx_gbps, "");
    row(
        "NET_RX softirq, % of a CPU",
        ra.net_rx_pct,
        rb.net_rx_pct,
        "%",
    );
    quantity_rows(&mut row, (a, b), (ta, tb));
    verdict_rows(&mut o, (sa, sb));
    o
}

/// Every quantity of the catalogue: counts per second, the distributions
/// by mean and percentiles.
fn quantity_rows(
    row: &mut impl FnMut(&str, f64, f64, &str),
    (a, b): (&Run, &Run),
    (ta, tb): (f64, f64),
) {
    let (ba, bb) = (&a.summary.blocks, &b.summary.blocks);
    for q in crate::probes::quantities() {
        match q.value {
            Value::Count(of) => row(
                &format!("{}/s", q.path),
                per_second(of(ba), ta),
                per_second(of(bb), tb),
                "",
            ),
            Value::Split { key, of } => {
                let (xa, xb) = (of(ba), of(bb));
                let mut keys: Vec<&String> = xa.iter().chain(&xb).map(|(k, _)| k).collect();
                keys.dedup();
                let get = |x: &[(String, u64)], k: &str| {
                    x.iter().find(|(key, _)| key == k).map_or(0, |(_, n)| *n)
                };
                let mut seen = std::collections::BTreeSet::new();
                for k in keys.into_iter().filter(|k| seen.insert(k.as_str())) {
                    row(
                        &format!("{} {key}={k}/s", q.path),
                        per_second(get(&xa, k), ta),
                        per_second(get(&xb, k), tb),
                        "",
                    );
                }
            }
            Value::Hist(of) => {
                let (x, y) = (of(ba), of(bb));
                row(&format!("{} mean", q.path), x.mean(), y.mean(), "");
                for (p, vx, vy) in [("p50", x.p50, y.p50), ("p99", x.p99, y.p99)] {
                    row(&format!("{} {p}", q.path), vx as f64, vy as f64, "");
                }
            }
        }
    }
}

/// Each offload's verdict before and after.
fn verdict_rows(o: &mut String, (sa, sb): (&Summary, &Summary)) {
    let _ = writeln!(o, "\nverdicts (before -> after):");
    for off in crate::model::verdict::Offload::ALL {
        let (x, y) = (verdict_of(&sa.verdicts, off), verdict_of(&sb.verdicts, off));
        let show = |v: Option<&Verdict>| {
            v.map(|v| {
                format!(
                    "{}{}",
                    v.mechanism.name(),
                    if v.mismatch { " MISMATCH" } else { "" }
                )
            })
            .unwrap_or_else(|| "-".into())
        };
        let (bx, by) = (show(x), show(y));
        let _ = writeln!(
            o,
            "  {:<16} {:<24} -> {:<24} {}",
            off.name(),
            bx,
            by,
            if bx == by { "" } else { "changed" }
        );
    }
}

pub fn run(args: ReportArgs) -> Result<(), Failure> {
    if let Some((before, after)) = &args.compare {
        let (a, b) = (read_path(before)?, read_path(after)?);
        print!(
            "{}",
            render_compare(
                &a,
                &b,
                (&before.display().to_string(), &after.display().to_string())
            )
        );
        if let Some(dir) = &args.svg {
            let written = crate::sinks::plot::write_all(dir, &[("before", &a), ("after", &b)])
                .map_err(|e| Failure::Runtime(format!("{e:#}")))?;
            println!("\nwrote {} SVG files to {}", written, dir.display());
        }
        return Ok(());
    }
    let path = args
        .file
        .as_ref()
        .ok_or_else(|| Failure::BadInput("give an NDJSON file".into()))?;
    let run = read_path(path)?;
    print!("{}", render_run(&run));
    if let Some(dir) = &args.svg {
        let written = crate::sinks::plot::write_all(dir, &[("run", &run)])
            .map_err(|e| Failure::Runtime(format!("{e:#}")))?;
        println!("\nwrote {} SVG files to {}", written, dir.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::recording::{MAX_POINTS, ReadError, read_run};
    use std::io::Read;

    /// Recorded with `trace --interval 0.5 --duration 3 --ndjson` on the
    /// receiving veth of the lab, sender TSO off (software GSO + GRO) and on.
    const TSO_OFF: &str = include_str!("../../fixtures/ndjson/gro_tso_off.ndjson");
    const TSO_ON: &str = include_str!("../../fixtures/ndjson/gro_tso_on.ndjson");

    fn read(text: &str) -> Result<Run, ReadError> {
        read_run(text.as_bytes(), "test.ndjson")
    }

    #[test]
    fn reads_a_recorded_run() {
        let run = read(TSO_OFF).unwrap();
        assert_eq!(run.header.iface, "vb");
        assert_eq!(run.intervals, 6);
        assert_eq!(run.series.points.len(), 6);
        assert!(run.summary.blocks.rx.handoff.segments > 1_000_000);
        let text = render_run(&run);
        assert!(text.contains("summary over 3.0 s"), "{text}");
        assert!(text.contains("rx_coalescing    software"), "{text}");
        assert!(text.contains("RX segments per skb (segments)"), "{text}");
    }

    #[test]
    fn truncated_files_are_refused_with_the_line() {
        // Cut inside the summary line: the last record is incomplete.
        let cut = &TSO_OFF[..TSO_OFF.len() - 40];
        let e = read(cut).unwrap_err();
        assert_eq!(e.line, 8);
        assert!(e.reason.starts_with("truncated record"), "{e}");
        // Whole lines, but no summary: the agent was killed.
        let lines: Vec<&str> = TSO_OFF.lines().collect();
        let no_summary = lines[..lines.len() - 1].join("\n") + "\n";
        let e = read(&no_summary).unwrap_err();
        assert!(e.reason.contains("ends without a summary record"), "{e}");
        assert_eq!(e.to_string(), format!("test.ndjson: line 7: {}", e.reason));
        let e = read("").unwrap_err();
        assert!(e.reason.contains("empty file"), "{e}");
    }

    #[test]
    fn malformed_records_are_refused_with_the_line() {
        let mut lines: Vec<String> = TSO_OFF.lines().map(str::to_string).collect();
        lines[2] = lines[2].replace("\"seq\":", "\"seq\":\"x\",\"old\":");
        let e = read(&(lines.join("\n") + "\n")).unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.reason.starts_with("malformed record"), "{e}");
        let e = read("{\"type\":\"interval\"}\n").unwrap_err();
        assert!(e.reason.contains("not a header"), "{e}");
        let e = read("not json\n").unwrap_err();
        assert!(e.reason.starts_with("not JSON"), "{e}");
        let twice = format!("{TSO_OFF}{}", TSO_OFF.lines().last().unwrap());
        assert!(
            read(&twice)
                .unwrap_err()
                .reason
                .contains("after the summary")
        );
    }

    #[test]
    fn schema_versions_are_checked() {
        let newer = TSO_OFF.replacen("\"schema_version\":1", "\"schema_version\":2", 1);
        let e = read(&newer).unwrap_err();
        assert_eq!(e.line, 1);
        assert!(
            e.reason.contains("schema version 2") && e.reason.contains("upgrade toe-agent"),
            "{e}"
        );
        let older = TSO_OFF.replacen("\"schema_version\":1", "\"schema_version\":0", 1);
        assert!(
            read(&older)
                .unwrap_err()
                .reason
                .contains("version 0 is not one this agent can read")
        );
        // A version-1 file written before verdicts, checks and overhead existed.
        let bare: String = TSO_OFF
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                for k in ["verdicts", "checks", "overhead"] {
                    v.as_object_mut().unwrap().remove(k);
                }
                v.to_string() + "\n"
            })
            .collect();
        let run = read(&bare).unwrap();
        assert!(run.summary.verdicts.is_empty());
    }

    /// A reader that makes up a long run on the fly: the series stays
    /// bounded whatever the length of the file.
    struct Endless {
        header: Vec<u8>,
        interval: String,
        summary: Vec<u8>,
        left: u64,
        buf: Vec<u8>,
        t: u64,
    }

    impl Read for Endless {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.buf.is_empty() {
                if !self.header.is_empty() {
                    self.buf = std::mem::take(&mut self.header);
                } else if self.left > 0 {
                    self.left -= 1;
                    self.t += 1_000_000_000;
                    self.buf = self
                        .interval
                        .replace("START", &self.t.to_string())
                        .replace("END", &(self.t + 1_000_000_000).to_string())
                        .into_bytes();
                } else {
                    self.buf = std::mem::take(&mut self.summary);
                }
            }
            let n = out.len().min(self.buf.len());
            out[..n].copy_from_slice(&self.buf[..n]);
            self.buf.drain(..n);
            Ok(n)
        }
    }

    #[test]
    fn long_runs_stream_in_bounded_memory() {
        let lines: Vec<&str> = TSO_OFF.lines().collect();
        let mut interval: serde_json::Value = serde_json::from_str(lines[3]).unwrap();
        interval["start_unix_ns"] = "START".into();
        interval["end_unix_ns"] = "END".into();
        let interval = interval
            .to_string()
            .replace("\"START\"", "START")
            .replace("\"END\"", "END")
            + "\n";
        let reader = Endless {
            header: format!("{}\n", lines[0]).into_bytes(),
            interval,
            summary: format!("{}\n", lines[lines.len() - 1]).into_bytes(),
            left: 100_000,
            buf: Vec::new(),
            t: 0,
        };
        let run = read_run(reader, "endless").unwrap();
        assert_eq!(run.intervals, 100_000);
        assert!(
            run.series.points.len() <= MAX_POINTS,
            "{}",
            run.series.points.len()
        );
        assert!(run.series.points.len() >= MAX_POINTS / 2);
        let last = run.series.points.last().unwrap();
        assert!((last.t - 100_000.0).abs() < 1.0, "{}", last.t);
    }

    #[test]
    fn comparison_shows_changes() {
        let (a, b) = (read(TSO_OFF).unwrap(), read(TSO_ON).unwrap());
        let text = render_compare(&a, &b, ("off.ndjson", "on.ndjson"));
        assert!(text.contains("before: off.ndjson"), "{text}");
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with("rx_coalescing"))
            .unwrap();
        assert!(
            line.contains("software") && line.contains("deferred") && line.ends_with("changed"),
            "{line}"
        );
        let seg = text
            .lines()
            .find(|l| l.starts_with("rx.segment_len p50"))
            .unwrap();
        assert!(seg.contains("1535.00") && seg.contains("65535.00"), "{seg}");
    }

    #[test]
    fn svg_pictures_have_their_elements() {
        let (a, b) = (read(TSO_OFF).unwrap(), read(TSO_ON).unwrap());
        let dir = std::env::temp_dir().join(format!("toe-svg-{}", std::process::id()));
        let n = crate::sinks::plot::write_all(&dir, &[("before", &a), ("after", &b)]).unwrap();
        // Every distribution with events in either run (11 of the
        // catalogue's here: on veth no hand-off carried a gso_size, for
        // one), and the four time series.
        assert_eq!(n, 11 + 4);
        let hist = std::fs::read_to_string(dir.join("rx_segment_len.svg")).unwrap();
        assert!(
            hist.starts_with("<svg") && hist.contains("<rect"),
            "histogram bars"
        );
        assert!(hist.contains("RX segment length before GRO"));
        assert!(
            hist.contains("before: ") && hist.contains("after: "),
            "legend"
        );
        let series = std::fs::read_to_string(dir.join("series_rx_gbps.svg")).unwrap();
        assert!(series.contains("<polyline"), "time series line");
        assert!(series.contains("seconds since the start"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The reader under random damage: an error or a run, never a panic
    /// (the fuzz target in fuzz/ explores this further).
    #[test]
    fn damaged_input_never_panics() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let base = TSO_OFF.as_bytes();
        for _ in 0..300 {
            let mut bytes = base.to_vec();
            for _ in 0..(next() % 8 + 1) {
                let at = (next() % bytes.len() as u64) as usize;
                match next() % 3 {
                    0 => bytes[at] = next() as u8,
                    1 => bytes.truncate(at),
                    _ => bytes.insert(at, b"{}[],:\"0\n"[(next() % 9) as usize]),
                }
                if bytes.is_empty() {
                    break;
                }
            }
            let _ = read_run(&bytes[..], "damaged");
        }
    }
}
