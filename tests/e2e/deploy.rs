//! The deployment in `deploy/`: the systemd units pass `systemd-analyze
//! verify`, and `install.sh` installs into a scratch root with the right
//! modes, and a second time changes nothing. (The dispatcher's image is
//! tested in `deploy_image.rs`; the compose and Kubernetes files are not:
//! see deploy/README.md.)

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use fabric_tests::harness::deadline::OutputWithin as _;
use fabric_tests::harness::sandbox::{describe, fabric_bin};

/// The units, as `install.sh` installs them.
const UNITS: [&str; 4] = [
    "fabric-dispatcher.service",
    "fabric-worker.service",
    "fabric-backup.service",
    "fabric-backup.timer",
];

/// Where the units run the binary from on a real install.
const INSTALLED_BIN: &str = "/usr/local/bin/fabric";

fn deploy() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../deploy")).to_path_buf()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// `systemd-analyze` on PATH, or a failure that says where it comes from.
fn systemd_analyze() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("systemd-analyze"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "systemd-analyze is not on PATH: it comes with Debian's `systemd` package \
                 (apt-get install systemd; .ci/run installs it when missing)"
            )
        })
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    let analyze = systemd_analyze();
    // `verify` fails a unit whose ExecStart= binary does not exist, and
    // /usr/local/bin/fabric does not on a test machine: the copies run the
    // binary this test run built instead (an absolute path without spaces,
    // which an ExecStart= line would split).
    let bin = fabric_bin();
    let bin_text = bin.to_str().expect("the fabric binary's path is UTF-8");
    assert!(
        !bin_text.contains(char::is_whitespace),
        "the fabric binary's path {bin_text:?} holds whitespace, which ExecStart= would split"
    );
    let dir = tempfile::tempdir().unwrap();
    let mut copies = Vec::new();
    for unit in UNITS {
        let text = std::fs::read_to_string(deploy().join("systemd").join(unit))
            .unwrap_or_else(|e| panic!("deploy/systemd/{unit}: {e}"));
        if unit.ends_with(".service") {
            assert!(
                text.contains(INSTALLED_BIN),
                "deploy/systemd/{unit} does not run {INSTALLED_BIN}"
            );
        }
        let copy = dir.path().join(unit);
        std::fs::write(&copy, text.replace(INSTALLED_BIN, bin_text)).unwrap();
        copies.push(copy);
    }
    let out = Command::new(&analyze)
        .args(["verify", "--man=no"])
        .args(copies)
        .current_dir(dir.path())
        .output_in_time()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", analyze.display()));
    // `verify` exits 0 on mere warnings ("Unknown key ...") and may say
    // things about the host's own units: every line naming one of ours
    // fails the test.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let about_ours: Vec<&str> = said
        .lines()
        .filter(|l| UNITS.iter().any(|u| l.contains(u)))
        .collect();
    assert!(
        out.status.success() && about_ours.is_empty(),
        "systemd-analyze verify on deploy/systemd (ExecStart= pointed at {bin_text}):\n{}",
        describe(&out)
    );
}

