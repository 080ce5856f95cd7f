//! Per-task cgroups for memory and process limits, under the worker's own
//! cgroup: cgroup v1 `memory` and `pids` controllers where the host has
//! them, or a cgroup v2 subtree the worker was delegated (its cgroup's
//! controllers include memory and pids, and it may write there).
//!
//! v2 keeps the "no processes in inner groups" rule: the worker moves
//! itself into a `worker` leaf beside the `tasks` group it creates, then
//! enables the controllers for its children.

use std::path::{Path, PathBuf};

/// Where cgroup file systems are mounted.
pub(crate) const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// The group under the worker's own that holds one group per task.
const TASKS: &str = "fabric-tasks";

/// How this host gives per-task cgroups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupLayout {
    /// cgroup v1: a `fabric-tasks` group under the worker's own group of
    /// each controller.
    V1 {
        /// Under the memory controller, if mounted and writable.
        memory: Option<PathBuf>,
        /// Under the pids controller, if mounted and writable.
        pids: Option<PathBuf>,
    },
    /// cgroup v2: the `fabric-tasks` group in the worker's delegated subtree.
    V2 {
        /// The tasks' parent group.
        tasks: PathBuf,
    },
    /// None usable.
    None,
}

impl CgroupLayout {
    /// Finds the layout under `root` for a process whose `/proc/self/cgroup`
    /// reads `own`; creates the tasks' parent group. `None` when neither
    /// version gives both controllers a place the worker can write.
    pub fn detect(root: &Path, own: &str) -> Self {
        let path_of = |controller: &str| {
            own.lines().find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
                names
                    .split(',')
                    .any(|n| n == controller)
                    .then(|| path.trim_start_matches('/').to_owned())
            })
        };
        let v1 = |controller: &str| -> Option<PathBuf> {
            let base = root.join(controller);
            if !base.join("tasks").exists() {
                return None;
            }
            let dir = base.join(path_of(controller)?).join(TASKS);
            std::fs::create_dir_all(&dir).ok()?;
            // Made by a root worker before, perhaps: usable only if this
            // process may make task groups in it.
            nix::unistd::access(&dir, nix::unistd::AccessFlags::W_OK).ok()?;
            Some(dir)
        };
        let (memory, pids) = (v1("memory"), v1("pids"));
        if memory.is_some() || pids.is_some() {
            return Self::V1 { memory, pids };
        }
        // cgroup v2: the unified hierarchy at the root, or at `unified` on
        // hybrid hosts; the worker's group is the `0::` line.
        let unified = [root.to_path_buf(), root.join("unified")]
            .into_iter()
            .find(|r| r.join("cgroup.controllers").exists());
        let own_v2 = own
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .map(|p| p.trim_start_matches('/').to_owned());
        match (unified, own_v2) {
            (Some(u), Some(p)) => v2(&u.join(p)).map_or(Self::None, |tasks| Self::V2 { tasks }),
            _ => Self::None,
        }
    }

    /// Whether tasks get a memory limit from it.
    pub fn memory(&self) -> bool {
        matches!(
            self,
            Self::V1 {
                memory: Some(_),
                ..
            } | Self::V2 { .. }
        )
    }

    /// Whether tasks get a process limit from it.
    pub fn pids(&self) -> bool {
        matches!(self, Self::V1 { pids: Some(_), .. } | Self::V2 { .. })
    }

    /// Its name for the start log.
    pub fn version(&self) -> &'static str {
        match self {
            Self::V1 { .. } => "v1",
            Self::V2 { .. } => "v2",
            Self::None => "none",
        }
    }
}

/// Sets up the delegated v2 subtree at `own`: the worker in a `worker`
/// leaf, memory and pids enabled for children, the tasks' group made.
fn v2(own: &Path) -> Option<PathBuf> {
    let controllers = std::fs::read_to_string(own.join("cgroup.controllers")).ok()?;
    let has = |c: &str| controllers.split_whitespace().any(|w| w == c);
    if !has("memory") || !has("pids") {
        return None;
    }
    let leaf = own.join("worker");
    std::fs::create_dir_all(&leaf).ok()?;
    std::fs::write(leaf.join("cgroup.procs"), std::process::id().to_string()).ok()?;
    std::fs::write(own.join("cgroup.subtree_control"), "+memory +pids").ok()?;
    let tasks = own.join(TASKS);
    std::fs::create_dir_all(&tasks).ok()?;
    std::fs::write(tasks.join("cgroup.subtree_control"), "+memory +pids").ok()?;
    Some(tasks)
}

