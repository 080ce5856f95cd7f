//! The only place that writes to the terminal: task output, summaries,
//! progress, guest logs, tables and errors, in human or JSON form.
//!
//! Each printable thing has a view in [`json`] (the `--json` contract) and a
//! human renderer beside it; [`Output::emit`] picks one, so the choice
//! between the two is made in one place. Write errors (a closed pipe) are
//! ignored: there is nobody left to tell.

mod admin;
mod at_rest;
mod demo;
mod job;
mod jobs;
mod json;
mod report;
mod schedules;
mod table;

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;

use fabric_net::{JoinToken, PublicKey};
use fabric_proto::wire::WorkerSummary;
use fabric_proto::{TaskId, TaskInfo};
use serde::Serialize;

pub(crate) use at_rest::{Rewrap, Transfer};
pub(crate) use demo::{DemoJob, DemoMapReduce, FanOut};
pub(crate) use job::JobProgress;
pub(crate) use report::Reporter;

use json::{SubmittedView, TaskView, WorkerView};

/// How a command prints its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    /// Text and tables for people.
    Human,
    /// One JSON value per line, for scripts.
    Json,
}

impl Output {
    /// `Json` when `--json` was given.
    pub(crate) fn new(json: bool) -> Self {
        if json { Self::Json } else { Self::Human }
    }

    /// Prints `view()` as one line of JSON, or `human()` as text.
    fn emit<V: Serialize>(self, view: impl FnOnce() -> V, human: impl FnOnce() -> String) {
        match self {
            Self::Json => json_line(&view()),
            Self::Human => stdout_line(&human()),
        }
    }

    /// Prints text that has no JSON counterpart (headers, decoration).
    fn human(self, text: impl FnOnce() -> String) {
        if self == Self::Human {
            stdout_line(&text());
        }
    }

    /// A queued task's id.
    pub(crate) fn submitted(self, id: &TaskId) {
        self.emit(|| SubmittedView::new(id), || id.to_string());
    }

    /// One task's state (`status`, `cancel`).
    pub(crate) fn task(self, info: &TaskInfo) {
        self.emit(|| TaskView::new(info), || table::status_line(info));
    }

    /// A task table.
    pub(crate) fn tasks(self, tasks: &[TaskInfo]) {
        self.emit(
            || tasks.iter().map(TaskView::new).collect::<Vec<_>>(),
            || table::tasks(tasks),
        );
    }

    /// A worker table.
    pub(crate) fn workers(self, workers: &[WorkerSummary]) {
        self.emit(
            || workers.iter().map(WorkerView::new).collect::<Vec<_>>(),
            || table::workers(workers),
        );
    }
}

/// Prints an error and its causes to stderr.
pub(crate) fn error(err: &anyhow::Error) {
    let _ = writeln!(std::io::stderr().lock(), "error: {}", one_line(err));
}

/// An error and its causes on one line, each said once: a cause whose text
/// its parent already shows (errors that print their source) is skipped.
fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// A warning on stderr: something the user should know, not a failure.
pub(crate) fn warning(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "fabric: warning: {text}");
}

