//! Why a request failed, as the wire says it.

use serde::{Deserialize, Serialize};

/// Why a request failed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message} ({})", code.as_str())]
pub struct ErrorBody {
    /// A stable code.
    pub code: ErrorCode,
    /// A message for people.
    pub message: String,
    /// With [`ErrorCode::NotLeader`]: the dispatcher that leads now, if
    /// the one asked knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<LeaderHint>,
}

/// Where the leader of a group of dispatchers is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderHint {
    /// Its QUIC address (`host:port`).
    pub addr: String,
    /// Its public key.
    pub key: [u8; 32],
    /// Its REST API's URL, if it serves one.
    #[serde(default)]
    pub api_url: Option<String>,
}

impl ErrorBody {
    /// Builds an error body.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            leader: None,
        }
    }

    /// "Ask the leader": the answer of a dispatcher that does not lead.
    pub fn not_leader(leader: Option<LeaderHint>) -> Self {
        let message = match &leader {
            Some(l) => format!("this dispatcher does not lead its group; the leader is {}", l.addr),
            None => "this dispatcher does not lead its group, and no leader is elected yet; try again shortly".to_owned(),
        };
        Self {
            code: ErrorCode::NotLeader,
            message,
            leader,
        }
    }
}

/// Stable error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The peer's key is not allowed to do this.
    Unauthorized,
    /// The request is not valid.
    BadRequest,
    /// No such task or blob.
    NotFound,
    /// Something is over a size cap.
    TooLarge,
    /// Another protocol version.
    Unsupported,
    /// The frame could not be decoded.
    Malformed,
    /// The state does not allow it (e.g. cancelling a finished task).
    Conflict,
    /// The dispatcher failed.
    Internal,
    /// The queue holds as many tasks as it may; try again later.
    QueueFull,
    /// This dispatcher is a follower in a group: ask the leader
    /// ([`ErrorBody::leader`]).
    NotLeader,
}

impl ErrorCode {
    /// The code's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::BadRequest => "bad_request",
            Self::NotFound => "not_found",
            Self::TooLarge => "too_large",
            Self::Unsupported => "unsupported",
            Self::Malformed => "malformed",
            Self::Conflict => "conflict",
            Self::Internal => "internal",
            Self::QueueFull => "queue_full",
            Self::NotLeader => "not_leader",
        }
    }
}