impl CgroupLayout {
    /// The parent groups task groups are made under.
    fn parents(&self) -> Vec<&Path> {
        match self {
            Self::V1 { memory, pids } => memory
                .iter()
                .chain(pids.iter())
                .map(PathBuf::as_path)
                .collect(),
            Self::V2 { tasks } => vec![tasks.as_path()],
            Self::None => Vec::new(),
        }
    }

    /// Kills and removes every task group whose name starts with `prefix`
    /// (left by a worker that was killed); how many were found.
    pub(crate) fn sweep(&self, prefix: &str) -> usize {
        let mut found = 0;
        for parent in self.parents() {
            let Ok(entries) = std::fs::read_dir(parent) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                if !name.to_string_lossy().starts_with(prefix) || !e.path().is_dir() {
                    continue;
                }
                found += 1;
                let dir = e.path();
                kill_group(&dir);
                if let Err(err) = std::fs::remove_dir(&dir) {
                    tracing::warn!(dir = %dir.display(), error = %err, "cannot remove a task cgroup left by a killed worker");
                }
            }
        }
        found
    }
}

/// Rounds of SIGKILL over a group's processes before giving up.
const KILL_ROUNDS: u32 = 1_000;

/// Kills every process in the group at `dir` and waits (bounded) until
/// it is empty; whether it is. cgroup v2 has `cgroup.kill`; v1 has no such
/// file, so every listed process gets SIGKILL, round after round, until a
/// read finds none (a process forked between a read and the kills is in
/// the next read; the pids limit bounds how many there can be).
fn kill_group(dir: &Path) -> bool {
    let v2_kill = dir.join("cgroup.kill");
    if v2_kill.exists() {
        let _ = std::fs::write(&v2_kill, "1");
    }
    for round in 0..KILL_ROUNDS {
        let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
            return true;
        };
        let pids: Vec<i32> = procs
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        if pids.is_empty() {
            return true;
        }
        for pid in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // Killed processes leave the group as they exit.
        std::thread::sleep(std::time::Duration::from_millis(if round < 10 {
            1
        } else {
            5
        }));
    }
    false
}

/// One task's groups: every process in them is killed, then they are
/// removed, on drop.
pub(crate) struct TaskGroups {
    /// The groups the helper joins.
    pub dirs: Vec<PathBuf>,
    /// Where the kernel counts the memory limit's kills.
    events: Option<PathBuf>,
}

impl TaskGroups {
    /// Makes the groups of task `name` with its limits.
    pub fn make(
        layout: &CgroupLayout,
        name: &str,
        memory_bytes: u64,
        max_procs: u64,
    ) -> std::io::Result<Self> {
        let mut groups = Self {
            dirs: Vec::new(),
            events: None,
        };
        match layout {
            CgroupLayout::V1 { memory, pids } => {
                // Each group is kept as soon as it exists, so a failure
                // half way removes what was made.
                if let Some(parent) = memory {
                    let d = parent.join(name);
                    std::fs::create_dir_all(&d)?;
                    groups.dirs.push(d.clone());
                    std::fs::write(d.join("memory.limit_in_bytes"), memory_bytes.to_string())?;
                    groups.events = Some(d.join("memory.oom_control"));
                }
                if let Some(parent) = pids {
                    let d = parent.join(name);
                    std::fs::create_dir_all(&d)?;
                    groups.dirs.push(d.clone());
                    std::fs::write(d.join("pids.max"), max_procs.to_string())?;
                }
            }
            CgroupLayout::V2 { tasks } => {
                let d = tasks.join(name);
                std::fs::create_dir_all(&d)?;
                groups.dirs.push(d.clone());
                std::fs::write(d.join("memory.max"), memory_bytes.to_string())?;
                // No swapping past the limit either, where swap is accounted.
                let _ = std::fs::write(d.join("memory.swap.max"), "0");
                std::fs::write(d.join("pids.max"), max_procs.to_string())?;
                groups.events = Some(d.join("memory.events"));
            }
            CgroupLayout::None => {}
        }
        Ok(groups)
    }

