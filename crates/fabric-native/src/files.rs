//! Files in and out of a native task's scratch dir: staged files copied in
//! under their relative paths before the run, and regular files matching
//! the output globs read back after it (never following a link, so
//! nothing outside the scratch dir is ever read), capped in bytes.

use std::path::{Path, PathBuf};

use fabric_proto::{OutputFile, check_relative_path};

/// Entries walked at most when collecting outputs.
const MAX_WALK: usize = 100_000;
/// Directory depth walked at most.
const MAX_DEPTH: usize = 64;

/// A file to place in the scratch dir.
#[derive(Clone, Debug)]
pub struct Staged {
    /// Where, relative to the scratch dir.
    pub path: String,
    /// The host file holding its bytes (the worker's cache).
    pub source: PathBuf,
    /// Whether it is made executable.
    pub executable: bool,
}

/// Copies `files` into `scratch`, a fresh root-owned dir no task can
/// write to yet: nothing can be swapped under the copies. The tree is
/// handed to the task's uid afterwards ([`own_tree`]).
pub(crate) fn stage_in(scratch: &Path, files: &[Staged]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    for f in files {
        check_relative_path(&f.path).map_err(std::io::Error::other)?;
        let target = scratch.join(&f.path);
        let mut dir = scratch.to_path_buf();
        for part in Path::new(&f.path)
            .parent()
            .into_iter()
            .flat_map(Path::components)
        {
            dir.push(part);
            if !dir.exists() {
                std::fs::create_dir(&dir)?;
            }
        }
        std::fs::copy(&f.source, &target)?;
        let mode = if f.executable { 0o755 } else { 0o644 };
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Gives `root` and everything under it (all made by this worker) to
/// `uid`, never following a link.
pub(crate) fn own_tree(root: &Path, uid: u32) -> std::io::Result<()> {
    use nix::fcntl::AtFlags;
    use nix::unistd::{Gid, Uid, fchownat};
    let own = |p: &Path| {
        fchownat(
            None,
            p,
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(uid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(std::io::Error::from)
    };
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p)?;
        if meta.is_dir() {
            for e in std::fs::read_dir(&p)? {
                stack.push(e?.path());
            }
        }
        own(&p)?;
    }
    Ok(())
}

/// Regular files under `scratch` whose relative path matches one of
/// `globs`, up to `cap` bytes in all; and a note when some were left out.
///
/// Runs as root over a tree a task wrote, perhaps with task processes
/// still alive: every component is opened relative to its parent's open
/// directory (`/proc/self/fd/N/name`) with `O_NOFOLLOW`, so a link swapped
/// in at any level is never followed, and a file is read through its own
/// descriptor only if that descriptor is a regular file, at most up to the
/// bytes left in the cap (`O_NONBLOCK`: a FIFO cannot stall it).
pub(crate) fn collect(
    scratch: &Path,
    globs: &[String],
    cap: u64,
) -> (Vec<OutputFile>, Option<String>) {
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        // `*` does not pick up dot files (`.git/hooks/...`) unless asked.
        require_literal_leading_dot: true,
    };
    let patterns: Vec<glob::Pattern> = globs
        .iter()
        .filter_map(|g| glob::Pattern::new(g).ok())
        .collect();
    if patterns.is_empty() {
        return (Vec::new(), None);
    }
    let Ok(root) = open_nofollow(scratch) else {
        return (
            Vec::new(),
            Some("the task's dir could not be read back".into()),
        );
    };
    let mut walk = Walk {
        patterns,
        opts,
        cap,
        total: 0,
        walked: 0,
        left_out: 0,
        found: Vec::new(),
    };
    walk.dir(&root, "", 0);
    let mut found = walk.found;
    found.sort_by(|a, b| a.path.cmp(&b.path));
    let note = (walk.left_out > 0).then(|| {
        format!(
            "{} matching output file(s) left out: output files are capped at {} in all",
            walk.left_out,
            fabric_proto::format_size(cap)
        )
    });
    (found, note)
}

/// Opens `path` for reading without following a link at its last
/// component, without blocking.
fn open_nofollow(path: &Path) -> std::io::Result<std::fs::File> {
    use nix::fcntl::OFlag;
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
        .open(path)
}

struct Walk {
    patterns: Vec<glob::Pattern>,
    opts: glob::MatchOptions,
    cap: u64,
    total: u64,
    walked: usize,
    left_out: usize,
    found: Vec<OutputFile>,
}

impl Walk {
    /// The entries of the open directory `dir`, whose path is `prefix`.
    fn dir(&mut self, dir: &std::fs::File, prefix: &str, depth: usize) {
        use std::io::Read as _;
        use std::os::fd::AsRawFd as _;
        use std::os::unix::fs::PermissionsExt as _;
        let here = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
        let Ok(entries) = std::fs::read_dir(&here) else {
            return;
        };
        for entry in entries.flatten() {
            self.walked += 1;
            if self.walked > MAX_WALK {
                return;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            // A link (swapped in now or before) fails to open: ELOOP.
            let Ok(file) = open_nofollow(&here.join(&name)) else {
                continue;
            };
            let Ok(meta) = file.metadata() else { continue };
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if meta.is_dir() {
                if depth < MAX_DEPTH {
                    self.dir(&file, &rel, depth + 1);
                }
                continue;
            }
            if !meta.is_file()
                || !self
                    .patterns
                    .iter()
                    .any(|p| p.matches_with(&rel, self.opts))
            {
                continue;
            }
            let room = self.cap.saturating_sub(self.total);
            let mut bytes = Vec::new();
            if file
                .take(room.saturating_add(1))
                .read_to_end(&mut bytes)
                .is_err()
            {
                continue;
            }
            if bytes.len() as u64 > room {
                self.left_out += 1;
                continue;
            }
            self.total += bytes.len() as u64;
            self.found.push(OutputFile {
                path: rel,
                bytes,
                executable: meta.permissions().mode() & 0o111 != 0,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_match_by_glob_skip_links_and_respect_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let s = dir.path();
        std::fs::create_dir_all(s.join("out/deep")).unwrap();
        std::fs::write(s.join("out/a.o"), b"aa").unwrap();
        std::fs::write(s.join("out/deep/b.o"), b"bb").unwrap();
        std::fs::write(s.join("c.txt"), b"cc").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", s.join("out/link.o")).unwrap();
        let (files, note) = collect(s, &["out/*.o".into()], 1 << 20);
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["out/a.o"],
            "`*` stays within a dir; links are skipped"
        );
        assert!(note.is_none());
        let (files, _) = collect(s, &["out/**/*.o".into(), "*.txt".into()], 1 << 20);
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["c.txt", "out/a.o", "out/deep/b.o"]);
        let (files, note) = collect(s, &["**/*".into()], 3);
        assert_eq!(files.len(), 1);
        assert!(note.unwrap().contains("left out"));
    }

    #[test]
    fn a_linked_directory_a_fifo_and_dot_files_are_not_collected() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret.o"), b"secret").unwrap();
        let s = dir.path().join("work");
        std::fs::create_dir_all(&s).unwrap();
        // `out` is a link to a directory outside the task's dir.
        std::os::unix::fs::symlink(&outside, s.join("out")).unwrap();
        nix::unistd::mkfifo(&s.join("pipe.o"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        std::fs::create_dir_all(s.join(".git/hooks")).unwrap();
        std::fs::write(s.join(".git/hooks/pre-commit"), b"#!/bin/sh").unwrap();
        std::fs::write(s.join("real.o"), b"ok").unwrap();
        let (files, _) = collect(
            &s,
            &["out/*.o".into(), "*.o".into(), "**/*".into()],
            1 << 20,
        );
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["real.o"]);
    }

    #[test]
    fn staged_files_land_under_their_paths() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::write(&src, b"int x;").unwrap();
        let scratch = dir.path().join("work");
        std::fs::create_dir(&scratch).unwrap();
        let files = [Staged {
            path: "a/b/x.c".into(),
            source: src.clone(),
            executable: false,
        }];
        stage_in(&scratch, &files).unwrap();
        assert_eq!(std::fs::read(scratch.join("a/b/x.c")).unwrap(), b"int x;");
        let bad = [Staged {
            path: "../escape".into(),
            source: src,
            executable: false,
        }];
        assert!(stage_in(&scratch, &bad).is_err());
    }
}
