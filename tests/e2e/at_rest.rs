//! The data at rest, end to end on the real binary: nothing a task brings
//! lies in plaintext on a disk, a secret is shown nowhere, keys rotate and
//! rewrap, a wrong key changes nothing, and the audit trail says who.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use fabric_tests::harness::browser::Browser;
use fabric_tests::harness::cluster::{fabric_cmd, start_dispatcher};
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::native::{task_dir, text};
use fabric_tests::harness::rest::RestCluster;
use fabric_tests::harness::sandbox::{Sandbox, describe, guest, json_of};
use serde_json::json;

/// In the task's input, args, env and output.
const MARKER: &str = "PLAIN-MARKER-4d1c";
/// The task's secret.
const SECRET: &str = "s3cret-VALUE-88e0";

/// Every file under `dir` (recursively) whose bytes hold `needle`.
pub(crate) fn files_holding(dir: &Path, needle: &str) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return hits;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            hits.extend(files_holding(&p, needle));
        } else if meta.is_file()
            && std::fs::read(&p)
                .unwrap_or_default()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
        {
            hits.push(p);
        }
    }
    hits
}

/// The script a native task runs: proves it got its secret without
/// printing it or naming it whole (its args are not secret), and prints
/// the marker (its output).
fn script() -> String {
    let (head, tail) = SECRET.split_at(6);
    format!(
        "read line; case \"$TOKEN\" in {head}*) ;; *) exit 3;; esac; case \"$TOKEN\" in *{tail}) ;; *) exit 4;; esac; sleep 2; echo \"out $line $GREETING {MARKER}\""
    )
}

