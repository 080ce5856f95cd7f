//! A crate dir where a module is expected (`fabric exec DIR`, `fabric
//! submit DIR`): cargo builds it for wasm32-wasip1 in release mode, its own
//! output on stderr, and the binary it made is the module. Cargo decides
//! what is fresh, so an unchanged crate is not rebuilt.

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context as _;
use cargo_metadata::Message;

use crate::usage;

/// The guest target.
const TARGET: &str = "wasm32-wasip1";

/// The module `arg` names: the file itself, or what cargo builds when it
/// is a crate dir (`bin` picks one binary of several).
pub(crate) fn module_path(arg: &Path, bin: Option<&str>) -> anyhow::Result<PathBuf> {
    if !arg.is_dir() {
        if bin.is_some() {
            return Err(usage(format!(
                "--bin picks a binary of a crate dir, and {} is not a directory",
                arg.display()
            )));
        }
        return Ok(arg.to_path_buf());
    }
    let manifest = arg.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(usage(format!(
            "{} is a directory without a Cargo.toml: give a .wasm file or a crate dir",
            arg.display()
        )));
    }
    // Absolute: cargo runs from the crate's dir.
    let manifest = manifest
        .canonicalize()
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    build(&manifest, bin)
}

fn build(manifest: &Path, bin: Option<&str>) -> anyhow::Result<PathBuf> {
    let mut cmd = Command::new("cargo");
    // From the crate's own dir, so its rust-toolchain.toml and
    // .cargo/config.toml are the ones that count.
    if let Some(dir) = manifest.parent() {
        cmd.current_dir(dir);
    }
    cmd.args(["build", "--release", "--target", TARGET])
        .arg("--message-format=json-render-diagnostics")
        .arg("--manifest-path")
        .arg(manifest);
    if let Some(bin) = bin {
        cmd.args(["--bin", bin]);
    }
    // Flags meant for some other build (fabric run by cargo, say) must not
    // steer this one; the artifact's path comes from cargo itself.
    cmd.env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = cmd.spawn().map_err(|e| {
        usage(format!(
            "cannot run cargo to build {}: {e} (install Rust from https://rustup.rs, or give a .wasm file)",
            manifest.display()
        ))
    })?;
    let stdout = child.stdout.take().context("cargo's stdout")?;
    let mut wasm = Vec::new();
    for message in Message::parse_stream(BufReader::new(stdout)) {
        if let Message::CompilerArtifact(a) = message.context("reading cargo's messages")?
            && a.target.is_bin()
            && let Some(exe) = a.executable
        {
            wasm.push((a.target.name, exe.into_std_path_buf()));
        }
    }
    let status = child.wait().context("waiting for cargo")?;
    if !status.success() {
        return Err(usage(format!(
            "cargo build --release --target {TARGET} failed in {}{} (its errors are above)",
            manifest.parent().unwrap_or(manifest).display(),
            target_hint(manifest.parent())
        )));
    }
    pick(wasm, manifest)
}

/// The one binary built, or a usage error naming them all.
fn pick(mut built: Vec<(String, PathBuf)>, manifest: &Path) -> anyhow::Result<PathBuf> {
    match built.len() {
        1 => Ok(built.remove(0).1),
        0 => Err(usage(format!(
            "{} builds no binary: a task is a binary crate (src/main.rs; `fabric new NAME` writes one)",
            manifest.display()
        ))),
        _ => {
            let names: Vec<_> = built.iter().map(|(n, _)| n.as_str()).collect();
            Err(usage(format!(
                "{} builds {} binaries ({}): pick one with --bin NAME",
                manifest.display(),
                names.len(),
                names.join(", ")
            )))
        }
    }
}

/// "; the target is not installed: ..." when rustup says so (for the
/// toolchain the crate's dir picks).
fn target_hint(dir: Option<&Path>) -> String {
    let mut rustup = Command::new("rustup");
    if let Some(dir) = dir {
        rustup.current_dir(dir);
    }
    let installed = rustup
        .args(["target", "list", "--installed"])
        .stderr(Stdio::null())
        .output();
    match installed {
        Ok(out)
            if out.status.success()
                && !String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .any(|l| l.trim() == TARGET) =>
        {
            format!("; the {TARGET} target is not installed: rustup target add {TARGET}")
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_binaries_ask_for_bin_and_none_says_what_a_task_is() {
        let m = Path::new("/x/Cargo.toml");
        let two = vec![
            ("a".to_owned(), PathBuf::from("a.wasm")),
            ("b".to_owned(), PathBuf::from("b.wasm")),
        ];
        let e = pick(two, m).unwrap_err().to_string();
        assert!(
            e.contains("2 binaries (a, b)") && e.contains("--bin NAME"),
            "{e}"
        );
        let e = pick(Vec::new(), m).unwrap_err().to_string();
        assert!(e.contains("builds no binary"), "{e}");
        let one = vec![("a".to_owned(), PathBuf::from("a.wasm"))];
        assert_eq!(pick(one, m).unwrap(), PathBuf::from("a.wasm"));
    }

    #[test]
    fn a_file_is_its_own_module_and_bin_needs_a_dir() {
        let f = Path::new("/nonexistent/job.wasm");
        assert_eq!(module_path(f, None).unwrap(), f);
        assert!(module_path(f, Some("x")).is_err());
        let dir = tempfile::tempdir().unwrap();
        let e = module_path(dir.path(), None).unwrap_err().to_string();
        assert!(e.contains("without a Cargo.toml"), "{e}");
    }
}
