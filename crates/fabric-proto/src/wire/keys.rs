//! Views of the data at rest: the keyring, a backup, the audit trail.

use serde::{Deserialize, Serialize};

/// One data key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Its id (what each sealed value names).
    pub id: u32,
    /// When it was made (ms since the epoch).
    pub created_ms: u64,
    /// Whether new values are sealed with it.
    pub active: bool,
}

/// A rewrap pass's progress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RewrapView {
    /// Values and files looked at.
    pub seen: u64,
    /// Of them, re-sealed with the active key.
    pub resealed: u64,
    /// Whether the pass is over.
    pub finished: bool,
    /// The data key the pass seals with.
    #[serde(default)]
    pub key: u32,
    /// Why it stopped, when it failed (it resumes at the next start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The keyring, without key material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysView {
    /// `operator` (the operator's key file wraps the data keys) or `local`
    /// (a key beside the data does).
    pub wrap: String,
    /// The wrapping key's fingerprint.
    pub fingerprint: String,
    /// Every data key, oldest first.
    pub keys: Vec<KeyInfo>,
    /// Values and files each key seals (key 0: none, plaintext), when a
    /// census was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub census: Option<Vec<(u32, u64)>>,
    /// The rewrap under way or last finished since start, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewrap: Option<RewrapView>,
}

/// What a backup holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupView {
    /// The store format.
    pub format: u32,
    /// When it was taken (ms since the epoch).
    pub taken_ms: u64,
    /// Tasks.
    pub tasks: u64,
    /// Recorded results.
    pub results: u64,
    /// Jobs.
    pub jobs: u64,
    /// Schedules.
    pub schedules: u64,
    /// Events.
    pub events: u64,
    /// Values in all.
    pub values: u64,
    /// Blob files.
    pub files: u64,
    /// Bytes.
    pub bytes: u64,
}

/// One admin action.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When (ms since the epoch).
    pub at_ms: u64,
    /// Who: `key <hex>` (a client key, with its name) or `token <id>` (a
    /// REST token).
    pub actor: String,
    /// What: `token_created`, `token_revoked`, `worker_removed`,
    /// `retried`, `cancelled`, `key_rotated`, `backup`, ...
    pub action: String,
    /// The task it was about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<crate::TaskId>,
    /// Details.
    pub detail: String,
}
