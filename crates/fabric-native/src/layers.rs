//! Which isolation layers this host gives a native task, found once at
//! worker start and logged, so a missing layer is never skipped silently.

use std::path::{Path, PathBuf};

/// Where cgroup v1 controllers are mounted on hosts that have them.
const CGROUP_V1: &str = "/sys/fs/cgroup";
/// The directory under each controller that holds one group per task.
pub(crate) const CGROUP_PARENT: &str = "fabric";

/// The layers a native task gets here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layers {
    /// User, pid, mount, ipc and uts namespaces (and net, unless the
    /// policy allows the network).
    pub namespaces: bool,
    /// Tasks run as an unprivileged host uid (the worker runs as root);
    /// otherwise as the worker's own uid, mapped in a user namespace.
    pub unprivileged_uid: bool,
    /// Landlock restricts file access to the task's view.
    pub landlock: bool,
    /// A seccomp filter denies namespace, mount, ptrace, module and similar
    /// calls.
    pub seccomp: bool,
    /// cgroup v1 memory controller: a hard memory limit per task.
    pub cgroup_memory: Option<PathBuf>,
    /// cgroup v1 pids controller: a process limit per task.
    pub cgroup_pids: Option<PathBuf>,
}

impl Layers {
    /// Probes this host.
    pub fn detect() -> Self {
        let root = nix::unistd::Uid::effective().is_root();
        Self {
            namespaces: user_namespaces(),
            unprivileged_uid: root,
            landlock: landlock_available(),
            seccomp: Path::new("/proc/sys/kernel/seccomp/actions_avail").exists(),
            cgroup_memory: root.then(|| controller("memory")).flatten(),
            cgroup_pids: root.then(|| controller("pids")).flatten(),
        }
    }

    /// One line for the start log: every layer, on or off.
    pub fn describe(&self) -> String {
        let on = |b: bool| if b { "on" } else { "OFF" };
        format!(
            "namespaces {}, unprivileged uid {}, landlock {}, seccomp {}, cgroup memory {}, cgroup pids {}, rlimits on",
            on(self.namespaces),
            on(self.unprivileged_uid),
            on(self.landlock),
            on(self.seccomp),
            on(self.cgroup_memory.is_some()),
            on(self.cgroup_pids.is_some()),
        )
    }
}

/// Whether the kernel enforces landlock: a ruleset that requires it can be
/// made (made and dropped; nothing is restricted).
fn landlock_available() -> bool {
    use landlock::{
        ABI, Access as _, AccessFs, CompatLevel, Compatible as _, Ruleset, RulesetAttr as _,
    };
    Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(ABI::V1))
        .and_then(|r| r.create())
        .is_ok()
}

fn user_namespaces() -> bool {
    std::fs::read_to_string("/proc/sys/user/max_user_namespaces")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .is_some_and(|n| n > 0)
}

/// `<cgroup v1 mount>/<controller>/fabric`, made when the controller is
/// mounted there as v1 and writable.
fn controller(name: &str) -> Option<PathBuf> {
    let base = Path::new(CGROUP_V1).join(name);
    if !base.join("cgroup.procs").exists() || !base.join("tasks").exists() {
        return None;
    }
    let dir = base.join(CGROUP_PARENT);
    std::fs::create_dir_all(&dir).ok()?;
    Some(dir)
}
