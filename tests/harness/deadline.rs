//! Commands run to completion under a deadline: a command that hangs fails
//! its test with the command line and what it printed so far, instead of
//! stalling the suite with no message.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long one command the tests run to completion may take. Generous:
/// it exists to turn a hang into a message, not to time anything.
pub const DEADLINE: Duration = Duration::from_secs(180);

/// After the command exited, how long its pipes may stay open (held by a
/// process it left behind) before that fails the test too.
const PIPES_CLOSE: Duration = Duration::from_secs(10);

/// [`Command::output`] with a deadline, for every command a test runs to
/// completion.
pub trait OutputWithin {
    /// Runs the command (stdin closed, stdout and stderr captured) and
    /// returns its output. Panics, naming the command line and its output so
    /// far, when it has not exited within `limit` (it and its process group
    /// are killed first). Only a failure to spawn it is returned as an error.
    fn output_within(&mut self, limit: Duration) -> std::io::Result<Output>;

    /// [`OutputWithin::output_within`] with [`DEADLINE`].
    fn output_in_time(&mut self) -> std::io::Result<Output> {
        self.output_within(DEADLINE)
    }
}

impl OutputWithin for Command {
    fn output_within(&mut self, limit: Duration) -> std::io::Result<Output> {
        let child = spawn_captured(self.stdin(Stdio::null()))?;
        Ok(wait_within(child, &command_line(self), limit))
    }
}

/// Spawns `cmd` in a process group of its own (so a timeout kills what it
/// started too) with stdout and stderr piped, for [`wait_within`].
pub fn spawn_captured(cmd: &mut Command) -> std::io::Result<Child> {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
}

/// Waits up to `limit` for a child from [`spawn_captured`] and returns its
/// output; past `limit` kills its process group and panics with `line` and
/// the output so far.
pub fn wait_within(mut child: Child, line: &str, limit: Duration) -> Output {
    let stdout = Captured::start(child.stdout.take());
    let stderr = Captured::start(child.stderr.take());
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(e) => panic!("cannot wait for `{line}`: {e}"),
        }
        if Instant::now() >= deadline {
            kill_group(&mut child);
            panic!(
                "`{line}` did not exit within {limit:?}; killed it.\n--- stdout so far\n{}\n--- stderr so far\n{}",
                stdout.so_far(),
                stderr.so_far()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    match (stdout.finish(), stderr.finish()) {
        (Some(stdout), Some(stderr)) => Output {
            status,
            stdout,
            stderr,
        },
        _ => panic!(
            "`{line}` exited ({status}) but its stdout or stderr stayed open for {PIPES_CLOSE:?} \
             (a process it started holds them)"
        ),
    }
}

/// Runs `cmd` to completion within `limit` (see [`OutputWithin`]); a
/// command that cannot be spawned fails the test too.
pub fn run_with_deadline(cmd: &mut Command, limit: Duration) -> Output {
    let line = command_line(cmd);
    cmd.output_within(limit)
        .unwrap_or_else(|e| panic!("cannot run `{line}`: {e}"))
}

/// The program and its arguments, as a shell would show them.
pub fn command_line(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(OsStr::to_string_lossy)
        .collect::<Vec<_>>()
        .join(" ")
}

/// SIGKILL to the child's process group, then reaps the child.
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// One pipe read to its end on a thread, readable while it runs.
struct Captured {
    buf: Arc<Mutex<Vec<u8>>>,
    done: mpsc::Receiver<()>,
}

impl Captured {
    fn start(pipe: Option<impl std::io::Read + Send + 'static>) -> Self {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (tx, done) = mpsc::channel();
        let sink = buf.clone();
        std::thread::spawn(move || {
            if let Some(mut pipe) = pipe {
                let mut chunk = [0u8; 8192];
                while let Ok(n) = pipe.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .extend_from_slice(&chunk[..n]);
                }
            }
            let _ = tx.send(());
        });
        Self { buf, done }
    }

    fn so_far(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }

    /// Everything, once the pipe closed; `None` if it stays open.
    fn finish(self) -> Option<Vec<u8>> {
        self.done.recv_timeout(PIPES_CLOSE).ok()?;
        Some(std::mem::take(
            &mut *self.buf.lock().unwrap_or_else(|p| p.into_inner()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_that_exits_in_time_gives_its_output() {
        let out = run_with_deadline(
            Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]),
            Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(3));
        assert_eq!(out.stdout, b"out\n");
        assert_eq!(out.stderr, b"err\n");
    }

    #[test]
    fn a_command_past_its_deadline_fails_with_its_line_and_output() {
        let caught = std::panic::catch_unwind(|| {
            run_with_deadline(
                Command::new("sh").args(["-c", "echo started; exec sleep 600"]),
                Duration::from_secs(2),
            )
        });
        let msg = *caught
            .expect_err("a hang must fail")
            .downcast::<String>()
            .expect("a message");
        assert!(
            msg.contains("`sh -c echo started; exec sleep 600` did not exit"),
            "{msg}"
        );
        assert!(msg.contains("stdout so far\nstarted\n"), "{msg}");
    }
}
