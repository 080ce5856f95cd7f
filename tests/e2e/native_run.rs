//! `fabric run`: allow-listed native commands in the worker's process
//! sandbox, against a real `fabric up` with real helpers, namespaces,
//! landlock, seccomp, rlimits and cgroups (as this host offers them; the
//! worker's start line says which, and the first test checks it).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::native::{NativeCluster as Cluster, none_left, processes_with, text};
use fabric_tests::harness::process::Proc;
use fabric_tests::harness::sandbox::{describe, json_of};

#[test]
fn an_allowed_command_keeps_its_exit_code_and_its_output_streams_live() {
    let c = Cluster::start(&["sh", "echo"]);
    let layers = c.up.stderr();
    assert!(layers.contains("sandbox layers: namespaces on"), "{layers}");
    for layer in [
        "landlock",
        "seccomp",
        "unprivileged uid",
        "cgroup memory",
        "cgroup pids",
    ] {
        assert!(
            layers.contains(&format!("{layer} on")),
            "this host should give tasks {layer}: {layers}"
        );
    }

    let out = c.run(&[], &["echo", "hello", "native"]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "hello native\n");
    let out = c.run(&[], &["sh", "-c", "echo out; echo err >&2; exit 7"]);
    assert_eq!(out.status.code(), Some(7), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "out\n");
    assert!(text(&out.stderr).contains("err\n"), "{}", describe(&out));

    // The first line arrives while the command still runs: its shell
    // (named by a marker as its $0) is still a process on the host, and
    // `fabric run` has not ended. Output kept until the end would arrive
    // after the shell was gone.
    let marker = format!("run-live-{}", std::process::id());
    let mut cmd = c.cmd();
    cmd.args(["run", "--", "sh", "-c", "echo first; sleep 3; echo second"]);
    cmd.arg(&marker);
    let mut live = Proc::spawn("run-live", cmd, c.sb.dir.path());
    let before = live.wait_for_line("first", Duration::from_secs(30));
    assert!(before.is_empty(), "{before:?}");
    assert!(
        !processes_with(&marker).is_empty(),
        "the command had ended when its first line arrived"
    );
    assert!(
        live.try_wait().is_none(),
        "fabric run ended before the command did"
    );
    live.wait_for_line("second", Duration::from_secs(30));
    assert!(live.wait(Duration::from_secs(30)).success());

    // stdin, env and --json.
    let out = c
        .cmd()
        .args([
            "run",
            "--json",
            "--env",
            "GREETING=hey",
            "--",
            "sh",
            "-c",
            "echo $GREETING",
        ])
        .output_in_time()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(v["stdout"], "hey\n", "{v}");
    assert_eq!(v["exit_code"], 0, "{v}");
}

