//! Hostile modules: each limit and failure is reported distinctly, with the
//! contract's exit code, and never takes the host down.

use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::sandbox::{Sandbox, describe, json_of};

/// Runs a WAT fixture with extra flags; returns (exit code, JSON outcome).
fn exec_wat(name: &str, wat: &str, flags: &[&str]) -> (Option<i32>, serde_json::Value) {
    let sb = Sandbox::new();
    let module = sb.wat(name, wat);
    let out = sb
        .fabric()
        .arg("exec")
        .arg(&module)
        .arg("--json")
        .args(flags)
        .output_in_time()
        .unwrap();
    let v = json_of(&out);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        describe(&out)
    );
    (out.status.code(), v)
}

/// As `exec_wat`, for a module that would run for an hour unless its limit
/// stops it: the command must end by itself before `deadline` (a hang
/// guard, not a bound on how fast: that is the benches' business), or the
/// test fails with what it printed so far.
fn exec_wat_ends(
    name: &str,
    wat: &str,
    flags: &[&str],
    deadline: std::time::Duration,
) -> (Option<i32>, serde_json::Value) {
    use std::process::Stdio;
    let sb = Sandbox::new();
    let module = sb.wat(name, wat);
    let mut child = sb
        .fabric()
        .arg("exec")
        .arg(&module)
        .arg("--json")
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + deadline;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() >= until {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "fabric exec {name} still ran after {deadline:?}: its limit did not stop it\n{}",
                describe(&out)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let v = json_of(&out);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        describe(&out)
    );
    (out.status.code(), v)
}

const BUSY_LOOP: &str = r#"(module
  (memory (export "memory") 1)
  (func (export "_start") (loop $l (br $l))))"#;

#[test]
fn busy_loop_runs_out_of_fuel() {
    let (code, v) = exec_wat("busy", BUSY_LOOP, &["--fuel", "100000"]);
    assert_eq!(code, Some(125), "{v}");
    assert_eq!(v["status"], "fuel_exhausted");
    assert_eq!(v["exit_code"], serde_json::Value::Null);
    assert!(v["fuel_used"].as_u64().unwrap() >= 100_000 - 10);
}

#[test]
fn busy_loop_with_plenty_of_fuel_times_out() {
    // The most fuel allowed: minutes of looping, so only the timeout can end
    // it before the hang guard.
    let (code, v) = exec_wat_ends(
        "busy",
        BUSY_LOOP,
        &["--fuel", "1000000000000", "--timeout", "300ms"],
        std::time::Duration::from_secs(60),
    );
    assert_eq!(code, Some(124), "{v}");
    assert_eq!(v["status"], "timed_out", "{v}");
    // Ended by the 300 ms limit it was given (the message names it), not
    // by fuel. (`fuel_used` reads 0 for this loop stopped by its timeout,
    // so it cannot tell; noted on issue 21, not pinned here.)
    assert_eq!(v["message"], "timed out after 300 ms", "{v}");
    assert!(v["duration_ms"].is_u64(), "{v}");
}

#[test]
fn sleeping_in_a_host_call_still_times_out() {
    // poll_oneoff on a one-hour relative clock: the guest blocks in the
    // host, where epochs cannot reach it; left alone it would then return
    // and succeed.
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "_start")
        ;; subscription at 0: userdata 0, tag 0 (clock), clock id 1 (monotonic)
        (i32.store8 (i32.const 8) (i32.const 0))
        (i32.store (i32.const 16) (i32.const 1))
        (i64.store (i32.const 24) (i64.const 3600000000000))
        (i64.store (i32.const 32) (i64.const 0))
        (i32.store16 (i32.const 40) (i32.const 0))
        (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))"#;
    let (code, v) = exec_wat_ends(
        "sleepy",
        wat,
        &["--timeout", "300ms"],
        std::time::Duration::from_secs(60),
    );
    assert_eq!(code, Some(124), "{v}");
    assert_eq!(v["status"], "timed_out", "{v}");
    assert_eq!(v["message"], "timed out after 300 ms", "{v}");
}

