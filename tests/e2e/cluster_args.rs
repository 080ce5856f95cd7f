//! Queued tasks' big args and env live in the dispatcher's store, not in
//! its memory (issue 20, item 11): thousands of queued tasks with 60 KiB
//! of args each keep the dispatcher small, across a restart too, and a
//! task still runs with its args and env whole.

use std::time::Duration;

use fabric_proto::{TaskSpec, TaskStatus};
use fabric_tests::harness::cluster::{client, free_udp_port, start_dispatcher, start_worker};
use fabric_tests::harness::process::peak_kib;
use fabric_tests::harness::sandbox::Sandbox;

/// A module that writes its args, then its environment, to stdout (each
/// string NUL-terminated, as WASI hands them over).
const ECHO_ARGS_ENV_WAT: &str = r#"(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $asz (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $aget (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $esz (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_get" (func $eget (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
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
    (call $out (i32.const 262144) (i32.load (i32.const 36)))))"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_tasks_with_big_args_keep_the_dispatcher_small_across_a_restart() {
    const TASKS: usize = 2000;
    let sb = Sandbox::new();
    let listen = format!("127.0.0.1:{}", free_udp_port());
    let flags = ["--no-mdns"];
    let mut d = start_dispatcher(&sb, "d", &listen, &flags, None);
    let c = client(&d.profile).await;
    let module = c
        .upload_module(&wat::parse_str(ECHO_ARGS_ENV_WAT).expect("fixture"))
        .await
        .expect("upload");
    let idle = peak_kib(d.proc.pid());
    // 60 KiB of args and 2 KiB of env each, different for every task (so
    // the store cannot share them): 121 MiB in all. No worker: they stay
    // queued.
    let pad = "a".repeat(60 << 10);
    let big_env = "z".repeat(2000);
    let mut ids = Vec::new();
    for i in 0..TASKS {
        let mut spec = TaskSpec::wasm(module);
        spec.args = vec![format!("task-{i}"), pad.clone()];
        spec.env = vec![("BIG".to_owned(), big_env.clone())];
        ids.push(c.submit(spec).await.expect("submit"));
    }
    let queued = peak_kib(d.proc.pid());
    let grew = queued.saturating_sub(idle) / 1024;
    assert!(
        grew < 48,
        "{TASKS} queued tasks with 62 KiB of args and env each raised the dispatcher's peak by {grew} MiB ({} to {} MiB)",
        idle / 1024,
        queued / 1024
    );
    c.close().await;

    d.proc.kill9();
    let d = start_dispatcher(&sb, "d", &listen, &flags, None);
    let restarted = peak_kib(d.proc.pid());
    let grew = restarted.saturating_sub(idle) / 1024;
    assert!(
        grew < 48,
        "after a restart with {TASKS} such tasks queued the dispatcher peaked {grew} MiB above a fresh one ({} MiB)",
        restarted / 1024
    );

    // A worker runs the first of them with its args and env whole.
    let _w = start_worker(&sb, "w1", &d, 2);
    let c = client(&d.profile).await;
    let info = tokio::time::timeout(Duration::from_secs(120), c.wait(ids[0], |_| {}))
        .await
        .expect("the task finishes in time")
        .expect("wait");
    assert_eq!(info.status, Some(TaskStatus::Succeeded), "{info:?}");
    let out = info.outcome.expect("outcome").stdout;
    let text = String::from_utf8_lossy(&out);
    let want_args = format!("\0task-0\0{pad}\0");
    let want_env = format!("BIG={big_env}\0");
    assert!(
        text.contains(&want_args),
        "args missing: {} bytes out",
        out.len()
    );
    assert!(
        text.ends_with(&want_env),
        "env missing: {} bytes out",
        out.len()
    );
}
