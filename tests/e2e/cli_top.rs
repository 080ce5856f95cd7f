//! `fabric top` end to end, under tmux: it shows the cluster's workers,
//! updates when a task finishes, and `q` or SIGTERM gives the terminal
//! back.

use std::process::Command;
use std::time::{Duration, Instant};

use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::rest::RestCluster;
use fabric_tests::harness::sandbox::{describe, fabric_bin};
use serde_json::json;

const QUICK: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;

fn tmux(socket: &str, args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(["-L", socket])
        .args(args)
        .output_in_time()
        .expect("tmux is installed (.ci/run installs it)");
    assert!(out.status.success(), "tmux {args:?}: {}", describe(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pane_until(socket: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pane = tmux(socket, &["capture-pane", "-p", "-t", "top"]);
        if ok(&pane) {
            return pane;
        }
        assert!(Instant::now() < deadline, "{what} never showed:\n{pane}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A 160x40 session `top` running `cmd`.
fn top_session(socket: &str, cmd: &str) {
    tmux(
        socket,
        &[
            "new-session",
            "-d",
            "-s",
            "top",
            "-x",
            "160",
            "-y",
            "40",
            cmd,
        ],
    );
}

struct Server(String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.0, "kill-server"])
            .output_in_time();
    }
}

#[test]
fn top_shows_workers_follows_a_task_and_q_or_sigterm_restore_the_terminal() {
    let c = RestCluster::start(&[]);
    let socket = format!("fabric-top-{}", std::process::id());
    let _server = Server(socket.clone());
    let cmd = format!(
        "env -i HOME={home} PATH=/usr/bin:/bin TERM=xterm-256color {bin} --cluster {profile} top; echo TOP-EXITED $?; sleep 60",
        home = c.sb.dir.path().display(),
        bin = fabric_bin().display(),
        profile = c.profile.display(),
    );
    // A session that outlives the others keeps the tmux server up while
    // the dashboard's session is killed and made again.
    tmux(&socket, &["new-session", "-d", "-s", "keep", "sleep 600"]);
    top_session(&socket, &cmd);
    pane_until(&socket, "the worker", |p| {
        p.contains("local-0") && p.contains("ready")
    });
    // Once its event stream is open (nothing before it is replayed) ...
    tmux(&socket, &["send-keys", "-t", "top", "3"]);
    pane_until(&socket, "the open event stream", |p| {
        p.contains("following the cluster's events")
    });

    // A task submitted now shows up finished in the tasks view.
    let sha = c.module(&wat::parse_str(QUICK).unwrap());
    let id = c.submit(&json!({"module": sha, "trace": "top-1"}));
    tmux(&socket, &["send-keys", "-t", "top", "2"]);
    let pane = pane_until(&socket, "the finished task", |p| {
        p.contains(&id) && p.contains("succeeded")
    });
    assert!(pane.contains("top-1"), "{pane}");
    tmux(&socket, &["send-keys", "-t", "top", "3"]);
    pane_until(&socket, "the event log", |p| {
        p.contains(&format!("finished {id} succeeded"))
    });

    // q: the dashboard ends with 0 and the screen is the shell's again.
    tmux(&socket, &["send-keys", "-t", "top", "q"]);
    let pane = pane_until(&socket, "the exit", |p| p.contains("TOP-EXITED"));
    assert!(pane.contains("TOP-EXITED 0"), "{pane}");
    assert!(
        !pane.contains("local-0"),
        "the dashboard is still on screen:\n{pane}"
    );
    let alt = tmux(
        &socket,
        &["display-message", "-p", "-t", "top", "#{alternate_on}"],
    );
    assert_eq!(alt.trim(), "0", "the alternate screen is still on");

    // SIGTERM ends it the same way (the terminal given back, exit 0).
    tmux(&socket, &["kill-session", "-t", "top"]);
    top_session(&socket, &cmd);
    pane_until(&socket, "the worker again", |p| p.contains("local-0"));
    let shell = tmux(
        &socket,
        &["display-message", "-p", "-t", "top", "#{pane_pid}"],
    );
    let child = Command::new("pgrep")
        .args(["-P", shell.trim()])
        .output_in_time()
        .expect("pgrep (procps)");
    let pid = String::from_utf8_lossy(&child.stdout).trim().to_owned();
    assert!(!pid.is_empty(), "no fabric top under the pane's shell");
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let pane = pane_until(&socket, "the exit after SIGTERM", |p| {
        p.contains("TOP-EXITED")
    });
    assert!(pane.contains("TOP-EXITED 0"), "{pane}");
    let alt = tmux(
        &socket,
        &["display-message", "-p", "-t", "top", "#{alternate_on}"],
    );
    assert_eq!(
        alt.trim(),
        "0",
        "the alternate screen is still on after SIGTERM"
    );
}
