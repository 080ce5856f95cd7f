//! The web dashboard in headless Chromium against a real cluster: what it
//! shows, the drill-down, live updates without a reload, a dead letter's
//! retry button, and that it loads nothing from outside the dispatcher.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use fabric_tests::harness::browser::Browser;
use fabric_tests::harness::rest::{EXIT_1, RestCluster, wasm};
use fabric_tests::harness::sandbox::guest;
use serde_json::json;

#[test]
fn the_dashboard_shows_the_cluster_drills_down_and_updates_live() {
    let c = RestCluster::start(&[]);
    let sha = c.module(&std::fs::read(guest("wordfreq")).unwrap());
    let first = c.submit(
        &json!({"module": sha, "input_b64": B64.encode("red red blue"), "trace": "dash-1"}),
    );
    c.wait_end(&first);

    let mut b = Browser::start();
    b.open(&format!("{}/#token={}", c.url, c.admin));
    b.wait_for(
        "the worker",
        "!!document.querySelector('#workers tr[data-worker=\"local-0\"]')",
    );
    let worker_row =
        b.eval("document.querySelector('#workers tr[data-worker=\"local-0\"]').innerText");
    assert!(
        worker_row.as_str().unwrap().contains("ready"),
        "{worker_row}"
    );
    let row = format!("document.querySelector('#tasks tr[data-task=\"{first}\"]')");
    b.wait_for(
        "the finished task",
        &format!("!!{row} && {row}.innerText.includes('succeeded')"),
    );
    assert!(
        b.eval(&format!("{row}.innerText"))
            .as_str()
            .unwrap()
            .contains("dash-1")
    );
    b.wait_for(
        "the figures",
        "document.querySelector('[data-figure=\"succeeded\"] b').textContent === '1'",
    );
    b.wait_for(
        "a figure per status",
        "!!document.querySelector('[data-figure=\"timed out\"]')",
    );
    let shown = b.eval(&format!("{row}.innerText"));
    assert!(
        shown.as_str().unwrap().contains("local-0"),
        "the worker's name: {shown}"
    );
    // The token left the address bar once taken.
    assert_eq!(b.eval("location.hash"), json!(""));

    // Drill-down: the task's output.
    b.eval(&format!("{row}.click(); true"));
    b.wait_for(
        "the task's output",
        "document.getElementById('detail-body').textContent.includes('exit code 0')",
    );
    let detail = b.eval("document.getElementById('detail-body').textContent");
    assert!(detail.as_str().unwrap().contains("total_words"), "{detail}");
    assert!(
        detail
            .as_str()
            .unwrap()
            .contains("events seen on this page"),
        "{detail}"
    );

    // A task submitted after the page loaded appears without a reload
    // (a mark set on this document survives).
    b.eval("window.__mark = 'still-here'; true");
    let second = c.submit(&json!({"module": sha, "input_b64": B64.encode("x")}));
    let row2 = format!("document.querySelector('#tasks tr[data-task=\"{second}\"]')");
    b.wait_for(
        "the new task",
        &format!("!!{row2} && {row2}.innerText.includes('succeeded')"),
    );
    b.wait_for(
        "its event",
        &format!("document.getElementById('events').innerText.includes('finished {second}')"),
    );

    assert_eq!(
        b.eval("window.__mark"),
        json!("still-here"),
        "the page was reloaded"
    );
    b.eval(&format!("{row2}.click(); true"));
    b.wait_for(
        "the new task's events in its drill-down",
        &format!(
            "document.getElementById('detail-body').textContent.includes('finished {second}')"
        ),
    );
    // A dead letter has a retry button; an admin's click queues a new task.
    let bad = c.module(&wasm(EXIT_1));
    let dead = c.submit(&json!({"module": bad}));
    c.wait_end(&dead);
    let button = format!("document.querySelector('button[data-retry=\"{dead}\"]')");
    b.wait_for("the retry button", &format!("!!{button}"));
    b.eval(&format!("{button}.click(); true"));
    b.wait_for(
        "the retry",
        "document.getElementById('events').innerText.includes('retried as')",
    );
    let stats = c.get("/api/v1/stats", Some(&c.admin));
    assert_eq!(stats.json["total"], 4, "{stats:?}");
    b.wait_for("the retried task's row", &format!("!{button}"));

    // A read token is not offered the retry button.
    let read = c.token("read", &[]);
    let mut r = Browser::start();
    r.open(&format!("{}/#token={read}", c.url));
    r.wait_for(
        "the page",
        "!!document.querySelector('#tasks tr[data-task]')",
    );
    r.wait_for(
        "the tasks for a reader",
        &format!("!!document.querySelector('#tasks tr[data-task=\"{first}\"]')"),
    );
    let again = c.submit(&json!({"module": bad}));
    c.wait_end(&again);
    r.wait_for(
        "the new dead letter",
        &format!("!!document.querySelector('#tasks tr[data-task=\"{again}\"]')"),
    );
    assert_eq!(
        r.eval("document.querySelectorAll('button[data-retry]').length"),
        json!(0)
    );

    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    b.screenshot(&shot);
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}

