//! Refusals at every trust boundary, each with a clear error or log line.

use std::collections::HashMap;
use std::time::Duration;

use fabric_net::{Identity, JoinToken, NetConfig, framed};
use fabric_proto::wire::{Envelope, ErrorCode, Report, Request, Response, WIRE_VERSION};
use fabric_proto::{Manifest, Sha256, Signed, TaskStatus, now_ms};
use fabric_tests::harness::cluster::{
    DispatcherProc, TRIVIAL_WAT, client, fabric_cmd, pinned_worker_cmd, read_profile, spec,
    start_dispatcher,
};
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::fake_dispatcher::{FakeDispatcher, manifest, refused};
use fabric_tests::harness::process::Proc;
use fabric_tests::harness::sandbox::{Sandbox, describe, json_of};
use quinn::Connection;

const MAX: usize = fabric_proto::DEFAULT_MAX_FRAME;

/// Runs a worker with `token` against `d`; it must exit 1. Returns stderr.
fn worker_fails(sb: &Sandbox, d: &DispatcherProc, token: &str) -> String {
    let out = fabric_cmd(sb, None)
        .args([
            "worker",
            "--join",
            token,
            "--dispatcher",
            &d.addr.to_string(),
        ])
        .arg("--data-dir")
        .arg(sb.dir.path().join("w"))
        .output_in_time()
        .expect("run worker");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_worker_with_a_wrong_join_secret_is_refused() {
    let sb = Sandbox::new();
    let d = start_dispatcher(&sb, "d", "127.0.0.1:0", &["--no-mdns"], None);
    let real: JoinToken = d.token.parse().unwrap();
    let forged = JoinToken::generate(real.dispatcher).to_string();
    let err = worker_fails(&sb, &d, &forged);
    assert!(err.contains("join token secret is not valid"), "{err}");
    assert!(
        d.proc.stderr().contains("wrong join token"),
        "{}",
        d.proc.stderr()
    );
}

#[test]
fn a_worker_refuses_a_dispatcher_whose_key_it_did_not_pin() {
    let sb = Sandbox::new();
    let d = start_dispatcher(&sb, "d", "127.0.0.1:0", &["--no-mdns"], None);
    let stranger = Identity::generate().unwrap();
    let token = JoinToken::generate(stranger.public()).to_string();
    let err = worker_fails(&sb, &d, &token);
    assert!(err.contains("is not the pinned key"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_refuses_tampered_replayed_expired_foreign_and_mismatched_manifests() {
    let sb = Sandbox::new();
    let good = wat::parse_str(TRIVIAL_WAT).unwrap();
    let other =
        wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start") nop))"#)
            .unwrap();
    let good_sha = Sha256::of(&good);
    let lying_sha = Sha256::of(&other);
    // The fake serves the wrong bytes under `lying_sha`.
    let blobs = HashMap::from([(good_sha, good.clone()), (lying_sha, good.clone())]);
    let fake = FakeDispatcher::start(&sb, blobs).await;
    let sign = |m: &Manifest| fake.sign(m);

    // A proper manifest runs.
    let ok = sign(&manifest(good_sha, b"in"));
    match fake.assign(ok.clone(), b"in").await {
        Report::Done(o) => assert_eq!(o.status, TaskStatus::Succeeded, "{o:?}"),
        other => panic!("good manifest not run: {other:?}"),
    }
    // The same manifest again is a replay.
    assert!(refused(fake.assign(ok, b"in").await).contains("replay"));
    // Tampered body.
    let mut tampered = sign(&manifest(good_sha, b"in"));
    let n = tampered.body_mut().len();
    tampered.body_mut()[n - 1] ^= 0x01;
    assert!(refused(fake.assign(tampered, b"in").await).contains("signature does not verify"));
    // Expired.
    let mut m = manifest(good_sha, b"in");
    m.expires_at_ms = now_ms() - 1;
    assert!(refused(fake.assign(sign(&m), b"in").await).contains("expired"));
    // Signed by a key the worker did not pin.
    let stranger = Identity::generate().unwrap();
    let foreign = Signed::sign(stranger.signing_key(), &manifest(good_sha, b"in")).unwrap();
    assert!(refused(fake.assign(foreign, b"in").await).contains("untrusted key"));
    // Input that is not the input the manifest names.
    assert!(
        refused(
            fake.assign(sign(&manifest(good_sha, b"in")), b"other")
                .await
        )
        .contains("input bytes hash")
    );
    // Module bytes that do not hash to the manifest's digest.
    let reason = refused(fake.assign(sign(&manifest(lying_sha, b"")), b"").await);
    assert!(reason.contains("module bytes hash"), "{reason}");
    assert!(
        fake.worker.stderr().contains("refusing an assignment"),
        "{}",
        fake.worker.stderr()
    );
}

async fn raw_exchange(conn: &Connection, bytes: &[u8]) -> Response {
    let (mut send, recv) = conn.open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    let _ = send.finish();
    framed::FramedRecv::new(recv, MAX).expect().await.unwrap()
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_are_refused_and_the_dispatcher_keeps_serving() {
    let sb = Sandbox::new();
    let d = start_dispatcher(&sb, "d", "127.0.0.1:0", &["--no-mdns"], None);
    let admin = read_profile(&d.profile).client;
    let key = d.key.parse().unwrap();
    let conn = fabric_net::connect(&admin, vec![key], d.addr, &NetConfig::default())
        .await
        .unwrap();

    // A header announcing 1 GiB: refused before anything is allocated.
    let resp = raw_exchange(&conn, &(1u32 << 30).to_be_bytes()).await;
    assert!(
        matches!(&resp, Response::Error(e) if e.code == ErrorCode::TooLarge && e.message.contains("over the")),
        "{resp:?}"
    );
    // Garbage CBOR.
    let resp = raw_exchange(&conn, &frame(b"\xff\xfe not cbor")).await;
    assert!(
        matches!(&resp, Response::Error(e) if e.code == ErrorCode::Malformed),
        "{resp:?}"
    );
    // A newer protocol version.
    let newer = fabric_proto::to_cbor(&Envelope {
        v: WIRE_VERSION + 1,
        msg: "from the future",
    })
    .unwrap();
    let resp = raw_exchange(&conn, &frame(&newer)).await;
    assert!(
        matches!(&resp, Response::Error(e) if e.code == ErrorCode::Unsupported),
        "{resp:?}"
    );
    // The same connection, and another client, are still served.
    let ok = raw_exchange(
        &conn,
        &frame(&fabric_proto::wire::encode_msg(&Request::Workers).unwrap()),
    )
    .await;
    assert!(matches!(ok, Response::Workers(_)), "{ok:?}");
    let c = client(&d.profile).await;
    let module = c
        .upload_module(&wat::parse_str(TRIVIAL_WAT).unwrap())
        .await
        .unwrap();
    assert!(c.submit(spec(module)).await.is_ok());
    let log = d.proc.stderr();
    assert!(
        log.contains("refused oversized frame") && log.contains("malformed request"),
        "{log}"
    );

    // A key the dispatcher does not know gets nothing.
    let stranger = Identity::generate().unwrap();
    let conn = fabric_net::connect(&stranger, vec![key], d.addr, &NetConfig::default())
        .await
        .unwrap();
    let resp = raw_exchange(
        &conn,
        &frame(&fabric_proto::wire::encode_msg(&Request::Workers).unwrap()),
    )
    .await;
    assert!(
        matches!(&resp, Response::Error(e) if e.code == ErrorCode::Unauthorized),
        "{resp:?}"
    );
    // Nor may it send more than 4 KiB in a frame: 5,000 bytes are refused
    // from the header alone, where a known client's 5,000 are read (and
    // found not to be CBOR).
    let resp = raw_exchange(&conn, &5_000u32.to_be_bytes()).await;
    assert!(
        matches!(&resp, Response::Error(e) if e.code == ErrorCode::TooLarge),
        "{resp:?}"
    );
    let known = fabric_net::connect(&admin, vec![key], d.addr, &NetConfig::default())
        .await
        .unwrap();
    let resp = raw_exchange(&known, &frame(&[0xffu8; 5_000])).await;
    assert!(
        matches!(&resp, Response::Error(e) if e.code == ErrorCode::Malformed),
        "{resp:?}"
    );
    // And a module that is not wasm is refused by name.
    let err = c.upload_module(b"#!/bin/sh\necho hi\n").await.unwrap_err();
    assert!(
        err.to_string().contains("not a WebAssembly binary"),
        "{err}"
    );
}

#[test]
fn allow_listed_worker_keys_need_no_token_and_others_are_refused() {
    let sb = Sandbox::new();
    // The worker's identity, made ahead so its key can be allow-listed.
    let listed = Identity::generate().unwrap();
    let key_file = sb.dir.path().join("listed/worker/node.key");
    std::fs::create_dir_all(key_file.parent().unwrap()).unwrap();
    std::fs::write(&key_file, listed.secret_hex()).unwrap();
    let d = start_dispatcher(
        &sb,
        "d",
        "127.0.0.1:0",
        &["--no-mdns", "--worker-key", &listed.public().to_string()],
        None,
    );
    let worker = |name: &str| pinned_worker_cmd(&sb, &d.key, d.addr, name);
    // Not listed, no token: refused at registration, with a hint.
    let out = worker("stranger").output_in_time().expect("run worker");
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not allowed to register") && err.contains("--join"),
        "{err}"
    );
    // Listed: registers without a token.
    let _w = Proc::spawn("listed", worker("listed"), sb.dir.path());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = fabric_cmd(&sb, None)
            .args(["workers", "--json", "--cluster"])
            .arg(&d.profile)
            .output_in_time()
            .expect("run");
        let v = json_of(&out);
        if v.as_array()
            .is_some_and(|a| a.len() == 1 && a[0]["name"] == "listed")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "listed worker never registered: {v}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
