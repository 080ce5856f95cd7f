//! The dispatcher's container image (`deploy/container/Containerfile`),
//! built with Debian's podman on a Debian base made here from Debian's
//! packages (mmdebstrap; no registry is reachable), run with runc: it
//! serves `/health` with the operator key it was given, and a worker on the
//! host joins it over QUIC and runs a task.
//!
//! podman, runc and mmdebstrap come from Debian's packages (.ci/run
//! installs them). `crun` refuses this host's hybrid cgroup layout, hence
//! `--runtime runc`; the ulimits are what runc needs here.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fabric_tests::harness::cluster::{fabric_cmd, free_udp_port};
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::native::text;
use fabric_tests::harness::process::Proc;
use fabric_tests::harness::sandbox::{Sandbox, describe, fabric_bin, guest, json_of};

/// The Containerfile's `FROM`, made locally.
const BASE: &str = "docker.io/library/debian:bookworm-slim";
const RUN_FLAGS: [&str; 6] = [
    "--runtime",
    "runc",
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
];

fn need(tool: &str, package: &str) {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join(tool).is_file());
    assert!(
        found,
        "{tool} is not on PATH: it comes with Debian's `{package}` package (.ci/run installs it)"
    );
}

fn podman(args: &[&str]) -> std::process::Output {
    Command::new("podman")
        .args(args)
        .output_in_time()
        .expect("podman runs")
}

/// Makes the base image from Debian's packages unless podman has it.
fn base_image(sb: &Sandbox) {
    if podman(&["image", "exists", BASE]).status.success() {
        return;
    }
    let rootfs = sb.dir.path().join("rootfs.tar");
    let out = Command::new("mmdebstrap")
        .args(["--variant=minbase", "bookworm"])
        .arg(&rootfs)
        .output_in_time()
        .expect("mmdebstrap runs");
    assert!(out.status.success(), "mmdebstrap: {}", describe(&out));
    let out = podman(&["import", rootfs.to_str().unwrap(), BASE]);
    assert!(out.status.success(), "podman import: {}", describe(&out));
}

/// A free TCP port on loopback (see `harness/ports.rs`).
fn free_tcp_port() -> u16 {
    fabric_tests::harness::ports::free_port()
}

/// Removes the container when the test ends, however it ends.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = podman(&["rm", "-f", "-t", "5", &self.0]);
    }
}

#[test]
fn the_dispatcher_image_builds_runs_and_serves_a_worker_on_the_host() {
    for (tool, package) in [
        ("podman", "podman"),
        ("runc", "runc"),
        ("mmdebstrap", "mmdebstrap"),
    ] {
        need(tool, package);
    }
    let sb = Sandbox::new();
    base_image(&sb);

    // The build context: the Containerfile and the binary where it COPYs
    // it from (this run's build, not a release one).
    let ctx = sb.dir.path().join("ctx");
    std::fs::create_dir_all(ctx.join("target/release")).unwrap();
    std::fs::copy(fabric_bin(), ctx.join("target/release/fabric")).unwrap();
    let containerfile: PathBuf =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/container/Containerfile");
    let tag = format!("localhost/fabric-e2e:{}", std::process::id());
    let out = podman(&[
        "build",
        "--runtime",
        "runc",
        "--pull=never",
        "-f",
        containerfile.to_str().unwrap(),
        "-t",
        &tag,
        ctx.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "podman build: {}", describe(&out));

    // Run it as the compose file does: the operator key as a secret file.
    let key = fabric_cmd(&sb, None)
        .args(["admin", "gen-key"])
        .output_in_time()
        .unwrap();
    let key_file = sb.write("fabric.key", &key.stdout);
    let (api, quic) = (free_tcp_port(), free_udp_port());
    let name = format!("fabric-e2e-{}", std::process::id());
    let mut args = vec!["run", "-d", "--name", &name];
    args.extend(RUN_FLAGS);
    let mount = format!("{}:/run/secrets/fabric.key:ro", key_file.display());
    let (api_map, quic_map) = (
        format!("127.0.0.1:{api}:7080/tcp"),
        format!("127.0.0.1:{quic}:7070/udp"),
    );
    args.extend([
        "-v",
        &mount,
        "-e",
        "FABRIC_KEY_FILE=/run/secrets/fabric.key",
        "-p",
        &api_map,
        "-p",
        &quic_map,
        &tag,
    ]);
    let out = podman(&args);
    assert!(out.status.success(), "podman run: {}", describe(&out));
    let _container = Container(name.clone());

    let deadline = Instant::now() + Duration::from_secs(60);
    let health = loop {
        match ureq::get(&format!("http://127.0.0.1:{api}/health"))
            .timeout(Duration::from_secs(2))
            .call()
        {
            Ok(r) => break r.into_json::<serde_json::Value>().unwrap(),
            Err(e) => {
                let logs = podman(&["logs", &name]);
                assert!(
                    Instant::now() < deadline,
                    "no /health from the container: {e}\n{}",
                    describe(&logs)
                );
                std::thread::sleep(Duration::from_millis(300));
            }
        }
    };
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["keys"]["wrap"], "operator", "{health}");

    // The admin profile inside, pointed at the mapped QUIC port; a join
    // token minted inside; a worker on the host joins and runs a task.
    let out = podman(&["exec", &name, "cat", "/var/lib/fabric/cluster.toml"]);
    assert!(out.status.success(), "{}", describe(&out));
    let mut profile: toml::Table = toml::from_str(&text(&out.stdout)).unwrap();
    profile.insert(
        "dispatcher".into(),
        toml::Value::String(format!("127.0.0.1:{quic}")),
    );
    profile.remove("api_url");
    profile.remove("api_token");
    let profile_path = sb.write(
        "cluster.toml",
        toml::to_string(&profile).unwrap().as_bytes(),
    );
    let out = podman(&["exec", &name, "fabric", "token", "create"]);
    assert!(out.status.success(), "{}", describe(&out));
    let token = text(&out.stdout).trim().to_owned();
    let mut worker = fabric_cmd(&sb, None);
    worker
        .args(["worker", "--join", &token, "--dispatcher"])
        .arg(format!("127.0.0.1:{quic}"))
        .arg("--data-dir")
        .arg(sb.dir.path().join("w"));
    let w = Proc::spawn("w", worker, sb.dir.path());
    w.wait_for_stderr("joined", Duration::from_secs(60));
    let input = sb.write("in.txt", b"one two two");
    let out = fabric_cmd(&sb, None)
        .arg("--cluster")
        .arg(&profile_path)
        .args([
            "submit",
            guest("wordfreq").to_str().unwrap(),
            "--wait",
            "--json",
            "--input",
        ])
        .arg(&input)
        .output_in_time()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(v["status"], "succeeded", "{}", describe(&out));
    assert!(
        v["stdout"]
            .as_str()
            .unwrap_or("")
            .contains("\"total_words\": 3"),
        "{v}"
    );
    let _ = podman(&["rmi", "-f", &tag]);
}
