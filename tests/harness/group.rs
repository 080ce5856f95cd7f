//! A group of real `fabric dispatcher` processes on loopback (issue 26):
//! keys made first (`fabric admin node-key`), every member started with
//! `--peer` for the others, workers and clients that know all of them.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fabric_client::Client;
use fabric_net::PublicKey;

use super::cluster::{fabric_cmd, free_udp_port, read_profile};
use super::deadline::OutputWithin as _;
use super::process::Proc;
use super::sandbox::Sandbox;

/// One member.
pub struct Member {
    /// Its name (and data dir under the sandbox's home).
    pub name: String,
    /// Its QUIC address.
    pub addr: String,
    /// Its REST API's address.
    pub api: String,
    /// Its key (hex).
    pub key: String,
    /// Its process, while it runs.
    pub proc: Option<Proc>,
    /// The profile it wrote.
    pub profile: PathBuf,
}

impl Member {
    /// Member `i` (`d{i}`): its key made in its data dir, free ports.
    fn new(sb: &Sandbox, i: usize) -> Self {
        let name = format!("d{i}");
        let out = fabric_cmd(sb, None)
            .args(["admin", "node-key", "--data-dir"])
            .arg(sb.dir.path().join(&name))
            .output_in_time()
            .expect("fabric admin node-key");
        assert!(out.status.success(), "node-key: {out:?}");
        Self {
            addr: format!("127.0.0.1:{}", free_udp_port()),
            api: format!("127.0.0.1:{}", free_tcp_port()),
            key: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            profile: sb.dir.path().join(format!("{name}.cluster.toml")),
            name,
            proc: None,
        }
    }
}

/// A group of dispatchers.
pub struct Group {
    /// Its members, in start order.
    pub members: Vec<Member>,
    /// The network namespace they run in, if not the test's own.
    pub netns: Option<String>,
}

impl Group {
    /// Starts `n` dispatchers (3 or 5) and waits until each is ready.
    pub fn start(sb: &Sandbox, n: usize) -> Self {
        Self::start_in(sb, n, None)
    }

    /// [`Group::start`] inside the network namespace `netns`.
    pub fn start_in(sb: &Sandbox, n: usize, netns: Option<&str>) -> Self {
        let mut members: Vec<Member> = (0..n).map(|i| Member::new(sb, i)).collect();
        for i in 0..n {
            let p = Self::spawn(sb, &members, i, netns, false);
            members[i].proc = Some(p);
        }
        for m in &mut members {
            m.proc
                .as_mut()
                .expect("started")
                .wait_for_line("ready", Duration::from_secs(60));
        }
        Self {
            members,
            netns: netns.map(str::to_owned),
        }
    }

    fn spawn(
        sb: &Sandbox,
        members: &[Member],
        i: usize,
        netns: Option<&str>,
        joining: bool,
    ) -> Proc {
        let m = &members[i];
        let mut cmd = fabric_cmd(sb, netns);
        cmd.arg("dispatcher");
        if joining {
            cmd.arg("--joining");
        }
        cmd.arg("--data-dir")
            .arg(sb.dir.path().join(&m.name))
            .args([
                "--listen",
                &m.addr,
                "--no-mdns",
                "--api",
                &m.api,
                "--heartbeat",
                "200ms",
            ])
            .arg("--cluster")
            .arg(&m.profile);
        for (j, o) in members.iter().enumerate() {
            if j != i {
                cmd.args(["--peer", &format!("{}@{},http://{}", o.key, o.addr, o.api)]);
            }
        }
        Proc::spawn(&m.name, cmd, sb.dir.path())
    }

    /// Starts a new dispatcher with `--joining` and every member as its
    /// peers (not ready until it is added: its own setup waits for that);
    /// its index.
    pub fn spawn_joining(&mut self, sb: &Sandbox) -> usize {
        let i = self.members.len();
        self.members.push(Member::new(sb, i));
        let p = Self::spawn(sb, &self.members, i, self.netns.as_deref(), true);
        self.members[i].proc = Some(p);
        i
    }

    /// Starts member `i` again (same data dir, address and key). Ready
    /// once its own setup writes are committed by the leader: on a machine
    /// loaded by other tests that can take a while, hence two minutes.
    pub fn restart(&mut self, sb: &Sandbox, i: usize) {
        let mut p = Self::spawn(sb, &self.members, i, self.netns.as_deref(), false);
        p.wait_for_line("ready", Duration::from_secs(120));
        self.members[i].proc = Some(p);
    }

    /// kill -9 of member `i`.
    pub fn kill9(&mut self, i: usize) {
        if let Some(mut p) = self.members[i].proc.take() {
            p.kill9();
        }
    }

