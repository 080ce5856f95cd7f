//! The worker's side of a native task: a scratch dir and cgroups for it,
//! the helper process spawned with the spec, stdin fed, stdout and stderr
//! read as they come (streamed as events in bounded chunks and kept, capped,
//! for the result), the deadline kept, and everything cleaned up after.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use fabric_proto::{GuestEvent, Limits, OutputStream, TaskOutcome, TaskStatus};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::Command;
use tokio::sync::oneshot;

use crate::cgroup::TaskGroups;
use crate::layers::Layers;
use crate::spec::{HelperSpec, HelperStatus};

/// Bytes of output in one streamed chunk at most.
pub const OUTPUT_CHUNK: usize = 16 << 10;
/// Most processes a task may have at once.
const MAX_PROCS: u64 = 256;
/// Most open files per process.
const MAX_FILES: u64 = 1_024;
/// Largest file a task may write.
const MAX_FILE_BYTES: u64 = 1 << 30;

/// Where and how native tasks run.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// The helper program (the `fabric` binary) and the arguments before the
    /// spec path (its hidden mode).
    pub helper: Vec<std::ffi::OsString>,
    /// Scratch dirs are made under here, one per attempt, and removed after.
    /// It must be reachable by the tasks' uids (not inside the worker's
    /// private data dir): it is made mode 0711, each task's dir 0700 and
    /// owned by that task's uid.
    pub work_root: PathBuf,
    /// Whether tasks keep the host's network (default: none).
    pub network: bool,
}

/// One native run.
#[derive(Clone, Debug)]
pub struct NativeTask {
    /// A name for its dirs (task id and attempt).
    pub name: String,
    /// The resolved, allow-listed program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its environment.
    pub env: Vec<(String, String)>,
    /// Its stdin.
    pub stdin: Vec<u8>,
    /// Its limits (memory, wall clock, output caps; fuel does not apply).
    pub limits: Limits,
    /// Files placed in its scratch dir first.
    pub files: Vec<crate::Staged>,
    /// Globs of files brought back from its scratch dir.
    pub outputs: Vec<String>,
}

/// Runs native tasks through the helper.
#[derive(Debug)]
pub struct NativeRunner {
    cfg: RunnerConfig,
    layers: Layers,
    /// The first of the host uids tasks run as (the worker is root).
    uid_base: Option<u32>,
    next_uid: AtomicU32,
}

impl NativeRunner {
    /// A runner with this host's layers.
    pub fn new(cfg: RunnerConfig) -> std::io::Result<Self> {
        work_root(&cfg.work_root)?;
        let layers = Layers::detect();
        // A root worker never runs a task as root: without a free block of
        // uids, native tasks are refused at start.
        let uid_base = match layers.unprivileged_uid {
            true => Some(crate::uids::host_base().ok_or_else(|| {
                std::io::Error::other(
                    "no block of 4,096 host uids is free of accounts and subordinate id ranges (/etc/passwd, /etc/subuid, /etc/subgid) for native tasks to run as",
                )
            })?),
            false => None,
        };
        Ok(Self {
            cfg,
            layers,
            uid_base,
            next_uid: AtomicU32::new(0),
        })
    }

    /// The layers tasks get here.
    pub fn layers(&self) -> &Layers {
        &self.layers
    }

    /// Runs `task` until it ends, its deadline passes or `cancel` fires;
    /// `events` hears its output as it comes.
    pub async fn run(
        &self,
        task: NativeTask,
        cancel: oneshot::Receiver<()>,
        events: impl FnMut(GuestEvent) + Send,
    ) -> TaskOutcome {
        let started = std::time::Instant::now();
        let dir = self.cfg.work_root.join(&task.name);
        let mut outcome = match self.run_in(&dir, &task, cancel, events).await {
            Ok(o) => o,
            Err(e) => TaskOutcome::ended(TaskStatus::Failed, format!("native sandbox: {e}")),
        };
        outcome.duration_ms = started.elapsed().as_millis() as u64;
        let gone = dir.clone();
        if let Err(e) = blocking(move || std::fs::remove_dir_all(&gone)).await {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a native task's scratch dir");
        }
        outcome
    }

