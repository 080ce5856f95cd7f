//! The `fabric` binary and guests this run built, and a scratch home per
//! test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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

/// The `fabric` binary cargo built for this test run.
pub fn fabric_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/e2e-<hash> -> target/<profile>/fabric
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let bin = dir.join(format!("fabric{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} is missing: run the suite with `cargo test --workspace`, which builds the fabric binary",
        bin.display()
    );
    bin
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

    /// Gives `cmd` only this home's environment (HOME, XDG_DATA_HOME, PATH)
    /// and no stdin. A dispatcher started this way serves its REST API on
    /// a free port (`FABRIC_API`), so tests running side by side never
    /// fight over the default one.
    pub fn isolate(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("HOME", self.dir.path())
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("FABRIC_API", "127.0.0.1:0")
            .stdin(Stdio::null());
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

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs a command to completion, feeding `stdin`.
pub fn run_with_input(cmd: &mut Command, stdin: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn fabric");
    let mut pipe = child.stdin.take().expect("stdin pipe");
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait for fabric");
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

/// Renders a finished process for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
