//! Builds the guest programs the end-to-end tests run: the SDK examples and
//! the plain WASI program via cargo for wasm32-wasip1, and the plain program
//! once more with bare `rustc`, as a user without cargo would.
//!
//! The guests go to their own target directory (`target/guests`) because the
//! outer cargo holds the lock on the main one while build scripts run.

use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip1";

fn main() {
    let manifest_dir = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let root = manifest_dir
        .parent()
        .expect("tests/ lives in the workspace root")
        .to_path_buf();
    for dir in ["examples", "guest-sdk/src", "guest-sdk/Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(dir).display());
    }
    println!("cargo:rerun-if-changed=build.rs");

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    check_target_installed(&rustc);

    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args(["build", "--release", "--target", TARGET])
        .args(["-p", "fabric-examples", "-p", "plain-wasi"])
        .arg("--target-dir")
        .arg(&target_dir)
        // Flags meant for the host build must not leak into the guest build.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_PRIMARY_PACKAGE")
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cargo} to build the wasm guests: {e}"));
    assert!(
        status.success(),
        "building the wasm guests (cargo build --target {TARGET} -p fabric-examples -p plain-wasi) failed; see the output above"
    );
    let guests = target_dir.join(TARGET).join("release");
    println!("cargo:rustc-env=FABRIC_GUESTS_DIR={}", guests.display());

    // The same plain program, compiled by bare rustc.
    let plain = target_dir.join("plain-rustc.wasm");
    let status = Command::new(&rustc)
        .args(["--target", TARGET, "-O", "--edition", "2024"])
        .arg(root.join("examples/plain-wasi/src/main.rs"))
        .arg("-o")
        .arg(&plain)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .unwrap_or_else(|e| panic!("cannot run {rustc}: {e}"));
    assert!(
        status.success(),
        "rustc --target {TARGET} examples/plain-wasi/src/main.rs failed"
    );
    println!(
        "cargo:rustc-env=FABRIC_PLAIN_RUSTC_WASM={}",
        plain.display()
    );
}

fn check_target_installed(rustc: &str) {
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
