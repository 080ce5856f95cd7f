//! Job files on the real binary: the two examples in `examples/jobs` (a
//! map-reduce word count, a native build), a rescue that reruns only what
//! failed, a cycle refused before anything is queued, and a dispatcher
//! killed with kill -9 in the middle of a three-level job.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::native::{fabric_on, text, up_one_worker_in};
use fabric_tests::harness::sandbox::{Sandbox, describe, guest, json_of};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct C<'a> {
    sb: &'a Sandbox,
    profile: PathBuf,
}

impl C<'_> {
    fn run(&self, args: &[&str]) -> Output {
        fabric_on(self.sb, &self.profile, args)
    }

    /// `fabric job submit FILE [flags]`: the job id and the answer.
    fn submit(&self, file: &Path, flags: &[&str]) -> (String, Output) {
        let mut args = vec!["job", "submit", file.to_str().unwrap()];
        args.extend_from_slice(flags);
        let out = self.run(&args);
        let id = text(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        (id, out)
    }

    fn job(&self, id: &str) -> serde_json::Value {
        json_of(&self.run(&["job", "status", id, "--json"]))
    }

    /// The task ids of step `name`.
    fn step(&self, job: &serde_json::Value, name: &str) -> Vec<String> {
        let step = job["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no step {name}: {job}"));
        step["tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap().to_owned())
            .collect()
    }

    fn result(&self, id: &str) -> serde_json::Value {
        json_of(&self.run(&["result", id, "--json"]))
    }

    /// Waits for the job to leave `running`; its view.
    fn finished(&self, id: &str, within: Duration) -> serde_json::Value {
        let deadline = Instant::now() + within;
        loop {
            let j = self.job(id);
            if j["state"] != "running" {
                return j;
            }
            assert!(Instant::now() < deadline, "the job did not finish: {j}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The word-count example, its module the harness's build of wordfreq
/// (the file names the crate dir, which `fabric` would build first).
fn wordcount_in(sb: &Sandbox) -> PathBuf {
    let example = std::fs::read_to_string(repo().join("examples/jobs/wordcount.toml")).unwrap();
    let module = format!("module = {:?}", guest("wordfreq").display().to_string());
    let job = example
        .replace("module = \"../guests\"", &module)
        .replace("bin = \"wordfreq\"", "");
    assert_ne!(job, example, "the example names its module as expected");
    let parts = sb.dir.path().join("wordcount");
    std::fs::create_dir_all(&parts).unwrap();
    for e in std::fs::read_dir(repo().join("examples/jobs/wordcount")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), parts.join(e.file_name())).unwrap();
    }
    sb.write("wordcount.toml", job.as_bytes())
}

/// The README's job file is the example's, comments aside, in order.
fn readme_block_is_the_example() {
    let block = fabric_tests::harness::readme::block("# examples/jobs/wordcount.toml");
    let example = std::fs::read_to_string(repo().join("examples/jobs/wordcount.toml")).unwrap();
    let bare = |l: &str| l.split('#').next().unwrap_or("").trim().to_owned();
    let mut lines = example.lines().map(bare).filter(|l| !l.is_empty());
    for want in block
        .lines
        .iter()
        .map(|l| bare(l))
        .filter(|l| !l.is_empty())
    {
        assert!(
            lines.any(|l| l == want),
            "README line {want:?} is not in examples/jobs/wordcount.toml (in that order)"
        );
    }
}

#[test]
fn the_word_count_job_gives_the_counts_of_wordfreq_over_the_whole_text() {
    readme_block_is_the_example();
    let sb = Sandbox::new();
    let (_up, profile, _) = up_one_worker_in(&sb, &[]);
    let c = C { sb: &sb, profile };
    let file = wordcount_in(&sb);
    let (id, out) = c.submit(&file, &["--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(id.starts_with("job-"), "{}", describe(&out));
    let job = c.job(&id);
    assert_eq!(job["state"], "succeeded", "{job}");
    let counts = c.step(&job, "count");
    assert_eq!(counts.len(), 4, "one task per part: {job}");
    let merge = c.step(&job, "merge");
    let merged = c.result(&merge[0]);
    // wordfreq over the whole text, in one piece.
    let mut whole = String::new();
    for i in 1..=4 {
        whole.push_str(
            &std::fs::read_to_string(sb.dir.path().join(format!("wordcount/part-{i}.txt")))
                .unwrap(),
        );
    }
    let whole_file = sb.write("whole.txt", whole.as_bytes());
    let exec = sb
        .fabric()
        .arg("exec")
        .arg(guest("wordfreq"))
        .arg("--input")
        .arg(&whole_file)
        .args(["--", "--top", "10"])
        .output_in_time()
        .unwrap();
    assert_eq!(exec.status.code(), Some(0), "{}", describe(&exec));
    let want: serde_json::Value = serde_json::from_slice(&exec.stdout).unwrap();
    let got: serde_json::Value = serde_json::from_str(merged["stdout"].as_str().unwrap()).unwrap();
    assert_eq!(got, want, "the merged counts are the whole text's");
    assert_eq!(got["total_words"], 65, "{got}");
    // Listed, with its counts.
    let list = json_of(&c.run(&["job", "list", "--json"]));
    assert_eq!(list[0]["id"], id.as_str(), "{list}");
    assert_eq!(list[0]["counts"]["succeeded"], 5, "{list}");
}

#[test]
fn the_native_build_job_links_a_program_that_runs() {
    let sb = Sandbox::new();
    let (_up, profile, _) = up_one_worker_in(&sb, &["--allow", "cc", "--allow", "sh"]);
    let c = C { sb: &sb, profile };
    let example = std::fs::read_to_string(repo().join("examples/jobs/native-build.toml")).unwrap();
    let native = repo().join("examples/native").canonicalize().unwrap();
    let job = example.replace(
        "dir = \"../native\"",
        &format!("dir = {:?}", native.display().to_string()),
    );
    assert_ne!(job, example);
    let file = sb.write("build.toml", job.as_bytes());
    let (id, out) = c.submit(&file, &["--wait"]);
    let job = c.job(&id);
    let link = c.step(&job, "link");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\nthe link task: {}",
        describe(&out),
        c.result(&link[0])
    );
    assert_eq!(
        c.step(&job, "compile").len(),
        5,
        "one compile per .c: {job}"
    );
    let link = c.step(&job, "link");
    let out_dir = sb.dir.path().join("out");
    let fetched = c.run(&[
        "result",
        &link[0],
        "--output-dir",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(fetched.status.code(), Some(0), "{}", describe(&fetched));
    let ran = std::process::Command::new(out_dir.join("stats"))
        .arg("1,2,3,10")
        .output_in_time()
        .unwrap();
    assert_eq!(
        text(&ran.stdout),
        "n=4 mean=4.00 variance=12.50 median=2.50\n",
        "{}",
        describe(&ran)
    );
}

#[test]
fn a_rescue_reruns_only_the_failed_step_and_its_skipped_children() {
    let sb = Sandbox::new();
    let (_up, profile, _) = up_one_worker_in(&sb, &["--allow", "sh"]);
    let c = C { sb: &sb, profile };
    // `flaky` fails until a moment a few seconds away, so its first run
    // fails and its rerun (after that moment) succeeds.
    let ready_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 10;
    let job = format!(
        r#"
[[step]]
name = "first"
command = ["sh", "-c", "echo first"]

[[step]]
name = "side"
command = ["sh", "-c", "echo side"]

[[step]]
name = "flaky"
after = ["first"]
command = ["sh", "-c", "[ $(date +%s) -ge {ready_at} ] && echo ok"]

[[step]]
name = "child"
input_from = ["flaky"]
command = ["sh", "-c", "cat; echo child"]

[[step]]
name = "grandchild"
input_from = ["child"]
command = ["sh", "-c", "cat"]
"#
    );
    let file = sb.write("rescue.toml", job.as_bytes());
    let (id, out) = c.submit(&file, &["--wait"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let before = c.job(&id);
    assert_eq!(before["state"], "failed", "{before}");
    assert_eq!(before["counts"]["skipped"], 2, "{before}");
    assert_eq!(before["counts"]["failed"], 1, "{before}");
    // A running job is not rescued; a finished one is, once the flaky
    // step can succeed.
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        < ready_at
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    let retried = c.run(&["job", "retry", &id, "--wait"]);
    assert_eq!(retried.status.code(), Some(0), "{}", describe(&retried));
    assert!(
        text(&retried.stdout).contains("queued again 3 tasks"),
        "{}",
        describe(&retried)
    );
    let after = c.job(&id);
    assert_eq!(after["state"], "succeeded", "{after}");
    assert_eq!(after["rescues"], 1, "{after}");
    for kept in ["first", "side"] {
        assert_eq!(
            c.step(&before, kept),
            c.step(&after, kept),
            "{kept} kept its task"
        );
    }
    for rerun in ["flaky", "child", "grandchild"] {
        assert_ne!(
            c.step(&before, rerun),
            c.step(&after, rerun),
            "{rerun} ran again"
        );
    }
    let last = c.result(&c.step(&after, "grandchild")[0]);
    assert_eq!(last["stdout"], "ok\nchild\n", "{last}");
    // Nothing left to rescue.
    let again = c.run(&["job", "retry", &id]);
    assert_eq!(again.status.code(), Some(0), "{}", describe(&again));
    assert!(
        text(&again.stderr).contains("nothing to rerun"),
        "{}",
        describe(&again)
    );
}

#[test]
fn a_cycle_or_an_unknown_step_is_refused_before_anything_is_queued() {
    let sb = Sandbox::new();
    let (_up, profile, _) = up_one_worker_in(&sb, &["--allow", "sh"]);
    let c = C { sb: &sb, profile };
    let cycle = sb.write(
        "cycle.toml",
        br#"
[[step]]
name = "start"
command = ["true"]
[[step]]
name = "x"
after = ["start", "z"]
command = ["true"]
[[step]]
name = "y"
after = ["x"]
command = ["true"]
[[step]]
name = "z"
after = ["y"]
command = ["true"]
"#,
    );
    let (_, out) = c.submit(&cycle, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = text(&out.stderr);
    assert!(err.contains("cycle"), "{err}");
    for s in ["x", "y", "z"] {
        assert!(err.contains(s), "names {s}: {err}");
    }
    let unknown = sb.write(
        "unknown.toml",
        b"[[step]]\nname = \"a\"\nafter = [\"nope\"]\ncommand = [\"true\"]\n",
    );
    let (_, out) = c.submit(&unknown, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(text(&out.stderr).contains("\"nope\""), "{}", describe(&out));
    let tasks = json_of(&c.run(&["tasks", "--json"]));
    assert_eq!(tasks, serde_json::json!([]), "nothing was queued");
    let jobs = json_of(&c.run(&["job", "list", "--json"]));
    assert_eq!(jobs, serde_json::json!([]), "no job was stored");
    // `fabric job cancel`: every unfinished task, the waiting one too.
    let slow = sb.write(
        "slow.toml",
        b"[[step]]\nname = \"slow\"\ncommand = [\"sh\", \"-c\", \"sleep 30\"]\n[[step]]\nname = \"next\"\nafter = [\"slow\"]\ncommand = [\"sh\", \"-c\", \"true\"]\n",
    );
    let (id, out) = c.submit(&slow, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let cancelled = c.run(&["job", "cancel", &id]);
    assert_eq!(cancelled.status.code(), Some(0), "{}", describe(&cancelled));
    assert!(
        text(&cancelled.stdout).contains("cancelled 2 tasks"),
        "{}",
        describe(&cancelled)
    );
    let job = c.finished(&id, Duration::from_secs(30));
    assert_eq!(job["counts"], serde_json::json!({"cancelled": 2}), "{job}");
    let bad = c.run(&["job", "status", "not-a-job"]);
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
}

#[test]
fn a_dispatcher_killed_mid_job_finishes_the_job_after_its_restart() {
    let sb = Sandbox::new();
    let (mut up, profile, _) = up_one_worker_in(&sb, &["--allow", "sh"]);
    let c = C { sb: &sb, profile };
    std::fs::create_dir_all(sb.dir.path().join("items")).unwrap();
    for i in 1..=3 {
        sb.write(&format!("items/{i}.txt"), format!("item {i}\n").as_bytes());
    }
    let file = sb.write(
        "three.toml",
        br#"
[[step]]
name = "one"
command = ["sh", "-c", "sleep 2; echo one"]
[[step]]
name = "two"
after = ["one"]
each = "items/*.txt"
command = ["sh", "-c", "cat {}"]
[[step]]
name = "three"
input_from = ["two"]
command = ["sh", "-c", "cat; echo three"]
"#,
    );
    let (id, out) = c.submit(&file, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    up.kill9();
    drop(up);
    let (_up, profile, _) = up_one_worker_in(&sb, &["--allow", "sh"]);
    let c = C { sb: &sb, profile };
    let job = c.finished(&id, Duration::from_secs(90));
    assert_eq!(job["state"], "succeeded", "{job}");
    let three = c.result(&c.step(&job, "three")[0]);
    assert_eq!(
        three["stdout"], "item 1\nitem 2\nitem 3\nthree\n",
        "{three}"
    );
}
