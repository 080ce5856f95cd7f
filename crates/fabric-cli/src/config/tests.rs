//! Precedence: flags over the `--config` file over the defaults.

use clap::Parser as _;
use fabric_net::Identity;

use super::*;
use crate::cli::{Cli, Command};

fn parse(args: &[&str]) -> Command {
    let mut argv = vec!["fabric"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv)
        .expect("valid command line")
        .command
}

fn config_file(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), text).expect("write config");
    file
}

fn up(args: &[&str]) -> anyhow::Result<UpConfig> {
    let Command::Up(a) = parse(&[&["up", "--data-dir", "/d"], args].concat()) else {
        unreachable!()
    };
    super::up(&a)
}

fn key_hex() -> String {
    Identity::generate().expect("key").public().to_string()
}

#[test]
fn defaults_differ_between_up_and_dispatcher() {
    let Command::Dispatcher(a) = parse(&["dispatcher", "--data-dir", "/d"]) else {
        unreachable!()
    };
    let d = dispatcher(&a).unwrap();
    assert_eq!(d.listen, "0.0.0.0:7070".parse().unwrap());
    assert_eq!(d.mdns, Some(Interfaces::All));
    assert_eq!(d.data_dir, PathBuf::from("/d"));
    let u = up(&[]).unwrap();
    assert_eq!(u.serve.listen, "127.0.0.1:7070".parse().unwrap());
    assert_eq!(u.serve.mdns, None);
    assert_eq!(u.workers.count, 2);
    assert!(u.workers.slots >= 1);
}

#[test]
fn flags_win_over_the_file_and_the_file_over_defaults() {
    let k1 = key_hex();
    let k2 = key_hex();
    let file = config_file(&format!(
        "listen = \"127.0.0.1:9000\"\nheartbeat = \"2s\"\nworkers = 5\nslots = 3\n\
         mdns_interface = \"eth0\"\nworker_keys = [\"{k2}\"]\nmax_queued = 50\n"
    ));
    let path = file.path().to_str().unwrap();
    let u = up(&["--config", path, "--slots", "7", "--worker-key", &k1]).unwrap();
    assert_eq!(u.serve.listen, "127.0.0.1:9000".parse().unwrap());
    assert_eq!(u.serve.heartbeat, Some(Duration::from_secs(2)));
    assert_eq!(u.serve.mdns, Some(Interfaces::Named("eth0".into())));
    assert_eq!(u.workers.count, 5);
    assert_eq!(u.workers.slots, 7);
    let keys: Vec<String> = u.serve.worker_keys.iter().map(|k| k.to_string()).collect();
    assert_eq!(keys, [k1, k2]);
    assert_eq!(u.serve.max_queued, Some(50));

    let u = up(&[
        "--config",
        path,
        "--listen",
        "127.0.0.1:1",
        "--heartbeat",
        "1s",
    ])
    .unwrap();
    assert_eq!(u.serve.listen, "127.0.0.1:1".parse().unwrap());
    assert_eq!(u.serve.heartbeat, Some(Duration::from_secs(1)));
    let u = up(&["--config", path, "--max-queued", "9"]).unwrap();
    assert_eq!(u.serve.max_queued, Some(9));
    let u = up(&["--config", path, "--no-mdns"]).unwrap();
    assert_eq!(u.serve.mdns, None);
}

#[test]
fn bad_values_are_usage_errors_with_their_names() {
    let message = |r: anyhow::Result<UpConfig>| {
        let err = r.unwrap_err();
        assert!(err.downcast_ref::<crate::UsageError>().is_some(), "{err:#}");
        format!("{err:#}")
    };
    assert_eq!(message(up(&["--slots", "0"])), "--slots must be at least 1");
    assert!(message(up(&["--worker-key", "nope"])).starts_with("--worker-key: "));
    let file = config_file("heartbeat = \"soon\"\n");
    let path = file.path().to_str().unwrap();
    assert!(message(up(&["--config", path])).starts_with("config heartbeat: "));
    let file = config_file("listen_on = 1\n");
    let path = file.path().to_str().unwrap();
    assert!(message(up(&["--config", path])).contains("is invalid"));
    assert!(message(up(&["--config", "/no/such/file"])).starts_with("cannot read --config"));
}

#[test]
fn a_worker_takes_its_key_from_the_token_or_the_flag() {
    let worker = |args: &[&str]| {
        let Command::Worker(a) = parse(&[&["worker", "--data-dir", "/d"], args].concat()) else {
            unreachable!()
        };
        super::worker(a)
    };
    let err = worker(&[]).unwrap_err();
    assert!(format!("{err}").contains("--join TOKEN"), "{err}");

    let key = Identity::generate().unwrap().public();
    let token = JoinToken::generate(key).to_string();
    let file = config_file(&format!(
        "join = \"{token}\"\nmemory_total = \"1GiB\"\nlabels = [\"b\"]\nname = \"n\"\n"
    ));
    let path = file.path().to_str().unwrap();
    let w = worker(&["--config", path, "--label", "a", "--slots", "3"]).unwrap();
    assert_eq!(w.dispatcher_key, key);
    assert!(w.join_secret.is_some());
    assert_eq!(w.memory_bytes, 1 << 30);
    assert_eq!(w.labels, ["a", "b"]);
    assert_eq!(w.name, "n");
    assert_eq!(w.slots, 3);
    assert_eq!(w.data_dir, PathBuf::from("/d/worker"));
    assert_eq!(w.mdns, Interfaces::All);

    let other = key_hex();
    let err = worker(&["--config", path, "--dispatcher-key", &other]).unwrap_err();
    assert!(format!("{err}").contains("differs"), "{err}");
}
