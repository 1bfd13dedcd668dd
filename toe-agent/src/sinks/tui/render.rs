//! Drawing the live view: the answer on top (device, rates, softirq
//! share, the agent's cost, the five verdicts), the panes below, the keys
//! in the footer. Every line is fitted to the width by whole phrases or
//! words, never cut mid-word.
use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Clear, Paragraph, Sparkline, Tabs},
};

use super::state::{Live, Pane, Snapshot};
use crate::{
    model::catalogue::{Quantity, Value},
    model::units::group,
    model::verdict::{Coverage, Mechanism, Verdict},
    model::{period::Rates, summary::HistSummary},
    sinks::view::{self, Context, pct, pow2_rows, rate},
};

/// Phrases joined with " · " while they fit in `width`; the rest is left
/// out whole.
pub(crate) fn fit(items: &[String], width: usize) -> String {
    let mut out = String::new();
    for item in items.iter().filter(|i| !i.is_empty()) {
        let sep = if out.is_empty() { 0 } else { 3 };
        if out.chars().count() + sep + item.chars().count() > width {
            break;
        }
        if sep > 0 {
            out.push_str(" · ");
        }
        out.push_str(item);
    }
    out
}

/// `text` cut after the last whole word that fits in `width`, with "…"
/// when something was left out.
pub(crate) fn words(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut out = String::new();
    for w in text.split_whitespace() {
        let sep = usize::from(!out.is_empty());
        // Room for the word and the ellipsis.
        if out.chars().count() + sep + w.chars().count() + 1 > width {
            break;
        }
        if sep > 0 {
            out.push(' ');
        }
        out.push_str(w);
    }
    if width > 0 {
        out.push('…');
    }
    out
}

fn mechanism_style(m: Mechanism) -> Style {
    let colour = match m {
        Mechanism::Hardware => Color::Green,
        Mechanism::Host => Color::Blue,
        Mechanism::Software => Color::Yellow,
        Mechanism::Deferred => Color::Cyan,
        Mechanism::Off | Mechanism::NotExercised | Mechanism::NotMeasured => Color::DarkGray,
    };
    Style::default().fg(colour).add_modifier(Modifier::BOLD)
}

/// One verdict, one line: offload, mechanism, MISMATCH, the flag, the
/// evidence as far as it fits.
fn verdict_line(v: &Verdict, width: usize) -> Line<'static> {
    let name = format!("{:<16}", v.offload.name());
    let mech = format!("{:<14}", v.mechanism.name());
    let mut spans = vec![
        Span::raw(name),
        Span::styled(mech, mechanism_style(v.mechanism)),
    ];
    let mut used = 30;
    if v.mismatch {
        spans.push(Span::styled(
            " MISMATCH ",
            Style::default()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::raw(" "));
        used += 11;
    }
    let flag = match &v.configured {
        Some(c) => format!("{} {}", c.feature, if c.active { "on" } else { "off" }),
        None => "flag unknown".into(),
    };
    let rest = format!("({flag}) {}", v.evidence);
    spans.push(Span::raw(words(&rest, width.saturating_sub(used))));
    Line::from(spans)
}

