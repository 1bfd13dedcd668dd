//! Reading a recorded run (`trace --ndjson`). The reader streams: it keeps
//! the header, the summary and a bounded series of per-interval points, so
//! a multi-gigabyte file needs no more memory than a small one.
use std::{
    fs::File,
    io::{BufRead, BufReader, Read},
    path::Path,
};

use crate::{
    Failure,
    model::period::Rates,
    sinks::ndjson::{Header, Interval, Record, SCHEMA_VERSION, Summary},
};

/// One interval, reduced to what the time series plot.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Point {
    /// Seconds since the start of the run (end of the interval).
    pub t: f64,
    pub rx_gbps: f64,
    pub tx_gbps: f64,
    /// NET_RX softirq time of the busiest CPU, % of that CPU.
    pub softirq_pct: f64,
    pub segs_per_skb: f64,
}

/// At most `MAX_POINTS` points: when full, neighbours are averaged in pairs
/// and later intervals are averaged two (then four, ...) at a time.
#[derive(Debug, Default)]
pub struct Series {
    pub points: Vec<Point>,
    stride: usize,
    pending: Vec<Point>,
}

pub(crate) const MAX_POINTS: usize = 2048;

fn mean(points: &[Point]) -> Point {
    let n = points.len().max(1) as f64;
    let sum = |f: fn(&Point) -> f64| points.iter().map(f).sum::<f64>() / n;
    Point {
        t: points.last().map(|p| p.t).unwrap_or(0.0),
        rx_gbps: sum(|p| p.rx_gbps),
        tx_gbps: sum(|p| p.tx_gbps),
        softirq_pct: sum(|p| p.softirq_pct),
        segs_per_skb: sum(|p| p.segs_per_skb),
    }
}

impl Series {
    pub fn push(&mut self, p: Point) {
        self.stride = self.stride.max(1);
        self.pending.push(p);
        if self.pending.len() < self.stride {
            return;
        }
        self.points.push(mean(&self.pending));
        self.pending.clear();
        if self.points.len() >= MAX_POINTS {
            self.points = self.points.chunks(2).map(mean).collect();
            self.stride *= 2;
        }
    }

    pub fn finish(&mut self) {
        if !self.pending.is_empty() {
            self.points.push(mean(&self.pending));
            self.pending.clear();
        }
    }
}

/// A run read from NDJSON.
#[derive(Debug)]
pub struct Run {
    pub header: Header,
    pub summary: Summary,
    pub series: Series,
    pub intervals: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: line {line}: {reason}")]
pub struct ReadError {
    pub path: String,
    pub line: u64,
    pub reason: String,
}

fn point(i: &Interval, start_ns: u64, driver_xmit: bool) -> Point {
    let secs = (i.end_unix_ns.saturating_sub(i.start_unix_ns)) as f64 / 1e9;
    let r = Rates::of(&i.blocks, secs, driver_xmit);
    Point {
        t: (i.end_unix_ns.saturating_sub(start_ns)) as f64 / 1e9,
        rx_gbps: r.rx_gbps,
        tx_gbps: r.tx_gbps,
        softirq_pct: r.net_rx_busiest_pct,
        segs_per_skb: r.segs_per_skb,
    }
}

/// Why a line did not parse: `what` when it was whole, truncation when
/// the file ends inside it.
fn damage(complete: bool, what: &str, e: serde_json::Error) -> String {
    if complete {
        format!("{what}: {e}")
    } else {
        format!("truncated record: {e}")
    }
}

/// The first record must be a header of a schema version this agent reads.
fn first_record(text: &str, complete: bool) -> Result<(), String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| damage(complete, "not JSON", e))?;
    if v.get("type").and_then(|t| t.as_str()) != Some("header") {
        return Err("the first record is not a header: not a toe-agent trace file".into());
    }
    match v.get("schema_version").and_then(|s| s.as_u64()) {
        Some(v) if v == SCHEMA_VERSION as u64 => Ok(()),
        Some(v) if v > SCHEMA_VERSION as u64 => Err(format!(
            "written with NDJSON schema version {v}; this agent reads versions up to {SCHEMA_VERSION}: upgrade toe-agent"
        )),
        Some(v) => Err(format!(
            "NDJSON schema version {v} is not one this agent can read (it reads {SCHEMA_VERSION})"
        )),
        None => Err("header without schema_version".into()),
    }
}

