//! The helper process: the `fabric` binary re-executed in a hidden mode for
//! one native task. It forks a launcher that joins the task's cgroups,
//! drops to the task's uid, sets up the sandbox with hakoniwa (namespaces,
//! a minimal root, rlimits, landlock, seccomp) and runs Fabric's init, with
//! the program as its child, there; the helper itself stays outside the
//! groups and writes how the task ended. Its stdin, stdout and stderr are
//! the program's. The worker never forks from its async
//! threads: it only spawns this helper.

use std::path::Path;

use hakoniwa::landlock::{CompatMode, FsAccess, Resource, Ruleset};
use hakoniwa::{Container, MountOptions, Namespace, Rlimit};

use crate::spec::{HelperSpec, HelperStatus};

/// System directories the program sees, read-only (or as the symlinks they
/// are on merged-/usr hosts).
pub(crate) const SYSTEM_DIRS: &[&str] = &["/bin", "/sbin", "/lib", "/lib64", "/lib32", "/usr"];

/// Files of the host's /etc that hold no secrets and that programs need
/// (the loader's cache; Debian's alternatives, through which `cc` is found).
const HOST_ETC: &[&str] = &["/etc/ld.so.cache", "/etc/alternatives"];

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
    let status = supervise(&spec).unwrap_or_else(HelperStatus::SetupFailed);
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

/// Most bytes of a status the launcher sends.
const MAX_STATUS: u64 = 64 << 10;

/// Starts the launcher (a child that joins the task's cgroups and becomes
/// the task's uid before it builds the sandbox) and waits for its word.
///
/// The helper itself stays outside the task's cgroups: the memory limit's
/// OOM killer picks only among the task's processes, so it can never take
/// the helper, which lives to say how the task ended (a launcher the
/// limit killed is reported as killed, and the group's OOM count makes
/// that `memory_exceeded`). No `oom_score_adj` is needed, which a root
/// without CAP_SYS_RESOURCE could not set anyway.
#[allow(unsafe_code)]
fn supervise(spec: &HelperSpec) -> Result<HelperStatus, String> {
    use nix::sys::wait::{WaitStatus, waitpid};
    use std::io::Read as _;
    // A session of its own: no controlling terminal (the operator's, under
    // `fabric up`) for the task to read or push input into.
    nix::unistd::setsid().map_err(|e| format!("setsid: {e}"))?;
    // The helper dies with its worker, and everything below it with it.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| format!("prctl(PR_SET_PDEATHSIG): {e}"))?;
    let (read, write) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the helper has one thread (it is the `fabric` binary in its
    // hidden mode, before any runtime starts); the child only runs
    // `launch` and exits.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        nix::unistd::ForkResult::Child => {
            drop(read);
            let status = launch(spec).unwrap_or_else(HelperStatus::SetupFailed);
            let mut out = std::fs::File::from(write);
            if let Ok(text) = serde_json::to_vec(&status) {
                use std::io::Write as _;
                let _ = out.write_all(&text);
            }
            drop(out);
            // SAFETY: leaves the forked child without running the
            // parent's exit handlers.
            unsafe { nix::libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(write);
            let mut said = Vec::new();
            let _ = std::fs::File::from(read)
                .take(MAX_STATUS)
                .read_to_end(&mut said);
            let waited = waitpid(child, None).map_err(|e| format!("waitpid: {e}"))?;
            if let Ok(status) = serde_json::from_slice::<HelperStatus>(&said) {
                return Ok(status);
            }
            match waited {
                WaitStatus::Signaled(_, sig, _) => Ok(HelperStatus::Signaled(sig as i32)),
                other => Err(format!(
                    "the sandbox's launcher ended without a word ({other:?})"
                )),
            }
        }
    }
}

