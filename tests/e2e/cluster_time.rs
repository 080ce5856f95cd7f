//! Time on the real binary: a delayed task starts no earlier than its
//! delay, is listed as scheduled meanwhile, and survives a kill -9 of the
//! dispatcher; a bad `--at` is refused as a usage error.

use std::process::Output;
use std::time::{Duration, Instant};

use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::native::{text, up_one_worker_in};
use fabric_tests::harness::sandbox::{Sandbox, describe, json_of};

fn run(sb: &Sandbox, profile: &std::path::Path, args: &[&str]) -> Output {
    sb.fabric()
        .arg("--cluster")
        .arg(profile)
        .args(args)
        .output_in_time()
        .unwrap()
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
