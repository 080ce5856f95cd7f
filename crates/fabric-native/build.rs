//! Lets the seccomp layer link on a machine without libseccomp's
//! development package: hakoniwa links `-lseccomp`, which needs the
//! unversioned `libseccomp.so` that only `libseccomp-dev` installs. Every
//! Debian has the runtime library (`libseccomp.so.2`, which apt itself
//! uses), so this points the linker at a link to the runtime one, whether
//! or not the development package is there. Nothing is downloaded.

use std::path::{Path, PathBuf};

const LIB_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu",
    "/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/usr/lib64",
    "/usr/lib",
    "/lib64",
    "/lib",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let Some(runtime) = LIB_DIRS
        .iter()
        .map(|d| Path::new(d).join("libseccomp.so.2"))
        .find(|p| p.exists())
    else {
        panic!(
            "libseccomp is missing: install it (Debian: apt-get install libseccomp2, or libseccomp-dev)"
        );
    };
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let link = out.join("libseccomp.so");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&runtime, &link).unwrap_or_else(|e| {
        panic!(
            "cannot link {} to {}: {e}",
            link.display(),
            runtime.display()
        )
    });
    println!("cargo:rustc-link-search=native={}", out.display());
}
