//! Events: the dispatcher's append-only log, keyed by sequence.

use std::fmt;

use fabric_proto::TaskId;
use serde::{Deserialize, Serialize};

use crate::{Result, Store};

/// What an event says happened.
///
/// Stored as its snake_case name ([`EventKind::as_str`]), the same string
/// records written before this enum existed hold, so old logs decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A task was accepted.
    Submitted,
    /// A task was leased to a worker.
    Leased,
    /// An attempt was lost with its worker.
    Lost,
    /// A worker refused an assignment.
    Refused,
    /// An attempt failed and the task will run again.
    Retry,
    /// A task's result was recorded.
    Recorded,
    /// A task ended in the dead-letter set.
    DeadLetter,
    /// A task was cancelled.
    Cancelled,
    /// A result from a superseded attempt was dropped.
    StaleResult,
    /// A worker joined with a token.
    WorkerJoined,
    /// A worker registered (on every connection), with the runs it adopted.
    WorkerRegistered,
    /// A worker went away.
    WorkerGone,
    /// A join token was minted.
    TokenCreated,
    /// A join token was revoked.
    TokenRevoked,
    /// An operator removed a worker's key.
    WorkerRemoved,
    /// An operator started a new data key.
    KeyRotated,
    /// An operator took a backup.
    Backup,
    /// An operator changed the group of dispatchers.
    MembersChanged,
}

impl EventKind {
    /// Its stored name: `submitted`, `dead_letter`, `worker_joined`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::Leased => "leased",
            Self::Lost => "lost",
            Self::Refused => "refused",
            Self::Retry => "retry",
            Self::Recorded => "recorded",
            Self::DeadLetter => "dead_letter",
            Self::Cancelled => "cancelled",
            Self::StaleResult => "stale_result",
            Self::WorkerJoined => "worker_joined",
            Self::WorkerRegistered => "worker_registered",
            Self::WorkerGone => "worker_gone",
            Self::TokenCreated => "token_created",
            Self::TokenRevoked => "token_revoked",
            Self::WorkerRemoved => "worker_removed",
            Self::KeyRotated => "key_rotated",
            Self::Backup => "backup",
            Self::MembersChanged => "members_changed",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the dispatcher's event log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// When (ms since the epoch).
    pub at_ms: u64,
    /// The task, if the event is about one.
    pub task: Option<TaskId>,
    /// What happened.
    pub kind: EventKind,
    /// Details for people.
    pub detail: String,
    /// Who caused it, when a request did: `key <hex>` or `token <id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl Store {
    /// Appends to the event log.
    pub fn append_event(&self, event: &StoredEvent) -> Result<()> {
        let _gate = self.gate();
        let seq = self.next_seq()?;
        self.events
            .insert(seq.to_be_bytes(), self.enc("event", event)?)?;
        Ok(())
    }

    /// Writes an event at a sequence number given (a replicated command's:
    /// the same on every replica); one already there is replaced.
    pub fn put_event(&self, seq: u64, event: &StoredEvent) -> Result<()> {
        let _gate = self.gate();
        self.events
            .insert(seq.to_be_bytes(), self.enc("event", event)?)?;
        Ok(())
    }

    /// The newest `limit` events, oldest first.
    pub fn recent_events(&self, limit: usize) -> Result<Vec<StoredEvent>> {
        let mut out: Vec<StoredEvent> = self
            .events
            .iter()
            .values()
            .rev()
            .take(limit)
            .map(|v| self.dec("event", &v?))
            .collect::<Result<_>>()?;
        out.reverse();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use fabric_proto::{TaskId, from_cbor, to_cbor};
    use serde::Serialize;

    use super::{EventKind, StoredEvent};
    use crate::StoreError;
    use crate::testing::{flush, temp_store};

    const ALL: [EventKind; 17] = [
        EventKind::Submitted,
        EventKind::Leased,
        EventKind::Lost,
        EventKind::Refused,
        EventKind::Retry,
        EventKind::Recorded,
        EventKind::DeadLetter,
        EventKind::Cancelled,
        EventKind::StaleResult,
        EventKind::WorkerJoined,
        EventKind::WorkerRegistered,
        EventKind::WorkerGone,
        EventKind::TokenCreated,
        EventKind::TokenRevoked,
        EventKind::WorkerRemoved,
        EventKind::KeyRotated,
        EventKind::Backup,
    ];

    /// An event as written before kinds were an enum.
    #[derive(Serialize)]
    struct LegacyEvent<'a> {
        at_ms: u64,
        task: Option<TaskId>,
        kind: &'a str,
        detail: &'a str,
    }

