//! `--after`: a task waits until the tasks it runs after succeeded; when
//! one does not, it ends `skipped`, and so do the tasks after it; a
//! dispatcher killed meanwhile finishes the chain after its restart.

use std::process::Output;
use std::time::{Duration, Instant};

use fabric_tests::harness::native::{fabric_on, text, up_one_worker_in};
use fabric_tests::harness::sandbox::{Sandbox, describe, json_of};

struct C<'a> {
    sb: &'a Sandbox,
    profile: std::path::PathBuf,
}

impl C<'_> {
    fn run(&self, args: &[&str]) -> Output {
        fabric_on(self.sb, &self.profile, args)
    }

    /// `fabric run --detach [flags] -- sh -c SCRIPT`: the task's id.
    fn detach(&self, flags: &[&str], script: &str) -> String {
        let mut args = vec!["run", "--detach"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--", "sh", "-c", script]);
        let out = self.run(&args);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        text(&out.stdout).trim().to_owned()
    }

    fn status(&self, id: &str) -> serde_json::Value {
        json_of(&self.run(&["status", id, "--json"]))
    }

    fn result(&self, id: &str) -> serde_json::Value {
        let out = self.run(&["wait", id, "--json"]);
        json_of(&out)
    }
}

#[test]
fn a_task_runs_after_its_parents_and_a_failure_skips_two_levels() {
    let sb = Sandbox::new();
    let (_up, profile, _) = up_one_worker_in(&sb, &["--allow", "sh"]);
    let c = C { sb: &sb, profile };
    let a = c.detach(&[], "sleep 1; echo A");
    let b = c.detach(&["--after", &a[..20]], "echo B");
    let waiting = c.status(&b);
    assert_eq!(waiting["state"], "waiting", "{waiting}");
    assert!(
        waiting["waiting"].as_str().unwrap().contains(&a),
        "{waiting}"
    );
    assert_eq!(waiting["after"], serde_json::json!([a]), "{waiting}");
    let done_b = c.result(&b);
    assert_eq!(done_b["status"], "succeeded", "{done_b}");
    let done_a = c.status(&a);
    let a_ended = done_a["attempts"][0]["ended_ms"].as_u64().unwrap();
    let b_started = done_b["attempts"][0]["started_ms"].as_u64().unwrap();
    assert!(
        a_ended <= b_started,
        "B started before A ended: {done_a} {done_b}"
    );
    // A parent that already succeeded: the task is queued at once.
    let d = c.detach(&["--after", &a], "echo D");
    assert_eq!(c.result(&d)["status"], "succeeded");

    // F fails; C1 runs after F, C2 after C1: both skipped, each naming
    // its own parent, and `wait` on the last exits 1.
    let f = c.detach(&[], "sleep 1; exit 3");
    let c1 = c.detach(&["--after", &f], "echo never");
    let c2 = c.detach(&["--after", &c1], "echo never");
    let waited = c.run(&["wait", &c2, "--json"]);
    assert_eq!(waited.status.code(), Some(1), "{}", describe(&waited));
    let skipped2 = json_of(&waited);
    assert_eq!(skipped2["status"], "skipped", "{skipped2}");
    assert!(
        skipped2["message"].as_str().unwrap().contains(&c1),
        "{skipped2}"
    );
    let skipped1 = c.result(&c1);
    assert_eq!(skipped1["status"], "skipped", "{skipped1}");
    assert!(
        skipped1["message"]
            .as_str()
            .unwrap()
            .contains(&format!("{f}, which ended failed")),
        "{skipped1}"
    );
    let listed = json_of(&c.run(&["tasks", "--state", "skipped", "--json"]));
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    // --input-from: the parent's stdout is the child's stdin.
    let greet = c.detach(&[], "sleep 0.5; printf 'hello from the parent'");
    let shout = c.detach(&["--input-from", &greet], "tr a-z A-Z");
    let shouted = c.result(&shout);
    assert_eq!(shouted["stdout"], "HELLO FROM THE PARENT", "{shouted}");
    // --files-from: the parent's output files are staged into the child.
    let make = c.detach(
        &["--output", "out/*.txt"],
        "mkdir -p out && echo made-by-parent > out/a.txt",
    );
    let read = c.detach(&["--files-from", &make], "cat out/a.txt");
    let read_out = c.result(&read);
    assert_eq!(read_out["stdout"], "made-by-parent\n", "{read_out}");
    // A task after one that does not exist is refused.
    let bad = c.run(&[
        "run",
        "--after",
        "ffffffffffffffffffffff",
        "--",
        "sh",
        "-c",
        "true",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
}

#[test]
fn a_dispatcher_killed_mid_chain_finishes_it_after_its_restart() {
    let sb = Sandbox::new();
    let (mut up, profile, _) = up_one_worker_in(&sb, &["--allow", "sh"]);
    let c = C { sb: &sb, profile };
    let parent = c.detach(&[], "sleep 2; echo P");
    let child = c.detach(&["--after", &parent], "echo C");
    let grandchild = c.detach(&["--after", &child], "echo G");
    assert_eq!(c.status(&grandchild)["state"], "waiting");
    up.kill9();
    drop(up);
    // The same data dir: the held tasks come back held, the parent (lost
    // with its worker) runs again, and the chain finishes.
    let (_up, profile, _) = up_one_worker_in(&sb, &["--allow", "sh"]);
    let c = C { sb: &sb, profile };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let g = c.status(&grandchild);
        if g["state"] == "done" {
            assert_eq!(g["status"], "succeeded", "{g}");
            break;
        }
        assert!(Instant::now() < deadline, "the chain did not finish: {g}");
        std::thread::sleep(Duration::from_millis(100));
    }
    for id in [&parent, &child] {
        assert_eq!(c.status(id)["status"], "succeeded");
    }
}

#[test]
fn the_readme_dependency_block_runs_as_written() {
    use fabric_tests::harness::readme::{block, shell};
    let sb = Sandbox::new();
    let (_up, profile, _) = up_one_worker_in(&sb, &["--allow", "sh", "--allow", "tr"]);
    let script = block("a=$(fabric run --detach").lines.join("\n");
    let out = shell(
        &sb,
        &format!(
            "set -e\nexport FABRIC_CLUSTER={}\n{script}",
            profile.display()
        ),
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "HELLO\n", "{}", describe(&out));
}
