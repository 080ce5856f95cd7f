//! `fabric top`: a terminal dashboard of the cluster — workers, tasks, the
//! live event log and jobs — over the REST API named in the cluster profile.
//!
//! Two threads read the dispatcher: one polls `/stats`, `/workers`,
//! `/tasks` and `/jobs` (every second, and soon after each event), one follows the
//! cluster's event stream (reconnecting with a backoff). The main thread
//! draws and reads keys; the terminal is restored on every way out (q,
//! Esc, Ctrl-C, SIGTERM, SIGHUP, an error, a panic).

mod app;
mod feed;
mod view;

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context as _;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};

use app::{App, Key};

use crate::profile;

/// Reads the keys of one press.
fn key_of(code: KeyCode, mods: KeyModifiers) -> Option<Key> {
    Some(match code {
        KeyCode::Char('c') if mods.contains(KeyModifiers::CONTROL) => Key::Quit,
        KeyCode::Char('q') | KeyCode::Esc => Key::Quit,
        KeyCode::Tab | KeyCode::Right => Key::NextTab,
        KeyCode::BackTab | KeyCode::Left => Key::PrevTab,
        KeyCode::Char(c @ '1'..='4') => Key::Tab(c as usize - '1' as usize),
        KeyCode::Down | KeyCode::Char('j') => Key::Down,
        KeyCode::Up | KeyCode::Char('k') => Key::Up,
        KeyCode::Home | KeyCode::Char('g') => Key::Top,
        KeyCode::End | KeyCode::Char('G') => Key::Bottom,
        _ => return None,
    })
}

pub(crate) fn execute(cluster: Option<&Path>) -> anyhow::Result<i32> {
    let (profile, path) = profile::load(cluster)?;
    let (Some(url), Some(token)) = (profile.api_url, profile.api_token) else {
        return Err(crate::usage(format!(
            "cluster profile {} names no REST API (api_url, api_token): `fabric top` reads the dispatcher over REST; start it without --no-api",
            path.display()
        )));
    };
    if !std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        return Err(crate::usage(
            "`fabric top` draws on a terminal; stdout is not one (for scripts: fabric tasks --json, fabric workers --json)",
        ));
    }
    let (tx, rx) = mpsc::sync_channel(1024);
    feed::start(&url, &token, tx);
    // SIGTERM, SIGHUP (the terminal went away) and SIGINT from elsewhere
    // end it the way q does, so the terminal is restored.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGINT,
    ] {
        signal_hook::flag::register(sig, stop.clone()).context("handling signals")?;
    }
    let mut terminal = ratatui::try_init()
        .inspect_err(|_| ratatui::restore())
        .context("setting up the terminal")?;
    let result = run(&mut terminal, &url, &rx, &stop);
    ratatui::restore();
    result.map(|()| 0)
}

fn run(
    terminal: &mut ratatui::DefaultTerminal,
    url: &str,
    rx: &mpsc::Receiver<app::Update>,
    stop: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<()> {
    let mut app = App::new(url);
    while !app.quit && !stop.load(std::sync::atomic::Ordering::Relaxed) {
        while let Ok(update) = rx.try_recv() {
            app.apply(update);
        }
        terminal.draw(|f| view::draw(f, &app)).context("drawing")?;
        if event::poll(Duration::from_millis(200)).context("reading keys")?
            && let Event::Key(k) = event::read().context("reading keys")?
            && k.kind == KeyEventKind::Press
            && let Some(key) = key_of(k.code, k.modifiers)
        {
            app.key(key);
        }
    }
    Ok(())
}
