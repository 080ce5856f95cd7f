//! A native task's life ends with it: at timeout, cancel and worker
//! stop every process of it is killed through its cgroup, and a worker
//! killed with its tasks running leaves nothing after its next start
//! (issue 20, item 1 and 7), against a real `fabric up`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::native::{
    NativeCluster as Cluster, gone, none_left, started, task_dir, text, up_one_worker_in,
};
use fabric_tests::harness::sandbox::{Sandbox, describe};

/// Debian's Python (a task sees only the system's directories; `.ci/run`
/// installs it).
const PY: &str = "/usr/bin/python3";

/// Python that clears its parent-death signal, forks a child that does
/// the same, leaves its session, points stdio at /dev/null and lives on;
/// the parent sleeps. `argv[1]` is the marker `ps` finds them by.
const CLINGER: &str = r#"
import ctypes, os, sys, time
libc = ctypes.CDLL(None)
libc.prctl(1, 0)
if os.fork() == 0:
    libc.prctl(1, 0)
    os.setsid()
    fd = os.open("/dev/null", os.O_RDWR)
    for i in (0, 1, 2):
        os.dup2(fd, i)
    while True:
        time.sleep(0.2)
else:
    print("started", flush=True)
    time.sleep(1000)
"#;

/// The cgroup dirs (v1 and v2) a host process is in, under a task group.
fn task_groups_of(pid: &str) -> Vec<PathBuf> {
    let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    cg.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
            path.contains("fabric-tasks/").then(|| {
                let controller = names.split(',').next().unwrap_or("");
                let base = Path::new("/sys/fs/cgroup");
                match controller {
                    "" => base.join(path.trim_start_matches('/')),
                    c => base.join(c).join(path.trim_start_matches('/')),
                }
            })
        })
        .collect()
}

#[test]
fn a_program_that_clears_its_death_signal_dies_at_timeout_and_cancel_with_nothing_left() {
    let c = Cluster::start(&[PY]);
    // Timeout: the task ends at its limit, and with it every process,
    // its cgroups and its dir.
    let marker = "clinger-9741";
    let out = c.run(&["--timeout", "2s"], &[PY, "-c", CLINGER, marker]);
    assert_eq!(out.status.code(), Some(124), "{}", describe(&out));
    none_left(marker);

    // Cancel: the same, with the groups and the dir checked while it runs.
    let marker = "clinger-9742";
    let id = c.detach(&["--timeout", "5m"], &[PY, "-c", CLINGER, marker]);
    let dir = task_dir(&id);
    let procs = started(marker);
    // Both the program and its escaped child.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut procs = procs;
    while procs.len() < 2 {
        assert!(
            Instant::now() < deadline,
            "the child never started: {procs:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
        procs = started(marker);
    }
    let pid = procs[0].split_whitespace().next().unwrap().to_owned();
    let groups = task_groups_of(&pid);
    assert!(!groups.is_empty(), "the task runs in cgroups: {pid}");
    let out = c.cmd().args(["cancel", &id]).output_in_time().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    none_left(marker);
    gone(&dir);
    for g in &groups {
        gone(g);
    }
    let out = c
        .cmd()
        .args(["status", &id, "--json"])
        .output_in_time()
        .unwrap();
    assert!(
        text(&out.stdout).contains("\"cancelled\""),
        "{}",
        describe(&out)
    );
}

#[test]
fn a_worker_killed_with_its_tasks_running_leaves_nothing_after_its_next_start() {
    let sb = Sandbox::new();
    let (mut up, profile, _) = up_one_worker_in(&sb, &["--allow", PY]);
    let cmd = || {
        let mut cmd = sb.fabric();
        cmd.arg("--cluster").arg(&profile);
        cmd
    };
    let marker = "clinger-9743";
    let out = cmd()
        .args([
            "run",
            "--detach",
            "--timeout",
            "5m",
            "--",
            PY,
            "-c",
            CLINGER,
            marker,
        ])
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let id = text(&out.stdout).trim().to_owned();
    let dir = task_dir(&id);
    let procs = started(marker);
    let pid = procs[0].split_whitespace().next().unwrap().to_owned();
    let groups = task_groups_of(&pid);
    assert!(!groups.is_empty(), "the task runs in cgroups");
    up.kill9();
    // The helpers die with the worker, and the task's init with them:
    // the pid namespace goes, the program's cleared death signal
    // notwithstanding. Its dir and groups are what stays.
    none_left(marker);
    assert!(dir.exists(), "{} left by the killed worker", dir.display());
    // The next start with the same data (the same work root) sweeps them.
    let (mut up, _, _) = up_one_worker_in(&sb, &["--allow", PY]);
    gone(&dir);
    for g in &groups {
        gone(g);
    }
    assert!(
        up.stderr()
            .contains("swept what native tasks of a stopped worker left"),
        "{}",
        up.stderr()
    );
    // The task itself runs again (its attempt was lost with the worker);
    // a cancel ends that one.
    started(marker);
    let out = cmd().args(["cancel", &id]).output_in_time().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    none_left(marker);
    up.sigterm();
    assert!(up.wait(Duration::from_secs(30)).success());
}

#[test]
fn a_worker_stopped_with_a_task_running_leaves_nothing_behind() {
    let sb = Sandbox::new();
    let (mut up, profile, _) = up_one_worker_in(&sb, &["--allow", PY]);
    let marker = "clinger-9745";
    let out = sb
        .fabric()
        .arg("--cluster")
        .arg(&profile)
        .args([
            "run",
            "--detach",
            "--timeout",
            "5m",
            "--",
            PY,
            "-c",
            CLINGER,
            marker,
        ])
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let id = text(&out.stdout).trim().to_owned();
    let dir = task_dir(&id);
    started(marker);
    // The first signal drains (the task may finish); the second stops now.
    up.sigterm();
    up.wait_for_stderr("draining", Duration::from_secs(30));
    up.sigterm();
    up.wait(Duration::from_secs(30));
    none_left(marker);
    gone(&dir);
}
