//! The REST API over real HTTP against a real cluster: every auth case,
//! bad input, rate limits, CORS (tasks themselves: rest_tasks.rs).

use std::time::Duration;

use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::raw_http;
use fabric_tests::harness::rest::{EXIT_1, RestCluster, wasm};
use serde_json::json;

#[test]
fn every_auth_case_is_answered_by_its_status() {
    let c = RestCluster::start(&[]);
    let read = c.token("read", &[]);
    let submit = c.token("submit", &[]);
    assert!(read.starts_with("fab_"), "{read}");

    // No token, a garbage one, a well-formed unknown one: 401.
    let none = c.get("/api/v1/stats", None);
    assert_eq!(
        (none.status, none.code()),
        (401, "unauthorized"),
        "{none:?}"
    );
    assert_eq!(c.get("/api/v1/stats", Some("nonsense")).status, 401);
    let unknown = format!("fab_0123456789abcdef_{}", "ab".repeat(32));
    let a = c.get("/api/v1/stats", Some(&unknown));
    assert_eq!(a.status, 401, "{a:?}");
    // The right id with a wrong secret is just as unknown.
    let (id_part, _) = read.rsplit_once('_').unwrap();
    let forged = format!("{id_part}_{}", "cd".repeat(32));
    assert_eq!(c.get("/api/v1/stats", Some(&forged)).status, 401);

    // Roles: read looks, read cannot submit, submit cannot retry.
    assert_eq!(c.get("/api/v1/stats", Some(&read)).status, 200);
    assert_eq!(c.get("/metrics", Some(&read)).status, 200);
    let sha = c.module(&wasm(EXIT_1));
    let body = json!({"module": sha});
    let refused = c.post_json("/api/v1/tasks", Some(&read), &body);
    assert_eq!(
        (refused.status, refused.code()),
        (403, "forbidden"),
        "{refused:?}"
    );
    assert!(
        refused.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("submit role")
    );
    let created = c.post_json("/api/v1/tasks", Some(&submit), &body);
    assert_eq!(created.status, 201, "{created:?}");
    let id = created.json["id"].as_str().unwrap();
    let retry = c.post_json(
        &format!("/api/v1/tasks/{id}/retry"),
        Some(&submit),
        &json!({}),
    );
    assert_eq!(retry.status, 403, "{retry:?}");

    // Expired and revoked tokens: 401, saying which.
    let short = c.token("read", &["--ttl", "1s"]);
    assert_eq!(c.get("/api/v1/stats", Some(&short)).status, 200);
    // Tried once its listed expiry has passed.
    let short_id = short
        .strip_prefix("fab_")
        .unwrap()
        .split('_')
        .next()
        .unwrap();
    let listed = c.fabric(&["token", "list", "--json"]);
    let expires = serde_json::from_str::<serde_json::Value>(&listed)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == short_id)
        .and_then(|t| t["expires_ms"].as_u64())
        .unwrap_or_else(|| panic!("token {short_id} is listed with an expiry: {listed}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while fabric_proto::now_ms() <= expires {
        assert!(
            std::time::Instant::now() < deadline,
            "the clock never passed {expires}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let expired = c.get("/api/v1/stats", Some(&short));
    assert_eq!(expired.status, 401);
    assert!(expired.text.contains("expired"), "{expired:?}");
    let listed = c.fabric(&["token", "list", "--json"]);
    let tokens: serde_json::Value = serde_json::from_str(&listed).unwrap();
    let api_ids: Vec<&str> = tokens
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["role"] == "read")
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(api_ids.len(), 2, "{listed}");
    let read_id = read
        .strip_prefix("fab_")
        .unwrap()
        .split('_')
        .next()
        .unwrap();
    c.fabric(&["token", "revoke", read_id]);
    let revoked = c.get("/api/v1/stats", Some(&read));
    assert_eq!(revoked.status, 401);
    assert!(revoked.text.contains("revoked"), "{revoked:?}");

    // No token needed for health and the OpenAPI document.
    let health = c.get("/health", None);
    assert_eq!(health.status, 200);
    assert_eq!(health.json["status"], "ok");
    assert!(health.json["uptime_s"].is_u64(), "{health:?}");
    assert_eq!(health.json["store"], "ok", "{health:?}");
    assert!(health.json["stored_tasks"].is_u64(), "{health:?}");
    assert!(health.json["version"].is_string(), "{health:?}");
    let doc = c.get("/api/v1/openapi.json", None);
    assert_eq!(doc.status, 200);
    assert!(doc.json["paths"]["/api/v1/tasks"]["post"].is_object());
}

#[test]
fn bad_input_is_a_4xx_that_names_the_problem() {
    let c = RestCluster::start(&[]);
    let t = Some(c.admin.as_str());
    let post = |body: &str| {
        let resp = ureq::post(&format!("{}/api/v1/tasks", c.url))
            .set("Authorization", &format!("Bearer {}", c.admin))
            .set("Content-Type", "application/json")
            .send_string(body);
        match resp {
            Ok(r) | Err(ureq::Error::Status(_, r)) => (r.status(), r.into_string().unwrap()),
            Err(e) => panic!("{e}"),
        }
    };
    let (status, text) = post(r#"{"module": "#);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("not valid JSON"), "{text}");
    let (status, text) = post(r#"{"module": "00", "colour": "red"}"#);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("unknown field `colour`"), "{text}");
    let (status, text) = post(r#"{"args": []}"#);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("exactly one of module"), "{text}");
    let unknown = json!({"module": "ab".repeat(32)});
    let a = c.post_json("/api/v1/tasks", t, &unknown);
    assert_eq!((a.status, a.code()), (404, "not_found"), "{a:?}");
    assert!(a.text.contains("upload it first"), "{a:?}");
    let a = c.post_json("/api/v1/tasks", t, &json!({"module": "xyz"}));
    assert_eq!(a.status, 400, "{a:?}");

    // A module that cannot run is refused at upload.
    let a = c.post_raw(
        "/api/v1/modules",
        t,
        "application/octet-stream",
        b"not wasm",
    );
    assert_eq!(a.status, 400, "{a:?}");
    let no_start = wasm(r#"(module (memory (export "memory") 1))"#);
    let a = c.post_raw("/api/v1/modules", t, "application/octet-stream", &no_start);
    assert_eq!(a.status, 400, "{a:?}");
    assert!(a.text.contains("_start"), "{a:?}");

    // Over the module cap (15 MiB): 413, as JSON.
    let big = vec![b'x'; 16 << 20];
    let a = c.post_raw("/api/v1/modules", t, "application/octet-stream", &big);
    assert_eq!((a.status, a.code()), (413, "too_large"), "{a:?}");
    let small = c.post_raw("/api/v1/blobs", t, "application/octet-stream", b"hello");
    assert_eq!(small.status, 201, "{small:?}");
    assert_eq!(small.json["len"], 5);

    // Ids, queries, endpoints.
    let a = c.get("/api/v1/tasks/not-an-id", t);
    assert_eq!(a.status, 400, "{a:?}");
    let a = c.get("/api/v1/tasks/0190c7a2-3b4c-7d5e-8f60-123456789abc", t);
    assert_eq!(a.status, 404, "{a:?}");
    assert_eq!(c.get("/api/v1/tasks?limit=0", t).status, 400);
    assert_eq!(c.get("/api/v1/tasks?state=sleeping", t).status, 400);
    assert_eq!(c.get("/api/v1/tasks?colour=red", t).status, 400);
    let a = c.get("/api/v1/nothing-here", t);
    assert_eq!((a.status, a.code()), (404, "not_found"), "{a:?}");
    assert!(a.content_type.contains("json"), "{a:?}");
}

#[test]
fn a_burst_over_the_rate_limit_is_answered_429_with_retry_after() {
    let c = RestCluster::start(&["--api-rate-limit", "2"]);
    let t = c.token("read", &[]);
    let answers: Vec<_> = (0..20).map(|_| c.get("/api/v1/stats", Some(&t))).collect();
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let limited: Vec<_> = answers.iter().filter(|a| a.status == 429).collect();
    assert!(ok >= 1 && !limited.is_empty(), "{answers:?}");
    assert!(
        ok <= 6,
        "a burst of 4 (twice the rate), then 2/s: {ok} passed"
    );
    let first = limited[0];
    assert_eq!(first.code(), "rate_limited");
    let wait: u64 = first
        .retry_after
        .as_deref()
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{first:?}");
    // Another token has its own budget.
    assert_eq!(c.get("/api/v1/stats", Some(&c.admin)).status, 200);
    std::thread::sleep(Duration::from_secs(wait));
    assert_eq!(c.get("/api/v1/stats", Some(&t)).status, 200);
}

#[test]
fn only_configured_origins_get_cors_headers() {
    let c = RestCluster::start(&["--api-cors", "https://ops.example.com"]);
    let preflight = |origin: &str| {
        let resp = ureq::request("OPTIONS", &format!("{}/api/v1/tasks", c.url))
            .set("Origin", origin)
            .set("Access-Control-Request-Method", "POST")
            .set(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            )
            .call();
        match resp {
            Ok(r) | Err(ureq::Error::Status(_, r)) => {
                r.header("access-control-allow-origin").map(str::to_owned)
            }
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(
        preflight("https://ops.example.com").as_deref(),
        Some("https://ops.example.com")
    );
    assert_eq!(preflight("https://evil.example.net"), None);
    let bad = c
        .cmd()
        .args(["up", "--api-cors", "ops.example.com/"])
        .output_in_time()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "a bad origin is bad usage");
    assert!(String::from_utf8_lossy(&bad.stderr).contains("scheme://host"));
}

#[test]
fn the_role_and_limits_are_checked_before_any_body_and_by_the_canonical_id() {
    let c = RestCluster::start(&["--api-rate-limit", "2"]);
    let read = c.token("read", &[]);
    // A read token gets 403 whatever it sends: malformed, oversize, wrong type.
    let junk = c.post_raw(
        "/api/v1/tasks",
        Some(&read),
        "application/json",
        b"{not json",
    );
    assert_eq!(junk.status, 403, "{junk:?}");
    // An upload is refused on its head: the answer comes with not one byte
    // of its 16 MiB body sent. (A client that writes the body first may
    // see its pipe broken instead, so this one sends the head alone.)
    let mut up = raw_http::start_upload(&c.url, "/api/v1/modules", &read, 16 << 20, b"");
    let answer = raw_http::read_answer(&mut up, "POST /api/v1/modules");
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    // The same token with its id in upper case shares its rate limit.
    let (id, secret) = read.strip_prefix("fab_").unwrap().split_once('_').unwrap();
    let shouting = format!("fab_{}_{secret}", id.to_ascii_uppercase());
    let answers: Vec<u16> = (0..12)
        .map(|i| {
            let t = if i % 2 == 0 { &read } else { &shouting };
            c.get("/api/v1/stats", Some(t)).status
        })
        .collect();
    assert!(answers.contains(&429), "{answers:?}");
    assert!(
        answers.iter().filter(|s| **s == 200).count() <= 6,
        "{answers:?}"
    );
}

#[test]
fn answers_stay_json_and_modules_must_be_uploaded_as_modules() {
    let c = RestCluster::start(&[]);
    let t = Some(c.admin.as_str());
    let none = c.get("/api/v1/workers", None);
    assert_eq!(none.status, 401);
    let put = c.post_json("/api/v1/workers", t, &json!({}));
    assert_eq!(
        (put.status, put.code()),
        (405, "method_not_allowed"),
        "{put:?}"
    );
    let bad = c.get("/api/v1/tasks/%FF", t);
    assert_eq!(bad.status, 400, "{bad:?}");
    assert!(bad.content_type.contains("json"), "{bad:?}");
    // A blob holding a module's bytes is not a module: no check ran on it.
    let bytes = wasm(EXIT_1);
    let blob = c.post_raw("/api/v1/blobs", t, "application/octet-stream", &bytes);
    assert_eq!(blob.status, 201);
    let a = c.post_json("/api/v1/tasks", t, &json!({"module": blob.json["sha256"]}));
    assert_eq!(a.status, 404, "{a:?}");
    assert!(a.text.contains("as a module"), "{a:?}");
}
