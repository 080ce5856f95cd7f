//! The task author's path: `fabric new` writes a crate that builds outside
//! this repo with only the toolchain and crates.io, `fabric exec DIR` and
//! `fabric submit DIR` build it with cargo and run it, and the shell gets
//! completions and man pages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::native::{text, up_one_worker_in};
use fabric_tests::harness::sandbox::{Sandbox, describe, fabric_bin};

/// Building a crate from nothing (serde and friends, in release for wasm)
/// takes a while on a small box; the deadline only turns a hang into a
/// message.
const BUILD: Duration = Duration::from_secs(600);

/// A command for the new crate's dir with the sandbox's home but the
/// real toolchain (rustup's and cargo's homes: the crates.io cache) and one
/// target dir the suite's runs share, so dependencies build once.
fn in_crate(sb: &Sandbox, dir: &Path, program: &Path) -> Command {
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"));
    let cargo_home = std::env::var_os("CARGO_HOME").map_or(home.join(".cargo"), PathBuf::from);
    let rustup_home = std::env::var_os("RUSTUP_HOME").map_or(home.join(".rustup"), PathBuf::from);
    let target = fabric_bin()
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/fabric")
        .join("task-crates");
    let mut cmd = Command::new(program);
    sb.isolate(&mut cmd);
    cmd.current_dir(dir)
        .env("CARGO_HOME", cargo_home)
        .env("RUSTUP_HOME", rustup_home)
        .env("CARGO_TARGET_DIR", target);
    cmd
}

fn ok(out: &Output, what: &str) {
    assert_eq!(out.status.code(), Some(0), "{what}: {}", describe(out));
}

#[test]
fn a_new_crate_builds_outside_the_repo_and_runs_locally_and_on_the_cluster() {
    let sb = Sandbox::new();
    let out = sb
        .fabric()
        .current_dir(sb.dir.path())
        .args(["new", "word-count"])
        .output_in_time()
        .unwrap();
    ok(&out, "fabric new");
    assert!(
        text(&out.stdout).contains("created task crate word-count"),
        "{}",
        describe(&out)
    );
    let dir = sb.dir.path().join("word-count");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert_eq!(readme.lines().count(), 3, "{readme}");
    assert!(dir.join("fabric-guest/src/lib.rs").is_file());
    // A second `new` over it is refused, and leaves it as it was.
    let again = sb
        .fabric()
        .current_dir(sb.dir.path())
        .args(["new", "word-count"])
        .output_in_time()
        .unwrap();
    assert_eq!(again.status.code(), Some(2), "{}", describe(&again));
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        describe(&again)
    );

    // The template's own test passes on the host.
    let cargo = PathBuf::from("cargo");
    let tested = in_crate(&sb, &dir, &cargo)
        .args(["test", "--quiet"])
        .output_within(BUILD)
        .unwrap();
    ok(&tested, "cargo test in the new crate");

    // `fabric exec .` builds it (cargo's own output on stderr) and runs it.
    let fabric = fabric_bin();
    let ran = in_crate(&sb, &dir, &fabric)
        .args(["exec", ".", "--input", "input.json", "--", "--upper"])
        .output_within(BUILD)
        .unwrap();
    ok(&ran, "fabric exec .");
    assert!(
        text(&ran.stderr).contains("Compiling word-count"),
        "{}",
        describe(&ran)
    );
    let answer: serde_json::Value = serde_json::from_slice(&ran.stdout).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"lines": 3, "words": 9, "longest": "QUICK"})
    );

    // On a cluster: submitted from the crate dir, not rebuilt (unchanged).
    let (mut up, profile, _) = up_one_worker_in(&sb, &[]);
    let submitted = in_crate(&sb, &dir, &fabric)
        .arg("--cluster")
        .arg(&profile)
        .args(["submit", ".", "--input", "input.json", "--wait"])
        .output_within(BUILD)
        .unwrap();
    ok(&submitted, "fabric submit . --wait");
    assert!(
        !text(&submitted.stderr).contains("Compiling"),
        "{}",
        describe(&submitted)
    );
    let answer: serde_json::Value = serde_json::from_slice(&submitted.stdout).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"lines": 3, "words": 9, "longest": "quick"})
    );

    // A crate with two binaries needs --bin, which picks one.
    std::fs::create_dir_all(dir.join("src/bin")).unwrap();
    std::fs::write(
        dir.join("src/bin/hello.rs"),
        "fn main() { println!(\"hello from a second binary\"); }\n",
    )
    .unwrap();
    let two = in_crate(&sb, &dir, &fabric)
        .args(["exec", "."])
        .output_within(BUILD)
        .unwrap();
    assert_eq!(two.status.code(), Some(2), "{}", describe(&two));
    assert!(
        text(&two.stderr).contains("builds 2 binaries (")
            && text(&two.stderr).contains("--bin NAME"),
        "{}",
        describe(&two)
    );
    let picked = in_crate(&sb, &dir, &fabric)
        .args(["exec", ".", "--bin", "hello"])
        .output_within(BUILD)
        .unwrap();
    ok(&picked, "fabric exec . --bin hello");
    assert_eq!(text(&picked.stdout), "hello from a second binary\n");

    // A crate that does not compile: exit 2, cargo's errors shown, nothing
    // submitted.
    let main = dir.join("src/main.rs");
    let mut source = std::fs::read_to_string(&main).unwrap();
    source.push_str("\nfn broken() -> u32 { \"not a number\" }\n");
    std::fs::write(&main, source).unwrap();
    let failed = in_crate(&sb, &dir, &fabric)
        .arg("--cluster")
        .arg(&profile)
        .args(["submit", ".", "--bin", "word-count", "--wait"])
        .output_within(BUILD)
        .unwrap();
    assert_eq!(failed.status.code(), Some(2), "{}", describe(&failed));
    let stderr = text(&failed.stderr);
    assert!(
        stderr.contains("mismatched types") && stderr.contains("src/main.rs"),
        "{stderr}"
    );
    assert!(
        stderr.contains("cargo build --release --target wasm32-wasip1 failed"),
        "{stderr}"
    );
    let tasks = in_crate(&sb, &dir, &fabric)
        .arg("--cluster")
        .arg(&profile)
        .args(["tasks", "--json"])
        .output_in_time()
        .unwrap();
    ok(&tasks, "fabric tasks");
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&tasks.stdout).unwrap();
    assert_eq!(listed.len(), 1, "only the good submit: {listed:?}");
    up.terminate(Duration::from_secs(30));
}

