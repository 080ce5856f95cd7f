//! Args and env over the inline size are kept in the store, not in the
//! task record (issue 20, item 11): the worker still gets them whole, and
//! a dead letter retried as a new task keeps them.

use fabric_client::Client;
use fabric_net::Identity;
use fabric_proto::{TaskSpec, TaskStatus};

use crate::harness::{Cluster, fast_heartbeats};

/// Writes its args, then its environment, to stdout (NUL-terminated
/// strings), then exits 1.
const ECHO_THEN_FAIL_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $asz (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $aget (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $esz (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $eget (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 8)
  (func $out (param $buf i32) (param $len i32)
    (i32.store (i32.const 16) (local.get $buf))
    (i32.store (i32.const 20) (local.get $len))
    (drop (call $write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24))))
  (func (export "_start")
    (drop (call $asz (i32.const 0) (i32.const 4)))
    (drop (call $aget (i32.const 1024) (i32.const 65536)))
    (call $out (i32.const 65536) (i32.load (i32.const 4)))
    (drop (call $esz (i32.const 32) (i32.const 36)))
    (drop (call $eget (i32.const 2048) (i32.const 262144)))
    (call $out (i32.const 262144) (i32.load (i32.const 36)))
    (call $exit (i32.const 1))))"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn big_args_reach_the_worker_and_survive_a_dead_letter_retry() {
    let mut c = Cluster::start(fast_heartbeats()).await;
    let w = c.add_worker(1).await;
    let module = c.module(ECHO_THEN_FAIL_WAT).await;
    let big = "b".repeat(20_000);
    let env = "e".repeat(5_000);
    let mut spec = TaskSpec::wasm(module);
    spec.args = vec!["first".to_owned(), big.clone()];
    spec.env = vec![("SECRETISH".to_owned(), env.clone())];
    let want = |stdout: &[u8]| {
        let text = String::from_utf8_lossy(stdout).into_owned();
        assert!(
            text.contains(&format!("\0first\0{big}\0")),
            "{} bytes",
            text.len()
        );
        assert!(
            text.ends_with(&format!("SECRETISH={env}\0")),
            "{} bytes",
            text.len()
        );
    };

    let id = c.client.submit(spec).await.expect("submit");
    let info = c.finished(id).await;
    assert_eq!(info.status, Some(TaskStatus::Failed), "{info:?}");
    assert!(info.dead_letter, "{info:?}");
    want(&info.outcome.expect("outcome").stdout);

    // Only an admin retries dead letters.
    let admin = Identity::generate().expect("admin key");
    c.dispatcher
        .add_admin(&admin.public(), "admin")
        .await
        .expect("admin trusted");
    let admin = Client::connect(&admin, c.dispatcher.public_key(), c.dispatcher.local_addr())
        .await
        .expect("admin connects");
    let again = admin.retry(id).await.expect("retry");
    let info = c.finished(again).await;
    assert_eq!(info.status, Some(TaskStatus::Failed), "{info:?}");
    want(&info.outcome.expect("outcome").stdout);
    w.stop().await;
}
