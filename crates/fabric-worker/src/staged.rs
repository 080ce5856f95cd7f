//! A native task's staged files: each fetched from the dispatcher by digest
//! once and kept in a disk cache (so a header many compiles use moves once),
//! bounded in bytes with the least recently used files evicted.

use std::path::PathBuf;
use std::sync::Mutex;

use fabric_proto::{BlobRef, StagedFile};
use quinn::Connection;

use crate::verify::Refusal;

/// Bytes the cache keeps at most.
pub(crate) const MAX_CACHE_BYTES: u64 = 1 << 30;
/// Marks a pin's name.
const PIN: &str = ".pin-";

/// Pinned cache files, unpinned on drop.
pub(crate) struct Pins(Vec<PathBuf>);

impl Drop for Pins {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Fetched files by digest, on disk.
pub(crate) struct FileCache {
    dir: PathBuf,
    /// Held while a file is added and the cache trimmed.
    lock: Mutex<()>,
}

impl FileCache {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            lock: Mutex::new(()),
        }
    }

    /// The cached file of each staged file, fetching what is missing, each
    /// pinned (a hard link the cache never evicts) until the returned
    /// [`Pins`] drop, so another task's fetch cannot evict it before it is
    /// copied in.
    pub(crate) async fn get_all(
        &self,
        conn: &Connection,
        max_frame: usize,
        files: &[StagedFile],
    ) -> Result<(Vec<fabric_native::Staged>, Pins), Refusal> {
        let mut out = Vec::with_capacity(files.len());
        let mut pins = Pins(Vec::new());
        for f in files {
            let cached = self.get(conn, max_frame, f.blob).await?;
            let pin = self.pin(&cached).map_err(|e| Refusal::InputFetch {
                sha: f.blob.sha,
                reason: format!("cannot pin it in the cache: {e}"),
            })?;
            pins.0.push(pin.clone());
            out.push(fabric_native::Staged {
                path: f.path.clone(),
                source: pin,
                executable: f.executable,
            });
        }
        Ok((out, pins))
    }

    /// A hard link to `cached` that [`FileCache::trim`] leaves alone.
    fn pin(&self, cached: &std::path::Path) -> std::io::Result<PathBuf> {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let _held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = cached.file_name().unwrap_or_default().to_string_lossy();
        let pin = self.dir.join(format!("{name}{PIN}{n}"));
        std::fs::hard_link(cached, &pin)?;
        Ok(pin)
    }

    async fn get(
        &self,
        conn: &Connection,
        max_frame: usize,
        blob: BlobRef,
    ) -> Result<PathBuf, Refusal> {
        let path = self.dir.join(blob.sha.to_string());
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == blob.len) {
            // Touch it: the cache evicts the least recently used.
            let _ = std::fs::File::options()
                .append(true)
                .open(&path)
                .and_then(|f| f.set_modified(std::time::SystemTime::now()));
            return Ok(path);
        }
        let bytes = crate::inputs::fetch_blob(conn, max_frame, blob)
            .await
            .map_err(|reason| Refusal::InputFetch {
                sha: blob.sha,
                reason,
            })?;
        let io = |e: std::io::Error| Refusal::InputFetch {
            sha: blob.sha,
            reason: format!("cannot cache it: {e}"),
        };
        let _held = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        self.trim(blob.len);
        let part = self.dir.join(format!("{}.part", blob.sha));
        std::fs::write(&part, &bytes).map_err(io)?;
        std::fs::rename(&part, &path).map_err(io)?;
        Ok(path)
    }

    /// Evicts the least recently used files until `incoming` more bytes fit.
    fn trim(&self, incoming: u64) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().contains(PIN))
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((m.modified().ok()?, m.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|f| f.1).sum::<u64>() + incoming;
        files.sort();
        for (_, len, path) in files {
            if total <= MAX_CACHE_BYTES {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total = total.saturating_sub(len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimming_evicts_the_oldest_files_but_never_a_pinned_one() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(dir.path().to_path_buf());
        let old = dir.path().join("aaaa");
        std::fs::write(&old, b"old").unwrap();
        let pin = cache.pin(&old).unwrap();
        // Asking for the whole cache's room evicts every unpinned file.
        cache.trim(MAX_CACHE_BYTES);
        assert!(!old.exists());
        assert_eq!(std::fs::read(&pin).unwrap(), b"old");
        drop(Pins(vec![pin.clone()]));
        assert!(!pin.exists());
    }
}
