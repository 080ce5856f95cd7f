//! The native sandbox against a task that tries to get out of it: each
//! test is a reviewer's repro (issue 20) that worked before the fix, run
//! against a real `fabric up` with real helpers, namespaces, landlock,
//! seccomp and cgroups.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::native::{
    NativeCluster as Cluster, none_left, started, task_dir, text, up_one_worker_in,
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

/// `fabric run [flags] -- command` in `dir` (where `--file` paths are).
fn run_in(c: &Cluster, dir: &Path, flags: &[&str], command: &[&str]) -> std::process::Output {
    c.cmd()
        .current_dir(dir)
        .arg("run")
        .args(flags)
        .arg("--")
        .args(command)
        .output_in_time()
        .expect("fabric run")
}

/// `fabric run --detach` of `command`; the task id.
fn detach(c: &Cluster, flags: &[&str], command: &[&str]) -> String {
    let out = c
        .cmd()
        .arg("run")
        .arg("--detach")
        .args(flags)
        .arg("--")
        .args(command)
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    text(&out.stdout).trim().to_owned()
}

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

/// Waits (bounded) until `path` is gone.
fn gone(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} is still there",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
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
    let id = detach(&c, &["--timeout", "5m"], &[PY, "-c", CLINGER, marker]);
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
fn loader_variables_are_refused_at_submit_naming_the_variable() {
    let c = Cluster::start(&["tr", "env"]);
    for var in [
        "LD_PRELOAD=/work/bypass.so",
        "LD_LIBRARY_PATH=/work",
        "GCONV_PATH=/work",
        "GLIBC_TUNABLES=glibc.malloc.check=3",
        "MALLOC_ARENA_MAX=1",
        "HOSTALIASES=/work/h",
    ] {
        let name = var.split('=').next().unwrap();
        let out = c.run(&["--input", "-", "-e", var], &["tr", "a", "b"]);
        assert_eq!(out.status.code(), Some(2), "{var}: {}", describe(&out));
        assert!(
            text(&out.stderr).contains(name),
            "the refusal names {name}: {}",
            describe(&out)
        );
    }
    // Ordinary names pass, and reach the program.
    let out = c.run(&["-e", "CFLAGS=-O2"], &["env"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        text(&out.stdout).contains("CFLAGS=-O2"),
        "{}",
        describe(&out)
    );
}

/// A shared object that, loaded, prints a line.
fn build_so(sb: &Sandbox) -> PathBuf {
    let src = sb.write(
        "hook.c",
        b"#include <stdio.h>\n__attribute__((constructor)) static void hook(void) { puts(\"HOOKED\"); }\n",
    );
    let so = sb.dir.path().join("hook.so");
    let out = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&so)
        .arg(&src)
        .output_in_time()
        .expect("cc (gcc; .ci/run installs it)");
    assert!(out.status.success(), "{}", describe(&out));
    so
}

#[test]
fn files_a_task_writes_or_stages_cannot_be_run_unless_the_worker_opted_in() {
    let c = Cluster::start(&["sh", PY]);
    let sb = Sandbox::new();
    let script = sb.write("hello.sh", b"#!/bin/sh\necho RAN\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let so = build_so(&sb);
    let tries = [
        // A staged script, and a copy of a system program in /tmp.
        vec!["sh", "-c", "./hello.sh"],
        vec!["sh", "-c", "cp /bin/echo /tmp/e && /tmp/e RAN"],
        // A staged library loaded into an allowed interpreter.
        vec![
            PY,
            "-c",
            "import ctypes; ctypes.CDLL('/work/hook.so'); print('RAN')",
        ],
    ];
    assert!(script.exists() && so.exists());
    let files = ["--file", "hello.sh", "--file", "hook.so"];
    let here = sb.dir.path();
    for cmd in &tries {
        let out = run_in(&c, here, &files, cmd);
        assert_ne!(out.status.code(), Some(0), "{cmd:?}: {}", describe(&out));
        assert!(
            !text(&out.stdout).contains("RAN") && !text(&out.stdout).contains("HOOKED"),
            "{cmd:?}: {}",
            describe(&out)
        );
        // Refused by the sandbox (exec or mmap of the file), not by
        // anything before it.
        let said = text(&out.stderr);
        assert!(
            said.contains("Permission denied") || said.contains("failed to map segment"),
            "{cmd:?}: {}",
            describe(&out)
        );
    }
    // The mounts say so inside.
    let out = c.run(&[], &["sh", "-c", "cat /proc/self/mountinfo"]);
    let mounts = text(&out.stdout);
    for point in ["/work", "/tmp", "/dev"] {
        let line = mounts
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(point))
            .unwrap_or_else(|| panic!("{point} is mounted: {mounts}"));
        for opt in ["nosuid", "nodev", "noexec"] {
            assert!(line.contains(opt), "{point} lacks {opt}: {line}");
        }
    }

    // A worker that opted in runs them, and says so in `fabric workers`.
    let opted = Cluster::start_with(&["--allow", "sh", "--allow", PY, "--allow-exec-in-work"]);
    for cmd in &tries {
        let out = run_in(&opted, here, &files, cmd);
        assert_eq!(out.status.code(), Some(0), "{cmd:?}: {}", describe(&out));
        assert!(
            text(&out.stdout).contains("RAN"),
            "{cmd:?}: {}",
            describe(&out)
        );
    }
    let out = opted.cmd().arg("workers").output_in_time().unwrap();
    assert!(
        text(&out.stdout).contains("exec-in-work"),
        "{}",
        describe(&out)
    );
    let out = c.cmd().arg("workers").output_in_time().unwrap();
    assert!(
        !text(&out.stdout).contains("exec-in-work"),
        "{}",
        describe(&out)
    );
}

