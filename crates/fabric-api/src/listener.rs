//! The REST listener: an accept loop over hyper's HTTP/1 connections with
//! a cap on open connections and a deadline on every request head.
//!
//! `axum::serve` has neither: 19,985 idle TCP connections took `fabric up`
//! to its open-file limit, and QUIC, the store and `/health` failed with it
//! (issue 20, item 8). Here:
//!
//! - at most [`Listening::max_connections`] connections are open at once;
//!   past it the loop stops accepting (new connections wait in the
//!   kernel's backlog, which costs this process no file descriptor) until
//!   one closes. The default is derived from the open-file limit so that
//!   three quarters of it stay for the store, QUIC and the sandbox
//!   ([`default_max_connections`]).
//! - a request head must arrive whole within [`Listening::header_timeout`]
//!   of the connection opening, or of the previous response on a
//!   kept-alive connection: hyper's `header_read_timeout` covers both, so
//!   an idle connection (sending nothing, or kept alive with nothing more
//!   to ask) is closed after that long.
//!
//! Bodies have their own deadline (`deadline.rs`).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// How the listener treats connections.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Listening {
    /// Connections open at once; more wait to be accepted.
    pub max_connections: usize,
    /// Time a connection has to send a whole request head (and the
    /// longest a kept-alive connection may sit idle).
    pub header_timeout: Duration,
}

/// Connections when nothing else says: at most this many...
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// ...and never more than this share of the open-file limit.
const SHARE_OF_OPEN_FILES: u64 = 4;
/// The least the derived cap goes down to.
const MIN_CONNECTIONS: usize = 16;

/// Raises the soft open-file limit to the hard one (as Go's runtime does
/// for its programs); the soft limit after.
pub(crate) fn raise_open_files() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft >= hard {
        return Some(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => {
            tracing::info!(from = soft, to = hard, "raised the open-file limit");
            Some(hard)
        }
        Err(e) => {
            tracing::debug!(error = %e, "cannot raise the open-file limit");
            Some(soft)
        }
    }
}

/// [`DEFAULT_MAX_CONNECTIONS`], or a quarter of the open-file limit
/// `open_files` when that is less.
pub(crate) fn default_max_connections(open_files: Option<u64>) -> usize {
    let Some(limit) = open_files else {
        return DEFAULT_MAX_CONNECTIONS;
    };
    let share = usize::try_from(limit / SHARE_OF_OPEN_FILES).unwrap_or(usize::MAX);
    share.clamp(MIN_CONNECTIONS, DEFAULT_MAX_CONNECTIONS)
}

/// Accepts and serves connections until the process ends.
/// `open` counts the connections open (`fabric_api_connections`).
pub(crate) async fn serve(listener: TcpListener, router: Router, how: Listening, open: Gauge) {
    let slots = Arc::new(Semaphore::new(how.max_connections.max(1)));
    let mut at_cap = false;
    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => {
                at_cap = false;
                p
            }
            Err(_) => {
                if !std::mem::replace(&mut at_cap, true) {
                    tracing::warn!(
                        max = how.max_connections,
                        "REST connections at their cap; new ones wait until one closes"
                    );
                }
                match slots.clone().acquire_owned().await {
                    Ok(p) => p,
                    // Never closed.
                    Err(_) => return,
                }
            }
        };
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors (or a connection reset before it
                // was accepted): wait a little rather than spin.
                tracing::warn!(error = %e, "REST listener cannot accept");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let open = open.clone();
        open.inc();
        tokio::spawn(async move {
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(how.header_timeout)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "REST connection ended");
            }
            open.dec();
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::{DEFAULT_MAX_CONNECTIONS, MIN_CONNECTIONS, default_max_connections};

    #[test]
    fn the_cap_leaves_three_quarters_of_the_open_files() {
        assert_eq!(default_max_connections(Some(512)), 128);
        assert_eq!(
            default_max_connections(Some(1 << 20)),
            DEFAULT_MAX_CONNECTIONS
        );
        assert_eq!(default_max_connections(Some(20)), MIN_CONNECTIONS);
        assert_eq!(default_max_connections(None), DEFAULT_MAX_CONNECTIONS);
    }
}
