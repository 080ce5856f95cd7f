//! `fabric submit` refuses what the cluster would refuse, in the flags'
//! terms and sizes in KiB/MiB/GiB, before it uploads anything: it asks the
//! dispatcher for its caps first. Every such refusal exits 2.

use std::time::Duration;

use fabric_proto::Sha256;
use fabric_store::Store;
use fabric_tests::harness::cluster::{TRIVIAL_WAT, fabric_cmd, start_dispatcher};
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::sandbox::{Sandbox, describe, run_with_input};

#[test]
fn submit_refuses_over_cap_inputs_limits_and_retries_before_uploading() {
    let sb = Sandbox::new();
    let mut d = start_dispatcher(&sb, "d", "127.0.0.1:0", &[], None);
    let module = sb.wat("ok", TRIVIAL_WAT);
    // 100 MiB, sparse: refused from its size, never read.
    let big = sb.dir.path().join("big.bin");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(100 << 20)
        .unwrap();
    let submit = |extra: &[&str]| {
        let mut cmd = fabric_cmd(&sb, None);
        cmd.arg("--cluster")
            .arg(&d.profile)
            .arg("submit")
            .arg(&module)
            .args(extra);
        cmd
    };
    let cases: [(&[&str], &str); 3] = [
        (
            &["--input", big.to_str().unwrap()],
            "is 100 MiB, over the largest input the cluster takes (64 MiB)",
        ),
        (
            &["--memory", "8GiB"],
            "--memory 8 GiB is over the cluster maximum of 4 GiB",
        ),
        (
            &["--retries", "50"],
            "--retries 50 is over the cluster maximum of 20",
        ),
    ];
    for (args, expect) in cases {
        let out = submit(args).output_in_time().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expect), "{args:?}: {}", describe(&out));
        assert_eq!(stderr.trim().lines().count(), 1, "{}", describe(&out));
    }
    // Piped stdin past the cap stops being read at the cap.
    let out = run_with_input(&mut submit(&["--input", "-"]), &vec![b'x'; (64 << 20) + 1]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--input - (stdin) is over the largest input the cluster takes (64 MiB)"),
        "{}",
        describe(&out)
    );
    // Nothing was queued or stored.
    let out = fabric_cmd(&sb, None)
        .arg("--cluster")
        .arg(&d.profile)
        .args(["tasks", "--json"])
        .output_in_time()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");
    let status = d.proc.terminate(Duration::from_secs(30));
    assert!(
        status.success(),
        "dispatcher exit {status:?}: {}",
        d.proc.stderr()
    );
    // Nothing was uploaded either: not the module, not a byte of input.
    let store =
        Store::open(&sb.dir.path().join("d/store")).expect("open the stopped dispatcher's store");
    let sha = Sha256::of(&std::fs::read(&module).unwrap());
    assert!(!store.has_blob(&sha).unwrap(), "the module was uploaded");
    let inputs: Vec<_> = std::fs::read_dir(sb.dir.path().join("d/store/inputs"))
        .expect("the store's inputs dir")
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(inputs.is_empty(), "input pieces were uploaded: {inputs:?}");
}