    /// `--peer KEY@ADDR` for every member but `except`.
    pub fn peer_flags(&self, except: usize) -> Vec<String> {
        self.members
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != except)
            .flat_map(|(_, m)| ["--peer".to_owned(), format!("{}@{}", m.key, m.addr)])
            .collect()
    }

    /// A worker joined with member 0's token that knows every member.
    pub fn worker(&self, sb: &Sandbox, name: &str, slots: u32) -> Proc {
        self.worker_via(sb, name, slots, 0)
    }

    /// [`Group::worker`] whose `--dispatcher` is member `via` (the others
    /// its `--peer`s).
    pub fn worker_via(&self, sb: &Sandbox, name: &str, slots: u32, via: usize) -> Proc {
        self.worker_with(sb, name, slots, via, &[])
    }

    /// [`Group::worker_via`] with more flags (`--allow PROGRAM`, say).
    pub fn worker_with(
        &self,
        sb: &Sandbox,
        name: &str,
        slots: u32,
        via: usize,
        extra: &[&str],
    ) -> Proc {
        let token = std::fs::read_to_string(sb.dir.path().join("d0").join("join-token"))
            .expect("d0's join token");
        let mut cmd = fabric_cmd(sb, self.netns.as_deref());
        cmd.arg("worker")
            .args([
                "--join",
                token.trim(),
                "--dispatcher",
                &self.members[via].addr,
            ])
            .args(self.peer_flags(via))
            .args(["--slots", &slots.to_string(), "--name", name])
            .args(extra)
            .arg("--data-dir")
            .arg(sb.dir.path().join(name));
        Proc::spawn(name, cmd, sb.dir.path())
    }

    /// A client with member 0's admin key that knows every member.
    pub async fn client(&self) -> Client {
        let p = read_profile(&self.members[0].profile);
        let members = self
            .members
            .iter()
            .map(|m| (m.key.parse::<PublicKey>().expect("key"), m.addr.clone()))
            .collect();
        Client::connect_group(&p.client, members, &fabric_net::NetConfig::for_clients())
            .await
            .expect("connect to the group")
    }

    /// A client of member `i` alone (it answers `members` for itself).
    pub async fn client_of(&self, i: usize) -> Client {
        let p = read_profile(&self.members[0].profile);
        let m = &self.members[i];
        Client::connect(
            &p.client,
            m.key.parse().expect("key"),
            m.addr.parse().expect("addr"),
        )
        .await
        .expect("connect to a member")
    }

    /// The member that leads, as the running members see it (waits up to
    /// `timeout` for one).
    pub async fn leader(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            for (i, m) in self.members.iter().enumerate() {
                if m.proc.is_none() {
                    continue;
                }
                let c = self.client_of(i).await;
                let view = c.members().await.unwrap_or_default();
                c.close().await;
                if view.iter().any(|v| v.this && v.role == "leader") {
                    return i;
                }
            }
            assert!(Instant::now() < deadline, "no leader within {timeout:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Group {
    /// `fabric --cluster <member i's profile> ARGS`, in the group's
    /// namespace, run to its end.
    pub fn cli(&self, sb: &Sandbox, i: usize, args: &[&str]) -> std::process::Output {
        fabric_cmd(sb, self.netns.as_deref())
            .arg("--cluster")
            .arg(&self.members[i].profile)
            .args(args)
            .output_in_time()
            .expect("fabric runs")
    }

    /// A REST token of `role` minted on member `i` (`fabric token create`).
    pub fn api_token(&self, sb: &Sandbox, i: usize, role: &str) -> String {
        let out = self.cli(sb, i, &["token", "create", "--role", role]);
        assert!(out.status.success(), "token create: {out:?}");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .find(|w| w.starts_with("fab_"))
            .unwrap_or_else(|| panic!("no token in {out:?}"))
            .to_owned()
    }

    /// The group as member `i` sees it (`fabric admin members --json`).
    pub fn members_seen_by(&self, sb: &Sandbox, i: usize) -> Vec<serde_json::Value> {
        let out = self.cli(sb, i, &["admin", "members", "--json"]);
        if !out.status.success() {
            return Vec::new();
        }
        serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap_or_default()
    }

    /// The member that leads as the CLI sees it (waits up to `timeout`).
    pub fn leader_by_cli(&self, sb: &Sandbox, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        loop {
            for i in 0..self.members.len() {
                if self.members[i].proc.is_some()
                    && self
                        .members_seen_by(sb, i)
                        .iter()
                        .any(|m| m["this"] == true && m["role"] == "leader")
                {
                    return i;
                }
            }
            assert!(Instant::now() < deadline, "no leader within {timeout:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A free TCP port on 127.0.0.1 (see `harness/ports.rs`).
pub fn free_tcp_port() -> u16 {
    super::ports::free_port()
}
