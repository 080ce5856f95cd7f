//! Backups: a consistent copy of the store, taken while the dispatcher
//! serves, and its restore into an empty data dir.
//!
//! Every tree is copied under the store's write gate (writes wait for it;
//! reads go on), so the copy holds every write acknowledged before it
//! began and no half of a transaction. Blob files are immutable once
//! sealed; they are copied after the gate opens again, under the chunk
//! lock (a sweep cannot remove one midway). Values and files are copied as
//! they are stored, sealed; the keyring goes with them, so the backup needs
//! the same operator key as the store (or none, when the key sits beside
//! the data, in which case the backup holds it too and must be kept as
//! safely as the data dir).
//!
//! The file: the line `FABRIC-BACKUP 1`, then frames (a 4-byte big-endian
//! length and a CBOR [`Item`]), the last an [`Item::End`] holding the
//! SHA-256 of every byte before it.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use fabric_proto::{Sha256, Sha256Hasher};
use serde::{Deserialize, Serialize};

use crate::crypt::keyring::{KEYRING_FILE, LOCAL_KEY_FILE};
use crate::upgrade::FORMAT_FILE;
use crate::{Result, Store, StoreError, private};

const MAGIC: &[u8] = b"FABRIC-BACKUP 1\n";
/// The largest frame a backup holds (and a restore reads): above any value
/// the store keeps (a module is at most 64 MiB, a result's output and
/// files at most their caps), with room for the frame's own fields.
const MAX_FRAME: usize = 512 << 20;
/// Bytes of a blob file per frame.
const PIECE: usize = 1 << 20;

