//! The README's code blocks: each one runs here as written (with the test's
//! own addresses, paths and ids put in for the placeholders), or is named
//! with the test that runs it. A new block that is in neither list fails
//! `every_readme_block_is_run_somewhere`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use fabric_tests::harness::cluster::{Netns, fabric_cmd};
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::process::Proc;
use fabric_tests::harness::readme::{block, blocks, words};
use fabric_tests::harness::sandbox::{Sandbox, describe, guest, json_of, run_with_input};

/// Blocks run in this file, by how they start.
const RUN_HERE: &[&str] = &[
    "fabric demo --export examples",
    "fabric up --allow cc",
    "fabric run --file hello.c",
    "fabric dispatcher --listen",
    "fabric worker --join",
    "# /etc/fabric/worker.toml",
    "use fabric_guest::{Json, run};",
];

/// Blocks whose commands run elsewhere, by how they start, and where.
const RUN_ELSEWHERE: &[(&str, &str)] = &[
    (
        "rustup target add wasm32-wasip1 && cargo run --release -p fabric-cli -- demo",
        "cluster_up::demo_runs_the_example_jobs runs `fabric demo` (in the test profile)",
    ),
    (".ci/run", "CI runs it as written"),
    (
        "# on each of 10.0.0.1, .2, .3:",
        "tests/harness/group.rs runs these commands on loopback (admin node-key, dispatcher --peer KEY@ADDR,URL, admin members --json), for ha::* and ha_chaos::*",
    ),
    (
        "fabric admin gen-key > /etc/fabric/fabric.key",
        "at_rest::the_readme_key_blocks_run_as_written",
    ),
    (
        "fabric admin keys --census",
        "at_rest::the_readme_key_blocks_run_as_written",
    ),
    (
        "a=$(fabric run --detach",
        "cluster_after::the_readme_dependency_block_runs_as_written",
    ),
    (
        "fabric new word-count",
        "task_authors::a_new_crate_builds_outside_the_repo_and_runs_locally_and_on_the_cluster \
         runs these commands in a temp dir, with a cluster up",
    ),
    (
        "fabric schedule add heartbeat",
        "cluster_time::an_every_two_seconds_schedule_runs_pauses_catches_up_once_after_kill_9_and_is_removed \
         runs add (the run form, every 2 s), show, pause, resume, run-now, list and remove against a real \
         cluster; the submit form builds its task with the code `fabric submit` uses",
    ),
    (
        "# examples/jobs/wordcount.toml",
        "cluster_jobs::the_word_count_job_gives_the_counts_of_wordfreq_over_the_whole_text \
         checks that the block is the example file's, and runs that file",
    ),
    (
        "fabric job submit examples/jobs/wordcount.toml --wait",
        "cluster_jobs::the_word_count_job_gives_the_counts_of_wordfreq_over_the_whole_text \
         runs the example with fabric job submit --wait and fabric job status",
    ),
    (
        "export FABRIC_API_URL=",
        "rest_tools::the_readme_rest_block_runs_as_written",
    ),
    (
        "fabric exec MODULE.wasm",
        "a synopsis: exec_usage and exec_examples run each of its flags",
    ),
    (
        "cargo install cargo-fuzz",
        "not run by the suite: needs a nightly toolchain and cargo-fuzz, which the \
         pinned stable toolchain does not have",
    ),
];

#[test]
fn every_readme_block_is_run_somewhere() {
    for b in blocks() {
        let known = RUN_HERE.iter().any(|p| b.first().starts_with(p))
            || RUN_ELSEWHERE.iter().any(|(p, _)| b.first().starts_with(p));
        assert!(
            known,
            "README block ```{} starting {:?} is run by no test: run it in tests/e2e/readme.rs \
             or name the test that does in RUN_ELSEWHERE",
            b.lang,
            b.first()
        );
    }
    for p in RUN_HERE.iter().chain(RUN_ELSEWHERE.iter().map(|(p, _)| p)) {
        let _ = block(p);
    }
}

