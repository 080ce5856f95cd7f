//! REST API tokens, in the `meta` tree under `apitoken/<id>`.
//!
//! A token's text is `fab_<id>_<secret>`: the id (16 hex characters,
//! random) finds its record, and only the sha256 of the secret is kept, so
//! the store never holds anything that authenticates. The caller compares
//! digests in constant time.

use fabric_proto::ApiRole;
use serde::{Deserialize, Serialize};

use crate::{Result, Store};

const PREFIX: &str = "apitoken/";

/// A REST API token as the store keeps it (never the secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenRecord {
    /// SHA-256 of the secret part of the token's text.
    pub digest: [u8; 32],
    /// What it may do.
    pub role: ApiRole,
    /// When it was minted (ms since the epoch).
    pub created_ms: u64,
    /// When it stops being accepted; `None`: never.
    pub expires_ms: Option<u64>,
    /// Revoked by an operator.
    pub revoked: bool,
}

impl ApiTokenRecord {
    /// Whether it is accepted at `now_ms`.
    pub fn is_valid(&self, now_ms: u64) -> bool {
        !self.revoked && self.expires_ms.is_none_or(|at| now_ms < at)
    }
}

impl Store {
    /// Stores (or replaces) the API token with this id.
    pub fn put_api_token(&self, id: &str, rec: &ApiTokenRecord) -> Result<()> {
        self.set_meta(&format!("{PREFIX}{id}"), &self.enc("api token", rec)?)
    }

    /// The API token with this id.
    pub fn api_token(&self, id: &str) -> Result<Option<ApiTokenRecord>> {
        self.meta
            .get(format!("{PREFIX}{id}"))?
            .map(|v| self.dec("api token", &v))
            .transpose()
    }

    /// Every API token (id and record), in id order.
    pub fn api_tokens(&self) -> Result<Vec<(String, ApiTokenRecord)>> {
        self.meta
            .scan_prefix(PREFIX)
            .map(|kv| {
                let (k, v) = kv?;
                let id = String::from_utf8_lossy(&k[PREFIX.len()..]).into_owned();
                Ok((id, self.dec("api token", &v)?))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use fabric_proto::ApiRole;

    use super::ApiTokenRecord;
    use crate::testing::temp_store;

    #[test]
    fn api_tokens_round_trip_and_expire() {
        let (_dir, store) = temp_store();
        let rec = ApiTokenRecord {
            digest: [7; 32],
            role: ApiRole::Submit,
            created_ms: 10,
            expires_ms: Some(100),
            revoked: false,
        };
        store.put_api_token("00aa", &rec).unwrap();
        store.set_meta("token/ffff", b"not an api token").unwrap();
        assert_eq!(store.api_token("00aa").unwrap(), Some(rec.clone()));
        assert_eq!(store.api_token("00ab").unwrap(), None);
        assert_eq!(
            store.api_tokens().unwrap(),
            vec![("00aa".into(), rec.clone())]
        );
        assert!(rec.is_valid(99));
        assert!(!rec.is_valid(100));
        let revoked = ApiTokenRecord {
            revoked: true,
            expires_ms: None,
            ..rec
        };
        assert!(!revoked.is_valid(0));
    }
}
