//! What the live view shows and where the user is in it: the last
//! interval, the run so far, the recent history, the pane, and the keys
//! that move between them. No terminal here, so all of it is testable.
use std::collections::VecDeque;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::model::nic::Nic;
use crate::{
    kernel::overhead::Overhead,
    model::period::{Blocks, Rates},
    model::verdict::{Check, Verdict},
};

/// One period as the view draws it, owned so that it outlives the loop's
/// borrow of the record.
#[derive(Debug, Clone)]
pub(crate) struct Snapshot {
    /// "interval 12 (1.00 s)" or "run 42.0 s".
    pub title: String,
    pub blocks: Blocks,
    pub verdicts: Vec<Verdict>,
    pub checks: Vec<Check>,
    pub overhead: Overhead,
    pub secs: f64,
    /// The driver's own counters over the same time.
    pub nic: Nic,
}

/// How many intervals the trend pane keeps: five minutes at the default
/// one-second interval.
pub(crate) const HISTORY: usize = 300;

/// The rates of the last [`HISTORY`] intervals, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Trends {
    pub rx_gbps: VecDeque<f64>,
    pub tx_gbps: VecDeque<f64>,
    pub segs_per_skb: VecDeque<f64>,
    /// NET_RX softirq time of the busiest CPU, % of that CPU.
    pub net_rx_busiest_pct: VecDeque<f64>,
}

impl Trends {
    fn push(&mut self, r: &Rates) {
        for (series, v) in [
            (&mut self.rx_gbps, r.rx_gbps),
            (&mut self.tx_gbps, r.tx_gbps),
            (&mut self.segs_per_skb, r.segs_per_skb),
            (&mut self.net_rx_busiest_pct, r.net_rx_busiest_pct),
        ] {
            if series.len() == HISTORY {
                series.pop_front();
            }
            series.push_back(v);
        }
    }
}

/// The panes below the verdicts, in the order the keys walk them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pane {
    Rx,
    Tx,
    Checksums,
    Cpu,
    Tcp,
    Trends,
    Counts,
}

impl Pane {
    pub(crate) const ALL: [Pane; 7] = [
        Pane::Rx,
        Pane::Tx,
        Pane::Checksums,
        Pane::Cpu,
        Pane::Tcp,
        Pane::Trends,
        Pane::Counts,
    ];

    pub(crate) fn title(self) -> &'static str {
        match self {
            Pane::Rx => "RX GRO",
            Pane::Tx => "TX GSO",
            Pane::Checksums => "checksums",
            Pane::Cpu => "softirq/NAPI",
            Pane::Tcp => "TCP/drops",
            Pane::Trends => "trends",
            Pane::Counts => "counts",
        }
    }

    fn index(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    fn step(self, by: isize) -> Pane {
        let n = Pane::ALL.len() as isize;
        Pane::ALL[(self.index() as isize + by).rem_euclid(n) as usize]
    }
}

/// What a key asks of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// End the run, as SIGINT would.
    Quit,
    /// Something on screen changed.
    Redraw,
    /// Nothing to do.
    Ignore,
}

/// The live view's state.
#[derive(Debug)]
pub(crate) struct Live {
    /// What is on screen: the last interval and the run so far. Frozen
    /// while paused.
    pub shown: Option<(Snapshot, Snapshot)>,
    /// The newest readings, shown when the pause ends.
    latest: Option<(Snapshot, Snapshot)>,
    pub trends: Trends,
    pub pane: Pane,
    /// Lines scrolled off the top of the pane.
    pub scroll: u16,
    pub paused: bool,
    /// Show the run's totals instead of the last interval.
    pub run_totals: bool,
    pub help: bool,
    /// Intervals read so far (counted while paused too).
    pub intervals: u64,
}

impl Live {
    pub(crate) fn new() -> Live {
        Live {
            shown: None,
            latest: None,
            trends: Trends::default(),
            pane: Pane::Rx,
            scroll: 0,
            paused: false,
            run_totals: false,
            help: false,
            intervals: 0,
        }
    }

    /// A new reading: the interval just ended, and the run up to it. The
    /// trends keep moving while paused; the screen does not.
    pub(crate) fn push(&mut self, interval: Snapshot, run: Snapshot, rates: &Rates) {
        self.trends.push(rates);
        self.intervals += 1;
        if self.paused {
            self.latest = Some((interval, run));
        } else {
            self.shown = Some((interval, run));
        }
    }

    /// The period on screen: the last interval, or the run so far.
    pub(crate) fn period(&self) -> Option<&Snapshot> {
        self.shown
            .as_ref()
            .map(|(i, r)| if self.run_totals { r } else { i })
    }