/// Runs a `fabric ...` line to completion in `cwd` and asserts it exits 0.
fn run_line(sb: &Sandbox, cwd: &Path, words: &[String]) -> Output {
    assert_eq!(words[0], "fabric", "{words:?}");
    let out = fabric_cmd(sb, None)
        .current_dir(cwd)
        .args(&words[1..])
        .output_in_time()
        .expect("fabric runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "README line `{}`: {}",
        words.join(" "),
        describe(&out)
    );
    out
}

#[test]
fn the_one_machine_commands_run_as_written_on_exported_examples() {
    let sb = Sandbox::new();
    let b = block("fabric demo --export examples");
    let mut lines = b.lines.iter();

    // `fabric demo --export examples && cd examples`
    let first = lines.next().unwrap();
    let (export, cd) = first.split_once("&&").expect("export && cd");
    let export = words(export);
    run_line(&sb, sb.dir.path(), &export);
    let cwd: PathBuf = sb.dir.path().join(words(cd)[1].as_str());
    assert!(cwd.join("wordfreq.wasm").exists());
    // The examples table's plain WASI line runs in the exported dir too.
    let mut plain = fabric_cmd(&sb, None);
    plain.current_dir(&cwd).args([
        "exec",
        "plain-wasi.wasm",
        "--input",
        "-",
        "--env",
        "GREETING=hey",
        "--",
        "a",
        "b",
    ]);
    let out = fabric_tests::harness::sandbox::run_with_input(&mut plain, b"hi\n");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && said.contains("args: a b")
            && said.contains("greeting: hey")
            && said.contains("HI"),
        "{}",
        describe(&out)
    );
    // Exporting again is harmless; a file the user changed is never
    // overwritten.
    run_line(&sb, sb.dir.path(), &export);
    std::fs::write(cwd.join("book.txt"), "my own book").unwrap();
    let out = fabric_cmd(&sb, None)
        .current_dir(sb.dir.path())
        .args(&export[1..])
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("book.txt already exists"),
        "{}",
        describe(&out)
    );
    assert_eq!(std::fs::read(cwd.join("book.txt")).unwrap(), b"my own book");
    std::fs::remove_file(cwd.join("book.txt")).unwrap();
    run_line(&sb, sb.dir.path(), &export);

    // `fabric up`, in the background, on a free loopback port (7070 may be
    // taken by another test).
    let up_words = words(lines.next().unwrap());
    assert_eq!(up_words, ["fabric", "up"]);
    let mut cmd = fabric_cmd(&sb, None);
    cmd.current_dir(&cwd)
        .arg("up")
        .env("FABRIC_LISTEN", "127.0.0.1:0");
    let mut up = Proc::spawn("up", cmd, sb.dir.path());
    up.wait_for_line("ready", Duration::from_secs(60));
    wait_for_workers(&sb, &cwd, 2);

    let mut id = String::new();
    let mut ids = Vec::new();
    for line in lines {
        let mut w = words(line);
        for word in &mut w {
            if word == "ID" {
                word.clone_from(&id);
            } else if word == "0190c7a2-3b4c-7d5e-8f60" {
                *word = id[..23].to_owned();
            }
        }
        let out = run_line(&sb, &cwd, &w);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let said = || format!("README line `{line}` printed:\n{}", describe(&out));
        match (w[1].as_str(), w.get(2).map_or("", String::as_str)) {
            ("submit", "wordfreq.wasm") => {
                // --wait prints the task's output: the top 5 words.
                let v: serde_json::Value =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {}", said()));
                assert_eq!(v["top"].as_array().map(Vec::len), Some(5), "{}", said());
                assert_eq!(v["top"][0][0], "the", "{}", said());
            }
            ("submit", _) => {
                // Prints the task's id, nothing else: a new one each time.
                id = text.trim().to_owned();
                assert!(is_task_id(&id), "{}", said());
                assert!(!ids.contains(&id), "{}", said());
                ids.push(id.clone());
            }
            ("status", _) => {
                // The whole id, and what the submit line asked for.
                assert!(text.starts_with(&format!("{id}  ")), "{}", said());
                assert!(
                    text.contains("priority high") && text.contains("retries 2"),
                    "{}",
                    said()
                );
            }
            ("wait", _) | ("result", _) => {
                // The primes task's own output.
                let v: serde_json::Value =
                    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {}", said()));
                assert_eq!(v["limit"], 2_000_000, "{}", said());
                assert!(v["count"].as_u64().is_some_and(|n| n > 0), "{}", said());
            }
            ("tasks", _) => {
                // A table of queued tasks: the ones above have all finished.
                let header: Vec<&str> = text
                    .lines()
                    .next()
                    .unwrap_or("")
                    .split_whitespace()
                    .collect();
                assert!(header.starts_with(&["ID", "STATUS"]), "{}", said());
                for done in &ids {
                    assert!(
                        !text.contains(&done[..8]),
                        "{done} is not queued: {}",
                        said()
                    );
                }
                assert!(
                    String::from_utf8_lossy(&out.stderr).contains(" of "),
                    "{}",
                    said()
                );
            }
            ("workers", _) => {
                // Both of `fabric up`'s workers, ready.
                let rows: Vec<&str> = text.lines().skip(1).collect();
                assert_eq!(rows.len(), 2, "{}", said());
                for (row, name) in rows.iter().zip(["local-0", "local-1"]) {
                    assert!(
                        row.starts_with(name) && row.contains(" ready "),
                        "{}",
                        said()
                    );
                }
            }
            ("cancel", _) => {
                // The spinning task, now cancelled.
                assert!(text.starts_with(&format!("{id}  cancelled")), "{}", said());
            }
            (other, _) => panic!("README line `{line}`: no check for `fabric {other}`"),
        }
    }
    assert_eq!(ids.len(), 2, "the block's two submits printed ids: {ids:?}");
    up.sigterm();
    assert!(up.wait(Duration::from_secs(30)).success());
}