/// The launcher: joins the task's cgroups, becomes the task's uid, builds
/// the sandbox and runs the task's init in it; how the program ended.
fn launch(spec: &HelperSpec) -> Result<HelperStatus, String> {
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
    .file("/etc/hostname", "fabric-task\n");
    writable_mounts(&mut c, spec);
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
        c.landlock_ruleset(ruleset(spec.exec_in_work)?);
    }
    if spec.seccomp {
        c.seccomp_filter(crate::filter::task_filter());
    }
    let mut env = spec.env.clone();
    for (i, name) in spec.secret_names.iter().enumerate() {
        if let Some(value) = std::env::var_os(crate::spec::secret_var(i)) {
            env.push((name.clone(), value.to_string_lossy().into_owned()));
        }
    }
    let env = crate::spec::task_env(&env);
    let program = crate::init::Program::new(&spec.program.to_string_lossy(), &spec.args, &env);
    // SAFETY (hakoniwa's contract for closures): the helper is single
    // threaded, so the forked process may allocate; the closure only
    // forks, execs and waits.
    #[allow(unsafe_code)]
    let mut cmd = unsafe { c.command_from_closure(move || crate::init::run(&program)) };
    cmd.current_dir("/work")
        .wait_timeout(spec.timeout_secs.max(1));
    let status = cmd
        .status()
        .map_err(|e| format!("starting the sandbox: {e}"))?;
    Ok(match status.exit_code {
        // Init reports a program a signal ended as 128 + the signal, as
        // shells do.
        Some(code) if code > 128 && code <= 128 + 64 => HelperStatus::Signaled(code - 128),
        Some(code) => HelperStatus::Exited(code),
        None if status.code > 128 && status.code < 128 + 65 => {
            HelperStatus::Signaled(status.code - 128)
        }
        None => HelperStatus::SetupFailed(status.reason),
    })
}

/// The places a task may write: `/work` and `/tmp` (its disk, bound from
/// the task's dir) and a `/dev` of the few device files programs need;
/// all `nosuid,nodev` and, unless the worker opted in, `noexec`.
fn writable_mounts(c: &mut Container, spec: &HelperSpec) {
    let mut opts = MountOptions::NOSUID | MountOptions::NODEV;
    if !spec.exec_in_work {
        opts |= MountOptions::NOEXEC;
    }
    let bind = MountOptions::BIND | MountOptions::REC;
    c.mount(
        &spec.scratch.to_string_lossy(),
        "/work",
        "",
        bind | opts,
        None,
    );
    c.mount(&spec.tmp.to_string_lossy(), "/tmp", "", bind | opts, None);
    let dev = MountOptions::NOSUID | MountOptions::NODEV | MountOptions::NOEXEC;
    c.mount(
        "tmpfs",
        "/dev",
        "tmpfs",
        dev,
        Some("mode=755,size=64k".into()),
    );
    for node in DEV_NODES {
        let path = format!("/dev/{node}");
        // A device file's own bind mount keeps `dev`: it is the one
        // place a device may be opened.
        c.mount(
            &path,
            &path,
            "",
            bind | MountOptions::NOSUID | MountOptions::NOEXEC,
            None,
        );
    }
    for (fd, name) in ["stdin", "stdout", "stderr"].iter().enumerate() {
        c.symlink(&format!("/proc/self/fd/{fd}"), &format!("/dev/{name}"));
    }
    c.symlink("/proc/self/fd", "/dev/fd");
}

/// The device files a task sees.
const DEV_NODES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

/// Read and run the system; read `/etc` and `/proc`; read and write the
/// task's own dirs and the device files, but run nothing there unless the
/// worker opted in; nothing else of the file system. hakoniwa applies it
/// before the task's init runs, so to init and program alike.
fn ruleset(exec_in_work: bool) -> Result<Ruleset, String> {
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
    let own = if exec_in_work { "rwx" } else { "rw-" };
    for dir in ["/work", "/tmp"] {
        r.allow_path(dir, access(own)?);
    }
    r.allow_path("/dev", access("rw-")?);
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
    // The uid change cleared the parent-death signal: a launcher whose
    // helper died takes its task with it.
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
        .map_err(|e| format!("prctl(PR_SET_PDEATHSIG): {e}"))?;
    Ok(())
}
