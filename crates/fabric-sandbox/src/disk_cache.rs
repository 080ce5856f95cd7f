//! The on-disk compiled-module cache: `<sha256>.cwasm` files in one
//! directory, capped in bytes, least recently used evicted first.
//!
//! "Used" is the file's modification time: set when the artifact is written
//! and again on every load (access times are unreliable under `noatime` and
//! `relatime`). Eviction runs after each write, which only a compile does,
//! so its directory scan is paid once per new module, never per task.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Default byte cap of the disk cache (1 GiB).
pub const DEFAULT_MAX_DISK_CACHE_BYTES: u64 = 1 << 30;

/// Marks a cached artifact as just used.
pub(crate) fn touch(path: &Path) {
    let now = SystemTime::now();
    let times = std::fs::FileTimes::new()
        .set_accessed(now)
        .set_modified(now);
    let result = std::fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_times(times));
    if let Err(e) = result {
        tracing::debug!(path = %path.display(), error = %e, "cannot mark a cached module used");
    }
}

/// Removes the least recently used artifacts in `dir` until the ones left
/// take at most `max_bytes`; never removes `keep` (the one just written).
/// Returns how many were removed.
pub(crate) fn evict(dir: &Path, max_bytes: u64, keep: &Path) -> usize {
    let mut entries = artifacts(dir);
    let mut total: u64 = entries.iter().map(|e| e.1).sum();
    if total <= max_bytes {
        return 0;
    }
    entries.sort_by_key(|e| e.2);
    let mut removed = 0;
    for (path, len, _) in entries {
        if total <= max_bytes {
            break;
        }
        if path == keep {
            continue;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                total = total.saturating_sub(len);
                removed += 1;
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot evict a cached module")
            }
        }
    }
    if removed > 0 {
        tracing::info!(
            removed,
            bytes_left = total,
            max_bytes,
            "evicted compiled modules from the disk cache"
        );
    }
    removed
}

/// Every `.cwasm` file in `dir`: path, size, last use.
fn artifacts(dir: &Path) -> Vec<(PathBuf, u64, SystemTime)> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    read.filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| {
            let meta = e.metadata().ok()?;
            meta.is_file().then(|| {
                let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                (e.path(), meta.len(), used)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    fn file(dir: &Path, name: &str, len: usize, age_s: u64) -> PathBuf {
        let p = dir.join(format!("{name}.cwasm"));
        std::fs::write(&p, vec![0u8; len]).unwrap();
        let at = SystemTime::now() - Duration::from_secs(age_s);
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_times(std::fs::FileTimes::new().set_modified(at))
            .unwrap();
        p
    }

    #[test]
    fn the_least_recently_used_go_first_until_under_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let old = file(dir.path(), "old", 400, 300);
        let mid = file(dir.path(), "mid", 400, 200);
        let new = file(dir.path(), "new", 400, 100);
        let other = dir.path().join("notes.txt");
        std::fs::write(&other, vec![0u8; 4000]).unwrap();
        // `old` was loaded just now: it is the most recently used.
        touch(&old);
        let just_written = file(dir.path(), "written", 400, 400);
        assert_eq!(evict(dir.path(), 1000, &just_written), 2);
        assert!(old.exists() && just_written.exists());
        assert!(!mid.exists() && !new.exists());
        assert!(other.exists(), "only cache artifacts are evicted");
    }

    #[test]
    fn nothing_goes_under_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let a = file(dir.path(), "a", 100, 10);
        assert_eq!(evict(dir.path(), 100, &a), 0);
        assert!(a.exists());
        assert_eq!(evict(dir.path(), 0, &a), 0, "the one just written stays");
    }

    #[test]
    fn the_runtime_keeps_its_disk_cache_under_the_byte_cap() {
        use crate::{WasmRuntime, WasmRuntimeConfig};
        let dir = tempfile::tempdir().unwrap();
        let rt = WasmRuntime::new(WasmRuntimeConfig {
            max_concurrent: 1,
            cache_dir: Some(dir.path().to_owned()),
            max_disk_cache_bytes: 1,
            ..WasmRuntimeConfig::default()
        })
        .unwrap();
        let module = |n: u32| {
            wat::parse_str(format!(
                r#"(module (memory (export "memory") 1) (func (export "_start") i32.const {n} drop))"#
            ))
            .unwrap()
        };
        let a = rt.prepare(&module(1)).unwrap();
        let b = rt.prepare(&module(2)).unwrap();
        let names: Vec<String> = artifacts(dir.path())
            .iter()
            .map(|e| e.0.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        // Only the newest artifact is left; the older one was evicted.
        assert_eq!(names, vec![format!("{}.cwasm", b.sha256())]);
        assert_ne!(a.sha256(), b.sha256());
    }
}
