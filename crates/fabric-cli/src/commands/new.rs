//! `fabric new NAME`: a ready crate for a wasm32-wasip1 task on the guest
//! SDK. The SDK is not on crates.io, so this binary carries its source and
//! writes it into the crate (`fabric-guest/`) as a path dependency: the
//! crate builds anywhere with the Rust toolchain and crates.io alone.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cli::NewArgs;
use crate::output;
use crate::usage;

const CARGO_TOML: &str = include_str!("../../templates/task/Cargo.toml");
const MAIN_RS: &str = include_str!("../../templates/task/main.rs");
const README: &str = include_str!("../../templates/task/README.md");
const INPUT: &str = include_str!("../../templates/task/input.json");
const GITIGNORE: &str = include_str!("../../templates/task/gitignore");
const SDK_CARGO_TOML: &str = include_str!("../../templates/task/sdk-Cargo.toml");
const SDK_LIB: &str = include_str!("../../../../guest-sdk/src/lib.rs");
const SDK_IMPORTS: &str = include_str!("../../../../guest-sdk/src/imports.rs");

pub(crate) fn execute(args: &NewArgs) -> anyhow::Result<i32> {
    let name = crate_name(&args.path)?;
    let dir = &args.path;
    if dir.exists() && (!dir.is_dir() || dir.read_dir()?.next().is_some()) {
        return Err(usage(format!(
            "{} already exists and is not empty: fabric new writes a new crate",
            dir.display()
        )));
    }
    let files = files(&name);
    for (path, text) in &files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    output::created(dir, &name);
    Ok(0)
}

/// The crate's files, relative to its dir.
fn files(name: &str) -> Vec<(PathBuf, String)> {
    let fill = |t: &str| {
        t.replace("{{name}}", name)
            .replace("{{version}}", env!("CARGO_PKG_VERSION"))
    };
    [
        ("Cargo.toml", fill(CARGO_TOML)),
        ("src/main.rs", fill(MAIN_RS)),
        ("README.md", fill(README)),
        ("input.json", INPUT.to_owned()),
        (".gitignore", GITIGNORE.to_owned()),
        ("fabric-guest/Cargo.toml", fill(SDK_CARGO_TOML)),
        ("fabric-guest/src/lib.rs", SDK_LIB.to_owned()),
        ("fabric-guest/src/imports.rs", SDK_IMPORTS.to_owned()),
    ]
    .into_iter()
    .map(|(p, t)| (PathBuf::from(p), t))
    .collect()
}

/// The package name: the path's last part, if cargo would take it.
fn crate_name(path: &Path) -> anyhow::Result<String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| usage(format!("{} does not end in a crate name", path.display())))?;
    let mut chars = name.chars();
    let starts_well = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !starts_well
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(usage(format!(
            "{name:?} is not a crate name: use ASCII letters, digits, '-' and '_', starting with a letter"
        )));
    }
    if [
        "fabric-guest",
        "fabric_guest",
        "test",
        "std",
        "core",
        "alloc",
    ]
    .contains(&name)
    {
        return Err(usage(format!("{name:?} is taken: pick another crate name")));
    }
    Ok(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dependencies a manifest names, by name.
    fn deps(manifest: &str) -> Vec<String> {
        let doc: toml::Table = manifest.parse().unwrap();
        let mut names: Vec<String> = doc["dependencies"]
            .as_table()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    }

    #[test]
    fn the_sdk_copy_depends_on_what_the_sdk_depends_on() {
        let sdk = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest-sdk/Cargo.toml"),
        )
        .unwrap();
        assert_eq!(deps(&files("x")[5].1), deps(&sdk));
    }

    #[test]
    fn names_cargo_would_refuse_are_refused() {
        for bad in ["1task", "my task", "tâche", "-x", "fabric-guest"] {
            assert!(crate_name(Path::new(bad)).is_err(), "{bad}");
        }
        assert_eq!(
            crate_name(Path::new("a/b/word-count")).unwrap(),
            "word-count"
        );
    }

    #[test]
    fn every_placeholder_is_filled() {
        for (path, text) in files("wc") {
            assert!(!text.contains("{{"), "{}", path.display());
        }
    }
}
