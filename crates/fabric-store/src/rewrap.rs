//! Re-sealing: every sealed value and blob file brought under the active
//! data key, a slice at a time, from a cursor kept in the store so that
//! the work resumes where it stopped after a restart. `fabric admin
//! rotate-key --rewrap` runs it in the background; the upgrade from the
//! plaintext format runs it to the end at start (a value not sealed at all
//! is sealed).
//!
//! A value is replaced by compare-and-swap: if the dispatcher rewrote it
//! meanwhile, the new value is already sealed with the active key and is
//! left alone.

use std::collections::BTreeMap;
use std::fs::File;

use serde::{Deserialize, Serialize};

use crate::crypt::{OpenError, file as sealed, key_id};
use crate::{Result, Store, StoreError};

/// Where the cursor is kept (`meta`).
const CURSOR_KEY: &str = "rewrap/cursor";

/// What a census counts a value sealed by no key under.
pub const PLAINTEXT: u32 = 0;

/// How far a rewrap has come.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewrapProgress {
    /// Values and files looked at so far in this pass.
    pub seen: u64,
    /// Of them, re-sealed.
    pub resealed: u64,
    /// Whether the pass is over.
    pub finished: bool,
    /// The data key the pass seals with.
    #[serde(default)]
    pub key: u32,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Cursor {
    /// The key the pass seals with; a pass for an older one starts over.
    #[serde(default)]
    target: u32,
    /// Index into [`Store::sealed_trees`]; one past the last: the files.
    tree: usize,
    /// The last key (or file name) done in it.
    #[serde(with = "serde_bytes")]
    after: Vec<u8>,
    progress: RewrapProgress,
}

/// Which values of a tree are sealed: all, or those under a key prefix.
struct Sealed {
    tree: sled::Tree,
    what: &'static str,
    prefix: &'static [u8],
}

impl Store {
    fn sealed_trees(&self) -> Result<Vec<Sealed>> {
        crate::crypt::SEALED_VALUES
            .iter()
            .map(|(tree, prefix, what)| {
                Ok(Sealed {
                    tree: self.db.open_tree(tree)?,
                    what,
                    prefix,
                })
            })
            .collect()
    }

    /// Whether a rewrap pass is under way (it resumes at start).
    pub fn rewrap_pending(&self) -> Result<bool> {
        Ok(self.meta.contains_key(CURSOR_KEY)?)
    }

    /// Starts a rewrap pass from the beginning (one under way starts
    /// over: what it did before a newer key came is not under that key).
    pub fn begin_rewrap(&self) -> Result<()> {
        let _one = self.lock_rewrap();
        self.save_cursor(&Cursor {
            target: self.crypt().active_id(),
            ..Cursor::default()
        })
    }

    /// Held by a step and by a new pass's start, so a start is never
    /// written over by a step that read the cursor before it.
    fn lock_rewrap(&self) -> std::sync::MutexGuard<'_, ()> {
        self.rewrap_lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn save_cursor(&self, c: &Cursor) -> Result<()> {
        let bytes = fabric_proto::to_cbor(c).map_err(|source| StoreError::Encode {
            what: "rewrap cursor",
            source,
        })?;
        self.meta.insert(CURSOR_KEY, bytes)?;
        Ok(())
    }

