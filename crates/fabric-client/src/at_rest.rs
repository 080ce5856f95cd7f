//! Admin calls about the data at rest: the keyring, backups, the audit
//! trail.

use fabric_proto::wire::{AuditEntry, BackupView, KeysView, MemberView, Request, Response};

use crate::{Client, ClientError, unexpected};

impl Client {
    /// The store's keyring; with `census`, how many values each data key
    /// seals (the dispatcher scans its store). Admin only.
    pub async fn keys(&self, census: bool) -> Result<KeysView, ClientError> {
        match self.call(&Request::Keys { census }).await? {
            Response::Keys(k) => Ok(*k),
            other => Err(unexpected(other)),
        }
    }

    /// Starts a new data key for new writes; with `rewrap`, the old values
    /// are re-sealed with it in the background. Admin only.
    pub async fn rotate_key(&self, rewrap: bool) -> Result<KeysView, ClientError> {
        match self.call(&Request::RotateKey { rewrap }).await? {
            Response::Keys(k) => Ok(*k),
            other => Err(unexpected(other)),
        }
    }

    /// Takes a consistent backup, handing each piece to `out` as it comes;
    /// what the backup holds. Admin only.
    pub async fn backup(
        &self,
        mut out: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<BackupView, ClientError> {
        let (mut next, mut recv) = self.first_answer(&Request::Backup).await?;
        loop {
            match next {
                Response::BackupPiece { bytes } => out(&bytes).map_err(ClientError::Io)?,
                Response::BackupDone(view) => return Ok(view),
                Response::Error(e) => return Err(ClientError::Remote(e)),
                other => return Err(unexpected(other)),
            }
            next = recv.expect().await.map_err(self.net())?;
        }
    }

    /// The group of dispatchers as the one connected to sees it (empty
    /// when it is alone).
    pub async fn members(&self) -> Result<Vec<MemberView>, ClientError> {
        match self.call(&Request::Members).await? {
            Response::Members(m) => Ok(m),
            other => Err(unexpected(other)),
        }
    }

    /// Adds a dispatcher to the group; the group after. Admin only.
    pub async fn add_member(
        &self,
        key: [u8; 32],
        addr: String,
        api_url: Option<String>,
    ) -> Result<Vec<MemberView>, ClientError> {
        match self
            .call(&Request::AddMember { key, addr, api_url })
            .await?
        {
            Response::Members(m) => Ok(m),
            other => Err(unexpected(other)),
        }
    }

    /// Removes a dispatcher from the group; the group after. Admin only.
    pub async fn remove_member(&self, key: [u8; 32]) -> Result<Vec<MemberView>, ClientError> {
        match self.call(&Request::RemoveMember { key }).await? {
            Response::Members(m) => Ok(m),
            other => Err(unexpected(other)),
        }
    }

    /// The newest `limit` admin actions, newest first. Admin only.
    pub async fn audit(&self, limit: u32) -> Result<Vec<AuditEntry>, ClientError> {
        match self.call(&Request::Audit { limit }).await? {
            Response::Audit(a) => Ok(a),
            other => Err(unexpected(other)),
        }
    }
}
