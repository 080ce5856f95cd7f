//! Peers: public keys trusted in a role, keyed by role byte + key.

use crate::{Result, Store};

/// Kinds of trusted peer keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerRole {
    /// A worker that joined.
    Worker = 1,
    /// A client allowed to submit and inspect.
    Client = 2,
}

impl Store {
    /// Trusts a peer key in a role.
    pub fn add_peer(&self, role: PeerRole, key: &[u8; 32], name: &str) -> Result<()> {
        self.peers.insert(peer_key(role, key), name.as_bytes())?;
        Ok(())
    }

    /// Whether a key is trusted in a role.
    pub fn is_peer(&self, role: PeerRole, key: &[u8; 32]) -> Result<bool> {
        Ok(self.peers.contains_key(peer_key(role, key))?)
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