/// Whether `s` is a whole task id: 8-4-4-4-12 lowercase hex digits.
fn is_task_id(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| {
            g.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// Polls `fabric workers --json` until `n` workers are listed.
fn wait_for_workers(sb: &Sandbox, cwd: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = fabric_cmd(sb, None)
            .current_dir(cwd)
            .args(["workers", "--json"])
            .output_in_time()
            .expect("fabric workers");
        if out.status.success() && json_of(&out).as_array().is_some_and(|l| l.len() >= n) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{n} workers did not register: {}",
            describe(&out)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs a README `fabric worker` command (the test's token and address
/// put in) in the namespace until a worker with a key not in `seen` is
/// ready; checks its slots and labels, then stops it.
fn worker_registers(
    sb: &Sandbox,
    ns: &Netns,
    mut cmd: Command,
    seen: &mut Vec<serde_json::Value>,
    slots: u64,
    labels: &[&str],
) {
    cmd.env("FABRIC_MDNS_INTERFACE", "loopback");
    let mut w = Proc::spawn("worker", cmd, sb.dir.path());
    let deadline = Instant::now() + Duration::from_secs(30);
    let found = loop {
        let out = fabric_cmd(sb, Some(&ns.name))
            .args(["workers", "--json"])
            .output_in_time()
            .expect("fabric workers");
        let listed = if out.status.success() {
            json_of(&out).as_array().cloned().unwrap_or_default()
        } else {
            Vec::new()
        };
        if let Some(new) = listed
            .into_iter()
            .find(|v| v["state"] == "ready" && !seen.contains(&v["key"]))
        {
            break new;
        }
        assert!(
            Instant::now() < deadline,
            "the worker did not register: {}\nworker stderr:\n{}",
            describe(&out),
            w.stderr()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(found["slots"], slots, "{found}");
    assert_eq!(found["labels"], serde_json::json!(labels), "{found}");
    seen.push(found["key"].clone());
    assert!(w.terminate(Duration::from_secs(30)).success());
    // The next command's worker is another machine: a fresh data dir.
    std::fs::remove_dir_all(sb.dir.path().join("data/fabric")).expect("worker data dir");
}

#[test]
fn the_across_machines_commands_run_as_written_in_a_network_namespace() {
    // A namespace with only loopback: `0.0.0.0:7070` and mDNS reach
    // nothing outside it.
    let ns = Netns::new("readme");
    let sb = Sandbox::new();
    let data = sb.dir.path().join("var-lib-fabric");

    let b = block("fabric dispatcher --listen");
    let mut d_words = words(&b.lines[0]);
    for w in &mut d_words {
        if w == "/var/lib/fabric" {
            *w = data.to_string_lossy().into_owned();
        }
    }
    let mut cmd = fabric_cmd(&sb, Some(&ns.name));
    cmd.args(&d_words[1..])
        .env("FABRIC_MDNS_INTERFACE", "loopback");
    let mut d = Proc::spawn("dispatcher", cmd, sb.dir.path());
    let printed = d.wait_for_line("ready", Duration::from_secs(60));
    // `# prints: dispatcher key <hex>, join token fabric1.<...>, ready`
    assert!(b.lines[1].contains("dispatcher key") && b.lines[1].contains("join token"));
    assert!(
        printed.iter().any(|l| l.starts_with("dispatcher key ")),
        "{printed:?}"
    );
    let token = printed
        .iter()
        .find_map(|l| l.strip_prefix("join token "))
        .unwrap_or_else(|| panic!("no join token line: {printed:?}"))
        .to_owned();

    let put_in = |line: &str| -> Vec<String> {
        words(line)
            .into_iter()
            .map(|w| match w.as_str() {
                "fabric1.<...>" => token.clone(),
                "10.0.0.5:7070" => "127.0.0.1:7070".to_owned(),
                _ => w,
            })
            .collect()
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let mut seen = Vec::new();
    let workers = block("fabric worker --join");
    assert_eq!(workers.lines.len(), 2, "{:?}", workers.lines);
    // The first finds the dispatcher by mDNS; the second names it.
    for (line, slots) in workers.lines.iter().zip([cpus, 8]) {
        let w = put_in(line);
        let mut cmd = fabric_cmd(&sb, Some(&ns.name));
        cmd.args(&w[1..]);
        worker_registers(&sb, &ns, cmd, &mut seen, slots, &[]);
    }

    // The config file, with the test's token and address.
    let toml = block("# /etc/fabric/worker.toml")
        .lines
        .join("\n")
        .replace("fabric1....", &token)
        .replace("10.0.0.5:7070", "127.0.0.1:7070");
    let file = sb.write("worker.toml", toml.as_bytes());
    let mut cmd = fabric_cmd(&sb, Some(&ns.name));
    cmd.arg("worker").arg("--config").arg(&file);
    worker_registers(&sb, &ns, cmd, &mut seen, 8, &["gpu-less", "rack-2"]);
    assert!(d.terminate(Duration::from_secs(30)).success());
}

#[test]
fn the_guest_sdk_snippet_is_an_example_that_runs() {
    let snippet = block("use fabric_guest::{Json, run};").lines.join("\n");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/guests/src/bin/double.rs");
    let source = std::fs::read_to_string(&path).expect("double.rs");
    assert!(
        source.contains(&snippet),
        "{} no longer holds the README's snippet verbatim",
        path.display()
    );
    let sb = Sandbox::new();
    let mut cmd = sb.fabric();
    cmd.arg("exec").arg(guest("double")).args(["--input", "-"]);
    let out = run_with_input(&mut cmd, br#"{"limit": 21}"#);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
}
