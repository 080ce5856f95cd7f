//! A snapshot of the replicated trees: what a Raft member that fell behind
//! the log's compaction installs instead of the entries it missed.
//!
//! The values are opened (each replica seals with its own keys) and carry
//! no key of this node; the Raft layer seals the snapshot where it keeps
//! one. Local state stays out: the keyring, blobs and their `blob_seen`
//! times, `meta` apart from the tokens, and the Raft trees themselves.

use serde::{Deserialize, Serialize};

use crate::crypt::SEALED_VALUES;
use crate::{Result, Store, StoreError};

/// The trees a snapshot holds whole (modules too: they travel in the log).
const TREES: [&str; 10] = [
    "blobs",
    "tasks",
    "live",
    "results",
    "dead",
    "events",
    "peers",
    "counts",
    "jobs",
    "schedules",
];
/// The prefixes of `meta` it holds.
const META_PREFIXES: [&[u8]; 4] = [
    b"token/",
    b"apitoken/",
    crate::BLOB_REPLICATED.as_bytes(),
    crate::SEQ_HW_KEY.as_bytes(),
];
/// The snapshot's own format.
const VERSION: u32 = 1;
const WHAT: &str = "snapshot";

#[derive(Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    /// (tree, key, opened value).
    items: Vec<(String, serde_bytes::ByteBuf, serde_bytes::ByteBuf)>,
}

/// The kind a value of `tree` at `key` is sealed as, if it is sealed.
fn sealed_kind(tree: &str, key: &[u8]) -> Option<&'static str> {
    SEALED_VALUES
        .iter()
        .find(|(t, prefix, _)| *t == tree && key.starts_with(prefix))
        .map(|(_, _, kind)| *kind)
}

impl Store {
    /// The replicated trees as one value, every sealed value opened. Taken
    /// under the write gate, so it is of one moment.
    pub fn export_replicated(&self) -> Result<Vec<u8>> {
        // Every number this node gave out or applied, and its own
        // counter: the installer numbers above them all.
        let hw = self
            .seq_hw
            .load(std::sync::atomic::Ordering::Acquire)
            .max(self.seq_counter());
        let _gate = self.close_gate();
        let mut items = Vec::new();
        let mut push = |tree: &str, k: &[u8], v: &[u8]| -> Result<()> {
            let v = match sealed_kind(tree, k) {
                // A queue-index entry from before summaries: nothing sealed.
                Some(_) if v.is_empty() => Vec::new(),
                Some(kind) => self
                    .crypt()
                    .open(kind.as_bytes(), v)
                    .map_err(|source| StoreError::Sealed { what: kind, source })?,
                None => v.to_vec(),
            };
            items.push((
                tree.to_owned(),
                serde_bytes::ByteBuf::from(k.to_vec()),
                serde_bytes::ByteBuf::from(v),
            ));
            Ok(())
        };
        for name in TREES {
            for kv in self.db.open_tree(name)?.iter() {
                let (k, v) = kv?;
                push(name, &k, &v)?;
            }
        }
        for prefix in META_PREFIXES {
            if prefix == crate::SEQ_HW_KEY.as_bytes() {
                continue;
            }
            for kv in self.meta.scan_prefix(prefix) {
                let (k, v) = kv?;
                push("meta", &k, &v)?;
            }
        }
        push("meta", crate::SEQ_HW_KEY.as_bytes(), &hw.to_be_bytes())?;
        fabric_proto::to_cbor(&Snapshot {
            version: VERSION,
            items,
        })
        .map_err(|source| StoreError::Encode { what: WHAT, source })
    }

    /// Replaces the replicated trees with a snapshot's, sealing each value
    /// with this node's keys. Checked whole before anything changes; not
    /// durable until [`Store::flush`], and not atomic across a crash: the
    /// Raft layer keeps the snapshot and installs it again at start if it
    /// had not finished.
    pub fn import_replicated(&self, bytes: &[u8]) -> Result<()> {
        let snap: Snapshot = fabric_proto::from_cbor(bytes)
            .map_err(|source| StoreError::Corrupt { what: WHAT, source })?;
        if snap.version != VERSION {
            return Err(StoreError::Corrupt {
                what: WHAT,
                source: fabric_proto::CodecError::Decode(format!(
                    "snapshot version {} (this build reads {VERSION})",
                    snap.version
                )),
            });
        }
        if let Some((tree, _, _)) = snap.items.iter().find(|(t, k, _)| {
            !(TREES.contains(&t.as_str())
                || (t == "meta" && META_PREFIXES.iter().any(|p| k.starts_with(p))))
        }) {
            return Err(StoreError::Corrupt {
                what: WHAT,
                source: fabric_proto::CodecError::Decode(format!(
                    "the snapshot holds tree {tree:?}, which is not replicated"
                )),
            });
        }
        let _gate = self.close_gate();
        for name in TREES {
            self.db.open_tree(name)?.clear()?;
        }
        // The sequence mark only rises (numbers this node gave out stay
        // used).
        for prefix in META_PREFIXES {
            for k in self.meta.scan_prefix(prefix).keys() {
                self.meta.remove(k?)?;
            }
        }
        for (tree, k, v) in snap.items {
            let v = match sealed_kind(&tree, &k) {
                Some(_) if v.is_empty() => Vec::new(),
                Some(kind) => self.crypt().seal(kind.as_bytes(), &v),
                None => v.into_vec(),
            };
            if tree == "meta" && k.as_ref() == crate::SEQ_HW_KEY.as_bytes() {
                if let Ok(b) = <[u8; 8]>::try_from(v.as_slice()) {
                    self.seq_hw
                        .fetch_max(u64::from_be_bytes(b), std::sync::atomic::Ordering::AcqRel);
                }
                continue;
            }
            self.db.open_tree(&tree)?.insert(k.into_vec(), v)?;
        }
        let hw = self.seq_hw.load(std::sync::atomic::Ordering::Acquire);
        self.meta.insert(crate::SEQ_HW_KEY, &hw.to_be_bytes())?;
        self.seq_hw_kept
            .fetch_max(hw, std::sync::atomic::Ordering::AcqRel);
        Ok(())
    }
}
