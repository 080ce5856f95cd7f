//! A native task's stdout and stderr: read from the helper's pipes in
//! bounded chunks (streamed as events), and kept, capped, for the result.

use fabric_proto::OutputStream;
use tokio::io::{AsyncRead, AsyncReadExt as _};

/// Bytes of output in one streamed chunk at most.
pub const OUTPUT_CHUNK: usize = 16 << 10;

/// Reads a pipe in chunks of at most [`OUTPUT_CHUNK`] until it closes.
pub(crate) async fn pump(
    mut pipe: impl AsyncRead + Unpin,
    stream: OutputStream,
    tx: tokio::sync::mpsc::Sender<(OutputStream, Vec<u8>)>,
) {
    let mut buf = vec![0u8; OUTPUT_CHUNK];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send((stream, buf[..n].to_vec())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Output kept for the result, each stream up to the cap.
pub(crate) struct Kept {
    cap: usize,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Kept {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }

    pub fn add(&mut self, stream: OutputStream, bytes: &[u8]) {
        let buf = match stream {
            OutputStream::Stdout => &mut self.stdout,
            OutputStream::Stderr => &mut self.stderr,
        };
        let room = self.cap.saturating_sub(buf.len());
        buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    pub fn into_parts(self) -> (Vec<u8>, Vec<u8>) {
        (self.stdout, self.stderr)
    }
}
