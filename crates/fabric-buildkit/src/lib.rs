//! Build-script helpers shared by `fabric-cli` (which embeds the example
//! guests for `fabric demo`) and `fabric-tests` (which runs them).
//!
//!
//! Guests build in their own target directory (`target/guests`): the outer
//! cargo holds the lock on the main one while build scripts run. Build
//! scripts talk to cargo on stdout, so printing is this crate's job.

#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The guest target triple.
pub const TARGET: &str = "wasm32-wasip1";

/// The workspace root, from a member's `CARGO_MANIFEST_DIR`.
pub fn workspace_root() -> PathBuf {
    let mut dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    while !dir.join("rust-toolchain.toml").exists() {
        assert!(dir.pop(), "no rust-toolchain.toml above CARGO_MANIFEST_DIR");
    }
    dir
}

/// Asks cargo to rerun the build script when guest sources change.
pub fn rerun_on_guest_changes(root: &Path) {
    for dir in [
        "examples",
        "guest-sdk/src",
        "guest-sdk/Cargo.toml",
        "crates/fabric-buildkit/src",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// Fails with a clear message if the wasm target is not installed.
pub fn check_target_installed(rustc: &str) {
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {rustc} --print sysroot: {e}"));
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let lib = Path::new(&sysroot).join("lib/rustlib").join(TARGET);
    assert!(
        lib.exists(),
        "the {TARGET} target is not installed for {sysroot}: run `rustup target add {TARGET}` (.ci/run does this)"
    );
}

/// The separate target directory guests build in.
pub fn guest_target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("guests")
}

/// Builds `packages` for wasm32-wasip1 in release; returns the directory
/// holding the `.wasm` files.
pub fn build_guests(root: &Path, packages: &[&str]) -> PathBuf {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    check_target_installed(&rustc);
    let target_dir = guest_target_dir(root);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.current_dir(root)
        .args(["build", "--release", "--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir);
    for p in packages {
        cmd.args(["-p", p]);
    }
    // Flags meant for the host build must not leak into the guest build.
    let status = cmd
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_PRIMARY_PACKAGE")
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cargo} to build the wasm guests: {e}"));
    assert!(
        status.success(),
        "building the wasm guests (cargo build --target {TARGET} -p {}) failed; see the output above",
        packages.join(" -p ")
    );
    target_dir.join(TARGET).join("release")
}
