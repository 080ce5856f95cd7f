//! What the admin commands print: join tokens and removed workers.

use std::fmt::Write as _;

use fabric_proto::WorkerKey;
use fabric_proto::now_ms;
use fabric_proto::wire::TokenSummary;
use serde::Serialize;

use super::Output;
use super::table::age;

/// A minted token: the text (shown once) and what `list` shows of it.
#[derive(Debug, Serialize)]
struct CreatedView<'a> {
    token: &'a str,
    #[serde(flatten)]
    info: &'a TokenSummary,
}

/// A removed worker.
#[derive(Debug, Serialize)]
struct RemovedView {
    key: WorkerKey,
    connected: bool,
    requeued: u32,
}

impl Output {
    /// A minted token. The human form is the token alone on stdout, so
    /// `fabric worker --join "$(fabric token create)"` works; its id and
    /// expiry go to stderr.
    pub(crate) fn token_created(self, token: &str, info: &TokenSummary) {
        if self == Self::Human {
            super::note(&format!(
                "token {} expires {}, {}",
                info.id,
                expiry(info.expires_ms),
                match info.role {
                    Some(role) => format!("REST API role {role}"),
                    None => uses(info.uses_left),
                }
            ));
        }
        self.emit(|| CreatedView { token, info }, || token.to_owned());
    }

    /// The token table.
    pub(crate) fn tokens(self, tokens: &[TokenSummary]) {
        self.emit(|| tokens, || table(tokens));
    }

    /// A revoked token.
    pub(crate) fn token_revoked(self, info: &TokenSummary) {
        self.emit(|| info, || format!("token {} revoked", info.id));
    }

    /// A removed worker.
    pub(crate) fn worker_removed(self, key: WorkerKey, connected: bool, requeued: u32) {
        self.emit(
            || RemovedView {
                key,
                connected,
                requeued,
            },
            || {
                let how = if connected {
                    "its connection closed"
                } else {
                    "it was not connected"
                };
                format!("worker {key} removed ({how}; {requeued} task(s) requeued)")
            },
        );
    }
}

fn table(tokens: &[TokenSummary]) -> String {
    let now = now_ms();
    let mut out = format!(
        "{:<16}  {:<11}  {:>8}  {:<20}  {:<9}  {}",
        "ID", "KIND", "CREATED", "EXPIRES", "USES LEFT", "STATE"
    );
    for t in tokens {
        let created = if t.created_ms == 0 {
            "-".to_owned()
        } else {
            format!("{} ago", age(now, t.created_ms))
        };
        let state = if t.revoked {
            "revoked"
        } else if t.expires_ms.is_some_and(|e| now >= e) {
            "expired"
        } else if t.uses_left == Some(0) {
            "used up"
        } else {
            "valid"
        };
        let left = t
            .uses_left
            .map_or_else(|| "unlimited".to_owned(), |n| n.to_string());
        let kind = t
            .role
            .map_or_else(|| "join".to_owned(), |r| format!("api:{r}"));
        let _ = write!(
            out,
            "\n{:<16}  {:<11}  {:>8}  {:<20}  {:<9}  {state}",
            t.id,
            kind,
            created,
            expiry(t.expires_ms),
            left
        );
    }
    if tokens.is_empty() {
        out.push_str("\n(no tokens)");
    }
    out
}

/// `in 23h`, `5m ago`, `never`.
fn expiry(at: Option<u64>) -> String {
    let now = now_ms();
    match at {
        None => "never".to_owned(),
        Some(at) if at > now => format!("in {}", age(at, now)),
        Some(at) => format!("{} ago", age(now, at)),
    }
}

fn uses(left: Option<u32>) -> String {
    match left {
        None => "unlimited uses".to_owned(),
        Some(1) => "1 use".to_owned(),
        Some(n) => format!("{n} uses"),
    }
}
