//! Key files: the operator's key (`--key-file`) and the local key that
//! wraps a keyring when no operator key is given, and the careful writes
//! of the keyring's files (synced, renamed or linked into place).

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use rand_core::{OsRng, RngCore as _};
use sha2::Digest as _;

use super::keyring::KeyError;

/// The fingerprint of a wrapping key.
pub fn fingerprint(key: &[u8; 32]) -> String {
    hex::encode(&sha2::Sha256::digest(key)[..8])
}

/// A new random key, as the 64 hex digits a key file holds.
pub fn generate_key_hex() -> String {
    let mut k = [0u8; 32];
    OsRng.fill_bytes(&mut k);
    hex::encode(k)
}

/// The operator's key, which wraps the keyring. `Debug` shows its
/// fingerprint, never the key.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorKey([u8; 32]);

impl OperatorKey {
    /// Reads a key file (see [`read_key_file`]).
    pub fn from_file(path: &Path) -> Result<Self, KeyError> {
        read_key_file(path).map(Self)
    }

    /// A key from its bytes.
    pub fn from_bytes(key: [u8; 32]) -> Self {
        Self(key)
    }

    /// Its fingerprint, as the keyring records it.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.0)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for OperatorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OperatorKey({})", self.fingerprint())
    }
}

/// Reads a key file: 64 hex digits (surrounding white space ignored).
pub fn read_key_file(path: &Path) -> Result<[u8; 32], KeyError> {
    let bad = |why: String| KeyError::BadKeyFile {
        path: path.display().to_string(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let bytes =
        hex::decode(text.trim()).map_err(|_| bad("it does not hold 64 hex digits".to_owned()))?;
    let key: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| bad(format!("it holds {} bytes, not 32", b.len())))?;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "the key file can be read by others than its owner; make it 0600");
    }
    Ok(key)
}

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `bytes` to `path` (0600) through a temporary file, synced and
/// renamed, so a crash leaves the old file or the new one.
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Writes `bytes` to `path` (0600, synced) unless it exists; whether it
/// did.
pub(super) fn write_new(path: &Path, bytes: &[u8]) -> Result<bool, KeyError> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("new-{}-{n}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io(&tmp))?;
    f.write_all(bytes).map_err(io(&tmp))?;
    f.sync_all().map_err(io(&tmp))?;
    let linked = std::fs::hard_link(&tmp, path);
    std::fs::remove_file(&tmp).map_err(io(&tmp))?;
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(io(path)(e)),
    }
}

pub(super) fn read_local_key(path: &Path) -> Result<[u8; 32], KeyError> {
    match std::fs::read_to_string(path) {
        Ok(_) => read_key_file(path),
        Err(source) => Err(KeyError::LocalKey {
            path: path.display().to_string(),
            source,
        }),
    }
}
