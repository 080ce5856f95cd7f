//! The cluster's live feed: what happened, as it happens, for
//! `GET /api/v1/events` (and the dashboard). A bounded broadcast: a
//! subscriber that falls behind by more than [`FEED_CAPACITY`] events
//! loses the oldest and is told how many; nobody else waits for it.

use fabric_proto::{TaskId, TaskStatus};
use tokio::sync::broadcast;

/// Events kept for subscribers that read slowly.
pub const FEED_CAPACITY: usize = 1024;

/// One thing that happened.
#[derive(Clone, Debug)]
pub struct FeedEvent {
    /// When (ms since the epoch).
    pub at_ms: u64,
    /// What: an event-log kind (`lost`, `retry`, `worker_registered`, ...)
    /// or one of `submitted`, `started`, `finished`.
    pub kind: &'static str,
    /// The task it is about.
    pub task: Option<TaskId>,
    /// For `finished`, the final status.
    pub status: Option<TaskStatus>,
    /// Details for people.
    pub detail: String,
}

/// The sending side; subscribers take receivers.
#[derive(Debug)]
pub struct Feed {
    tx: broadcast::Sender<FeedEvent>,
}

impl Default for Feed {
    fn default() -> Self {
        Self {
            tx: broadcast::channel(FEED_CAPACITY).0,
        }
    }
}

impl Feed {
    /// Whether anyone listens now.
    pub fn is_listened(&self) -> bool {
        self.tx.receiver_count() > 0
    }

    /// Publishes an event (never waits; nobody listening is fine).
    pub fn publish(&self, ev: FeedEvent) {
        if self.is_listened() {
            let _ = self.tx.send(ev);
        }
    }

    /// A new subscriber, from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<FeedEvent> {
        self.tx.subscribe()
    }
}
