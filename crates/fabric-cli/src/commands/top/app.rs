//! What `fabric top` shows and how keys move through it: plain state,
//! fed by the HTTP threads, drawn by `view`, tested without a terminal.

use std::collections::VecDeque;

use serde_json::Value;

/// Feed lines kept for the log view.
pub(crate) const LOG_LINES: usize = 500;

/// The four views.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tab {
    Workers,
    Tasks,
    Log,
    Jobs,
}

impl Tab {
    pub(crate) const ALL: [Self; 4] = [Self::Workers, Self::Tasks, Self::Log, Self::Jobs];

    pub(crate) fn title(self) -> &'static str {
        match self {
            Self::Workers => "1 Workers",
            Self::Tasks => "2 Tasks",
            Self::Log => "3 Log",
            Self::Jobs => "4 Jobs",
        }
    }
}

/// What arrives from the dispatcher.
#[derive(Debug)]
pub(crate) enum Update {
    /// `/api/v1/stats`, `/workers`, `/tasks` and `/jobs` as read.
    Snapshot {
        stats: Value,
        workers: Vec<Value>,
        tasks: Vec<Value>,
        jobs: Vec<Value>,
    },
    /// One event of the cluster feed: its kind and data.
    Event(String, Value),
    /// The dispatcher could not be read (shown until the next snapshot).
    Error(String),
    /// The event stream is open (again).
    Connected,
    /// The event stream could not be opened (shown until it is).
    StreamError(String),
}

/// Everything on screen.
#[derive(Debug)]
pub(crate) struct App {
    pub tab: Tab,
    pub selected: usize,
    pub stats: Value,
    pub workers: Vec<Value>,
    pub tasks: Vec<Value>,
    pub jobs: Vec<Value>,
    pub log: VecDeque<String>,
    pub error: Option<String>,
    pub stream_error: Option<String>,
    /// The log view follows its newest line (until the user moves up).
    pub follow: bool,
    pub url: String,
    pub quit: bool,
}

impl App {
    pub(crate) fn new(url: &str) -> Self {
        Self {
            tab: Tab::Workers,
            selected: 0,
            stats: Value::Null,
            workers: Vec::new(),
            tasks: Vec::new(),
            jobs: Vec::new(),
            log: VecDeque::new(),
            error: None,
            stream_error: None,
            follow: true,
            url: url.to_owned(),
            quit: false,
        }
    }

    /// Takes in what the threads read.
    pub(crate) fn apply(&mut self, update: Update) {
        match update {
            Update::Snapshot {
                stats,
                workers,
                tasks,
                jobs,
            } => {
                self.stats = stats;
                self.workers = workers;
                self.tasks = tasks;
                self.jobs = jobs;
                self.error = None;
                self.selected = self.selected.min(self.rows().saturating_sub(1));
            }
            Update::Event(kind, data) => {
                let task = data["task"]
                    .as_str()
                    .map_or(String::new(), |t| format!(" {t}"));
                let status = data["status"]
                    .as_str()
                    .map_or(String::new(), |s| format!(" {s}"));
                let detail = data["detail"]
                    .as_str()
                    .or_else(|| data["message"].as_str())
                    .map(str::to_owned)
                    .or_else(|| {
                        data["missed"]
                            .as_u64()
                            .map(|n| format!("{n} events missed"))
                    })
                    .unwrap_or_default();
                let at = data["at_ms"].as_u64().map_or_else(String::new, clock);
                self.push_log(format!("{at} {kind}{task}{status} {detail}"));
            }
            Update::Error(e) => self.error = Some(e),
            Update::Connected => {
                self.stream_error = None;
                self.push_log("-- following the cluster's events".to_owned());
            }
            Update::StreamError(e) => self.stream_error = Some(e),
        }
    }

    fn push_log(&mut self, line: String) {
        self.log.push_back(line);
        while self.log.len() > LOG_LINES {
            self.log.pop_front();
        }
        if self.follow && self.tab == Tab::Log {
            self.selected = self.log.len().saturating_sub(1);
        }
    }

