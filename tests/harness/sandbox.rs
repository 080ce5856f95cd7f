//! The `fabric` binary and guests this run built, and a scratch home per
//! test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::deadline::{DEADLINE, command_line, spawn_captured, wait_within};

/// Directory of the wasm guests built by `build.rs`.
pub const GUESTS_DIR: &str = env!("FABRIC_GUESTS_DIR");

/// The plain WASI example compiled with bare `rustc`.
pub const PLAIN_RUSTC_WASM: &str = env!("FABRIC_PLAIN_RUSTC_WASM");

/// Path to a guest built from `examples/`, e.g. `guest("wordfreq")`.
pub fn guest(name: &str) -> PathBuf {
    let p = Path::new(GUESTS_DIR).join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "guest {} was not built by tests/build.rs",
        p.display()
    );
    p
}

/// The `fabric` binary cargo built for this test run; fails the test when
/// it is missing or older than a source it is built from (see
/// [`check_fresh`]), so the suite never runs against a stale binary.
pub fn fabric_bin() -> PathBuf {
    static CHECKED: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let exe = std::env::current_exe().map_err(|e| format!("test binary path: {e}"))?;
            // target/<profile>/deps/e2e-<hash> -> target/<profile>/fabric
            let dir = exe
                .parent()
                .and_then(Path::parent)
                .ok_or("the test binary does not live in target/<profile>/deps")?;
            let bin = dir.join(format!("fabric{}", std::env::consts::EXE_SUFFIX));
            check_fresh(&bin, &dep_info_of(&bin))?;
            Ok(bin)
        })
        .clone()
        .unwrap_or_else(|why| panic!("{why}"))
}

/// The dep-info file cargo wrote for `bin` (`target/<profile>/fabric`).
/// `cargo build` writes `fabric.d` beside it; a build by `cargo test`
/// alone (a fresh clone) writes only `deps/fabric-<hash>.d`, beside the
/// file `bin` is a hard link of.
pub fn dep_info_of(bin: &Path) -> PathBuf {
    use std::os::unix::fs::MetadataExt as _;
    let beside = bin.with_extension("d");
    if beside.exists() {
        return beside;
    }
    let (Some(dir), Some(name), Ok(meta)) = (bin.parent(), bin.file_name(), std::fs::metadata(bin))
    else {
        return beside;
    };
    let prefix = format!("{}-", name.to_string_lossy());
    let linked = std::fs::read_dir(dir.join("deps"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
                && p.extension().is_none()
                && std::fs::metadata(p)
                    .is_ok_and(|m| m.dev() == meta.dev() && m.ino() == meta.ino())
        });
    linked.map_or(beside, |p| p.with_extension("d"))
}

/// What to run when the binary is missing or stale.
const BUILD_IT: &str =
    "run `cargo build -p fabric-cli` first (`cargo test --workspace` builds it too)";

/// Checks that `bin` exists and is newer than every file its dep-info
/// (`dep_info`, which cargo writes beside it: `bin: src1 src2 ...`) names.
pub fn check_fresh(bin: &Path, dep_info: &Path) -> Result<(), String> {
    let built = std::fs::metadata(bin)
        .and_then(|m| m.modified())
        .map_err(|e| format!("{} is missing ({e}): {BUILD_IT}", bin.display()))?;
    let deps = std::fs::read_to_string(dep_info).map_err(|e| {
        format!(
            "{} is missing ({e}), so the age of {} cannot be checked: {BUILD_IT}",
            dep_info.display(),
            bin.display()
        )
    })?;
    // Files cargo generated under the target dir (build scripts' output,
    // such as the embedded guests) are rewritten by `cargo clippy` and
    // `cargo check` without the binary being stale: only sources count.
    let target_root = bin.parent().and_then(Path::parent);
    for source in dep_info_sources(&deps) {
        if target_root.is_some_and(|t| source.starts_with(t)) {
            continue;
        }
        // A source that is gone no longer builds into it: cargo notices
        // through the file that named it.
        let Ok(changed) = std::fs::metadata(&source).and_then(|m| m.modified()) else {
            continue;
        };
        if changed > built {
            return Err(format!(
                "{} is older than {}, which it is built from: it would test stale code; {BUILD_IT}",
                bin.display(),
                source.display()
            ));
        }
    }
    Ok(())
}

/// The sources a cargo dep-info file lists for its first target (spaces in
/// paths are escaped with a backslash).
fn dep_info_sources(text: &str) -> Vec<PathBuf> {
    let line = text.lines().next().unwrap_or("");
    // "target: dep dep ..."; the target path itself may hold ": " only
    // escaped, so the first unescaped ": " ends it.
    let deps = line.split_once(": ").map_or("", |(_, d)| d);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = deps.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => cur.extend(chars.next()),
            ' ' => {
                if !cur.is_empty() {
                    out.push(PathBuf::from(std::mem::take(&mut cur)));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(PathBuf::from(cur));
    }
    out
}

/// A scratch home for one test: `fabric` runs with HOME and XDG dirs here so
/// no test touches the real user's data.
pub struct Sandbox {
    /// The temporary directory, removed on drop.
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    /// A fresh, empty home.
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A `fabric` command with the environment pointed at this home.
    pub fn fabric(&self) -> Command {
        let mut cmd = Command::new(fabric_bin());
        self.isolate(&mut cmd);
        cmd
    }

    /// Gives `cmd` only this home's environment (HOME, XDG_DATA_HOME, PATH,
    /// and FABRIC_LOG from `FABRIC_TEST_LOG`) and no stdin. A dispatcher started this way serves its REST API on
    /// a free port (`FABRIC_API`), so tests running side by side never
    /// fight over the default one.
    pub fn isolate(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("HOME", self.dir.path())
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("FABRIC_API", "127.0.0.1:0")
            .stdin(Stdio::null());
        if let Ok(filter) = std::env::var("FABRIC_TEST_LOG") {
            cmd.env("FABRIC_LOG", filter);
        }
    }

    /// Writes a file under this home and returns its path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).expect("write fixture");
        p
    }

    /// Compiles WAT text to a `.wasm` file under this home.
    pub fn wat(&self, name: &str, text: &str) -> PathBuf {
        let bytes = wat::parse_str(text).unwrap_or_else(|e| panic!("fixture {name}: {e}"));
        self.write(&format!("{name}.wasm"), &bytes)
    }
}

