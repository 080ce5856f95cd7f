//! Three dispatchers on Raft (issue 26): the leader killed under load is
//! replaced, every task acknowledged before the kill (and after) runs to
//! success and is recorded once, the clients and workers follow the new
//! leader by themselves, and the killed dispatcher comes back and catches
//! up.

use std::time::{Duration, Instant};

use fabric_proto::{TaskSpec, TaskStatus};
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::group::Group;
use fabric_tests::harness::sandbox::{Sandbox, describe, guest, json_of};

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
        // REST on a follower sends the client to the leader's API (307,
        // the same path); /health says who is who.
        let leader = g.leader(Duration::from_secs(10)).await;
        let (l, _) = killed.unwrap();
        let follower = (0..3).find(|i| *i != leader && *i != l).unwrap();
        let agent = ureq::AgentBuilder::new().redirects(0).build();
        let r = agent
            .get(&format!("http://{}/api/v1/stats", g.members[follower].api))
            .call();
        let r = match r {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("GET a follower's API: {e}"),
        };
        assert_eq!(r.status(), 307);
        assert_eq!(
            r.header("location"),
            Some(format!("http://{}/api/v1/stats", g.members[leader].api).as_str())
        );
        let health: serde_json::Value =
            ureq::get(&format!("http://{}/health", g.members[follower].api))
                .call()
                .unwrap()
                .into_json()
                .unwrap();
        assert_eq!(health["group"]["role"], "follower", "{health}");
        // The killed dispatcher comes back and catches up (its log reaches
        // the leader's).
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

