//! Bad usage: exit 2 and a message that names the problem, never a panic.

use fabric_tests::harness::sandbox::{Sandbox, describe, guest};

fn usage_error(args: &[&str], expect: &str) {
    let sb = Sandbox::new();
    let out = sb.fabric().args(args).output().unwrap();
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
    usage_error(&["exec", m, "--memory", "64GiB"], "memory_bytes");
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
    let out = sb.fabric().args(["exec", "--help"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Examples:") && text.contains("fabric exec"),
        "{text}"
    );
    assert!(text.contains("124 timed out"), "{text}");
}
