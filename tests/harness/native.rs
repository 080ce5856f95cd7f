//! A local cluster for native tasks: `fabric up` with one worker allowing
//! the programs a test names, on a free loopback port.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use super::cluster::{fabric_cmd, fabric_cmd_with_nofile};
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

    /// A `fabric` command on its profile.
    pub fn cmd(&self) -> Command {
        let mut cmd = fabric_cmd(&self.sb, None);
        cmd.arg("--cluster").arg(&self.profile);
        cmd
    }

    /// `fabric run [flags] -- command...` to its end.
    pub fn run(&self, flags: &[&str], command: &[&str]) -> Output {
        self.cmd()
            .arg("run")
            .args(flags)
            .arg("--")
            .args(command)
            .output()
            .expect("fabric run")
    }
}

impl Drop for NativeCluster {
    fn drop(&mut self) {
        let _ = self.up.terminate(Duration::from_secs(30));
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
    let profile = sb.dir.path().join("cluster.toml");
    let mut cmd = match nofile {
        Some(n) => fabric_cmd_with_nofile(&sb, n),
        None => fabric_cmd(&sb, None),
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
    .args(flags);
    let mut up = Proc::spawn("up", cmd, sb.dir.path());
    let lines = up.wait_for_line("ready", Duration::from_secs(60));
    up.wait_for_stderr("joined", Duration::from_secs(30));
    (sb, up, profile, lines)
}
