//! Uploaded inputs in a group of dispatchers (issue 26): a blob uploaded
//! to the leader, over QUIC in pieces or over REST as a stream, is on a
//! majority before the upload is answered, so a task that names it runs
//! with it after the leader is killed.

use std::time::Duration;

use fabric_proto::{TaskSpec, TaskStatus};
use fabric_tests::harness::group::Group;
use fabric_tests::harness::sandbox::{Sandbox, guest};

/// `n` words, `distinct` of them different: wordfreq's input.
fn words(n: usize, distinct: usize) -> Vec<u8> {
    (0..n)
        .map(|i| format!("w{} ", i % distinct))
        .collect::<String>()
        .into_bytes()
}

fn total_words(stdout: &[u8]) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(stdout).expect("wordfreq's JSON");
    v["total_words"].as_u64().expect("total_words")
}

/// A POST as a REST client of a group makes it: a 307 is followed to the
/// leader, a 503 (no leader yet, or a write not committed in time) is
/// tried again shortly; the answer's JSON.
fn post_following(
    url: &str,
    token: &str,
    send: impl Fn(ureq::Request) -> Result<ureq::Response, ureq::Error>,
) -> serde_json::Value {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let mut url = url.to_owned();
    for _ in 0..20 {
        let r = send(
            agent
                .post(&url)
                .set("Authorization", &format!("Bearer {token}")),
        );
        match r {
            Ok(r) => return r.into_json().expect("JSON"),
            Err(ureq::Error::Status(307, r)) => {
                url = r.header("location").expect("a Location").to_owned();
            }
            Err(ureq::Error::Status(503, _)) => std::thread::sleep(Duration::from_millis(500)),
            Err(ureq::Error::Status(code, r)) => {
                panic!("POST {url}: {code} {}", r.into_string().unwrap_or_default())
            }
            Err(e) => panic!("POST {url}: {e}"),
        }
    }
    panic!("POST {url}: no leader took it in 20 tries")
}

#[test]
#[allow(
    clippy::result_large_err,
    reason = "the closures return ureq's own Result"
)]
fn inputs_uploaded_to_the_leader_survive_its_kill() {
    let sb = Sandbox::new();
    let mut g = Group::start(&sb, 3);
    let leader = g.leader_by_cli(&sb, Duration::from_secs(30));
    let token = g.api_token(&sb, leader, "submit");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (quic_task, rest_task, quic_words, rest_words) = rt.block_on(async {
        let c = g.client().await;
        let module = c
            .upload_module(&std::fs::read(guest("wordfreq")).unwrap())
            .await
            .unwrap();
        // Over QUIC, in 1 MiB pieces: about 4 MiB.
        let a = words(800_000, 1_000);
        let blob = c.upload_input(&a).await.unwrap();
        assert!(blob.len > 3 << 20, "{}", blob.len);
        let quic_task = c
            .submit(TaskSpec {
                input_blob: Some(blob),
                ..TaskSpec::wasm(module)
            })
            .await
            .unwrap();
        // Over REST, streamed to the leader's API: about 1.6 MiB.
        let b = words(300_000, 500);
        let api = format!("http://{}", g.members[leader].api);
        let up = post_following(&format!("{api}/api/v1/blobs"), &token, |r| {
            r.set("Content-Type", "application/octet-stream")
                .send_bytes(&b)
        });
        let sub = post_following(&format!("{api}/api/v1/tasks"), &token, |r| {
            r.send_json(serde_json::json!({
                "module": module.to_hex(),
                "input_blob": {"sha256": up["sha256"], "len": up["len"]},
            }))
        });
        let rest_task: fabric_proto::TaskId = sub["id"].as_str().expect("id").parse().unwrap();
        c.close().await;
        (quic_task, rest_task, 800_000u64, 300_000u64)
    });
    // No worker yet: both wait in the queue while the leader dies.
    let leader = rt.block_on(g.leader(Duration::from_secs(30)));
    g.kill9(leader);
    let w = g.worker(&sb, "w1", 2);
    rt.block_on(async {
        let c = g.client().await;
        for (id, want) in [(quic_task, quic_words), (rest_task, rest_words)] {
            let info = tokio::time::timeout(Duration::from_secs(90), c.wait(id, |_| {}))
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "task {id} did not finish within 90 s of the leader's kill; the worker's log:\n{}",
                        w.stderr()
                    )
                })
                .expect("wait");
            assert_eq!(info.status, Some(TaskStatus::Succeeded), "{info:?}");
            let out = info.outcome.expect("an outcome");
            assert_eq!(total_words(&out.stdout), want, "the input it ran with");
        }
    });
}

/// A member away while a blob was uploaded, and long enough that the
/// others compacted their logs past it, catches up by a snapshot (which
/// holds no blob files) and then fetches the blob its live task names.
#[test]
fn a_member_caught_up_by_a_snapshot_fetches_the_blob_files_it_lacks() {
    let sb = Sandbox::new();
    let mut g = Group::start(&sb, 3);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let leader = rt.block_on(g.leader(Duration::from_secs(30)));
    let away = (leader + 1) % 3;
    g.kill9(away);
    let blob = rt.block_on(async {
        let c = g.client().await;
        let module = c
            .upload_module(&std::fs::read(guest("wordfreq")).unwrap())
            .await
            .unwrap();
        let blob = c.upload_input(&words(400_000, 700)).await.unwrap();
        c.submit(TaskSpec {
            input_blob: Some(blob),
            ..TaskSpec::wasm(module)
        })
        .await
        .unwrap();
        // One entry each, one after the other: past a snapshot (every
        // 5,000 entries) and the 1,000 entries kept behind it.
        let later = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            + 86_400_000;
        for i in 0..6_500 {
            // A submit whose answer a loaded machine lost is not resent by
            // the client (it may be queued); here another one does as well.
            let mut tries = 0;
            while let Err(e) = c
                .submit(TaskSpec {
                    not_before_ms: Some(later),
                    ..TaskSpec::wasm(module)
                })
                .await
            {
                tries += 1;
                assert!(tries < 5, "submit {i}: {e}");
            }
        }
        c.close().await;
        blob
    });
    let file = sb
        .dir
        .path()
        .join(&g.members[away].name)
        .join("store/inputs")
        .join(blob.sha.to_hex());
    assert!(!file.exists(), "{} was away", g.members[away].name);
    g.restart(&sb, away);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !file.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{} did not fetch the blob file it lacks within 60 s",
            g.members[away].name
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // And it catches up with the rest of the log.
    rt.block_on(async {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let c = g.client_of(away).await;
            let view = c.members().await.unwrap_or_default();
            c.close().await;
            if view
                .iter()
                .any(|m| m.this && m.applied.unwrap_or(0) > 6_500)
            {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{view:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}
