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

    /// The cached file of each staged file, fetching what is missing.
    pub(crate) async fn get_all(
        &self,
        conn: &Connection,
        max_frame: usize,
        files: &[StagedFile],
    ) -> Result<Vec<fabric_native::Staged>, Refusal> {
        let mut out = Vec::with_capacity(files.len());
        for f in files {
            let source = self.get(conn, max_frame, f.blob).await?;
            out.push(fabric_native::Staged {
                path: f.path.clone(),
                source,
                executable: f.executable,
            });
        }
        Ok(out)
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
