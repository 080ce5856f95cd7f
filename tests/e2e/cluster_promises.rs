//! What the README promises of the cluster's bounds over REST, each
//! checked against a real `fabric up` (issue 21, "Promises with no test").

use fabric_tests::harness::deadline::OutputWithin as _;
use std::time::Duration;

use fabric_tests::harness::rest::RestCluster;
use serde_json::json;

/// A native task that prints a line and then sleeps.
fn sleeper(line: &str) -> serde_json::Value {
    json!({"command": "sh", "args": ["-c", format!("echo {line}; sleep 600")]})
}

#[test]
fn a_full_queue_over_rest_is_503_with_retry_after() {
    let c = RestCluster::start(&["--allow", "sh", "--max-queued", "2"]);
    // Two slots run two sleepers; two more wait; the queue holds two.
    let mut accepted = Vec::new();
    let mut full = None;
    for i in 0..8 {
        let a = c.post_json("/api/v1/tasks", Some(&c.admin), &sleeper(&format!("s{i}")));
        match a.status {
            201 => accepted.push(a.json["id"].as_str().unwrap().to_owned()),
            _ => {
                full = Some(a);
                break;
            }
        }
    }
    let full = full.expect("a submit past the queue's depth is refused");
    assert_eq!(full.status, 503, "{full:?}");
    assert_eq!(full.code(), "queue_full", "{full:?}");
    assert_eq!(full.retry_after.as_deref(), Some("1"), "{full:?}");
    assert!(
        accepted.len() <= 4,
        "{} accepted past a queue of 2",
        accepted.len()
    );
    for id in &accepted {
        assert_eq!(
            c.delete(&format!("/api/v1/tasks/{id}"), Some(&c.admin))
                .status,
            200
        );
    }
}

#[test]
fn a_revoked_token_ends_its_event_stream_with_an_error_event() {
    let c = RestCluster::start(&["--allow", "sh"]);
    let read = c.token("read", &[]);
    let read_id = read
        .strip_prefix("fab_")
        .unwrap()
        .split('_')
        .next()
        .unwrap()
        .to_owned();
    let live = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        // Events for the feed: a task submitted now and then (bounded)
        // until the stream has shown one, which says it is live.
        let (url, admin) = (format!("{}/api/v1/tasks", c.url), c.admin.clone());
        let live = &live;
        s.spawn(move || {
            for i in 0..100 {
                if live.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let body = json!({"command": "sh", "args": ["-c", format!("echo feed-{i}")]});
                let _ = ureq::post(&url)
                    .set("Authorization", &format!("Bearer {admin}"))
                    .timeout(Duration::from_secs(10))
                    .send_json(body);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let mut revoked = false;
        // Revoked once live, the stream must end with an `error` event
        // (tokens are checked every 15 s), not run on.
        let events = c.sse(
            "/api/v1/events",
            &read,
            Duration::from_secs(60),
            |kind, _| {
                live.store(true, std::sync::atomic::Ordering::SeqCst);
                if !revoked {
                    c.fabric(&["token", "revoke", &read_id]);
                    revoked = true;
                }
                kind == "error"
            },
        );
        let (kind, data) = events.last().expect("some events");
        assert_eq!(kind, "error", "{events:?}");
        assert!(
            data["message"].as_str().unwrap_or("").contains("revoked"),
            "{events:?}"
        );
    });
}

#[test]
fn a_worker_declared_dead_stops_its_runs_and_registers_afresh() {
    use fabric_tests::harness::cluster::{fabric_cmd, start_dispatcher, start_worker_with};
    use fabric_tests::harness::native::{started, text};
    use fabric_tests::harness::sandbox::{Sandbox, describe};
    let sb = Sandbox::new();
    let d = start_dispatcher(&sb, "d", "127.0.0.1:0", &[], None);
    let w = start_worker_with(&sb, "w", &d, 1, &["--allow", "sh"]);
    w.wait_for_stderr("joined", Duration::from_secs(30));
    let out = fabric_cmd(&sb, None)
        .arg("--cluster")
        .arg(&d.profile)
        .args(["run", "--detach", "--", "sh", "-c", "sleep 9811"])
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let id = text(&out.stdout).trim().to_owned();
    let running = started("sleep 9811");
    let pid = running[0].split_whitespace().next().unwrap().to_owned();
    // Frozen, the worker misses its heartbeats and is declared dead; the
    // task's own processes run on meanwhile.
    let signal = |sig: &str| {
        let s = std::process::Command::new("kill")
            .args([sig, &w.pid().to_string()])
            .status()
            .unwrap();
        assert!(s.success(), "kill {sig}");
    };
    signal("-STOP");
    d.proc
        .wait_for_stderr("missed 3 heartbeats", Duration::from_secs(30));
    signal("-CONT");
    // Thawed, it hears it was declared dead, stops that run (its process
    // goes) and registers afresh.
    w.wait_for_stderr(
        "the dispatcher declared this worker dead; stopped its runs",
        Duration::from_secs(30),
    );
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while proc_dir.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the run of a worker declared dead lives on: {running:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while w.stderr().matches("worker registered").count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no second registration: {}",
            w.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = fabric_cmd(&sb, None)
        .arg("--cluster")
        .arg(&d.profile)
        .args(["cancel", &id])
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    d.proc.sigterm();
}

/// Opens `GET path` with `token` on a raw connection and reads the answer's
/// head; the status code and the connection (kept open by the caller).
fn open_stream(url: &str, path: &str, token: &str) -> (u16, std::net::TcpStream) {
    use std::io::{Read as _, Write as _};
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head);
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    (code, s)
}

#[test]
fn event_streams_are_capped_at_32_a_token_and_512_in_all() {
    let c = RestCluster::start(&[]);
    let tokens: Vec<String> = (0..17).map(|_| c.token("read", &[])).collect();
    let mut open = Vec::new();
    for t in &tokens[..16] {
        for _ in 0..32 {
            let (code, s) = open_stream(&c.url, "/api/v1/events", t);
            assert_eq!(code, 200, "stream {} refused", open.len() + 1);
            open.push(s);
        }
    }
    assert_eq!(open.len(), 512);
    // A 33rd for a token at its share, and a first for a fresh token once
    // 512 are open: both refused.
    let (code, _) = open_stream(&c.url, "/api/v1/events", &tokens[0]);
    assert_eq!(code, 429, "a token's 33rd stream");
    let (code, _) = open_stream(&c.url, "/api/v1/events", &tokens[16]);
    assert_eq!(code, 429, "the 513th stream in all");
    // Closing some makes room again.
    open.truncate(500);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (code, s) = open_stream(&c.url, "/api/v1/events", &tokens[16]);
        if code == 200 {
            open.push(s);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no room after closing 12 streams"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
