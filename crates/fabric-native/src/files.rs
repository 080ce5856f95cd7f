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

/// Copies `files` into `scratch` (a fresh dir only this worker wrote to),
/// owned by `uid` when given.
pub(crate) fn stage_in(scratch: &Path, files: &[Staged], uid: Option<u32>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let own = |p: &Path| match uid {
        Some(u) => {
            nix::unistd::chown(p, Some(u.into()), Some(u.into())).map_err(std::io::Error::from)
        }
        None => Ok(()),
    };
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
                own(&dir)?;
            }
        }
        std::fs::copy(&f.source, &target)?;
        let mode = if f.executable { 0o755 } else { 0o644 };
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))?;
        own(&target)?;
    }
    Ok(())
}

/// Regular files under `scratch` whose relative path matches one of
/// `globs`, up to `cap` bytes in all; and a note when some were left out.
pub(crate) fn collect(
    scratch: &Path,
    globs: &[String],
    cap: u64,
) -> (Vec<OutputFile>, Option<String>) {
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let patterns: Vec<glob::Pattern> = globs
        .iter()
        .filter_map(|g| glob::Pattern::new(g).ok())
        .collect();
    if patterns.is_empty() {
        return (Vec::new(), None);
    }
    let mut found = Vec::new();
    let mut stack = vec![(scratch.to_path_buf(), 0usize)];
    let mut walked = 0;
    let mut total = 0u64;
    let mut left_out = 0usize;
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            walked += 1;
            if walked > MAX_WALK {
                break;
            }
            let path = entry.path();
            // Never follows a link: a link's target is not the task's.
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_dir() {
                if depth < MAX_DEPTH {
                    stack.push((path, depth + 1));
                }
                continue;
            }
            if !meta.is_file() {
                continue;
            }
            let Ok(rel) = path.strip_prefix(scratch) else {
                continue;
            };
            let Some(rel) = rel.to_str() else { continue };
            if !patterns.iter().any(|p| p.matches_with(rel, opts)) {
                continue;
            }
            if total + meta.len() > cap {
                left_out += 1;
                continue;
            }
            if let Ok(bytes) = std::fs::read(&path) {
                use std::os::unix::fs::PermissionsExt as _;
                total += bytes.len() as u64;
                found.push(OutputFile {
                    path: rel.to_owned(),
                    bytes,
                    executable: meta.permissions().mode() & 0o111 != 0,
                });
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    let note = (left_out > 0).then(|| {
        format!(
            "{left_out} matching output file(s) left out: output files are capped at {} in all",
            fabric_proto::format_size(cap)
        )
    });
    (found, note)
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
        stage_in(&scratch, &files, None).unwrap();
        assert_eq!(std::fs::read(scratch.join("a/b/x.c")).unwrap(), b"int x;");
        let bad = [Staged {
            path: "../escape".into(),
            source: src,
            executable: false,
        }];
        assert!(stage_in(&scratch, &bad, None).is_err());
    }
}
