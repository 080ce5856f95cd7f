use super::*;

fn job(dir: &Path, text: &str) -> anyhow::Result<Loaded> {
    let path = dir.join("job.toml");
    std::fs::write(&path, text).unwrap();
    load(&path)
}

fn err(dir: &Path, text: &str) -> String {
    match job(dir, text) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn a_job_file_is_read_with_its_paths_relative_to_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("parts")).unwrap();
    for f in ["b.txt", "a.txt"] {
        std::fs::write(dir.path().join("parts").join(f), f).unwrap();
    }
    let loaded = job(
        dir.path(),
        r#"
[[step]]
name = "map"
command = ["wc", "-w", "{}"]
each = "parts/*.txt"
timeout = "5s"
memory = "64MiB"
priority = "high"
retries = 2
require = ["gpu"]
env = { LANG = "C" }

[[step]]
name = "reduce"
command = ["sh", "-c", "cat"]
input_from = ["map"]
"#,
    )
    .unwrap();
    let spec = &loaded.spec;
    assert_eq!(spec.name, "job", "the file's stem names it");
    let map = &spec.steps[0];
    let items: Vec<&str> = map.each.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(items, ["parts/a.txt", "parts/b.txt"]);
    assert_eq!(map.each[0].blob, BlobRef::of(b"a.txt"));
    assert_eq!(map.args, ["-w", "{}"]);
    let limits = map.limits.unwrap();
    assert_eq!((limits.timeout_ms, limits.memory_bytes), (5_000, 64 << 20));
    assert_eq!(map.priority, fabric_proto::Priority::High);
    assert_eq!(
        (map.retries, map.require.clone()),
        (2, vec!["gpu".to_owned()])
    );
    assert_eq!(map.env, [("LANG".to_owned(), "C".to_owned())]);
    assert_eq!(spec.steps[1].input_from, ["map"]);
}

#[test]
fn bad_job_files_are_refused_in_their_own_terms() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(
        err(d, "[[step]]\nname = \"a\"\ncommand = [\"x\"]\ncolour = 1\n")
            .contains("unknown field `colour`")
    );
    assert!(
        err(
            d,
            "[[step]]\nname = \"a\"\ncommand = [\"x\"]\nmodule = \"m.wasm\"\n"
        )
        .contains("a module or a command, not both")
    );
    assert!(err(d, "[[step]]\nname = \"a\"\n").contains("give a module"));
    assert!(
        err(
            d,
            "[[step]]\nname = \"a\"\ncommand = [\"x\"]\neach = \"none/*.c\"\n"
        )
        .contains("matches no file")
    );
    assert!(
        err(
            d,
            "[[step]]\nname = \"a\"\ncommand = [\"x\"]\ntimeout = \"soon\"\n"
        )
        .contains("timeout")
    );
    let cycle = "[[step]]\nname = \"a\"\nafter = [\"b\"]\ncommand = [\"x\"]\n[[step]]\nname = \"b\"\nafter = [\"a\"]\ncommand = [\"x\"]\n";
    assert!(
        err(d, cycle).contains("the steps form a cycle: "),
        "{}",
        err(d, cycle)
    );
    // Over the size bound: refused before it is parsed.
    let big = format!("# {}\n", "x".repeat(MAX_JOB_FILE_BYTES));
    assert!(err(d, &big).contains("a job file has at most 1048576"));
    // A fan-out's files stay under the job's dir.
    std::fs::write(d.join("outside.c"), "").unwrap();
    let sub = d.join("sub");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(
        sub.join("job.toml"),
        "[[step]]\nname = \"a\"\ncommand = [\"x\"]\neach = \"../*.c\"\n",
    )
    .unwrap();
    let e = format!("{:#}", load(&sub.join("job.toml")).err().unwrap());
    assert!(e.contains("under the job's dir"), "{e}");
}

#[test]
fn a_steps_secrets_come_from_a_file_or_the_environment_never_the_job_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("token.txt"), "from-a-file\n").unwrap();
    let loaded = job(
        d,
        "[[step]]\nname = \"a\"\ncommand = [\"x\"]\nsecrets = { TOKEN = \"file:token.txt\", HOME_DIR = \"env:HOME\" }\n",
    )
    .unwrap();
    let secrets = &loaded.spec.steps[0].secrets;
    let by_name = |n: &str| {
        secrets
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.expose().to_owned())
    };
    assert_eq!(by_name("TOKEN").as_deref(), Some("from-a-file"));
    assert_eq!(by_name("HOME_DIR"), std::env::var("HOME").ok());
    assert!(
        !format!("{:?}", loaded.spec).contains("from-a-file"),
        "a job's Debug shows no secret"
    );
    let inline = err(
        d,
        "[[step]]\nname = \"a\"\ncommand = [\"x\"]\nsecrets = { TOKEN = \"hunter2\" }\n",
    );
    assert!(inline.contains("not the value itself"), "{inline}");
    assert!(
        !inline.contains("hunter2"),
        "the refusal does not echo it: {inline}"
    );
    assert!(
        err(
            d,
            "[[step]]\nname = \"a\"\ncommand = [\"x\"]\nsecrets = { T = \"env:NO_SUCH_VAR_4471\" }\n"
        )
        .contains("no variable NO_SUCH_VAR_4471")
    );
}
