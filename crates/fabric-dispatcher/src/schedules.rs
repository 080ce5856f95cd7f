//! Schedules' time, pure: a cron expression (5 fields, or 6 with seconds;
//! parsed by croner) in an IANA zone, the planned times it gives, and what
//! a schedule does when the dispatcher looks at it — run now, catch up on
//! runs missed while it was down (`one`) or not (`none`). The service
//! fires the runs this decides; overlap with an unfinished run is its to
//! judge, as it knows what is live.
//!
//! Daylight-saving changes are croner's: a local time skipped by a spring
//! forward runs once, at the first valid time after the gap (02:30 on a
//! spring-forward day runs at 03:00); a local time that occurs twice in an
//! autumn fall back runs once, at its first occurrence.

use std::str::FromStr as _;

use chrono::{DateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Year};

/// The shortest interval between two planned runs: 1 s (a 6-field
/// expression's finest).
pub const MIN_INTERVAL_MS: u64 = 1_000;

/// Most missed planned times counted after a downtime (a second-by-second
/// schedule down for a day would be 86,400): past it, the count is capped.
pub const MAX_MISSED_COUNTED: u32 = 10_000;

/// The least grace: a planned time no older than this (or two tick
/// periods, when more) is run as on time, whatever the catch-up policy.
pub const ON_TIME_GRACE_MS: u64 = 500;

/// The cron fields, in order, for errors in the user's terms.
const FIELDS_5: [&str; 5] = ["minute", "hour", "day-of-month", "month", "day-of-week"];
const FIELDS_6: [&str; 6] = [
    "second",
    "minute",
    "hour",
    "day-of-month",
    "month",
    "day-of-week",
];

/// A schedule's expression in its zone.
#[derive(Clone, Debug)]
pub struct Plan {
    cron: Cron,
    tz: Tz,
}

fn parser() -> CronParser {
    CronParser::builder().year(Year::Disallowed).build()
}

impl Plan {
    /// Parses `expr` (5 fields, or 6 with seconds first) for zone `tz` (an
    /// IANA name such as `Europe/Berlin`; `UTC`). An error names the bad
    /// field, or the zone.
    pub fn parse(expr: &str, tz: &str) -> Result<Self, String> {
        let tz = Tz::from_str(tz).map_err(|_| {
            format!("--tz {tz:?} is not an IANA time zone (e.g. UTC, Europe/Berlin)")
        })?;
        let fields: Vec<&str> = expr.split_whitespace().collect();
        let names: &[&str] = match fields.len() {
            5 => &FIELDS_5,
            6 => &FIELDS_6,
            n => {
                return Err(format!(
                    "--cron {expr:?} has {n} fields; give 5 (minute hour day-of-month month day-of-week) or 6 (with seconds first)"
                ));
            }
        };
        match parser().parse(expr) {
            Ok(cron) => Ok(Self { cron, tz }),
            Err(e) => {
                // The field whose replacement by `*` makes it parse is the
                // bad one.
                let bad = (0..fields.len()).find(|&i| {
                    let mut f = fields.clone();
                    f[i] = "*";
                    parser().parse(&f.join(" ")).is_ok()
                });
                Err(match bad {
                    Some(i) => format!(
                        "--cron {expr:?}: the {} field {:?} is not valid ({e})",
                        names[i], fields[i]
                    ),
                    None => format!("--cron {expr:?} is not valid ({e})"),
                })
            }
        }
    }

    /// The first planned time strictly after `ms` (ms since the epoch);
    /// planned times fall on whole seconds.
    pub fn next_after(&self, ms: u64) -> Option<u64> {
        let whole = ms / 1000 * 1000;
        let mut at: DateTime<Tz> = Utc
            .timestamp_millis_opt(i64::try_from(whole).ok()?)
            .single()?
            .with_timezone(&self.tz);
        // Inside the second copy of an hour a fall-back repeats, croner
        // answers from the local clock and may give the first copy's time,
        // an hour before `ms`: step on until the answer is after it.
        for _ in 0..64 {
            let next = self.cron.find_next_occurrence(&at, false).ok()?;
            let t = u64::try_from(next.timestamp_millis()).ok()?;
            if t > ms {
                return Some(t);
            }
            at = next + chrono::Duration::seconds(1);
        }
        None
    }
}

/// How a schedule treats runs missed while the dispatcher was down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatchUp {
    /// Skip them.
    None,
    /// One run for any number of them.
    One,
}

/// What a schedule does at `now`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    /// The planned time to run now, if any.
    pub run: Option<u64>,
    /// Planned times that passed without a run (capped at
    /// [`MAX_MISSED_COUNTED`]).
    pub missed: u32,
    /// The next planned time after `now`.
    pub next: Option<u64>,
}

/// What a schedule whose next planned time is `next` does at `now`: the
/// planned times from `next` up to `now` are due; the latest is run when
/// it is on time (within `grace` ms) or, with [`CatchUp::One`], when it is
/// late; the others are missed.
pub fn due(plan: &Plan, next: u64, now: u64, catch_up: CatchUp, grace: u64) -> Due {
    if next > now {
        return Due {
            run: None,
            missed: 0,
            next: Some(next),
        };
    }
    let (mut latest, mut count) = (next, 1u32);
    while count < MAX_MISSED_COUNTED {
        match plan.next_after(latest) {
            Some(t) if t <= now => {
                latest = t;
                count += 1;
            }
            _ => break,
        }
    }
    let on_time = now.saturating_sub(latest) <= grace;
    let run = (on_time || catch_up == CatchUp::One).then_some(latest);
    Due {
        missed: count - u32::from(run.is_some()),
        run,
        next: plan.next_after(now),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod model;
