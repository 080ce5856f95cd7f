//! A local cluster with its REST API: `fabric up` on free ports, the API's
//! URL from its output and the admin token from its profile, and a small
//! blocking HTTP client that never turns a status into an error.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

use super::cluster::fabric_cmd;
use super::deadline::OutputWithin as _;
use super::process::Proc;
use super::sandbox::{Sandbox, describe};

/// A module that exits with code 1 (a failure, a dead letter with no
/// retries).
pub const EXIT_1: &str = r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 1))))"#;

/// A module that loops until its fuel or timeout ends it.
pub const SPIN: &str =
    r#"(module (memory (export "memory") 1) (func (export "_start") (loop $l (br $l))))"#;

/// A WAT fixture's bytes.
pub fn wasm(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("fixture")
}

/// `fabric up` serving REST on a free port.
pub struct RestCluster {
    /// Its home.
    pub sb: Sandbox,
    /// The `fabric up` process.
    pub up: Proc,
    /// Its cluster profile.
    pub profile: PathBuf,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The admin token the profile carries.
    pub admin: String,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Its status.
    pub status: u16,
    /// Its body, parsed when it is JSON (`Null` otherwise).
    pub json: Value,
    /// Its body as text.
    pub text: String,
    /// Its `Retry-After`, if any.
    pub retry_after: Option<String>,
    /// Its `Content-Type`.
    pub content_type: String,
}

impl Answer {
    fn of(resp: ureq::Response) -> Self {
        let status = resp.status();
        let retry_after = resp.header("retry-after").map(str::to_owned);
        let content_type = resp.content_type().to_owned();
        let text = resp.into_string().unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            json,
            text,
            retry_after,
            content_type,
        }
    }

    /// The error code of an error answer.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }
}

impl RestCluster {
    /// Starts `fabric up` with one worker (2 slots) and `extra` flags;
    /// returns once the worker joined.
    pub fn start(extra: &[&str]) -> Self {
        Self::start_with_nofile(extra, None)
    }

    /// [`RestCluster::start`] with an open-file limit of `nofile` (soft and
    /// hard) when given.
    pub fn start_with_nofile(extra: &[&str], nofile: Option<u64>) -> Self {
        let mut flags = vec!["--api", "127.0.0.1:0"];
        flags.extend_from_slice(extra);
        Self::started(super::native::up_one_worker_with_nofile(&flags, nofile))
    }

    /// [`RestCluster::start`] logging at `log` (`debug`: as `-vv`).
    pub fn start_logged(extra: &[&str], log: &str) -> Self {
        let mut flags = vec!["--api", "127.0.0.1:0"];
        flags.extend_from_slice(extra);
        Self::started(super::native::up_one_worker_logged(&flags, log))
    }

