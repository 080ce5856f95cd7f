//! Native tasks' files: `--file` paths walked and uploaded as blobs, and
//! the output files of a result written back under a directory, each path
//! checked so nothing lands outside it.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use fabric_client::Client;
use fabric_proto::{OutputFile, StagedFile, check_relative_path};

use crate::output;
use crate::usage;

/// Most files `--file` arguments may expand to.
const MAX_FILES: usize = 10_000;

/// Every file under the `--file` paths (files, or directories walked),
/// uploaded once by content, as the task's staged files.
pub(crate) async fn stage(
    client: &Client,
    paths: &[PathBuf],
    max_file: u64,
) -> anyhow::Result<Vec<StagedFile>> {
    let mut found = Vec::new();
    for p in paths {
        let text = p.to_string_lossy();
        let mut rel = text.trim_end_matches('/');
        while let Some(rest) = rel.strip_prefix("./") {
            rel = rest.trim_start_matches('/');
        }
        if rel.is_empty() || rel == "." {
            // The current directory: its contents, under their own names
            // (as a build expects its sources in /work).
            // A version-control dir is not part of what a build reads.
            let mut entries: Vec<PathBuf> = std::fs::read_dir(".")
                .context("reading --file . (the current directory)")?
                .filter_map(|e| e.ok().map(|e| PathBuf::from(e.file_name())))
                .filter(|p| !matches!(p.to_str(), Some(".git" | ".hg" | ".svn")))
                .collect();
            entries.sort();
            for e in entries {
                walk(&e, &mut found)?;
            }
            continue;
        }
        let rel = rel.to_owned();
        check_relative_path(&rel).map_err(|e| {
            usage(format!(
                "--file {e}: give a path inside the current directory; it keeps that path in the task's dir"
            ))
        })?;
        walk(Path::new(&rel), &mut found)?;
    }
    let mut staged = Vec::with_capacity(found.len());
    for (path, executable) in found {
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len > max_file {
            return Err(usage(format!(
                "--file {} is {}, over the largest file the cluster takes ({})",
                path.display(),
                fabric_proto::format_size(len),
                fabric_proto::format_size(max_file)
            )));
        }
        let bytes = std::fs::read(&path)
            .map_err(|e| usage(format!("cannot read --file {}: {e}", path.display())))?;
        let blob = client.upload_input(&bytes).await?;
        staged.push(StagedFile {
            path: path.to_string_lossy().into_owned(),
            blob,
            executable,
        });
    }
    Ok(staged)
}

/// Regular files under `path` (itself, when it is one), with their
/// executable bits; links are refused rather than followed.
fn walk(path: &Path, found: &mut Vec<(PathBuf, bool)>) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| usage(format!("cannot read --file {}: {e}", path.display())))?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .with_context(|| format!("reading --file {}", path.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            walk(&e, found)?;
        }
    } else if meta.is_file() {
        found.push((path.to_path_buf(), meta.permissions().mode() & 0o111 != 0));
        if found.len() > MAX_FILES {
            return Err(usage(format!("--file: more than {MAX_FILES} files")));
        }
    } else {
        return Err(usage(format!(
            "--file {}: not a regular file or directory (links are not followed)",
            path.display()
        )));
    }
    Ok(())
}

/// Writes a result's output files under `dir`; says what it wrote unless
/// `quiet`.
pub(crate) fn write_all(dir: &Path, files: &[OutputFile], quiet: bool) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if files.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for f in files {
        check_relative_path(&f.path)
            .map_err(|e| anyhow::anyhow!("refusing an output file: {e}"))?;
        // Never through a link already in the directory (`build ->
        // /home/u`): every existing part must be a real directory.
        let parts: Vec<&str> = f.path.split('/').collect();
        let mut at = dir.to_path_buf();
        for (i, part) in parts.iter().enumerate() {
            at.push(part);
            let last = i + 1 == parts.len();
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => anyhow::bail!(
                    "refusing to write output file {} through the link {}",
                    f.path,
                    at.display()
                ),
                Ok(m) if !last && !m.is_dir() => anyhow::bail!(
                    "cannot write output file {}: {} is not a directory",
                    f.path,
                    at.display()
                ),
                Ok(_) => {}
                Err(_) if !last => {
                    std::fs::create_dir(&at)
                        .with_context(|| format!("creating {}", at.display()))?;
                }
                Err(_) => {}
            }
        }
        let target = dir.join(&f.path);
        {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
                .open(&target)
                .and_then(|mut out| out.write_all(&f.bytes))
                .with_context(|| format!("writing {}", target.display()))?;
        }
        let mode = if f.executable { 0o755 } else { 0o644 };
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", target.display()))?;
    }
    if quiet {
        return Ok(());
    }
    let names: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    output::note(&format!(
        "wrote {} output file{} into {}: {}",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        dir.display(),
        names.join(", ")
    ));
    Ok(())
}
