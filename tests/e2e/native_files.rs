//! `fabric run` with files: a C compile whose object comes back, staged
//! files and output globs, and examples/native built with make through the
//! cluster.

use std::path::Path;
use std::process::Command;

use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::native::{NativeCluster as Cluster, text};
use fabric_tests::harness::sandbox::{describe, json_of};

#[test]
fn a_c_compile_through_fabric_run_links_and_runs() {
    let c = Cluster::start(&["sh"]);
    let source = c.sb.write(
        "hello.c",
        b"#include <stdio.h>\nint main(void) { puts(\"hello from a sandboxed compile\"); return 3; }\n",
    );
    // The source goes in as stdin; the object comes back as stdout.
    let out = c.run(
        &[
            "--input",
            source.to_str().unwrap(),
            "--timeout",
            "60s",
            "--quiet",
        ],
        &[
            "sh",
            "-c",
            "cc -x c -c - -o /work/hello.o && cat /work/hello.o",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        out.stdout.starts_with(b"\x7fELF"),
        "not an object: {}",
        describe(&out)
    );
    let object = c.sb.write("hello.o", &out.stdout);
    let exe = c.sb.dir.path().join("hello");
    let linked = Command::new("cc")
        .arg(&object)
        .arg("-o")
        .arg(&exe)
        .output_in_time()
        .unwrap();
    assert!(linked.status.success(), "{}", describe(&linked));
    let ran = Command::new(&exe).output_in_time().unwrap();
    assert_eq!(ran.status.code(), Some(3));
    assert_eq!(text(&ran.stdout), "hello from a sandboxed compile\n");
}

#[test]
fn files_go_in_and_outputs_come_back() {
    let c = Cluster::start(&["sh", "cc"]);
    let home = c.sb.dir.path();
    std::fs::create_dir_all(home.join("src/inc")).unwrap();
    std::fs::write(
        home.join("src/inc/greet.h"),
        b"#define GREETING \"hi from a staged header\"\n",
    )
    .unwrap();
    std::fs::write(
        home.join("src/main.c"),
        b"#include <stdio.h>\n#include \"inc/greet.h\"\nint main(void) { puts(GREETING); return 0; }\n",
    )
    .unwrap();
    let run = |flags: &[&str], command: &[&str]| {
        c.cmd()
            .current_dir(home)
            .arg("run")
            .args(flags)
            .arg("--")
            .args(command)
            .output_in_time()
            .unwrap()
    };
    // A directory staged whole; the object comes back under its path.
    let out = run(
        &["--file", "src", "--output", "src/*.o", "--timeout", "60s"],
        &["cc", "-c", "src/main.c", "-o", "src/main.o"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("wrote 1 output file into .: src/main.o"),
        "{}",
        describe(&out)
    );
    let exe = home.join("main");
    let linked = Command::new("cc")
        .arg(home.join("src/main.o"))
        .arg("-o")
        .arg(&exe)
        .output_in_time()
        .unwrap();
    assert!(linked.status.success(), "{}", describe(&linked));
    assert_eq!(
        text(&Command::new(&exe).output_in_time().unwrap().stdout),
        "hi from a staged header\n"
    );

    // A link pointing out of the scratch dir is never read back, and the
    // outputs are kept with the result for `result --output-dir`.
    let out = run(
        &["--detach", "--output", "*.txt"],
        &[
            "sh",
            "-c",
            "echo mine > made.txt; ln -s /etc/hostname stolen.txt",
        ],
    );
    let id = text(&out.stdout).trim().to_owned();
    let out = c.cmd().args(["wait", &id]).output_in_time().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let dir = home.join("later");
    let out = c
        .cmd()
        .args(["result", &id, "--output-dir"])
        .arg(&dir)
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert_eq!(std::fs::read(dir.join("made.txt")).unwrap(), b"mine\n");
    assert!(!dir.join("stolen.txt").exists());

    // The CLI never writes through a link already in its directory.
    let elsewhere = home.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, home.join("build")).unwrap();
    let out = run(
        &["--output", "build/*.txt"],
        &["sh", "-c", "mkdir build; echo x > build/planted.txt"],
    );
    assert_ne!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("through the link"),
        "{}",
        describe(&out)
    );
    assert!(!elsewhere.join("planted.txt").exists());

    // Paths that leave the dirs are refused before anything runs.
    for flags in [["--file", "/etc/passwd"], ["--output", "../*"]] {
        let out = run(&flags, &["sh", "-c", "true"]);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {}", describe(&out));
    }
}

