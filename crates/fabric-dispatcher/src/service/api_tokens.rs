//! REST API tokens: minting, checking a bearer token, listing.
//!
//! A token's text is `fab_<id>_<secret>` (16 and 64 hex characters). The
//! id finds the record; the store keeps only the secret's sha256, compared
//! in constant time. Tokens have a role ([`ApiRole`]) and may expire.

use std::time::Duration;

use fabric_net::JoinToken;
use fabric_proto::ApiRole;
use fabric_proto::wire::TokenSummary;
use fabric_store::{ApiTokenRecord, EventKind, StoreError};
use rand_core::{OsRng, RngCore};

use super::state::Shared;

const PREFIX: &str = "fab_";
const ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// Why a bearer token was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not `fab_<id>_<secret>`.
    Malformed,
    /// No token has this id, or the secret is wrong.
    Unknown,
    /// Its time ran out.
    Expired,
    /// An operator revoked it.
    Revoked,
}

impl Refusal {
    /// For people (the 401's message).
    pub fn message(self) -> &'static str {
        match self {
            Self::Malformed => {
                "the bearer token is not a Fabric API token (fab_...): mint one with `fabric token create --role ROLE`"
            }
            Self::Unknown => "the bearer token is not known to this dispatcher",
            Self::Expired => "the bearer token has expired: mint a new one",
            Self::Revoked => "the bearer token was revoked",
        }
    }
}

/// Mints a token of `role`, accepted for `ttl` (`None`: until revoked);
/// its record is stored and flushed. Returns its text (shown once) and
/// what `list` shows of it.
pub async fn mint(
    shared: &Shared,
    role: ApiRole,
    ttl: Option<Duration>,
) -> Result<(String, TokenSummary), StoreError> {
    let mut id = [0u8; ID_BYTES];
    let mut secret = [0u8; SECRET_BYTES];
    OsRng.fill_bytes(&mut id);
    OsRng.fill_bytes(&mut secret);
    let (id, secret) = (hex::encode(id), hex::encode(secret));
    let now = shared.now();
    let rec = ApiTokenRecord {
        digest: JoinToken::secret_digest(secret.as_bytes()),
        role,
        created_ms: now,
        expires_ms: ttl.map(|t| now.saturating_add(t.as_millis().try_into().unwrap_or(u64::MAX))),
        revoked: false,
    };
    shared.ledger.put_api_token(&id, &rec)?;
    shared.event(
        None,
        EventKind::TokenCreated,
        format!("api token {id} ({role})"),
    );
    shared.ledger.durable().await?;
    Ok((format!("{PREFIX}{id}_{secret}"), summary(&id, &rec)))
}

/// The id (lower case) and role of a valid bearer token.
pub fn check(
    shared: &Shared,
    text: &str,
) -> Result<Result<(String, ApiRole), Refusal>, StoreError> {
    let Some((id, secret)) = text
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_once('_'))
        .filter(|(id, secret)| {
            id.len() == 2 * ID_BYTES
                && secret.len() == 2 * SECRET_BYTES
                && id.bytes().all(|b| b.is_ascii_hexdigit())
        })
    else {
        return Ok(Err(Refusal::Malformed));
    };
    let id = id.to_ascii_lowercase();
    let Some(rec) = shared.store.api_token(&id)? else {
        return Ok(Err(Refusal::Unknown));
    };
    if !JoinToken::secret_matches(secret.as_bytes(), &rec.digest) {
        return Ok(Err(Refusal::Unknown));
    }
    if rec.revoked {
        return Ok(Err(Refusal::Revoked));
    }
    if !rec.is_valid(shared.now()) {
        return Ok(Err(Refusal::Expired));
    }
    Ok(Ok((id, rec.role)))
}

/// Every API token (never its secret).
pub fn list(shared: &Shared) -> Result<Vec<TokenSummary>, StoreError> {
    Ok(shared
        .store
        .api_tokens()?
        .iter()
        .map(|(id, r)| summary(id, r))
        .collect())
}

/// Ids of API tokens starting with `prefix`.
pub fn matching(shared: &Shared, prefix: &str) -> Result<Vec<String>, StoreError> {
    Ok(shared
        .store
        .api_tokens()?
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| !prefix.is_empty() && id.starts_with(prefix))
        .collect())
}

/// Revokes the API token `id` (flushed); what `list` now shows of it.
pub async fn revoke(shared: &Shared, id: &str) -> Result<Option<TokenSummary>, StoreError> {
    let Some(mut rec) = shared.store.api_token(id)? else {
        return Ok(None);
    };
    rec.revoked = true;
    shared.ledger.put_api_token(id, &rec)?;
    shared.event(None, EventKind::TokenRevoked, format!("api token {id}"));
    shared.ledger.durable().await?;
    tracing::info!(token = %id, "api token revoked");
    Ok(Some(summary(id, &rec)))
}

fn summary(id: &str, rec: &ApiTokenRecord) -> TokenSummary {
    TokenSummary {
        id: id.to_owned(),
        created_ms: rec.created_ms,
        expires_ms: rec.expires_ms,
        uses_left: None,
        revoked: rec.revoked,
        role: Some(rec.role),
    }
}
