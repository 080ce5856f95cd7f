//! The REST API as outside tools see it: the examples' curl and Python
//! clients, `/metrics` read by the Prometheus client library's own parser,
//! schemathesis fuzzing the OpenAPI document, and a native task with a
//! staged file.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use fabric_tests::harness::cluster::fabric_cmd;
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::process::Proc;
use fabric_tests::harness::readme::{block, shell};
use fabric_tests::harness::rest::RestCluster;
use fabric_tests::harness::sandbox::{Sandbox, describe, guest};
use serde_json::json;

const EXIT_3: &str = r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 3))))"#;

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/rest")
        .join(name)
}

/// Fails with what to install when a Python module is missing.
fn need_python_module(module: &str, package: &str) {
    let ok = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3 cannot import {module}: install it with `pip install {package}` (.ci/run does)"
    );
}

#[test]
fn the_curl_and_python_examples_run_a_task_to_its_result() {
    let c = RestCluster::start(&[]);
    let book = c.sb.write("book.txt", b"to be or not to be");
    for (runner, script) in [("sh", "submit.sh"), ("python3", "submit.py")] {
        let out = Command::new(runner)
            .arg(example(script))
            .arg(guest("wordfreq"))
            .arg(&book)
            .env("FABRIC_API_URL", &c.url)
            .env("FABRIC_API_TOKEN", &c.admin)
            .output_in_time()
            .expect("the example runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{script}: {}", describe(&out));
        assert!(
            text.contains("\"status\":\"succeeded\""),
            "{script}: {text}"
        );
        assert!(text.contains("total_words"), "{script}: {text}");
        assert!(
            text.lines().any(|l| l.starts_with("task ")),
            "{script}: {text}"
        );
    }
    let stats = c.get("/api/v1/stats", Some(&c.admin));
    assert_eq!(stats.json["finished"]["succeeded"], 2, "{stats:?}");
}

#[test]
fn metrics_parse_as_openmetrics_and_match_what_the_cluster_did() {
    need_python_module("prometheus_client", "prometheus-client");
    let c = RestCluster::start(&[]);
    let ok = c.module(&std::fs::read(guest("wordfreq")).unwrap());
    let bad = c.module(&wat::parse_str(EXIT_3).unwrap());
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(c.submit(&json!({"module": ok, "input_b64": B64.encode("a b c")})));
    }
    ids.push(c.submit(&json!({"module": bad})));
    for id in &ids {
        c.wait_end(id);
    }
    // Two refusals: an unknown module (404) and a read token submitting (403).
    c.post_json(
        "/api/v1/tasks",
        Some(&c.admin),
        &json!({"module": "cd".repeat(32)}),
    );
    let read = c.token("read", &[]);
    c.post_json("/api/v1/tasks", Some(&read), &json!({"module": ok}));

    let m = c.get("/metrics", Some(&read));
    assert_eq!(m.status, 200, "{m:?}");
    assert!(
        m.content_type.starts_with("application/openmetrics-text"),
        "{m:?}"
    );
    let parse = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        key = s.name + "".join("{%s=%s}" % kv for kv in sorted(s.labels.items()))
        out[key] = s.value
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .args(["-c", parse])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), m.text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused /metrics: {}\n{}",
        describe(&out),
        m.text
    );
    let samples: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let get = |k: &str| {
        samples[k]
            .as_f64()
            .unwrap_or_else(|| panic!("no sample {k} in {samples}"))
    };
    assert_eq!(get("fabric_tasks_submitted_total"), 4.0);
    assert_eq!(get("fabric_tasks_finished_total{status=succeeded}"), 3.0);
    assert_eq!(get("fabric_tasks_finished_total{status=failed}"), 1.0);
    assert_eq!(get("fabric_tasks_stored{status=succeeded}"), 3.0);
    assert_eq!(get("fabric_requests_refused_total{reason=not_found}"), 1.0);
    assert_eq!(get("fabric_requests_refused_total{reason=forbidden}"), 1.0);
    assert_eq!(get("fabric_task_submit_to_start_seconds_count"), 4.0);
    assert_eq!(get("fabric_task_run_time_seconds_count"), 4.0);
    assert!(get("fabric_store_flush_seconds_count") >= 4.0);
    assert!(get("fabric_fuel_used_total") > 0.0);
    assert_eq!(get("fabric_workers"), 1.0);
    assert_eq!(get("fabric_free_slots"), 2.0);
    assert_eq!(get("fabric_tasks_running"), 0.0);
    assert_eq!(get("fabric_queue_depth{priority=normal}"), 0.0);
}

