//! `--each GLOB`: one task per file, submitted in one request under a job
//! id, followed together to a summary by status.

use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::native::{text, up_one_worker};
use fabric_tests::harness::sandbox::{describe, guest};

/// `fabric_submit_requests_total` from the cluster's /metrics.
fn submit_requests(profile: &std::path::Path) -> u64 {
    let p: toml::Table = std::fs::read_to_string(profile).unwrap().parse().unwrap();
    let url = p["api_url"].as_str().unwrap();
    let token = p["api_token"].as_str().unwrap();
    let metrics = ureq::get(&format!("{url}/metrics"))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("fabric_submit_requests_total "))
        .unwrap_or_else(|| panic!("no fabric_submit_requests_total in {metrics}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn each_submits_one_task_per_file_in_one_request_and_sums_up() {
    let (sb, _up, profile, _) = up_one_worker(&["--allow", "sh"]);
    let parts = sb.dir.path().join("parts");
    std::fs::create_dir_all(&parts).unwrap();
    for n in 0..50 {
        std::fs::write(
            parts.join(format!("p{n:02}.txt")),
            format!("word{n} common common\n"),
        )
        .unwrap();
    }
    let fabric = || {
        let mut cmd = sb.fabric();
        cmd.current_dir(sb.dir.path())
            .arg("--cluster")
            .arg(&profile);
        cmd
    };
    let before = submit_requests(&profile);
    let out = fabric()
        .arg("submit")
        .arg(guest("wordfreq"))
        .args(["--each", "parts/*.txt", "--wait", "--json"])
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let job = lines[0]["job"].as_str().unwrap().to_owned();
    assert_eq!(
        lines[0]["tasks"].as_array().map(Vec::len),
        Some(50),
        "{lines:?}"
    );
    assert_eq!(
        lines[1]["statuses"],
        serde_json::json!({"succeeded": 50}),
        "{lines:?}"
    );
    assert_eq!(
        submit_requests(&profile),
        before + 1,
        "50 tasks, one request"
    );
    // The job id finds them, each with its own file as input.
    let listed = fabric()
        .args(["tasks", "--trace", &job, "--limit", "100", "--json"])
        .output_in_time()
        .unwrap();
    let tasks: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(tasks.len(), 50, "{}", describe(&listed));
    let first = fabric()
        .args(["result", tasks[49]["id"].as_str().unwrap()])
        .output_in_time()
        .unwrap();
    assert!(
        text(&first.stdout).contains("common"),
        "{}",
        describe(&first)
    );

    // Native: `{}` is the file, staged; one that fails makes the exit 1,
    // and the summary says so.
    let out = fabric()
        .args(["run", "--each", "parts/p0[0-4].txt", "--"])
        .args(["sh", "-c", "cat {} && test {} != parts/p03.txt"])
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let said = text(&out.stderr);
    assert!(said.contains("5 tasks: 1 failed, 4 succeeded"), "{said}");
    // A job's unfinished tasks are cancelled by its id.
    let spin = sb.wat("spin", fabric_tests::harness::rest::SPIN);
    for n in 0..3 {
        std::fs::write(sb.dir.path().join(format!("spin{n}.in")), "x").unwrap();
    }
    let out = fabric()
        .arg("submit")
        .arg(&spin)
        .args([
            "--each",
            "spin*.in",
            "--fuel",
            "1000G",
            "--timeout",
            "10m",
            "--json",
        ])
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let spun: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let spin_job = spun["job"].as_str().unwrap();
    let cancelled = fabric()
        .args(["cancel", "--job", spin_job])
        .output_in_time()
        .unwrap();
    assert_eq!(cancelled.status.code(), Some(0), "{}", describe(&cancelled));
    assert!(
        text(&cancelled.stderr).contains(&format!("cancelled 3 tasks of job {spin_job}")),
        "{}",
        describe(&cancelled)
    );
    // Dead letters of one job are retried by its id, and only those.
    let fail = sb.wat("fail", fabric_tests::harness::rest::EXIT_1);
    let out = fabric()
        .arg("submit")
        .arg(&fail)
        .args(["--each", "spin*.in", "--wait", "--json"])
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let failed_job = serde_json::from_slice::<serde_json::Value>(
        text(&out.stdout).lines().next().unwrap().as_bytes(),
    )
    .unwrap()["job"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = fabric()
        .arg("submit")
        .arg(&fail)
        .arg("--wait")
        .output_in_time()
        .unwrap();
    assert_eq!(other.status.code(), Some(1), "a dead letter of no job");
    let retried = fabric()
        .args(["retry", "--dead-letters", "--job", &failed_job])
        .output_in_time()
        .unwrap();
    assert_eq!(retried.status.code(), Some(0), "{}", describe(&retried));
    assert!(
        text(&retried.stderr).contains("retried 3 dead letters"),
        "only the job's three: {}",
        describe(&retried)
    );
    // A glob that matches nothing is bad usage.
    let none = fabric()
        .arg("submit")
        .arg(guest("wordfreq"))
        .args(["--each", "nothing/*.txt"])
        .output_in_time()
        .unwrap();
    assert_eq!(none.status.code(), Some(2), "{}", describe(&none));
    assert!(
        text(&none.stderr).contains("matches no file"),
        "{}",
        describe(&none)
    );
}
