//! The worker's side of a native task: a scratch dir and cgroups for it,
//! the helper process spawned with the spec, stdin fed, stdout and stderr
//! read as they come (streamed as events in bounded chunks and kept, capped,
//! for the result), the deadline kept, and everything cleaned up after.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use fabric_proto::{GuestEvent, Limits, OutputStream, TaskOutcome, TaskStatus};
use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;
use tokio::sync::oneshot;

use crate::cgroup::TaskGroups;
use crate::layers::Layers;
use crate::outcome::Ended;
use crate::output::{Kept, pump};
use crate::remains::Remains;
use crate::scratch::{DirPlan, TaskDir};
use crate::spec::{HelperSpec, HelperStatus};
use crate::uids::UidPool;

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
    /// Task dirs are made under here, one per attempt, and removed after;
    /// whatever is here at start was left by a killed predecessor and is
    /// swept. It must be reachable by the tasks' uids (not inside the
    /// worker's private data dir): it is made mode 0711, each task's dir
    /// 0710 with the task's own gid.
    pub work_root: PathBuf,
    /// Whether tasks keep the host's network (default: none).
    pub network: bool,
    /// Whether tasks may run files they wrote (`/work` and `/tmp` without
    /// `noexec`): the opt-in for builds that run what they make. Off by
    /// default.
    pub exec_in_work: bool,
    /// The most disk one task gets here, whatever it asks for.
    pub max_disk_bytes: u64,
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
    /// Its environment (loader and libc variables are dropped).
    pub env: Vec<(String, String)>,
    /// Its secrets, given as env; handed to the helper in its own
    /// environment, never written to disk.
    pub secrets: fabric_proto::Secrets,
    /// Its stdin.
    pub stdin: Vec<u8>,
    /// Its limits (memory, wall clock, disk, output caps; fuel does not
    /// apply).
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
    /// The host uids tasks run as (the worker is root).
    uids: Option<Arc<UidPool>>,
    /// Names this worker's task groups (its work root's name), so a sweep
    /// takes only what this worker left.
    scope: String,
    /// Runs not cleared yet, for a stop that waits for them.
    live: Arc<crate::remains::LiveRuns>,
}