    fn started((sb, up, profile, lines): (Sandbox, Proc, PathBuf, Vec<String>)) -> Self {
        let url = lines
            .iter()
            .find_map(|l| l.strip_prefix("REST API on "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|u| u.strip_suffix("/api/v1"))
            .unwrap_or_else(|| panic!("no REST API line in {lines:?}"))
            .to_owned();
        let text = std::fs::read_to_string(&profile).expect("profile");
        let table: toml::Table = toml::from_str(&text).expect("profile is TOML");
        assert_eq!(table["api_url"].as_str(), Some(url.as_str()), "{text}");
        let admin = table["api_token"].as_str().expect("api_token").to_owned();
        Self {
            sb,
            up,
            profile,
            url,
            admin,
        }
    }

    /// A `fabric` command on its profile.
    pub fn cmd(&self) -> Command {
        let mut cmd = fabric_cmd(&self.sb, None);
        cmd.arg("--cluster").arg(&self.profile);
        cmd
    }

    /// `fabric ARGS` on its profile, which must succeed; its stdout.
    pub fn fabric(&self, args: &[&str]) -> String {
        let out: Output = self.cmd().args(args).output_in_time().expect("fabric runs");
        assert!(out.status.success(), "fabric {args:?}: {}", describe(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Mints a REST token of `role` with `fabric token create`.
    pub fn token(&self, role: &str, extra: &[&str]) -> String {
        let mut args = vec!["token", "create", "--role", role];
        args.extend_from_slice(extra);
        self.fabric(&args)
    }

    fn request(&self, method: &str, path: &str, token: Option<&str>) -> ureq::Request {
        let mut req =
            ureq::request(method, &format!("{}{path}", self.url)).timeout(Duration::from_secs(30));
        if let Some(t) = token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        req
    }

    fn answer(result: Result<ureq::Response, ureq::Error>) -> Answer {
        match result {
            Ok(resp) | Err(ureq::Error::Status(_, resp)) => Answer::of(resp),
            Err(e) => panic!("HTTP request failed: {e}"),
        }
    }

    /// `GET path`.
    pub fn get(&self, path: &str, token: Option<&str>) -> Answer {
        Self::answer(self.request("GET", path, token).call())
    }

    /// `DELETE path`.
    pub fn delete(&self, path: &str, token: Option<&str>) -> Answer {
        Self::answer(self.request("DELETE", path, token).call())
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        Self::answer(self.request("POST", path, token).send_json(body.clone()))
    }

    /// `POST path` with raw bytes (and a content type).
    pub fn post_raw(&self, path: &str, token: Option<&str>, ctype: &str, body: &[u8]) -> Answer {
        Self::answer(
            self.request("POST", path, token)
                .set("Content-Type", ctype)
                .send_bytes(body),
        )
    }

    /// Uploads a module; its sha256.
    pub fn module(&self, bytes: &[u8]) -> String {
        let a = self.post_raw(
            "/api/v1/modules",
            Some(&self.admin),
            "application/octet-stream",
            bytes,
        );
        assert_eq!(a.status, 201, "{a:?}");
        a.json["sha256"].as_str().expect("sha256").to_owned()
    }

    /// Queues a task; its id.
    pub fn submit(&self, body: &Value) -> String {
        let a = self.post_json("/api/v1/tasks", Some(&self.admin), body);
        assert_eq!(a.status, 201, "{a:?}");
        a.json["id"].as_str().expect("id").to_owned()
    }

    /// Polls `GET /api/v1/tasks/{id}` until its `state` is `state` (within
    /// a minute); that task.
    pub fn wait_state(&self, id: &str, state: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let task = self.get(&format!("/api/v1/tasks/{id}"), Some(&self.admin));
            assert_eq!(task.status, 200, "{task:?}");
            if task.json["state"] == state {
                return task.json;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "task {id} was not {state} within a minute: {task:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Follows task `id`'s event stream to its `end` event; that event's
    /// data (the task and its output).
    pub fn wait_end(&self, id: &str) -> Value {
        let events = self.sse(
            &format!("/api/v1/tasks/{id}/events"),
            &self.admin,
            Duration::from_secs(60),
            |kind, _| kind == "end",
        );
        match events.last() {
            Some((kind, data)) if kind == "end" => data.clone(),
            _ => panic!("task {id}'s stream ended without an end event: {events:?}"),
        }
    }

    /// Reads a Server-Sent Events stream until `stop` says so (or the
    /// stream ends, or `timeout`); the (event, data) pairs read.
    pub fn sse(
        &self,
        path: &str,
        token: &str,
        timeout: Duration,
        mut stop: impl FnMut(&str, &Value) -> bool,
    ) -> Vec<(String, Value)> {
        let resp = self
            .request("GET", path, Some(token))
            .timeout(timeout)
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(resp.content_type(), "text/event-stream");
        let mut events = Vec::new();
        let mut kind = String::new();
        for line in BufReader::new(resp.into_reader()).lines() {
            let Ok(line) = line else { break };
            if let Some(k) = line.strip_prefix("event: ") {
                kind = k.to_owned();
            } else if let Some(d) = line.strip_prefix("data: ") {
                let v: Value = serde_json::from_str(d).unwrap_or(Value::Null);
                let done = stop(&kind, &v);
                events.push((std::mem::take(&mut kind), v));
                if done {
                    break;
                }
            }
        }
        events
    }
}
