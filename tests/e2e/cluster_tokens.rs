//! Join tokens through the real CLI: expired, used-up and revoked tokens
//! are refused with a clear message, a valid one joins; an operator removes
//! a worker; the data dirs and key files are private.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use fabric_tests::harness::cluster::{DispatcherProc, fabric_cmd, start_dispatcher};
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::process::Proc;
use fabric_tests::harness::sandbox::{Sandbox, describe, json_of};

const PATIENCE: Duration = Duration::from_secs(30);

/// Runs a client command against `d`'s profile; it must succeed.
fn admin(sb: &Sandbox, d: &DispatcherProc, args: &[&str]) -> Output {
    let out = fabric_cmd(sb, None)
        .arg("--cluster")
        .arg(&d.profile)
        .args(args)
        .output_in_time()
        .expect("run fabric");
    assert!(out.status.success(), "{args:?}: {}", describe(&out));
    out
}

/// `token create ARGS --json`: the token text and its id.
fn create(sb: &Sandbox, d: &DispatcherProc, args: &[&str]) -> (String, String) {
    let mut all = vec!["token", "create", "--json"];
    all.extend_from_slice(args);
    let v = json_of(&admin(sb, d, &all));
    let s = |k: &str| v[k].as_str().expect("string field").to_owned();
    (s("token"), s("id"))
}

