//! Three dispatchers on Raft (issue 26): the leader killed under load is
//! replaced, every task acknowledged before the kill (and after) runs to
//! success and is recorded once, the clients and workers follow the new
//! leader by themselves, and the killed dispatcher comes back and catches
//! up.

use std::time::{Duration, Instant};

use fabric_proto::{TaskSpec, TaskStatus};
use fabric_tests::harness::group::Group;
use fabric_tests::harness::sandbox::{Sandbox, guest};

/// Tasks the load submits, in batches of this many.
const LOAD: usize = 2_000;
const BATCH: usize = 100;
/// The batch before which the leader is killed.
const KILL_AT: usize = 6;
/// The bound: a new leader serves within 5 s of the kill.
const FAILOVER_BOUND: Duration = Duration::from_secs(5);

#[test]
fn the_leader_killed_under_load_is_replaced_and_every_acknowledged_task_runs_once() {
    let sb = Sandbox::new();
    let mut g = Group::start(&sb, 3);
    let _w1 = g.worker(&sb, "w1", 4);
    let _w2 = g.worker(&sb, "w2", 4);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = g.client().await;
        fabric_tests::harness::cluster::wait_workers(&c, 2, Duration::from_secs(30)).await;
        let module = c
            .upload_module(&std::fs::read(guest("wordfreq")).unwrap())
            .await
            .unwrap();
        let mut acked = Vec::new();
        let mut killed = None;
        let mut failover = None;
        let started = Instant::now();
        for batch in 0..LOAD / BATCH {
            if batch == KILL_AT {
                let l = g.leader(Duration::from_secs(10)).await;
                g.kill9(l);
                killed = Some((l, Instant::now()));
            }
            let specs: Vec<TaskSpec> = (0..BATCH)
                .map(|i| TaskSpec {
                    input: format!("task {batch} {i} fox fox").into_bytes(),
                    ..TaskSpec::wasm(module)
                })
                .collect();
            loop {
                match c.submit_many(specs.clone()).await {
                    Ok(ids) => {
                        acked.extend(ids.into_iter().map(|q| q.id));
                        if let Some((_, at)) = killed
                            && failover.is_none()
                        {
                            failover = Some(at.elapsed());
                        }
                        break;
                    }
                    // Not acknowledged (the leader died with it, or no
                    // leader yet): not counted, sent again.
                    Err(e) => {
                        assert!(
                            started.elapsed() < Duration::from_secs(120),
                            "submits fail for good: {e}"
                        );
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                }
            }
        }
        let failover = failover.expect("the leader was killed");
        assert!(
            failover < FAILOVER_BOUND,
            "the first submit after the kill was acknowledged after {failover:?}"
        );
        assert_eq!(acked.len(), LOAD);
        // Every acknowledged task succeeds, once: its one recorded result.
        for id in &acked {
            let info = c.wait(*id, |_| {}).await.expect("wait");
            assert_eq!(info.status, Some(TaskStatus::Succeeded), "{info:?}");
        }
        // Every task stored (a submit the dead leader had committed but
        // not acknowledged among them) has one result, a success.
        let counts = c.counts().await.unwrap();
        let succeeded = counts.finished(TaskStatus::Succeeded);
        assert!(succeeded as usize >= LOAD, "{counts:?}");
        assert_eq!(succeeded, counts.total, "{counts:?}");
        // The killed dispatcher comes back and catches up (its log reaches
        // the leader's).
        let (l, _) = killed.unwrap();
        g.restart(&sb, l);
        let leader = g.leader(Duration::from_secs(10)).await;
        let lc = g.client_of(leader).await;
        let target = lc
            .members()
            .await
            .unwrap()
            .iter()
            .find(|m| m.this)
            .and_then(|m| m.applied)
            .expect("the leader's position");
        let back = g.client_of(l).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let me = back.members().await.unwrap();
            let applied = me.iter().find(|m| m.this).and_then(|m| m.applied);
            if applied >= Some(target) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the restarted dispatcher is at {applied:?}, the leader was at {target}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}
