//! A task's guest events on their way to the host's sink: progress
//! coalesced to its latest value at a bounded rate, and every log call
//! charged against the task's budget of lines and bytes (an empty message
//! costs a line like any other), so a guest calling the host in a loop
//! cannot flood whoever listens.

use std::time::{Duration, Instant};

use fabric_proto::{GuestEvent, LogLevel};

/// The per-task event budget.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EventBudget {
    /// Log calls kept per task.
    pub(crate) log_lines: usize,
    /// Log message bytes kept per task.
    pub(crate) log_bytes: usize,
    /// Least time between two progress events passed on.
    pub(crate) progress_interval: Duration,
}

/// One task's events: the sink, what is left of the budget, and the latest
/// progress not yet passed on.
pub(crate) struct GuestEvents {
    sink: Box<dyn FnMut(GuestEvent) + Send>,
    budget: EventBudget,
    lines_left: usize,
    bytes_left: usize,
    log_cut: bool,
    last_progress: Option<Instant>,
    pending_progress: Option<(u64, u64)>,
}

impl GuestEvents {
    pub(crate) fn new(budget: EventBudget, sink: Box<dyn FnMut(GuestEvent) + Send>) -> Self {
        Self {
            sink,
            budget,
            lines_left: budget.log_lines,
            bytes_left: budget.log_bytes,
            log_cut: false,
            last_progress: None,
            pending_progress: None,
        }
    }

    /// The guest reported progress at `now`: passed on at once when the
    /// last one went out at least an interval ago, else kept as the latest
    /// value (sent by a later call or by [`GuestEvents::flush`]).
    pub(crate) fn progress(&mut self, done: u64, total: u64, now: Instant) {
        let due = self
            .last_progress
            .is_none_or(|at| now.saturating_duration_since(at) >= self.budget.progress_interval);
        if due {
            self.pending_progress = None;
            self.last_progress = Some(now);
            (self.sink)(GuestEvent::Progress { done, total });
        } else {
            self.pending_progress = Some((done, total));
        }
    }

    /// A log call: charged one line and `message.len()` bytes; passed on
    /// while the budget lasts. The first refusal sends one warning so the
    /// cut is visible; after that, log calls cost the host nothing.
    pub(crate) fn log(&mut self, level: LogLevel, message: String) {
        if self.lines_left > 0 && message.len() <= self.bytes_left {
            self.lines_left -= 1;
            self.bytes_left -= message.len();
            (self.sink)(GuestEvent::Log { level, message });
            return;
        }
        self.lines_left = 0;
        if !self.log_cut {
            self.log_cut = true;
            (self.sink)(GuestEvent::Log {
                level: LogLevel::Warn,
                message: format!(
                    "log budget exhausted ({} lines or {} bytes per task): further guest log lines dropped",
                    self.budget.log_lines, self.budget.log_bytes
                ),
            });
        }
    }

    /// Whether the log budget is spent and the cut announced (the host
    /// then skips reading the message out of guest memory).
    pub(crate) fn log_spent(&self) -> bool {
        self.log_cut
    }

    /// Passes on the latest progress not yet sent (at the end of a run).
    pub(crate) fn flush(&mut self) {
        if let Some((done, total)) = self.pending_progress.take() {
            (self.sink)(GuestEvent::Progress { done, total });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn events(budget: EventBudget) -> (GuestEvents, Arc<Mutex<Vec<GuestEvent>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let ev = GuestEvents::new(budget, Box::new(move |e| sink.lock().unwrap().push(e)));
        (ev, seen)
    }

    fn budget() -> EventBudget {
        EventBudget {
            log_lines: 3,
            log_bytes: 1 << 20,
            progress_interval: Duration::from_millis(100),
        }
    }

    #[test]
    fn empty_log_lines_are_charged_against_the_line_budget() {
        let (mut ev, seen) = events(budget());
        for _ in 0..100_000 {
            ev.log(LogLevel::Info, String::new());
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 4, "three lines and one warning: {seen:?}");
        assert!(matches!(
            &seen[3],
            GuestEvent::Log { level: LogLevel::Warn, message } if message.contains("3 lines")
        ));
        assert!(ev.log_spent());
    }

    #[test]
    fn the_byte_budget_cuts_too_and_stays_cut() {
        let (mut ev, seen) = events(EventBudget {
            log_lines: 100,
            log_bytes: 5,
            ..budget()
        });
        ev.log(LogLevel::Info, "abc".into());
        ev.log(LogLevel::Info, "defg".into());
        // Even a line that would fit is dropped once the cut happened.
        ev.log(LogLevel::Info, "h".into());
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[test]
    fn progress_is_coalesced_to_the_latest_value_at_a_bounded_rate() {
        let (mut ev, seen) = events(budget());
        let t0 = Instant::now();
        // 10,000 updates over 250 ms of guest time.
        for i in 0..10_000u64 {
            ev.progress(i, 10_000, t0 + Duration::from_micros(i * 25));
        }
        ev.flush();
        let seen = seen.lock().unwrap();
        let done: Vec<u64> = seen
            .iter()
            .map(|e| match e {
                GuestEvent::Progress { done, .. } => *done,
                other => panic!("{other:?}"),
            })
            .collect();
        // At 0, 100 and 200 ms, then the latest value at the end.
        assert_eq!(done, vec![0, 4_000, 8_000, 9_999]);
    }

    #[test]
    fn flush_sends_nothing_when_nothing_is_pending() {
        let (mut ev, seen) = events(budget());
        ev.progress(1, 2, Instant::now());
        ev.flush();
        assert_eq!(seen.lock().unwrap().len(), 1);
    }
}
