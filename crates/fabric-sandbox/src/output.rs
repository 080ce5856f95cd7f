//! A stdout/stderr sink that keeps the first `cap` bytes and counts the rest.
//!
//! wasmtime-wasi's own memory pipe traps the guest once full; a task that
//! prints too much should instead finish with its output cut and flagged.

use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// How much a single write may be told it can send.
const WRITE_PERMIT: usize = 64 * 1024;

#[derive(Debug, Default)]
struct Capped {
    buf: Vec<u8>,
    cap: usize,
    dropped: u64,
}

/// A cloneable handle; all clones share one buffer.
#[derive(Clone, Debug)]
pub(crate) struct CappedPipe(Arc<Mutex<Capped>>);

impl CappedPipe {
    pub(crate) fn new(cap: usize) -> Self {
        Self(Arc::new(Mutex::new(Capped {
            buf: Vec::new(),
            cap,
            dropped: 0,
        })))
    }

    fn push(&self, bytes: &[u8]) {
        let mut c = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let room = c.cap.saturating_sub(c.buf.len());
        let keep = bytes.len().min(room);
        c.buf.extend_from_slice(&bytes[..keep]);
        c.dropped += (bytes.len() - keep) as u64;
    }

    /// The kept bytes and whether anything was cut.
    pub(crate) fn take(&self) -> (Vec<u8>, bool) {
        let mut c = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        (std::mem::take(&mut c.buf), c.dropped > 0)
    }
}

impl OutputStream for CappedPipe {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_PERMIT)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedPipe {
    async fn ready(&mut self) {}
}

impl AsyncWrite for CappedPipe {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CappedPipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedPipe {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_cap_bytes_and_flags_the_rest() {
        let p = CappedPipe::new(5);
        let mut w = p.clone();
        OutputStream::write(&mut w, Bytes::from_static(b"abc")).unwrap();
        OutputStream::write(&mut w, Bytes::from_static(b"defgh")).unwrap();
        assert_eq!(p.take(), (b"abcde".to_vec(), true));
        let q = CappedPipe::new(5);
        q.push(b"ab");
        assert_eq!(q.take(), (b"ab".to_vec(), false));
    }
}
