//! The live terminal view of `trace` (ratatui over crossterm): it owns the
//! terminal while the run lasts and gives it back as it found it on every
//! way out. A normal end, an error and SIGTERM go through `Drop`; a panic
//! through ratatui's panic hook; Ctrl-C arrives as a key in raw mode.
mod render;
mod state;

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::Duration,
};

use crossterm::event::Event;
use tokio::sync::mpsc;

pub(crate) use state::{Action, Live, Snapshot};

use super::view::Context;
use crate::model::period::Rates;

/// The terminal in raw mode on the alternate screen, a thread reading its
/// keys, and what is shown.
pub(crate) struct Tui {
    terminal: ratatui::DefaultTerminal,
    events: mpsc::UnboundedReceiver<Event>,
    stop: Arc<AtomicBool>,
    reader: Option<thread::JoinHandle<()>>,
    pub(crate) live: Live,
}

impl Tui {
    /// Take over the terminal.
    pub(crate) fn start() -> io::Result<Tui> {
        let terminal = ratatui::try_init()?;
        let (tx, events) = mpsc::unbounded_channel();
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let stop = stop.clone();
            // crossterm's reads block: a thread of its own keeps them off
            // the sampling loop, and polls so that it notices the end.
            thread::Builder::new()
                .name("toe-agent-keys".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match crossterm::event::poll(Duration::from_millis(100)) {
                            Ok(true) => match crossterm::event::read().map(|e| tx.send(e)) {
                                Ok(Ok(())) => {}
                                _ => break,
                            },
                            Ok(false) => {}
                            Err(_) => break,
                        }
                    }
                })?
        };
        Ok(Tui {
            terminal,
            events,
            stop,
            reader: Some(reader),
            live: Live::new(),
        })
    }

    /// The next terminal event; pending forever once the reader is gone.
    pub(crate) async fn event(&mut self) -> Event {
        match self.events.recv().await {
            Some(e) => e,
            None => std::future::pending().await,
        }
    }

    /// Act on a terminal event: keys move the view, a resize redraws.
    pub(crate) fn handle(&mut self, e: Event) -> Action {
        match e {
            Event::Key(k) => self.live.key(k),
            Event::Resize(..) => Action::Redraw,
            _ => Action::Ignore,
        }
    }

    /// A new reading.
    pub(crate) fn push(&mut self, interval: Snapshot, run: Snapshot, rates: &Rates) {
        self.live.push(interval, run, rates);
    }

    /// Redraw; false when the terminal cannot be written any more.
    pub(crate) fn draw(&mut self, ctx: &Context) -> bool {
        let live = &self.live;
        self.terminal.draw(|f| render::draw(f, ctx, live)).is_ok()
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        ratatui::restore();
    }
}
