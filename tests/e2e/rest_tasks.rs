//! Tasks over the REST API against a real cluster: one followed by its
//! event stream and read back, pages, cancels, dead-letter retries, and
//! the caps on event streams.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use fabric_tests::harness::rest::{EXIT_1, RestCluster, SPIN, wasm};
use fabric_tests::harness::sandbox::guest;
use serde_json::{Value, json};

#[test]
fn a_task_submitted_over_rest_is_followed_and_read_back() {
    let c = RestCluster::start(&[]);
    let admin = c.admin.clone();
    // Subscribed before anything happens, the cluster feed sees it all.
    let feed_url = c.url.clone();
    let feed_token = admin.clone();
    let (subscribed, feed_ready) = std::sync::mpsc::channel();
    let feed = std::thread::spawn(move || {
        let resp = ureq::get(&format!("{feed_url}/api/v1/events"))
            .set("Authorization", &format!("Bearer {feed_token}"))
            .timeout(Duration::from_secs(60))
            .call()
            .expect("feed");
        // The dispatcher subscribes before it answers: from its headers
        // on, the feed misses nothing.
        let _ = subscribed.send(());
        let mut kinds = Vec::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(resp.into_reader())) {
            let line = line.expect("line");
            if let Some(k) = line.strip_prefix("event: ") {
                kinds.push(k.to_owned());
                if k == "finished" {
                    break;
                }
            }
        }
        kinds
    });
    feed_ready
        .recv_timeout(Duration::from_secs(60))
        .expect("the feed answers");
    let module = std::fs::read(guest("wordfreq")).unwrap();
    let sha = c.module(&module);
    let text = "the cat and the hat and the bat";
    let id = c.submit(&json!({
        "module": sha,
        "input_b64": B64.encode(text),
        "limits": {"timeout_ms": 20000},
        "priority": "high",
        "trace": "rest-77",
    }));
    let events = c.sse(
        &format!("/api/v1/tasks/{id}/events"),
        &admin,
        Duration::from_secs(60),
        |kind, _| kind == "end",
    );
    let (kind, end) = events.last().expect("an end event");
    assert_eq!(kind, "end", "{events:?}");
    assert_eq!(end["task"]["status"], "succeeded", "{end}");
    assert_eq!(end["output"]["exit_code"], 0, "{end}");
    let kinds = feed.join().unwrap();
    assert!(
        kinds.starts_with(&["submitted".to_owned(), "started".to_owned()]),
        "{kinds:?}"
    );

    let out = c.get(&format!("/api/v1/tasks/{id}/output"), Some(&admin));
    assert_eq!(out.status, 200, "{out:?}");
    let stdout: serde_json::Value =
        serde_json::from_str(out.json["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(stdout["total_words"], 8, "{stdout}");
    assert_eq!(out.json["status"], "succeeded");
    let task = c.get(&format!("/api/v1/tasks/{id}"), Some(&admin));
    assert_eq!(task.json["state"], "done", "{task:?}");
    assert_eq!(task.json["priority"], "high");
    assert_eq!(task.json["trace"], "rest-77");
    let traced = c.get("/api/v1/tasks?trace=rest-77", Some(&admin));
    assert_eq!(
        traced.json["tasks"].as_array().map(Vec::len),
        Some(1),
        "{traced:?}"
    );
    assert_eq!(traced.json["tasks"][0]["id"], id.as_str());
    assert_eq!(task.json["attempts"][0]["attempt"], 1);
    let files = c.get(&format!("/api/v1/tasks/{id}/files"), Some(&admin));
    assert_eq!(
        (files.status, files.json.as_array().map(Vec::len)),
        (200, Some(0))
    );

    // Pages: three more, two per page, the cursor leads on.
    for _ in 0..3 {
        c.submit(&json!({"module": sha, "input_b64": B64.encode("a b")}));
    }
    let mut seen = Vec::new();
    let mut path = "/api/v1/tasks?limit=2".to_owned();
    loop {
        let page = c.get(&path, Some(&admin));
        assert_eq!(page.status, 200, "{page:?}");
        let tasks = page.json["tasks"].as_array().unwrap();
        assert!(tasks.len() <= 2);
        seen.extend(tasks.iter().map(|t| t["id"].as_str().unwrap().to_owned()));
        match page.json["next_cursor"].as_str() {
            Some(cur) => path = format!("/api/v1/tasks?limit=2&cursor={cur}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4, "{seen:?}");
    assert!(seen.contains(&id));
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 4, "no task twice: {seen:?}");

    // Workers and stats.
    let workers = c.get("/api/v1/workers", Some(&admin));
    assert_eq!(
        workers.json.as_array().map(Vec::len),
        Some(1),
        "{workers:?}"
    );
    assert_eq!(workers.json[0]["slots"], 2);
    assert_eq!(workers.json[0]["state"], "ready");

    // Cancel a running task; again is a conflict; its output says so.
    let spin = c.module(&wasm(SPIN));
    let long = c.submit(
        &json!({"module": spin, "limits": {"timeout_ms": 60000, "fuel": 1_000_000_000_000u64}}),
    );
    let running = c.wait_state(&long, "running");
    assert_eq!(running["attempts"][0]["attempt"], 1, "{running}");
    let early = c.get(&format!("/api/v1/tasks/{long}/output"), Some(&admin));
    assert_eq!((early.status, early.code()), (409, "conflict"), "{early:?}");
    let cancelled = c.delete(&format!("/api/v1/tasks/{long}"), Some(&admin));
    assert_eq!(cancelled.status, 200, "{cancelled:?}");
    assert_eq!(cancelled.json["status"], "cancelled");
    // It was stopped on its worker, not taken off the queue.
    let after = c.get(&format!("/api/v1/tasks/{long}"), Some(&admin));
    assert_eq!(
        after.json["attempts"].as_array().map(Vec::len),
        Some(1),
        "{after:?}"
    );
    assert_eq!(
        c.delete(&format!("/api/v1/tasks/{long}"), Some(&admin))
            .status,
        409
    );
    let stats = c.get("/api/v1/stats", Some(&admin));
    assert_eq!(stats.json["total"], 5, "{stats:?}");
    assert_eq!(stats.json["finished"]["cancelled"], 1, "{stats:?}");
    assert_eq!(stats.json["workers"], 1);
}

#[test]
fn a_dead_letter_is_retried_by_an_admin_as_a_new_task() {
    let c = RestCluster::start(&[]);
    let sha = c.module(&wasm(EXIT_1));
    let id = c.submit(&json!({"module": sha}));
    let end = &c.wait_end(&id);
    assert_eq!(end["task"]["status"], "failed", "{end}");
    assert_eq!(end["task"]["dead_letter"], true, "{end}");
    assert_eq!(end["output"]["exit_code"], 1, "{end}");
    let retried = c.post_json(
        &format!("/api/v1/tasks/{id}/retry"),
        Some(&c.admin),
        &json!({}),
    );
    assert_eq!(retried.status, 201, "{retried:?}");
    let new_id = retried.json["id"].as_str().unwrap();
    assert_ne!(new_id, id);
    let old = c.get(&format!("/api/v1/tasks/{id}"), Some(&c.admin));
    assert_eq!(old.json["dead_letter"], false, "{old:?}");
    let again = c.post_json(
        &format!("/api/v1/tasks/{id}/retry"),
        Some(&c.admin),
        &json!({}),
    );
    assert_eq!(again.status, 409, "{again:?}");
    let stats = c.get("/api/v1/stats", Some(&c.admin));
    assert_eq!(stats.json["total"], 2, "{stats:?}");
}

#[test]
fn event_streams_are_capped_per_token() {
    let c = RestCluster::start(&[]);
    let t = c.token("read", &[]);
    let open: Vec<_> = (0..32)
        .map(|_| {
            ureq::get(&format!("{}/api/v1/events", c.url))
                .set("Authorization", &format!("Bearer {t}"))
                .call()
                .expect("a stream")
        })
        .collect();
    let over = c.get("/api/v1/events", Some(&t));
    assert_eq!(over.status, 429, "{over:?}");
    assert!(over.text.contains("event streams open"), "{over:?}");
    // Another token still gets one; closing ours gives the slots back.
    let other = ureq::get(&format!("{}/api/v1/events", c.url))
        .set("Authorization", &format!("Bearer {}", c.admin))
        .call()
        .expect("another token's stream");
    drop(other);
    drop(open);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let resp = ureq::get(&format!("{}/api/v1/events", c.url))
            .set("Authorization", &format!("Bearer {t}"))
            .call();
        match resp {
            Ok(r) if r.status() == 200 => break,
            _ => assert!(
                std::time::Instant::now() < deadline,
                "the slots never came back"
            ),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn tasks_filter_by_every_state_and_status_the_cli_filters_on() {
    let c = RestCluster::start(&[]);
    let fail = c.module(&wasm(EXIT_1));
    let ok = c.module(&std::fs::read(guest("plain-wasi")).unwrap());
    let failed = c.submit(&json!({"module": fail}));
    c.wait_end(&failed);
    let succeeded: Vec<String> = (0..3).map(|_| c.submit(&json!({"module": ok}))).collect();
    for id in &succeeded {
        c.wait_end(id);
    }
    let page = |query: &str| {
        let a = c.get(&format!("/api/v1/tasks?{query}"), Some(&c.admin));
        assert_eq!(a.status, 200, "{query}: {a:?}");
        let ids: Vec<String> = a.json["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect();
        (ids, a.json["next_cursor"].as_str().map(str::to_owned))
    };
    let newest_first: Vec<String> = succeeded.iter().rev().cloned().collect();
    assert_eq!(page("state=succeeded").0, newest_first);
    assert_eq!(page("state=failed").0, std::slice::from_ref(&failed));
    assert_eq!(page("state=dead_letter").0, std::slice::from_ref(&failed));
    assert!(page("state=timed_out").0.is_empty());
    assert_eq!(page("state=done").0.len(), 4);
    // A status filter pages like any other.
    let (first, cursor) = page("state=succeeded&limit=2");
    assert_eq!(first, newest_first[..2]);
    let cursor = cursor.expect("a next page");
    let (rest, none) = page(&format!("state=succeeded&limit=2&cursor={cursor}"));
    assert_eq!(rest, newest_first[2..]);
    assert_eq!(none, None);
    let bad = c.get("/api/v1/tasks?state=bogus", Some(&c.admin));
    assert_eq!(bad.status, 400, "{bad:?}");
}

#[test]
fn rest_tasks_can_require_labels_and_bad_ones_are_400() {
    let c = RestCluster::start(&[]);
    let ok = c.module(&std::fs::read(guest("plain-wasi")).unwrap());
    let queued = c.post_json(
        "/api/v1/tasks",
        Some(&c.admin),
        &json!({"module": ok, "require": ["tpu"]}),
    );
    assert_eq!(queued.status, 201, "{queued:?}");
    assert!(
        queued.json["warning"]
            .as_str()
            .is_some_and(|w| w.contains("carries the label tpu")),
        "{queued:?}"
    );
    let id = queued.json["id"].as_str().unwrap();
    let task = c.get(&format!("/api/v1/tasks/{id}"), Some(&c.admin));
    assert_eq!(task.json["require"], json!(["tpu"]), "{task:?}");
    assert_eq!(task.json["state"], "queued", "{task:?}");
    let bad = c.post_json(
        "/api/v1/tasks",
        Some(&c.admin),
        &json!({"module": ok, "require": ["not a label"]}),
    );
    assert_eq!(bad.status, 400, "{bad:?}");
    assert!(bad.text.contains("require"), "{bad:?}");
}

#[test]
fn not_before_schedules_a_task_over_rest() {
    let c = RestCluster::start(&[]);
    let t = Some(c.admin.as_str());
    let sha = c.module(&wasm(SPIN));
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let id = c.submit(&json!({"module": sha, "not_before": later}));
    let task = c.get(&format!("/api/v1/tasks/{id}"), t);
    assert_eq!(task.json["state"], "scheduled", "{task:?}");
    let listed = c.get("/api/v1/tasks?state=scheduled", t);
    assert_eq!(listed.json["tasks"][0]["id"], id.as_str(), "{listed:?}");
    let bad = c.post_json(
        "/api/v1/tasks",
        t,
        &json!({"module": sha, "not_before": "soon"}),
    );
    assert_eq!(bad.status, 400, "{bad:?}");
    assert!(bad.text.contains("RFC 3339"), "{bad:?}");
    let cancelled = c.delete(&format!("/api/v1/tasks/{id}"), t);
    assert_eq!(cancelled.status, 200, "{cancelled:?}");
}

#[test]
fn a_batch_over_rest_is_queued_all_or_none() {
    let c = RestCluster::start(&[]);
    let sha = c.module(&wasm(
        r#"(module (memory (export "memory") 1) (func (export "_start")))"#,
    ));
    let listed = |c: &RestCluster| {
        let page = c.get("/api/v1/tasks?limit=1000", Some(&c.admin));
        assert_eq!(page.status, 200, "{page:?}");
        page.json["tasks"].as_array().expect("tasks").len()
    };

    let body = json!({"tasks": [
        {"module": sha, "trace": "batch-1"},
        {"module": sha, "priority": "high"},
        {"module": sha, "input_b64": B64.encode("x")},
    ]});
    let a = c.post_json("/api/v1/tasks/batch", Some(&c.admin), &body);
    assert_eq!(a.status, 201, "{a:?}");
    let ids: Vec<String> = a.json["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(ids.len(), 3, "{a:?}");
    for id in &ids {
        let end = c.wait_end(id);
        assert_eq!(end["task"]["status"], "succeeded", "{end}");
    }
    assert_eq!(listed(&c), 3);

    // One bad task refuses the batch, named by its place; none is queued.
    let bad = json!({"tasks": [
        {"module": sha},
        {"module": sha, "limits": {"memory_bytes": 1_u64 << 50}},
    ]});
    let a = c.post_json("/api/v1/tasks/batch", Some(&c.admin), &bad);
    assert_eq!(a.status, 400, "{a:?}");
    assert!(
        a.json["error"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("task 2 of 2: "),
        "{a:?}"
    );
    let missing = json!({"tasks": [{"module": sha}, {"module": "ab".repeat(32)}]});
    let a = c.post_json("/api/v1/tasks/batch", Some(&c.admin), &missing);
    assert_eq!(a.status, 404, "{a:?}");
    assert!(a.text.contains("task 2 of 2"), "{a:?}");
    assert_eq!(listed(&c), 3, "a refused batch queued nothing");

    let empty = c.post_json("/api/v1/tasks/batch", Some(&c.admin), &json!({"tasks": []}));
    assert_eq!(empty.status, 400, "{empty:?}");
    let tasks: Vec<Value> = (0..1001).map(|_| json!({"module": sha})).collect();
    let over = c.post_json(
        "/api/v1/tasks/batch",
        Some(&c.admin),
        &json!({"tasks": tasks}),
    );
    assert_eq!(over.status, 413, "{over:?}");
    assert!(over.text.contains("at most 1000"), "{over:?}");
    assert_eq!(listed(&c), 3);
}