#[test]
fn memory_grow_bomb_exceeds_memory() {
    let wat = r#"(module
      (memory (export "memory") 1)
      (func (export "_start")
        (loop $l (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
        unreachable))"#;
    let (code, v) = exec_wat("membomb", wat, &["--memory", "16MiB"]);
    assert_eq!(code, Some(126), "{v}");
    assert_eq!(v["status"], "memory_exceeded");
    assert!(v["message"].as_str().unwrap().contains("16777216"), "{v}");
    let peak = v["peak_memory_bytes"].as_u64().unwrap();
    assert!((15 << 20..=16 << 20).contains(&peak), "peak {peak}");
}

#[test]
fn initial_memory_over_the_limit_is_memory_exceeded() {
    let wat = r#"(module (memory (export "memory") 1000) (func (export "_start")))"#;
    let (code, v) = exec_wat("bigmem", wat, &["--memory", "1MiB"]);
    assert_eq!(code, Some(126), "{v}");
    assert_eq!(v["status"], "memory_exceeded");
}

#[test]
fn table_grow_bomb_exceeds_memory() {
    let wat = r#"(module
      (memory (export "memory") 1)
      (table $t 1 funcref)
      (func (export "_start")
        (loop $l (br_if $l (i32.ne (table.grow $t (ref.null func) (i32.const 1000)) (i32.const -1))))
        unreachable))"#;
    let (code, v) = exec_wat("tablebomb", wat, &[]);
    assert_eq!(code, Some(126), "{v}");
    assert_eq!(v["status"], "memory_exceeded");
    assert!(v["message"].as_str().unwrap().contains("table"), "{v}");
}

#[test]
fn deep_recursion_is_a_stack_overflow_trap() {
    let wat = r#"(module
      (memory (export "memory") 1)
      (func $f (param i64) (result i64) (i64.add (call $f (i64.add (local.get 0) (i64.const 1))) (i64.const 1)))
      (func (export "_start") (drop (call $f (i64.const 0)))))"#;
    let (code, v) = exec_wat("recurse", wat, &[]);
    assert_eq!(code, Some(127), "{v}");
    assert_eq!(v["status"], "trapped");
    assert!(
        v["message"].as_str().unwrap().contains("stack overflow"),
        "{v}"
    );
}

#[test]
fn unreachable_is_a_trap_with_its_message() {
    let wat = r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#;
    let (code, v) = exec_wat("unreachable", wat, &[]);
    assert_eq!(code, Some(127), "{v}");
    assert_eq!(v["status"], "trapped");
    assert!(
        v["message"].as_str().unwrap().contains("unreachable"),
        "{v}"
    );
}

#[test]
fn huge_output_is_cut_at_the_cap_and_flagged() {
    // Writes 64 KiB to stdout 1024 times: 64 MiB against a 1 MiB cap.
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 2)
      (func (export "_start") (local $i i32)
        (memory.fill (i32.const 1024) (i32.const 65) (i32.const 65536))
        (i32.store (i32.const 0) (i32.const 1024))
        (i32.store (i32.const 4) (i32.const 65536))
        (loop $l
          (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16)))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $i) (i32.const 1024))))))"#;
    let (code, v) = exec_wat("flood", wat, &["--output-limit", "1MiB"]);
    assert_eq!(code, Some(0), "status {}", v["status"]);
    assert_eq!(v["status"], "succeeded");
    assert_eq!(v["stdout_truncated"], true);
    assert_eq!(v["stdout"].as_str().unwrap().len(), 1 << 20);
    assert_eq!(v["stderr_truncated"], false);
}

#[test]
fn proc_exit_code_is_failed_not_a_trap() {
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start") (call $exit (i32.const 42))))"#;
    let (code, v) = exec_wat("exit42", wat, &[]);
    assert_eq!(code, Some(42), "{v}");
    assert_eq!(v["status"], "failed");
    assert_eq!(v["exit_code"], 42);
}

#[test]
fn invalid_bytes_are_rejected() {
    let sb = Sandbox::new();
    let module = sb.write("junk.wasm", b"\0asm\x01\0\0\0this is not a module");
    let out = sb
        .fabric()
        .arg("exec")
        .arg(&module)
        .arg("--json")
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let v = json_of(&out);
    assert_eq!(v["status"], "rejected");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("invalid wasm module"),
        "{v}"
    );
    // Human mode names the problem on stderr, without a panic or backtrace.
    let out = sb
        .fabric()
        .arg("exec")
        .arg(&module)
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("junk.wasm") && stderr.contains("invalid wasm module"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("stack backtrace"),
        "{stderr}"
    );
}

#[test]
fn missing_import_is_rejected_and_named() {
    let wat = r#"(module
      (import "env" "launch_missiles" (func $m))
      (memory (export "memory") 1)
      (func (export "_start") (call $m)))"#;
    let (code, v) = exec_wat("missing", wat, &[]);
    assert_eq!(code, Some(2), "{v}");
    assert_eq!(v["status"], "rejected");
    assert!(
        v["message"].as_str().unwrap().contains("launch_missiles"),
        "{v}"
    );
}

#[test]
fn module_without_start_is_rejected() {
    let wat = r#"(module (memory (export "memory") 1) (func (export "main")))"#;
    let (code, v) = exec_wat("nostart", wat, &[]);
    assert_eq!(code, Some(2), "{v}");
    assert!(v["message"].as_str().unwrap().contains("_start"), "{v}");
}
