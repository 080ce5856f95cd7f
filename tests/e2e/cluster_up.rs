//! `fabric up` and the client commands against it.

use std::time::Duration;

use fabric_tests::harness::cluster::fabric_cmd;
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::process::Proc;
use fabric_tests::harness::sandbox::{Sandbox, describe, guest, json_of};

#[test]
fn up_with_two_workers_serves_the_client_commands() {
    let sb = Sandbox::new();
    let mut cmd = fabric_cmd(&sb, None);
    cmd.args([
        "up",
        "--workers",
        "2",
        "--slots",
        "2",
        "--listen",
        "127.0.0.1:0",
        "--heartbeat",
        "200ms",
    ]);
    let mut up = Proc::spawn("up", cmd, sb.dir.path());
    let lines = up.wait_for_line("ready", Duration::from_secs(60));
    assert!(
        lines.iter().any(|l| l.starts_with("join token fabric1.")),
        "{lines:?}"
    );
    // The profile went to the default place, so plain commands just work.
    assert!(sb.dir.path().join(".config/fabric/cluster.toml").exists());
    let token = std::fs::read_to_string(sb.dir.path().join("data/fabric/join-token"))
        .expect("join-token file");
    assert!(token.starts_with("fabric1."));

    // Both local workers register.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = fabric_cmd(&sb, None)
            .args(["workers", "--json"])
            .output_in_time()
            .expect("run");
        assert!(out.status.success(), "{}", describe(&out));
        if json_of(&out).as_array().map_or(0, Vec::len) == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "workers never registered: {}",
            describe(&out)
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let text = sb.write("book.txt", b"the cat and the hat and the bat");
    let out = fabric_cmd(&sb, None)
        .arg("submit")
        .arg(guest("wordfreq"))
        .arg("--input")
        .arg(&text)
        .args(["--wait", "--json", "--", "--top", "1"])
        .output_in_time()
        .expect("run");
    assert!(out.status.success(), "{}", describe(&out));
    let v = json_of(&out);
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(v["exit_code"], 0);
    assert!(v["stdout"].as_str().unwrap().contains("\"the\""), "{v}");
    let id = v["id"].as_str().expect("id").to_owned();

    let out = fabric_cmd(&sb, None)
        .args(["status", &id, "--json"])
        .output_in_time()
        .expect("run");
    assert_eq!(json_of(&out)["status"], "succeeded", "{}", describe(&out));
    let out = fabric_cmd(&sb, None)
        .args(["result", &id])
        .output_in_time()
        .expect("run");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"the\""),
        "{}",
        describe(&out)
    );
    let out = fabric_cmd(&sb, None)
        .args(["tasks", "--state", "done", "--json"])
        .output_in_time()
        .expect("run");
    assert_eq!(
        json_of(&out).as_array().map(Vec::len),
        Some(1),
        "{}",
        describe(&out)
    );

    // A failing task: exit code of the contract through submit --wait.
    let spin = sb.wat(
        "spin",
        r#"(module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))"#,
    );
    let out = fabric_cmd(&sb, None)
        .arg("submit")
        .arg(&spin)
        .args(["--fuel", "1000000", "--wait", "--json"])
        .output_in_time()
        .expect("run");
    assert_eq!(out.status.code(), Some(125), "{}", describe(&out));
    assert_eq!(json_of(&out)["status"], "fuel_exhausted");

    // Cancel a queued task (low priority behind nothing is still queued only
    // briefly, so use a task too big for any worker's memory).
    let out = fabric_cmd(&sb, None)
        .arg("submit")
        .arg(&spin)
        .args(["--memory", "4GiB"])
        .output_in_time()
        .expect("run");
    assert!(out.status.success(), "{}", describe(&out));
    let queued = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let out = fabric_cmd(&sb, None)
        .args(["cancel", &queued, "--json"])
        .output_in_time()
        .expect("run");
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(json_of(&out)["status"], "cancelled");
    let out = fabric_cmd(&sb, None)
        .args(["cancel", &queued])
        .output_in_time()
        .expect("run");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already finished"),
        "{}",
        describe(&out)
    );

    // Bad input gets named.
    let out = fabric_cmd(&sb, None)
        .args(["status", "not-an-id"])
        .output_in_time()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let out = fabric_cmd(&sb, None)
        .args(["tasks", "--state", "sleepy"])
        .output_in_time()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sleepy"),
        "{}",
        describe(&out)
    );

    let status = up.terminate(Duration::from_secs(30));
    assert!(
        status.success(),
        "fabric up exited {status:?}; stderr:\n{}",
        up.stderr()
    );
}

#[test]
fn client_commands_without_a_profile_say_how_to_get_one() {
    let sb = Sandbox::new();
    let out = fabric_cmd(&sb, None)
        .args(["tasks"])
        .output_in_time()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no cluster profile") && err.contains("fabric up"),
        "{err}"
    );
}

#[test]
fn demo_runs_the_example_jobs() {
    let sb = Sandbox::new();
    let out = fabric_cmd(&sb, None)
        .args(["demo", "--json"])
        .output_in_time()
        .expect("run");
    assert!(out.status.success(), "{}", describe(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let objects: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let jobs: Vec<&str> = objects.iter().filter_map(|o| o["job"].as_str()).collect();
    assert_eq!(
        jobs,
        [
            "wordfreq",
            "primes",
            "mandelbrot",
            "json-transform",
            "runaway",
            "native",
            "wordcount"
        ]
    );
    // The job: its count tasks' reports merged give the whole text's.
    let job = objects.iter().find(|o| o["job"] == "wordcount").unwrap();
    assert_eq!(job["as_expected"], true, "{job}");
    assert_eq!(job["parts"], 3, "one task per sentence: {job}");
    assert!(job["id"].as_str().unwrap().starts_with("job-"), "{job}");
    // This host sandboxes native commands, so the native job ran (it is
    // skipped, and says why, only where it cannot).
    let native = objects.iter().find(|o| o["job"] == "native").unwrap();
    assert!(native["skipped"].is_null(), "{native}");
    let stdout = native["stdout"].as_str().unwrap_or_default();
    assert!(
        stdout.starts_with("native: Linux as uid 1000 on fabric-task, in /work"),
        "{native}"
    );
    assert!(
        objects
            .iter()
            .filter(|o| o["job"].is_string())
            .all(|o| o["as_expected"] == true),
        "{text}"
    );
    assert_eq!(objects.last().unwrap()["all_as_expected"], true);
}
