//! Backups taken under load, restored into a new dispatcher; and the
//! upgrade of a store made by Fabric before encryption at rest (a fixture
//! kept in `tests/fixtures/store-v1.tar.gz`).

use std::path::Path;

use fabric_proto::TaskSpec;
use fabric_tests::harness::cluster::{client, fabric_cmd, start_dispatcher, start_worker};
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::native::text;
use fabric_tests::harness::sandbox::{Sandbox, describe, guest, json_of};

use super::at_rest::files_holding;

/// Tasks the load submits, in batches of this many.
const LOAD: usize = 2_000;
const BATCH: usize = 100;

#[test]
fn a_backup_taken_under_load_restores_every_task_acknowledged_before_it() {
    let sb = Sandbox::new();
    let d = start_dispatcher(&sb, "d", "127.0.0.1:0", &["--no-mdns"], None);
    let _w = start_worker(&sb, "w", &d, 4);
    let backup = sb.dir.path().join("load.fbk");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (before, during) = rt.block_on(async {
        let c = client(&d.profile).await;
        let module = c
            .upload_module(&std::fs::read(guest("wordfreq")).unwrap())
            .await
            .unwrap();
        let mut acked = Vec::new();
        let mut backup_run = None;
        let mut before = Vec::new();
        for batch in 0..LOAD / BATCH {
            let specs: Vec<TaskSpec> = (0..BATCH)
                .map(|i| TaskSpec {
                    input: format!("task {batch} {i}").into_bytes(),
                    ..TaskSpec::wasm(module)
                })
                .collect();
            let ids = c.submit_many(specs).await.expect("submit_many");
            acked.extend(ids.into_iter().map(|q| q.id));
            if batch == LOAD / BATCH / 2 {
                // Everything acknowledged so far must be in the backup.
                before.clone_from(&acked);
                let mut cmd = fabric_cmd(&sb, None);
                cmd.arg("--cluster")
                    .arg(&d.profile)
                    .args(["admin", "backup", "--json"])
                    .arg(&backup);
                backup_run = Some(std::thread::spawn(move || cmd.output_in_time()));
            }
        }
        let out = backup_run
            .expect("the backup started")
            .join()
            .unwrap()
            .unwrap();
        (before, json_of(&out))
    });
    assert!(
        during["tasks"].as_u64().unwrap() >= before.len() as u64,
        "{during}"
    );
    assert_eq!(during["path"], backup.display().to_string(), "{during}");

    // A non-empty dir is refused; a new one is restored into.
    std::fs::create_dir(sb.dir.path().join("full")).unwrap();
    let full = sb.write("full/x", b"x");
    let out = fabric_cmd(&sb, None)
        .args(["admin", "restore"])
        .arg(&backup)
        .arg("--data-dir")
        .arg(full.parent().unwrap())
        .output_in_time()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        text(&out.stderr).contains("not empty"),
        "{}",
        describe(&out)
    );
    let out = fabric_cmd(&sb, None)
        .args(["admin", "restore", "--json"])
        .arg(&backup)
        .arg("--data-dir")
        .arg(sb.dir.path().join("restored"))
        .output_in_time()
        .unwrap();
    let restored = json_of(&out);
    assert_eq!(restored["tasks"], during["tasks"], "{restored}");

    let r = start_dispatcher(&sb, "restored", "127.0.0.1:0", &["--no-mdns"], None);
    assert_eq!(r.key, d.key, "the restored dispatcher keeps its identity");
    rt.block_on(async {
        let c = client(&r.profile).await;
        let mut missing = Vec::new();
        for id in &before {
            if c.status(*id).await.is_err() {
                missing.push(*id);
            }
        }
        assert!(
            missing.is_empty(),
            "{} of {} tasks acknowledged before the backup are not in it: {:?}",
            missing.len(),
            before.len(),
            &missing[..missing.len().min(5)]
        );
    });
}

/// Unpacks the fixture into `sb` as the data dir `v1`.
fn unpack_fixture(sb: &Sandbox) -> serde_json::Value {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/store-v1.tar.gz");
    let out = std::process::Command::new("tar")
        .arg("xzf")
        .arg(&fixture)
        .arg("-C")
        .arg(sb.dir.path())
        .output_in_time()
        .expect("tar (Debian's tar) unpacks the fixture");
    assert!(out.status.success(), "{}", describe(&out));
    serde_json::from_str(&std::fs::read_to_string(sb.dir.path().join("v1-expect.json")).unwrap())
        .unwrap()
}

#[test]
fn a_store_made_before_encryption_at_rest_is_backed_up_and_upgraded() {
    let sb = Sandbox::new();
    let expect = unpack_fixture(&sb);
    let marker = expect["marker"].as_str().unwrap();
    let store = sb.dir.path().join("v1/store");
    assert!(
        !files_holding(&store, marker).is_empty(),
        "the fixture holds its marker in plaintext"
    );
    let d = start_dispatcher(&sb, "v1", "127.0.0.1:0", &["--no-mdns"], None);
    let _w = start_worker(&sb, "w", &d, 2);
    for task in expect["tasks"].as_array().unwrap() {
        let id = task["id"].as_str().unwrap();
        let out = fabric_cmd(&sb, None)
            .arg("--cluster")
            .arg(&d.profile)
            .args(["result", id, "--json"])
            .output_in_time()
            .unwrap();
        let v = json_of(&out);
        assert_eq!(v["status"], "succeeded", "{v}");
        assert_eq!(v["stdout"], task["stdout"], "task {id} reads as it did");
    }
    assert_eq!(
        files_holding(&store, marker),
        Vec::<std::path::PathBuf>::new(),
        "the upgraded store holds nothing in plaintext"
    );
    let backups: Vec<_> = std::fs::read_dir(sb.dir.path().join("v1"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("store.format1-backup-")
        })
        .collect();
    assert_eq!(backups.len(), 1, "the old store was copied first");
    // A new task runs on the upgraded store.
    let out = fabric_cmd(&sb, None)
        .arg("--cluster")
        .arg(&d.profile)
        .args([
            "submit",
            guest("wordfreq").to_str().unwrap(),
            "--wait",
            "--json",
        ])
        .output_in_time()
        .unwrap();
    assert_eq!(json_of(&out)["status"], "succeeded", "{}", describe(&out));
}
