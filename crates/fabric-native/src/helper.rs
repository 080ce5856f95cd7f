//! The helper process: the `fabric` binary re-executed in a hidden mode for
//! one native task. It joins the task's cgroups, drops to the task's uid,
//! sets up the sandbox with hakoniwa (namespaces, a minimal root, rlimits,
//! landlock, seccomp) and runs the program there; its stdin, stdout and
//! stderr are the program's. The worker never forks from its async
//! threads: it only spawns this helper.

use std::path::Path;

use hakoniwa::landlock::{CompatMode, FsAccess, Resource, Ruleset};
use hakoniwa::seccomp::{Action, ArgCmp, ArgCmpOp, Filter};
use hakoniwa::{Container, Namespace, Rlimit};

use crate::spec::{HelperSpec, HelperStatus};

/// System directories the program sees, read-only (or as the symlinks they
/// are on merged-/usr hosts).
pub(crate) const SYSTEM_DIRS: &[&str] = &["/bin", "/sbin", "/lib", "/lib64", "/lib32", "/usr"];

/// Files of the host's /etc that hold no secrets and that programs need
/// (the loader's cache; Debian's alternatives, through which `cc` is found).
const HOST_ETC: &[&str] = &["/etc/ld.so.cache", "/etc/alternatives"];

/// Calls a task never needs and a sandbox escape would: namespaces,
/// mounts, tracing, kernel modules and keyrings, and the like.
const DENIED_CALLS: &[&str] = &[
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "open_by_handle_at",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "quotactl",
    "syslog",
    // io_uring reaches much of the kernel past the filter's view.
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    // The new mount API.
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
];

/// `clone` flags that make namespaces: a clone with any of them fails, as
/// `unshare` does (a nested user namespace would hand the task
/// CAP_NET_ADMIN and the netfilter surface with it).
const CLONE_NEW_FLAGS: &[u64] = &[
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
    0x0000_0080, // CLONE_NEWTIME
];

/// Runs the helper for the spec at `spec_path`; the process exit code.
///
/// The helper has no logger: its stderr is the task's, which the worker
/// keeps with the result, so the two failures before the sandbox exists
/// are said there.
#[allow(clippy::print_stderr)]
pub fn helper_main(spec_path: &Path) -> i32 {
    let spec: HelperSpec = match std::fs::read(spec_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "fabric native helper: cannot read {}: {e}",
                spec_path.display()
            );
            return 125;
        }
    };
    // Opened while still privileged: the task's uid could not reach it.
    let mut status_file = match std::fs::File::create(&spec.status) {
        Ok(f) => f,
        Err(e) => {
            eprintln!(
                "fabric native helper: cannot write {}: {e}",
                spec.status.display()
            );
            return 125;
        }
    };
    let status = run(&spec).unwrap_or_else(HelperStatus::SetupFailed);
    if let Ok(text) = serde_json::to_vec(&status) {
        use std::io::Write as _;
        let _ = status_file.write_all(&text);
    }
    match status {
        HelperStatus::Exited(c) => c,
        HelperStatus::Signaled(s) => 128 + s,
        HelperStatus::SetupFailed(_) => 125,
    }
}

