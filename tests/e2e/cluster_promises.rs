//! What the README promises of the cluster's bounds over REST, each
//! checked against a real `fabric up` (issue 21, "Promises with no test").

use std::time::Duration;

use fabric_tests::harness::rest::RestCluster;
use serde_json::json;

/// A native task that prints a line and then sleeps.
fn sleeper(line: &str) -> serde_json::Value {
    json!({"command": "sh", "args": ["-c", format!("echo {line}; sleep 600")]})
}

#[test]
fn a_full_queue_over_rest_is_503_with_retry_after() {
    let c = RestCluster::start(&["--allow", "sh", "--max-queued", "2"]);
    // Two slots run two sleepers; two more wait; the queue holds two.
    let mut accepted = Vec::new();
    let mut full = None;
    for i in 0..8 {
        let a = c.post_json("/api/v1/tasks", Some(&c.admin), &sleeper(&format!("s{i}")));
        match a.status {
            201 => accepted.push(a.json["id"].as_str().unwrap().to_owned()),
            _ => {
                full = Some(a);
                break;
            }
        }
    }
    let full = full.expect("a submit past the queue's depth is refused");
    assert_eq!(full.status, 503, "{full:?}");
    assert_eq!(full.code(), "queue_full", "{full:?}");
    assert_eq!(full.retry_after.as_deref(), Some("1"), "{full:?}");
    assert!(
        accepted.len() <= 4,
        "{} accepted past a queue of 2",
        accepted.len()
    );
    for id in &accepted {
        assert_eq!(
            c.delete(&format!("/api/v1/tasks/{id}"), Some(&c.admin))
                .status,
            200
        );
    }
}

#[test]
fn a_revoked_token_ends_its_event_stream_with_an_error_event() {
    let c = RestCluster::start(&["--allow", "sh"]);
    let read = c.token("read", &[]);
    let read_id = read
        .strip_prefix("fab_")
        .unwrap()
        .split('_')
        .next()
        .unwrap()
        .to_owned();
    let live = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        // Events for the feed: a task submitted now and then (bounded)
        // until the stream has shown one, which says it is live.
        let (url, admin) = (format!("{}/api/v1/tasks", c.url), c.admin.clone());
        let live = &live;
        s.spawn(move || {
            for i in 0..100 {
                if live.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                let body = json!({"command": "sh", "args": ["-c", format!("echo feed-{i}")]});
                let _ = ureq::post(&url)
                    .set("Authorization", &format!("Bearer {admin}"))
                    .timeout(Duration::from_secs(10))
                    .send_json(body);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let mut revoked = false;
        // Revoked once live, the stream must end with an `error` event
        // (tokens are checked every 15 s), not run on.
        let events = c.sse(
            "/api/v1/events",
            &read,
            Duration::from_secs(60),
            |kind, _| {
                live.store(true, std::sync::atomic::Ordering::SeqCst);
                if !revoked {
                    c.fabric(&["token", "revoke", &read_id]);
                    revoked = true;
                }
                kind == "error"
            },
        );
        let (kind, data) = events.last().expect("some events");
        assert_eq!(kind, "error", "{events:?}");
        assert!(
            data["message"].as_str().unwrap_or("").contains("revoked"),
            "{events:?}"
        );
    });
}
