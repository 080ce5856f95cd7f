//! Time on the real binary: a delayed task starts no earlier than its
//! delay, is listed as scheduled meanwhile, and survives a kill -9 of the
//! dispatcher; a bad `--at` is refused as a usage error.

use std::process::Output;
use std::time::{Duration, Instant};

use fabric_tests::harness::native::{fabric_on, text, up_one_worker_in};
use fabric_tests::harness::sandbox::{Sandbox, describe, json_of};

fn run(sb: &Sandbox, profile: &std::path::Path, args: &[&str]) -> Output {
    fabric_on(sb, profile, args)
}

#[test]
fn a_delayed_task_is_listed_scheduled_and_starts_no_earlier_than_its_delay() {
    let sb = Sandbox::new();
    let (_up, profile, _) = up_one_worker_in(&sb, &["--allow", "sh"]);
    let out = run(
        &sb,
        &profile,
        &[
            "run",
            "--detach",
            "--delay",
            "3s",
            "--",
            "sh",
            "-c",
            "echo late",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let id = text(&out.stdout).trim().to_owned();
    let status = json_of(&run(&sb, &profile, &["status", &id, "--json"]));
    assert_eq!(status["state"], "scheduled", "{status}");
    let listed = json_of(&run(
        &sb,
        &profile,
        &["tasks", "--state", "scheduled", "--json"],
    ));
    assert_eq!(listed[0]["id"], id.as_str(), "{listed}");
    let done = json_of(&run(&sb, &profile, &["wait", &id, "--json"]));
    assert_eq!(done["status"], "succeeded", "{done}");
    let submitted = done["submitted_ms"].as_u64().unwrap();
    let started = done["attempts"][0]["started_ms"].as_u64().unwrap();
    assert!(
        started >= submitted + 3_000,
        "started {} ms after the submit",
        started - submitted
    );

    // Bad times are the user's mistake, said in the flag's terms.
    let bad = run(
        &sb,
        &profile,
        &["run", "--at", "tomorrow", "--", "sh", "-c", "true"],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
    assert!(
        text(&bad.stderr).contains("--at \"tomorrow\" is not an RFC 3339 time"),
        "{}",
        describe(&bad)
    );
}

#[test]
fn a_scheduled_task_is_kept_by_a_restart_and_runs_at_once_when_its_time_passed() {
    let sb = Sandbox::new();
    let (mut up, profile, _) = up_one_worker_in(&sb, &["--allow", "sh"]);
    let out = run(
        &sb,
        &profile,
        &[
            "run",
            "--detach",
            "--delay",
            "2s",
            "--",
            "sh",
            "-c",
            "echo kept",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let id = text(&out.stdout).trim().to_owned();
    up.kill9();
    drop(up);
    // Down for longer than the delay: it starts as soon as the dispatcher
    // is back.
    std::thread::sleep(Duration::from_secs(3));
    let (_up, profile, _) = up_one_worker_in(&sb, &["--allow", "sh"]);
    let back = Instant::now();
    let done = json_of(&run(&sb, &profile, &["wait", &id, "--json"]));
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["stdout"], "kept\n", "{done}");
    assert!(
        back.elapsed() < Duration::from_secs(30),
        "it ran once the dispatcher was back"
    );
}

#[test]
fn an_every_two_seconds_schedule_runs_pauses_catches_up_once_after_kill_9_and_is_removed() {
    let sb = Sandbox::new();
    let (mut up, profile, _) = up_one_worker_in(&sb, &["--allow", "sh"]);
    let bad = run(
        &sb,
        &profile,
        &[
            "schedule",
            "add",
            "bad",
            "--cron",
            "*/2 * 25 * * *",
            "--",
            "run",
            "--",
            "sh",
            "-c",
            "true",
        ],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
    assert!(
        text(&bad.stderr).contains("the hour field \"25\""),
        "{}",
        describe(&bad)
    );
    let added = run(
        &sb,
        &profile,
        &[
            "schedule",
            "add",
            "every2",
            "--cron",
            "*/2 * * * * *",
            "--",
            "run",
            "--",
            "sh",
            "-c",
            "echo tick",
        ],
    );
    assert_eq!(added.status.code(), Some(0), "{}", describe(&added));
    let show = |profile: &std::path::Path| {
        json_of(&run(
            &sb,
            profile,
            &["schedule", "show", "every2", "--json"],
        ))
    };
    let succeeded = |s: &serde_json::Value| {
        s["runs"].as_array().map_or(0, |r| {
            r.iter().filter(|x| x["status"] == "succeeded").count()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while succeeded(&show(&profile)) < 3 {
        assert!(
            Instant::now() < deadline,
            "three runs did not succeed: {}",
            show(&profile)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let one = show(&profile);
    let trace = json_of(&run(
        &sb,
        &profile,
        &["status", one["runs"][0]["task"].as_str().unwrap(), "--json"],
    ));
    assert!(
        trace["trace"]
            .as_str()
            .unwrap()
            .starts_with("sched-every2-20"),
        "{trace}"
    );
    // Paused: no more runs.
    assert_eq!(
        run(&sb, &profile, &["schedule", "pause", "every2"])
            .status
            .code(),
        Some(0)
    );
    let paused = show(&profile)["runs"].as_array().unwrap().len();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        show(&profile)["runs"].as_array().unwrap().len(),
        paused,
        "no runs while paused"
    );
    assert_eq!(
        run(&sb, &profile, &["schedule", "resume", "every2"])
            .status
            .code(),
        Some(0)
    );
    // Down for longer than three intervals: one catch-up run after the
    // restart (--catch-up one, the default).
    std::thread::sleep(Duration::from_millis(500));
    up.kill9();
    drop(up);
    std::thread::sleep(Duration::from_secs(7));
    let (_up, profile, _) = up_one_worker_in(&sb, &["--allow", "sh"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let s = show(&profile);
        let missed = s["runs"].as_array().unwrap().iter().any(|r| {
            r["note"]
                .as_str()
                .is_some_and(|n| n.contains("passed while the dispatcher was down"))
        });
        if missed {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "no catch-up after the restart: {s}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let catch_ups = after["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["note"] == "catch-up")
        .count();
    assert_eq!(catch_ups, 1, "exactly one catch-up run: {after}");
    let now = run(&sb, &profile, &["schedule", "run-now", "every2"]);
    assert_eq!(now.status.code(), Some(0), "{}", describe(&now));
    assert!(
        text(&now.stdout).starts_with("schedule every2: "),
        "{}",
        describe(&now)
    );
    let listed = run(&sb, &profile, &["schedule", "list"]);
    assert!(
        text(&listed.stdout).contains("every2"),
        "{}",
        describe(&listed)
    );
    let removed = run(&sb, &profile, &["schedule", "remove", "every2"]);
    assert_eq!(removed.status.code(), Some(0), "{}", describe(&removed));
    let list = json_of(&run(&sb, &profile, &["schedule", "list", "--json"]));
    assert_eq!(list, serde_json::json!([]), "{list}");
}

#[test]
fn a_schedule_runs_a_job_file() {
    let sb = Sandbox::new();
    let (_up, profile, _) = up_one_worker_in(&sb, &["--allow", "sh"]);
    let file = sb.write(
        "pair.toml",
        b"[[step]]\nname = \"make\"\ncommand = [\"sh\", \"-c\", \"echo made\"]\n[[step]]\nname = \"use\"\ninput_from = [\"make\"]\ncommand = [\"sh\", \"-c\", \"cat\"]\n",
    );
    let added = run(
        &sb,
        &profile,
        &[
            "schedule",
            "add",
            "pair",
            "--cron",
            "*/2 * * * * *",
            "--job",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(added.status.code(), Some(0), "{}", describe(&added));
    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let s = json_of(&run(&sb, &profile, &["schedule", "show", "pair", "--json"]));
        if let Some(r) = s["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["status"] == "succeeded")
        {
            break r["job"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "no job run succeeded: {s}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let view = json_of(&run(&sb, &profile, &["job", "status", &job, "--json"]));
    assert!(
        view["name"].as_str().unwrap().starts_with("pair-20"),
        "named after the schedule and its time: {view}"
    );
    assert_eq!(view["state"], "succeeded", "{view}");
    let queue = run(
        &sb,
        &profile,
        &[
            "schedule",
            "add",
            "q",
            "--cron",
            "* * * * *",
            "--overlap",
            "queue",
            "--job",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(queue.status.code(), Some(2), "{}", describe(&queue));
    assert_eq!(
        run(&sb, &profile, &["schedule", "remove", "pair"])
            .status
            .code(),
        Some(0)
    );
}
