//! What the worker hands its helper process (a JSON file beside the task's
//! scratch dir), and what the helper writes back when the program ended.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One native run, as the helper sets it up.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct HelperSpec {
    /// The allow-listed program (absolute, resolved at worker start).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its environment (nothing else is inherited).
    pub env: Vec<(String, String)>,
    /// The names of its secrets. Their values are not in this file (the
    /// worker writes no secret to disk): secret `i` is the helper's own
    /// environment variable `FABRIC_SECRET_<i>`.
    #[serde(default)]
    pub secret_names: Vec<String>,
    /// The host directory mounted read-write as `/work`, the working dir.
    pub scratch: PathBuf,
    /// The host directory mounted read-write as `/tmp`.
    pub tmp: PathBuf,
    /// Leave `noexec` off `/work` and `/tmp` (the worker's opt-in for
    /// builds that run what they make).
    pub exec_in_work: bool,
    /// An empty directory the sandbox's root is built on (inside the
    /// task's dir, so it goes with it even when the helper is killed).
    pub root: PathBuf,
    /// Host uid (and gid) to run as; `None`: the worker's own.
    pub uid: Option<u32>,
    /// Address-space limit, bytes.
    pub memory_bytes: u64,
    /// CPU seconds.
    pub cpu_secs: u64,
    /// Wall-clock seconds, after which the helper kills the tree (the
    /// worker has its own, tighter deadline too).
    pub timeout_secs: u64,
    /// Most processes (RLIMIT_NPROC, counted per uid).
    pub max_procs: u64,
    /// Most open files.
    pub max_files: u64,
    /// Largest file the program may write, bytes.
    pub max_file_bytes: u64,
    /// The task's groups (memory, pids), which the helper's launcher joins
    /// before it builds the sandbox, so everything the task starts is in
    /// them (and the helper is not).
    pub cgroups: Vec<PathBuf>,
    /// Apply landlock and seccomp (off only where the kernel lacks them).
    pub landlock: bool,
    /// See [`HelperSpec::landlock`].
    pub seccomp: bool,
    /// Keep the host's network (only when the worker's policy allows it).
    pub network: bool,
    /// Where the helper writes its [`HelperStatus`].
    pub status: PathBuf,
}

/// How the program ended, as the helper saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum HelperStatus {
    /// It exited with this code.
    Exited(i32),
    /// A signal ended it.
    Signaled(i32),
    /// The sandbox could not be set up; nothing ran.
    SetupFailed(String),
}

/// The helper's environment variable that carries secret `i`.
pub(crate) fn secret_var(i: usize) -> String {
    format!("FABRIC_SECRET_{i}")
}

/// The task's env as the program gets it: loader and libc variables
/// dropped (the dispatcher refuses them already; a worker never trusts
/// that alone).
pub(crate) fn task_env(env: &[(String, String)]) -> Vec<(String, String)> {
    env.iter()
        .filter(|(k, _)| {
            let unsafe_name = fabric_proto::is_unsafe_env(k);
            if unsafe_name {
                tracing::warn!(name = %k, "dropped a loader or libc variable from a task's env");
            }
            !unsafe_name
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worker_drops_loader_and_libc_variables_again() {
        let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let given = env(&[
            ("LD_PRELOAD", "/work/x.so"),
            ("CC", "gcc"),
            ("GCONV_PATH", "/work"),
            ("MALLOC_PERTURB_", "1"),
            ("LANG", "C"),
        ]);
        assert_eq!(task_env(&given), env(&[("CC", "gcc"), ("LANG", "C")]));
    }
}
