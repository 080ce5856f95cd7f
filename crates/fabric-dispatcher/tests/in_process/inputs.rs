//! Large inputs travel as chunked blobs; the queue has a depth.

use fabric_dispatcher::AdmissionCaps;
use fabric_proto::wire::ErrorCode;
use fabric_proto::{BLOB_CHUNK, Limits, TaskSpec, TaskStatus};

use crate::harness::{Cluster, TRIVIAL_WAT, fast_heartbeats};

/// A module that reads all of stdin and prints how many bytes it read.
pub const COUNT_STDIN_WAT: &str = r#"(module
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_submit_beyond_the_queue_depth_is_refused_and_says_so() {
    let caps = AdmissionCaps {
        max_queued: 2,
        ..AdmissionCaps::default()
    };
    let mut c = Cluster::start_with(fast_heartbeats(), |cfg| cfg.caps = caps).await;
    let module = c.module(TRIVIAL_WAT).await;
    // No worker yet: everything stays queued.
    let first = c.submit(module, Limits::default(), 0).await;
    let second = c.submit(module, Limits::default(), 0).await;
    let err = c
        .client
        .submit(TaskSpec::wasm(module))
        .await
        .expect_err("a third task does not fit");
    assert_eq!(err.code(), Some(ErrorCode::QueueFull), "{err}");
    assert_eq!(
        err.to_string(),
        "dispatcher: the queue is full (2 tasks); try again later"
    );
    // Once the queue drains, submits are accepted again.
    let w = c.add_worker(2).await;
    for id in [first, second] {
        assert_eq!(c.finished(id).await.status, Some(TaskStatus::Succeeded));
    }
    let third = c.submit(module, Limits::default(), 0).await;
    assert_eq!(c.finished(third).await.status, Some(TaskStatus::Succeeded));
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_input_of_several_pieces_reaches_the_guest_whole() {
    let mut c = Cluster::start(fast_heartbeats()).await;
    let w = c.add_worker(1).await;
    let module = c.module(COUNT_STDIN_WAT).await;
    let len = 2 * BLOB_CHUNK + 12_345;
    let input: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let mut spec = TaskSpec::wasm(module);
    spec.input = input.clone();
    let id = c.client.submit(spec).await.expect("submit");
    let info = c.finished(id).await;
    let outcome = info.outcome.expect("outcome");
    assert_eq!(info.status, Some(TaskStatus::Succeeded), "{outcome:?}");
    assert_eq!(String::from_utf8_lossy(&outcome.stdout), format!("{len}\n"));
    // The same input again is not uploaded twice; it runs the same.
    let blob = c.client.upload_input(&input).await.expect("upload");
    let mut spec = TaskSpec::wasm(module);
    spec.input_blob = Some(blob);
    let id = c.client.submit(spec).await.expect("submit by reference");
    let outcome = c.finished(id).await.outcome.expect("outcome");
    assert_eq!(String::from_utf8_lossy(&outcome.stdout), format!("{len}\n"));
    // A reference to a blob that is not stored is refused at admission.
    let mut spec = TaskSpec::wasm(module);
    spec.input_blob = Some(fabric_proto::BlobRef::of(b"never uploaded"));
    let err = c.client.submit(spec).await.expect_err("unknown blob");
    assert_eq!(err.code(), Some(ErrorCode::NotFound), "{err}");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_inline_input_over_the_inline_size_is_stored_as_a_blob_at_admission() {
    use fabric_net::framed;
    use fabric_proto::wire::{Request, Response};

    let mut c = Cluster::start(fast_heartbeats()).await;
    let w = c.add_worker(1).await;
    let module = c.module(COUNT_STDIN_WAT).await;
    // An older client sends a large input inline, bypassing `upload_input`.
    let me = fabric_net::Identity::generate().expect("key");
    c.dispatcher
        .add_client(&me.public(), "old")
        .await
        .expect("trust");
    let net = fabric_net::NetConfig::default();
    let key = c.dispatcher.public_key();
    let conn = fabric_net::connect(&me, vec![key], c.dispatcher.local_addr(), &net)
        .await
        .expect("connect");
    let (mut send, mut recv) = framed::open(&conn, net.max_frame).await.expect("stream");
    let mut spec = TaskSpec::wasm(module);
    spec.input = vec![b'x'; fabric_proto::INLINE_INPUT_MAX * 3];
    send.send(&Request::Submit {
        spec: Box::new(spec),
        wait: false,
    })
    .await
    .expect("send");
    let id = match recv.expect::<Response>().await.expect("answer") {
        Response::Submitted { id, .. } => id,
        other => panic!("{other:?}"),
    };
    let outcome = c.finished(id).await.outcome.expect("outcome");
    let want = format!("{}\n", fabric_proto::INLINE_INPUT_MAX * 3);
    assert_eq!(String::from_utf8_lossy(&outcome.stdout), want);
    w.stop().await;
}