/// The longest line a recording may hold. Records are a few KiB (an
/// interval with every histogram and NAPI instance stays under 64 KiB).
pub(crate) const MAX_LINE: u64 = 16 * 1024 * 1024;

/// Stream a run from `reader`; `path` names it in errors.
pub fn read_run(reader: impl Read, path: &str) -> Result<Run, ReadError> {
    let err = |line: u64, reason: String| ReadError {
        path: path.to_string(),
        line,
        reason,
    };
    let mut lines = BufReader::new(reader);
    let mut header: Option<Header> = None;
    let mut summary: Option<Summary> = None;
    let mut series = Series::default();
    let mut intervals = 0;
    let mut origin: Option<u64> = None;
    // What the run's probes saw: decides which bytes the TX rate counts.
    let mut driver_xmit = true;
    let mut n = 0u64;
    let mut buf = String::new();
    loop {
        buf.clear();
        // One record per line, each far below the bound: a longer "line"
        // is not NDJSON, and must not be read whole into memory.
        let read = (&mut lines)
            .take(MAX_LINE + 1)
            .read_line(&mut buf)
            .map_err(|e| err(n + 1, format!("read error: {e}")))?;
        if read as u64 > MAX_LINE {
            return Err(err(
                n + 1,
                format!("a line longer than {MAX_LINE} bytes: not a toe-agent recording"),
            ));
        }
        if read == 0 {
            break;
        }
        n += 1;
        let complete = buf.ends_with('\n');
        let text = buf.trim_end();
        if text.is_empty() {
            continue;
        }
        if summary.is_some() {
            return Err(err(
                n,
                "a record after the summary (the summary must be the last line)".into(),
            ));
        }
        if header.is_none() {
            first_record(text, complete).map_err(|reason| err(n, reason))?;
        }
        let record: Record = serde_json::from_str(text)
            .map_err(|e| err(n, damage(complete, "malformed record", e)))?;
        match record {
            Record::Header(h) if header.is_none() => {
                driver_xmit = crate::kernel::attach::coverage(&h.probes).driver_xmit;
                header = Some(h);
            }
            Record::Header(_) => return Err(err(n, "a second header".into())),
            Record::Interval(i) => {
                intervals += 1;
                // Times are relative to the start of the first interval.
                let origin = *origin.get_or_insert(i.start_unix_ns);
                series.push(point(&i, origin, driver_xmit));
            }
            Record::Summary(s) => summary = Some(s),
        }
    }
    series.finish();
    let header = header.ok_or_else(|| err(n, "empty file: no header".into()))?;
    let summary = summary.ok_or_else(|| {
        err(
            n,
            "the file ends without a summary record: truncated (was the agent killed?)".into(),
        )
    })?;
    Ok(Run {
        header,
        summary,
        series,
        intervals,
    })
}

pub(crate) fn read_path(path: &Path) -> Result<Run, Failure> {
    let name = path.display().to_string();
    let result = if path == Path::new("-") {
        read_run(std::io::stdin().lock(), "stdin")
    } else {
        let f =
            File::open(path).map_err(|e| Failure::BadInput(format!("cannot read {name}: {e}")))?;
        read_run(f, &name)
    };
    result.map_err(|e| Failure::BadInput(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    #[test]
    fn an_endless_line_is_refused_in_bounded_memory() {
        let header = include_str!("../../fixtures/ndjson/gro_tso_off.ndjson")
            .lines()
            .next()
            .unwrap()
            .to_string()
            + "\n";
        let endless = std::io::repeat(b'x').take(MAX_LINE * 2);
        let e = read_run(header.as_bytes().chain(endless), "big.ndjson").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.reason.contains("longer than"), "{e}");
    }
}
