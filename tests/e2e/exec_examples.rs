//! `fabric exec` on the SDK examples and on plain WASI programs.

use base64::Engine as _;
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::sandbox::{
    PLAIN_RUSTC_WASM, Sandbox, describe, guest, json_of, run_with_input,
};

#[test]
fn wordfreq_counts_words_and_streams_logs() {
    let sb = Sandbox::new();
    let input = sb.write("text.txt", b"the cat and the hat\nThe end of the cat\n");
    let out = sb
        .fabric()
        .arg("exec")
        .arg(guest("wordfreq"))
        .arg("--input")
        .arg(&input)
        .args(["--json", "--", "--top", "2"])
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let v = json_of(&out);
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["exit_code"], 0);
    assert!(v["fuel_used"].as_u64().unwrap() > 0);
    let report: serde_json::Value = serde_json::from_str(v["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(report["total_words"], 10);
    assert_eq!(report["unique_words"], 6);
    assert_eq!(report["top"][0], serde_json::json!(["the", 4]));
    assert_eq!(report["top"][1], serde_json::json!(["cat", 2]));
    let logs = v["logs"].as_array().unwrap();
    assert!(
        logs.iter()
            .any(|l| l["level"] == "info"
                && l["message"].as_str().unwrap().contains("counting words")),
        "guest log line missing: {logs:?}"
    );
}

#[test]
fn wordfreq_bad_argument_is_a_failed_task_with_its_message() {
    let sb = Sandbox::new();
    let out = sb
        .fabric()
        .arg("exec")
        .arg(guest("wordfreq"))
        .args(["--json", "--", "--top", "many"])
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let v = json_of(&out);
    assert_eq!(v["status"], "failed");
    assert_eq!(v["exit_code"], 1);
    assert!(
        v["stderr"]
            .as_str()
            .unwrap()
            .contains("--top takes a whole number")
    );
}

#[test]
fn mandelbrot_writes_a_binary_image() {
    let sb = Sandbox::new();
    let spec = br#"{"width": 16, "height": 8, "max_iter": 50}"#;
    // JSON mode: binary stdout comes back as base64.
    let out = run_with_input(
        sb.fabric()
            .arg("exec")
            .arg(guest("mandelbrot"))
            .args(["--input", "-", "--json"]),
        spec,
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let v = json_of(&out);
    assert_eq!(v["stdout"], serde_json::Value::Null);
    let image = base64::engine::general_purpose::STANDARD
        .decode(v["stdout_b64"].as_str().unwrap())
        .unwrap();
    let header = b"P5\n16 8\n255\n";
    assert!(image.starts_with(header));
    assert_eq!(image.len(), header.len() + 16 * 8);
    // The point (0, 0) sits in the set and must be black; the corners escape.
    let pixels = &image[header.len()..];
    assert!(pixels.contains(&0) && pixels.iter().any(|&p| p > 200));
    // Human mode: the raw image on stdout, nothing else.
    let raw = run_with_input(
        sb.fabric()
            .arg("exec")
            .arg(guest("mandelbrot"))
            .args(["--input", "-", "-q"]),
        spec,
    );
    assert_eq!(raw.status.code(), Some(0), "{}", describe(&raw));
    assert_eq!(raw.stdout, image);
}

#[test]
fn primes_counts_primes() {
    let sb = Sandbox::new();
    let out = run_with_input(
        sb.fabric()
            .arg("exec")
            .arg(guest("primes"))
            .args(["--input", "-", "--json"]),
        br#"{"limit": 100000}"#,
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let answer: serde_json::Value =
        serde_json::from_str(json_of(&out)["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(answer["count"], 9592);
    assert_eq!(answer["largest"], 99991);
    assert_eq!(answer["sum"], 454396537u64);
}

#[test]
fn primes_rejects_malformed_input_clearly() {
    let sb = Sandbox::new();
    let out = run_with_input(
        sb.fabric()
            .arg("exec")
            .arg(guest("primes"))
            .args(["--input", "-"]),
        b"{\"limit\": \"ten\"}",
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not valid JSON for this task"), "{stderr}");
    assert!(stderr.contains("fabric: failed (exit 1)"), "{stderr}");
}

#[test]
fn json_transform_groups_and_sums() {
    let sb = Sandbox::new();
    let sales = sb.write(
        "sales.json",
        br#"[{"region":"eu","amount":10},{"region":"us","amount":4.5},{"region":"eu","amount":2.5},{"amount":1}]"#,
    );
    let out = sb
        .fabric()
        .arg("exec")
        .arg(guest("json-transform"))
        .arg("--input")
        .arg(&sales)
        .args(["-q", "--", "--group-by", "region", "--sum", "amount"])
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["records"], 4);
    assert_eq!(report["groups"]["eu"]["count"], 2);
    assert_eq!(report["groups"]["eu"]["sum"], 12.5);
    assert_eq!(report["groups"]["us"]["max"], 4.5);
    assert_eq!(report["groups"]["(missing)"]["count"], 1);
}

fn check_plain(module: &std::path::Path) {
    let sb = Sandbox::new();
    let out = run_with_input(
        sb.fabric().arg("exec").arg(module).args([
            "--input",
            "-",
            "--env",
            "GREETING=hello",
            "--json",
            "--",
            "a",
            "b c",
        ]),
        b"shout this\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let v = json_of(&out);
    assert_eq!(
        v["stdout"], "args: a b c\ngreeting: hello\nenv vars: 1\nSHOUT THIS\n",
        "{v}"
    );
    // Its own exit code comes back as ours, and as `failed`.
    let out = sb
        .fabric()
        .arg("exec")
        .arg(module)
        .args(["--json", "--", "--exit", "3"])
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let v = json_of(&out);
    assert_eq!(v["status"], "failed");
    assert_eq!(v["exit_code"], 3);
    assert!(v["stderr"].as_str().unwrap().contains("exiting with 3"));
}

#[test]
fn plain_wasi_program_built_by_cargo_runs_unchanged() {
    check_plain(&guest("plain-wasi"));
}

#[test]
fn plain_wasi_program_built_by_bare_rustc_runs_unchanged() {
    check_plain(std::path::Path::new(PLAIN_RUSTC_WASM));
}

#[test]
fn nothing_of_the_host_is_visible_and_scratch_is_opt_in() {
    let sb = Sandbox::new();
    let plain = guest("plain-wasi");
    // HOME and PATH are set for fabric itself; the guest must see none of it.
    let out = sb
        .fabric()
        .arg("exec")
        .arg(&plain)
        .args(["--json", "--", "--probe"])
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let stdout = json_of(&out)["stdout"].as_str().unwrap().to_owned();
    assert!(stdout.contains("env vars: 0"), "{stdout}");
    assert!(stdout.contains("host file: denied"), "{stdout}");
    assert!(stdout.contains("scratch: unavailable"), "{stdout}");

    let out = sb
        .fabric()
        .arg("exec")
        .arg(&plain)
        .args(["--scratch", "--json", "--", "--probe"])
        .output_in_time()
        .unwrap();
    let stdout = json_of(&out)["stdout"].as_str().unwrap().to_owned();
    assert!(stdout.contains("scratch: ok"), "{stdout}");
    assert!(stdout.contains("host file: denied"), "{stdout}");
}

#[test]
fn compiled_modules_are_cached_on_disk_and_a_corrupt_cache_is_recompiled() {
    let sb = Sandbox::new();
    let data = sb.dir.path().join("fabric-data");
    let run = || {
        sb.fabric()
            .arg("exec")
            .arg(guest("plain-wasi"))
            .arg("--data-dir")
            .arg(&data)
            .args(["-q", "--", "x"])
            .output_in_time()
            .unwrap()
    };
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let cached: Vec<_> = std::fs::read_dir(data.join("modules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    std::fs::write(&cached[0], b"garbage, not a compiled module").unwrap();
    let out = run();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("args: x"));
    assert!(
        std::fs::metadata(&cached[0]).unwrap().len() > 100,
        "cache entry was not rewritten"
    );
}
