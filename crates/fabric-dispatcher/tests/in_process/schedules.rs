//! Schedules on the manual clock: runs fire at their planned times with a
//! trace id naming the schedule; an unfinished run makes the next one skip
//! (`--overlap skip`); pause stops runs and resume starts again without
//! catching up; after a (simulated) downtime `--catch-up one` makes one
//! run and `none` makes none; adding is an admin's.

use std::time::Duration;

use fabric_client::Client;
use fabric_net::Identity;
use fabric_proto::{
    CatchUpPolicy, Clock as _, Limits, Overlap, ScheduleAction, ScheduleRecord, ScheduleSpec,
    TaskSpec, TaskStatus,
};

use crate::harness::{Cluster, eventually, fast_heartbeats};

const NOOP: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;
const SPIN: &str =
    r#"(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))"#;

pub(crate) async fn admin(c: &Cluster) -> Client {
    let key = Identity::generate().expect("admin key");
    c.dispatcher
        .add_admin(&key.public(), "admin")
        .await
        .expect("admin trusted");
    Client::connect(&key, c.dispatcher.public_key(), c.dispatcher.local_addr())
        .await
        .expect("admin connects")
}

pub(crate) fn every_2s(name: &str, task: TaskSpec, catch_up: CatchUpPolicy) -> ScheduleSpec {
    ScheduleSpec {
        name: name.into(),
        cron: "*/2 * * * * *".into(),
        tz: "UTC".into(),
        overlap: Overlap::Skip,
        catch_up,
        task: Some(task),
        job: None,
    }
}

/// ms since the epoch of an RFC 3339 time.
fn ms(rfc3339: &str) -> u64 {
    u64::try_from(
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis(),
    )
    .unwrap()
}