/// One line on stderr, beside the result on stdout.
pub(crate) fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// A worker's notice as one line on stderr (`name` prefixes it when several
/// workers share the terminal, as under `fabric up`).
pub(crate) fn worker_notice(name: Option<&str>, notice: &fabric_worker::Notice) {
    use fabric_worker::Notice;
    // Local workers (`fabric up`) reach their dispatcher in the same
    // process: saying they try would be noise.
    if name.is_some() && matches!(notice, Notice::Connecting { .. }) {
        return;
    }
    let line = match notice {
        Notice::Started {
            name,
            key,
            slots,
            memory_bytes,
        } => format!(
            "worker {name}: key {key}, {slots} slot{}, {} for tasks",
            if *slots == 1 { "" } else { "s" },
            fabric_proto::format_size(*memory_bytes)
        ),
        Notice::Joined {
            dispatcher,
            adopted: 0,
        } => format!("joined {dispatcher}"),
        Notice::Joined {
            dispatcher,
            adopted,
        } => format!("joined {dispatcher}; kept {adopted} runs from before"),
        Notice::Connecting {
            dispatcher: Some(addr),
        } => format!("trying to reach the dispatcher at {addr}"),
        Notice::Connecting { dispatcher: None } => "looking for the dispatcher on mDNS".to_owned(),
        Notice::Unreachable { reason, retry_in } => {
            format!("{reason}; retrying in {:.1} s", retry_in.as_secs_f64())
        }
        Notice::Native { allowed, layers } => format!(
            "native commands allowed: {}; sandbox layers: {layers}",
            allowed.join(", ")
        ),
        Notice::Draining { running } => format!(
            "draining {running} running task{}; Ctrl-C again to stop now",
            if *running == 1 { "" } else { "s" }
        ),
        _ => return,
    };
    match name {
        Some(n) if !matches!(notice, Notice::Started { .. }) => note(&format!("{n}: {line}")),
        _ => note(&line),
    }
}

/// What a starting dispatcher tells its operator.
pub(crate) fn served(
    addr: &SocketAddr,
    key: &PublicKey,
    token: &JoinToken,
    profile: &Path,
    api_url: Option<&str>,
    api_token: Option<&str>,
) {
    stdout_line(&format!(
        "dispatcher listening on {addr} (QUIC, ALPN fabric/1)\n\
         dispatcher key {key}\n\
         join token {token}"
    ));
    if let Some(url) = api_url {
        stdout_line(&format!(
            "REST API on {url}/api/v1 (OpenAPI at {url}/api/v1/openapi.json; an admin token is api_token in the profile)"
        ));
        match api_token {
            Some(token) => stdout_line(&format!("dashboard {url}/#token={token}")),
            None => stdout_line(&format!("dashboard {url}/ (it asks for a token)")),
        }
    }
    stdout_line(&format!("cluster profile written to {}", profile.display()));
}

/// How the store is encrypted at rest, said once at start; a warning when
/// the key that wraps the data keys sits beside the data.
pub(crate) fn at_rest(keys: &fabric_dispatcher::KeyState, store: &Path) {
    match keys.wrap {
        fabric_dispatcher::KeyWrap::Operator => stdout_line(&format!(
            "encrypted at rest: data key {} (AES-256-GCM), wrapped by the operator key {}",
            keys.active, keys.fingerprint
        )),
        fabric_dispatcher::KeyWrap::Local => stdout_line(&format!(
            "encrypted at rest: data key {} (AES-256-GCM), but its wrapping key sits beside the data in {}; pass --key-file FILE (make one with `fabric admin gen-key`) to keep it elsewhere",
            keys.active,
            store.join("keyring.local-key").display()
        )),
    }
}

/// Bytes as they are on stdout (a completion script, a man page).
pub(crate) fn raw(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(bytes);
    let _ = out.flush();
}

/// What `fabric new` wrote, and what to do next.
pub(crate) fn created(dir: &Path, name: &str) {
    let d = dir.display();
    stdout_line(&format!(
        "created task crate {name} in {d} (with the guest SDK in {d}/fabric-guest)\n\
         next:\n  \
         cd {d}\n  \
         fabric exec . --input input.json      # build for wasm32-wasip1 and run it here\n  \
         cargo test                            # test the work on this machine\n  \
         fabric submit . --input input.json --wait"
    ));
}

/// The readiness line tests and scripts wait for.
pub(crate) fn ready() {
    stdout_line("ready");
}

fn stdout_line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

fn json_line(view: &impl Serialize) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, view);
    let _ = writeln!(out);
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("connection failed: {0}")]
    struct Shows(#[source] std::io::Error);

    #[test]
    fn a_cause_its_parent_already_shows_is_said_once() {
        let inner = std::io::Error::other("timed out");
        let err = anyhow::Error::new(Shows(inner)).context("cannot reach 127.0.0.1:7070");
        assert_eq!(
            one_line(&err),
            "cannot reach 127.0.0.1:7070: connection failed: timed out"
        );
    }
}
