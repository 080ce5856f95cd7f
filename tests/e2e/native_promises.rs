//! What the README promises of the native sandbox, each checked against a
//! real `fabric up` (issue 21, "Promises with no test"). The escapes a
//! reviewer found are in `native_escape.rs`.

use fabric_tests::harness::deadline::OutputWithin as _;
use std::collections::HashMap;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use fabric_proto::{Signed, TaskKind};
use fabric_tests::harness::fake_dispatcher::{FakeDispatcher, manifest, refused};
use fabric_tests::harness::native::{NativeCluster as Cluster, text};
use fabric_tests::harness::process::Proc;
use fabric_tests::harness::sandbox::{Sandbox, describe, fabric_bin};

/// Debian's Python (`.ci/run` installs it).
const PY: &str = "/usr/bin/python3";

/// The `fabric` processes turn transparent huge pages off for themselves
/// (mimalloc's arenas would be resident in 2 MiB steps, `fabric_alloc`);
/// the setting is inherited, so the sandbox helper turns it back on and a
/// native task runs with the host's default, as this test process does.
#[test]
fn a_native_task_keeps_the_hosts_transparent_huge_pages() {
    let thp = |status: &str| {
        status
            .lines()
            .find(|l| l.starts_with("THP_enabled:"))
            .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_owned())
    };
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let host = thp(&own).expect("this kernel shows THP_enabled in /proc/self/status");
    let c = Cluster::start(&["sh"]);
    let out = c.run(&[], &["sh", "-c", "grep THP_enabled /proc/self/status"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(
        thp(&text(&out.stdout)).as_deref(),
        Some(host.as_str()),
        "the task's THP setting differs from the host's: {}",
        describe(&out)
    );
}

#[test]
fn a_task_sees_and_signals_no_host_process() {
    let c = Cluster::start(&["sh"]);
    let me = std::process::id();
    let script = format!(
        "ls /proc | grep -c '^[0-9]'; kill -0 {me} 2>/dev/null && echo SIGNALLED || echo unreachable; kill -9 1; echo init-survives"
    );
    let out = c.run(&[], &["sh", "-c", &script]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let shown = text(&out.stdout);
    let mut lines = shown.lines();
    let seen: usize = lines.next().and_then(|n| n.parse().ok()).unwrap();
    // The task's init, the shell, and what the pipeline runs.
    assert!(seen <= 5, "a task sees {seen} processes: {shown}");
    assert_eq!(lines.next(), Some("unreachable"), "{shown}");
    // Its namespace's init (whose death would end the task) ignores even
    // SIGKILL from inside.
    assert_eq!(lines.next(), Some("init-survives"), "{shown}");
}

#[test]
fn seccomp_refuses_namespace_mount_trace_bpf_and_io_uring_calls() {
    let c = Cluster::start(&[PY]);
    // x86_64 numbers: unshare(CLONE_NEWUSER), mount, ptrace(TRACEME),
    // bpf, io_uring_setup, setns, keyctl.
    let probe = r#"
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
for name, nr, args in [("unshare", 272, (0x10000000,)), ("mount", 165, (0, 0, 0, 0, 0)),
                       ("ptrace", 101, (0, 0, 0, 0)), ("bpf", 321, (0, 0, 0)),
                       ("io_uring_setup", 425, (1, 0)), ("setns", 308, (0, 0)),
                       ("keyctl", 250, (0, 0))]:
    r = libc.syscall(nr, *args)
    print(name, r, ctypes.get_errno())
"#;
    let out = c.run(&[], &[PY, "-c", probe]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let shown = text(&out.stdout);
    assert_eq!(shown.lines().count(), 7, "{shown}");
    for line in shown.lines() {
        // -1 and EPERM: the filter's answer, not the call's own.
        assert!(line.ends_with(" -1 1"), "not refused by seccomp: {line}");
    }
}

/// A host process's session id, from `/proc/PID/stat` (the field after
/// the parenthesised name: state, ppid, pgrp, session).
fn session_of(pid: &str) -> String {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    after.split_whitespace().nth(3).unwrap().to_owned()
}

#[test]
fn a_task_runs_in_a_session_of_its_own() {
    let c = Cluster::start(&["sh"]);
    let out = c
        .cmd()
        .args(["run", "--detach", "--", "sh", "-c", "sleep 9821"])
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let id = text(&out.stdout).trim().to_owned();
    let running = fabric_tests::harness::native::started("sleep 9821");
    let pid = running[0].split_whitespace().next().unwrap().to_owned();
    // Not the worker's session, so never the worker's terminal: the
    // operator's terminal under `fabric up` is out of the task's reach
    // whatever the test runs under.
    assert_ne!(session_of(&pid), session_of(&c.up.pid().to_string()));
    let out = c.cmd().args(["cancel", &id]).output_in_time().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

#[test]
fn the_rlimits_hold_inside_a_task() {
    let c = Cluster::start(&["sh"]);
    let out = c.run(
        &[],
        &[
            "sh",
            "-c",
            "ulimit -n; ulimit -f; ulimit -c; cat /proc/self/limits",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    // Open files 1,024; file size 1 GiB (in 512-byte blocks); no core
    // dumps; 256 processes.
    let shown = text(&out.stdout);
    assert!(
        shown.starts_with("1024\n2097152\n0\n"),
        "{}",
        describe(&out)
    );
    let procs = shown
        .lines()
        .find(|l| l.starts_with("Max processes"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("");
    assert_eq!(procs, "256", "{shown}");
}

#[test]
fn allow_network_gives_tasks_the_hosts_network_and_nothing_else_does() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let probe = format!(
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=5).close()\n    print('connected')\nexcept OSError as e:\n    print('refused', e.errno)\n"
    );
    let open = Cluster::start_with(&["--allow", PY, "--allow-network"]);
    let out = open.run(&[], &[PY, "-c", &probe]);
    assert_eq!(text(&out.stdout), "connected\n", "{}", describe(&out));
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_ok(), "the host's port saw the task");
    let closed = Cluster::start(&[PY]);
    let out = closed.run(&[], &[PY, "-c", &probe]);
    assert!(
        text(&out.stdout).starts_with("refused"),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_worker_that_is_not_root_reports_the_layers_it_lacks_as_off() {
    let sb = Sandbox::new();
    let nobody = 65534;
    std::fs::set_permissions(sb.dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut cmd = Command::new("setpriv");
    sb.isolate(&mut cmd);
    cmd.args([
        &format!("--reuid={nobody}"),
        &format!("--regid={nobody}"),
        "--clear-groups",
    ])
    .arg(fabric_bin())
    .args([
        "up",
        "--workers",
        "1",
        "--listen",
        "127.0.0.1:0",
        "--allow",
        "echo",
    ])
    .arg("--cluster")
    .arg(sb.dir.path().join("cluster.toml"));
    let mut up = Proc::spawn("up", cmd, sb.dir.path());
    up.wait_for_line("ready", Duration::from_secs(60));
    let said = up.wait_for_stderr("sandbox layers:", Duration::from_secs(30));
    for off in [
        "unprivileged uid OFF",
        "cgroup memory OFF",
        "cgroup pids OFF",
        "disk limit OFF",
    ] {
        assert!(said.contains(off), "{off} missing: {said}");
    }
    up.sigterm();
    assert!(up.wait(Duration::from_secs(30)).success());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_worker_checks_its_own_allow_list_whatever_a_manifest_names() {
    let sb = Sandbox::new();
    let fake = FakeDispatcher::start_with(&sb, HashMap::new(), &["--allow", "echo"]).await;
    let mut m = manifest(fabric_proto::Sha256::of(b""), b"");
    m.kind = TaskKind::command("sh");
    m.args = vec!["-c".into(), "echo ran".into()];
    let signed: Signed<_> = fake.sign(&m);
    let reason = refused(fake.assign(signed, b"").await);
    assert!(
        reason.contains("\"sh\" is not on this worker's allow-list"),
        "{reason}"
    );
}

#[test]
fn a_slow_reader_loses_live_chunks_but_never_the_result() {
    let c = Cluster::start(&["sh"]);
    let mut child = c
        .cmd()
        .args([
            "run",
            "--output-limit",
            "7MiB",
            "--",
            "sh",
            "-c",
            "i=0; while [ $i -lt 70000 ]; do echo line-$i-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; i=$((i+1)); done",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // The id, from `fabric run`'s first line on stderr.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut first).unwrap();
    let id = first
        .split_whitespace()
        .find(|w| w.len() > 30)
        .map(|w| w.trim_end_matches(','))
        .unwrap_or_else(|| panic!("no task id in {first:?}"))
        .to_owned();
    // A reader that takes nothing until the task has ended: its pipe fills
    // and the live chunks back up behind it.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = c
            .cmd()
            .args(["status", &id, "--json"])
            .output_in_time()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if v["status"] == "succeeded" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the task never ended: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut got = String::new();
    stdout.read_to_string(&mut got).unwrap();
    assert!(child.wait().unwrap().success());
    // About 6 MB: far more live chunks (16 KiB at most each) than a slow
    // reader's buffers hold (256 events), so some are dropped on the way.
    let expected: String = (0..70_000)
        .map(|i| format!("line-{i}-{}\n", "x".repeat(68)))
        .collect();
    // The result is whole.
    let result = c.cmd().args(["result", &id]).output_in_time().unwrap();
    assert!(
        result.stdout == expected.as_bytes(),
        "`fabric result` lost or changed output: {} bytes of {}",
        result.stdout.len(),
        expected.len()
    );
    // `fabric run` printed the live chunks it got, then, where they had
    // gaps, the whole kept output again: it always ends with all of it,
    // and what came before is lines of it, in order (README: a slow
    // reader loses live chunks, never the result).
    assert!(
        got.ends_with(&expected),
        "`fabric run` did not end with the whole output ({} bytes printed)",
        got.len()
    );
    // (A chunk after a gap may start mid-line: only whole lines count.)
    let live = &got[..got.len() - expected.len()];
    let mut next = 0;
    for l in live.lines().filter(|l| l.starts_with("line-")) {
        let n: usize = l["line-".len()..]
            .split('-')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("not a line of the output: {l:?}"));
        assert!(n >= next, "live lines out of order at {l:?}");
        next = n + 1;
    }
}

#[test]
fn the_dispatcher_refuses_paths_that_leave_the_task_dir() {
    let c = fabric_tests::harness::rest::RestCluster::start(&["--allow", "sh"]);
    let sha = "0".repeat(64);
    for (files, outputs) in [
        (
            serde_json::json!([{"path": "../x", "sha256": sha, "len": 1}]),
            serde_json::json!([]),
        ),
        (
            serde_json::json!([{"path": "/etc/x", "sha256": sha, "len": 1}]),
            serde_json::json!([]),
        ),
        (
            serde_json::json!([{"path": "a/../../x", "sha256": sha, "len": 1}]),
            serde_json::json!([]),
        ),
        (serde_json::json!([]), serde_json::json!(["../*.o"])),
        (serde_json::json!([]), serde_json::json!(["/tmp/*"])),
    ] {
        let body = serde_json::json!({"command": "sh", "args": ["-c", "true"], "files": files, "outputs": outputs});
        let a = c.post_json("/api/v1/tasks", Some(&c.admin), &body);
        assert_eq!(a.status, 400, "{body}: {a:?}");
        assert_eq!(a.code(), "bad_request", "{a:?}");
    }
}
