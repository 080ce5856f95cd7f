//! Keys: join tokens and other metadata, in the `meta` tree.
//!
//! A join token's secret is kept only as its sha256 digest, under
//! `token/<lowercase hex of the digest>`, with a [`JoinTokenRecord`] (CBOR)
//! saying when it was made, when it expires, how many uses it has left and
//! whether it was revoked. Older versions wrote `join/<hex>` = `b"1"` for a
//! token that never expires; [`Store::open`] migrates those into records
//! with no expiry and unlimited uses.

use serde::{Deserialize, Serialize};

use crate::{Result, Store, StoreError};

/// A join token as the store keeps it (never the secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinTokenRecord {
    /// When it was minted (ms since the epoch; 0 when migrated from a
    /// version that did not record it).
    pub created_ms: u64,
    /// When it stops being accepted; `None`: never.
    pub expires_ms: Option<u64>,
    /// Joins it still allows; `None`: unlimited.
    pub uses_left: Option<u32>,
    /// Revoked by an operator.
    pub revoked: bool,
}

impl JoinTokenRecord {
    /// Why this token cannot be used at `now`, if it cannot.
    pub fn refusal(&self, now_ms: u64) -> Option<TokenRefusal> {
        if self.revoked {
            Some(TokenRefusal::Revoked)
        } else if self.expires_ms.is_some_and(|at| now_ms >= at) {
            Some(TokenRefusal::Expired {
                at_ms: self.expires_ms.unwrap_or_default(),
            })
        } else if self.uses_left == Some(0) {
            Some(TokenRefusal::UsedUp)
        } else {
            None
        }
    }
}

/// Why a join token was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRefusal {
    /// No token has this secret.
    Unknown,
    /// An operator revoked it.
    Revoked,
    /// Its time ran out.
    Expired {
        /// When (ms since the epoch).
        at_ms: u64,
    },
    /// Every use it allowed was spent.
    UsedUp,
}

/// The `meta` key of a join token's record.
fn token_key(digest: &[u8; 32]) -> String {
    format!("token/{}", hex::encode(digest))
}

/// The `meta` key older versions wrote for a join-token secret.
fn legacy_key(digest: &[u8; 32]) -> String {
    format!("join/{}", hex::encode(digest))
}

fn digest_of(key: &[u8], prefix: &str) -> Result<[u8; 32]> {
    let corrupt = || StoreError::Corrupt {
        what: "join-token key",
        source: fabric_proto::CodecError::Decode(String::from_utf8_lossy(key).into_owned()),
    };
    let hex_part = key.get(prefix.len()..).ok_or_else(corrupt)?;
    let bytes = hex::decode(hex_part).map_err(|_| corrupt())?;
    bytes.try_into().map_err(|_| corrupt())
}

impl Store {
    /// Stores a new join token's record under its secret's digest.
    pub fn add_join_token(&self, digest: &[u8; 32], rec: &JoinTokenRecord) -> Result<()> {
        self.set_meta(&token_key(digest), &self.enc("join token", rec)?)
    }

    /// A join token's record.
    pub fn join_token(&self, digest: &[u8; 32]) -> Result<Option<JoinTokenRecord>> {
        self.meta
            .get(token_key(digest))?
            .map(|v| self.dec("join token", &v))
            .transpose()
    }

    /// Spends one use of the token with this digest, if it is valid at
    /// `now_ms`; otherwise says why not. Atomic: two joins never share the
    /// last use.
    pub fn use_join_token(
        &self,
        digest: &[u8; 32],
        now_ms: u64,
    ) -> Result<Result<(), TokenRefusal>> {
        let key = token_key(digest);
        loop {
            let _gate = self.gate();
            let Some(old) = self.meta.get(&key)? else {
                return Ok(Err(TokenRefusal::Unknown));
            };
            let mut rec: JoinTokenRecord = self.dec("join token", &old)?;
            if let Some(why) = rec.refusal(now_ms) {
                return Ok(Err(why));
            }
            let Some(left) = rec.uses_left else {
                return Ok(Ok(()));
            };
            rec.uses_left = Some(left - 1);
            let new = self.enc("join token", &rec)?;
            if self
                .meta
                .compare_and_swap(&key, Some(old), Some(new))?
                .is_ok()
            {
                return Ok(Ok(()));
            }
        }
    }

    /// Every join token (digest and record), in digest order.
    pub fn join_tokens(&self) -> Result<Vec<([u8; 32], JoinTokenRecord)>> {
        self.meta
            .scan_prefix("token/")
            .map(|kv| {
                let (k, v) = kv?;
                Ok((digest_of(&k, "token/")?, self.dec("join token", &v)?))
            })
            .collect()
    }

    /// Marks a token revoked; returns whether it exists.
    pub fn revoke_join_token(&self, digest: &[u8; 32]) -> Result<bool> {
        let Some(mut rec) = self.join_token(digest)? else {
            return Ok(false);
        };
        rec.revoked = true;
        self.add_join_token(digest, &rec)?;
        Ok(true)
    }

    /// Turns `join/<hex>` entries of older versions into token records that
    /// never expire and allow unlimited uses. Idempotent.
    pub(crate) fn migrate_join_secrets(&self) -> Result<usize> {
        let mut moved = 0;
        for kv in self.meta.scan_prefix("join/") {
            let (k, _) = kv?;
            let digest = digest_of(&k, "join/")?;
            if self.join_token(&digest)?.is_none() {
                let rec = JoinTokenRecord {
                    created_ms: 0,
                    expires_ms: None,
                    uses_left: None,
                    revoked: false,
                };
                self.add_join_token(&digest, &rec)?;
            }
            self.meta.remove(legacy_key(&digest))?;
            moved += 1;
        }
        if moved > 0 {
            tracing::info!(tokens = moved, "migrated join tokens of an older version");
        }
        Ok(moved)
    }

    /// Reads a metadata value.
    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.meta.get(name)?.map(|v| v.to_vec()))
    }

    /// Writes a metadata value.
    pub fn set_meta(&self, name: &str, value: &[u8]) -> Result<()> {
        let _gate = self.gate();
        self.meta.insert(name, value)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
