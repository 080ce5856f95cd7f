//! Schedules in a group of three: a schedule added, or paused and resumed,
//! through the leader fires on time. The leader notes when the next
//! schedule is due so that its ticks read nothing before then; in a group
//! that note must be taken after the write is applied, or it reads the
//! store as it was before the write (no schedule, or a paused one) and the
//! schedule does not fire until the next take-over.

use std::time::{Duration, Instant};

use fabric_client::Client;
use fabric_proto::{Overlap, ScheduleAction, ScheduleSpec, TaskSpec};
use fabric_tests::harness::group::Group;
use fabric_tests::harness::sandbox::{Sandbox, guest};

/// Runs started by the schedule `name` whose time is `after` or later
/// (ms since the epoch), waited for up to 30 s until there is one.
async fn fired_since(c: &Client, name: &str, after: u64, what: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rec = c.schedule(name).await.expect("show the schedule");
        let fired = rec
            .runs
            .iter()
            .filter(|r| r.planned_ms >= after && r.task.is_some())
            .count();
        if fired > 0 {
            return fired;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: no run in 30 s of a schedule that runs every second: {rec:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn a_schedule_added_or_resumed_in_a_group_fires() {
    let sb = Sandbox::new();
    let g = Group::start(&sb, 3);
    let _w = g.worker(&sb, "w1", 2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = g.client().await;
        fabric_tests::harness::cluster::wait_workers(&c, 1, Duration::from_secs(30)).await;
        let module = c
            .upload_module(&std::fs::read(guest("wordfreq")).unwrap())
            .await
            .unwrap();
        // The leader's ticks have seen no schedule yet, so nothing is due.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let added = fabric_proto::now_ms();
        c.add_schedule(ScheduleSpec {
            name: "each-second".into(),
            cron: "* * * * * *".into(),
            tz: "UTC".into(),
            overlap: Overlap::Allow,
            catch_up: Default::default(),
            task: Some(TaskSpec {
                input: b"fox fox".to_vec(),
                ..TaskSpec::wasm(module)
            }),
            job: None,
        })
        .await
        .expect("add the schedule");
        fired_since(&c, "each-second", added, "added").await;

        c.set_schedule("each-second", ScheduleAction::Pause)
            .await
            .expect("pause");
        // A tick sees it paused: nothing is due.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let resumed = fabric_proto::now_ms();
        c.set_schedule("each-second", ScheduleAction::Resume)
            .await
            .expect("resume");
        fired_since(&c, "each-second", resumed, "resumed").await;
    });
}
