//! REST uploads stream into the store (issue 20, item 10): many big blob
//! uploads at once cost the dispatcher buffers, not their bodies.

use std::io::Read;

use fabric_proto::Sha256;
use fabric_tests::harness::rest::RestCluster;

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

/// The peak resident memory of process `pid` (VmHWM), in KiB.
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmHWM in {status}"))
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
