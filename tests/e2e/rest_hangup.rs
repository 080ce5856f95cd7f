//! A REST client that hangs up while its request is served. hyper drops
//! the handler then; a submit cut short after its write left its tasks
//! stored but never queued (until a restart), so they showed as queued
//! and never ran.

use std::io::Write as _;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fabric_tests::harness::rest::{RestCluster, wasm};
use serde_json::json;

#[test]
fn a_batch_whose_client_hangs_up_at_once_is_still_queued_and_run() {
    let c = RestCluster::start(&[]);
    let sha = c.module(&wasm(
        r#"(module (memory (export "memory") 1) (func (export "_start")))"#,
    ));
    let n = 1000;
    let tasks: Vec<_> = (0..n).map(|_| json!({"module": sha})).collect();
    let body = serde_json::to_vec(&json!({"tasks": tasks})).unwrap();
    let addr = c.url.trim_start_matches("http://");
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
    // Gone before any answer: the body is whole, the batch is served.
    drop(s);

    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let page = c.get("/api/v1/tasks?limit=1000", Some(&c.admin));
        assert_eq!(page.status, 200, "{page:?}");
        let listed = page.json["tasks"].as_array().expect("tasks").clone();
        let unfinished: Vec<_> = listed
            .iter()
            .filter(|t| t["status"] != "succeeded")
            .collect();
        if listed.len() == n && unfinished.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "180 s after the hang-up: {} of {n} tasks stored, {} of them not succeeded (first: {:?})",
            listed.len(),
            unfinished.len(),
            unfinished.first()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}
