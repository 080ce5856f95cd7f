//! The store's format version, and the upgrade from older formats.
//!
//! | format | what |
//! | --- | --- |
//! | 1 (no `format` key) | values and blob files in plaintext (Fabric before issue 25) |
//! | 2 | every value of a task sealed under the keyring (`crypt.rs`) |
//!
//! A store of a newer format is refused with a message. An older one is
//! first copied whole beside the store (`<store>.format1-backup-<ms>`),
//! then written again, sealed, into a new directory that replaces it
//! (with sled's id counter carried over as a floor, see `Store::next_seq`):
//! sled keeps the old versions of rewritten values in its log for a
//! while, so sealing in place would leave plaintext on the disk. A crash
//! midway leaves the old store in place (the new one is made again) or,
//! between the two renames, is finished at the next start.

use std::path::{Path, PathBuf};

use crate::crypt::keyring::{KEYRING_FILE, Keyring, OperatorKey};
use crate::crypt::{Crypt, file as sealed};
use crate::{Result, Store, StoreError, private};

/// The format this build writes.
pub const FORMAT: u32 = 2;
/// Where the format is kept (`meta`, 4 bytes BE, not sealed).
pub const FORMAT_KEY: &str = "format";
/// The format again, as a file beside sled's: readable before sled opens,
/// so a store that lost its keyring is not taken for the plaintext format.
pub(crate) const FORMAT_FILE: &str = "format";
/// Where the sequence floor is kept (`meta`, 8 bytes BE): what sled's id
/// counter had reached in the store a restore or upgrade copied.
pub(crate) const SEQ_FLOOR_KEY: &str = "seq_floor";

/// The sequence floor a store records (0 when none).
pub(crate) fn seq_floor(meta: &sled::Tree) -> Result<u64> {
    Ok(meta.get(SEQ_FLOOR_KEY)?.map_or(0, |v| {
        <[u8; 8]>::try_from(v.as_ref()).map_or(0, u64::from_be_bytes)
    }))
}

/// Whether `dir` holds a store already (sled's files, or the format file).
pub(crate) fn exists(dir: &Path) -> bool {
    dir.join("db").exists() || dir.join(FORMAT_FILE).exists()
}

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map_or_else(|| "store".into(), |n| n.to_string_lossy().into_owned());
    dir.with_file_name(format!("{name}.{suffix}"))
}

/// The kind a value of `tree` at `key` is sealed as, if it is sealed.
pub(crate) fn sealed_kind(tree: &[u8], key: &[u8]) -> Option<&'static str> {
    crate::crypt::SEALED_VALUES
        .iter()
        .find(|(t, prefix, _)| t.as_bytes() == tree && key.starts_with(prefix))
        .map(|(_, _, what)| *what)
}

/// Whether `dir` holds a store of the plaintext format: sled's files and
/// no keyring.
fn is_plaintext(dir: &Path) -> bool {
    dir.join("db").exists() && !dir.join(KEYRING_FILE).exists() && !dir.join(FORMAT_FILE).exists()
}

