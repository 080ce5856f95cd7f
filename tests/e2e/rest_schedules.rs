//! Schedules over REST against a real cluster: added by an admin (a bad
//! field named), listed, shown with their runs, paused, resumed, run now
//! and removed.

use std::time::{Duration, Instant};

use fabric_tests::harness::rest::{RestCluster, wasm};
use serde_json::json;

const NOOP: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;

#[test]
fn a_schedule_is_added_run_paused_and_removed_over_rest() {
    let c = RestCluster::start(&[]);
    let t = Some(c.admin.as_str());
    let sha = c.module(&wasm(NOOP));
    let submit = c.token("submit", &[]);
    let body = json!({"name": "rest-tick", "cron": "*/2 * * * * *", "task": {"module": sha}});
    let a = c.post_json("/api/v1/schedules", Some(submit.trim()), &body);
    assert_eq!(a.status, 403, "adding is an admin's: {a:?}");
    let bad = json!({"name": "bad", "cron": "*/2 * 25 * * *", "task": {"module": sha}});
    let a = c.post_json("/api/v1/schedules", t, &bad);
    assert_eq!(a.status, 400, "{a:?}");
    assert!(a.text.contains("the hour field"), "{a:?}");
    let a = c.post_json("/api/v1/schedules", t, &body);
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.json["overlap"], "skip", "{a:?}");
    assert_eq!(a.json["catch_up"], "one", "{a:?}");
    let again = c.post_json("/api/v1/schedules", t, &body);
    assert_eq!(again.status, 409, "{again:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = c.get("/api/v1/schedules/rest-tick", t);
        assert_eq!(s.status, 200, "{s:?}");
        let done = s.json["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["status"] == "succeeded")
            .count();
        if done >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no runs: {s:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let list = c.get("/api/v1/schedules", t);
    assert_eq!(list.json[0]["name"], "rest-tick", "{list:?}");
    let p = c.post_json(
        "/api/v1/schedules/rest-tick/pause",
        Some(submit.trim()),
        &json!({}),
    );
    assert_eq!(
        (p.status, p.json["paused"].clone()),
        (200, json!(true)),
        "{p:?}"
    );
    let r = c.post_json("/api/v1/schedules/rest-tick/resume", t, &json!({}));
    assert_eq!(r.json["paused"], false, "{r:?}");
    let n = c.post_json("/api/v1/schedules/rest-tick/run-now", t, &json!({}));
    assert_eq!(n.status, 200, "{n:?}");
    assert_eq!(c.get("/api/v1/schedules/no%20such", t).status, 400);
    assert_eq!(c.get("/api/v1/schedules/nosuch", t).status, 404);
    let d = c.delete("/api/v1/schedules/rest-tick", Some(submit.trim()));
    assert_eq!(d.status, 403, "removing is an admin's: {d:?}");
    let d = c.delete("/api/v1/schedules/rest-tick", t);
    assert_eq!(d.status, 200, "{d:?}");
    assert_eq!(c.get("/api/v1/schedules", t).json, json!([]));
}
