//! The README's native-command blocks, run as written against a real
//! `fabric up --allow ...` (the registry of every block is in readme.rs).

use std::process::Command;
use std::time::Duration;

use fabric_tests::harness::cluster::fabric_cmd;
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::process::Proc;
use fabric_tests::harness::readme::{block, shell, words};
use fabric_tests::harness::sandbox::{Sandbox, describe};

/// `fabric up` with `args` in `sb`'s home on a free port, once its worker
/// joined.
fn up(sb: &Sandbox, args: &[String]) -> Proc {
    let mut cmd = fabric_cmd(sb, None);
    cmd.args(args).env("FABRIC_LISTEN", "127.0.0.1:0");
    let mut up = Proc::spawn("up", cmd, sb.dir.path());
    up.wait_for_line("ready", Duration::from_secs(60));
    up.wait_for_stderr("joined", Duration::from_secs(30));
    up
}

#[test]
fn the_native_commands_run_as_written() {
    let sb = Sandbox::new();
    let b = block("fabric up --allow cc");
    let mut up = up(&sb, &words(&b.lines[0])[1..]);
    assert_eq!(b.lines.len(), 4, "{:?}", b.lines);
    let mut printed = Vec::new();
    for line in &b.lines[1..] {
        // The line as a shell runs it (pipes and quotes included), with
        // this build's `fabric` first on PATH.
        let shell_line = line.split(" # ").next().unwrap_or(line);
        let out = shell(&sb, shell_line);
        assert_eq!(
            out.status.code(),
            Some(0),
            "README line `{line}`: {}",
            describe(&out)
        );
        printed.push((
            line,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            describe(&out),
        ));
    }
    // `cc --version`: the compiler's banner.
    let (line, text, all) = &printed[0];
    assert!(
        text.contains("gcc") || text.contains("clang"),
        "README line `{line}`: {all}"
    );
    // `echo hello | ... tr a-z A-Z`: exactly the upper-cased input.
    let (line, text, all) = &printed[1];
    assert_eq!(text, "HELLO\n", "README line `{line}`: {all}");
    // `--detach`: the task id, and only that; the task then runs to its
    // end and says `done`.
    let (line, text, all) = &printed[2];
    let id = text.trim();
    assert_eq!(text.lines().count(), 1, "README line `{line}`: {all}");
    assert_eq!(id.len(), 36, "README line `{line}` prints a task id: {all}");
    let waited = shell(&sb, &format!("fabric wait {id}"));
    assert_eq!(waited.status.code(), Some(0), "{}", describe(&waited));
    assert_eq!(
        String::from_utf8_lossy(&waited.stdout),
        "done\n",
        "{}",
        describe(&waited)
    );
    up.sigterm();
    assert!(up.wait(Duration::from_secs(30)).success());
}

#[test]
fn the_file_staging_line_compiles_links_and_runs() {
    let sb = Sandbox::new();
    let b = block("fabric run --file hello.c");
    let args = ["up", "--allow", "cc"].map(String::from);
    let mut up = up(&sb, &args);
    sb.write(
        "hello.c",
        b"#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n",
    );
    let out = shell(&sb, &b.lines.join("\n"));
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let ran = Command::new(sb.dir.path().join("hello"))
        .output_in_time()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&ran.stdout), "hello\n");
    up.sigterm();
    assert!(up.wait(Duration::from_secs(30)).success());
}