/// Brings the store in `dir` to this build's format when it is older
/// (see the module's doc); whether it did. A no-op for a new or current
/// store.
pub(crate) fn upgrade(dir: &Path, operator: Option<&OperatorKey>) -> Result<bool> {
    let new = sibling(dir, "upgrading");
    let replaced = sibling(dir, "format1-replaced");
    if !dir.exists() && new.exists() && replaced.exists() {
        // Cut short between the renames: the new store is whole.
        std::fs::rename(&new, dir)?;
    }
    if replaced.exists() && dir.join(KEYRING_FILE).exists() {
        std::fs::remove_dir_all(&replaced)?;
    }
    if !is_plaintext(dir) {
        return Ok(false);
    }
    // Locked first: no dispatcher runs on it while it is copied.
    let old_db = crate::open_sled(dir)?;
    if old_db.open_tree("meta")?.contains_key(FORMAT_KEY)? {
        // Sealed, but its keyring and format file are gone: not plaintext.
        return Err(crate::KeyError::NoKeyring {
            path: dir.join(KEYRING_FILE).display().to_string(),
        }
        .into());
    }
    let backup = sibling(dir, &format!("format1-backup-{}", fabric_proto::now_ms()));
    copy_dir(dir, &backup)?;
    tracing::warn!(
        backup = %backup.display(),
        "upgrading the store to format {FORMAT} (encrypted at rest); a copy of it as it was is kept in the backup: remove it once the upgrade is checked, it holds the old data in plaintext"
    );
    if new.exists() {
        std::fs::remove_dir_all(&new)?;
    }
    private::create_dir(&new)?;
    let ring = Keyring::open(&new, operator, true)?;
    let values = {
        let new_db = sled::open(&new)?;
        let values = copy_sealed(&old_db, &new_db, ring.crypt())?;
        let meta = new_db.open_tree("meta")?;
        meta.insert(FORMAT_KEY, &FORMAT.to_be_bytes())?;
        meta.insert(SEQ_FLOOR_KEY, &old_db.generate_id()?.to_be_bytes())?;
        std::fs::write(new.join(FORMAT_FILE), format!("{FORMAT}\n"))?;
        seal_files(&old_db, dir, &new, ring.crypt())?;
        new_db.flush()?;
        values
    };
    drop(old_db);
    std::fs::rename(dir, &replaced)?;
    std::fs::rename(&new, dir)?;
    std::fs::remove_dir_all(&replaced)?;
    tracing::info!(values, "store upgraded to format {FORMAT}");
    Ok(true)
}

/// Copies every tree of `old` into `new`, sealing what [`sealed_kind`]
/// names; how many values.
fn copy_sealed(old: &sled::Db, new: &sled::Db, crypt: &Crypt) -> Result<u64> {
    let mut n = 0;
    for name in old.tree_names() {
        let from = old.open_tree(&name)?;
        let to = new.open_tree(&name)?;
        for kv in from.iter() {
            let (k, v) = kv?;
            match sealed_kind(&name, &k) {
                Some(what) => to.insert(k, crypt.seal(what.as_bytes(), &v))?,
                None => to.insert(k, v)?,
            };
            n += 1;
        }
    }
    Ok(n)
}

/// Seals each whole chunked blob's file into the new store's `inputs/`.
fn seal_files(old: &sled::Db, dir: &Path, new: &Path, crypt: &Crypt) -> Result<()> {
    let inputs = new.join("inputs");
    private::create_dir(&inputs)?;
    for k in old.open_tree("chunked")?.iter().keys() {
        let name = hex::encode(k?);
        let mut from = match std::fs::File::open(dir.join("inputs").join(&name)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        // A segment at a time: a blob may be as large as an input may.
        let to = std::fs::File::create(inputs.join(&name))?;
        let header = sealed::Header::new(crypt);
        header.write(&to)?;
        let mut piece = vec![0u8; fabric_proto::BLOB_CHUNK];
        let mut index = 0;
        loop {
            let n = read_full(&mut from, &mut piece)?;
            if n == 0 {
                break;
            }
            sealed::write_segment(crypt, &to, &header, index, &piece[..n])?;
            index += 1;
        }
        to.sync_all()?;
    }
    Ok(())
}

/// Reads until `buf` is full or the file ends; how many bytes.
fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> Result<usize> {
    use std::io::Read as _;
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    private::create_dir(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        let dest = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_dir(&path, &dest)?;
        } else if kind.is_file() {
            std::fs::copy(&path, &dest)?;
        }
    }
    Ok(())
}

impl Store {
    /// The store's format, as written in it (`None`: not written yet).
    pub fn format(&self) -> Result<Option<u32>> {
        Ok(self.meta.get(FORMAT_KEY)?.and_then(|v| {
            let b: [u8; 4] = v.as_ref().try_into().ok()?;
            Some(u32::from_be_bytes(b))
        }))
    }

    /// Refuses a newer format and writes the format of a new store.
    pub(crate) fn check_format(&self, dir: &Path) -> Result<()> {
        match self.format()? {
            Some(found) if found > FORMAT => Err(StoreError::NewerFormat {
                path: dir.display().to_string(),
                found,
                supported: FORMAT,
            }),
            Some(_) | None => {
                self.meta.insert(FORMAT_KEY, &FORMAT.to_be_bytes())?;
                if !dir.join(FORMAT_FILE).exists() {
                    std::fs::write(dir.join(FORMAT_FILE), format!("{FORMAT}\n"))?;
                }
                Ok(())
            }
        }
    }
}