#[test]
fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let found = Command::new("schemathesis")
        .arg("--version")
        .output_in_time();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "schemathesis is not installed: `pip install schemathesis` (.ci/run does)"
    );
    let c = RestCluster::start(&["--api-rate-limit", "100000"]);
    // Something to find: a module, a finished task, a dead letter.
    let sha = c.module(&std::fs::read(guest("wordfreq")).unwrap());
    let id = c.submit(&json!({"module": sha, "input_b64": B64.encode("x y")}));
    c.wait_end(&id);
    let out = Command::new("schemathesis")
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", c.url))
        .args(["--header", &format!("Authorization: Bearer {}", c.admin)])
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
        ])
        // The event streams never end on their own.
        .args(["--exclude-path-regex", "events$"])
        .args(["--max-examples", "60", "--request-timeout", "20"])
        .args(["--generation-deterministic"])
        .current_dir(c.sb.dir.path())
        .env("SCHEMATHESIS_HOOKS", "")
        // Bounded by its examples (60 an operation), not by time: on two
        // cores beside the rest of the suite it takes about three minutes,
        // the harness's usual deadline, so it gets seven.
        .output_within(Duration::from_secs(420))
        .expect("schemathesis runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{}",
        describe(&out)
    );
    assert!(text.contains("passed"), "{text}");
    // And the dispatcher is still serving.
    assert_eq!(c.get("/health", None).status, 200);
}

#[test]
fn a_native_task_with_a_staged_file_runs_over_rest() {
    let c = RestCluster::start(&["--allow", "sh"]);
    let blob = c.post_raw(
        "/api/v1/blobs",
        Some(&c.admin),
        "application/octet-stream",
        b"shout me\n",
    );
    assert_eq!(blob.status, 201, "{blob:?}");
    let id = c.submit(&json!({
        "command": "sh",
        "args": ["-c", "tr a-z A-Z < in.txt > out.txt; echo done"],
        "files": [{"path": "in.txt", "sha256": blob.json["sha256"], "len": 9}],
        "outputs": ["out.txt"],
        "limits": {"timeout_ms": 20000},
    }));
    let end = &c.wait_end(&id);
    assert_eq!(end["task"]["status"], "succeeded", "{end}");
    assert_eq!(end["task"]["kind"], "command");
    assert_eq!(end["output"]["stdout"], "done\n", "{end}");
    assert_eq!(end["output"]["files"], 1, "{end}");
    let files = c.get(&format!("/api/v1/tasks/{id}/files"), Some(&c.admin));
    assert_eq!(files.status, 200, "{files:?}");
    let f = &files.json[0];
    assert_eq!(f["path"], "out.txt");
    let bytes = B64.decode(f["content_b64"].as_str().unwrap()).unwrap();
    assert_eq!(bytes, b"SHOUT ME\n");
    // A program the worker does not allow is refused at once.
    let refused = c.post_json(
        "/api/v1/tasks",
        Some(&c.admin),
        &json!({"command": "python3"}),
    );
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(refused.text.contains("--allow python3"), "{refused:?}");
}

#[test]
fn the_readme_rest_block_runs_as_written() {
    let sb = Sandbox::new();
    let export = fabric_cmd(&sb, None)
        .current_dir(sb.dir.path())
        .args(["demo", "--export", "examples"])
        .output_in_time()
        .unwrap();
    assert!(export.status.success(), "{}", describe(&export));
    // The export carries the REST scripts, as the README's block runs them.
    let rest = sb.dir.path().join("examples/rest");
    for f in ["submit.sh", "submit.py"] {
        assert_eq!(
            std::fs::read(rest.join(f)).unwrap_or_default(),
            std::fs::read(example(f)).unwrap(),
            "{f} exported as it is in examples/rest"
        );
    }
    // The README's port, unless something here holds it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = fabric_cmd(&sb, None);
    cmd.args(["up", "--listen", "127.0.0.1:0", "--api", &addr]);
    let mut up = Proc::spawn("up", cmd, sb.dir.path());
    up.wait_for_line("ready", Duration::from_secs(60));
    up.wait_for_stderr("joined", Duration::from_secs(30));
    let script = block("export FABRIC_API_URL=")
        .lines
        .join("\n")
        .replace("127.0.0.1:7080", &addr);
    let out = shell(&sb, &format!("set -e\ncd examples\n{script}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}", describe(&out));
    assert!(text.contains("\"total\":0"), "the stats line: {text}");
    assert_eq!(
        text.matches("\"status\":\"succeeded\"").count(),
        2,
        "{text}"
    );
}