/// What a backup holds: the wire's view of it, so the dispatcher sends
/// what the store counted as it is.
pub use fabric_proto::wire::BackupView as BackupSummary;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Item {
    Head {
        format: u32,
        taken_ms: u64,
        /// The store's next sequence number: the restored store's floor.
        #[serde(default)]
        next_seq: u64,
    },
    Kv {
        tree: String,
        #[serde(with = "serde_bytes")]
        k: Vec<u8>,
        #[serde(with = "serde_bytes")]
        v: Vec<u8>,
    },
    /// A small file of the store's dir (the keyring) or of the data dir
    /// (the dispatcher's keys).
    File {
        data_dir: bool,
        name: String,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// A blob file begins; its bytes follow as pieces.
    Blob { name: String, len: u64 },
    Piece {
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    End {
        summary: BackupSummary,
        sha256: Sha256,
    },
}

/// Why a backup cannot be restored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// The target is not an empty directory.
    #[error("{0} is not empty: restore into a new or empty directory (nothing was written)")]
    NotEmpty(PathBuf),
    /// The file is not a Fabric backup, or is cut short or damaged.
    #[error("{path} is not a whole Fabric backup: {why}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sled::Error> for RestoreError {
    fn from(e: sled::Error) -> Self {
        Self::Store(e.into())
    }
}

struct Out<W: Write> {
    w: W,
    hasher: Sha256Hasher,
    bytes: u64,
}

impl<W: Write> Out<W> {
    fn raw(&mut self, b: &[u8]) -> Result<()> {
        self.w.write_all(b)?;
        self.hasher.update(b);
        self.bytes += b.len() as u64;
        Ok(())
    }

    fn item(&mut self, item: &Item) -> Result<()> {
        let body = fabric_proto::to_cbor(item).map_err(|source| StoreError::Encode {
            what: "backup item",
            source,
        })?;
        if body.len() > MAX_FRAME {
            return Err(StoreError::Io(std::io::Error::other(format!(
                "a stored value of {} bytes is over the {MAX_FRAME} a backup frame holds",
                body.len()
            ))));
        }
        let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
        self.raw(&len.to_be_bytes())?;
        self.raw(&body)
    }
}

impl Store {
    /// Writes a consistent backup to `path` (made new; an existing file is
    /// refused), with the files of the data dir named in `data_files`
    /// (the dispatcher's keys). `progress` is called with the values and
    /// files copied so far.
    pub fn backup(
        &self,
        path: &Path,
        data_files: &[(&str, &Path)],
        mut progress: impl FnMut(u64),
    ) -> Result<BackupSummary> {
        if path.exists() {
            return Err(StoreError::Io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists; a backup never overwrites a file",
                    path.display()
                ),
            )));
        }
        let part = path.with_extension("part");
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&part)?;
        private::restrict_file(&part)?;
        let mut out = Out {
            w: BufWriter::new(file),
            hasher: Sha256::hasher(),
            bytes: 0,
        };
        let written = self.write_backup(&mut out, data_files, &mut progress);
        let summary = match written {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                return Err(e);
            }
        };
        let file = out
            .w
            .into_inner()
            .map_err(|e| StoreError::Io(e.into_error()))?;
        file.sync_all()?;
        std::fs::rename(&part, path)?;
        Ok(summary)
    }

    fn write_backup<W: Write>(
        &self,
        out: &mut Out<W>,
        data_files: &[(&str, &Path)],
        progress: &mut impl FnMut(u64),
    ) -> Result<BackupSummary> {
        out.raw(MAGIC)?;
        let mut s = BackupSummary {
            format: crate::FORMAT,
            taken_ms: fabric_proto::now_ms(),
            ..BackupSummary::default()
        };
        let blobs: Vec<Vec<u8>>;
        {
            // Writes wait from here to the end of the trees.
            let _gate = self.close_gate();
            out.item(&Item::Head {
                format: s.format,
                taken_ms: s.taken_ms,
                next_seq: self.next_seq()?,
            })?;
            for name in self.db.tree_names() {
                let tree = self.db.open_tree(&name)?;
                let tree_name = String::from_utf8_lossy(&name).into_owned();
                let mut n = 0u64;
                for kv in tree.iter() {
                    let (k, v) = kv?;
                    out.item(&Item::Kv {
                        tree: tree_name.clone(),
                        k: k.to_vec(),
                        v: v.to_vec(),
                    })?;
                    n += 1;
                    s.values += 1;
                    if s.values.is_multiple_of(10_000) {
                        progress(s.values);
                    }
                }
                match tree_name.as_str() {
                    "tasks" => s.tasks = n,
                    "results" => s.results = n,
                    "jobs" => s.jobs = n,
                    "schedules" => s.schedules = n,
                    "events" => s.events = n,
                    _ => {}
                }
            }
            blobs = self
                .chunked
                .iter()
                .keys()
                .map(|k| k.map(|k| k.to_vec()))
                .collect::<std::result::Result<_, _>>()?;
        }
        for (name, path) in data_files {
            if let Ok(bytes) = std::fs::read(path) {
                out.item(&Item::File {
                    data_dir: true,
                    name: (*name).to_owned(),
                    bytes,
                })?;
            }
        }
        for k in blobs {
            let name = hex::encode(&k);
            // Opened under the chunk lock (a file open stays readable if a
            // sweep removes or a rewrap replaces it); one swept since the
            // trees were copied is left out, and the restore drops its
            // entry.
            let opened = {
                let _files = self.lock_chunks();
                File::open(self.inputs_dir.join(&name))
            };
            let Ok(mut f) = opened else {
                continue;
            };
            let len = f.metadata()?.len();
            out.item(&Item::Blob {
                name: name.clone(),
                len,
            })?;
            let mut buf = vec![0u8; PIECE];
            let mut left = len;
            while left > 0 {
                let n = f.read(&mut buf[..PIECE.min(left as usize)])?;
                if n == 0 {
                    return Err(StoreError::Io(std::io::Error::other(format!(
                        "blob file {name} is shorter than it was"
                    ))));
                }
                out.item(&Item::Piece {
                    bytes: buf[..n].to_vec(),
                })?;
                left -= n as u64;
            }
            s.files += 1;
            progress(s.values + s.files);
        }
        // The keyring last: it holds every key a value or file above was
        // sealed with (keys are only ever added).
        for name in [KEYRING_FILE, LOCAL_KEY_FILE, FORMAT_FILE] {
            match std::fs::read(self.dir.join(name)) {
                Ok(bytes) => out.item(&Item::File {
                    data_dir: false,
                    name: name.to_owned(),
                    bytes,
                })?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && name != KEYRING_FILE => {}
                Err(e) => return Err(e.into()),
            }
        }
        let sha256 = std::mem::replace(&mut out.hasher, Sha256::hasher()).finish();
        s.bytes = out.bytes;
        out.item(&Item::End {
            summary: s.clone(),
            sha256,
        })?;
        s.bytes = out.bytes;
        Ok(s)
    }
}

mod restore;

pub use restore::restore;