#[test]
fn only_allow_listed_programs_run() {
    let c = Cluster::start(&["echo"]);
    // Not on the list.
    let out = c.run(&[], &["sh", "-c", "echo ran"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("no worker allows the program \"sh\""),
        "{}",
        describe(&out)
    );
    assert!(!text(&out.stdout).contains("ran"));
    // Another file of the same name.
    let fake = c.sb.dir.path().join("bin/echo");
    std::fs::create_dir_all(fake.parent().unwrap()).unwrap();
    std::fs::copy("/bin/sh", &fake).unwrap();
    let out = c.run(&[], &[fake.to_str().unwrap(), "-c", "echo ran"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    // --fuel is a wasm limit: `run` has no such flag, nor offers one.
    let out = c.run(&["--fuel", "1000"], &["echo", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(text(&out.stderr).contains("'--fuel'"), "{}", describe(&out));
    let help = c.cmd().args(["run", "--help"]).output_in_time().unwrap();
    assert_eq!(help.status.code(), Some(0), "{}", describe(&help));
    assert!(
        !text(&help.stdout).contains("--fuel"),
        "{}",
        describe(&help)
    );
}

#[test]
fn an_allowed_program_may_be_named_by_any_system_path_of_it() {
    let c = Cluster::start(&["sh"]);
    // `/bin` links to `/usr/bin` here: /bin/sh is the allowed sh.
    for program in ["sh", "/bin/sh", "/usr/bin/sh"] {
        let out = c.run(&[], &[program, "-c", "echo ran"]);
        assert_eq!(out.status.code(), Some(0), "{program}: {}", describe(&out));
        assert_eq!(text(&out.stdout), "ran\n", "{program}");
    }
}

#[test]
fn quiet_prints_only_the_commands_output_even_when_it_fails() {
    let c = Cluster::start(&["sh"]);
    let dir = tempfile::tempdir().unwrap();
    let out = c
        .cmd()
        .current_dir(dir.path())
        .args(["run", "-q", "--output", "out.txt", "--"])
        .args(["sh", "-c", "echo made > out.txt; echo said; exit 3"])
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", describe(&out));
    assert_eq!(text(&out.stdout), "said\n");
    assert_eq!(text(&out.stderr), "", "no summary, no note of the files");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "made\n"
    );
    // Without -q both are said.
    let out = c
        .cmd()
        .current_dir(dir.path())
        .args(["run", "--output", "out.txt", "--"])
        .args(["sh", "-c", "echo made > out.txt; exit 3"])
        .output_in_time()
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("fabric: failed (exit 3)") && stderr.contains("wrote 1 output file"),
        "{stderr}"
    );
}

#[test]
fn the_sandbox_hides_secrets_the_host_and_its_network() {
    let c = Cluster::start(&["sh", "cat", "bash"]);
    let data_dir = c.sb.dir.path().join("data");
    let key = find(&data_dir, "node.key").expect("the worker's node.key");
    let marker = format!("fabric-escape-{}", std::process::id());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();

    // cat itself ran and could not open them: its own exit code 1 and
    // message, and nothing read (not a refusal, exit 2, or a sandbox
    // failure, 125).
    for secret in ["/etc/shadow", key.to_str().unwrap()] {
        let out = c.run(&[], &["cat", secret]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "cat {secret}: {}",
            describe(&out)
        );
        let err = text(&out.stderr);
        let refused = [
            format!("cat: {secret}: No such file or directory"),
            format!("cat: {secret}: Permission denied"),
        ];
        assert!(
            refused.iter().any(|r| err.contains(r.as_str())),
            "cat {secret} should fail to open it: {}",
            describe(&out)
        );
        assert!(out.stdout.is_empty(), "cat {secret}: {}", describe(&out));
    }
    // Writes land in the task's own /tmp and /work, never on the host.
    let script = format!(
        "echo x > /tmp/{marker} && echo x > /work/{marker} && echo wrote; echo x > /{marker} || echo root-refused"
    );
    let out = c.run(&[], &["sh", "-c", &script]);
    assert!(text(&out.stdout).contains("wrote"), "{}", describe(&out));
    assert!(
        text(&out.stdout).contains("root-refused"),
        "{}",
        describe(&out)
    );
    assert!(!Path::new("/tmp").join(&marker).exists());
    assert!(!Path::new("/").join(&marker).exists());
    assert!(find(Path::new("/tmp"), &marker).is_none());
    // No network: the host's loopback port is out of reach.
    let out = c.run(
        &["--timeout", "10s"],
        &[
            "bash",
            "-c",
            &format!("echo hi > /dev/tcp/127.0.0.1/{port} && echo connected"),
        ],
    );
    assert!(
        !text(&out.stdout).contains("connected"),
        "{}",
        describe(&out)
    );
    assert!(
        listener.accept().is_err(),
        "the task reached the host's port"
    );
    // Another uid than the worker's, and its own hostname.
    let out = c.run(
        &[],
        &["sh", "-c", "id -u; cat /proc/self/uid_map; hostname"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let shown = text(&out.stdout);
    assert!(shown.starts_with("1000\n"), "{shown}");
    let host_uid: u32 = shown
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(host_uid >= 200_000, "runs as host uid {host_uid}: {shown}");
    assert!(shown.contains("fabric-task"), "{shown}");
}

#[test]
fn timeouts_cancels_fork_bombs_and_memory_hogs_are_contained() {
    let c = Cluster::start(&["sh", "echo"]);
    // A timeout ends the whole tree.
    let out = c.run(
        &["--timeout", "1s"],
        &["sh", "-c", "sleep 9731 & sleep 9731 & wait"],
    );
    assert_eq!(out.status.code(), Some(124), "{}", describe(&out));
    none_left("sleep 9731");

    // A cancel too.
    let out = c
        .cmd()
        .args([
            "run",
            "--detach",
            "--",
            "sh",
            "-c",
            "sleep 9732 & sleep 9732 & wait",
        ])
        .output_in_time()
        .unwrap();
    let id = text(&out.stdout).trim().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes_with("sleep 9732").len() < 2 {
        assert!(Instant::now() < deadline, "the task never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = c.cmd().args(["cancel", &id]).output_in_time().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    none_left("sleep 9732");

    // A fork bomb hits the process limits and ends; the worker serves on.
    let bomb = "b() { b | b & }; b; sleep 2; echo bomb-9733-done";
    let out = c.run(&["--timeout", "20s"], &["sh", "-c", bomb]);
    assert!(
        text(&out.stderr).contains("Cannot fork"),
        "{}",
        describe(&out)
    );
    none_left("bomb-9733");
    // A memory hog is stopped at its limit.
    let out = c.run(
        &["--memory", "32MiB", "--timeout", "20s"],
        &["sh", "-c", "x=xxxxxxxxxxxxxxxx; while :; do x=$x$x; done"],
    );
    // The cgroup's limit acts (this host has the memory layer): the
    // result says memory exceeded, exit 126.
    assert_eq!(out.status.code(), Some(126), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("memory_exceeded"),
        "{}",
        describe(&out)
    );
    let out = c.run(&[], &["echo", "still", "serving"]);
    assert_eq!(text(&out.stdout), "still serving\n", "{}", describe(&out));
}

/// The first path under `dir` whose file name is `name`.
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let p = entry.path();
        if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
        if p.is_dir()
            && !p.is_symlink()
            && let Some(found) = find(&p, name)
        {
            return Some(found);
        }
    }
    None
}

/// Sends SIGINT (Ctrl-C) to a process.
fn interrupt(p: &Proc) {
    let status = std::process::Command::new("kill")
        .args(["-INT", &p.pid().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn ctrl_c_on_run_cancels_the_remote_command_and_keeps_its_run_time() {
    let c = Cluster::start(&["sh"]);
    let marker = format!("sleep 97{}", std::process::id() % 100);
    let mut cmd = c.cmd();
    cmd.args(["run", "--", "sh", "-c"])
        .arg(format!("echo started; {marker}"));
    let mut run = Proc::spawn("run", cmd, c.sb.dir.path());
    run.wait_for_line("started", Duration::from_secs(60));
    processes_with_marker_started(&marker);
    std::thread::sleep(Duration::from_millis(300));
    interrupt(&run);
    let status = run.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(130), "{}", run.stderr());
    let stderr = run.stderr();
    assert!(
        stderr.contains("cancelling task") && stderr.contains("cancelled"),
        "{stderr}"
    );
    // Nothing of it runs on, and its record says how long it ran.
    none_left(&marker);
    let listed = c.cmd().args(["tasks", "--json"]).output_in_time().unwrap();
    let id = json_of(&listed)[0]["id"].as_str().unwrap().to_owned();
    // The cancel is recorded at once; the worker's report of the stopped
    // run then adds its output to the record.
    let deadline = Instant::now() + Duration::from_secs(30);
    let task = loop {
        let result = c
            .cmd()
            .args(["result", &id, "--json"])
            .output_in_time()
            .unwrap();
        let task = json_of(&result);
        if task["stdout"] != "" || Instant::now() > deadline {
            break task;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let task = &task;
    assert_eq!(task["status"], "cancelled", "{task}");
    assert!(
        task["duration_ms"].as_u64().is_some_and(|ms| ms >= 300),
        "a cancelled run keeps its run time: {task}"
    );
    assert_eq!(task["stdout"], "started\n", "and what it streamed: {task}");
    // A timeout is routine too. Neither leaves a warning on the console,
    // which is for what an operator must act on.
    let out = c.run(&["--timeout", "1s"], &["sh", "-c", "sleep 30"]);
    assert_eq!(out.status.code(), Some(124), "{}", describe(&out));
    let console = c.up.stderr();
    assert!(!console.contains(" WARN "), "{console}");
}

fn processes_with_marker_started(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while processes_with(marker).is_empty() {
        assert!(Instant::now() < deadline, "{marker} never started");
        std::thread::sleep(Duration::from_millis(20));
    }
}
