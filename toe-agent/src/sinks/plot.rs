//! SVG pictures of one run or of two side by side (`report --svg DIR`),
//! drawn with plotters: the histograms on a log2 axis and the per-interval
//! time series.
use std::path::Path;

use anyhow::Context as _;
use plotters::prelude::*;

use crate::{
    model::{catalogue::Value, summary::HistSummary},
    sinks::recording::Run,
};

const SIZE: (u32, u32) = (960, 540);
const COLOURS: [RGBColor; 2] = [RGBColor(31, 119, 180), RGBColor(255, 127, 14)];

type PointOf = fn(&crate::sinks::recording::Point) -> f64;

const SERIES: [(&str, &str, &str, PointOf); 4] = [
    (
        "series_rx_gbps",
        "RX throughput per interval",
        "Gbit/s",
        |p| p.rx_gbps,
    ),
    (
        "series_tx_gbps",
        "TX throughput per interval",
        "Gbit/s",
        |p| p.tx_gbps,
    ),
    (
        "series_softirq_pct",
        "NET_RX softirq, busiest CPU",
        "% of the CPU",
        |p| p.softirq_pct,
    ),
    (
        "series_segs_per_skb",
        "RX segments per skb (GRO) per interval",
        "segments",
        |p| p.segs_per_skb,
    ),
];

fn log2(v: u64) -> f64 {
    ((v.max(1)) as f64).log2()
}

/// Bars of every run, side by side within each bucket, on a log2 axis.
fn histogram(
    path: &Path,
    title: &str,
    unit: &str,
    runs: &[(&str, &HistSummary)],
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let hi = runs
        .iter()
        .filter_map(|(_, h)| h.buckets.last().map(|b| log2(b.0 + 1)))
        .fold(1.0, f64::max)
        .ceil();
    let lo = runs
        .iter()
        .filter_map(|(_, h)| h.buckets.first().map(|b| log2(b.0).floor()))
        .fold(hi, f64::min)
        .min(hi - 1.0);
    // Shares, not counts, so runs of different lengths compare.
    let top = runs
        .iter()
        .flat_map(|(_, h)| {
            h.buckets
                .iter()
                .map(move |b| b.1 as f64 / h.count.max(1) as f64)
        })
        .fold(0.01, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(lo..hi, 0.0..top * 1.1)?;
    chart
        .configure_mesh()
        .x_desc(format!("{unit} (log2 scale)"))
        .y_desc("share of events")
        .x_label_formatter(&|x| format!("{}", 2f64.powf(*x).round() as u64))
        .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
        .draw()?;
    let n = runs.len() as f64;
    for (k, (name, h)) in runs.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let mut lower = 0u64;
        let mut bars = Vec::new();
        for &(upper, count) in &h.buckets {
            let (a, b) = (
                log2(lower.max(upper / 2 + 1).max(1)).min(log2(upper)),
                log2(upper + 1),
            );
            let w = (b - a) / n;
            let x0 = a + w * k as f64;
            bars.push(Rectangle::new(
                [(x0, 0.0), (x0 + w, count as f64 / h.count.max(1) as f64)],
                colour.mix(0.8).filled(),
            ));
            lower = upper + 1;
        }
        chart
            .draw_series(bars)?
            .label(format!(
                "{name}: {} events, p50 {}, p99 {}",
                h.count, h.p50, h.p99
            ))
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

fn series(
    path: &Path,
    title: &str,
    unit: &str,
    runs: &[(&str, &Run)],
    f: PointOf,
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let t_max = runs
        .iter()
        .filter_map(|(_, r)| r.series.points.last().map(|p| p.t))
        .fold(1.0, f64::max);
    let y_max = runs
        .iter()
        .flat_map(|(_, r)| r.series.points.iter().map(f))
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the start")
        .y_desc(unit)
        .draw()?;
    for (k, (name, run)) in runs.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(
                run.series.points.iter().map(|p| (p.t, f(p))),
                colour.stroke_width(2),
            ))?
            .label(name.to_string())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Every picture for `runs` (one, or before/after) into `dir`; returns how many.
pub(crate) fn write_all(dir: &Path, runs: &[(&str, &Run)]) -> anyhow::Result<usize> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = 0;
    // Every distribution of the catalogue, named by its path.
    let hists = crate::probes::quantities().filter_map(|q| match q.value {
        Value::Hist(of) => Some((q.path.replace('.', "_"), q.title, q.unit.name(), of)),
        _ => None,
    });
    for (stem, title, unit, f) in hists {
        let hs: Vec<(&str, &HistSummary)> = runs
            .iter()
            .map(|(n, r)| (*n, f(&r.summary.blocks)))
            .collect();
        if hs.iter().all(|(_, h)| h.count == 0) {
            continue;
        }
        let path = dir.join(format!("{stem}.svg"));
        histogram(&path, title, unit, &hs)
            .with_context(|| format!("drawing {}", path.display()))?;
        written += 1;
    }
    for (stem, title, unit, f) in SERIES {
        let path = dir.join(format!("{stem}.svg"));
        series(&path, title, unit, runs, f)
            .with_context(|| format!("drawing {}", path.display()))?;
        written += 1;
    }
    Ok(written)
}
