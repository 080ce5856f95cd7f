//! Long-running commands say what they do: a worker names itself, says
//! when it joined or cannot reach the dispatcher, and drains on the first
//! signal and stops at once on the second.

use std::time::Duration;

use fabric_tests::harness::cluster::{
    fabric_cmd, free_udp_port, start_dispatcher, start_worker, wait_running,
};
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::process::Proc;
use fabric_tests::harness::sandbox::{Sandbox, describe};

const SPIN: &str =
    r#"(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))"#;

#[test]
fn a_worker_says_who_it_is_when_it_joined_and_that_it_drains() {
    let sb = Sandbox::new();
    let d = start_dispatcher(&sb, "d", "127.0.0.1:0", &[], None);
    let w = start_worker(&sb, "w1", &d, 2);
    let text = w.wait_for_stderr(&format!("joined {}", d.addr), Duration::from_secs(30));
    assert!(text.contains("worker w1: key "), "{text}");
    assert!(text.contains("2 slots,"), "{text}");
    // A task keeps it busy; the first SIGTERM drains and says how to stop
    // now, the second stops at once.
    let spin = sb.dir.path().join("spin.wasm");
    std::fs::write(&spin, wat::parse_str(SPIN).unwrap()).unwrap();
    let out = fabric_cmd(&sb, None)
        .arg("--cluster")
        .arg(&d.profile)
        .arg("submit")
        .arg(&spin)
        .args(["--timeout", "60s", "--fuel", "1000000000000"])
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let id: fabric_proto::TaskId = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = fabric_tests::harness::cluster::client(&d.profile).await;
        wait_running(&client, id, Duration::from_secs(30)).await;
    });
    let mut w = w;
    w.sigterm();
    w.wait_for_stderr(
        "draining 1 running task; Ctrl-C again to stop now",
        Duration::from_secs(10),
    );
    w.sigterm();
    // The spin task has 60 s to run: a worker that kept draining would
    // still be running here (the wait's deadline is a hang guard).
    let status = w.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(130), "{}", w.stderr());
    assert!(w.stderr().contains("stopping now"), "{}", w.stderr());
    // Stopped, not drained: the task did not end on this worker (a drain
    // would have recorded it as timed out); it waits to be requeued.
    let info = rt.block_on(async {
        let client = fabric_tests::harness::cluster::client(&d.profile).await;
        client.status(id).await.unwrap()
    });
    assert_eq!(
        info.status, None,
        "the stopped worker finished it: {info:?}"
    );
    assert_eq!(info.outcome, None, "{info:?}");
    let mut d = d;
    d.proc.terminate(Duration::from_secs(30));
}

#[test]
fn a_worker_that_cannot_reach_its_dispatcher_says_so_and_retries() {
    let sb = Sandbox::new();
    let addr = format!("127.0.0.1:{}", free_udp_port());
    let key = fabric_net::Identity::generate()
        .unwrap()
        .public()
        .to_string();
    let mut cmd = fabric_cmd(&sb, None);
    cmd.arg("worker")
        .args([
            "--dispatcher",
            &addr,
            "--dispatcher-key",
            &key,
            "--name",
            "lonely",
        ])
        .arg("--data-dir")
        .arg(sb.dir.path().join("lonely"));
    let mut w = Proc::spawn("lonely", cmd, sb.dir.path());
    let text = w.wait_for_stderr("retrying in", Duration::from_secs(40));
    assert!(text.contains("cannot reach the dispatcher"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "no ANSI colour when stderr is not a terminal: {text:?}"
    );
    let status = w.terminate(Duration::from_secs(10));
    assert!(
        status.success() || status.code() == Some(0),
        "{}",
        w.stderr()
    );
}
