//! A REST client that hangs up while its request is served. hyper drops
//! the handler then; a submit cut short after its write left its tasks
//! stored but never queued (until a restart), so they showed as queued
//! and never ran.

use std::io::Write as _;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fabric_tests::harness::rest::{RestCluster, wasm};
use serde_json::json;

/// A batch whose client hangs up right after sending it, then (should
/// hyper have dropped that request before serving it: nothing stored)
/// others hung up ever later, until one was stored. No task may stay
/// stored and unqueued, and a batch is stored whole or not at all.
/// Without the fix the first hang-up left its 100 tasks queued forever.
#[test]
fn batches_whose_client_hangs_up_are_run_whole_or_not_stored() {
    let c = RestCluster::start(&[]);
    let sha = c.module(&wasm(
        r#"(module (memory (export "memory") 1) (func (export "_start")))"#,
    ));
    let per_batch = 100;
    let tasks: Vec<_> = (0..per_batch).map(|_| json!({"module": sha})).collect();
    let body = serde_json::to_vec(&json!({"tasks": tasks})).unwrap();
    let addr = c.url.trim_start_matches("http://");
    let listed = |c: &RestCluster| {
        let page = c.get("/api/v1/tasks?limit=1000", Some(&c.admin));
        assert_eq!(page.status, 200, "{page:?}");
        page.json["tasks"].as_array().expect("tasks").clone()
    };
    // Hang-ups ever later after sending, until one batch was stored (a
    // hang-up early enough stores nothing); 8 of them at most.
    let mut sent = 0;
    for ms in [0u64, 1, 4, 16, 64, 256, 1_000, 2_000] {
        let mut s = TcpStream::connect(addr).expect("connect to the API");
        write!(
            s,
            "POST /api/v1/tasks/batch HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            c.admin,
            body.len()
        )
        .unwrap();
        s.write_all(&body).unwrap();
        std::thread::sleep(Duration::from_millis(ms));
        // Gone before reading any answer.
        drop(s);
        sent += 1;
        std::thread::sleep(Duration::from_millis(200));
        if !listed(&c).is_empty() {
            break;
        }
    }

    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last = None;
    loop {
        let listed = listed(&c);
        assert!(
            listed.len() <= per_batch * sent,
            "more tasks than were sent"
        );
        let unfinished: Vec<_> = listed
            .iter()
            .filter(|t| t["status"] != "succeeded")
            .collect();
        // Settled: all stored tasks ran, and no more came since the last look.
        if unfinished.is_empty() && last == Some(listed.len()) {
            assert!(
                listed.len().is_multiple_of(per_batch),
                "{} tasks stored: part of a batch",
                listed.len()
            );
            assert!(
                !listed.is_empty(),
                "no batch was stored: every hang-up came before its request was served, so this run tested nothing"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "180 s after the hang-ups: {} tasks stored, {} of them not succeeded (first: {:?})",
            listed.len(),
            unfinished.len(),
            unfinished.first()
        );
        last = Some(listed.len());
        std::thread::sleep(Duration::from_millis(1_000));
    }
}
