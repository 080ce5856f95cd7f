//! A correlation id follows a task from the CLI through the dispatcher's
//! and the worker's log lines (separate processes) into its record, and
//! finds it again by CLI and REST.

use std::time::Duration;

use fabric_tests::harness::cluster::{fabric_cmd, start_dispatcher, start_worker};
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::sandbox::{Sandbox, describe, guest, json_of};

#[test]
fn a_correlation_id_is_in_both_processes_logs_and_the_task_record() {
    let sb = Sandbox::new();
    let d = start_dispatcher(&sb, "d", "127.0.0.1:0", &[], None);
    let w = start_worker(&sb, "w", &d, 1);
    w.wait_for_stderr("worker registered", Duration::from_secs(30));
    let fabric = |args: &[&str]| {
        fabric_cmd(&sb, None)
            .arg("--cluster")
            .arg(&d.profile)
            .args(args)
            .output_in_time()
            .expect("fabric runs")
    };
    let module = guest("wordfreq");
    let input = sb.write("in.txt", b"one two two");
    let out = fabric(&[
        "submit",
        module.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--trace",
        "order-4711",
        "--wait",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let done = json_of(&out);
    assert_eq!(done["trace"], "order-4711", "{done}");
    let id = done["id"].as_str().unwrap().to_owned();

    // In the record, by `status` and by the `--trace` filter.
    let status = json_of(&fabric(&["status", &id, "--json"]));
    assert_eq!(status["trace"], "order-4711", "{status}");
    let found = json_of(&fabric(&["tasks", "--trace", "order-4711", "--json"]));
    let ids: Vec<&str> = found
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![id.as_str()], "{found}");
    let none = json_of(&fabric(&["tasks", "--trace", "order-0", "--json"]));
    assert_eq!(none.as_array().map(Vec::len), Some(0), "{none}");

    // In the log lines of both processes, as a span field beside the id:
    // every line of the attempt (`task_id=`) carries `trace=` too.
    let task_id = format!("task_id={id}");
    let dispatcher_log = d
        .proc
        .wait_for_stderr("order-4711", Duration::from_secs(10));
    let worker_log = w.wait_for_stderr("order-4711", Duration::from_secs(10));
    for (who, log) in [("dispatcher", &dispatcher_log), ("worker", &worker_log)] {
        let attempt: Vec<&str> = log.lines().filter(|l| l.contains(&task_id)).collect();
        assert!(!attempt.is_empty(), "no {who} line names {task_id}:\n{log}");
        for line in attempt {
            assert!(
                line.contains("trace=order-4711"),
                "a {who} line of the attempt without its trace: {line}\n{log}"
            );
        }
    }

    // A task without one gets its own id as its correlation id.
    let plain = json_of(&fabric(&[
        "submit",
        module.to_str().unwrap(),
        "--wait",
        "--json",
    ]));
    assert_eq!(plain["trace"], plain["id"], "{plain}");

    // A bad one is bad usage, before anything is uploaded.
    let bad = fabric(&["submit", module.to_str().unwrap(), "--trace", "no spaces"]);
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--trace"));
}

#[test]
fn log_format_json_writes_one_object_per_line_with_the_trace_id() {
    let sb = Sandbox::new();
    let d = start_dispatcher(&sb, "d", "127.0.0.1:0", &["--log-format", "json"], None);
    let w = start_worker(&sb, "w", &d, 1);
    w.wait_for_stderr("worker registered", Duration::from_secs(30));
    let input = sb.write("in.txt", b"one two two");
    let out = fabric_cmd(&sb, None)
        .arg("--cluster")
        .arg(&d.profile)
        .args(["submit", guest("wordfreq").to_str().unwrap(), "--input"])
        .arg(&input)
        .args(["--trace", "order-json", "--wait", "--json"])
        .output_in_time()
        .expect("fabric runs");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let log = d
        .proc
        .wait_for_stderr("order-json", Duration::from_secs(30));
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["level"].is_string() && l["timestamp"].is_string()),
        "{log}"
    );
    let traced = lines
        .iter()
        .filter(|l| l["trace"] == "order-json" || l["span"]["trace"] == "order-json")
        .count();
    assert!(traced > 0, "the trace id as a field: {log}");
}
