//! Workers that went away stay listed for a while: `down` (left, declared
//! dead) or `removed`, with when and why, and the tasks they ran keep their
//! names.

use std::time::{Duration, Instant};

use fabric_tests::harness::cluster::{DispatcherProc, start_dispatcher, start_worker};
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::sandbox::{Sandbox, describe, guest, json_of};

fn fabric(sb: &Sandbox, d: &DispatcherProc, args: &[&str]) -> serde_json::Value {
    let out = sb
        .fabric()
        .arg("--cluster")
        .arg(&d.profile)
        .args(args)
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{args:?}: {}", describe(&out));
    json_of(&out)
}

/// Polls `fabric workers --json` until `name` is in `state`; that entry.
fn worker_in(sb: &Sandbox, d: &DispatcherProc, name: &str, state: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let all = fabric(sb, d, &["workers", "--json"]);
        if let Some(w) = all
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == name && w["state"] == state)
        {
            return w.clone();
        }
        assert!(Instant::now() < deadline, "{name} never {state}: {all}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn workers_that_left_died_or_were_removed_are_listed_with_when_and_why() {
    let sb = Sandbox::new();
    let d = start_dispatcher(&sb, "d", "127.0.0.1:0", &[], None);
    let mut leaver = start_worker(&sb, "leaver", &d, 1);
    let mut dier = start_worker(&sb, "dier", &d, 1);
    let _removed = start_worker(&sb, "removed", &d, 1);
    for name in ["leaver", "dier", "removed"] {
        worker_in(&sb, &d, name, "ready");
    }
    // A task runs somewhere; it keeps its worker's name after that worker
    // is gone.
    let module = guest("plain-wasi");
    let done = sb
        .fabric()
        .arg("--cluster")
        .arg(&d.profile)
        .arg("submit")
        .arg(&module)
        .args(["--wait", "--json"])
        .output_in_time()
        .unwrap();
    assert_eq!(done.status.code(), Some(0), "{}", describe(&done));
    let done = json_of(&done);
    let ran_on = done["worker_name"].as_str().unwrap().to_owned();

    // One drains and leaves, one is killed, one is removed by an admin.
    leaver.sigterm();
    assert!(leaver.wait(Duration::from_secs(30)).success());
    dier.kill9();
    let removed_key = worker_in(&sb, &d, "removed", "ready")["key"]
        .as_str()
        .unwrap()
        .to_owned();
    fabric(&sb, &d, &["workers", "remove", &removed_key, "--json"]);

    let left = worker_in(&sb, &d, "leaver", "down");
    assert!(left["why"].as_str().unwrap().starts_with("left"), "{left}");
    let died = worker_in(&sb, &d, "dier", "down");
    let why = died["why"].as_str().unwrap().to_owned();
    // Lost first (its leases wait), then declared dead.
    let died = if why.starts_with("declared dead") {
        died
    } else {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let w = worker_in(&sb, &d, "dier", "down");
            if w["why"].as_str().unwrap().starts_with("declared dead") {
                break w;
            }
            assert!(Instant::now() < deadline, "never declared dead: {w}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert_eq!(died["why"], "declared dead: missed 3 heartbeats", "{died}");
    let removed = worker_in(&sb, &d, "removed", "removed");
    assert!(
        removed["why"]
            .as_str()
            .unwrap()
            .contains("removed by an admin"),
        "{removed}"
    );
    for w in [&left, &died, &removed] {
        assert!(w["since_ms"].as_u64().is_some_and(|t| t > 0), "{w}");
        assert_eq!(w["running"], 0, "{w}");
    }
    // The table says so too.
    let table = sb
        .fabric()
        .arg("--cluster")
        .arg(&d.profile)
        .arg("workers")
        .output_in_time()
        .unwrap();
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("down") && text.contains("removed") && text.contains("declared dead"),
        "{text}"
    );
    // The finished task still names the worker it ran on.
    let id = done["id"].as_str().unwrap();
    let status = fabric(&sb, &d, &["status", id, "--json"]);
    assert_eq!(status["worker_name"], ran_on.as_str(), "{status}");
}

#[test]
fn a_task_that_requires_a_label_runs_only_on_a_worker_that_carries_it() {
    use fabric_tests::harness::cluster::start_worker_with;
    let sb = Sandbox::new();
    let d = start_dispatcher(&sb, "d", "127.0.0.1:0", &[], None);
    let _plain = start_worker(&sb, "plain", &d, 2);
    let _gpu = start_worker_with(
        &sb,
        "gpu-box",
        &d,
        1,
        &["--label", "gpu", "--label", "rack-2"],
    );
    worker_in(&sb, &d, "plain", "ready");
    worker_in(&sb, &d, "gpu-box", "ready");
    let module = guest("plain-wasi");
    let submit = |extra: &[&str]| {
        sb.fabric()
            .arg("--cluster")
            .arg(&d.profile)
            .arg("submit")
            .arg(&module)
            .args(extra)
            .output_in_time()
            .unwrap()
    };
    // Four tasks that need the label: each runs on the labelled worker,
    // though the other has more free slots.
    for _ in 0..4 {
        let out = submit(&["--require", "gpu", "--wait", "--json"]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        let task = json_of(&out);
        assert_eq!(task["worker_name"], "gpu-box", "{task}");
        assert_eq!(task["require"], serde_json::json!(["gpu"]), "{task}");
    }
    // A label no worker carries: queued, and the reason names it and the
    // workers that come closest.
    let out = submit(&["--require", "gpu", "--require", "tpu"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        said.contains(
            "no registered worker carries the labels gpu, tpu; closest: gpu-box (lacks tpu)"
        ),
        "{said}"
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let status = fabric(&sb, &d, &["status", &id, "--json"]);
    assert_eq!(status["state"], "queued", "{status}");
    assert!(
        status["waiting"]
            .as_str()
            .unwrap()
            .contains("carries the labels gpu, tpu"),
        "{status}"
    );
    // A label that is not one: refused before anything is queued.
    let bad = submit(&["--require", "has space"]);
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--require"),
        "{}",
        describe(&bad)
    );
}

#[test]
fn bulk_cancel_by_state_and_bulk_retry_of_dead_letters_say_how_many() {
    let sb = Sandbox::new();
    let d = start_dispatcher(&sb, "d", "127.0.0.1:0", &[], None);
    let _w = start_worker(&sb, "w", &d, 1);
    worker_in(&sb, &d, "w", "ready");
    let run = |args: &[&str]| {
        let out = sb
            .fabric()
            .arg("--cluster")
            .arg(&d.profile)
            .args(args)
            .output_in_time()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", describe(&out));
        out
    };
    // One slot: one spinning task runs, four wait.
    let spin = sb.wat("spin", fabric_tests::harness::rest::SPIN);
    let spin = spin.to_str().unwrap();
    for _ in 0..5 {
        run(&["submit", spin, "--fuel", "1000G", "--timeout", "10m"]);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while fabric(&sb, &d, &["tasks", "--state", "running", "--json"])
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "nothing started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Submitted a moment ago: none is older than an hour.
    let none = run(&["cancel", "--state", "queued", "--older-than", "1h"]);
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("cancelled 0 queued tasks"),
        "{}",
        describe(&none)
    );
    let queued = run(&["cancel", "--state", "queued"]);
    assert!(
        String::from_utf8_lossy(&queued.stderr).contains("cancelled 4 queued tasks"),
        "{}",
        describe(&queued)
    );
    let running = run(&["cancel", "--state", "running", "--json"]);
    assert_eq!(
        json_of(&running).as_array().map(Vec::len),
        Some(1),
        "{}",
        describe(&running)
    );
    for state in ["queued", "running"] {
        let left = fabric(&sb, &d, &["tasks", "--state", state, "--json"]);
        assert_eq!(left.as_array().map(Vec::len), Some(0), "{state}: {left}");
    }
    // A finished state is not one to cancel.
    let bad = sb
        .fabric()
        .arg("--cluster")
        .arg(&d.profile)
        .args(["cancel", "--state", "done"])
        .output_in_time()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));

    // Three tasks that fail with no retries: three dead letters, retried
    // in one command.
    let fail = sb.wat("fail", fabric_tests::harness::rest::EXIT_1);
    let fail = fail.to_str().unwrap();
    for _ in 0..3 {
        let out = sb
            .fabric()
            .arg("--cluster")
            .arg(&d.profile)
            .args(["submit", fail, "--wait"])
            .output_in_time()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    }
    let retried = run(&["retry", "--dead-letters"]);
    let ids: Vec<String> = String::from_utf8_lossy(&retried.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(ids.len(), 3, "{}", describe(&retried));
    assert!(
        String::from_utf8_lossy(&retried.stderr).contains("retried 3 dead letters"),
        "{}",
        describe(&retried)
    );
}
