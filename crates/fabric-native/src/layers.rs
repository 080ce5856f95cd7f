//! Which isolation layers this host gives a native task, found once at
//! worker start and logged, so a missing layer is never skipped silently.

use std::path::Path;

use crate::cgroup::{CGROUP_ROOT, CgroupLayout};

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
    /// Per-task cgroups (memory and process limits): v1 controllers, a
    /// delegated v2 subtree, or none.
    pub cgroups: CgroupLayout,
    /// A per-task disk (a size-limited tmpfs the worker mounts: root only).
    pub disk: bool,
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
            cgroups: cgroups(root),
            disk: root,
        }
    }

    /// One line for the start log: every layer, on or off.
    pub fn describe(&self) -> String {
        let on = |b: bool| if b { "on" } else { "OFF" };
        format!(
            "namespaces {}, unprivileged uid {}, landlock {}, seccomp {}, cgroup memory {}, cgroup pids {} ({}), disk limit {}, rlimits on",
            on(self.namespaces),
            on(self.unprivileged_uid),
            on(self.landlock),
            on(self.seccomp),
            on(self.cgroups.memory()),
            on(self.cgroups.pids()),
            self.cgroups.version(),
            on(self.disk),
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

/// The cgroup layout for this process (root only: groups under another
/// user's tree are not ours to make).
fn cgroups(root: bool) -> CgroupLayout {
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    if !root && !own.lines().any(|l| l.starts_with("0::")) {
        return CgroupLayout::None;
    }
    CgroupLayout::detect(Path::new(CGROUP_ROOT), &own)
}
