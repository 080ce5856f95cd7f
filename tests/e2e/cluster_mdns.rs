//! mDNS discovery, inside a network namespace the test made (loopback only,
//! multicast on), never on the machine's real interfaces.

use std::time::Duration;

use fabric_tests::harness::cluster::{Netns, fabric_cmd, start_dispatcher};
use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::process::Proc;
use fabric_tests::harness::sandbox::{Sandbox, describe, json_of};

#[test]
fn a_worker_finds_the_dispatcher_by_mdns() {
    let ns = Netns::new("mdns");
    let sb = Sandbox::new();
    let mut d = start_dispatcher(
        &sb,
        "d",
        "127.0.0.1:0",
        &["--mdns-interface", "loopback"],
        Some(&ns.name),
    );
    // No --dispatcher: the worker browses for the key in its token.
    let mut cmd = fabric_cmd(&sb, Some(&ns.name));
    cmd.args([
        "worker",
        "--join",
        &d.token,
        "--mdns-interface",
        "loopback",
        "--name",
        "found-by-mdns",
    ])
    .arg("--data-dir")
    .arg(sb.dir.path().join("w"));
    let mut worker = Proc::spawn("worker", cmd, sb.dir.path());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = fabric_cmd(&sb, Some(&ns.name))
            .args(["workers", "--json", "--cluster"])
            .arg(&d.profile)
            .output_in_time()
            .expect("run");
        assert!(out.status.success(), "{}", describe(&out));
        let names: Vec<String> = json_of(&out)
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["name"].as_str().unwrap().to_owned())
            .collect();
        if names == ["found-by-mdns"] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "worker did not register via mDNS; worker stderr:\n{}",
            worker.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        worker.stderr().contains("found the dispatcher on mDNS"),
        "{}",
        worker.stderr()
    );
    worker.terminate(Duration::from_secs(30));
    d.proc.terminate(Duration::from_secs(30));
}

#[test]
fn a_worker_ignores_an_announced_dispatcher_with_another_key() {
    let ns = Netns::new("mdns-key");
    let sb = Sandbox::new();
    let _d = start_dispatcher(
        &sb,
        "d",
        "127.0.0.1:0",
        &["--mdns-interface", "loopback"],
        Some(&ns.name),
    );
    let other = fabric_net::JoinToken::generate(fabric_net::Identity::generate().unwrap().public())
        .to_string();
    let mut cmd = fabric_cmd(&sb, Some(&ns.name));
    cmd.args(["worker", "--join", &other, "--mdns-interface", "loopback"])
        .arg("--data-dir")
        .arg(sb.dir.path().join("w"))
        .env("FABRIC_LOG", "debug");
    let mut worker = Proc::spawn("worker", cmd, sb.dir.path());
    // It sees the announcement, refuses to trust it, and keeps looking.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !worker
        .stderr()
        .contains("ignoring a dispatcher with another key")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no sign of the foreign dispatcher being ignored:\n{}",
            worker.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !worker.stderr().contains("joined the cluster"),
        "{}",
        worker.stderr()
    );
    worker.kill9();
}

#[test]
fn a_dispatcher_announces_only_the_address_it_listens_on() {
    let ns = Netns::new("mdns-addr");
    // A second loopback address in the namespace: the dispatcher serves on
    // it alone, and 127.0.0.1, where nothing serves, must not be announced.
    let out = std::process::Command::new("ip")
        .args(["-n", &ns.name, "addr", "add", "127.0.0.53/8", "dev", "lo"])
        .output_in_time()
        .expect("run ip");
    assert!(out.status.success(), "{}", describe(&out));
    let sb = Sandbox::new();
    let mut d = start_dispatcher(
        &sb,
        "d",
        "127.0.0.53:0",
        &["--mdns-interface", "loopback"],
        Some(&ns.name),
    );
    let mut cmd = fabric_cmd(&sb, Some(&ns.name));
    cmd.args(["worker", "--join", &d.token, "--mdns-interface", "loopback"])
        .args(["--name", "on-53"])
        .arg("--data-dir")
        .arg(sb.dir.path().join("w"));
    let mut worker = Proc::spawn("worker", cmd, sb.dir.path());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !worker.stderr().contains("worker registered") {
        assert!(
            std::time::Instant::now() < deadline,
            "worker did not register via mDNS; worker stderr:\n{}",
            worker.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let log = worker.stderr();
    let found = log
        .lines()
        .find(|l| l.contains("found the dispatcher on mDNS"))
        .unwrap_or_else(|| panic!("{log}"));
    let served = format!("127.0.0.53:{}", d.addr.port());
    assert!(found.contains(&served), "{found}");
    assert!(
        !found.contains("127.0.0.1:"),
        "announced where nothing serves: {found}"
    );
    assert!(
        log.contains(&format!("trying the dispatcher at {served}")),
        "{log}"
    );
    worker.terminate(Duration::from_secs(30));
    d.proc.terminate(Duration::from_secs(30));
}