/// The lines above the panes, most important first where there is not
/// room for all: the device, the verdicts, then rates, CPU and cost.
fn top_lines(
    ctx: &Context,
    cov: Coverage,
    live: &Live,
    width: usize,
    height: usize,
) -> Vec<Line<'static>> {
    let mut flags = Vec::new();
    if live.paused {
        flags.push("PAUSED".to_string());
    }
    let Some(p) = live.period() else {
        let head = fit(
            &header_items(ctx, "waiting for the first interval", flags),
            width,
        );
        return vec![Line::styled(
            head,
            Style::default().add_modifier(Modifier::BOLD),
        )];
    };
    if live.run_totals {
        flags.push("run totals (t: last interval)".to_string());
    }
    flags.extend(view::sample_note(&p.blocks.sample));
    let head = fit(&header_items(ctx, &p.title, flags), width);
    let rates = Rates::of(&p.blocks, p.secs, cov.driver_xmit);
    let mut lines = vec![Line::styled(
        head,
        Style::default().add_modifier(Modifier::BOLD),
    )];
    let verdicts: Vec<Line> = p.verdicts.iter().map(|v| verdict_line(v, width)).collect();
    let mut extra = vec![
        Line::raw(fit(&rx_items(p, &rates, cov), width)),
        Line::raw(fit(&tx_items(p, &rates, cov), width)),
    ];
    extra.extend(crate::sinks::view::nic_line(&p.nic).map(|l| Line::raw(fit(&[l], width))));
    extra.push(Line::raw(fit(&cpu_items(p), width)));
    extra.push(Line::raw(fit(&cost_items(p), width)));
    let mut check = p.checks.first().map(|c| {
        let more = match p.checks.len() {
            1 => String::new(),
            n => format!(" (+{} more)", n - 1),
        };
        Line::styled(
            words(&format!("check: {}{more}", c.message), width),
            Style::default().fg(Color::Yellow),
        )
    });
    // Short of room, leave out the check, then cost, CPU, the NIC's word
    // and rates, in that order: the verdicts stay.
    let room = height.saturating_sub(1 + verdicts.len());
    if room <= extra.len() {
        check = None;
        extra.truncate(room);
    }
    lines.extend(extra);
    lines.extend(verdicts);
    lines.extend(check);
    lines
}

fn header_items(ctx: &Context, title: &str, flags: Vec<String>) -> Vec<String> {
    let driver = if ctx.driver.is_empty() {
        "?"
    } else {
        ctx.driver
    };
    let mut items = vec![format!("toe-agent {}", ctx.iface), title.to_string()];
    items.extend(flags);
    items.push(match ctx.class {
        Some(c) => format!("{driver}, {c}"),
        None => driver.to_string(),
    });
    items.push(format!("probes {}", view::probe_summary(ctx.probes)));
    items.push(format!("mtu {}", ctx.mtu));
    items
}

fn rx_items(p: &Snapshot, rates: &Rates, cov: Coverage) -> Vec<String> {
    let r = &p.blocks.rx;
    let segments = if cov.handoff && !p.blocks.sample.partial() {
        r.handoff.segments
    } else {
        r.whole_segments()
    };
    vec![
        format!("RX {}/s segments", rate(segments, p.secs)),
        format!("{}/s skbs", rate(r.after_gro.skbs, p.secs)),
        format!("{:.2} Gbit/s", rates.rx_gbps),
        format!("{:.1} segments/skb", rates.segs_per_skb),
    ]
}

fn tx_items(p: &Snapshot, rates: &Rates, cov: Coverage) -> Vec<String> {
    let t = &p.blocks.tx;
    let wire = if cov.driver_xmit && !p.blocks.sample.partial() {
        t.wire_segments
    } else {
        t.whole_segments()
    };
    vec![
        format!("TX {}/s skbs queued", rate(t.queued_skbs, p.secs)),
        format!("{}/s wire segments", rate(wire, p.secs)),
        format!("{:.2} Gbit/s", rates.tx_gbps),
    ]
}

/// NET_RX share of each CPU, then NET_TX and NAPI.
fn cpu_items(p: &Snapshot) -> Vec<String> {
    let span = (p.secs * 1e9) as u64;
    let s = &p.blocks.softirq;
    let mut items = vec![format!(
        "NET_RX {:.1}% of a CPU",
        pct(s.net_rx.time_ns, span)
    )];
    items.extend(
        s.net_rx
            .per_cpu
            .iter()
            .map(|c| format!("cpu{} {:.1}%", c.cpu, pct(c.time_ns, span))),
    );
    items.push(format!("NET_TX {:.1}%", pct(s.net_tx.time_ns, span)));
    items.push(format!(
        "NAPI {}/s polls",
        rate(p.blocks.napi.polls, p.secs)
    ));
    items
}

fn cost_items(p: &Snapshot) -> Vec<String> {
    let o = &p.overhead;
    let mut items = Vec::new();
    if o.missed_runs > 0 {
        items.push(format!("MISSED {} program runs", group(o.missed_runs)));
    }
    items.push(format!("agent {:.2}% CPU", o.agent_cpu_pct));
    items.push(format!("{}/s events", rate(o.events, p.secs)));
    if let Some(ns) = o.bpf_ns_per_event {
        items.push(format!("{ns:.0} ns per program run"));
    }
    items.push(format!(
        "rss {:.1} MiB",
        o.agent_rss_bytes as f64 / (1024.0 * 1024.0)
    ));
    items
}

