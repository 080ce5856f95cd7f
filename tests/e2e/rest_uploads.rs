//! REST uploads stream into the store (issue 20, item 10): many big blob
//! uploads, or big task bodies, at once cost the dispatcher buffers, not
//! their bodies.

use std::io::Read;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use fabric_proto::Sha256;
use fabric_tests::harness::cluster::TRIVIAL_WAT;
use fabric_tests::harness::process::peak_kib;
use fabric_tests::harness::rest::{RestCluster, wasm};

/// Bytes that do not repeat (xorshift, seeded), made as they are read so
/// the test holds none of them.
struct Noise {
    x: u64,
    left: u64,
}

impl Noise {
    fn new(seed: u64, len: u64) -> Self {
        Self {
            x: 0x2545_F491_4F6C_DD1D ^ (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
            left: len,
        }
    }
}

impl Read for Noise {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for b in &mut buf[..n] {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            *b = self.x as u8;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Noise as base64, made as it is read: the noise, the encoded piece
/// not yet read, and how far it was read.
struct Base64Of(Noise, Vec<u8>, usize);

impl Read for Base64Of {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.2 == self.1.len() {
            // A multiple of 3 bytes, so pieces encode without padding but
            // for the last.
            let mut raw = vec![0u8; 48 << 10];
            let n = self.0.read(&mut raw)?;
            self.1 = B64.encode(&raw[..n]).into_bytes();
            self.2 = 0;
        }
        let n = buf.len().min(self.1.len() - self.2);
        buf[..n].copy_from_slice(&self.1[self.2..self.2 + n]);
        self.2 += n;
        Ok(n)
    }
}

/// The digest of `Noise::new(seed, len)`.
fn digest(seed: u64, len: u64) -> String {
    let mut noise = Noise::new(seed, len);
    let mut hasher = Sha256::hasher();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = noise.read(&mut buf).expect("noise");
        if n == 0 {
            break hasher.finish().to_hex();
        }
        hasher.update(&buf[..n]);
    }
}

/// 24 concurrent 64 MiB blob uploads (1.5 GiB in all) raise the
/// dispatcher's memory peak by far less than one of them per upload, and
/// each is stored under its digest.
#[test]
fn concurrent_big_blob_uploads_cost_buffers_not_bodies() {
    const UPLOADS: u64 = 24;
    const LEN: u64 = 64 << 20;
    // The deadline is not what this test is about; a slow disk must not
    // trip it.
    let c = RestCluster::start(&["--api-body-timeout", "10m"]);
    let before = peak_kib(c.up.pid());
    let (url, admin) = (c.url.as_str(), c.admin.as_str());
    let answers: Vec<(u64, u16, serde_json::Value)> = std::thread::scope(|s| {
        let uploads: Vec<_> = (0..UPLOADS)
            .map(|i| {
                s.spawn(move || {
                    let resp = ureq::post(&format!("{url}/api/v1/blobs"))
                        .set("Authorization", &format!("Bearer {admin}"))
                        .set("Content-Type", "application/octet-stream")
                        .set("Content-Length", &LEN.to_string())
                        .timeout(std::time::Duration::from_secs(600))
                        .send(Noise::new(i, LEN));
                    match resp {
                        Ok(r) | Err(ureq::Error::Status(_, r)) => {
                            let status = r.status();
                            (i, status, r.into_json().unwrap_or_default())
                        }
                        Err(e) => panic!("upload {i}: {e}"),
                    }
                })
            })
            .collect();
        uploads
            .into_iter()
            .map(|u| u.join().expect("upload thread"))
            .collect()
    });
    let peak = peak_kib(c.up.pid());
    for (i, status, body) in &answers {
        assert_eq!(*status, 201, "upload {i}: {body}");
        assert_eq!(body["len"], LEN, "upload {i}: {body}");
        assert_eq!(
            body["sha256"].as_str(),
            Some(digest(*i, LEN).as_str()),
            "upload {i}"
        );
    }
    let grew_mib = peak.saturating_sub(before) / 1024;
    assert!(
        grew_mib < 256,
        "the dispatcher's peak grew by {grew_mib} MiB ({} to {} MiB) for {UPLOADS} uploads of {} MiB",
        before / 1024,
        peak / 1024,
        LEN >> 20
    );
}

/// 16 concurrent task bodies carrying 40 MiB inputs in base64 (53 MiB of
/// JSON each) are spooled and parsed two at a time: the dispatcher's peak
/// grows by a few of them (and the worker's two running tasks), not by all
/// sixteen; each task is admitted.
#[test]
fn concurrent_big_task_bodies_cost_a_few_bodies_not_all() {
    const TASKS: u64 = 16;
    const LEN: u64 = 40 << 20;
    let c = RestCluster::start(&["--api-body-timeout", "10m"]);
    let module = c.module(&wasm(TRIVIAL_WAT));
    let before = peak_kib(c.up.pid());
    let (url, admin) = (c.url.as_str(), c.admin.as_str());
    let answers: Vec<(u16, serde_json::Value)> = std::thread::scope(|s| {
        let posts: Vec<_> = (0..TASKS)
            .map(|i| {
                let module = module.as_str();
                s.spawn(move || {
                    let head = format!(r#"{{"module":"{module}","input_b64":""#);
                    let tail = r#""}"#;
                    let len = head.len() as u64 + LEN.div_ceil(3) * 4 + tail.len() as u64;
                    let body = std::io::Cursor::new(head)
                        .chain(Base64Of(Noise::new(i, LEN), Vec::new(), 0))
                        .chain(std::io::Cursor::new(tail));
                    let resp = ureq::post(&format!("{url}/api/v1/tasks"))
                        .set("Authorization", &format!("Bearer {admin}"))
                        .set("Content-Type", "application/json")
                        .set("Content-Length", &len.to_string())
                        .timeout(std::time::Duration::from_secs(600))
                        .send(body);
                    match resp {
                        Ok(r) | Err(ureq::Error::Status(_, r)) => {
                            let status = r.status();
                            (status, r.into_json().unwrap_or_default())
                        }
                        Err(e) => panic!("task body {i}: {e}"),
                    }
                })
            })
            .collect();
        posts
            .into_iter()
            .map(|p| p.join().expect("post thread"))
            .collect()
    });
    let peak = peak_kib(c.up.pid());
    for (status, body) in &answers {
        assert_eq!(*status, 201, "{body}");
        let id = body["id"].as_str().expect("id");
        let task = c.get(&format!("/api/v1/tasks/{id}"), Some(&c.admin));
        assert_eq!(task.status, 200, "{task:?}");
    }
    let grew_mib = peak.saturating_sub(before) / 1024;
    assert!(
        grew_mib < 448,
        "the dispatcher's peak grew by {grew_mib} MiB ({} to {} MiB) for {TASKS} task bodies of {} MiB",
        before / 1024,
        peak / 1024,
        (LEN.div_ceil(3) * 4) >> 20
    );
}

/// Task bodies too big to read in memory are refused like small ones:
/// 400 naming the problem for bad JSON or an unknown field, 415 without a
/// JSON content type, 413 over the cap (answered, not reset, though the
/// client sends its whole body first).
#[test]
fn big_task_bodies_are_refused_like_small_ones() {
    let c = RestCluster::start(&[]);
    let module = c.module(&wasm(TRIVIAL_WAT));
    let pad = "x".repeat(1 << 20);
    let post = |ctype: &str, body: &[u8]| c.post_raw("/api/v1/tasks", Some(&c.admin), ctype, body);

    let unknown = format!(r#"{{"module":"{module}","args":["{pad}"],"bogus":1}}"#);
    let a = post("application/json", unknown.as_bytes());
    assert_eq!((a.status, a.code()), (400, "bad_request"), "{a:?}");
    assert!(a.text.contains("bogus"), "{a:?}");

    let broken = format!(r#"{{"module":"{module}","args":["{pad}"#);
    let a = post("application/json", broken.as_bytes());
    assert_eq!(a.status, 400, "{a:?}");
    assert!(a.text.contains("not valid JSON"), "{a:?}");

    let a = post("text/plain", unknown.as_bytes());
    assert_eq!(a.status, 415, "{a:?}");

    // Over the cap (4/3 of the 64 MiB input cap + 1 MiB).
    let huge = vec![b' '; 90 << 20];
    let a = post("application/json", &huge);
    assert_eq!((a.status, a.code()), (413, "too_large"), "{a:?}");

    // A big body that fits is admitted, its input whole.
    let input = vec![b'a'; 3 << 20];
    let body = serde_json::json!({"module": module, "input_b64": B64.encode(&input)});
    let a = post("application/json", body.to_string().as_bytes());
    assert_eq!(a.status, 201, "{a:?}");
}
