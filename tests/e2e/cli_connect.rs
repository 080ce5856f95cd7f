//! Client commands against a dispatcher that is not there, or not the one
//! the profile names: they fail by the client's own connect deadline or by
//! the key check (never by QUIC's idle timeout), in one line that says what
//! to do. How long that takes is no test's business (DESIGN.md: timings go
//! to benches); which of those ended the command is.

use std::time::Duration;

use fabric_net::Identity;
use fabric_tests::harness::cluster::{free_udp_port, start_dispatcher};
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::sandbox::{Sandbox, describe};

fn profile(sb: &Sandbox, name: &str, dispatcher: &str, dispatcher_key: &str) -> std::path::PathBuf {
    let client = Identity::generate().expect("key");
    let path = sb.dir.path().join(name);
    let text = format!(
        "dispatcher = \"{dispatcher}\"\ndispatcher_key = \"{dispatcher_key}\"\nclient_key = \"{}\"\n",
        client.secret_hex()
    );
    std::fs::write(&path, text).expect("profile written");
    path
}

/// Runs `fabric workers --cluster P`; its exit code and stderr.
fn workers(sb: &Sandbox, profile: &std::path::Path) -> (Option<i32>, String) {
    let out = sb
        .fabric()
        .arg("workers")
        .arg("--cluster")
        .arg(profile)
        .output_in_time()
        .expect("fabric runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{}", describe(&out));
    (out.status.code(), stderr)
}

#[test]
fn an_unreachable_dispatcher_fails_by_the_connect_deadline_naming_address_and_profile() {
    let sb = Sandbox::new();
    let addr = format!("127.0.0.1:{}", free_udp_port());
    let key = Identity::generate().expect("key").public().to_string();
    let path = profile(&sb, "gone.toml", &addr, &key);
    let (code, stderr) = workers(&sb, &path);
    assert_eq!(code, Some(1), "{stderr}");
    let text = stderr.trim();
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    // Ended by the client's own 2 s handshake deadline, not by a transport
    // timeout or an error of some other kind.
    assert!(text.contains("no answer within 2 s"), "{text}");
    assert!(text.contains(&addr), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("is `fabric up` running?"), "{text}");
}

#[test]
fn a_stale_profile_says_the_dispatcher_key_differs() {
    let sb = Sandbox::new();
    let d = start_dispatcher(&sb, "d", "127.0.0.1:0", &[], None);
    let other = Identity::generate().expect("key").public().to_string();
    let path = profile(&sb, "stale.toml", &d.addr.to_string(), &other);
    let (code, stderr) = workers(&sb, &path);
    assert_eq!(code, Some(1), "{stderr}");
    let text = stderr.trim();
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    // Refused by the key check in the handshake, not left to time out.
    assert!(text.contains("its key differs"), "{text}");
    assert!(!text.contains("no answer within"), "{text}");
    assert!(text.contains("stale"), "{text}");
}

#[test]
fn a_second_dispatcher_on_the_same_data_dir_or_port_says_why_in_one_line() {
    let sb = Sandbox::new();
    let d = start_dispatcher(&sb, "d", "127.0.0.1:0", &[], None);
    let run = |data: &str, listen: &str| {
        let out = sb
            .fabric()
            .arg("dispatcher")
            .arg("--data-dir")
            .arg(sb.dir.path().join(data))
            .args(["--listen", listen])
            .arg("--cluster")
            .arg(sb.dir.path().join(format!("{data}.toml")))
            .output_in_time()
            .expect("fabric runs");
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(!stderr.contains("Os {"), "{stderr}");
        stderr
    };
    let locked = run("d", "127.0.0.1:0");
    assert!(
        locked.contains("already running on this data dir"),
        "{locked}"
    );
    let taken = run("other", &d.addr.to_string());
    let port = d.addr.port();
    assert!(taken.contains(&format!("port {port} is in use")), "{taken}");
    assert_eq!(taken.matches("in use").count(), 1, "said once: {taken}");
}

#[test]
fn a_profile_whose_dispatcher_still_serves_is_not_overwritten() {
    let sb = Sandbox::new();
    let d = start_dispatcher(&sb, "d", "127.0.0.1:0", &[], None);
    let before = std::fs::read_to_string(&d.profile).expect("profile");
    let out = sb
        .fabric()
        .arg("dispatcher")
        .arg("--data-dir")
        .arg(sb.dir.path().join("second"))
        .args(["--listen", "127.0.0.1:0"])
        .arg("--cluster")
        .arg(&d.profile)
        .output_in_time()
        .expect("fabric runs");
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("still serving at"), "{stderr}");
    assert!(stderr.contains("--replace-profile"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&d.profile).unwrap(), before);
}

/// Each client command closes its connection before it exits: many in a
/// row (more than a key's connection cap, 16) all get through, instead of
/// the 17th being refused while the earlier connections time out.
#[test]
fn more_commands_in_a_row_than_the_connection_cap_all_succeed() {
    let sb = Sandbox::new();
    let mut d = start_dispatcher(&sb, "d", "127.0.0.1:0", &[], None);
    for i in 0..24 {
        let (code, stderr) = workers(&sb, &d.profile);
        assert_eq!(code, Some(0), "command {}: {stderr}", i + 1);
    }
    d.proc.terminate(Duration::from_secs(30));
}

/// Waits (bounded: a hang guard, not a timing) until `p`'s stderr holds
/// `needle` `n` times; that stderr.
fn said_times(p: &fabric_tests::harness::process::Proc, needle: &str, n: usize) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let text = p.stderr();
        if text.matches(needle).count() >= n {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{needle:?} not said {n} times:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_worker_says_at_once_it_tries_says_it_cannot_reach_and_rejoins() {
    use fabric_tests::harness::cluster::start_worker;
    let sb = Sandbox::new();
    let port = free_udp_port();
    let listen = format!("127.0.0.1:{port}");
    let mut d = start_dispatcher(&sb, "d", &listen, &[], None);
    // A worker whose dispatcher is not there (yet).
    d.proc.kill9();
    let w = start_worker(&sb, "w", &d, 1);
    // The notice (its log line says the same first, without the retry).
    let said = said_times(
        &w,
        &format!("\ncannot reach the dispatcher at {listen}: no answer within 2s; retrying in"),
        1,
    );
    assert!(
        said.contains(&format!("trying to reach the dispatcher at {listen}"))
            && said.contains("retrying in"),
        "{said}"
    );
    assert!(
        !said.contains("lost the dispatcher"),
        "it never had one: {said}"
    );
    // The dispatcher comes (back): the worker joins it.
    let d2 = start_dispatcher(&sb, "d", &listen, &[], None);
    let joined = format!("\njoined {listen}\n");
    said_times(&w, &joined, 1);
    // It is killed and restarted with the worker joined: the restarted
    // dispatcher resets the old connection at the worker's next packet
    // (its reset key comes from its own key), so the worker need not wait
    // out the idle timeout to find it lost, and joins again.
    let mut d2 = d2;
    d2.proc.kill9();
    let _d3 = start_dispatcher(&sb, "d", &listen, &[], None);
    let said = said_times(&w, &joined, 2);
    assert!(
        said.contains(&format!(
            "lost the dispatcher at {listen}: connection lost: reset by peer"
        )),
        "{said}"
    );
}
