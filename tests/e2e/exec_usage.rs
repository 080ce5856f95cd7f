//! Bad usage: exit 2 and a message that names the problem, never a panic.

use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::sandbox::{Sandbox, describe, guest};

fn usage_error(args: &[&str], expect: &str) {
    let sb = Sandbox::new();
    let out = sb.fabric().args(args).output_in_time().unwrap();
    assert_eq!(out.status.code(), Some(2), "{:?}: {}", args, describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(expect),
        "{args:?}: expected {expect:?} in {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn missing_module_file() {
    usage_error(&["exec", "/nonexistent/job.wasm"], "/nonexistent/job.wasm");
}

#[test]
fn bad_sizes_durations_and_limits() {
    let m = guest("plain-wasi");
    let m = m.to_str().unwrap();
    usage_error(&["exec", m, "--memory", "lots"], "invalid size \"lots\"");
    usage_error(
        &["exec", m, "--timeout", "soon"],
        "invalid duration \"soon\"",
    );
    usage_error(&["exec", m, "--timeout", "0s"], "greater than zero");
    usage_error(
        &["exec", m, "--memory", "64GiB"],
        "--memory 64 GiB is over the cluster maximum of 4 GiB",
    );
    usage_error(&["exec", m, "--fuel", "0"], "fuel");
    usage_error(&["exec", m, "--fuel=-5"], "--fuel");
    usage_error(&["exec", m, "--env", "=x"], "--env");
    usage_error(
        &["exec", m, "--input", "/nonexistent/input"],
        "/nonexistent/input",
    );
    usage_error(&["exec", m, "--frobnicate"], "--frobnicate");
    usage_error(&["exec"], "MODULE.wasm");
}

#[test]
fn help_shows_examples() {
    let sb = Sandbox::new();
    let out = sb
        .fabric()
        .args(["exec", "--help"])
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Examples:") && text.contains("fabric exec"),
        "{text}"
    );
    assert!(text.contains("124 timed out"), "{text}");
}

#[test]
fn a_file_that_is_not_wasm_is_named_in_one_line_with_a_hint() {
    let sb = Sandbox::new();
    let wat = sb.dir.path().join("job.wat");
    std::fs::write(&wat, "(module (func (export \"_start\")))").unwrap();
    let text = sb.dir.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    for (path, hint) in [(&wat, "looks like WAT text"), (&text, "wasm32-wasip1")] {
        let out = sb.fabric().arg("exec").arg(path).output_in_time().unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains("is not a wasm module"), "{stderr}");
        assert!(stderr.contains(hint), "{stderr}");
    }
}

#[test]
fn piped_stdin_is_the_input_when_none_is_given() {
    use std::io::Write as _;
    let sb = Sandbox::new();
    let mut cmd = sb.fabric();
    cmd.arg("exec")
        .arg(guest("wordfreq"))
        .args(["--", "--top", "1"])
        .stdin(std::process::Stdio::piped());
    let mut child = fabric_tests::harness::deadline::spawn_captured(&mut cmd).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"fabric fabric wasm\n").unwrap();
    drop(stdin);
    let out = fabric_tests::harness::deadline::wait_within(
        child,
        "fabric exec wordfreq.wasm (stdin piped)",
        std::time::Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["total_words"], 3, "{}", describe(&out));
    assert_eq!(v["top"][0][0], "fabric", "{}", describe(&out));
}

#[test]
fn a_local_run_takes_any_fuel_in_units_or_unlimited() {
    for fuel in ["100000000000000", "10G", "unlimited"] {
        let out = Sandbox::new()
            .fabric()
            .arg("exec")
            .arg(guest("wordfreq"))
            .args(["--fuel", fuel])
            .output_in_time()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "--fuel {fuel}: {}",
            describe(&out)
        );
    }
    usage_error(
        &["exec", "x.wasm", "--fuel", "10X"],
        "use e.g. 1000000, 500M, 10G or unlimited",
    );
}
