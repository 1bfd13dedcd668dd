//! The live view drawn into ratatui's test backend from a recorded run:
//! what a user sees at 80×24 and at other sizes.
use ratatui::{Terminal, backend::TestBackend};

use super::*;
use crate::sinks::{
    ndjson::{Header, Interval, Record},
    tui::state::Snapshot,
};

const RECORDED: &str = include_str!("../../../../fixtures/ndjson/gro_tso_off.ndjson");

/// The recording's header and intervals, in order.
fn recorded() -> (Header, Vec<Interval>) {
    let mut header = None;
    let mut intervals = Vec::new();
    for line in RECORDED.lines() {
        match serde_json::from_str::<Record>(line).unwrap() {
            Record::Header(h) => header = Some(h),
            Record::Interval(i) => intervals.push(i),
            Record::Summary(_) => {}
        }
    }
    (header.unwrap(), intervals)
}

fn snapshot(i: &Interval) -> Snapshot {
    let secs = (i.end_unix_ns - i.start_unix_ns) as f64 / 1e9;
    Snapshot {
        title: format!("interval {} ({secs:.2} s)", i.seq),
        blocks: i.blocks.clone(),
        verdicts: i.verdicts.clone(),
        checks: i.checks.clone(),
        overhead: i.overhead.clone(),
        secs,
        nic: i.nic.clone(),
    }
}

/// A live view fed the recorded intervals, then the busiest one again
/// with its TSO verdict turned into a mismatch.
fn live(intervals: &[Interval]) -> Live {
    let mut live = Live::new();
    let busiest = intervals
        .iter()
        .max_by_key(|i| i.blocks.rx.after_gro.skbs)
        .unwrap();
    let mut last = snapshot(busiest);
    last.verdicts[0].mismatch = true;
    for s in intervals.iter().map(snapshot).chain([last]) {
        let rates = Rates::of(&s.blocks, s.secs, true);
        live.push(s.clone(), s, &rates);
    }
    live
}

/// The screen as text, one string per row.
fn screen(ctx: &Context, live: &Live, w: u16, h: u16) -> Vec<String> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, ctx, live)).unwrap();
    let buf = t.backend().buffer().clone();
    (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol().to_string()).collect())
        .collect()
}

#[test]
fn the_verdicts_and_rates_are_on_an_80_by_24_screen() {
    let (h, intervals) = recorded();
    let ctx = Context::of(&h);
    let live = live(&intervals);
    let rows = screen(&ctx, &live, 80, 24);
    let text = rows.join("\n");
    for v in &live.period().unwrap().verdicts {
        assert!(
            text.contains(v.offload.name()),
            "{}\n{text}",
            v.offload.name()
        );
    }
    assert!(text.contains("MISMATCH"), "{text}");
    assert!(text.contains("Gbit/s"), "{text}");
    assert!(text.contains("segments/skb"), "{text}");
    assert!(text.contains("NET_RX"), "{text}");
    assert!(text.contains("toe-agent vb"), "{text}");
    // The pane tabs and the keys are on screen too.
    assert!(text.contains("1 RX GRO"), "{text}");
    assert!(rows[23].contains("q quit"), "{text}");
    // The RX pane shows a histogram under the verdicts.
    assert!(text.contains("count"), "{text}");
}

#[test]
fn no_line_is_wider_than_the_screen() {
    let (h, intervals) = recorded();
    let ctx = Context::of(&h);
    let mut live = live(&intervals);
    // Everything counted, so that every pane has all its lines.
    if let Some((i, r)) = live.shown.as_mut() {
        i.blocks = crate::sinks::reach::everything();
        r.blocks = crate::sinks::reach::everything();
    }
    for width in [80usize, 100, 132] {
        let cov = crate::kernel::attach::coverage(ctx.probes);
        let mut lines = top_lines(&ctx, cov, &live, width, 40);
        for pane in Pane::ALL {
            lines.extend(pane_lines(cov, live.period().unwrap(), pane, width));
        }
        for l in &lines {
            assert!(l.width() <= width, "{} > {width}: {l}", l.width());
        }
    }
}

/// The NIC's own word has its line under the rates, with ✓ or ✗.
#[test]
fn the_nics_word_is_on_the_screen() {
    let (h, intervals) = recorded();
    let ctx = Context::of(&h);
    let mut live = live(&intervals);
    if let Some((i, _)) = live.shown.as_mut() {
        let mut b = i.blocks.clone();
        b.rx.handoff.segments = 1_000;
        let qstats = [("rx-packets".to_string(), 1_000u64)].into();
        i.nic = crate::model::nic::Nic::of(qstats, None, Default::default(), &b);
    }
    let text = screen(&ctx, &live, 80, 24).join("\n");
    assert!(
        text.contains("NIC says  packets handed up 1,000 (probes 1,000, ratio 1.00) ✓"),
        "{text}"
    );
}

#[test]
fn a_small_screen_keeps_the_verdicts() {
    let (h, intervals) = recorded();
    let ctx = Context::of(&h);
    let live = live(&intervals);
    let text = screen(&ctx, &live, 80, 12).join("\n");
    assert!(text.contains("MISMATCH"), "{text}");
    for v in &live.period().unwrap().verdicts {
        assert!(text.contains(v.offload.name()), "{text}");
    }
}

#[test]
fn every_pane_draws_and_help_covers_it() {
    let (h, intervals) = recorded();
    let ctx = Context::of(&h);
    let mut live = live(&intervals);
    for pane in Pane::ALL {
        live.pane = pane;
        let text = screen(&ctx, &live, 80, 24).join("\n");
        assert!(text.contains(pane.title()), "{text}");
    }
    live.pane = Pane::Trends;
    let text = screen(&ctx, &live, 80, 24).join("\n");
    assert!(text.contains("Gbit/s") && text.contains("max"), "{text}");
    live.help = true;
    let text = screen(&ctx, &live, 80, 24).join("\n");
    assert!(text.contains("end the run"), "{text}");
}

#[test]
fn before_the_first_interval_it_says_so() {
    let (h, _) = recorded();
    let text = screen(&Context::of(&h), &Live::new(), 80, 24).join("\n");
    assert!(text.contains("waiting for the first interval"), "{text}");
}

#[test]
fn fitting_drops_whole_phrases_and_words() {
    let items: Vec<String> = ["RX 1,000/s", "2 Gbit/s", "3 segments/skb"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(fit(&items, 24), "RX 1,000/s · 2 Gbit/s");
    assert_eq!(fit(&items, 9), "");
    assert_eq!(words("the quick brown fox", 12), "the quick…");
    assert_eq!(words("short", 12), "short");
}