    fn event(kind: EventKind, detail: &str) -> StoredEvent {
        StoredEvent {
            at_ms: 1_700_000_000_000,
            task: Some(TaskId::new()),
            kind,
            detail: detail.to_owned(),
            actor: None,
        }
    }

    #[test]
    fn kinds_are_stored_as_their_names() {
        for kind in ALL {
            assert_eq!(kind.to_string(), kind.as_str());
            assert_eq!(to_cbor(&kind).unwrap(), to_cbor(&kind.as_str()).unwrap());
            assert_eq!(
                from_cbor::<EventKind>(&to_cbor(&kind.as_str()).unwrap()).unwrap(),
                kind
            );
        }
        assert_eq!(EventKind::DeadLetter.as_str(), "dead_letter");
        assert_eq!(EventKind::TokenCreated.as_str(), "token_created");
    }

    #[test]
    fn an_event_with_a_string_kind_decodes_into_the_enum() {
        let task = Some(TaskId::new());
        let old = to_cbor(&LegacyEvent {
            at_ms: 42,
            task,
            kind: "dead_letter",
            detail: "ended failed",
        })
        .unwrap();
        let ev: StoredEvent = from_cbor(&old).unwrap();
        assert_eq!(
            ev,
            StoredEvent {
                at_ms: 42,
                task,
                kind: EventKind::DeadLetter,
                detail: "ended failed".into(),
                actor: None,
            }
        );
        // And the new encoding is byte for byte the old one.
        assert_eq!(to_cbor(&ev).unwrap(), old);
    }

    #[test]
    fn old_events_on_disk_read_back() {
        let (_dir, store) = temp_store();
        let old = to_cbor(&LegacyEvent {
            at_ms: 1,
            task: None,
            kind: "worker_joined",
            detail: "w from 127.0.0.1",
        })
        .unwrap();
        store
            .events
            .insert(0u64.to_be_bytes(), store.crypt().seal(b"event", &old))
            .unwrap();
        let got = store.recent_events(10).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].kind, EventKind::WorkerJoined);
        assert_eq!(got[0].task, None);
    }

    #[test]
    fn an_unknown_kind_is_reported_as_corrupt() {
        let (_dir, store) = temp_store();
        let bad = to_cbor(&LegacyEvent {
            at_ms: 1,
            task: None,
            kind: "sneezed",
            detail: "",
        })
        .unwrap();
        store
            .events
            .insert(0u64.to_be_bytes(), store.crypt().seal(b"event", &bad))
            .unwrap();
        assert!(matches!(
            store.recent_events(10),
            Err(StoreError::Corrupt { what: "event", .. })
        ));
    }

    #[test]
    fn recent_events_are_the_newest_oldest_first_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let events: Vec<_> = ALL.iter().map(|&k| event(k, k.as_str())).collect();
        {
            let store = crate::testing::reopen(dir.path());
            for e in &events {
                store.append_event(e).unwrap();
            }
            flush(&store);
        }
        let store = crate::testing::reopen(dir.path());
        assert_eq!(store.recent_events(100).unwrap(), events);
        assert_eq!(store.recent_events(3).unwrap(), events[events.len() - 3..]);
        assert!(store.recent_events(0).unwrap().is_empty());
    }
}
