//! A task that was running when the leader of a group of dispatchers died
//! keeps running (issue 26): the new leader adopts the run its worker
//! reports, and its result is recorded once, as the attempt it was.

use std::time::{Duration, Instant};

use fabric_proto::{TaskKind, TaskSpec, TaskState, TaskStatus};
use fabric_tests::harness::group::Group;
use fabric_tests::harness::sandbox::Sandbox;

#[test]
fn a_task_running_when_the_leader_dies_keeps_running_and_is_recorded_once() {
    let sb = Sandbox::new();
    let mut g = Group::start(&sb, 3);
    let _w = g.worker_with(&sb, "w1", 2, 0, &["--allow", "sleep"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = g.client().await;
        fabric_tests::harness::cluster::wait_workers(&c, 1, Duration::from_secs(30)).await;
        let spec = TaskSpec {
            args: vec!["6".into()],
            ..TaskSpec::new(TaskKind::command("sleep"))
        };
        let id = c.submit(spec).await.unwrap();
        // Until it runs.
        let deadline = Instant::now() + Duration::from_secs(30);
        let running = loop {
            let info = c.status(id).await.unwrap();
            if info.state == TaskState::Running {
                break info;
            }
            assert!(Instant::now() < deadline, "never ran: {info:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let leader = g.leader(Duration::from_secs(10)).await;
        g.kill9(leader);
        let info = tokio::time::timeout(Duration::from_secs(60), c.wait(id, |_| {}))
            .await
            .expect("the task finished")
            .expect("wait");
        assert_eq!(info.status, Some(TaskStatus::Succeeded), "{info:?}");
        assert_eq!(
            info.attempt, running.attempt,
            "the run that was going when the leader died is the one recorded: {info:?}"
        );
        assert_eq!(info.history.len(), 1, "one attempt ran: {info:?}");
        let counts = c.counts().await.unwrap();
        assert_eq!(
            (counts.total, counts.finished(TaskStatus::Succeeded)),
            (1, 1),
            "{counts:?}"
        );
    });
}
