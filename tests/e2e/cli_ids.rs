//! Task ids by any unique start, `fabric wait` with its timeout, and the
//! exit code of a task that has not finished.

use std::process::Output;
use std::time::Duration;

use fabric_tests::harness::cluster::{fabric_cmd, start_dispatcher, start_worker};
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::sandbox::{Sandbox, describe};

const SPIN: &str =
    r#"(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))"#;
const EXIT_1: &str = r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 1))))"#;
const QUICK: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;

fn fabric(sb: &Sandbox, profile: &std::path::Path, args: &[&str]) -> Output {
    let out = fabric_cmd(sb, None)
        .arg("--cluster")
        .arg(profile)
        .args(args)
        .output_in_time()
        .expect("fabric runs");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        describe(&out)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn ids_by_prefix_wait_with_a_timeout_and_unfinished_results() {
    let sb = Sandbox::new();
    let d = start_dispatcher(&sb, "d", "127.0.0.1:0", &[], None);
    let mut w = start_worker(&sb, "w", &d, 1);
    let spin = sb.dir.path().join("spin.wasm");
    std::fs::write(&spin, wat::parse_str(SPIN).unwrap()).unwrap();
    let quick = sb.dir.path().join("quick.wasm");
    std::fs::write(&quick, wat::parse_str(QUICK).unwrap()).unwrap();
    let p = &d.profile;
    let spin = spin.to_str().unwrap();
    let out = fabric(
        &sb,
        p,
        &[
            "submit",
            spin,
            "--timeout",
            "60s",
            "--fuel",
            "1000000000000",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let id = stdout(&out);
    let full: String = id.chars().filter(|c| *c != '-').collect();
    let prefix = &full[..10];

    // A unique start of the id names the task.
    let out = fabric(&sb, p, &["status", prefix, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(stdout(&out).contains(&id), "{}", describe(&out));
    let out = fabric(&sb, p, &["status", prefix]);
    let text = stdout(&out);
    assert!(
        text.contains("running  priority normal  attempt 1  retries 0  worker w ("),
        "{text}"
    );
    assert!(text.contains(": running ("), "{text}");
    assert!(text.contains(" so far)"), "{text}");

    // An unfinished task: `result` and an expired `wait` exit 3 and say
    // how to go on.
    let out = fabric(&sb, p, &["result", prefix]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("has not finished"));
    let out = fabric(&sb, p, &["wait", prefix, "--wait-timeout", "1s"]);
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("fabric wait {id}")), "{stderr}");
    assert!(stderr.contains(&format!("fabric cancel {id}")), "{stderr}");

    // A start that several ids share, one no id has, and one that is no id.
    let quick = quick.to_str().unwrap();
    let out = fabric(&sb, p, &["submit", quick]);
    let second = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let shared: String = full
        .chars()
        .zip(second.chars().filter(|c| *c != '-'))
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a)
        .collect();
    let out = fabric(&sb, p, &["status", &shared]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("several task ids"),
        "{}",
        describe(&out)
    );
    let out = fabric(&sb, p, &["status", "ffffffffff"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no task id starts with ffffffffff"));
    let out = fabric(&sb, p, &["status", "not-an-id"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));

    // Cancel by prefix; `wait` then returns at once with the task's code.
    let out = fabric(&sb, p, &["cancel", prefix]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = fabric(&sb, p, &["wait", prefix, "--json"]);
    assert!(stdout(&out).contains("\"cancelled\""), "{}", describe(&out));
    assert!(
        stdout(&out).contains("\"attempts\":[{\"attempt\":1"),
        "{}",
        describe(&out)
    );
    let out = fabric(&sb, p, &["status", prefix]);
    let text = stdout(&out);
    assert!(text.contains("\n  attempt 1 on "), "{text}");
    assert!(text.contains(": cancelled ("), "{text}");
    let second_prefix: String = second.chars().filter(|c| *c != '-').take(32).collect();
    let out = fabric(&sb, p, &["wait", &second_prefix[..second_prefix.len() - 4]]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));

    // Listings by final status, with a next-page hint; workers with a state.
    let out = fabric(&sb, p, &["tasks", "--state", "cancelled", "--json"]);
    assert!(stdout(&out).contains(&id), "{}", describe(&out));
    assert!(!stdout(&out).contains(&second), "{}", describe(&out));
    let out = fabric(&sb, p, &["tasks", "--state", "succeeded", "--json"]);
    assert!(stdout(&out).contains(&second), "{}", describe(&out));
    assert!(!stdout(&out).contains(&id), "{}", describe(&out));
    let out = fabric(&sb, p, &["tasks", "--limit", "1"]);
    let hint = format!("1 of 2; next page: fabric tasks --before {second}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&hint),
        "{}",
        describe(&out)
    );
    // A task that fails: `--state failed` and the dead-letter set list it,
    // with totals from the dispatcher's counters.
    let failing = sb.wat("exit1", EXIT_1);
    let out = fabric(&sb, p, &["submit", failing.to_str().unwrap(), "--wait"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let out = fabric(&sb, p, &["tasks", "--state", "failed", "--json"]);
    let listed = stdout(&out);
    assert_eq!(listed.matches("\"id\"").count(), 1, "{listed}");
    assert!(listed.contains("\"failed\""), "{listed}");
    for state in ["failed", "dead_letter"] {
        let out = fabric(&sb, p, &["tasks", "--state", state]);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        assert!(stdout(&out).contains("failed"), "{}", describe(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .trim_end()
                .ends_with("1 of 1"),
            "{}",
            describe(&out)
        );
    }
    let out = fabric(&sb, p, &["tasks"]);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .trim_end()
            .ends_with("3 of 3"),
        "{}",
        describe(&out)
    );
    let out = fabric(&sb, p, &["tasks", "--state", "asleep"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let out = fabric(&sb, p, &["workers"]);
    let table = stdout(&out);
    assert!(table.lines().next().unwrap().contains("STATE"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("w ") && l.contains(" ready ")),
        "{table}"
    );
    w.terminate(Duration::from_secs(30));
    let mut d = d;
    d.proc.terminate(Duration::from_secs(30));
}

/// On a terminal (a pseudo-terminal from `script`, util-linux), a wait
/// shows a spinner with the task's state and why it waits.
#[test]
fn a_wait_on_a_terminal_shows_the_state_and_why_it_waits() {
    let sb = Sandbox::new();
    let d = start_dispatcher(&sb, "d", "127.0.0.1:0", &[], None);
    let quick = sb.dir.path().join("quick.wasm");
    std::fs::write(&quick, wat::parse_str(QUICK).unwrap()).unwrap();
    let out = fabric(&sb, &d.profile, &["submit", quick.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let id = stdout(&out);
    let command = format!(
        "{} --cluster {} wait {id} --wait-timeout 2s",
        fabric_tests::harness::sandbox::fabric_bin().display(),
        d.profile.display()
    );
    let mut script = std::process::Command::new("script");
    script.args(["-q", "-e", "-c", &command, "/dev/null"]);
    sb.isolate(&mut script);
    script.env("TERM", "xterm");
    let out = script
        .output_in_time()
        .expect("`script` (util-linux, Debian's bsdutils) is needed for this test");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        screen.contains("queued: no worker is registered"),
        "{}",
        describe(&out)
    );
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
}
