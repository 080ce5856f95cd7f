//! Cluster helpers: real `fabric dispatcher` and `fabric worker` processes
//! on loopback (or inside a network namespace the test made), readiness
//! read from their output, clients on the profile the dispatcher wrote, and
//! task fixtures.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fabric_client::Client;
use fabric_net::{Identity, PublicKey};

use super::deadline::OutputWithin as _;
use super::process::Proc;
use super::sandbox::{Sandbox, fabric_bin};

/// A running dispatcher process and what it printed at start.
pub struct DispatcherProc {
    /// The process.
    pub proc: Proc,
    /// Its QUIC address.
    pub addr: SocketAddr,
    /// Its key (hex).
    pub key: String,
    /// The join token it printed.
    pub token: String,
    /// The cluster profile it wrote.
    pub profile: PathBuf,
}

fn field<'a>(lines: &'a [String], prefix: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in {lines:?}"))
}

/// A `fabric` command in the sandbox's home, optionally inside a netns,
/// logging at `info`.
pub fn fabric_cmd(sb: &Sandbox, netns: Option<&str>) -> Command {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(fabric_bin());
            c
        }
        None => Command::new(fabric_bin()),
    };
    sb.isolate(&mut cmd);
    cmd.env("FABRIC_LOG", crate::harness::sandbox::log_filter("info"));
    cmd
}

/// [`fabric_cmd`] run through `prlimit` with an open-file limit (soft and
/// hard) of `nofile`, so the process cannot raise it.
pub fn fabric_cmd_with_nofile(sb: &Sandbox, nofile: u64) -> Command {
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--nofile={nofile}:{nofile}"))
        .arg("--")
        .arg(fabric_bin());
    sb.isolate(&mut cmd);
    cmd.env("FABRIC_LOG", crate::harness::sandbox::log_filter("info"));
    cmd
}

/// Starts `fabric dispatcher` with its data in `<home>/<name>` and waits for
/// its readiness line.
pub fn start_dispatcher(
    sb: &Sandbox,
    name: &str,
    listen: &str,
    extra: &[&str],
    netns: Option<&str>,
) -> DispatcherProc {
    let profile = sb.dir.path().join(format!("{name}.cluster.toml"));
    let mut cmd = fabric_cmd(sb, netns);
    cmd.arg("dispatcher")
        .arg("--data-dir")
        .arg(sb.dir.path().join(name))
        .args(["--listen", listen, "--heartbeat", "200ms"])
        .arg("--cluster")
        .arg(&profile)
        .args(extra);
    let mut proc = Proc::spawn(name, cmd, sb.dir.path());
    let lines = proc.wait_for_line("ready", Duration::from_secs(60));
    let addr = field(&lines, "dispatcher listening on ")
        .split_whitespace()
        .next()
        .expect("address")
        .parse()
        .expect("socket address");
    DispatcherProc {
        addr,
        key: field(&lines, "dispatcher key ").to_owned(),
        token: field(&lines, "join token ").to_owned(),
        profile,
        proc,
    }
}

/// Starts `fabric worker --join TOKEN --dispatcher ADDR`.
pub fn start_worker(sb: &Sandbox, name: &str, d: &DispatcherProc, slots: u32) -> Proc {
    start_worker_with(sb, name, d, slots, &[])
}

/// [`start_worker`] with more flags (`--allow PROGRAM`, say).
pub fn start_worker_with(
    sb: &Sandbox,
    name: &str,
    d: &DispatcherProc,
    slots: u32,
    extra: &[&str],
) -> Proc {
    let mut cmd = fabric_cmd(sb, None);
    cmd.arg("worker")
        .args(["--join", &d.token, "--dispatcher", &d.addr.to_string()])
        .args(["--slots", &slots.to_string(), "--name", name])
        .arg("--data-dir")
        .arg(sb.dir.path().join(name))
        .args(extra);
    Proc::spawn(name, cmd, sb.dir.path())
}