fn run(spec: &HelperSpec) -> Result<HelperStatus, String> {
    // A session of its own: no controlling terminal (the operator's, under
    // `fabric up`) for the task to read or push input into.
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    let me = std::process::id().to_string();
    for cg in &spec.cgroups {
        std::fs::write(cg.join("cgroup.procs"), &me)
            .map_err(|e| format!("joining {}: {e}", cg.display()))?;
    }
    if let Some(uid) = spec.uid {
        drop_to(uid)?;
    }
    let mut c = Container::new();
    c.rootdir(&spec.root);
    c.unshare(Namespace::Ipc)
        .unshare(Namespace::Uts)
        .hostname("fabric-task");
    if !spec.network {
        c.unshare(Namespace::Network);
    }
    for dir in SYSTEM_DIRS {
        let p = Path::new(dir);
        if p.is_symlink() {
            let target = std::fs::read_link(p).map_err(|e| format!("{dir}: {e}"))?;
            c.symlink(&target.to_string_lossy(), dir);
        } else if p.is_dir() {
            c.bindmount_ro(dir, dir);
        }
    }
    for path in HOST_ETC {
        if Path::new(path).exists() {
            c.bindmount_ro(path, path);
        }
    }
    c.file(
        "/etc/passwd",
        "root:x:0:0:root:/work:/bin/sh\ntask:x:1000:1000:task:/work:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    )
    .file("/etc/group", "root:x:0:\ntask:x:1000:\nnogroup:x:65534:\n")
    .file("/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n")
    .file("/etc/hostname", "fabric-task\n")
    .devfsmount("/dev")
    .tmpfsmount("/tmp")
    .bindmount_rw(&spec.scratch.to_string_lossy(), "/work");
    c.uidmap(1000).gidmap(1000);
    let limit = |c: &mut Container, r: Rlimit, v: u64| {
        c.setrlimit(r, v, v);
    };
    limit(&mut c, Rlimit::As, spec.memory_bytes);
    limit(&mut c, Rlimit::Cpu, spec.cpu_secs);
    limit(&mut c, Rlimit::Nofile, spec.max_files);
    limit(&mut c, Rlimit::Fsize, spec.max_file_bytes);
    limit(&mut c, Rlimit::Nproc, spec.max_procs);
    limit(&mut c, Rlimit::Core, 0);
    if spec.landlock {
        c.landlock_ruleset(ruleset()?);
    }
    if spec.seccomp {
        let mut f = Filter::new(Action::Allow);
        for call in DENIED_CALLS {
            f.add_rule(Action::Errno(libc_eperm()), call);
        }
        for flag in CLONE_NEW_FLAGS {
            let has = ArgCmp::new(0, ArgCmpOp::MaskedEq, *flag, *flag);
            f.add_rule_conditional(Action::Errno(libc_eperm()), "clone", &[has]);
        }
        // clone3 passes its flags in memory the filter cannot see: it
        // reports "not implemented", and libc falls back to clone.
        f.add_rule(Action::Errno(nix::errno::Errno::ENOSYS as i32), "clone3");
        c.seccomp_filter(f);
    }
    let mut cmd = c.command(&spec.program.to_string_lossy());
    cmd.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir("/work")
        .wait_timeout(spec.timeout_secs.max(1));
    let status = cmd
        .status()
        .map_err(|e| format!("starting the sandbox: {e}"))?;
    Ok(match status.exit_code {
        Some(code) => HelperStatus::Exited(code),
        None if status.code > 128 && status.code < 128 + 65 => {
            HelperStatus::Signaled(status.code - 128)
        }
        None => HelperStatus::SetupFailed(status.reason),
    })
}

fn libc_eperm() -> i32 {
    nix::errno::Errno::EPERM as i32
}

/// Read and run the system, read and write the task's own dirs; nothing
/// else of the file system.
fn ruleset() -> Result<Ruleset, String> {
    let access = |s: &str| {
        s.parse::<FsAccess>()
            .map_err(|e| format!("landlock {s}: {e:?}"))
    };
    let mut r = Ruleset::default();
    r.restrict(Resource::FS, CompatMode::Enforce);
    let present = SYSTEM_DIRS.iter().filter(|d| Path::new(d).exists());
    for dir in present.chain(["/etc", "/proc"].iter()) {
        r.allow_path(dir, access("r-x")?);
    }
    for dir in ["/work", "/tmp", "/dev"] {
        r.allow_path(dir, access("rwx")?);
    }
    Ok(r)
}

/// Becomes `uid` (and the group of the same number) with no supplementary
/// groups, for good: the program's processes count against that uid's
/// limits, not root's (which has none).
fn drop_to(uid: u32) -> Result<(), String> {
    use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};
    let gid = Gid::from_raw(uid);
    setgroups(&[]).map_err(|e| format!("setgroups: {e}"))?;
    setresgid(gid, gid, gid).map_err(|e| format!("setresgid({uid}): {e}"))?;
    let u = Uid::from_raw(uid);
    setresuid(u, u, u).map_err(|e| format!("setresuid({uid}): {e}"))?;
    // A uid change makes the process non-dumpable, which leaves its
    // /proc/self files (uid_map among them) owned by root.
    nix::sys::prctl::set_dumpable(true).map_err(|e| format!("prctl(PR_SET_DUMPABLE): {e}"))?;
    // The uid change cleared the parent-death signal: a helper whose
    // worker died takes its task with it.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| format!("prctl(PR_SET_PDEATHSIG): {e}"))?;
    Ok(())
}
