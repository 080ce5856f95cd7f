//! Jobs over REST against a real cluster: a fan-out and fan-in submitted
//! as one body, followed, listed; a cycle refused with nothing queued;
//! cancel and the rescue with their roles.

use std::time::{Duration, Instant};

use fabric_tests::harness::rest::{EXIT_1, RestCluster, wasm};
use fabric_tests::harness::sandbox::guest;
use serde_json::{Value, json};

fn blob(c: &RestCluster, bytes: &[u8]) -> Value {
    let a = c.post_raw(
        "/api/v1/blobs",
        Some(&c.admin),
        "application/octet-stream",
        bytes,
    );
    assert_eq!(a.status, 201, "{a:?}");
    a.json
}

fn finished(c: &RestCluster, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let a = c.get(&format!("/api/v1/jobs/{id}"), Some(&c.admin));
        assert_eq!(a.status, 200, "{a:?}");
        if a.json["state"] != "running" {
            return a.json;
        }
        assert!(Instant::now() < deadline, "the job did not finish: {a:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_job_posted_over_rest_fans_out_fans_in_and_is_rescued() {
    let c = RestCluster::start(&[]);
    let wordfreq = c.module(&std::fs::read(guest("wordfreq")).unwrap());
    let parts = ["the cat and the hat\n", "the bat and the cat\n"];
    let each: Vec<Value> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let b = blob(&c, p.as_bytes());
            json!({"name": format!("part-{i}.txt"), "sha256": b["sha256"], "len": b["len"]})
        })
        .collect();
    let body = json!({
        "name": "rest-wordcount",
        "steps": [
            {"name": "merge", "module": wordfreq, "input_from": ["count"], "args": ["--merge", "--top", "2"]},
            {"name": "count", "module": wordfreq, "each": each, "args": ["--top", "all"]},
        ],
    });
    let submit = c.token("submit", &[]);
    let read = c.token("read", &[]);
    // A read token may look, not submit.
    let a = c.post_json("/api/v1/jobs", Some(&read), &body);
    assert_eq!(a.status, 403, "{a:?}");
    let a = c.post_json("/api/v1/jobs", Some(submit.trim()), &body);
    assert_eq!(a.status, 201, "{a:?}");
    let id = a.json["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("job-"), "{a:?}");
    assert_eq!(
        a.json["steps"][1]["tasks"].as_array().unwrap().len(),
        2,
        "{a:?}"
    );
    let merge_task = a.json["steps"][0]["tasks"][0].as_str().unwrap().to_owned();
    let job = finished(&c, &id);
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["counts"]["succeeded"], 3, "{job}");
    assert_eq!(job["steps"][0]["after"], json!(["count"]), "{job}");
    let out = c.get(&format!("/api/v1/tasks/{merge_task}/output"), Some(&read));
    let merged: Value = serde_json::from_str(out.json["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(merged["total_words"], 10, "{merged}");
    assert_eq!(merged["top"], json!([["the", 4], ["and", 2]]), "{merged}");
    // Listed, newest first, without steps.
    let list = c.get("/api/v1/jobs?limit=5", Some(&read));
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(list.json["jobs"][0]["id"], id.as_str(), "{list:?}");
    assert_eq!(list.json["jobs"][0]["steps"], json!([]), "{list:?}");

    // A failing step skips its child; the rescue (admin only) reruns both.
    let fail = c.module(&wasm(EXIT_1));
    let body = json!({"steps": [
        {"name": "bad", "module": fail},
        {"name": "after-bad", "module": wordfreq, "after": ["bad"]},
    ]});
    let a = c.post_json("/api/v1/jobs", Some(&c.admin), &body);
    assert_eq!(a.status, 201, "{a:?}");
    let bad = a.json["id"].as_str().unwrap().to_owned();
    let job = finished(&c, &bad);
    assert_eq!(job["state"], "failed", "{job}");
    assert_eq!(job["counts"], json!({"failed": 1, "skipped": 1}), "{job}");
    let a = c.post_json(
        &format!("/api/v1/jobs/{bad}/retry"),
        Some(submit.trim()),
        &json!({}),
    );
    assert_eq!(a.status, 403, "{a:?}");
    let a = c.post_json(
        &format!("/api/v1/jobs/{bad}/retry"),
        Some(&c.admin),
        &json!({}),
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json["tasks"], 2, "{a:?}");
    let job = finished(&c, &bad);
    assert_eq!(job["rescues"], 1, "{job}");
    assert_eq!(
        job["counts"],
        json!({"failed": 1, "skipped": 1}),
        "the same module fails again: {job}"
    );
}

#[test]
fn bad_jobs_are_refused_over_rest_with_nothing_queued() {
    let c = RestCluster::start(&[]);
    let t = Some(c.admin.as_str());
    let m = c.module(&wasm(EXIT_1));
    let cycle = json!({"steps": [
        {"name": "a", "module": m, "after": ["c"]},
        {"name": "b", "module": m, "after": ["a"]},
        {"name": "c", "module": m, "input_from": ["b"]},
    ]});
    let a = c.post_json("/api/v1/jobs", t, &cycle);
    assert_eq!((a.status, a.code()), (400, "bad_request"), "{a:?}");
    assert!(a.text.contains("cycle"), "{a:?}");
    let unknown = json!({"steps": [{"name": "a", "module": m, "after": ["zzz"]}]});
    let a = c.post_json("/api/v1/jobs", t, &unknown);
    assert_eq!(a.status, 400, "{a:?}");
    assert!(a.text.contains("zzz"), "{a:?}");
    let missing = json!({"steps": [{"name": "a", "module": "ab".repeat(32)}]});
    let a = c.post_json("/api/v1/jobs", t, &missing);
    assert_eq!(a.status, 404, "{a:?}");
    let message = a.json["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("step \"a\": module"),
        "names the step: {a:?}"
    );
    let tasks = c.get("/api/v1/tasks", t);
    assert_eq!(tasks.json["tasks"], json!([]), "{tasks:?}");
    let jobs = c.get("/api/v1/jobs", t);
    assert_eq!(jobs.json["jobs"], json!([]), "{jobs:?}");
    assert_eq!(c.get("/api/v1/jobs/not-a-job", t).status, 400);
    let a = c.get("/api/v1/jobs/job-0190c7a2-3b4c-7d5e-8f60-123456789abc", t);
    assert_eq!(a.status, 404, "{a:?}");
    // Cancel: every unfinished task of the job.
    let spin = c.module(&wasm(fabric_tests::harness::rest::SPIN));
    let body = json!({"steps": [
        {"name": "spin", "module": spin, "limits": {"fuel": 1_000_000_000_000u64, "timeout_ms": 60000}},
        {"name": "next", "module": spin, "after": ["spin"]},
    ]});
    let a = c.post_json("/api/v1/jobs", t, &body);
    assert_eq!(a.status, 201, "{a:?}");
    let id = a.json["id"].as_str().unwrap().to_owned();
    let a = c.post_json(&format!("/api/v1/jobs/{id}/cancel"), t, &json!({}));
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json["tasks"], 2, "{a:?}");
    let job = finished(&c, &id);
    assert_eq!(job["counts"], json!({"cancelled": 2}), "{job}");
}