#[test]
fn the_dashboard_loads_nothing_from_outside_the_dispatcher() {
    let c = RestCluster::start(&[]);
    let page = c.get("/", None);
    assert_eq!(page.status, 200);
    let csp = ureq::get(&format!("{}/", c.url)).call().unwrap();
    let policy = csp
        .header("content-security-policy")
        .unwrap_or("")
        .to_owned();
    assert!(
        policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"),
        "{policy}"
    );

    let mut b = Browser::start();
    b.open(&format!("{}/#token={}", c.url, c.admin));
    b.wait_for(
        "the page",
        "!!document.querySelector('#workers tr[data-worker]')",
    );
    b.wait_for("the chart", "!!document.querySelector('#chart .uplot')");
    b.call("Network.enable", json!({}));
    assert!(!b.requested.is_empty(), "no requests were seen");
    let outside: Vec<&String> = b
        .requested
        .iter()
        .filter(|u| !u.starts_with(&c.url) && !u.starts_with("data:") && *u != "about:blank")
        .collect();
    assert!(outside.is_empty(), "the page asked elsewhere: {outside:?}");
    for asset in [
        "/assets/app.js",
        "/assets/uplot.js",
        "/assets/uplot.css",
        "/assets/app.css",
    ] {
        assert!(
            b.requested.iter().any(|u| u.ends_with(asset)),
            "{asset} not loaded: {:?}",
            b.requested
        );
    }
    assert_eq!(c.get("/assets/uplot.LICENSE", None).status, 200);
    assert_eq!(c.get("/assets/nothing.js", None).status, 404);
}

