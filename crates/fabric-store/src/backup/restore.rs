//! Restoring a backup (see `backup.rs` for its format) into an empty
//! data dir.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::Path;

use fabric_proto::Sha256;

use super::{BackupSummary, Item, MAGIC, MAX_FRAME, RestoreError};
use crate::crypt::keyring::{KEYRING_FILE, LOCAL_KEY_FILE};
use crate::upgrade::{FORMAT_FILE, SEQ_FLOOR_KEY};
use crate::{StoreError, private};

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
            // A member of a group restored from its backup must not go
            // back on its vote or its log: it starts outside the group
            // (its data as it was) and is added again.
            Item::Kv { tree, .. } if tree == "raft_log" || tree == "raft_meta" => {}
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