impl NativeRunner {
    /// A runner with this host's layers; sweeps what a killed predecessor
    /// with the same work root left (processes, cgroups, dirs).
    pub fn new(cfg: RunnerConfig) -> std::io::Result<Self> {
        work_root(&cfg.work_root)?;
        let layers = Layers::detect();
        // A root worker never runs a task as root: without a free block of
        // uids, native tasks are refused at start.
        let uids = match layers.unprivileged_uid {
            true => Some(Arc::new(UidPool::new(crate::uids::host_base().ok_or_else(
                || {
                    std::io::Error::other(
                        "no block of 4,096 host uids is free of accounts and subordinate id ranges (/etc/passwd, /etc/subuid, /etc/subgid) for native tasks to run as",
                    )
                },
            )?))),
            false => None,
        };
        let scope = cfg.work_root.file_name().map_or_else(
            || "fabric-native".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        let sweep = crate::sweep::Sweep {
            cgroups: layers.cgroups.clone(),
            prefix: format!("{scope}."),
            work_root: cfg.work_root.clone(),
        };
        let (groups, dirs) = sweep.run();
        if groups + dirs > 0 {
            tracing::info!(
                cgroups = groups,
                dirs,
                "swept what native tasks of a stopped worker left"
            );
        }
        crate::sweep::register(sweep);
        Ok(Self {
            cfg,
            layers,
            uids,
            scope,
            live: Arc::default(),
        })
    }

    /// Kills every task still running here and removes what they left,
    /// for a worker that stops with runs it will not wait for: takes no new
    /// run, kills what runs (through the groups), waits (up to 15 s) for
    /// the runs to clear their own remains, then sweeps whatever is left.
    pub async fn stop(&self) {
        let sweep = crate::sweep::Sweep {
            cgroups: self.layers.cgroups.clone(),
            prefix: format!("{}.", self.scope),
            work_root: self.cfg.work_root.clone(),
        };
        let mut left = self.live.stop();
        let killed = if left > 0 { sweep.kill() } else { 0 };
        for _ in 0..750 {
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            left = self.live.count();
        }
        let (groups, dirs) = sweep.run();
        if killed + groups + dirs > 0 {
            tracing::info!(
                killed,
                cgroups = groups,
                dirs,
                "stopped the native tasks still running"
            );
        }
    }

    /// The layers tasks get here.
    pub fn layers(&self) -> &Layers {
        &self.layers
    }

    /// Whether tasks here may run what they write (the opt-in).
    pub fn exec_in_work(&self) -> bool {
        self.cfg.exec_in_work
    }

    /// Runs `task` until it ends, its deadline passes or `cancel` fires;
    /// `events` hears its output as it comes. Nothing of the task outlives
    /// this call, nor the drop of its future (a worker's own deadline):
    /// its processes are killed and its groups and dir removed either way.
    pub async fn run(
        &self,
        task: NativeTask,
        cancel: oneshot::Receiver<()>,
        events: impl FnMut(GuestEvent) + Send,
    ) -> TaskOutcome {
        let started = std::time::Instant::now();
        let Some(mut remains) = Remains::new(self.uids.clone(), &self.live) else {
            return TaskOutcome::ended(
                TaskStatus::Failed,
                "native sandbox: the worker is stopping",
            );
        };
        let mut outcome = match self.run_in(&mut remains, &task, cancel, events).await {
            Ok(o) => o,
            Err(e) => TaskOutcome::ended(TaskStatus::Failed, format!("native sandbox: {e}")),
        };
        outcome.duration_ms = started.elapsed().as_millis() as u64;
        // Every process of the task is dead by now (killed through its
        // groups when the wait ended): what is left is files and empty
        // groups, cleared off the result's path. A clearing the runtime
        // never runs still happens, when its closure is dropped.
        drop(tokio::task::spawn_blocking(move || remains.clear()));
        outcome
    }

    async fn run_in(
        &self,
        remains: &mut Remains,
        task: &NativeTask,
        mut cancel: oneshot::Receiver<()>,
        mut events: impl FnMut(GuestEvent) + Send,
    ) -> std::io::Result<TaskOutcome> {
        let uid =
            match &self.uids {
                Some(pool) => Some(pool.take().ok_or_else(|| {
                    std::io::Error::other("every task uid of this worker is in use")
                })?),
                None => None,
            };
        remains.uid = uid;
        let disk_bytes = task.limits.disk_bytes.min(self.cfg.max_disk_bytes);
        let plan = DirPlan {
            uid,
            disk_bytes: self.layers.disk.then_some(disk_bytes),
            exec: self.cfg.exec_in_work,
        };
        let dir = TaskDir::make(
            &self.cfg.work_root,
            &format!("{}.{}", self.scope, task.name),
            plan,
        )?;
        let (root, scratch, tmp) = (dir.root.clone(), dir.work.clone(), dir.tmp.clone());
        let dir = &*remains.dir.insert(dir);
        let (to, files) = (scratch.clone(), task.files.clone());
        if let Err(e) = blocking(move || crate::files::stage_in(&to, &files)).await {
            return Ok(match e.raw_os_error() {
                Some(nix::libc::ENOSPC) => TaskOutcome::ended(
                    TaskStatus::Failed,
                    format!(
                        "the staged files do not fit in the task's disk limit of {}",
                        fabric_proto::format_size(disk_bytes)
                    ),
                ),
                _ => return Err(e),
            });
        }
        if let Some(uid) = uid {
            for d in [&scratch, &tmp, &root] {
                crate::files::own_tree(d, uid)?;
            }
        }
        let groups = remains.groups.insert(TaskGroups::make(
            &self.layers.cgroups,
            &format!("{}.{}", self.scope, task.name),
            task.limits.memory_bytes,
            MAX_PROCS,
        )?);
        let timeout = Duration::from_millis(task.limits.timeout_ms);
        let spec = HelperSpec {
            program: task.program.clone(),
            args: task.args.clone(),
            env: crate::spec::task_env(&task.env),
            secret_names: task.secrets.iter().map(|(k, _)| k.clone()).collect(),
            scratch: scratch.clone(),
            tmp,
            exec_in_work: self.cfg.exec_in_work,
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
            status: dir.dir.join("status.json"),
        };
        let spec_path = dir.write_private(
            "spec.json",
            &serde_json::to_vec(&spec).map_err(std::io::Error::other)?,
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
            // The helper runs under the task's address-space limit, which
            // mimalloc's up-front arena reservations would hit.
            .env(fabric_alloc::SYSTEM_ALLOCATOR_VAR, "1")
            .envs(
                task.secrets
                    .iter()
                    .enumerate()
                    .map(|(i, (_, v))| (crate::spec::secret_var(i), v.expose())),
            )
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
        let killer = groups.killer();
        let waited = async {
            let ended = tokio::select! {
                s = child.wait() => Ended::Exited(s),
                () = tokio::time::sleep(timeout) => Ended::TimedOut,
                Ok(()) = &mut cancel => Ended::Cancelled,
            };
            // Whatever ended it, nothing of the task lives on: everything
            // in its groups is killed (a program that left the helper's
            // process tree, cleared its parent-death signal or holds the
            // output pipes open included); then the helper, whose death
            // takes the task's init, and with it the pid namespace, along
            // where the host has no cgroups.
            blocking(move || killer.kill_all()).await;
            if !matches!(ended, Ended::Exited(_)) {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
            ended
        };
        let ((), (), (), (), ended) = tokio::join!(feed, read_out, read_err, collect, waited);
        let oom = groups.oom_killed();
        let status_path = dir.dir.join("status.json");
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
        // A helper killed at timeout or cancel leaves none, as expected;
        // one whose program exited should have.
        let status = status
            .inspect_err(|why| {
                if matches!(ended, Ended::Exited(_)) {
                    tracing::warn!(%why, "the native helper left no status");
                } else {
                    tracing::debug!(%why, "the stopped native helper left no status");
                }
            })
            .ok();
        let mut outcome = crate::outcome::of(ended, status, oom, &task.limits);
        if dir.disk_full() && outcome.status != TaskStatus::Succeeded {
            let capped = if disk_bytes < task.limits.disk_bytes {
                " (this worker's --max-task-disk)"
            } else {
                ""
            };
            outcome.note(format!(
                "the task's disk limit of {}{capped} (/work and /tmp together) was reached",
                fabric_proto::format_size(disk_bytes)
            ));
        }
        (outcome.stdout, outcome.stderr) = kept.into_parts();
        let (from, globs) = (scratch.clone(), task.outputs.clone());
        let (files, left_out) = blocking(move || {
            crate::files::collect(&from, &globs, fabric_proto::MAX_OUTPUT_FILES_BYTES)
        })
        .await;
        outcome.files = files;
        if let Some(note) = left_out {
            outcome.note(note);
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