#[test]
fn install_sh_installs_into_a_scratch_root_with_the_right_modes() {
    let bin = fabric_bin();
    let root = tempfile::tempdir().unwrap();
    let r = |p: &str| root.path().join(p.trim_start_matches('/'));
    let install = || {
        let out = Command::new("sh")
            .arg(deploy().join("install.sh"))
            .arg("--root")
            .arg(root.path())
            .arg("--binary")
            .arg(&bin)
            .arg("--no-start")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .output_in_time()
            .unwrap();
        assert!(out.status.success(), "install.sh: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    let first = install();
    assert!(
        first.contains("generated  /etc/fabric/fabric.key"),
        "the first run says it made the key:\n{first}"
    );

    // The binary, the directories, the key and the units, with their modes.
    let installed = r("/usr/local/bin/fabric");
    assert_eq!(mode(&installed), 0o755, "{}", installed.display());
    assert_eq!(
        std::fs::metadata(&installed).unwrap().len(),
        std::fs::metadata(&bin).unwrap().len(),
        "the installed binary is the one given"
    );
    for (dir, want) in [
        ("/etc/fabric", 0o750),
        ("/var/lib/fabric", 0o700),
        ("/var/lib/fabric-worker", 0o700),
        ("/var/backups/fabric", 0o700),
    ] {
        assert!(r(dir).is_dir(), "{dir} is not a directory");
        assert_eq!(mode(&r(dir)), want, "mode of {dir}");
    }
    for file in ["/etc/fabric/fabric.key", "/etc/fabric/worker.env"] {
        assert_eq!(mode(&r(file)), 0o600, "mode of {file}");
    }
    for unit in UNITS {
        let path = r(&format!("/etc/systemd/system/{unit}"));
        assert_eq!(mode(&path), 0o644, "mode of {}", path.display());
        assert_eq!(
            std::fs::read(path).unwrap(),
            std::fs::read(deploy().join("systemd").join(unit)).unwrap(),
            "{unit} is installed as it is in deploy/systemd"
        );
    }
    let key = std::fs::read_to_string(r("/etc/fabric/fabric.key")).unwrap();
    assert!(
        key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()),
        "the key is 64 hex digits: {key:?}"
    );

    // The user and group, appended to the scratch root's own files.
    let passwd = std::fs::read_to_string(r("/etc/passwd")).unwrap();
    let group = std::fs::read_to_string(r("/etc/group")).unwrap();
    let user: Vec<&str> = passwd
        .lines()
        .find(|l| l.starts_with("fabric:"))
        .unwrap_or_else(|| panic!("no fabric user in <root>/etc/passwd:\n{passwd}"))
        .split(':')
        .collect();
    let grp: Vec<&str> = group
        .lines()
        .find(|l| l.starts_with("fabric:"))
        .unwrap_or_else(|| panic!("no fabric group in <root>/etc/group:\n{group}"))
        .split(':')
        .collect();
    assert_eq!(user.len(), 7, "a passwd line has 7 fields: {user:?}");
    let uid: u32 = user[2].parse().unwrap();
    let gid: u32 = grp[2].parse().unwrap();
    assert!((100..1000).contains(&uid), "a system uid: {uid}");
    assert_eq!(user[3], grp[2], "the user's group is fabric");
    assert_eq!(user[5], "/var/lib/fabric", "home");
    assert_eq!(user[6], "/usr/sbin/nologin", "shell");

    // Ownership only when the test runs as root (install.sh chowns only
    // then); the scratch root, made by this process, tells.
    if std::fs::metadata(root.path()).unwrap().uid() == 0 {
        let owner = |p: &str| {
            let m = std::fs::metadata(r(p)).unwrap();
            (m.uid(), m.gid())
        };
        assert_eq!(owner("/var/lib/fabric"), (uid, gid));
        assert_eq!(owner("/var/backups/fabric"), (uid, gid));
        assert_eq!(owner("/etc/fabric"), (0, gid));
        assert_eq!(owner("/var/lib/fabric-worker"), (0, 0));
        assert_eq!(owner("/etc/fabric/fabric.key"), (0, 0));
        assert_eq!(owner("/usr/local/bin/fabric"), (0, 0));
    }

    // A second run changes nothing: the same key, the same files (not
    // rewritten), the same user, and it says so line by line.
    let mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let before: Vec<_> = std::iter::once(installed.clone())
        .chain(UNITS.iter().map(|u| r(&format!("/etc/systemd/system/{u}"))))
        .map(|p| (mtime(&p), p))
        .collect();
    let second = install();
    assert_eq!(
        std::fs::read_to_string(r("/etc/fabric/fabric.key")).unwrap(),
        key,
        "the second run kept the key"
    );
    for (when, path) in &before {
        assert_eq!(mtime(path), *when, "{} was rewritten", path.display());
    }
    assert_eq!(std::fs::read_to_string(r("/etc/passwd")).unwrap(), passwd);
    assert_eq!(std::fs::read_to_string(r("/etc/group")).unwrap(), group);
    let actions: Vec<&str> = second
        .lines()
        .take_while(|l| !l.starts_with("Done."))
        .filter(|l| l.starts_with("  "))
        .collect();
    assert!(
        !actions.is_empty(),
        "the second run says what it did:\n{second}"
    );
    for line in actions {
        let verb = line.split_whitespace().next().unwrap_or("");
        assert!(
            ["unchanged", "exists", "kept", "skipped", "note"].contains(&verb),
            "the second run changed something: {line:?}\n{second}"
        );
    }

    // The installed copy runs.
    let out = Command::new(installed)
        .arg("--version")
        .output_in_time()
        .unwrap();
    let want = Command::new(bin).arg("--version").output_in_time().unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(out.stdout, want.stdout, "the installed fabric --version");
}
