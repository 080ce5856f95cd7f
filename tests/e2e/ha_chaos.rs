//! Chaos for a group of dispatchers (issue 26): for three minutes
//! (`FABRIC_CHAOS_SECONDS`), every few seconds a random dispatcher or
//! worker is killed -9 and brought back, while tasks flow; then the history
//! is checked: every acknowledged task is there and finished once, with
//! success. The seed is printed and taken from `FABRIC_CHAOS_SEED` to
//! replay a failing run (the same kills at the same moments; the
//! scheduling of the processes is the machine's).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fabric_proto::{TaskSpec, TaskStatus};
use fabric_tests::harness::group::Group;
use fabric_tests::harness::process::Proc;
use fabric_tests::harness::sandbox::{Sandbox, guest};

/// xorshift64*: enough for choosing victims, and replayable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
#[allow(
    clippy::print_stdout,
    reason = "the seed goes to the test's output first, so any failure of the run can be replayed"
)]
fn three_minutes_of_kills_lose_no_acknowledged_task_and_finish_each_once() {
    let seed = std::env::var("FABRIC_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
                | 1
        });
    let seconds = std::env::var("FABRIC_CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180u64);
    // Said first, so a failing run can be replayed.
    println!("chaos seed {seed} (FABRIC_CHAOS_SEED={seed} replays it), {seconds} s");
    let mut rng = Rng(seed);
    let sb = Sandbox::new();
    let mut g = Group::start(&sb, 3);
    let mut workers: Vec<Option<Proc>> =
        vec![Some(g.worker(&sb, "w0", 4)), Some(g.worker(&sb, "w1", 4))];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = Arc::new(rt.block_on(g.client()));
    let module = rt
        .block_on(c.upload_module(&std::fs::read(guest("wordfreq")).unwrap()))
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (c, stop) = (c.clone(), stop.clone());
        rt.spawn(async move {
            let mut acked = Vec::new();
            // Bounded: at most 20,000 batches.
            for batch in 0..20_000u32 {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                let specs: Vec<TaskSpec> = (0..20)
                    .map(|i| TaskSpec {
                        input: format!("chaos {batch} {i}").into_bytes(),
                        ..TaskSpec::wasm(module)
                    })
                    .collect();
                match c.submit_many(specs).await {
                    Ok(ids) => acked.extend(ids.into_iter().map(|q| q.id)),
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            acked
        })
    };
    let started = Instant::now();
    let mut kills = Vec::new();
    while started.elapsed() < Duration::from_secs(seconds) {
        std::thread::sleep(Duration::from_millis(3_000 + rng.below(3_000)));
        // A dispatcher (never a second one while one is down: the group
        // keeps its majority) or a worker.
        let victim = rng.below(5) as usize;
        let down = Duration::from_millis(1_000 + rng.below(3_000));
        if victim < 3 {
            g.kill9(victim);
            kills.push(format!("d{victim}"));
            std::thread::sleep(down);
            g.restart(&sb, victim);
        } else {
            let w = victim - 3;
            if let Some(mut p) = workers[w].take() {
                p.kill9();
            }
            kills.push(format!("w{w}"));
            std::thread::sleep(down);
            workers[w] = Some(g.worker(&sb, &format!("w{w}"), 4));
        }
    }
    stop.store(true, Ordering::Release);
    let acked = rt.block_on(load).unwrap();
    let ctx = format!("seed {seed}, kills {kills:?}");
    assert!(
        acked.len() >= 100,
        "only {} tasks acknowledged ({ctx})",
        acked.len()
    );
    rt.block_on(async {
        for id in &acked {
            let info = tokio::time::timeout(Duration::from_secs(120), c.wait(*id, |_| {}))
                .await
                .unwrap_or_else(|_| panic!("task {id} did not finish ({ctx})"))
                .unwrap_or_else(|e| panic!("wait {id}: {e} ({ctx})"));
            assert_eq!(info.status, Some(TaskStatus::Succeeded), "{info:?} ({ctx})");
        }
        // Finished once: every stored task (acknowledged or not) has one
        // result, a success, and none is left running.
        let counts = c.counts().await.unwrap();
        assert_eq!(
            counts.finished(TaskStatus::Succeeded),
            counts.total,
            "{counts:?} ({ctx})"
        );
        assert!(counts.total as usize >= acked.len(), "{counts:?} ({ctx})");
    });
}