/// Which pane a catalogue quantity belongs to.
fn pane_of(q: &Quantity) -> Pane {
    let p = q.path;
    if p.contains("csum") {
        Pane::Checksums
    } else if p.starts_with("rx.") {
        Pane::Rx
    } else if p.starts_with("tx.") {
        Pane::Tx
    } else if p.starts_with("softirq.") || p.starts_with("napi.") {
        Pane::Cpu
    } else {
        Pane::Tcp
    }
}

/// A histogram: a title line, then its power-of-two rows with bars.
fn hist_lines(out: &mut Vec<Line<'static>>, q: &Quantity, h: &HistSummary, width: usize) {
    let head = [
        format!("{} ({})", q.title, q.unit.name()),
        format!("count {}", group(h.count)),
        format!("p50 {}", group(h.p50)),
        format!("p99 {}", group(h.p99)),
    ];
    out.push(Line::styled(
        fit(&head, width),
        Style::default().add_modifier(Modifier::BOLD),
    ));
    if h.count == 0 {
        out.push(Line::raw("  (no events)"));
        return;
    }
    let rows = pow2_rows(h);
    let peak = rows.iter().map(|r| r.2).max().unwrap_or(1).max(1);
    for (low, high, count) in rows.into_iter().filter(|r| r.2 > 0) {
        let label = format!(
            "{:>10} - {:<10} {:>12} ",
            group(low),
            group(high),
            group(count)
        );
        let room = width.saturating_sub(label.chars().count());
        let bar = ((count as f64 / peak as f64) * room as f64).round() as usize;
        out.push(Line::from(vec![
            Span::raw(label),
            Span::styled(
                "█".repeat(bar.clamp(1, room.max(1))),
                Style::default().fg(Color::Cyan),
            ),
        ]));
    }
}

/// The pane's text: its histograms, or its counts and splits.
fn pane_lines(cov: Coverage, p: &Snapshot, pane: Pane, width: usize) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    for q in crate::probes::quantities() {
        // Histograms in their pane, checksum states in theirs, and every
        // count and split in the counts pane.
        let here = match q.value {
            Value::Hist(_) => pane_of(q) == pane,
            _ => pane == Pane::Counts || (pane == Pane::Checksums && pane_of(q) == pane),
        };
        if !here {
            continue;
        }
        if !q.measured(cov) {
            out.push(Line::styled(
                words(
                    &format!(
                        "{}: not attached (--per-skb, or not in this kernel)",
                        q.title
                    ),
                    width,
                ),
                Style::default().fg(Color::DarkGray),
            ));
            continue;
        }
        match q.value {
            Value::Hist(of) => hist_lines(&mut out, q, of(&p.blocks), width),
            Value::Count(of) => {
                let n = of(&p.blocks);
                let items = [
                    format!("{:<30} {:>14}", q.path, group(n)),
                    format!("{}/s", rate(n, p.secs)),
                    q.unit.name().to_string(),
                ];
                out.push(Line::raw(fit(&items, width)));
            }
            Value::Split { key, of } => {
                let parts = of(&p.blocks);
                let total: u64 = parts.iter().map(|(_, n)| n).sum();
                let mut items = vec![format!("{} by {key}:", q.path)];
                items.extend(
                    parts
                        .iter()
                        .filter(|(_, n)| *n != 0)
                        .map(|(k, n)| format!("{k} {} ({:.0}%)", group(*n), pct(*n, total))),
                );
                if total == 0 {
                    items.push("-".into());
                }
                out.push(Line::raw(fit(&items, width)));
            }
        }
    }
    out
}