fn ran(rec: &ScheduleRecord) -> Vec<fabric_proto::TaskId> {
    rec.runs.iter().filter_map(|r| r.task).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runs_fire_on_time_pause_stops_them_and_resume_does_not_catch_up() {
    let mut c = Cluster::start(fast_heartbeats()).await;
    let w = c.add_worker(2).await;
    let admin = admin(&c).await;
    let module = c.module(NOOP).await;
    let err = c
        .client
        .add_schedule(every_2s("nope", TaskSpec::wasm(module), CatchUpPolicy::One))
        .await
        .expect_err("a plain client may not add one");
    assert!(err.to_string().contains("admin"), "{err}");
    let added = admin
        .add_schedule(every_2s("tick", TaskSpec::wasm(module), CatchUpPolicy::One))
        .await
        .expect("add");
    let first = added.next_ms.expect("a next run");
    assert_eq!(first % 2_000, 0, "on an even second");
    c.advance_keeping(
        Duration::from_millis(6_000),
        Duration::from_millis(100),
        &[w.key],
    )
    .await;
    let rec = admin.schedule("tick").await.expect("show");
    let tasks = ran(&rec);
    assert_eq!(tasks.len(), 3, "{rec:?}");
    for (id, run) in tasks.iter().zip(&rec.runs) {
        let info = c.finished(*id).await;
        assert_eq!(info.status, Some(TaskStatus::Succeeded), "{info:?}");
        let trace = info.trace.unwrap_or_default();
        assert!(trace.starts_with("sched-tick-20"), "{trace}");
        assert!(run.planned_ms >= first, "{run:?}");
    }
    // Paused: nothing for 6 s.
    admin
        .set_schedule("tick", ScheduleAction::Pause)
        .await
        .expect("pause");
    c.advance_keeping(
        Duration::from_millis(6_000),
        Duration::from_millis(100),
        &[w.key],
    )
    .await;
    assert_eq!(ran(&admin.schedule("tick").await.expect("show")).len(), 3);
    // Resumed: from the next planned time, the paused ones not caught up.
    let resumed_at = c.clock.now_ms();
    let resumed = admin
        .set_schedule("tick", ScheduleAction::Resume)
        .await
        .expect("resume");
    assert!(resumed.next_ms.expect("next") > resumed_at);
    c.advance_keeping(
        Duration::from_millis(2_100),
        Duration::from_millis(100),
        &[w.key],
    )
    .await;
    let after = admin.schedule("tick").await.expect("show");
    let new: Vec<_> = after
        .runs
        .iter()
        .filter(|r| r.task.is_some())
        .skip(3)
        .collect();
    assert!(!new.is_empty(), "it runs again: {after:?}");
    assert!(
        new.iter()
            .all(|r| r.planned_ms > resumed_at && r.note.is_none()),
        "nothing of the paused time is run: {after:?}"
    );
    let before_now = ran(&after).len();
    // Run now, and remove.
    let now = admin
        .set_schedule("tick", ScheduleAction::RunNow)
        .await
        .expect("run now");
    assert_eq!(ran(&now).len(), before_now + 1);
    admin
        .set_schedule("tick", ScheduleAction::Remove)
        .await
        .expect("remove");
    assert!(admin.schedules().await.expect("list").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unfinished_run_makes_the_next_skip() {
    let mut c = Cluster::start(fast_heartbeats()).await;
    let w = c.add_worker(4).await;
    let admin = admin(&c).await;
    let spin = c.module(SPIN).await;
    let mut task = TaskSpec::wasm(spin);
    task.limits = Limits {
        fuel: 1_000_000_000_000,
        timeout_ms: 600_000,
        ..Limits::default()
    };
    admin
        .add_schedule(every_2s("long", task, CatchUpPolicy::One))
        .await
        .expect("add");
    c.advance_keeping(
        Duration::from_millis(6_000),
        Duration::from_millis(100),
        &[w.key],
    )
    .await;
    let rec = admin.schedule("long").await.expect("show");
    assert_eq!(ran(&rec).len(), 1, "only the first ran: {rec:?}");
    let skipped = rec
        .runs
        .iter()
        .filter(|r| r.note.as_deref().is_some_and(|n| n.starts_with("skipped")))
        .count();
    assert_eq!(skipped, 2, "{rec:?}");
    for id in ran(&rec) {
        c.client.cancel(id).await.expect("cancel");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_downtime_catch_up_one_runs_once_and_none_not_at_all() {
    let c = Cluster::start(fast_heartbeats()).await;
    let admin = admin(&c).await;
    let module = c.module(NOOP).await;
    admin
        .add_schedule(every_2s("one", TaskSpec::wasm(module), CatchUpPolicy::One))
        .await
        .expect("add");
    admin
        .add_schedule(every_2s(
            "none",
            TaskSpec::wasm(module),
            CatchUpPolicy::None,
        ))
        .await
        .expect("add");
    // The dispatcher "was down": the clock jumps past five planned times,
    // to 0.9 s after the last (later than on time), and no tick saw the
    // times in between.
    let next = admin
        .schedule("one")
        .await
        .expect("show")
        .next_ms
        .expect("next");
    let now = c.clock.now_ms();
    c.clock
        .advance(Duration::from_millis(next - now + 8_000 + 900));
    let client = &admin;
    eventually("both schedules looked at the jump", || async {
        let one = client.schedule("one").await.expect("show");
        let none = client.schedule("none").await.expect("show");
        let moved = |r: &ScheduleRecord| r.next_ms.is_some_and(|n| n > 10_000 + r.created_ms);
        // The next time is taken before the run is submitted: wait for
        // the run too.
        moved(&one) && !ran(&one).is_empty() && moved(&none)
    })
    .await;
    let one = admin.schedule("one").await.expect("show");
    assert_eq!(ran(&one).len(), 1, "one catch-up run: {one:?}");
    assert!(
        one.runs
            .iter()
            .any(|r| r.note.as_deref() == Some("catch-up")),
        "{one:?}"
    );
    let none = admin.schedule("none").await.expect("show");
    assert_eq!(ran(&none).len(), 0, "none: {none:?}");
    assert!(
        none.runs.iter().any(|r| r
            .note
            .as_deref()
            .is_some_and(|n| n.contains("passed while the dispatcher was down"))),
        "{none:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_spring_forward_day_runs_a_skipped_time_once_on_the_dispatchers_clock() {
    let c = Cluster::start(fast_heartbeats()).await;
    let admin = admin(&c).await;
    let module = c.module(NOOP).await;
    admin
        .add_schedule(ScheduleSpec {
            name: "nightly".into(),
            cron: "30 2 * * *".into(),
            tz: "America/New_York".into(),
            overlap: Overlap::Allow,
            catch_up: CatchUpPolicy::One,
            task: Some(TaskSpec::wasm(module)),
            job: None,
        })
        .await
        .expect("add");
    // To 01:59 local on 2027-03-14, the spring-forward day (02:00-03:00
    // does not exist); the nights before are caught up by one run.
    let eve = ms("2027-03-14T01:59:00-05:00");
    c.clock
        .advance(Duration::from_millis(eve - c.clock.now_ms()));
    let snapped = ms("2027-03-14T03:00:00-04:00");
    let client = &admin;
    eventually("the jump is looked at", || async {
        client.schedule("nightly").await.expect("show").next_ms == Some(snapped)
    })
    .await;
    // Through the gap, a second at a time: one run that day, at 03:00 EDT.
    for _ in 0..120 {
        c.clock.advance(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let that_day = |rec: &ScheduleRecord| -> Vec<fabric_proto::ScheduleRun> {
        rec.runs
            .iter()
            .filter(|r| r.task.is_some() && r.planned_ms >= eve)
            .cloned()
            .collect()
    };
    eventually("the 02:30 run of the day ran", || async {
        !that_day(&client.schedule("nightly").await.expect("show")).is_empty()
    })
    .await;
    let rec = admin.schedule("nightly").await.expect("show");
    let runs = that_day(&rec);
    assert_eq!(runs.len(), 1, "{rec:?}");
    assert_eq!(runs[0].planned_ms, snapped, "{rec:?}");
    let next_day = ms("2027-03-15T02:30:00-04:00");
    assert_eq!(rec.next_ms, Some(next_day), "{rec:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlap_queue_makes_a_run_wait_for_the_unfinished_one_and_allow_runs_both() {
    let mut c = Cluster::start(fast_heartbeats()).await;
    let w = c.add_worker(4).await;
    let admin = admin(&c).await;
    let spin = c.module(SPIN).await;
    let mut task = TaskSpec::wasm(spin);
    task.limits = Limits {
        fuel: 1_000_000_000_000,
        timeout_ms: 600_000,
        ..Limits::default()
    };
    for (name, overlap) in [("queued", Overlap::Queue), ("allowed", Overlap::Allow)] {
        admin
            .add_schedule(ScheduleSpec {
                overlap,
                ..every_2s(name, task.clone(), CatchUpPolicy::One)
            })
            .await
            .expect("add");
    }
    c.advance_keeping(
        Duration::from_millis(4_100),
        Duration::from_millis(100),
        &[w.key],
    )
    .await;
    // Two or three planned times passed (it depends on where in a second
    // the schedules were added): every run after the first waits.
    let queued = admin.schedule("queued").await.expect("show");
    let ids = ran(&queued);
    assert!((2..=3).contains(&ids.len()), "{queued:?}");
    for id in &ids[1..] {
        let later = c.client.status(*id).await.expect("status");
        assert_eq!(later.state, fabric_proto::TaskState::Waiting, "{later:?}");
    }
    let allowed = admin.schedule("allowed").await.expect("show");
    let both = ran(&allowed);
    assert_eq!(both.len(), ids.len(), "{allowed:?}");
    for id in &both {
        eventually("both run at once", || async {
            c.client.status(*id).await.expect("status").state == fabric_proto::TaskState::Running
        })
        .await;
    }
    for id in ids.iter().chain(&both) {
        let _ = c.client.cancel(*id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_autumn_repeat_runs_once_on_the_dispatchers_clock() {
    let c = Cluster::start(fast_heartbeats()).await;
    let admin = admin(&c).await;
    let module = c.module(NOOP).await;
    admin
        .add_schedule(ScheduleSpec {
            name: "late".into(),
            cron: "30 1 * * *".into(),
            tz: "America/New_York".into(),
            overlap: Overlap::Allow,
            catch_up: CatchUpPolicy::One,
            task: Some(TaskSpec::wasm(module)),
            job: None,
        })
        .await
        .expect("add");
    // To 01:29 EDT on 2027-11-07, the fall-back day (01:00-02:00 comes
    // twice); the nights before are caught up by one run.
    let eve = ms("2027-11-07T01:29:00-04:00");
    c.clock
        .advance(Duration::from_millis(eve - c.clock.now_ms()));
    let client = &admin;
    let first = ms("2027-11-07T01:30:00-04:00");
    eventually("the jump is looked at", || async {
        client.schedule("late").await.expect("show").next_ms == Some(first)
    })
    .await;
    // Through both 01:30s (EDT, then EST an hour later), a second at a
    // time... in 10 s steps (the first 01:30 is then caught up as late).
    for _ in 0..(70 * 6) {
        c.clock.advance(Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    let rec = admin.schedule("late").await.expect("show");
    let that_day: Vec<_> = rec
        .runs
        .iter()
        .filter(|r| r.task.is_some() && r.planned_ms >= eve)
        .collect();
    assert_eq!(that_day.len(), 1, "once: {rec:?}");
    assert_eq!(
        that_day[0].planned_ms, first,
        "at its first occurrence: {rec:?}"
    );
    assert_eq!(
        rec.next_ms,
        Some(ms("2027-11-08T01:30:00-05:00")),
        "{rec:?}"
    );
}
