//! Guests that flood the host with events: `fabric.progress` in a tight
//! loop, and `fabric.log` with empty messages in a tight loop. Each ends
//! by its timeout (`timed_out`; with fuel for minutes, nothing else can end
//! it), with `--json` output under 1 MiB, and neither `fabric exec` nor the
//! `fabric up` running it grows past 100 MiB plus the task's memory limit.
//! How soon after the timeout it ends is measured by the `wasm_task`
//! bench, not asserted here.

use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fabric_tests::harness::cluster::{TRIVIAL_WAT, fabric_cmd};
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::process::Proc;
use fabric_tests::harness::sandbox::{Sandbox, describe, json_of};

/// Calls `fabric.progress` forever.
const PROGRESS_FLOOD: &str = r#"(module
  (import "fabric" "progress" (func $progress (param i64 i64)))
  (memory (export "memory") 1)
  (func (export "_start") (local $i i64)
    (loop $l
      (local.set $i (i64.add (local.get $i) (i64.const 1)))
      (call $progress (local.get $i) (i64.const 0))
      (br $l))))"#;

/// Calls `fabric.log` with an empty message forever.
const EMPTY_LOG_FLOOD: &str = r#"(module
  (import "fabric" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $l
      (call $log (i32.const 2) (i32.const 0) (i32.const 0))
      (br $l))))"#;

const MEMORY: &str = "1MiB";
const MEMORY_BYTES: u64 = 1 << 20;
/// What the host process may use beyond the task's memory limit.
const HOST_ALLOWANCE: u64 = 100 << 20;
const MAX_JSON: usize = 1 << 20;

/// The limits every flood runs under.
fn limit_flags() -> Vec<String> {
    [
        "--memory",
        MEMORY,
        "--timeout",
        "2s",
        "--fuel",
        "1000000000000",
        "--json",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A process's peak resident set (VmHWM), in bytes, while it lives.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// What a finished command did: its JSON, its raw stdout size and the peak
/// RSS seen while it ran.
struct Run {
    json: serde_json::Value,
    stdout_len: usize,
    peak_rss: u64,
}

/// Runs `cmd` to its end, sampling its peak RSS from /proc until it exits;
/// `limit` is a hang guard (the test fails if it still runs then).
fn run_sampled(mut cmd: Command, limit: Duration) -> Run {
    let started = Instant::now();
    let mut child: Child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fabric");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let pid = child.id();
    let mut peak = 0;
    let status = loop {
        if let Some(rss) = peak_rss(pid) {
            peak = peak.max(rss);
        }
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("fabric did not end within {limit:?}: the flood outlived its timeout");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout = reader.join().expect("stdout reader");
    let stderr = err_reader.join().expect("stderr reader");
    let text = String::from_utf8_lossy(&stdout);
    let json = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "not one JSON object ({e}), exit {status:?}; first 2000 bytes: {}\nstderr: {}",
            &text[..text.len().min(2000)],
            String::from_utf8_lossy(&stderr)
        )
    });
    Run {
        json,
        stdout_len: stdout.len(),
        peak_rss: peak,
    }
}

/// Checks what every flood must show: ended by its timeout (fuel left, so
/// not by fuel), its output and its kept logs bounded.
fn check_flood(what: &str, run: &Run) {
    let v = &run.json;
    assert_eq!(v["status"], "timed_out", "{what}: {v}");
    assert!(
        v["fuel_used"].as_u64().is_some_and(|f| f > 0),
        "{what}: it ran: {v}"
    );
    assert!(
        run.stdout_len < MAX_JSON,
        "{what}: printed {} bytes of JSON",
        run.stdout_len
    );
    let logs = v["logs"].as_array().map_or(0, Vec::len);
    assert!(logs <= 10_001, "{what}: {logs} log lines kept");
}

fn exec_cmd(sb: &Sandbox, module: &std::path::Path) -> Command {
    let mut cmd = sb.fabric();
    cmd.arg("exec").arg(module).args(limit_flags());
    cmd
}

#[test]
fn exec_floods_end_by_their_timeout_with_bounded_output_and_memory() {
    let sb = Sandbox::new();
    let trivial = sb.wat("trivial", TRIVIAL_WAT);
    let baseline = run_sampled(exec_cmd(&sb, &trivial), Duration::from_secs(60));
    assert_eq!(baseline.json["status"], "succeeded", "{}", baseline.json);
    for (name, wat) in [("progress", PROGRESS_FLOOD), ("empty-log", EMPTY_LOG_FLOOD)] {
        let module = sb.wat(name, wat);
        let run = run_sampled(exec_cmd(&sb, &module), Duration::from_secs(60));
        check_flood(&format!("exec {name}"), &run);
        assert!(
            run.peak_rss < HOST_ALLOWANCE + MEMORY_BYTES,
            "exec {name}: peak RSS {} MiB",
            run.peak_rss >> 20
        );
    }
}

#[test]
fn cluster_floods_end_by_their_timeout_and_leave_the_cluster_small() {
    let sb = Sandbox::new();
    let mut cmd = fabric_cmd(&sb, None);
    cmd.args(["up", "--workers", "1", "--listen", "127.0.0.1:0"])
        .args(["--heartbeat", "200ms"]);
    let mut up = Proc::spawn("up", cmd, sb.dir.path());
    up.wait_for_line("ready", Duration::from_secs(60));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = fabric_cmd(&sb, None)
            .args(["workers", "--json"])
            .output_in_time()
            .expect("run");
        if json_of(&out).as_array().map_or(0, Vec::len) == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "worker never registered: {}",
            describe(&out)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let submit = |module: &std::path::Path| {
        let mut cmd = fabric_cmd(&sb, None);
        cmd.arg("submit")
            .arg(module)
            .arg("--wait")
            .args(limit_flags());
        cmd
    };
    let trivial = sb.wat("trivial", TRIVIAL_WAT);
    let baseline = run_sampled(submit(&trivial), Duration::from_secs(60));
    assert_eq!(baseline.json["status"], "succeeded", "{}", baseline.json);
    for (name, wat) in [("progress", PROGRESS_FLOOD), ("empty-log", EMPTY_LOG_FLOOD)] {
        let module = sb.wat(name, wat);
        let run = run_sampled(submit(&module), Duration::from_secs(60));
        check_flood(&format!("submit {name}"), &run);
        let rss = peak_rss(up.pid()).expect("fabric up is alive");
        assert!(
            rss < HOST_ALLOWANCE + MEMORY_BYTES,
            "after {name}: fabric up (dispatcher and worker) peaked at {} MiB",
            rss >> 20
        );
    }
    up.terminate(Duration::from_secs(30));
}
