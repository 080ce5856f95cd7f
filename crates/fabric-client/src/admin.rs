//! Admin calls: join and REST tokens, retries of dead letters, removing
//! workers.

use fabric_proto::wire::{Request, Response, TokenSummary};
use fabric_proto::{TaskId, WorkerKey};

use crate::{Client, ClientError, unexpected};

impl Client {
    /// Mints a join token for a new worker.
    pub async fn create_join_token(&self) -> Result<String, ClientError> {
        match self.call(&Request::CreateJoinToken).await? {
            Response::JoinToken { token } => Ok(token),
            other => Err(unexpected(other)),
        }
    }

    /// Mints a join token accepted for `ttl` (the dispatcher's default, 24 h,
    /// when `None`) and for `uses` joins (unlimited when `None`). Admin only.
    pub async fn create_token(
        &self,
        ttl: Option<std::time::Duration>,
        uses: Option<u32>,
    ) -> Result<(String, TokenSummary), ClientError> {
        self.create_token_with_role(ttl, uses, None).await
    }

    /// Mints a join token, or with `role` a REST API token. Admin only.
    pub async fn create_token_with_role(
        &self,
        ttl: Option<std::time::Duration>,
        uses: Option<u32>,
        role: Option<fabric_proto::ApiRole>,
    ) -> Result<(String, TokenSummary), ClientError> {
        let ttl_ms = ttl.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        match self
            .call(&Request::CreateToken { ttl_ms, uses, role })
            .await?
        {
            Response::TokenCreated { token, info } => Ok((token, info)),
            other => Err(unexpected(other)),
        }
    }

    /// Queues dead letter `id` again as a new task; its id. Admin only.
    pub async fn retry(&self, id: TaskId) -> Result<TaskId, ClientError> {
        match self.call(&Request::Retry { id }).await? {
            Response::Submitted { id, .. } => Ok(id),
            other => Err(unexpected(other)),
        }
    }

    /// The join and REST tokens, newest first (never their secrets). Admin
    /// only.
    pub async fn list_tokens(&self) -> Result<Vec<TokenSummary>, ClientError> {
        match self.call(&Request::ListTokens).await? {
            Response::Tokens(t) => Ok(t),
            other => Err(unexpected(other)),
        }
    }

    /// Revokes the join token with this id (or unique id prefix). Admin
    /// only.
    pub async fn revoke_token(&self, id: &str) -> Result<TokenSummary, ClientError> {
        let req = Request::RevokeToken { id: id.to_owned() };
        match self.call(&req).await? {
            Response::TokenRevoked(t) => Ok(t),
            other => Err(unexpected(other)),
        }
    }

    /// Removes a worker by key (or unique key prefix): its key is
    /// forgotten, its connection closed, its tasks requeued. Returns the
    /// key, whether it was connected and how many tasks were requeued.
    /// Admin only.
    pub async fn remove_worker(&self, key: &str) -> Result<(WorkerKey, bool, u32), ClientError> {
        let req = Request::RemoveWorker {
            key: key.to_owned(),
        };
        match self.call(&req).await? {
            Response::WorkerRemoved {
                key,
                connected,
                requeued,
            } => Ok((key, connected, requeued)),
            other => Err(unexpected(other)),
        }
    }
}
