//! Blobs: content-addressed bytes (modules), keyed by their sha256.

use fabric_proto::Sha256;

use crate::{Result, Store};

impl Store {
    /// Stores a blob under its sha256 (no-op when present).
    pub fn put_blob(&self, bytes: &[u8]) -> Result<Sha256> {
        let sha = Sha256::of(bytes);
        if !self.blobs.contains_key(sha.as_bytes())? {
            self.blobs.insert(sha.as_bytes(), bytes)?;
        }
        Ok(sha)
    }

    /// A blob's bytes.
    pub fn blob(&self, sha: &Sha256) -> Result<Option<Vec<u8>>> {
        Ok(self.blobs.get(sha.as_bytes())?.map(|v| v.to_vec()))
    }

    /// Whether a blob is stored.
    pub fn has_blob(&self, sha: &Sha256) -> Result<bool> {
        Ok(self.blobs.contains_key(sha.as_bytes())?)
    }
}

#[cfg(test)]
mod tests {
    use fabric_proto::Sha256;

    use crate::testing::temp_store;

    #[test]
    fn blobs_are_content_addressed() {
        let (_dir, store) = temp_store();
        let sha = store.put_blob(b"module bytes").unwrap();
        assert_eq!(sha, Sha256::of(b"module bytes"));
        assert!(store.has_blob(&sha).unwrap());
        assert_eq!(store.blob(&sha).unwrap().unwrap(), b"module bytes");
        assert!(store.blob(&Sha256::of(b"other")).unwrap().is_none());
        assert!(!store.has_blob(&Sha256::of(b"other")).unwrap());
    }

    #[test]
    fn storing_a_blob_twice_keeps_one_copy() {
        let (_dir, store) = temp_store();
        let a = store.put_blob(b"same").unwrap();
        let b = store.put_blob(b"same").unwrap();
        assert_eq!(a, b);
        assert_eq!(store.blobs.len(), 1);
    }
}