    async fn run_in(
        &self,
        dir: &Path,
        task: &NativeTask,
        mut cancel: oneshot::Receiver<()>,
        mut events: impl FnMut(GuestEvent) + Send,
    ) -> std::io::Result<TaskOutcome> {
        use std::os::unix::fs::PermissionsExt as _;
        // The task's dir stays the worker's (its spec and status are read
        // by the helper as root); only `work` becomes the task's, once the
        // staged files are in.
        let scratch = dir.join("work");
        std::fs::create_dir(dir)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711))?;
        std::fs::create_dir(&scratch)?;
        let (to, files) = (scratch.clone(), task.files.clone());
        blocking(move || crate::files::stage_in(&to, &files)).await?;
        let uid = self
            .uid_base
            .map(|base| base + self.next_uid.fetch_add(1, Ordering::Relaxed) % crate::uids::SPAN);
        let root = dir.join("root");
        std::fs::create_dir(&root)?;
        if let Some(uid) = uid {
            crate::files::own_tree(&scratch, uid)?;
            crate::files::own_tree(&root, uid)?;
        }
        let groups = TaskGroups::make(
            &self.layers.cgroups,
            &task.name,
            task.limits.memory_bytes,
            MAX_PROCS,
        )?;
        let timeout = Duration::from_millis(task.limits.timeout_ms);
        let spec = HelperSpec {
            program: task.program.clone(),
            args: task.args.clone(),
            env: task.env.clone(),
            scratch: scratch.clone(),
            root,
            uid,
            // With a cgroup memory limit, that limit is the one that acts
            // (a kill the result can name as memory exceeded); the address
            // space is then only a loose backstop, since address space
            // always runs ahead of the memory really used.
            memory_bytes: if self.layers.cgroups.memory() {
                task.limits
                    .memory_bytes
                    .saturating_mul(4)
                    .saturating_add(256 << 20)
            } else {
                task.limits.memory_bytes
            },
            cpu_secs: timeout.as_secs() + 1,
            timeout_secs: timeout.as_secs() + 2,
            max_procs: MAX_PROCS,
            max_files: MAX_FILES,
            max_file_bytes: MAX_FILE_BYTES,
            cgroups: groups.dirs.clone(),
            landlock: self.layers.landlock,
            seccomp: self.layers.seccomp,
            network: self.cfg.network,
            status: dir.join("status.json"),
        };
        let spec_path = dir.join("spec.json");
        std::fs::write(
            &spec_path,
            serde_json::to_vec(&spec).map_err(std::io::Error::other)?,
        )?;
        let (program, pre) = self
            .cfg
            .helper
            .split_first()
            .ok_or_else(|| std::io::Error::other("no helper program configured"))?;
        let mut child = Command::new(program)
            .args(pre)
            .arg(&spec_path)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let mut stdin = child.stdin.take();
        let input = task.stdin.clone();
        let feed = async move {
            if let Some(s) = stdin.as_mut() {
                let _ = s.write_all(&input).await;
            }
            drop(stdin);
        };
        let cap = task.limits.output_bytes as usize;
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let (tx, mut rx) = tokio::sync::mpsc::channel::<(OutputStream, Vec<u8>)>(16);
        let read_out = pump(out, OutputStream::Stdout, tx.clone());
        let read_err = pump(err, OutputStream::Stderr, tx);
        let mut kept = Kept::new(cap);
        let collect = async {
            while let Some((stream, bytes)) = rx.recv().await {
                kept.add(stream, &bytes);
                events(GuestEvent::Output { stream, bytes });
            }
        };
        let waited = async {
            let ended = tokio::select! {
                s = child.wait() => Ended::Exited(s),
                () = tokio::time::sleep(timeout) => Ended::TimedOut,
                Ok(()) = &mut cancel => Ended::Cancelled,
            };
            if !matches!(ended, Ended::Exited(_)) {
                // The helper dies, and with it (its parent-death signal, then
                // the pid namespace) every process of the task.
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
            ended
        };
        let ((), (), (), (), ended) = tokio::join!(feed, read_out, read_err, collect, waited);
        let oom = groups.oom_killed();
        // Removing the groups waits (briefly) for the kernel to empty them.
        blocking(move || drop(groups)).await;
        let status_path = dir.join("status.json");
        let status = match std::fs::read(&status_path) {
            Ok(b) => serde_json::from_slice::<HelperStatus>(&b).map_err(|e| {
                format!(
                    "{} holds {:?}: {e}",
                    status_path.display(),
                    String::from_utf8_lossy(&b)
                )
            }),
            Err(e) => Err(format!("{}: {e}", status_path.display())),
        };
        let status = status
            .inspect_err(|why| tracing::warn!(%why, "the native helper left no status"))
            .ok();
        let mut outcome = crate::outcome::of(ended, status, oom, &task.limits);
        (outcome.stdout, outcome.stderr) = kept.into_parts();
        let (from, globs) = (scratch.clone(), task.outputs.clone());
        let (files, left_out) = blocking(move || {
            crate::files::collect(&from, &globs, fabric_proto::MAX_OUTPUT_FILES_BYTES)
        })
        .await;
        outcome.files = files;
        if let Some(note) = left_out {
            let m = outcome.message.get_or_insert_with(String::new);
            if !m.is_empty() {
                m.push_str("; ");
            }
            m.push_str(&note);
        }
        Ok(outcome)
    }
}

impl Drop for NativeRunner {
    fn drop(&mut self) {
        // Empty once every task's dir is gone; left for a look otherwise.
        let _ = std::fs::remove_dir(&self.cfg.work_root);
    }
}

/// Makes the work root, or checks the one there: a real directory (not a
/// link) owned by this process's user and writable by no one else, so no
/// other user can place or swap anything in it (it is usually in /tmp).
fn work_root(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::create_dir(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(path)?;
    let me = nix::unistd::Uid::effective().as_raw();
    if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o022 != 0 {
        return Err(std::io::Error::other(format!(
            "{} exists but is not a directory of this user that only it may write; remove it",
            path.display()
        )));
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o711))
}

/// Runs file-system work (copies, walks, removals a task can make large)
/// on tokio's blocking threads, so it never stalls the worker's heartbeats.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// How the wait for the helper ended.
pub(crate) enum Ended {
    /// The helper exited.
    Exited(std::io::Result<std::process::ExitStatus>),
    /// The wall-clock limit passed first.
    TimedOut,
    /// The dispatcher cancelled it.
    Cancelled,
}

/// Reads a pipe in chunks of at most [`OUTPUT_CHUNK`] until it closes.
async fn pump(
    mut pipe: impl AsyncRead + Unpin,
    stream: OutputStream,
    tx: tokio::sync::mpsc::Sender<(OutputStream, Vec<u8>)>,
) {
    let mut buf = vec![0u8; OUTPUT_CHUNK];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send((stream, buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Output kept for the result, each stream up to the cap.
struct Kept {
    cap: usize,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Kept {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }

    fn add(&mut self, stream: OutputStream, bytes: &[u8]) {
        let buf = match stream {
            OutputStream::Stdout => &mut self.stdout,
            OutputStream::Stderr => &mut self.stderr,
        };
        let room = self.cap.saturating_sub(buf.len());
        buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn into_parts(self) -> (Vec<u8>, Vec<u8>) {
        (self.stdout, self.stderr)
    }
}