/// A failing test's process logs (the `*.stderr` files its processes
/// wrote) are copied to `$FABRIC_TEST_KEEP_LOGS/<test name>/` when that is
/// set, before the home is removed.
impl Drop for Sandbox {
    fn drop(&mut self) {
        let Some(keep) = std::env::var_os("FABRIC_TEST_KEEP_LOGS") else {
            return;
        };
        if !std::thread::panicking() {
            return;
        }
        let test = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .replace("::", "-");
        let to = Path::new(&keep).join(test);
        let Ok(entries) = std::fs::read_dir(self.dir.path()) else {
            return;
        };
        let _ = std::fs::create_dir_all(&to);
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "stderr") {
                let _ = std::fs::copy(&path, to.join(e.file_name()));
            }
        }
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs a command to completion within [`DEADLINE`], feeding `stdin`.
pub fn run_with_input(cmd: &mut Command, stdin: &[u8]) -> Output {
    use std::io::Write as _;
    let line = command_line(cmd);
    let mut child = spawn_captured(cmd.stdin(Stdio::piped()))
        .unwrap_or_else(|e| panic!("cannot run `{line}`: {e}"));
    let mut pipe = child.stdin.take().expect("stdin pipe");
    let data = stdin.to_vec();
    // The command may stop reading early (a cap): the write then fails,
    // which is its business, not the test's.
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&data);
    });
    let out = wait_within(child, &line, DEADLINE);
    let _ = writer.join();
    out
}

/// Parses the single JSON object `fabric --json` prints.
pub fn json_of(out: &Output) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON object ({e}).\nstdout: {text}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// What the fabric processes a test starts log (`FABRIC_LOG`):
/// `FABRIC_TEST_LOG` when set (say `info,openraft=info` to see a group's
/// elections in a failing test's output), else `default`.
pub fn log_filter(default: &str) -> String {
    std::env::var("FABRIC_TEST_LOG").unwrap_or_else(|_| default.to_owned())
}

/// Renders a finished process for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[cfg(test)]
mod tests {
    use super::{check_fresh, dep_info_of, dep_info_sources};
    use std::path::PathBuf;

    #[test]
    fn a_binary_built_by_cargo_test_alone_finds_its_dep_info_through_its_hard_link() {
        let dir = tempfile::tempdir().unwrap();
        let deps = dir.path().join("deps");
        std::fs::create_dir_all(&deps).unwrap();
        for other in ["fabric-00aa", "fabric-11bb"] {
            std::fs::write(deps.join(other), other).unwrap();
        }
        let hashed = deps.join("fabric-22cc");
        std::fs::write(&hashed, "the binary").unwrap();
        let bin = dir.path().join("fabric");
        std::fs::hard_link(&hashed, &bin).unwrap();
        assert_eq!(dep_info_of(&bin), deps.join("fabric-22cc.d"));
        // `cargo build` writes one beside it, which is then the one.
        std::fs::write(dir.path().join("fabric.d"), "").unwrap();
        assert_eq!(dep_info_of(&bin), dir.path().join("fabric.d"));
    }

    #[test]
    fn dep_info_lists_its_sources_with_escaped_spaces() {
        let got =
            dep_info_sources("/t/fabric: /a/src/lib.rs /b/my\\ dir/x.rs /c\n\n/a/src/lib.rs:\n");
        let want: Vec<PathBuf> = ["/a/src/lib.rs", "/b/my dir/x.rs", "/c"]
            .into_iter()
            .map(PathBuf::from)
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_binary_older_than_a_source_is_refused_and_a_newer_one_passes() {
        let dir = tempfile::tempdir().unwrap();
        let profile = dir.path().join("target/debug");
        let out = profile.join("build/fabric-cli-1/out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        let (bin, src, d) = (
            profile.join("fabric"),
            dir.path().join("src/lib.rs"),
            profile.join("fabric.d"),
        );
        let generated = out.join("guests.rs");
        let at = |p: &std::path::Path, secs: u64| {
            let f = std::fs::File::options()
                .write(true)
                .create(true)
                .truncate(false)
                .open(p)
                .unwrap();
            f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
                .unwrap();
        };
        std::fs::write(
            &d,
            format!(
                "{}: {} {}\n",
                bin.display(),
                src.display(),
                generated.display()
            ),
        )
        .unwrap();
        let missing = check_fresh(&bin, &d).unwrap_err();
        assert!(
            missing.contains("is missing") && missing.contains("cargo build -p fabric-cli"),
            "{missing}"
        );
        at(&src, 2_000_000_000);
        at(&bin, 1_000_000_000);
        let stale = check_fresh(&bin, &d).unwrap_err();
        assert!(
            stale.contains(&format!("is older than {}", src.display()))
                && stale.contains("cargo build -p fabric-cli"),
            "{stale}"
        );
        at(&bin, 2_000_000_001);
        check_fresh(&bin, &d).unwrap();
        // A build script's output rewritten later (by `cargo clippy`, say)
        // does not make the binary stale.
        at(&generated, 2_000_000_002);
        check_fresh(&bin, &d).unwrap();
    }
}