    /// Rows of the current view.
    pub(crate) fn rows(&self) -> usize {
        match self.tab {
            Tab::Workers => self.workers.len(),
            Tab::Tasks => self.tasks.len(),
            Tab::Log => self.log.len(),
            Tab::Jobs => self.jobs.len(),
        }
    }

    /// Acts on a key: tabs (Tab, 1-4, arrows left/right), selection (up,
    /// down, j, k, Home, End), quit (q, Esc, Ctrl-C).
    pub(crate) fn key(&mut self, key: Key) {
        match key {
            Key::Quit => self.quit = true,
            Key::NextTab => self.set_tab((self.tab_index() + 1) % Tab::ALL.len()),
            Key::PrevTab => self.set_tab((self.tab_index() + Tab::ALL.len() - 1) % Tab::ALL.len()),
            Key::Tab(i) => self.set_tab(i),
            Key::Down => self.selected = (self.selected + 1).min(self.rows().saturating_sub(1)),
            Key::Up => self.selected = self.selected.saturating_sub(1),
            Key::Top => self.selected = 0,
            Key::Bottom => self.selected = self.rows().saturating_sub(1),
        }
        // The log follows its tail while the newest line is selected.
        if self.tab == Tab::Log && !matches!(key, Key::Quit) {
            self.follow = self.selected + 1 >= self.log.len();
        }
    }

    fn tab_index(&self) -> usize {
        Tab::ALL.iter().position(|t| *t == self.tab).unwrap_or(0)
    }

    fn set_tab(&mut self, i: usize) {
        if let Some(t) = Tab::ALL.get(i) {
            self.tab = *t;
            self.selected = if *t == Tab::Log && self.follow {
                self.log.len().saturating_sub(1)
            } else {
                0
            };
        }
    }
}

/// A key, as `fabric top` understands it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Key {
    Quit,
    NextTab,
    PrevTab,
    Tab(usize),
    Up,
    Down,
    Top,
    Bottom,
}

/// `HH:MM:SS` (UTC) of a time in ms since the epoch.
pub(crate) fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{App, Key, LOG_LINES, Tab, Update};

    #[test]
    fn keys_move_between_tabs_and_rows_and_quit() {
        let mut app = App::new("http://x");
        app.apply(Update::Snapshot {
            stats: json!({}),
            workers: vec![json!({"name": "a"}), json!({"name": "b"})],
            tasks: vec![json!({"id": "t"})],
            jobs: Vec::new(),
        });
        app.key(Key::Down);
        app.key(Key::Down);
        assert_eq!(app.selected, 1, "stops at the last row");
        app.key(Key::NextTab);
        assert_eq!((app.tab, app.selected), (Tab::Tasks, 0));
        app.key(Key::PrevTab);
        app.key(Key::PrevTab);
        assert_eq!(app.tab, Tab::Jobs);
        app.key(Key::PrevTab);
        assert_eq!(app.tab, Tab::Log);
        app.key(Key::Tab(0));
        assert_eq!(app.tab, Tab::Workers);
        // The log follows its newest line until the user moves up.
        app.key(Key::Tab(2));
        for i in 0..5 {
            app.apply(Update::Event(
                "submitted".into(),
                json!({"task": format!("t{i}")}),
            ));
        }
        assert_eq!(app.selected, 4);
        app.key(Key::Up);
        app.apply(Update::Event("submitted".into(), json!({"task": "t5"})));
        assert_eq!(app.selected, 3, "not following once moved up");
        app.key(Key::Bottom);
        app.apply(Update::Event("submitted".into(), json!({"task": "t6"})));
        assert_eq!(app.selected, 6, "following again at the bottom");
        assert!(!app.quit);
        app.key(Key::Quit);
        assert!(app.quit);
    }

    #[test]
    fn the_log_keeps_the_newest_lines() {
        let mut app = App::new("http://x");
        for i in 0..LOG_LINES + 10 {
            app.apply(Update::Event(
                "submitted".into(),
                json!({"task": format!("t{i}")}),
            ));
        }
        assert_eq!(app.log.len(), LOG_LINES);
        assert!(
            app.log
                .back()
                .unwrap()
                .contains(&format!("t{}", LOG_LINES + 9))
        );
    }
}