/// Runs `iptables ARGS` inside the namespace.
fn iptables(ns: &str, args: &[&str]) {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", ns, "iptables"])
        .args(args)
        .output()
        .expect("ip netns exec iptables (.ci/run installs iptables)");
    assert!(
        out.status.success(),
        "iptables {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_leader_cut_off_from_the_others_acknowledges_nothing_and_the_majority_goes_on() {
    let sb = Sandbox::new();
    let ns = fabric_tests::harness::cluster::Netns::new("ha-cut");
    let g = Group::start_in(&sb, 3, Some(&ns.name));
    // The worker's own dispatcher is the leader about to be cut off: it
    // must find the majority by itself (the cut-off one names nobody).
    let l = g.leader_by_cli(&sb, Duration::from_secs(10));
    let _w = g.worker_via(&sb, "w1", 2, l);
    let wasm = guest("wordfreq");
    let wasm = wasm.to_str().unwrap();
    let input = sb.write("input.txt", b"a b a");
    let input = input.to_str().unwrap();
    let submit = |i: usize| {
        g.cli(
            &sb,
            i,
            &["submit", wasm, "--input", input, "--wait", "--json"],
        )
    };
    let before = submit(0);
    assert!(before.status.success(), "{}", describe(&before));

    assert_eq!(
        g.leader_by_cli(&sb, Duration::from_secs(10)),
        l,
        "the leader moved"
    );
    let port = |i: usize| g.members[i].addr.rsplit_once(':').unwrap().1.to_owned();
    for o in (0..3).filter(|o| *o != l) {
        for (from, to) in [(port(l), port(o)), (port(o), port(l))] {
            iptables(
                &ns.name,
                &[
                    "-A", "INPUT", "-p", "udp", "--sport", &from, "--dport", &to, "-j", "DROP",
                ],
            );
        }
    }
    // The old leader alone, asked directly (a profile naming only it):
    // nothing is acknowledged.
    let alone = sb.dir.path().join("alone.cluster.toml");
    let text = std::fs::read_to_string(&g.members[l].profile).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("peers"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&alone, text).unwrap();
    let minority = fabric_tests::harness::cluster::fabric_cmd(&sb, Some(&ns.name))
        .arg("--cluster")
        .arg(&alone)
        .args(["submit", wasm, "--input", input, "--json"])
        .output_in_time()
        .unwrap();
    assert!(
        !minority.status.success(),
        "the cut-off leader acknowledged a submit: {}",
        describe(&minority)
    );
    // The majority elects a leader among themselves and goes on.
    let o = (l + 1) % 3;
    let after = submit(o);
    assert!(after.status.success(), "{}", describe(&after));
    let leader_now = g.leader_by_cli(&sb, Duration::from_secs(10));
    assert_ne!(leader_now, l, "the cut-off member still leads");

    // Healed: the old leader follows and holds what the majority did; the
    // submit it was asked for alone never happened.
    iptables(&ns.name, &["-F", "INPUT"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = g.members_seen_by(&sb, l);
        let me = seen.iter().find(|m| m["this"] == true);
        if me.is_some_and(|m| m["role"] == "follower") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the old leader did not rejoin: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let tasks = json_of(&g.cli(&sb, o, &["tasks", "--json"]));
    assert_eq!(
        tasks.as_array().map(Vec::len),
        Some(2),
        "the cluster holds other tasks than the two acknowledged: {tasks}"
    );
}

#[test]
fn a_member_is_added_and_another_removed_under_load() {
    let sb = Sandbox::new();
    let mut g = Group::start(&sb, 3);
    let _w = g.worker(&sb, "w1", 4);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let c = rt.block_on(g.client());
    let module = rt
        .block_on(c.upload_module(&std::fs::read(guest("wordfreq")).unwrap()))
        .unwrap();
    let c = std::sync::Arc::new(c);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The load: batches of 50 until told to stop (bounded: 400 batches).
    let load = {
        let (c, stop) = (c.clone(), stop.clone());
        rt.spawn(async move {
            let mut acked = Vec::new();
            for batch in 0..400 {
                if stop.load(std::sync::atomic::Ordering::Acquire) {
                    break;
                }
                let specs: Vec<TaskSpec> = (0..50)
                    .map(|i| TaskSpec {
                        input: format!("member change {batch} {i}").into_bytes(),
                        ..TaskSpec::wasm(module)
                    })
                    .collect();
                if let Ok(ids) = c.submit_many(specs).await {
                    acked.extend(ids.into_iter().map(|q| q.id));
                } else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            acked
        })
    };
    // A fourth dispatcher joins and is added.
    let new = g.spawn_joining(&sb);
    let spec = format!("{}@{}", g.members[new].key, g.members[new].addr);
    let added = g.cli(&sb, 0, &["admin", "members", "--json", "add", &spec]);
    assert!(added.status.success(), "{}", describe(&added));
    let view = json_of(&added);
    let voters = view
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["voter"] == true)
        .count();
    assert_eq!(voters, 4, "{view}");
    g.members[new]
        .proc
        .as_mut()
        .unwrap()
        .wait_for_line("ready", Duration::from_secs(60));
    // A member that does not lead is removed, then stopped.
    let l = rt.block_on(g.leader(Duration::from_secs(10)));
    let gone = (0..3).find(|i| *i != l).unwrap();
    let key = g.members[gone].key.clone();
    let removed = g.cli(&sb, l, &["admin", "members", "--json", "remove", &key]);
    assert!(removed.status.success(), "{}", describe(&removed));
    let view = json_of(&removed);
    assert!(
        view.as_array()
            .unwrap()
            .iter()
            .all(|m| m["key"] != key.as_str()),
        "{view}"
    );
    g.kill9(gone);
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, std::sync::atomic::Ordering::Release);
    let acked = rt.block_on(load).unwrap();
    assert!(acked.len() >= 50, "the load got {} tasks in", acked.len());
    rt.block_on(async {
        for id in &acked {
            let info = c.wait(*id, |_| {}).await.expect("wait");
            assert_eq!(info.status, Some(TaskStatus::Succeeded), "{info:?}");
        }
    });
    // The new member holds what the group did.
    let seen = g.members_seen_by(&sb, new);
    let me = seen
        .iter()
        .find(|m| m["this"] == true)
        .cloned()
        .unwrap_or_default();
    assert!(
        me["voter"] == true && me["applied"].as_u64().unwrap_or(0) > 0,
        "{seen:?}"
    );
}