/// Runs a worker with `token` named `name`; it must exit 1. Returns stderr.
fn worker_refused(sb: &Sandbox, d: &DispatcherProc, name: &str, token: &str) -> String {
    let out = fabric_cmd(sb, None)
        .args(["worker", "--join", token, "--dispatcher"])
        .arg(d.addr.to_string())
        .arg("--data-dir")
        .arg(sb.dir.path().join(name))
        .output_in_time()
        .expect("run worker");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Starts a worker with `token`, waits until `fabric workers` lists it.
fn worker_joins(sb: &Sandbox, d: &DispatcherProc, name: &str, token: &str) -> Proc {
    let mut cmd = fabric_cmd(sb, None);
    cmd.args(["worker", "--join", token, "--dispatcher"])
        .arg(d.addr.to_string())
        .args(["--slots", "1", "--name", name])
        .arg("--data-dir")
        .arg(sb.dir.path().join(name));
    let proc = Proc::spawn(name, cmd, sb.dir.path());
    wait_for(&format!("worker {name} registers"), || {
        listed(sb, d).iter().any(|(n, _)| n == name)
    });
    proc
}

/// `fabric workers --json`: (name, key) of each.
/// The workers listed as connected (not those listed as down or removed).
fn listed(sb: &Sandbox, d: &DispatcherProc) -> Vec<(String, String)> {
    let v = json_of(&admin(sb, d, &["workers", "--json"]));
    v.as_array()
        .expect("array")
        .iter()
        .filter(|w| w["state"] != "down" && w["state"] != "removed")
        .map(|w| {
            let s = |k: &str| w[k].as_str().expect("string").to_owned();
            (s("name"), s("key"))
        })
        .collect()
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn expired_used_up_and_revoked_tokens_are_refused_and_a_valid_one_joins() {
    let sb = Sandbox::new();
    let d = start_dispatcher(&sb, "d", "127.0.0.1:0", &["--no-mdns"], None);

    // Single use: the first worker joins, the second is refused.
    let (once, once_id) = create(&sb, &d, &["--uses", "1"]);
    let _w1 = worker_joins(&sb, &d, "w1", &once);
    let err = worker_refused(&sb, &d, "w2", &once);
    assert!(err.contains("join token was used up"), "{err}");

    // Revoked by (a prefix of) its id.
    let (revoked, revoked_id) = create(&sb, &d, &[]);
    let out = admin(&sb, &d, &["token", "revoke", &revoked_id[..8]]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("revoked"));
    let err = worker_refused(&sb, &d, "w3", &revoked);
    assert!(err.contains("join token was revoked"), "{err}");

    // Expired: a one-second token, tried once its expiry has passed.
    let (short, short_id) = create(&sb, &d, &["--ttl", "1s"]);
    let v = json_of(&admin(&sb, &d, &["token", "list", "--json"]));
    let rows = v.as_array().expect("array");
    let expires = rows
        .iter()
        .find(|t| t["id"] == short_id.as_str())
        .and_then(|t| t["expires_ms"].as_u64())
        .expect("listed with an expiry");
    wait_for("the token's expiry passes", || {
        fabric_proto::now_ms() > expires
    });
    let err = worker_refused(&sb, &d, "w4", &short);
    assert!(err.contains("join token expired"), "{err}");

    // The list shows all of them, never a secret.
    let out = admin(&sb, &d, &["token", "list"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for id in [&once_id, &revoked_id, &short_id] {
        assert!(text.contains(id.as_str()), "{text}");
    }
    for secret in [&once, &revoked, &short, &d.token] {
        let body = secret.trim_start_matches("fabric1.");
        assert!(!text.contains(&body[43..]), "a secret is listed: {text}");
    }
    assert!(text.contains("used up") && text.contains("revoked") && text.contains("expired"));
}

#[test]
fn a_removed_worker_is_disconnected_and_must_join_again() {
    let sb = Sandbox::new();
    let d = start_dispatcher(&sb, "d", "127.0.0.1:0", &["--no-mdns"], None);
    let mut w = worker_joins(&sb, &d, "w1", &d.token);
    let key = listed(&sb, &d)[0].1.clone();
    let out = admin(&sb, &d, &["workers", "remove", &key[..12]]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains(&key) && said.contains("connection closed"),
        "{said}"
    );
    assert!(listed(&sb, &d).is_empty());
    // It stays listed a while as removed, saying so.
    let all = json_of(&admin(&sb, &d, &["workers", "--json"]));
    assert_eq!(all[0]["state"], "removed", "{all}");
    assert_eq!(all[0]["key"], key.as_str(), "{all}");
    // Its key is forgotten: the worker is refused when it comes back, and
    // exits saying so.
    let status = w.wait(PATIENCE);
    assert!(!status.success());
    assert!(
        w.stderr().contains("not allowed to register"),
        "{}",
        w.stderr()
    );
}

#[test]
fn a_restarted_dispatcher_replaces_a_revoked_saved_token() {
    let sb = Sandbox::new();
    let port = fabric_tests::harness::cluster::free_udp_port();
    let listen = format!("127.0.0.1:{port}");
    let mut d = start_dispatcher(&sb, "d", &listen, &["--no-mdns"], None);
    let v = json_of(&admin(&sb, &d, &["token", "list", "--json"]));
    // The saved join token (the profile's REST token is listed too).
    let join = v
        .as_array()
        .expect("a list")
        .iter()
        .find(|t| t.get("role").is_none())
        .expect("the saved join token");
    let id = join["id"].as_str().expect("its id").to_owned();
    admin(&sb, &d, &["token", "revoke", &id]);
    let old = d.token.clone();
    d.proc.terminate(PATIENCE);
    let d = start_dispatcher(&sb, "d", &listen, &["--no-mdns"], None);
    assert_ne!(d.token, old, "a revoked token is not handed out again");
    let _w = worker_joins(&sb, &d, "w1", &d.token);
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn data_dirs_are_0700_and_keys_store_files_and_profile_0600() {
    let sb = Sandbox::new();
    let d = start_dispatcher(&sb, "d", "127.0.0.1:0", &["--no-mdns"], None);
    let _w = worker_joins(&sb, &d, "w1", &d.token);
    let data = sb.dir.path().join("d");
    let worker = sb.dir.path().join("w1");
    for dir in [
        data.clone(),
        data.join("store"),
        worker.clone(),
        worker.join("worker"),
    ] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    for file in ["node.key", "admin.key", "join-token"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&d.profile), 0o600);
    assert_eq!(mode(&worker.join("worker/node.key")), 0o600);
    let mut files = 0;
    let mut stack = vec![data.join("store")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read store dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                assert_eq!(mode(&p), 0o700, "{}", p.display());
                stack.push(p);
            } else {
                files += 1;
                assert_eq!(mode(&p), 0o600, "{}", p.display());
            }
        }
    }
    assert!(files > 0);
}
