//! Raw HTTP/1.1 over TCP, for what a polite client never does: connections
//! that send nothing, heads that never end, bodies sent a byte at a time.
//! Every wait here has a deadline and fails with what it saw.

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// `127.0.0.1:PORT` of an `http://127.0.0.1:PORT` URL.
pub fn addr_of(url: &str) -> String {
    url.strip_prefix("http://")
        .unwrap_or_else(|| panic!("{url} is not http://"))
        .trim_end_matches('/')
        .to_owned()
}

/// Opens a TCP connection that sends nothing.
pub fn connect(url: &str) -> TcpStream {
    let addr = addr_of(url);
    assert!(addr.starts_with("127.0.0.1:"), "loopback only: {addr}");
    TcpStream::connect_timeout(&addr.parse().expect("an address"), Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"))
}

/// Opens `n` connections that send nothing.
pub fn idle(url: &str, n: usize) -> Vec<TcpStream> {
    (0..n).map(|_| connect(url)).collect()
}

/// Sends the head of a `POST path` with `Content-Length: len` and `first`
/// bytes of its body, and no more.
pub fn start_upload(url: &str, path: &str, token: &str, len: u64, first: &[u8]) -> TcpStream {
    let mut s = connect(url);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\n\r\n",
        addr_of(url)
    );
    s.write_all(head.as_bytes()).expect("send head");
    s.write_all(first).expect("send body start");
    s
}

/// Sends a whole `GET path` (keep-alive) and reads its answer's head and
/// body (by Content-Length); the answer's text.
pub fn get_keep_alive(s: &mut TcpStream, url: &str, path: &str) -> String {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: keep-alive\r\n\r\n",
        addr_of(url)
    );
    s.write_all(req.as_bytes()).expect("send request");
    read_answer(s, &format!("GET {path}"))
}

/// Reads one answer's head and body (by Content-Length) from `s`; its
/// text. `what` names the request in a failure.
pub fn read_answer(s: &mut TcpStream, what: &str) -> String {
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = s
            .read(&mut buf)
            .unwrap_or_else(|e| panic!("reading the answer to {what}: {e}; so far {got:?}"));
        assert!(n > 0, "the connection closed mid-answer: {got:?}");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or_else(|| panic!("no Content-Length in {head}"));
            if body.len() >= len {
                return text;
            }
        }
    }
}

/// Waits until the server closes `s` (end of stream or reset); what it
/// sent before closing. Panics if it is still open after `within`.
pub fn wait_closed(s: &mut TcpStream, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the server kept the connection open for {within:?}; it sent {:?}",
            String::from_utf8_lossy(&got)
        );
        s.set_read_timeout(Some(left)).expect("timeout");
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("reading: {e}"),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Whether the server has neither answered on `s` nor closed it.
pub fn still_waiting(s: &TcpStream) -> bool {
    s.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 1];
    let waiting = matches!(s.peek(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock);
    s.set_nonblocking(false).expect("blocking");
    waiting
}
