//! Large inputs through a real cluster: a 20 MiB input (over one 16 MiB
//! frame) uploaded in pieces by `fabric submit`, kept in the dispatcher's
//! store across a kill -9, fetched in pieces by the worker; and the queue's
//! depth refused in one line.

use std::process::Output;
use std::time::Duration;

use fabric_proto::{TaskId, TaskStatus};

use fabric_tests::harness::cluster::{
    DispatcherProc, TRIVIAL_WAT, client, fabric_cmd, free_udp_port, start_dispatcher, start_worker,
};
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::sandbox::{Sandbox, describe, json_of};

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

/// Runs a client command against `d`'s profile.
fn client_cmd(sb: &Sandbox, d: &DispatcherProc, args: &[&str]) -> Output {
    fabric_cmd(sb, None)
        .arg("--cluster")
        .arg(&d.profile)
        .args(args)
        .output_in_time()
        .expect("run fabric")
}

/// Bytes that do not repeat (xorshift), so nothing dedupes or compresses.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20_mib_input_survives_a_dispatcher_kill_and_reaches_the_guest_whole() {
    let sb = Sandbox::new();
    let listen = format!("127.0.0.1:{}", free_udp_port());
    let mut d = start_dispatcher(&sb, "d", &listen, &["--no-mdns"], None);
    let module = sb.wat("count", COUNT_STDIN_WAT);
    let len = 20 << 20;
    let input = sb.write("big.bin", &noise(len));
    let module = module.to_str().unwrap();
    let input = input.to_str().unwrap();
    // No worker yet: the task is queued with its input stored.
    let out = client_cmd(&sb, &d, &["submit", module, "--input", input, "--json"]);
    assert!(out.status.success(), "{}", describe(&out));
    let id = json_of(&out)["id"].as_str().expect("id").to_owned();

    d.proc.kill9();
    let d = start_dispatcher(&sb, "d", &listen, &["--no-mdns"], None);
    let _w = start_worker(&sb, "w1", &d, 1);
    let c = client(&d.profile).await;
    let id: TaskId = id.parse().expect("task id");
    let info = tokio::time::timeout(Duration::from_secs(60), c.wait(id, |_| {}))
        .await
        .expect("the task finishes in time")
        .expect("wait");
    assert_eq!(info.status, Some(TaskStatus::Succeeded), "{info:?}");
    let outcome = info.outcome.expect("outcome");
    assert_eq!(String::from_utf8_lossy(&outcome.stdout), format!("{len}\n"));
}

#[test]
fn a_submit_to_a_full_queue_fails_with_one_clear_line() {
    let sb = Sandbox::new();
    let d = start_dispatcher(
        &sb,
        "d",
        "127.0.0.1:0",
        &["--no-mdns", "--max-queued", "1"],
        None,
    );
    let module = sb.wat("trivial", TRIVIAL_WAT);
    let module = module.to_str().unwrap();
    let out = client_cmd(&sb, &d, &["submit", module]);
    assert!(out.status.success(), "{}", describe(&out));
    let out = client_cmd(&sb, &d, &["submit", module]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        err.trim_end(),
        "error: dispatcher: the queue is full (1 task); try again later",
        "{}",
        describe(&out)
    );
    assert!(out.stdout.is_empty(), "{}", describe(&out));
}
