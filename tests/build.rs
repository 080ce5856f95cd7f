//! Builds the guest programs the end-to-end tests run: the SDK examples and
//! the plain WASI program via cargo for wasm32-wasip1, and the plain program
//! once more with bare `rustc`, as a user without cargo would.
//!
//! The guests go to their own target directory (`target/guests`) because the
//! outer cargo holds the lock on the main one while build scripts run.

use std::process::Command;

use fabric_buildkit::{
    TARGET, build_guests, guest_target_dir, rerun_on_guest_changes, workspace_root,
};

fn main() {
    let root = workspace_root();
    rerun_on_guest_changes(&root);
    let guests = build_guests(&root, &["fabric-examples", "plain-wasi"]);
    println!("cargo:rustc-env=FABRIC_GUESTS_DIR={}", guests.display());

    // The same plain program, compiled by bare rustc.
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let plain = guest_target_dir(&root).join("plain-rustc.wasm");
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
