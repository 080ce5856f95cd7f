//! The task's init: pid 1 of its pid namespace, Fabric's own code, with
//! the program as its child.
//!
//! hakoniwa runs this (as a closure, in the process that would otherwise
//! exec the program) after the namespaces, the root, the rlimits, landlock
//! and seccomp are in place, so it is as confined as the program. It keeps
//! the parent-death signal hakoniwa gave it: when the helper above it
//! dies, it dies, and the death of a pid namespace's init kills every
//! process in that namespace. A program can clear its own parent-death
//! signal, daemonise and close its stdio; it cannot keep its namespace's
//! init alive, and so cannot outlive its task. The program is never pid 1,
//! so it cannot make itself immune to signals the way an init is.

use std::process::Command;

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

/// What init runs.
pub(crate) struct Program {
    path: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Program {
    /// The program at `path` with `args` and exactly `env`.
    pub fn new(path: &str, args: &[String], env: &[(String, String)]) -> Self {
        Self {
            path: path.to_owned(),
            args: args.to_vec(),
            env: env.to_vec(),
        }
    }
}

/// Runs as pid 1: starts the program, reaps every child, and returns the
/// program's exit code (128 + the signal when a signal ended it) once the
/// program itself ends. Whatever it left behind dies with this process.
pub(crate) fn run(program: &Program) -> i32 {
    // std's spawn (posix_spawn: no copy of this process's page tables)
    // with exactly the task's env; stdio and the working dir are init's.
    let child = Command::new(&program.path)
        .args(&program.args)
        .env_clear()
        .envs(program.env.iter().map(|(k, v)| (k, v)))
        .spawn();
    match child {
        // Reaped below with every orphan, not through `Child`.
        Ok(child) => reap_until(Pid::from_raw(child.id() as i32)),
        Err(e) => {
            report(&format!("fabric init: cannot run {}: {e}\n", program.path));
            if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            }
        }
    }
}

/// Reaps children (the program's orphans come here) until `child` ends.
fn reap_until(child: Pid) -> i32 {
    loop {
        match waitpid(Pid::from_raw(-1), None) {
            Ok(WaitStatus::Exited(pid, code)) if pid == child => return code,
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => return 128 + sig as i32,
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            // No child at all: the program is gone.
            Err(_) => return 127,
        }
    }
}

/// Writes to stderr (the task's) without allocating more.
fn report(message: &str) {
    let _ = nix::unistd::write(std::io::stderr(), message.as_bytes());
}