#[test]
fn bash_completion_completes_a_subcommand_and_man_pages_render() {
    let sb = Sandbox::new();
    let script = sb
        .fabric()
        .args(["completions", "bash"])
        .output_in_time()
        .unwrap();
    ok(&script, "fabric completions bash");
    let path = sb.write("fabric.bash", &script.stdout);
    let completed = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(fabric subm); COMP_CWORD=1; COMP_LINE='fabric subm'; COMP_POINT=11; \
             _fabric fabric subm fabric; echo \"${{COMPREPLY[@]}}\"",
            path.display()
        ))
        .output_in_time()
        .unwrap();
    ok(&completed, "the completion function");
    assert_eq!(
        text(&completed.stdout).trim(),
        "submit",
        "{}",
        describe(&completed)
    );

    for (shell, head) in [("zsh", "#compdef fabric"), ("fish", "complete -c fabric")] {
        let out = sb
            .fabric()
            .args(["completions", shell])
            .output_in_time()
            .unwrap();
        ok(&out, shell);
        assert!(
            text(&out.stdout).contains(head),
            "{shell}: {}",
            describe(&out)
        );
    }

    let man = sb.fabric().arg("man").output_in_time().unwrap();
    ok(&man, "fabric man");
    assert!(
        text(&man.stdout).contains(".TH fabric "),
        "{}",
        describe(&man)
    );
    let submit = sb
        .fabric()
        .args(["man", "submit"])
        .output_in_time()
        .unwrap();
    ok(&submit, "fabric man submit");
    let page = text(&submit.stdout);
    assert!(
        page.contains(".TH fabric-submit") && page.contains("wait"),
        "{page}"
    );
    let nope = sb
        .fabric()
        .args(["man", "frobnicate"])
        .output_in_time()
        .unwrap();
    assert_eq!(nope.status.code(), Some(2), "{}", describe(&nope));
    assert!(
        text(&nope.stderr).contains("no subcommand \"frobnicate\""),
        "{}",
        describe(&nope)
    );
}
