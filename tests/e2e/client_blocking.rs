//! The blocking client against a real cluster: many tasks in one request,
//! all or none, from code with no async runtime of its own.

use std::time::Duration;

use fabric_client::ClientError;
use fabric_client::blocking::Client;
use fabric_proto::{Limits, TaskSpec, TaskStatus};
use fabric_tests::harness::cluster::read_profile;
use fabric_tests::harness::native::up_one_worker;
use fabric_tests::harness::sandbox::guest;

#[test]
fn submit_many_queues_a_batch_in_one_request_all_or_none() {
    let (_sb, mut up, profile, _) = up_one_worker(&[]);
    let p = read_profile(&profile);
    let client = Client::connect(&p.client, p.dispatcher_key, p.dispatcher).unwrap();
    let module = client
        .upload_module(&std::fs::read(guest("plain-wasi")).unwrap())
        .unwrap();
    let spec = |n: usize| TaskSpec {
        args: vec![format!("part-{n}")],
        input: format!("input {n}\n").into_bytes(),
        ..TaskSpec::wasm(module)
    };

    let queued = client.submit_many((0..40).map(spec).collect()).unwrap();
    assert_eq!(queued.len(), 40);
    let mut ids: Vec<_> = queued.iter().map(|q| q.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40, "one id per task");
    // In the order given: each task ran with its own args and input.
    for (n, q) in queued.iter().enumerate() {
        let done = client.wait(q.id, |_| {}).unwrap();
        let outcome = done.outcome.expect("a finished task has its outcome");
        assert_eq!(outcome.status, TaskStatus::Succeeded, "{outcome:?}");
        let out = String::from_utf8_lossy(&outcome.stdout);
        assert!(
            out.contains(&format!("part-{n}")) && out.contains(&format!("INPUT {n}")),
            "task {n}: {out}"
        );
    }

    // One spec the cluster refuses refuses the batch, naming its place,
    // and none of the batch is stored.
    let before = client.counts().unwrap().total;
    let mut batch: Vec<_> = (0..5).map(spec).collect();
    batch[2].limits = Limits {
        fuel: u64::MAX,
        ..batch[2].limits
    };
    let refused = client.submit_many(batch).unwrap_err();
    assert!(
        refused.to_string().contains("task 3 of 5") && refused.to_string().contains("fuel"),
        "{refused}"
    );
    assert_eq!(
        client.counts().unwrap().total,
        before,
        "nothing of it queued"
    );

    // Over the bound: refused before anything is sent.
    let too_many = client
        .submit_many((0..fabric_client::MAX_SUBMIT_BATCH + 1).map(spec).collect())
        .unwrap_err();
    assert!(
        matches!(too_many, ClientError::TooMany { .. }),
        "{too_many}"
    );
    assert_eq!(client.counts().unwrap().total, before);

    drop(client);
    up.terminate(Duration::from_secs(30));
}
