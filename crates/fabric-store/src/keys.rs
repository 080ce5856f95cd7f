//! Keys: join-token secrets and other metadata, in the `meta` tree.
//!
//! A join-token secret is kept only as its sha256 digest, under
//! `join/<lowercase hex of the digest>` with the value `b"1"`; a secret is
//! valid when its key is present.

use crate::{Result, Store};

/// The `meta` key of a join-token secret digest.
fn join_key(digest: &[u8; 32]) -> String {
    format!("join/{}", hex::encode(digest))
}

impl Store {
    /// Accepts the join-token secret with this digest from now on.
    pub fn add_join_secret(&self, digest: &[u8; 32]) -> Result<()> {
        self.set_meta(&join_key(digest), b"1")
    }

    /// Whether the join-token secret with this digest was added.
    pub fn is_join_secret(&self, digest: &[u8; 32]) -> Result<bool> {
        Ok(self.meta.contains_key(join_key(digest))?)
    }

    /// Reads a metadata value.
    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.meta.get(name)?.map(|v| v.to_vec()))
    }

    /// Writes a metadata value.
    pub fn set_meta(&self, name: &str, value: &[u8]) -> Result<()> {
        self.meta.insert(name, value)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::join_key;
    use crate::testing::temp_store;

    fn digest() -> [u8; 32] {
        std::array::from_fn(|i| (i as u8).wrapping_mul(17))
    }

    #[test]
    fn the_join_key_is_join_slash_lowercase_hex() {
        let mut d = [0u8; 32];
        d[0] = 0xAB;
        d[31] = 0x0f;
        let k = join_key(&d);
        assert_eq!(k.len(), 5 + 64);
        assert!(k.starts_with("join/ab00"));
        assert!(k.ends_with("000f"));
        assert_eq!(
            join_key(&std::array::from_fn(|i| i as u8)),
            "join/000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
        );
    }

    #[test]
    fn join_secrets_are_remembered_by_digest() {
        let (_dir, store) = temp_store();
        assert!(!store.is_join_secret(&digest()).unwrap());
        store.add_join_secret(&digest()).unwrap();
        assert!(store.is_join_secret(&digest()).unwrap());
        assert!(!store.is_join_secret(&[0; 32]).unwrap());
        // Stored as callers did before the typed methods.
        assert_eq!(store.meta(&join_key(&digest())).unwrap().unwrap(), b"1");
    }

    #[test]
    fn join_secrets_written_through_set_meta_are_still_valid() {
        let (_dir, store) = temp_store();
        let hex: String = digest().iter().map(|b| format!("{b:02x}")).collect();
        store.set_meta(&format!("join/{hex}"), b"1").unwrap();
        assert!(store.is_join_secret(&digest()).unwrap());
    }

    #[test]
    fn meta_values_round_trip() {
        let (_dir, store) = temp_store();
        assert!(store.meta("x").unwrap().is_none());
        store.set_meta("x", b"value").unwrap();
        assert_eq!(store.meta("x").unwrap().unwrap(), b"value");
    }
}
