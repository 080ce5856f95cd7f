//! A local cluster for native tasks: `fabric up` with one worker allowing
//! the programs a test names, on a free loopback port.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::cluster::{fabric_cmd, fabric_cmd_with_nofile};
use super::deadline::OutputWithin as _;
use super::process::Proc;
use super::sandbox::Sandbox;

/// `fabric up` with one local worker allowing `allow`, on a free port.
pub struct NativeCluster {
    /// Its home.
    pub sb: Sandbox,
    /// The `fabric up` process.
    pub up: Proc,
    /// Its cluster profile.
    pub profile: PathBuf,
}

impl NativeCluster {
    /// Starts it; returns once its worker joined.
    pub fn start(allow: &[&str]) -> Self {
        let flags: Vec<&str> = allow.iter().flat_map(|a| ["--allow", *a]).collect();
        let (sb, up, profile, _) = up_one_worker(&flags);
        Self { sb, up, profile }
    }

    /// Starts it with these `fabric up` flags (`--allow` among them).
    pub fn start_with(flags: &[&str]) -> Self {
        let (sb, up, profile, _) = up_one_worker(flags);
        Self { sb, up, profile }
    }

    /// A `fabric` command on its profile.
    pub fn cmd(&self) -> Command {
        let mut cmd = fabric_cmd(&self.sb, None);
        cmd.arg("--cluster").arg(&self.profile);
        cmd
    }

    /// `fabric run --detach [flags] -- command...`: the task id (the
    /// command must be queued).
    pub fn detach(&self, flags: &[&str], command: &[&str]) -> String {
        let out = self
            .cmd()
            .arg("run")
            .arg("--detach")
            .args(flags)
            .arg("--")
            .args(command)
            .output_in_time()
            .expect("fabric run --detach");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            super::sandbox::describe(&out)
        );
        text(&out.stdout).trim().to_owned()
    }

    /// `fabric run [flags] -- command...` to its end.
    pub fn run(&self, flags: &[&str], command: &[&str]) -> Output {
        self.cmd()
            .arg("run")
            .args(flags)
            .arg("--")
            .args(command)
            .output_in_time()
            .expect("fabric run")
    }
}

impl Drop for NativeCluster {
    fn drop(&mut self) {
        // A test that failed may leave a long task running, which a
        // graceful stop would drain: then only kill (Proc's drop), so the
        // failure is reported instead of a panic in a destructor aborting
        // the whole run.
        if !std::thread::panicking() {
            let _ = self.up.terminate(Duration::from_secs(30));
        }
    }
}

/// Bytes as text, lossily.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `fabric up` with one worker (2 slots) on a loopback port and `flags`, in
/// a fresh sandbox, writing its profile there; returns once the worker
/// joined, with the lines it printed up to "ready".
pub fn up_one_worker(flags: &[&str]) -> (Sandbox, Proc, PathBuf, Vec<String>) {
    up_one_worker_with_nofile(flags, None)
}

/// [`up_one_worker`], with its open-file limit (soft and hard) set to
/// `nofile` when given.
pub fn up_one_worker_with_nofile(
    flags: &[&str],
    nofile: Option<u64>,
) -> (Sandbox, Proc, PathBuf, Vec<String>) {
    let sb = Sandbox::new();
    let (up, profile, lines) = up_one_worker_nofile_in(&sb, flags, nofile, "info");
    (sb, up, profile, lines)
}

/// [`up_one_worker`] logging at `log` (a `FABRIC_LOG` filter: `debug` is
/// what `-vv` gives).
pub fn up_one_worker_logged(flags: &[&str], log: &str) -> (Sandbox, Proc, PathBuf, Vec<String>) {
    let sb = Sandbox::new();
    let (up, profile, lines) = up_one_worker_nofile_in(&sb, flags, None, log);
    (sb, up, profile, lines)
}

/// [`up_one_worker`] in `sb`, whose data (the worker's key, so its work
/// root too) a `fabric up` before it may have left.
pub fn up_one_worker_in(sb: &Sandbox, flags: &[&str]) -> (Proc, PathBuf, Vec<String>) {
    up_one_worker_nofile_in(sb, flags, None, "info")
}

fn up_one_worker_nofile_in(
    sb: &Sandbox,
    flags: &[&str],
    nofile: Option<u64>,
    log: &str,
) -> (Proc, PathBuf, Vec<String>) {
    let profile = sb.dir.path().join("cluster.toml");
    let mut cmd = match nofile {
        Some(n) => fabric_cmd_with_nofile(sb, n),
        None => fabric_cmd(sb, None),
    };
    cmd.args([
        "up",
        "--workers",
        "1",
        "--slots",
        "2",
        "--listen",
        "127.0.0.1:0",
    ])
    .arg("--cluster")
    .arg(&profile)
    .args(flags)
    .env("FABRIC_LOG", log);
    let mut up = Proc::spawn("up", cmd, sb.dir.path());
    let lines = up.wait_for_line("ready", Duration::from_secs(60));
    up.wait_for_stderr("joined", Duration::from_secs(30));
    (up, profile, lines)
}

/// Host processes (pid, uid, command line) whose command line contains
/// `marker`, `fabric`'s own left out.
pub fn processes_with(marker: &str) -> Vec<String> {
    let out = Command::new("ps")
        .args(["-eo", "pid=,uid=,args="])
        .output_in_time()
        .expect("ps (procps)");
    text(&out.stdout)
        .lines()
        .filter(|l| l.contains(marker) && !l.contains("fabric"))
        .map(str::to_owned)
        .collect()
}

/// Waits (bounded) until no host process carries `marker`.
pub fn none_left(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_with(marker);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (bounded) until a host process carries `marker`; its lines.
pub fn started(marker: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = processes_with(marker);
        if !found.is_empty() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "no process with {marker:?} started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The host dir of native task `id` (a task id as `run --detach` prints
/// it), once its helper runs: found from the helper's command line
/// (`fabric __native-helper <work root>/<worker>.<task>-<attempt>/spec.json`).
pub fn task_dir(id: &str) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new("ps")
            .args(["-eo", "args="])
            .output_in_time()
            .expect("ps (procps)");
        let found = text(&out.stdout).lines().find_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "__native-helper")?;
            let spec = PathBuf::from(words.next()?);
            let dir = spec.parent()?.to_path_buf();
            dir.file_name()?.to_str()?.contains(id).then_some(dir)
        });
        if let Some(dir) = found {
            return dir;
        }
        assert!(Instant::now() < deadline, "no helper for task {id} started");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (bounded) until `path` is gone.
pub fn gone(path: &std::path::Path) {
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

/// `fabric --cluster PROFILE ARGS...` in `sb`, run to completion (within
/// the deadline).
pub fn fabric_on(sb: &Sandbox, profile: &std::path::Path, args: &[&str]) -> Output {
    sb.fabric()
        .arg("--cluster")
        .arg(profile)
        .args(args)
        .output_in_time()
        .unwrap()
}