/// A `fabric worker` command that pins `dispatcher_key` (hex) and dials
/// `addr` without a join token, named `name`, with its data in
/// `<home>/<name>`.
pub fn pinned_worker_cmd(
    sb: &Sandbox,
    dispatcher_key: &str,
    addr: SocketAddr,
    name: &str,
) -> Command {
    let mut cmd = fabric_cmd(sb, None);
    cmd.args(["worker", "--dispatcher-key", dispatcher_key])
        .args(["--dispatcher", &addr.to_string()])
        .args(["--name", name])
        .arg("--data-dir")
        .arg(sb.dir.path().join(name));
    cmd
}

/// What a cluster profile holds.
pub struct Profile {
    /// The dispatcher's address.
    pub dispatcher: SocketAddr,
    /// The dispatcher's key.
    pub dispatcher_key: PublicKey,
    /// The client identity the profile carries (an admin client).
    pub client: Identity,
}

/// Reads a cluster profile the dispatcher wrote.
pub fn read_profile(path: &Path) -> Profile {
    let text = std::fs::read_to_string(path).expect("read profile");
    let v: toml::Table = toml::from_str(&text).expect("profile is TOML");
    let s = |k: &str| v[k].as_str().expect("string field").to_owned();
    Profile {
        dispatcher: s("dispatcher").parse().expect("addr"),
        dispatcher_key: s("dispatcher_key").parse().expect("key"),
        client: Identity::from_secret_hex(&s("client_key")).expect("client key"),
    }
}

/// Connects a client with the keys of a cluster profile.
pub async fn client(profile: &Path) -> Client {
    let p = read_profile(profile);
    Client::connect(&p.client, p.dispatcher_key, p.dispatcher)
        .await
        .expect("connect client")
}

/// Polls until `n` workers are registered.
pub async fn wait_workers(client: &Client, n: usize, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let got = client.workers().await.expect("list workers").len();
        if got >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {got} of {n} workers registered within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls until task `id` is leased to a worker.
pub async fn wait_running(client: &Client, id: fabric_proto::TaskId, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let info = client.status(id).await.expect("status");
        if info.state == fabric_proto::TaskState::Running {
            return;
        }
        assert!(Instant::now() < deadline, "task never started: {info:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A free UDP port on 127.0.0.1 (for a dispatcher that must come back on
/// the same address).
pub fn free_udp_port() -> u16 {
    super::ports::free_port()
}

/// A module that exits 0 at once.
pub const TRIVIAL_WAT: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;

/// A module that counts down from `n` and exits 0 (runs for a while).
pub fn countdown_wat(n: u32) -> String {
    format!(
        r#"(module (memory (export "memory") 1)
  (func (export "_start") (local $i i32)
    (local.set $i (i32.const {n}))
    (loop $l
      (local.set $i (i32.sub (local.get $i) (i32.const 1)))
      (br_if $l (local.get $i)))))"#
    )
}

/// A wasm task spec for `module` with default limits.
pub fn spec(module: fabric_proto::Sha256) -> fabric_proto::TaskSpec {
    fabric_proto::TaskSpec::wasm(module)
}

/// A network namespace made for one test (deleted on drop), with only a
/// loopback interface, multicast on: mDNS in it never reaches a real
/// interface.
pub struct Netns {
    /// Its name.
    pub name: String,
}

impl Netns {
    /// Creates it. Needs root and iproute2 (`.ci/run` installs it).
    pub fn new(tag: &str) -> Self {
        let name = format!("fabric-{tag}-{}", std::process::id());
        let ip = |args: &[&str]| {
            let out = Command::new("ip").args(args).output_in_time().unwrap_or_else(|e| {
                panic!("cannot run `ip` ({e}): the mDNS test needs iproute2 (apt-get install iproute2; .ci/run does this)")
            });
            assert!(
                out.status.success(),
                "`ip {}` failed (the mDNS test needs root to make a network namespace): {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .output_in_time();
        ip(&["netns", "add", &name]);
        let ns = Self { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ip(&["-n", &ns.name, "link", "set", "lo", "multicast", "on"]);
        ip(&["-n", &ns.name, "route", "add", "224.0.0.0/4", "dev", "lo"]);
        ns
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output_in_time();
    }
}
