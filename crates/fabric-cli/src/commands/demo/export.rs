//! `fabric demo --export DIR`: the demo's modules and inputs as files, so
//! the README's commands can be tried on a cluster of one's own.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::{JOBS, SALES, TEXT, guests};
use crate::output::Output;

/// One exported file: its name in DIR, its bytes, and whether it is a
/// script to run.
struct ExportFile {
    name: &'static str,
    bytes: &'static [u8],
    executable: bool,
}

/// The REST examples, run from the exported dir (`sh rest/submit.sh
/// wordfreq.wasm book.txt`).
const REST: [(&str, &[u8]); 2] = [
    (
        "rest/submit.sh",
        include_bytes!("../../../../../examples/rest/submit.sh"),
    ),
    (
        "rest/submit.py",
        include_bytes!("../../../../../examples/rest/submit.py"),
    ),
];

/// What `--export` writes: every demo module plus inputs named as the
/// README's examples use them.
fn files() -> Vec<ExportFile> {
    let modules = [
        ("wordfreq.wasm", guests::WORDFREQ),
        ("primes.wasm", guests::PRIMES),
        ("mandelbrot.wasm", guests::MANDELBROT),
        ("json-transform.wasm", guests::JSON_TRANSFORM),
        ("spin.wasm", guests::SPIN),
    ];
    let examples: [(&str, &[u8]); 1] = [("plain-wasi.wasm", guests::PLAIN_WASI)];
    let inputs: [(&str, &[u8]); 4] = [
        ("book.txt", TEXT.as_bytes()),
        ("req.json", br#"{"limit": 2000000}"#),
        ("tile.json", br#"{"width": 160, "height": 120}"#),
        ("sales.json", SALES.as_bytes()),
    ];
    debug_assert_eq!(modules.len(), JOBS.len());
    let data = modules.into_iter().chain(examples).chain(inputs);
    data.map(|(name, bytes)| ExportFile {
        name,
        bytes,
        executable: false,
    })
    .chain(REST.into_iter().map(|(name, bytes)| ExportFile {
        name,
        bytes,
        executable: true,
    }))
    .collect()
}

/// Writes the files into `dir` (made when missing). A file already there
/// with other content is left alone and named in the error, before
/// anything is written.
pub(super) fn execute(dir: &Path, output: Output) -> anyhow::Result<i32> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let files = files();
    let clashes: Vec<PathBuf> = files
        .iter()
        .map(|f| dir.join(f.name))
        .zip(&files)
        .filter(|(p, f)| std::fs::read(p).is_ok_and(|old| old != f.bytes))
        .map(|(p, _)| p)
        .collect();
    if let Some(first) = clashes.first() {
        return Err(crate::usage(format!(
            "{} already exists with other content; export into an empty directory",
            first.display()
        )));
    }
    let mut written = Vec::new();
    for f in &files {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join(f.name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&path, f.bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        if f.executable {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("cannot make {} executable", path.display()))?;
        }
        written.push(f.name);
    }
    output.demo_exported(dir, &written);
    Ok(0)
}