/// examples/native: a multi-file C program whose compiles run on the
/// cluster (`make -j4 CC=./fabric-cc`), linked and run here.
#[test]
fn the_native_example_builds_with_make_through_fabric_run() {
    let c = Cluster::start(&["cc"]);
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/native");
    let dir = c.sb.dir.path().join("native");
    copy_dir(&example, &dir);
    let _ = std::fs::remove_file(dir.join("stats"));
    let mut make = Command::new("make");
    c.sb.isolate(&mut make);
    let out = make
        .current_dir(&dir)
        .args(["-j4", "CC=./fabric-cc"])
        .env("FABRIC", fabric_tests::harness::sandbox::fabric_bin())
        .env("FABRIC_CLUSTER", &c.profile)
        .output_in_time()
        .expect("make (apt-get install make)");
    assert!(out.status.success(), "{}", describe(&out));
    // Every object came back from the cluster.
    for o in ["main", "mean", "median", "parse", "variance"] {
        assert!(
            dir.join(format!("src/{o}.o")).exists(),
            "{o}.o: {}",
            describe(&out)
        );
    }
    let ran = Command::new(dir.join("stats"))
        .args(["1 2 3", "4", "10"])
        .output_in_time()
        .unwrap();
    assert_eq!(
        text(&ran.stdout),
        "n=5 mean=4.00 variance=10.00 median=3.00\n",
        "{}",
        describe(&ran)
    );
    // Five compiles are five tasks in the history.
    let out = c.cmd().args(["tasks", "--json"]).output_in_time().unwrap();
    assert_eq!(
        json_of(&out).as_array().map(Vec::len),
        Some(5),
        "{}",
        describe(&out)
    );
}

/// `--file .` stages the current directory's contents, so fabric-cc
/// compiles a project whose sources sit where make runs (`dirname` of
/// `lapi.c` is `.`).
#[test]
fn file_dot_stages_the_current_directory_so_fabric_cc_compiles_there() {
    let c = Cluster::start(&["cc"]);
    let dir = c.sb.dir.path().join("flat");
    std::fs::create_dir_all(dir.join("inc")).unwrap();
    std::fs::write(dir.join("inc/answer.h"), "#define ANSWER 42\n").unwrap();
    std::fs::write(
        dir.join("main.c"),
        "#include \"inc/answer.h\"\nint main(void) { return ANSWER; }\n",
    )
    .unwrap();
    let cc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/native/fabric-cc");
    let mut compile = Command::new("sh");
    c.sb.isolate(&mut compile);
    let out = compile
        .current_dir(&dir)
        .arg(&cc)
        .args(["-c", "main.c", "-o", "main.o"])
        .env("FABRIC", fabric_tests::harness::sandbox::fabric_bin())
        .env("FABRIC_CLUSTER", &c.profile)
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let object = std::fs::read(dir.join("main.o")).unwrap();
    assert!(object.starts_with(b"\x7fELF"), "main.o is not an object");
    // By hand, the same: `.` and `./` both stage the directory's contents
    // under their own names.
    for dot in [".", "./"] {
        let out = c
            .cmd()
            .current_dir(&dir)
            .args(["run", "-q", "--file", dot, "--", "cc", "-E", "main.c"])
            .output_in_time()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{dot}: {}", describe(&out));
        assert!(
            text(&out.stdout).contains("return 42;"),
            "{}",
            describe(&out)
        );
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}
