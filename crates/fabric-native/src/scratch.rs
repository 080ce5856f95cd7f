//! A native task's host-side dir under the worker's work root:
//!
//! ```text
//! <work root>/<worker>.<task>-<attempt>/   0710, the worker's, group: the task's own gid
//!     spec.json  status.json               0600, the worker's
//!     root/                                the sandbox's root is built on it
//!     fs/                                  a tmpfs of the task's disk limit (when root)
//!         work/  tmp/                      the task's /work and /tmp, 0700, the task's uid
//! ```
//!
//! Only the worker and the task's own uid can pass the task's dir (its
//! helper must, to bind `work/` and `tmp/` into the sandbox); no other
//! local user can read the spec (it holds the task's env) or reach what
//! the task wrote. The tmpfs is mounted `nosuid,nodev` and, unless the
//! worker opted in, `noexec` (the kernel enforces its size: the disk
//! limit, staged files included); its pages are charged to the memory
//! cgroup of whoever writes them, so the task's files count against its
//! memory limit too. Removing the dir unmounts the tmpfs first, which
//! frees every file at once however many the task made.

use std::path::{Path, PathBuf};

/// The host side of one native task; removed on drop.
#[derive(Debug)]
pub(crate) struct TaskDir {
    /// The task's dir.
    pub dir: PathBuf,
    /// The sandbox's root (an empty dir).
    pub root: PathBuf,
    /// Bound as `/work`.
    pub work: PathBuf,
    /// Bound as `/tmp`.
    pub tmp: PathBuf,
    /// The tmpfs, when one is mounted.
    fs: Option<PathBuf>,
    removed: bool,
}

/// How a task's dir is made.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DirPlan {
    /// The task's host uid (and gid); `None`: the worker's own.
    pub uid: Option<u32>,
    /// Mount a tmpfs of this many bytes for `/work` and `/tmp` (the
    /// worker is root); `None`: plain dirs, no disk limit.
    pub disk_bytes: Option<u64>,
    /// Leave out `noexec`: tasks may run what they write.
    pub exec: bool,
}

impl TaskDir {
    /// Makes the dir for task `name` under `work_root`.
    pub fn make(work_root: &Path, name: &str, plan: DirPlan) -> std::io::Result<Self> {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = work_root.join(name);
        std::fs::create_dir(&dir)?;
        let mut me = Self {
            root: dir.join("root"),
            work: dir.join("work"),
            tmp: dir.join("tmp"),
            dir,
            fs: None,
            removed: false,
        };
        match plan.uid {
            Some(uid) => {
                nix::unistd::chown(&me.dir, None, Some(nix::unistd::Gid::from_raw(uid)))?;
                std::fs::set_permissions(&me.dir, std::fs::Permissions::from_mode(0o710))?;
            }
            None => std::fs::set_permissions(&me.dir, std::fs::Permissions::from_mode(0o700))?,
        }
        std::fs::create_dir(&me.root)?;
        if let Some(bytes) = plan.disk_bytes {
            let fs = me.dir.join("fs");
            std::fs::create_dir(&fs)?;
            mount_tmpfs(&fs, bytes, plan.exec)?;
            me.fs = Some(fs.clone());
            me.work = fs.join("work");
            me.tmp = fs.join("tmp");
        }
        std::fs::create_dir(&me.work)?;
        std::fs::create_dir(&me.tmp)?;
        for d in [&me.work, &me.tmp] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(me)
    }

    /// A file of the worker's in the task's dir, written 0600.
    pub fn write_private(&self, file: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = self.dir.join(file);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?
            .write_all(bytes)?;
        Ok(path)
    }

    /// Whether the task's disk is full (or within a page of it).
    pub fn disk_full(&self) -> bool {
        let Some(fs) = &self.fs else { return false };
        nix::sys::statvfs::statvfs(fs)
            .is_ok_and(|s| s.blocks_available().saturating_mul(s.fragment_size()) < 8 << 10)
    }

    /// Unmounts the tmpfs and removes the dir.
    pub fn remove(mut self) -> std::io::Result<()> {
        self.remove_now()
    }