#[test]
fn nothing_a_task_brings_is_on_disk_in_plaintext_and_its_secret_shows_nowhere() {
    let c = RestCluster::start_logged(&["--allow", "sh"], "debug");
    let data = c.sb.dir.path().join("data");
    let input = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(input.path(), format!("in {MARKER}\n")).unwrap();

    // By the CLI: `fabric run --secret`, detached, so its task dir on the
    // worker can be looked at while it runs.
    let out = c
        .cmd()
        .args(["run", "--detach", "--secret"])
        .arg(format!("TOKEN={SECRET}"))
        .args(["--env", &format!("GREETING={MARKER}")])
        .arg("--input")
        .arg(input.path())
        .args(["--", "sh", "-c", &script()])
        .output_in_time()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let id = text(&out.stdout).trim().to_owned();
    let dir = task_dir(&id);
    assert_eq!(
        files_holding(&dir, SECRET),
        Vec::<PathBuf>::new(),
        "the worker wrote the secret to its disk"
    );
    let out = c
        .cmd()
        .args(["wait", &id, "--json"])
        .output_in_time()
        .unwrap();
    let v = json_of(&out);
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(
        v["stdout"],
        format!("out in {MARKER} {MARKER} {MARKER}\n"),
        "the task got its secret, env, input and args: {v}"
    );

    // By REST, with secrets in the body; followed on its event stream,
    // while the cluster's feed is read from before it is submitted.
    let (feed_url, feed_token) = (c.url.clone(), c.admin.clone());
    let feed = std::thread::spawn(move || {
        let resp = ureq::get(&format!("{feed_url}/api/v1/events"))
            .set("Authorization", &format!("Bearer {feed_token}"))
            .timeout(Duration::from_secs(20))
            .call()
            .expect("the cluster feed");
        let mut lines = Vec::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(resp.into_reader())) {
            let Ok(line) = line else { break };
            let finished = line.contains("finished");
            lines.push(line);
            if finished {
                break;
            }
        }
        lines.join("\n")
    });
    std::thread::sleep(Duration::from_millis(300));
    let rest_id = c.submit(&json!({
        "command": "sh",
        "args": ["-c", script()],
        "env": {"GREETING": MARKER},
        "secrets": {"TOKEN": SECRET},
        "input_b64": B64.encode(format!("in {MARKER}\n")),
    }));
    let events = c.sse(
        &format!("/api/v1/tasks/{rest_id}/events"),
        &c.admin,
        Duration::from_secs(60),
        |kind, _| kind == "end",
    );
    let end = events.last().map(|(_, d)| d.clone()).unwrap_or_default();
    assert_eq!(end["output"]["status"], "succeeded", "{events:?}");

    // Shown nowhere: CLI, REST, the cluster's event feed, the dashboard.
    let mut shown = Vec::new();
    for args in [
        vec!["status", id.as_str(), "--json"],
        vec!["status", id.as_str()],
        vec!["result", id.as_str(), "--json"],
        vec!["tasks", "--json"],
        vec!["tasks"],
    ] {
        let out = c.cmd().args(&args).output_in_time().unwrap();
        assert!(out.status.success(), "{args:?}: {}", describe(&out));
        shown.push((format!("fabric {args:?}"), describe(&out)));
    }
    let status = json_of(
        &c.cmd()
            .args(["status", &id, "--json"])
            .output_in_time()
            .unwrap(),
    );
    assert_eq!(
        status["secrets"],
        json!(["TOKEN"]),
        "names are shown: {status}"
    );
    for path in [
        format!("/api/v1/tasks/{id}"),
        format!("/api/v1/tasks/{rest_id}"),
        format!("/api/v1/tasks/{rest_id}/output"),
        "/api/v1/tasks".to_owned(),
    ] {
        let a = c.get(&path, Some(&c.admin));
        assert_eq!(a.status, 200, "{path}: {a:?}");
        shown.push((path, a.text));
    }
    assert_eq!(
        c.get(&format!("/api/v1/tasks/{rest_id}"), Some(&c.admin))
            .json["secrets"],
        json!(["TOKEN"])
    );
    shown.push(("task event stream".into(), format!("{events:?}")));
    let feed = feed.join().expect("the feed's reader");
    assert!(feed.contains(&rest_id), "the feed saw the task: {feed}");
    shown.push(("cluster event feed".into(), feed));

    let mut b = Browser::start();
    b.open(&format!("{}/#token={}", c.url, c.admin));
    let row = format!("document.querySelector('tr[data-task=\"{rest_id}\"]')");
    b.wait_for("the task's row", &format!("!!{row}"));
    b.eval(&format!("{row}.click(); true"));
    b.wait_for(
        "the task page with its secrets' names",
        "document.getElementById('detail-body').textContent.includes('secrets  TOKEN (values never shown)')",
    );
    let page = b.eval("document.documentElement.outerHTML");
    shown.push((
        "dashboard".into(),
        page.as_str().unwrap_or_default().to_owned(),
    ));

    drop(b);
    let logs = c.up.stderr();
    assert!(logs.contains("DEBUG"), "the cluster logged at debug (-vv)");
    shown.push(("the dispatcher's and worker's logs at -vv".into(), logs));
    for (where_, what) in &shown {
        assert!(
            !what.contains(SECRET),
            "the secret shows in {where_}: {what}"
        );
    }

    // Its value is gone once it ended: a retry of one that failed is
    // refused, saying why.
    let out = c
        .cmd()
        .args(["run", "--detach", "--secret"])
        .arg(format!("TOKEN={SECRET}"))
        .args(["--", "sh", "-c", "exit 1"])
        .output_in_time()
        .unwrap();
    let failed = text(&out.stdout).trim().to_owned();
    let out = c.cmd().args(["wait", &failed]).output_in_time().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let out = c.cmd().args(["retry", &failed]).output_in_time().unwrap();
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("ran with secrets (TOKEN)"),
        "{}",
        describe(&out)
    );

    // The audit trail names who cancelled over REST: the token.
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let held = c.submit(&json!({"command": "sh", "args": ["-c", "true"], "not_before": later}));
    let a = c.delete(&format!("/api/v1/tasks/{held}"), Some(&c.admin));
    assert_eq!(a.status, 200, "{a:?}");
    let audit = json_of(
        &c.cmd()
            .args(["admin", "audit", "--json"])
            .output_in_time()
            .unwrap(),
    );
    let cancel = audit
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|e| e["action"] == "cancelled" && e["task"] == held.as_str())
        })
        .unwrap_or_else(|| panic!("no cancel of {held} in the audit trail: {audit}"));
    assert!(
        cancel["actor"].as_str().unwrap_or("").starts_with("token "),
        "{cancel}"
    );

    // Nothing of it in plaintext in any file of the data dirs.
    for needle in [MARKER, SECRET] {
        assert_eq!(
            files_holding(&data, needle),
            Vec::<PathBuf>::new(),
            "{needle} lies in plaintext under {}",
            data.display()
        );
    }
    let health = c.get("/health", None);
    assert_eq!(health.json["keys"]["wrap"], "local", "{health:?}");
    assert_eq!(health.json["keys"]["active_key"], 1, "{health:?}");
}

fn key_file(sb: &Sandbox, name: &str) -> PathBuf {
    let out = fabric_cmd(sb, None)
        .args(["admin", "gen-key"])
        .output_in_time()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let key = text(&out.stdout);
    assert_eq!(key.trim().len(), 64, "{key}");
    sb.write(name, key.as_bytes())
}