#[test]
fn only_socket_families_the_network_namespace_isolates_can_be_made() {
    let c = Cluster::start(&[PY]);
    // vsock (reaches the hypervisor), alg, packet, ipx, appletalk,
    // bluetooth, xdp, and a family past every known one.
    let probe = r#"
import socket
for fam in (40, 38, 17, 4, 5, 31, 44, 63):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_SEQPACKET, socket.SOCK_RAW):
        try:
            socket.socket(fam, kind).close()
            print("MADE", fam, kind)
        except OSError as e:
            if e.errno != 97:
                print("OTHER", fam, kind, e.errno)
for fam in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6):
    socket.socket(fam, socket.SOCK_STREAM).close()
    print("ok", fam)
"#;
    let out = c.run(&[], &[PY, "-c", probe]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let shown = text(&out.stdout);
    assert!(!shown.contains("MADE"), "{shown}");
    assert!(
        !shown.contains("OTHER"),
        "refused with another errno than EAFNOSUPPORT: {shown}"
    );
    assert_eq!(shown.matches("ok ").count(), 3, "{shown}");
}

#[test]
fn a_task_has_a_disk_limit_the_kernel_enforces_staged_files_included() {
    let c = Cluster::start(&["sh"]);
    // /work and /tmp together: 6 + 6 MB do not fit in 8 MiB.
    let out = c.run(
        &["--disk", "8MiB"],
        &[
            "sh",
            "-c",
            "head -c 6000000 /dev/zero > /tmp/a && head -c 6000000 /dev/zero > /work/b && echo WROTE",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(!text(&out.stdout).contains("WROTE"), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("disk limit of 8 MiB"),
        "{}",
        describe(&out)
    );
    // 40 MB into /work with the default memory: far past a 16 MiB disk.
    let out = c.run(
        &["--disk", "16MiB"],
        &[
            "sh",
            "-c",
            "head -c 40000000 /dev/zero > /work/big; du -k /work/big",
        ],
    );
    let kib: u64 = text(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(kib <= 16 << 10, "wrote {kib} KiB: {}", describe(&out));
    // Staged files count: 10 MB staged into a 4 MiB disk.
    let sb = Sandbox::new();
    let big = sb.write("big.bin", &vec![7u8; 10_000_000]);
    assert!(big.exists());
    let out = run_in(
        &c,
        sb.dir.path(),
        &["--disk", "4MiB", "--file", "big.bin"],
        &["sh", "-c", "echo RAN"],
    );
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(!text(&out.stdout).contains("RAN"));
    assert!(
        text(&out.stderr).contains("staged files do not fit in the task's disk limit of 4 MiB"),
        "{}",
        describe(&out)
    );
    // Over the cluster's maximum: refused at submit, in the flag's terms.
    let out = c.run(&["--disk", "64GiB"], &["sh", "-c", "true"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(text(&out.stderr).contains("--disk"), "{}", describe(&out));
}

#[test]
fn a_worker_caps_every_tasks_disk_at_its_max_task_disk() {
    let c = Cluster::start_with(&["--allow", "sh", "--max-task-disk", "8MiB"]);
    // It asked for 64 MiB and got this worker's 8 MiB: 20 MB do not fit.
    let out = c.run(
        &["--disk", "64MiB"],
        &[
            "sh",
            "-c",
            "head -c 20000000 /dev/zero > /work/big && echo WROTE",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(!text(&out.stdout).contains("WROTE"), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("disk limit of 8 MiB (this worker's --max-task-disk)"),
        "{}",
        describe(&out)
    );
    // Under the cap, a task gets what it asked for, and no more.
    let out = c.run(
        &["--disk", "4MiB"],
        &[
            "sh",
            "-c",
            "head -c 6000000 /dev/zero > /work/small && echo WROTE",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("disk limit of 4 MiB (/work and /tmp"),
        "{}",
        describe(&out)
    );
}

#[test]
fn the_host_side_of_a_task_is_private_and_setuid_files_are_inert() {
    let c = Cluster::start(&["sh"]);
    let id = detach(
        &c,
        &["--timeout", "5m", "-e", "SECRET=hunter2"],
        &[
            "sh",
            "-c",
            "cp /bin/sh /work/suid; chmod 4755 /work/suid; echo ready-9744; sleep 600",
        ],
    );
    let dir = task_dir(&id);
    let meta = std::fs::metadata(&dir).unwrap();
    assert_eq!(
        meta.permissions().mode() & 0o7777,
        0o710,
        "{}",
        dir.display()
    );
    assert_eq!(meta.uid(), 0, "the worker's");
    assert!(meta.gid() >= 200_000, "the task's own gid: {}", meta.gid());
    let spec = dir.join("spec.json");
    assert_eq!(
        std::fs::metadata(&spec).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Another local user reads nothing of it.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(&spec)
        .output_in_time()
        .expect("setpriv (util-linux)");
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(!text(&out.stdout).contains("hunter2"));
    // The task's files are on a nosuid, noexec mount of their own.
    let fs = dir.join("fs").display().to_string();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = mounts
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(fs.as_str()))
        .unwrap_or_else(|| panic!("{fs} is a mount: {mounts}"));
    for opt in ["nosuid", "nodev", "noexec"] {
        assert!(line.contains(opt), "{opt}: {line}");
    }
    let out = c.cmd().args(["cancel", &id]).output_in_time().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    gone(&dir);
}

#[test]
fn memory_kills_are_memory_exceeded_wherever_they_land() {
    let c = Cluster::start(&["sh"]);
    // Files in /tmp fill the memory cgroup: not "the helper ended without
    // a status".
    let out = c.run(
        &["--memory", "32MiB", "--timeout", "30s"],
        &[
            "sh",
            "-c",
            "head -c 64000000 /dev/zero > /tmp/fill; echo after",
        ],
    );
    assert_eq!(out.status.code(), Some(126), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("memory_exceeded"),
        "{}",
        describe(&out)
    );
    // A child killed by the limit under a parent that exits 0.
    let out = c.run(
        &["--memory", "32MiB", "--timeout", "30s"],
        &[
            "sh",
            "-c",
            "sh -c 'x=xxxxxxxxxxxxxxxx; while :; do x=$x$x; done'; exit 0",
        ],
    );
    assert_eq!(out.status.code(), Some(126), "{}", describe(&out));
    let out = c.run(&[], &["sh", "-c", "echo still serving"]);
    assert_eq!(text(&out.stdout), "still serving\n", "{}", describe(&out));
}

#[test]
fn rest_refuses_loader_variables_and_nul_bytes_with_400_naming_them() {
    let c = fabric_tests::harness::rest::RestCluster::start(&["--allow", "tr"]);
    let refused = [
        (
            serde_json::json!({"command": "tr", "args": ["a", "b"], "env": {"LD_PRELOAD": "/work/x.so"}}),
            "LD_PRELOAD",
        ),
        (
            serde_json::json!({"command": "tr", "args": ["a", "b"], "env": {"GCONV_PATH": "/work"}}),
            "GCONV_PATH",
        ),
        (
            serde_json::json!({"command": "tr", "args": ["a\u{0}b", "c"]}),
            "NUL",
        ),
        (
            serde_json::json!({"command": "tr", "args": ["a", "b"], "env": {"A\u{0}B": "x"}}),
            "NUL",
        ),
        (
            serde_json::json!({"command": "tr", "args": ["a", "b"], "env": {"A": "x\u{0}y"}}),
            "NUL",
        ),
    ];
    for (body, named) in refused {
        let a = c.post_json("/api/v1/tasks", Some(&c.admin), &body);
        assert_eq!(a.status, 400, "{body}: {a:?}");
        assert!(a.text.contains(named), "{body}: {a:?}");
    }
    // Nothing of them was stored.
    let a = c.get("/api/v1/tasks", Some(&c.admin));
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json["tasks"].as_array().map(Vec::len), Some(0), "{a:?}");
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