    fn remove_now(&mut self) -> std::io::Result<()> {
        if self.removed {
            return Ok(());
        }
        self.removed = true;
        if let Some(fs) = &self.fs {
            unmount(fs)?;
        }
        std::fs::remove_dir_all(&self.dir)
    }
}

impl Drop for TaskDir {
    fn drop(&mut self) {
        if let Err(e) = self.remove_now() {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot remove a native task's dir");
        }
    }
}

fn mount_tmpfs(at: &Path, bytes: u64, exec: bool) -> std::io::Result<()> {
    use nix::mount::MsFlags;
    let mut flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    if !exec {
        flags |= MsFlags::MS_NOEXEC;
    }
    // At least a page: `size=0` would mean no limit.
    let data = format!("size={},mode=0711", bytes.max(4096));
    nix::mount::mount(Some("tmpfs"), at, Some("tmpfs"), flags, Some(data.as_str()))
        .map_err(|e| std::io::Error::other(format!("mounting the task's disk: {e}")))
}

fn unmount(at: &Path) -> std::io::Result<()> {
    match nix::mount::umount2(at, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(std::io::Error::other(format!(
            "unmounting {}: {e}",
            at.display()
        ))),
    }
}

/// Removes every task dir under `work_root` (left by a worker that was
/// killed: their processes are gone with their cgroups, or with the
/// helpers whose death took their pid namespaces down); how many.
pub(crate) fn sweep(work_root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(work_root) else {
        return 0;
    };
    let mut found = 0;
    for e in entries.flatten() {
        let dir = e.path();
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        found += 1;
        let _ = unmount(&dir.join("fs"));
        if let Err(err) = std::fs::remove_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), error = %err, "cannot remove a native task's dir left by a killed worker");
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

    #[test]
    fn the_dir_is_private_and_goes_with_its_files() {
        let root = tempfile::tempdir().unwrap();
        let plan = DirPlan {
            uid: None,
            disk_bytes: None,
            exec: false,
        };
        let d = TaskDir::make(root.path(), "t-1", plan).unwrap();
        let spec = d.write_private("spec.json", b"{}").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&d.dir), 0o700);
        assert_eq!(mode(&spec), 0o600);
        assert_eq!(mode(&d.work), 0o700);
        assert!(!d.disk_full());
        std::fs::write(d.work.join("f"), b"x").unwrap();
        let dir = d.dir.clone();
        drop(d);
        assert!(!dir.exists());
        // A task dir left behind is swept.
        let left = root.path().join("t-2");
        std::fs::create_dir_all(left.join("work/deep")).unwrap();
        assert_eq!(sweep(root.path()), 1);
        assert!(!left.exists());
    }

    /// Mounts a tmpfs, as a root worker does: needs root, which the CI has.
    #[test]
    fn a_disk_is_a_tmpfs_of_its_size_with_the_tasks_group_on_the_dir() {
        if !nix::unistd::Uid::effective().is_root() {
            panic!("this test mounts a tmpfs: run it as root (the CI runs as root)");
        }
        let root = tempfile::tempdir().unwrap();
        let plan = DirPlan {
            uid: Some(4_000_123),
            disk_bytes: Some(1 << 20),
            exec: false,
        };
        let d = TaskDir::make(root.path(), "t-3", plan).unwrap();
        let meta = std::fs::metadata(&d.dir).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o710);
        assert_eq!(meta.gid(), 4_000_123);
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let fs = d.dir.join("fs").display().to_string();
        let line = mounts
            .lines()
            .find(|l| l.split(' ').nth(4) == Some(fs.as_str()))
            .expect("the task's tmpfs is mounted");
        for opt in ["nosuid", "nodev", "noexec"] {
            assert!(line.contains(opt), "{opt} missing: {line}");
        }
        // The kernel stops a write at the size.
        let big = vec![0u8; 2 << 20];
        let err = std::fs::write(d.work.join("big"), &big).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::libc::ENOSPC), "{err}");
        assert!(d.disk_full());
        let dir = d.dir.clone();
        d.remove().unwrap();
        assert!(!dir.exists());
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&fs), "the tmpfs is unmounted");
    }
}
