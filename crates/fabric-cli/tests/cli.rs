//! Smoke tests of the binary's surface. (The end-to-end suite lives in the
//! workspace's `tests/` crate; this file also makes `cargo test --workspace`
//! build the real `fabric` binary that suite runs.)

use std::process::Command;

fn fabric() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fabric"))
}

#[test]
fn version_and_help() {
    let out = fabric().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("fabric "));
    let out = fabric().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("exec") && text.contains("Examples:"),
        "{text}"
    );
}

#[test]
fn unknown_subcommand_is_usage_error() {
    let out = fabric().arg("frobnicate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
}