#[test]
fn the_dashboard_keeps_working_across_a_dispatcher_restart() {
    use fabric_tests::harness::cluster::fabric_cmd;
    use fabric_tests::harness::process::Proc;
    use fabric_tests::harness::sandbox::Sandbox;

    let sb = Sandbox::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let profile = sb.dir.path().join("cluster.toml");
    let up = |sb: &Sandbox| {
        let mut cmd = fabric_cmd(sb, None);
        cmd.args(["up", "--workers", "1", "--listen", "127.0.0.1:0"])
            .args(["--api", &format!("127.0.0.1:{port}"), "--replace-profile"])
            .arg("--data-dir")
            .arg(sb.dir.path().join("data"))
            .arg("--cluster")
            .arg(&profile);
        let mut p = Proc::spawn("up", cmd, sb.dir.path());
        let lines = p.wait_for_line("ready", Duration::from_secs(60));
        p.wait_for_stderr("joined", Duration::from_secs(30));
        let link = lines
            .iter()
            .find_map(|l| l.strip_prefix("dashboard "))
            .expect("up prints the dashboard link")
            .to_owned();
        (p, link)
    };
    let (mut first, link) = up(&sb);
    assert!(link.starts_with(&format!("{url}/#token=fab_")), "{link}");
    let mut b = Browser::start();
    b.open(&link);
    b.wait_for(
        "the live feed",
        "document.getElementById('conn').textContent === 'live'",
    );
    first.terminate(Duration::from_secs(30));
    b.wait_for(
        "the lost feed",
        "document.getElementById('conn').textContent.startsWith('reconnecting')",
    );
    let (_second, again) = up(&sb);
    assert_eq!(again, link, "the same admin token after the restart");
    b.wait_for(
        "the feed again",
        "document.getElementById('conn').textContent === 'live'",
    );
    // A task submitted now shows on the same page, never reloaded.
    let token = link.split("#token=").nth(1).unwrap();
    let module = std::fs::read(guest("wordfreq")).unwrap();
    let sha: serde_json::Value = ureq::post(&format!("{url}/api/v1/modules"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_bytes(&module)
        .unwrap()
        .into_json()
        .unwrap();
    let created: serde_json::Value = ureq::post(&format!("{url}/api/v1/tasks"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(json!({"module": sha["sha256"], "input_b64": B64.encode("a")}))
        .unwrap()
        .into_json()
        .unwrap();
    let id = created["id"].as_str().unwrap();
    let row = format!("document.querySelector('#tasks tr[data-task=\"{id}\"]')");
    b.wait_for(
        "the task after the restart",
        &format!("!!{row} && {row}.innerText.includes('succeeded')"),
    );
}

#[test]
fn the_dashboard_lists_jobs_and_shows_a_jobs_steps() {
    let c = RestCluster::start(&[]);
    let sha = c.module(&std::fs::read(guest("wordfreq")).unwrap());
    let job = c.post_json(
        "/api/v1/jobs",
        Some(&c.admin),
        &json!({"name": "dash-job", "steps": [
            {"name": "first", "module": sha},
            {"name": "second", "module": sha, "input_from": ["first"]},
        ]}),
    );
    assert_eq!(job.status, 201, "{job:?}");
    let id = job.json["id"].as_str().unwrap().to_owned();
    let mut b = Browser::start();
    b.open(&format!("{}/#token={}", c.url, c.admin));
    let row = format!("document.querySelector('#jobs tr[data-job=\"{id}\"]')");
    b.wait_for(
        "the finished job with its counts",
        &format!("!!{row} && {row}.innerText.includes('2 succeeded')"),
    );
    assert!(
        b.eval(&format!("{row}.innerText"))
            .as_str()
            .unwrap()
            .contains("dash-job")
    );
    b.eval(&format!("{row}.click(); true"));
    b.wait_for(
        "the job's steps",
        "document.getElementById('detail-body').textContent.includes('step second  (after first)')",
    );
    let detail = b.eval("document.getElementById('detail-body').textContent");
    let second = job.json["steps"][1]["tasks"][0].as_str().unwrap();
    assert!(
        detail
            .as_str()
            .unwrap()
            .contains(&format!("{second}  succeeded")),
        "{detail}"
    );
}

#[test]
fn the_dashboard_shows_schedules_with_their_next_run_and_last_result() {
    let c = RestCluster::start(&[]);
    let sha = c.module(&wasm(
        r#"(module (memory (export "memory") 1) (func (export "_start")))"#,
    ));
    let a = c.post_json(
        "/api/v1/schedules",
        Some(&c.admin),
        &json!({"name": "dash-tick", "cron": "*/2 * * * * *", "tz": "Europe/Berlin", "task": {"module": sha}}),
    );
    assert_eq!(a.status, 201, "{a:?}");
    let mut b = Browser::start();
    b.open(&format!("{}/#token={}", c.url, c.admin));
    let row = "document.querySelector('#schedules tr[data-schedule=\"dash-tick\"]')";
    b.wait_for(
        "the schedule with a succeeded last run",
        &format!("!!{row} && {row}.innerText.includes('succeeded')"),
    );
    let text = b.eval(&format!("{row}.innerText"));
    let text = text.as_str().unwrap();
    assert!(
        text.contains("Europe/Berlin") && text.contains("active"),
        "{text}"
    );
    assert!(
        text.contains("T") && text.contains("Z"),
        "the next run as a time: {text}"
    );
}
