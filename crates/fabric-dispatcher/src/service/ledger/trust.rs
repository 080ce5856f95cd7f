//! The ledger's writes of trust: keys trusted in a role (workers,
//! clients), join tokens (minted, used, revoked: one use at a time, so two
//! joins cannot both take a token's last use) and REST tokens.

use fabric_store::{ApiTokenRecord, Command, JoinTokenRecord, PeerRole, StoreError, TokenRefusal};

use super::Ledger;

impl Ledger {
    /// Trusts a key in a role.
    pub(crate) fn add_peer(
        &self,
        role: PeerRole,
        key: &[u8; 32],
        name: &str,
    ) -> Result<(), StoreError> {
        self.put(
            || Command::Peer {
                role,
                key: *key,
                name: Some(name.to_owned()),
            },
            |s| s.add_peer(role, key, name),
        )
    }

    /// Stops trusting a key in a role; whether it was trusted.
    pub(crate) fn remove_peer(&self, role: PeerRole, key: &[u8; 32]) -> Result<bool, StoreError> {
        match self {
            Self::Local { store, .. } => store.remove_peer(role, key),
            Self::Raft { store, .. } => {
                let proposer = self.proposer();
                let was = store.is_peer(role, key)?;
                proposer.queue(Command::Peer {
                    role,
                    key: *key,
                    name: None,
                })?;
                Ok(was)
            }
        }
    }

    /// Stores a join token's record.
    pub(crate) fn add_join_token(
        &self,
        digest: &[u8; 32],
        rec: &JoinTokenRecord,
    ) -> Result<(), StoreError> {
        self.put(
            || Command::JoinToken {
                digest: *digest,
                rec: rec.clone(),
            },
            |s| s.add_join_token(digest, rec),
        )
    }

    /// Marks a join token revoked; whether it exists. In a group, one
    /// token change at a time (a join's use cannot undo it), durable
    /// before it returns.
    pub(crate) async fn revoke_join_token(&self, digest: &[u8; 32]) -> Result<bool, StoreError> {
        match self {
            Self::Local { store, .. } => store.revoke_join_token(digest),
            Self::Raft { store, .. } => {
                let proposer = self.proposer();
                let _one = proposer.token_lock().await;
                let Some(mut rec) = store.join_token(digest)? else {
                    return Ok(false);
                };
                rec.revoked = true;
                proposer.queue(Command::JoinToken {
                    digest: *digest,
                    rec,
                })?;
                proposer.durable().await?;
                Ok(true)
            }
        }
    }

    /// Spends one use of a join token, or says why not. In a group the
    /// record is read, decided and written whole, one join at a time, and
    /// durable before the next is decided.
    pub(crate) async fn use_join_token(
        &self,
        digest: &[u8; 32],
        now_ms: u64,
    ) -> Result<Result<(), TokenRefusal>, StoreError> {
        match self {
            Self::Local { store, .. } => store.use_join_token(digest, now_ms),
            Self::Raft { store, .. } => {
                let proposer = self.proposer();
                let _one = proposer.token_lock().await;
                let Some(mut rec) = store.join_token(digest)? else {
                    return Ok(Err(TokenRefusal::Unknown));
                };
                if let Some(why) = rec.refusal(now_ms) {
                    return Ok(Err(why));
                }
                if let Some(left) = rec.uses_left {
                    rec.uses_left = Some(left - 1);
                    proposer.queue(Command::JoinToken {
                        digest: *digest,
                        rec,
                    })?;
                    proposer.durable().await?;
                }
                Ok(Ok(()))
            }
        }
    }

    /// Stores a REST token's record.
    pub(crate) fn put_api_token(&self, id: &str, rec: &ApiTokenRecord) -> Result<(), StoreError> {
        self.put(
            || Command::ApiToken {
                id: id.to_owned(),
                rec: rec.clone(),
            },
            |s| s.put_api_token(id, rec),
        )
    }
}
