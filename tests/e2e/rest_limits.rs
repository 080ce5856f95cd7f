//! The REST listener under abuse (issue 20, items 8 and 9): a flood of idle
//! connections, idle kept-alive connections, heads that never end, bodies
//! that trickle, and one token's uploads holding every slot — against the
//! real `fabric up`, over raw TCP on loopback.

use std::io::Write as _;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::raw_http::{
    connect, get_keep_alive, idle, start_upload, still_waiting, wait_closed,
};
use fabric_tests::harness::rest::{RestCluster, wasm};
use fabric_tests::harness::sandbox::describe;

/// A module that reads all of stdin and prints how many bytes it read.
const COUNT_STDIN_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "_start")
    (local $total i64) (local $n i32) (local $p i32) (local $v i64)
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 65536))
    (block $done
      (loop $more
        (br_if $done (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 16)))
        (local.set $n (i32.load (i32.const 16)))
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $total (i64.add (local.get $total) (i64.extend_i32_u (local.get $n))))
        (br $more)))
    (i32.store8 (i32.const 240) (i32.const 10))
    (local.set $p (i32.const 240))
    (local.set $v (local.get $total))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i64.store8 (local.get $p) (i64.add (i64.const 48) (i64.rem_u (local.get $v) (i64.const 10))))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $v) (i64.const 0))))
    (i32.store (i32.const 32) (local.get $p))
    (i32.store (i32.const 36) (i32.sub (i32.const 241) (local.get $p)))
    (drop (call $write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 48)))))"#;

/// Open file descriptors of process `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/PID/fd")
        .count()
}

/// `GET /health` on a fresh connection, waiting up to `within` for it to
/// be accepted and answered (it may wait in the listen backlog behind
/// connections the server has not yet closed); its status.
fn health_within(c: &RestCluster, within: Duration) -> u16 {
    match ureq::get(&format!("{}/health", c.url))
        .timeout(within)
        .call()
    {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, _)) => s,
        Err(e) => panic!(
            "GET /health failed: {e}\nfabric up's stderr:\n{}",
            c.up.stderr()
        ),
    }
}

/// 700 idle connections against a dispatcher allowed 512 open files: the
/// listener takes only its share (a quarter), so the store, QUIC and the
/// worker keep working; the idle ones are closed after the header timeout
/// and /health answers.
#[test]
fn an_idle_connection_flood_leaves_quic_the_store_and_health_working() {
    let c = RestCluster::start_with_nofile(&["--api-header-timeout", "2s"], Some(512));
    let mut flood = idle(&c.url, 700);
    let fds = open_fds(c.up.pid());
    assert!(
        fds < 400,
        "fabric up holds {fds} files with 700 idle REST connections open"
    );

    // A QUIC client submits a task whose input goes into the store as a
    // file of its own, and the worker runs it, all during the flood.
    let module = c.sb.dir.path().join("count.wasm");
    std::fs::write(&module, wasm(COUNT_STDIN_WAT)).expect("write module");
    let input = c.sb.dir.path().join("input.bin");
    let len = 3 << 20;
    std::fs::write(&input, vec![7u8; len]).expect("write input");
    let out = c
        .cmd()
        .args(["submit", "--wait", "--json", "--input"])
        .arg(&input)
        .arg(&module)
        .output_in_time()
        .expect("fabric submit");
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&len.to_string()),
        "{}",
        describe(&out)
    );

    assert_eq!(health_within(&c, Duration::from_secs(120)), 200);
    let deadline = Instant::now() + Duration::from_secs(180);
    for s in &mut flood {
        let left = deadline.saturating_duration_since(Instant::now());
        let said = wait_closed(s, left.max(Duration::from_millis(1)));
        assert!(said.is_empty(), "an idle connection was answered: {said}");
    }
    assert!(
        c.up.stderr().contains("REST connections at their cap"),
        "{}",
        c.up.stderr()
    );
}

/// A kept-alive connection with nothing more to ask, a head that never
/// ends and a connection that sends nothing are each closed by the server.
#[test]
fn idle_keep_alive_connections_and_unfinished_heads_are_closed() {
    let c = RestCluster::start(&["--api-header-timeout", "2s"]);
    let mut kept = connect(&c.url);
    let answer = get_keep_alive(&mut kept, &c.url, "/health");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    // The same connection serves a second request (it is kept alive)...
    let again = get_keep_alive(&mut kept, &c.url, "/health");
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    // ...and is closed once it sits idle.
    assert_eq!(wait_closed(&mut kept, Duration::from_secs(60)), "");

    let mut half = connect(&c.url);
    half.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .expect("send half a head");
    let said = wait_closed(&mut half, Duration::from_secs(60));
    assert!(!said.contains("200"), "a half head was answered: {said}");

    let mut silent = connect(&c.url);
    assert_eq!(wait_closed(&mut silent, Duration::from_secs(60)), "");
}