/// Sparklines of the rates over the last minutes.
fn draw_trends(f: &mut Frame, live: &Live, area: Rect) {
    let t = &live.trends;
    let series: [(&str, &std::collections::VecDeque<f64>, &str); 4] = [
        ("RX", &t.rx_gbps, "Gbit/s"),
        ("TX", &t.tx_gbps, "Gbit/s"),
        ("RX segments per skb", &t.segs_per_skb, ""),
        ("NET_RX busiest CPU", &t.net_rx_busiest_pct, "%"),
    ];
    let rows = Layout::vertical([Constraint::Ratio(1, 4); 4]).split(area);
    for ((name, data, unit), row) in series.into_iter().zip(rows.iter()) {
        let now = data.back().copied().unwrap_or(0.0);
        let max = data.iter().copied().fold(0.0, f64::max);
        let title = fit(
            &[
                format!("{name} {now:.2} {unit}"),
                format!("max {max:.2}"),
                format!("last {} intervals", data.len()),
            ],
            row.width as usize,
        );
        // Sparklines take integers: hundredths keep two decimals.
        let points: Vec<u64> = data
            .iter()
            .skip(data.len().saturating_sub(row.width as usize))
            .map(|v| (v * 100.0).round() as u64)
            .collect();
        let [head, body] =
            Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(*row);
        f.render_widget(Paragraph::new(title), head);
        f.render_widget(
            Sparkline::default()
                .data(&points)
                .style(Style::default().fg(Color::Cyan)),
            body,
        );
    }
}

const KEYS: [&str; 6] = [
    "q quit",
    "p pause",
    "←/→ pane",
    "↑/↓ scroll",
    "t interval/run",
    "? help",
];

fn help_lines() -> Vec<Line<'static>> {
    [
        "q, Esc, Ctrl-C   end the run (summary, then detach)",
        "p, space         pause the screen (readings go on)",
        "←/→, Tab, 1-7    switch pane",
        "↑/↓, PgUp/PgDn   scroll the pane",
        "t                last interval / the run so far",
        "? or F1          this help",
        "",
        "green hardware, blue host (VM), yellow software,",
        "cyan deferred, grey off or not seen",
        "MISMATCH: the flag and what happened disagree",
    ]
    .into_iter()
    .map(Line::raw)
    .collect()
}

/// Draw the whole screen.
pub(crate) fn draw(f: &mut Frame, ctx: &Context, live: &Live) {
    let area = f.area();
    let width = area.width as usize;
    // What the probes can see decides what is shown as measured.
    let cov = crate::kernel::attach::coverage(ctx.probes);
    // The pane keeps at least three lines (tabs, one row, footer).
    let top = top_lines(
        ctx,
        cov,
        live,
        width,
        (area.height as usize).saturating_sub(3),
    );
    let [top_area, tabs_area, pane_area, footer_area] = Layout::vertical([
        Constraint::Length(top.len() as u16),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(area);
    f.render_widget(Paragraph::new(top), top_area);

    let titles: Vec<String> = Pane::ALL
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{} {}", i + 1, p.title()))
        .collect();
    let selected = Pane::ALL.iter().position(|p| *p == live.pane).unwrap_or(0);
    f.render_widget(
        Tabs::new(titles)
            .select(selected)
            .divider("|")
            .padding("", "")
            .highlight_style(Style::default().add_modifier(Modifier::REVERSED)),
        tabs_area,
    );

    match (live.pane, live.period()) {
        (Pane::Trends, _) => draw_trends(f, live, pane_area),
        (pane, Some(p)) => {
            let lines = pane_lines(cov, p, pane, width);
            let max = (lines.len() as u16).saturating_sub(pane_area.height);
            f.render_widget(
                Paragraph::new(lines).scroll((live.scroll.min(max), 0)),
                pane_area,
            );
        }
        (_, None) => {}
    }
    let keys: Vec<String> = KEYS.iter().map(|k| k.to_string()).collect();
    f.render_widget(
        Paragraph::new(fit(&keys, width)).style(Style::default().add_modifier(Modifier::REVERSED)),
        footer_area,
    );

    if live.help {
        let lines = help_lines();
        let w = (area.width).min(58);
        let h = (area.height).min(lines.len() as u16 + 2);
        let r = Rect::new(
            area.x + (area.width - w) / 2,
            area.y + (area.height - h) / 2,
            w,
            h,
        );
        f.render_widget(Clear, r);
        f.render_widget(
            Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(" keys ")),
            r,
        );
    }
}

#[cfg(test)]
mod tests;