    /// Re-seals up to `max` values or files with the active key, from the
    /// saved cursor; the pass's progress. Once finished, the cursor is
    /// removed.
    pub fn rewrap_step(&self, max: usize) -> Result<RewrapProgress> {
        let _one = self.lock_rewrap();
        let Some(bytes) = self.meta.get(CURSOR_KEY)? else {
            return Ok(RewrapProgress {
                finished: true,
                key: self.crypt().active_id(),
                ..RewrapProgress::default()
            });
        };
        let mut c: Cursor =
            fabric_proto::from_cbor(&bytes).map_err(|source| StoreError::Corrupt {
                what: "rewrap cursor",
                source,
            })?;
        let active = self.crypt().active_id();
        if c.target != active {
            // A newer key came since the pass began: start over for it.
            c = Cursor {
                target: active,
                ..Cursor::default()
            };
        }
        c.progress.key = active;
        let trees = self.sealed_trees()?;
        let mut budget = max.max(1);
        while budget > 0 && c.tree < trees.len() {
            let t = &trees[c.tree];
            let start = if c.after.is_empty() {
                std::ops::Bound::Included(t.prefix.to_vec())
            } else {
                std::ops::Bound::Excluded(c.after.clone())
            };
            let mut exhausted = true;
            for kv in t.tree.range((start, std::ops::Bound::Unbounded)) {
                let (k, v) = kv?;
                if !k.starts_with(t.prefix) {
                    break;
                }
                c.progress.seen += 1;
                if key_id(&v) != Some(active) {
                    let plain = match key_id(&v) {
                        None => v.to_vec(),
                        Some(_) => self.crypt().open(t.what.as_bytes(), &v).map_err(
                            |source: OpenError| StoreError::Sealed {
                                what: t.what,
                                source,
                            },
                        )?,
                    };
                    let new = self.crypt().seal(t.what.as_bytes(), &plain);
                    let _gate = self.gate();
                    // Rewritten meanwhile: already under the active key.
                    if t.tree.compare_and_swap(&k, Some(&v), Some(new))?.is_ok() {
                        c.progress.resealed += 1;
                    }
                }
                c.after = k.to_vec();
                budget -= 1;
                if budget == 0 {
                    exhausted = false;
                    break;
                }
            }
            if exhausted {
                c.tree += 1;
                c.after.clear();
            }
        }
        if budget > 0 {
            budget = self.rewrap_files(&mut c, budget, active)?;
            if budget > 0 {
                self.meta.remove(CURSOR_KEY)?;
                c.progress.finished = true;
                return Ok(c.progress);
            }
        }
        self.save_cursor(&c)?;
        Ok(c.progress)
    }

    /// The files part of a pass: blob files by name, after the cursor.
    fn rewrap_files(&self, c: &mut Cursor, mut budget: usize, active: u32) -> Result<usize> {
        let mut names: Vec<String> = self
            .chunked
            .iter()
            .keys()
            .filter_map(|k| k.ok().map(hex::encode))
            .filter(|n| n.as_bytes() > c.after.as_slice())
            .collect();
        names.sort();
        for name in names {
            if budget == 0 {
                break;
            }
            c.progress.seen += 1;
            if self.reseal_file(&name, active)? {
                c.progress.resealed += 1;
            }
            c.after = name.into_bytes();
            budget -= 1;
        }
        Ok(budget)
    }

    /// Rewrites one blob file under the active key, unless it is sealed
    /// with it already (or gone); whether it was rewritten.
    fn reseal_file(&self, hex_sha: &str, active: u32) -> Result<bool> {
        let Ok(sha) = hex_sha.parse::<fabric_proto::Sha256>() else {
            return Ok(false);
        };
        let _sealing = self.lock_chunks();
        let Some(total) = self.chunked_len(&sha)? else {
            return Ok(false);
        };
        let path = self.piece_path(&sha, false);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        match sealed::Header::read(&file) {
            Ok(h) if h.key == active => return Ok(false),
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
        // A segment at a time: a blob may be as large as an input may.
        let tmp = path.with_extension("reseal.part");
        let out = File::create(&tmp)?;
        let header = sealed::Header::new(self.crypt());
        header.write(&out)?;
        let mut index = 0;
        sealed::for_each_segment(self.crypt(), &file, total, |piece| {
            sealed::write_segment(self.crypt(), &out, &header, index, piece)?;
            index += 1;
            Ok(())
        })?;
        out.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        Ok(true)
    }

    /// How many sealed values and blob files each data key seals
    /// ([`PLAINTEXT`]: none); what `fabric admin keys` shows, and how a
    /// rewrap is checked.
    pub fn key_census(&self) -> Result<BTreeMap<u32, u64>> {
        let mut census = BTreeMap::new();
        for t in self.sealed_trees()? {
            for kv in t.tree.scan_prefix(t.prefix) {
                let (_, v) = kv?;
                *census.entry(key_id(&v).unwrap_or(PLAINTEXT)).or_insert(0) += 1;
            }
        }
        for k in self.chunked.iter().keys() {
            let sha = fabric_proto::Sha256::from_bytes(k?.as_ref().try_into().map_err(|_| {
                StoreError::Io(std::io::Error::other("a chunked blob key is not a digest"))
            })?);
            let id = match File::open(self.piece_path(&sha, false)) {
                Ok(f) => sealed::Header::read(&f).map_or(PLAINTEXT, |h| h.key),
                Err(_) => continue,
            };
            *census.entry(id).or_insert(0) += 1;
        }
        Ok(census)
    }
}