    /// Handle one key.
    pub(crate) fn key(&mut self, k: KeyEvent) -> Action {
        if k.kind == KeyEventKind::Release {
            return Action::Ignore;
        }
        // Raw mode turns Ctrl-C into a key: it must still end the run.
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Char('c') if ctrl => return Action::Quit,
            KeyCode::Char('q') | KeyCode::Esc if !self.help => return Action::Quit,
            KeyCode::Char('q') | KeyCode::Esc | KeyCode::Char('?') | KeyCode::F(1) if self.help => {
                self.help = false
            }
            KeyCode::Char('?') | KeyCode::F(1) => self.help = true,
            KeyCode::Char('p') | KeyCode::Char(' ') => self.toggle_pause(),
            KeyCode::Char('t') => self.run_totals = !self.run_totals,
            KeyCode::Tab | KeyCode::Right | KeyCode::Char('l') => self.go(self.pane.step(1)),
            KeyCode::BackTab | KeyCode::Left | KeyCode::Char('h') => self.go(self.pane.step(-1)),
            KeyCode::Char(c @ '1'..='7') => self.go(Pane::ALL[c as usize - '1' as usize]),
            KeyCode::Down | KeyCode::Char('j') => self.scroll = self.scroll.saturating_add(1),
            KeyCode::Up | KeyCode::Char('k') => self.scroll = self.scroll.saturating_sub(1),
            KeyCode::PageDown => self.scroll = self.scroll.saturating_add(10),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_sub(10),
            _ => return Action::Ignore,
        }
        Action::Redraw
    }

    fn go(&mut self, pane: Pane) {
        self.pane = pane;
        self.scroll = 0;
    }

    fn toggle_pause(&mut self) {
        self.paused = !self.paused;
        if !self.paused
            && let Some(l) = self.latest.take()
        {
            self.shown = Some(l);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(title: &str) -> Snapshot {
        Snapshot {
            title: title.into(),
            blocks: Blocks::default(),
            verdicts: vec![],
            checks: vec![],
            overhead: Overhead::default(),
            secs: 1.0,
            nic: Nic::default(),
        }
    }

    fn press(live: &mut Live, code: KeyCode) -> Action {
        live.key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    fn rates(gbps: f64) -> Rates {
        Rates {
            rx_gbps: gbps,
            tx_gbps: 0.0,
            segs_per_skb: 1.0,
            net_rx_pct: 0.0,
            net_rx_busiest_pct: 0.0,
        }
    }

    #[test]
    fn pause_freezes_the_screen_but_not_the_trends() {
        let mut live = Live::new();
        live.push(snap("1"), snap("run 1"), &rates(1.0));
        assert_eq!(press(&mut live, KeyCode::Char('p')), Action::Redraw);
        live.push(snap("2"), snap("run 2"), &rates(2.0));
        assert_eq!(live.period().unwrap().title, "1");
        assert_eq!(live.trends.rx_gbps, [1.0, 2.0]);
        press(&mut live, KeyCode::Char(' '));
        assert_eq!(live.period().unwrap().title, "2");
        press(&mut live, KeyCode::Char('t'));
        assert_eq!(live.period().unwrap().title, "run 2");
    }

    #[test]
    fn keys_walk_the_panes_and_quit() {
        let mut live = Live::new();
        press(&mut live, KeyCode::Left);
        assert_eq!(live.pane, Pane::Counts);
        press(&mut live, KeyCode::Tab);
        assert_eq!(live.pane, Pane::Rx);
        press(&mut live, KeyCode::Char('4'));
        assert_eq!(live.pane, Pane::Cpu);
        press(&mut live, KeyCode::Down);
        press(&mut live, KeyCode::Right);
        assert_eq!((live.pane, live.scroll), (Pane::Tcp, 0));
        // Help takes q and Esc for itself; Ctrl-C always quits.
        press(&mut live, KeyCode::Char('?'));
        assert_eq!(press(&mut live, KeyCode::Char('q')), Action::Redraw);
        assert!(!live.help);
        assert_eq!(press(&mut live, KeyCode::Char('x')), Action::Ignore);
        assert_eq!(press(&mut live, KeyCode::Char('q')), Action::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(live.key(ctrl_c), Action::Quit);
    }

    #[test]
    fn trends_keep_the_last_five_minutes() {
        let mut live = Live::new();
        for i in 0..HISTORY + 5 {
            live.push(snap("i"), snap("r"), &rates(i as f64));
        }
        assert_eq!(live.trends.rx_gbps.len(), HISTORY);
        assert_eq!(live.trends.rx_gbps.front(), Some(&5.0));
    }
}
