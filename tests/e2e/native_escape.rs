//! The native sandbox against a task that tries to get out of it: each
//! test is a reviewer's repro (issue 20) that worked before the fix, run
//! against a real `fabric up` with real helpers, namespaces, landlock,
//! seccomp and cgroups.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::native::{NativeCluster as Cluster, gone, task_dir, text};
use fabric_tests::harness::sandbox::{Sandbox, describe};

/// Debian's Python (a task sees only the system's directories; `.ci/run`
/// installs it).
const PY: &str = "/usr/bin/python3";

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
    let id = c.detach(
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
