//! The core under operators' faults: a drain with a queue behind it, a
//! dispatcher killed mid-task, a module that cannot run.

use std::time::Duration;

use fabric_proto::TaskStatus;
use fabric_tests::harness::cluster::{
    client, countdown_wat, fabric_cmd, free_udp_port, spec, start_dispatcher, start_worker,
    wait_running, wait_workers,
};
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::sandbox::{Sandbox, describe};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigterm_on_the_only_worker_with_a_queue_behind_it_fails_nothing() {
    let sb = Sandbox::new();
    let mut d = start_dispatcher(&sb, "d", "127.0.0.1:0", &["--no-mdns"], None);
    let mut w1 = start_worker(&sb, "w1", &d, 1);
    let c = client(&d.profile).await;
    wait_workers(&c, 1, Duration::from_secs(30)).await;
    let module = c
        .upload_module(&wat::parse_str(countdown_wat(300_000_000)).unwrap())
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..26 {
        ids.push(c.submit(spec(module)).await.unwrap());
    }
    wait_running(&c, ids[0], Duration::from_secs(30)).await;
    let queued = c.status(ids[25]).await.unwrap();
    assert_eq!(
        queued.state,
        fabric_proto::TaskState::Queued,
        "a queue is behind it"
    );
    // The only worker drains: it tells the dispatcher first, finishes what
    // it runs, and refuses nothing into failure.
    let status = w1.terminate(Duration::from_secs(120));
    assert!(status.success(), "worker exit {status:?}: {}", w1.stderr());
    for id in &ids {
        let info = c.status(*id).await.unwrap();
        assert_ne!(
            info.status,
            Some(TaskStatus::Failed),
            "{info:?}\n{}",
            w1.stderr()
        );
    }
    // A new worker takes the rest; every task succeeds.
    let _w2 = start_worker(&sb, "w2", &d, 2);
    for id in &ids {
        let info = tokio::time::timeout(Duration::from_secs(120), c.wait(*id, |_| {}))
            .await
            .expect("finishes on the new worker")
            .unwrap();
        assert_eq!(info.status, Some(TaskStatus::Succeeded), "{info:?}");
        assert!(!info.dead_letter, "{info:?}");
    }
    c.close().await;
    d.proc.terminate(Duration::from_secs(30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispatcher_killed_mid_task_reruns_it_with_a_higher_attempt() {
    let sb = Sandbox::new();
    let listen = format!("127.0.0.1:{}", free_udp_port());
    let mut d = start_dispatcher(&sb, "d", &listen, &["--no-mdns"], None);
    let _w = start_worker(&sb, "w1", &d, 1);
    let id = {
        let c = client(&d.profile).await;
        wait_workers(&c, 1, Duration::from_secs(30)).await;
        let module = c
            .upload_module(&wat::parse_str(countdown_wat(1_500_000_000)).unwrap())
            .await
            .unwrap();
        let id = c.submit(spec(module)).await.unwrap();
        wait_running(&c, id, Duration::from_secs(30)).await;
        let running = c.status(id).await.unwrap();
        assert_eq!(running.attempt, 1);
        id
    };
    d.proc.kill9();
    let mut d = start_dispatcher(&sb, "d", &listen, &["--no-mdns"], None);
    let c = client(&d.profile).await;
    let info = tokio::time::timeout(Duration::from_secs(120), c.wait(id, |_| {}))
        .await
        .expect("the task finishes after the restart")
        .unwrap();
    assert_eq!(info.status, Some(TaskStatus::Succeeded), "{info:?}");
    assert!(
        info.attempt >= 2,
        "the rerun after the crash has a higher attempt: {info:?}"
    );
    c.close().await;
    d.proc.terminate(Duration::from_secs(30));
}

#[test]
fn a_module_that_cannot_run_is_rejected_at_submit_with_exit_2() {
    let sb = Sandbox::new();
    let mut d = start_dispatcher(&sb, "d", "127.0.0.1:0", &["--no-mdns"], None);
    let cases = [
        (
            "no-start.wasm",
            r#"(module (func (export "main")))"#,
            "_start",
        ),
        (
            "foreign-import.wasm",
            r#"(module (import "env" "foo" (func)) (func (export "_start")))"#,
            "env.foo",
        ),
    ];
    for (name, wat_text, says) in cases {
        let path = sb.dir.path().join(name);
        std::fs::write(&path, wat::parse_str(wat_text).unwrap()).unwrap();
        let out = fabric_cmd(&sb, None)
            .arg("--cluster")
            .arg(&d.profile)
            .arg("submit")
            .arg(&path)
            .output_in_time()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(says), "{name}: {stderr}");
    }
    d.proc.terminate(Duration::from_secs(30));
}