/// A body sent a byte at a time (each byte well within any idle timeout)
/// is cut at the body deadline with 408, and the connection closed; the
/// API serves meanwhile.
#[test]
fn a_trickled_body_is_cut_at_the_body_deadline() {
    let c = RestCluster::start(&["--api-body-timeout", "3s"]);
    let mut slow = start_upload(&c.url, "/api/v1/blobs", &c.admin, 1_000_000, b"x");
    let mut sent = 1;
    for _ in 0..240 {
        if !still_waiting(&slow) || slow.write_all(b"x").is_err() {
            break;
        }
        sent += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    let said = wait_closed(&mut slow, Duration::from_secs(60));
    assert!(
        said.starts_with("HTTP/1.1 408"),
        "after {sent} bytes: {said}"
    );
    assert!(said.contains("\"timeout\""), "{said}");
    assert!(sent < 1_000_000);

    assert_eq!(c.get("/health", None).status, 200);
    let ok = c.post_raw(
        "/api/v1/blobs",
        Some(&c.admin),
        "application/octet-stream",
        b"a prompt body",
    );
    assert_eq!(ok.status, 201, "{ok:?}");
}

/// Slow uploads open their head and first byte, then wait.
fn slow_uploads(c: &RestCluster, token: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| start_upload(&c.url, "/api/v1/blobs", token, 1_000_000, b"x"))
        .collect()
}

/// Polls `GET /api/v1/stats` with `token` until it is refused for the
/// token's requests in flight; panics if it never is.
fn wait_until_token_is_full(c: &RestCluster, token: &str) {
    let mut last = None;
    for _ in 0..200 {
        let a = c.get("/api/v1/stats", Some(token));
        if a.status == 429 && a.text.contains("requests in flight") {
            assert_eq!(a.code(), "rate_limited", "{a:?}");
            return;
        }
        last = Some(a);
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the token's slow uploads never filled its share: last answer {last:?}");
}

/// Polls `/metrics` until it has `line`; panics if it never does.
fn wait_for_metric(c: &RestCluster, token: &str, line: &str) {
    let mut last = String::new();
    for _ in 0..200 {
        let m = c.get("/metrics", Some(token));
        assert_eq!(m.status, 200, "{m:?}");
        if m.text.lines().any(|l| l == line) {
            return;
        }
        last = m.text;
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("/metrics never showed {line:?}; last:\n{last}");
}

/// One token's slow uploads take only its share of the API: its next
/// request is refused (429) while other tokens are served; and with every
/// API slot held by uploads, /health and /metrics still answer.
#[test]
fn one_token_cannot_take_every_request_slot() {
    let c = RestCluster::start(&[]);
    let a = c.token("submit", &[]);
    let b = c.token("read", &[]);
    let mut held = slow_uploads(&c, &a, 32);
    wait_until_token_is_full(&c, &a);
    assert_eq!(c.get("/api/v1/stats", Some(&b)).status, 200);
    assert_eq!(c.get("/health", None).status, 200);
    assert_eq!(c.get("/metrics", Some(&a)).status, 200, "metrics uncounted");

    // Seven more tokens fill every API slot (256) with uploads...
    for _ in 0..6 {
        let t = c.token("submit", &[]);
        held.extend(slow_uploads(&c, &t, 32));
        wait_until_token_is_full(&c, &t);
    }
    let last = c.token("submit", &[]);
    held.extend(slow_uploads(&c, &last, 32));
    wait_for_metric(&c, &b, "fabric_api_requests_in_flight 256");
    // ...so an API request now waits its turn, while /health and /metrics
    // are answered.
    let mut queued = connect(&c.url);
    queued
        .write_all(
            format!(
                "GET /api/v1/stats HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {b}\r\n\r\n"
            )
            .as_bytes(),
        )
        .expect("send");
    assert_eq!(c.get("/health", None).status, 200);
    assert_eq!(c.get("/metrics", Some(&b)).status, 200);
    assert!(still_waiting(&queued), "the API had a free slot");
    assert!(
        held.iter().all(still_waiting),
        "an upload was answered already"
    );
}
