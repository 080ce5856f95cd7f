//! What a task's views say about it: the limits it runs under in
//! `status`, `--json` and REST, and its worker's name the same in each.

use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::native::{text, up_one_worker};
use fabric_tests::harness::sandbox::{describe, guest, json_of};

#[test]
fn limits_and_the_worker_name_show_alike_in_every_view() {
    let (sb, _up, profile, _) = up_one_worker(&[]);
    let fabric = || {
        let mut cmd = sb.fabric();
        cmd.arg("--cluster").arg(&profile);
        cmd
    };
    let module = guest("plain-wasi");
    let out = fabric()
        .arg("submit")
        .arg(&module)
        .args(["--timeout", "7s", "--memory", "64MiB", "--fuel", "5G"])
        .args(["--wait", "--json"])
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let waited = json_of(&out);
    let id = waited["id"].as_str().unwrap().to_owned();
    let limits = serde_json::json!({
        "fuel": 5_000_000_000u64,
        "memory_bytes": 64u64 << 20,
        "timeout_ms": 7000,
        "output_bytes": 4u64 << 20,
        "disk_bytes": 1u64 << 30,
    });
    assert_eq!(waited["limits"], limits, "submit --wait --json: {waited}");
    let name = waited["worker_name"]
        .as_str()
        .expect("a worker name")
        .to_owned();
    assert!(name.starts_with("local-"), "{waited}");

    let status = json_of(
        &fabric()
            .args(["status", &id, "--json"])
            .output_in_time()
            .unwrap(),
    );
    assert_eq!(status["limits"], limits, "{status}");
    assert_eq!(status["worker_name"], name.as_str(), "{status}");
    assert_eq!(
        status["attempts"][0]["worker_name"],
        name.as_str(),
        "{status}"
    );

    let listed = json_of(&fabric().args(["tasks", "--json"]).output_in_time().unwrap());
    assert_eq!(listed[0]["id"], id.as_str(), "{listed}");
    assert_eq!(
        listed[0]["worker_name"],
        name.as_str(),
        "tasks --json: {listed}"
    );
    assert_eq!(listed[0]["limits"], limits, "{listed}");

    let human = fabric().args(["status", &id]).output_in_time().unwrap();
    assert!(
        text(&human.stdout)
            .contains("limits: timeout 7 s, memory 64 MiB, fuel 5000000000, output 4 MiB each"),
        "{}",
        describe(&human)
    );

    // REST says the same.
    let p: toml::Table = std::fs::read_to_string(&profile).unwrap().parse().unwrap();
    let url = p["api_url"].as_str().unwrap();
    let token = p["api_token"].as_str().unwrap();
    let rest: serde_json::Value = ureq::get(&format!("{url}/api/v1/tasks/{id}"))
        .set("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(rest["limits"], limits, "{rest}");
    assert_eq!(rest["worker_name"], name.as_str(), "{rest}");
}

#[test]
fn a_wait_on_a_dispatcher_that_died_says_so_and_how_to_go_on() {
    use fabric_tests::harness::process::Proc;
    let (sb, mut up, profile, _) = up_one_worker(&[]);
    let spin = sb.wat("spin", fabric_tests::harness::rest::SPIN);
    let out = sb
        .fabric()
        .arg("--cluster")
        .arg(&profile)
        .arg("submit")
        .arg(&spin)
        // The cluster's most fuel: it spins until cancelled.
        .args(["--fuel", "1000G", "--timeout", "10m"])
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let id = text(&out.stdout).trim().to_owned();
    let mut cmd = sb.fabric();
    cmd.arg("--cluster").arg(&profile).args(["wait", &id]);
    let mut wait = Proc::spawn("wait", cmd, sb.dir.path());
    // Waiting, with the task running; then the dispatcher dies.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let s = sb
            .fabric()
            .arg("--cluster")
            .arg(&profile)
            .args(["status", &id, "--json"])
            .output_in_time()
            .unwrap();
        if json_of(&s)["state"] == "running" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{}", describe(&s));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    up.kill9();
    let status = wait.wait(std::time::Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{}", wait.stderr());
    let said = wait.stderr();
    assert!(
        said.contains(&format!("lost the dispatcher while waiting for task {id}"))
            && said.contains(&format!(
                "keeps running: fabric wait {id}, fabric cancel {id}"
            )),
        "{said}"
    );
}
