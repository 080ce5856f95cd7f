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
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use fabric_proto::{Sha256, Sha256Hasher};
use serde::{Deserialize, Serialize};

use crate::crypt::keyring::{KEYRING_FILE, LOCAL_KEY_FILE};
use crate::upgrade::{FORMAT_FILE, SEQ_FLOOR_KEY};
use crate::{Result, Store, StoreError, private};

const MAGIC: &[u8] = b"FABRIC-BACKUP 1\n";
/// The largest frame a backup holds (and a restore reads): above any value
/// the store keeps (a module is at most 64 MiB, a result's output and
/// files at most their caps), with room for the frame's own fields.
const MAX_FRAME: usize = 512 << 20;
/// Bytes of a blob file per frame.
const PIECE: usize = 1 << 20;

/// What a backup holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSummary {
    /// The store format it was taken from.
    pub format: u32,
    /// When it was taken (ms since the epoch).
    pub taken_ms: u64,
    /// Tasks.
    pub tasks: u64,
    /// Recorded results.
    pub results: u64,
    /// Jobs.
    pub jobs: u64,
    /// Schedules.
    pub schedules: u64,
    /// Events.
    pub events: u64,
    /// Values in all trees.
    pub values: u64,
    /// Blob files.
    pub files: u64,
    /// Bytes of the backup file.
    pub bytes: u64,
}

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

/// Restores the backup at `file` into `data_dir` (which must be missing or
/// empty): the store in `<data_dir>/store`, the dispatcher's keys beside
/// it. On any failure what was written is removed again.
pub fn restore(file: &Path, data_dir: &Path) -> std::result::Result<BackupSummary, RestoreError> {
    if data_dir.exists()
        && std::fs::read_dir(data_dir)
            .map_err(StoreError::from)?
            .next()
            .is_some()
    {
        return Err(RestoreError::NotEmpty(data_dir.to_owned()));
    }
    let made = !data_dir.exists();
    let result = restore_into(file, data_dir);
    if result.is_err() {
        if made {
            let _ = std::fs::remove_dir_all(data_dir);
        } else if let Ok(entries) = std::fs::read_dir(data_dir) {
            for e in entries.flatten() {
                let _ =
                    std::fs::remove_dir_all(e.path()).or_else(|_| std::fs::remove_file(e.path()));
            }
        }
    }
    result
}

fn restore_into(file: &Path, data_dir: &Path) -> std::result::Result<BackupSummary, RestoreError> {
    let bad = |why: String| RestoreError::Bad {
        path: file.to_owned(),
        why,
    };
    let mut r = BufReader::new(File::open(file).map_err(|e| bad(format!("cannot open it: {e}")))?);
    let mut hasher = Sha256::hasher();
    let mut magic = vec![0u8; MAGIC.len()];
    r.read_exact(&mut magic)
        .map_err(|_| bad("it is too short".into()))?;
    if magic != MAGIC {
        return Err(bad("it does not start as a Fabric backup does".into()));
    }
    hasher.update(&magic);
    private::create_dir(data_dir)?;
    let store_dir = data_dir.join("store");
    private::create_dir(&store_dir)?;
    let inputs = store_dir.join("inputs");
    private::create_dir(&inputs)?;
    // First: a restore cut short (killed, say) is then a store whose
    // keyring is missing, refused as such, never taken for the plaintext
    // format and "upgraded".
    std::fs::write(store_dir.join(FORMAT_FILE), format!("{}\n", crate::FORMAT))
        .map_err(StoreError::from)?;
    let db = sled::Config::new().path(&store_dir).open()?;
    let mut blob: Option<(File, u64)> = None;
    let mut next_seq = 0u64;
    let mut keyring = false;
    loop {
        let mut len = [0u8; 4];
        r.read_exact(&mut len)
            .map_err(|_| bad("it ends before its last record".into()))?;
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_FRAME {
            return Err(bad(format!(
                "a record of {n} bytes is over the {MAX_FRAME} a backup holds"
            )));
        }
        let mut body = vec![0u8; n];
        r.read_exact(&mut body)
            .map_err(|_| bad("it ends inside a record".into()))?;
        let item: Item = fabric_proto::from_cbor(&body)
            .map_err(|e| bad(format!("a record does not decode: {e}")))?;
        if let Item::End { summary, sha256 } = item {
            if hasher.finish() != sha256 {
                return Err(bad(
                    "its checksum does not match: the file was damaged".into()
                ));
            }
            if let Some((_, left)) = blob
                && left > 0
            {
                return Err(bad("a blob file is cut short".into()));
            }
            if !keyring {
                return Err(bad(
                    "it holds no keyring, without which its data cannot be read".into(),
                ));
            }
            // sled's id counter starts again in a new database.
            let meta = db.open_tree("meta")?;
            let floor = crate::upgrade::seq_floor(&meta)?.max(next_seq.saturating_add(1));
            meta.insert(SEQ_FLOOR_KEY, &floor.to_be_bytes())?;
            // A blob swept while the backup ran has no file: not stored.
            let chunked = db.open_tree("chunked")?;
            for k in chunked.iter().keys() {
                let k = k?;
                if !inputs.join(hex::encode(&k)).exists() {
                    chunked.remove(k)?;
                }
            }
            db.flush()?;
            drop(db);
            private::restrict_tree(data_dir)?;
            // The summary inside counts the bytes before it; the file's
            // length is what a person compares.
            let bytes = std::fs::metadata(file).map_or(summary.bytes, |m| m.len());
            return Ok(BackupSummary { bytes, ..summary });
        }
        hasher.update(&len);
        hasher.update(&body);
        match item {
            Item::Head { format, .. } if format > crate::FORMAT => {
                return Err(bad(format!(
                    "it holds a store of format {format}, newer than this Fabric reads ({})",
                    crate::FORMAT
                )));
            }
            Item::Head { next_seq: n, .. } => next_seq = n,
            Item::End { .. } => {}
            Item::Kv { tree, k, v } => {
                db.open_tree(tree.as_bytes())?.insert(k, v)?;
            }
            Item::File {
                data_dir: in_data,
                name,
                bytes,
            } => {
                let allowed: &[&str] = if in_data {
                    &["node.key", "admin.key"]
                } else {
                    &[KEYRING_FILE, LOCAL_KEY_FILE, FORMAT_FILE]
                };
                if !allowed.contains(&name.as_str()) {
                    return Err(bad(format!("it names an unexpected file {name:?}")));
                }
                keyring |= !in_data && name == KEYRING_FILE;
                let dir = if in_data { data_dir } else { &store_dir };
                std::fs::write(dir.join(&name), bytes).map_err(StoreError::from)?;
            }
            Item::Blob { name, len } => {
                if name.len() != 64 || !name.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return Err(bad(format!("a blob is named {name:?}, not by its digest")));
                }
                if let Some((_, left)) = &blob
                    && *left > 0
                {
                    return Err(bad("a blob file is cut short".into()));
                }
                blob = Some((
                    File::create(inputs.join(&name)).map_err(StoreError::from)?,
                    len,
                ));
            }
            Item::Piece { bytes } => {
                let Some((f, left)) = blob.as_mut() else {
                    return Err(bad("a blob piece comes before its blob".into()));
                };
                if bytes.len() as u64 > *left {
                    return Err(bad("a blob file is longer than it said".into()));
                }
                f.write_all(&bytes).map_err(StoreError::from)?;
                *left -= bytes.len() as u64;
            }
        }
    }
}