fn fabric_json(sb: &Sandbox, profile: &Path, args: &[&str]) -> serde_json::Value {
    let out = fabric_cmd(sb, None)
        .arg("--cluster")
        .arg(profile)
        .args(args)
        .output_in_time()
        .unwrap();
    json_of(&out)
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

#[test]
fn keys_rotate_rewrap_and_a_wrong_key_changes_nothing() {
    let sb = Sandbox::new();
    let key = key_file(&sb, "fabric.key");
    let key = key.to_str().unwrap();
    let mut d = start_dispatcher(
        &sb,
        "d",
        "127.0.0.1:0",
        &["--no-mdns", "--key-file", key],
        None,
    );
    let w = fabric_tests::harness::cluster::start_worker(&sb, "w", &d, 2);
    let module = guest("wordfreq");
    let mut ids = Vec::new();
    for i in 0..3 {
        let input = sb.write(
            &format!("in{i}.txt"),
            format!("{MARKER} word{i}").as_bytes(),
        );
        let v = fabric_json(
            &sb,
            &d.profile,
            &[
                "submit",
                module.to_str().unwrap(),
                "--input",
                input.to_str().unwrap(),
                "--wait",
                "--json",
            ],
        );
        assert_eq!(v["status"], "succeeded", "{v}");
        ids.push((v["id"].as_str().unwrap().to_owned(), v["stdout"].clone()));
    }
    let keys = fabric_json(&sb, &d.profile, &["admin", "keys", "--census", "--json"]);
    assert_eq!(keys["wrap"], "operator", "{keys}");
    assert_eq!(keys["census"].as_array().map(Vec::len), Some(1), "{keys}");

    let rotated = fabric_json(
        &sb,
        &d.profile,
        &["admin", "rotate-key", "--rewrap", "--json"],
    );
    assert_eq!(rotated["rewrap"]["finished"], true, "{rotated}");
    let keys = fabric_json(&sb, &d.profile, &["admin", "keys", "--census", "--json"]);
    assert_eq!(
        keys["census"],
        json!([[2, keys["census"][0][1]]]),
        "only the new key seals: {keys}"
    );
    assert!(keys["census"][0][1].as_u64().unwrap() > 3, "{keys}");
    for (id, stdout) in &ids {
        let v = fabric_json(&sb, &d.profile, &["result", id, "--json"]);
        assert_eq!(
            &v["stdout"], stdout,
            "an old result still reads after the rewrap"
        );
    }
    let audit = fabric_json(&sb, &d.profile, &["admin", "audit", "--json"]);
    let rotation = audit
        .as_array()
        .and_then(|a| a.iter().find(|e| e["action"] == "key_rotated"))
        .unwrap_or_else(|| panic!("no key rotation in the audit trail: {audit}"));
    assert!(
        rotation["actor"].as_str().unwrap_or("").starts_with("key "),
        "{rotation}"
    );

    drop(w);
    assert!(d.proc.terminate(Duration::from_secs(30)).success());
    let data = sb.dir.path().join("d");
    let before = snapshot(&data);
    let wrong = key_file(&sb, "wrong.key");
    for (flags, says) in [
        (
            vec!["--key-file", wrong.to_str().unwrap()],
            "is not the one",
        ),
        (vec![], "--key-file"),
    ] {
        let out = fabric_cmd(&sb, None)
            .args([
                "dispatcher",
                "--no-mdns",
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(&data)
            .arg("--cluster")
            .arg(sb.dir.path().join("other.toml"))
            .args(&flags)
            .output_in_time()
            .unwrap();
        assert!(!out.status.success(), "{}", describe(&out));
        assert!(text(&out.stderr).contains(says), "{}", describe(&out));
    }
    assert!(
        snapshot(&data) == before,
        "a refused start changed the data dir"
    );
}

#[test]
fn the_readme_key_blocks_run_as_written() {
    use fabric_tests::harness::readme::{block, shell};
    let sb = Sandbox::new();
    let etc = sb.dir.path().join("etc-fabric");
    std::fs::create_dir(&etc).unwrap();
    let setup = block("fabric admin gen-key > /etc/fabric/fabric.key");
    let make_key = setup.lines[0].replace("/etc/fabric/", &format!("{}/", etc.display()));
    let out = shell(&sb, &make_key);
    assert!(out.status.success(), "{make_key}: {}", describe(&out));
    let key = etc.join("fabric.key");
    assert_eq!(std::fs::read_to_string(&key).unwrap().trim().len(), 64);
    // The dispatcher line, on a free port and without mDNS.
    assert!(
        setup.lines[1].contains("--key-file /etc/fabric/fabric.key"),
        "{}",
        setup.lines[1]
    );
    let mut d = start_dispatcher(
        &sb,
        "d",
        "127.0.0.1:0",
        &["--no-mdns", "--key-file", key.to_str().unwrap()],
        None,
    );
    let script = block("fabric admin keys --census").lines.join("\n");
    let out = shell(
        &sb,
        &format!(
            "set -e\nexport FABRIC_CLUSTER={}\n{script}",
            d.profile.display()
        ),
    );
    assert!(out.status.success(), "{}", describe(&out));
    let said = text(&out.stdout);
    assert!(said.contains("wrapped by the operator key"), "{said}");
    assert!(said.contains("data key 2 now seals new values"), "{said}");
    assert!(said.contains("data key 3 now seals new values"), "{said}");
    assert!(said.contains("rewrap done"), "{said}");
    assert!(
        said.contains("key_rotated"),
        "the audit lists the rotations: {said}"
    );
    assert!(d.proc.terminate(Duration::from_secs(30)).success());
}
