//! Peers: public keys trusted in a role, keyed by role byte + key.
//!
//! An admin client is stored twice: as a [`PeerRole::Client`] (what older
//! versions read) and as a [`PeerRole::Admin`], which only adds the right to
//! manage join tokens and workers. Stores written before the admin role
//! existed stay readable: their clients are plain clients until the
//! dispatcher marks its profile key admin again at start.

use crate::{Result, Store};

/// Kinds of trusted peer keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PeerRole {
    /// A worker that joined.
    Worker = 1,
    /// A client allowed to submit and inspect.
    Client = 2,
    /// A client that may also mint, list and revoke join tokens and remove
    /// workers.
    Admin = 3,
}

impl Store {
    /// Trusts a peer key in a role.
    pub fn add_peer(&self, role: PeerRole, key: &[u8; 32], name: &str) -> Result<()> {
        let _gate = self.gate();
        self.peers.insert(peer_key(role, key), name.as_bytes())?;
        Ok(())
    }

    /// Whether a key is trusted in a role.
    pub fn is_peer(&self, role: PeerRole, key: &[u8; 32]) -> Result<bool> {
        Ok(self.peers.contains_key(peer_key(role, key))?)
    }
}

impl Store {
    /// Forgets a peer key in a role; returns whether it was trusted.
    pub fn remove_peer(&self, role: PeerRole, key: &[u8; 32]) -> Result<bool> {
        let _gate = self.gate();
        Ok(self.peers.remove(peer_key(role, key))?.is_some())
    }

    /// The keys trusted in a role, with their names.
    pub fn peers(&self, role: PeerRole) -> Result<Vec<([u8; 32], String)>> {
        self.peers
            .scan_prefix([role as u8])
            .map(|kv| {
                let (k, v) = kv?;
                let key: [u8; 32] =
                    k.get(1..).and_then(|b| b.try_into().ok()).ok_or_else(|| {
                        crate::StoreError::Corrupt {
                            what: "peer key",
                            source: fabric_proto::CodecError::Decode(format!(
                                "key of {} bytes",
                                k.len()
                            )),
                        }
                    })?;
                Ok((key, String::from_utf8_lossy(&v).into_owned()))
            })
            .collect()
    }
}

fn peer_key(role: PeerRole, key: &[u8; 32]) -> [u8; 33] {
    let mut k = [0u8; 33];
    k[0] = role as u8;
    k[1..].copy_from_slice(key);
    k
}

#[cfg(test)]
mod tests {
    use super::{PeerRole, peer_key};
    use crate::testing::temp_store;

    #[test]
    fn peers_are_trusted_per_role() {
        let (_dir, store) = temp_store();
        store.add_peer(PeerRole::Worker, &[7; 32], "w").unwrap();
        assert!(store.is_peer(PeerRole::Worker, &[7; 32]).unwrap());
        assert!(!store.is_peer(PeerRole::Client, &[7; 32]).unwrap());
        assert!(!store.is_peer(PeerRole::Worker, &[8; 32]).unwrap());
    }

    #[test]
    fn peers_are_listed_per_role_and_removed() {
        let (_dir, store) = temp_store();
        store.add_peer(PeerRole::Worker, &[1; 32], "a").unwrap();
        store.add_peer(PeerRole::Worker, &[2; 32], "b").unwrap();
        store.add_peer(PeerRole::Client, &[3; 32], "c").unwrap();
        store.add_peer(PeerRole::Admin, &[3; 32], "c").unwrap();
        let workers = store.peers(PeerRole::Worker).unwrap();
        assert_eq!(workers, vec![([1; 32], "a".into()), ([2; 32], "b".into())]);
        assert!(store.is_peer(PeerRole::Admin, &[3; 32]).unwrap());
        assert!(store.remove_peer(PeerRole::Worker, &[1; 32]).unwrap());
        assert!(!store.remove_peer(PeerRole::Worker, &[1; 32]).unwrap());
        assert!(!store.is_peer(PeerRole::Worker, &[1; 32]).unwrap());
        assert_eq!(store.peers(PeerRole::Worker).unwrap().len(), 1);
    }

    #[test]
    fn the_peer_key_is_the_role_byte_then_the_key() {
        let k = peer_key(PeerRole::Client, &[9; 32]);
        assert_eq!(k[0], 2);
        assert_eq!(k[1..], [9; 32]);
        assert_eq!(peer_key(PeerRole::Worker, &[0; 32])[0], 1);
        let (_dir, store) = temp_store();
        store.add_peer(PeerRole::Worker, &[1; 32], "name").unwrap();
        let stored = store
            .peers
            .get(peer_key(PeerRole::Worker, &[1; 32]))
            .unwrap();
        assert_eq!(stored.as_deref(), Some(&b"name"[..]));
    }
}