    /// Whether the memory limit killed a process of the task: v1
    /// `memory.oom_control` and v2 `memory.events` both count those as
    /// `oom_kill N`.
    pub fn oom_killed(&self) -> bool {
        let Some(path) = &self.events else {
            return false;
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines().any(|l| {
            let mut w = l.split_whitespace();
            w.next() == Some("oom_kill")
                && w.next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .is_some_and(|n| n > 0)
        })
    }
}

/// Kills everything in a task's groups; can be sent to a blocking thread.
pub(crate) struct GroupKiller(Vec<PathBuf>);

impl GroupKiller {
    /// Kills every process of the task (the helper included, when it is
    /// still in them); whether the groups are empty now.
    pub fn kill_all(&self) -> bool {
        // Every group is killed, even after one that did not empty.
        let emptied: Vec<bool> = self.0.iter().map(|d| kill_group(d)).collect();
        emptied.into_iter().all(|e| e)
    }
}

impl TaskGroups {
    /// What kills the task's processes, apart from the groups.
    pub fn killer(&self) -> GroupKiller {
        GroupKiller(self.dirs.clone())
    }

    /// Kills what is left and removes the groups; whether nothing of the
    /// task is left in them.
    pub fn remove(mut self) -> bool {
        self.remove_dirs()
    }

    fn remove_dirs(&mut self) -> bool {
        let mut clean = true;
        for d in std::mem::take(&mut self.dirs) {
            clean &= kill_group(&d);
            if let Err(e) = std::fs::remove_dir(&d)
                && d.exists()
            {
                tracing::warn!(dir = %d.display(), error = %e, "cannot remove a task's cgroup");
                clean = false;
            }
        }
        clean
    }
}

impl Drop for TaskGroups {
    fn drop(&mut self) {
        self.remove_dirs();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake cgroup v2 tree (plain files in a temp dir: the layout and
    /// the files written are what is checked, not the kernel).
    #[test]
    fn a_delegated_v2_subtree_gets_a_worker_leaf_and_task_groups_with_limits() {
        let root = tempfile::tempdir().unwrap();
        let own = root.path().join("user.slice/fabric.service");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "cpu memory pids").unwrap();
        std::fs::write(own.join("cgroup.controllers"), "memory pids").unwrap();
        let layout = CgroupLayout::detect(root.path(), "0::/user.slice/fabric.service\n");
        let CgroupLayout::V2 { tasks } = &layout else {
            panic!("{layout:?}");
        };
        assert_eq!(tasks, &own.join(TASKS));
        assert_eq!(
            std::fs::read_to_string(own.join("worker/cgroup.procs")).unwrap(),
            std::process::id().to_string()
        );
        assert_eq!(
            std::fs::read_to_string(own.join("cgroup.subtree_control")).unwrap(),
            "+memory +pids"
        );
        assert!(layout.memory() && layout.pids());
        let g = TaskGroups::make(&layout, "t-1", 64 << 20, 256).unwrap();
        let d = tasks.join("t-1");
        assert_eq!(
            std::fs::read_to_string(d.join("memory.max")).unwrap(),
            "67108864"
        );
        assert_eq!(std::fs::read_to_string(d.join("pids.max")).unwrap(), "256");
        assert!(!g.oom_killed());
        std::fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        assert!(g.oom_killed());
    }

    #[test]
    fn v2_without_both_controllers_is_not_used() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "cpu").unwrap();
        std::fs::write(root.path().join("cgroup.procs"), "").unwrap();
        assert_eq!(
            CgroupLayout::detect(root.path(), "0::/\n"),
            CgroupLayout::None
        );
    }

    #[test]
    fn v1_groups_nest_under_the_workers_own_group() {
        let root = tempfile::tempdir().unwrap();
        for c in ["memory", "pids"] {
            std::fs::create_dir_all(root.path().join(c).join("jobs/42")).unwrap();
            std::fs::write(root.path().join(c).join("tasks"), "").unwrap();
        }
        let own = "4:memory:/jobs/42\n8:pids:/jobs/42\n0::/\n";
        let layout = CgroupLayout::detect(root.path(), own);
        assert_eq!(
            layout,
            CgroupLayout::V1 {
                memory: Some(root.path().join("memory/jobs/42").join(TASKS)),
                pids: Some(root.path().join("pids/jobs/42").join(TASKS)),
            }
        );
        let g = TaskGroups::make(&layout, "t-2", 1 << 20, 8).unwrap();
        let m = root.path().join("memory/jobs/42").join(TASKS).join("t-2");
        assert_eq!(
            std::fs::read_to_string(m.join("memory.limit_in_bytes")).unwrap(),
            "1048576"
        );
        std::fs::write(
            m.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
        )
        .unwrap();
        assert!(!g.oom_killed());
        std::fs::write(
            m.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        assert!(g.oom_killed());
    }
}
