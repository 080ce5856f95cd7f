//! The threads that read the dispatcher for `fabric top`: a poller of the
//! cluster's figures and a follower of its event stream. Both stop when
//! the screen's end of the channel is gone.

use std::io::{BufRead as _, BufReader};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::app::Update;

/// Tasks the tasks view shows.
const TASKS: u32 = 100;
/// Jobs the jobs view shows.
const JOBS: u32 = 50;

fn get(agent: &ureq::Agent, url: &str, auth: &str) -> Result<Value, String> {
    match agent.get(url).set("Authorization", auth).call() {
        Ok(r) => r.into_json().map_err(|e| e.to_string()),
        Err(ureq::Error::Status(code, r)) => {
            let body: Value = r.into_json().unwrap_or(Value::Null);
            Err(format!(
                "{code} {}",
                body["error"]["message"].as_str().unwrap_or("error")
            ))
        }
        Err(e) => Err(e.to_string()),
    }
}

fn snapshot(agent: &ureq::Agent, base: &str, auth: &str) -> Result<Update, String> {
    let stats = get(agent, &format!("{base}/api/v1/stats"), auth)?;
    let workers = get(agent, &format!("{base}/api/v1/workers"), auth)?;
    let tasks = get(agent, &format!("{base}/api/v1/tasks?limit={TASKS}"), auth)?;
    let jobs = get(agent, &format!("{base}/api/v1/jobs?limit={JOBS}"), auth)?;
    Ok(Update::Snapshot {
        stats,
        workers: workers.as_array().cloned().unwrap_or_default(),
        tasks: tasks["tasks"].as_array().cloned().unwrap_or_default(),
        jobs: jobs["jobs"].as_array().cloned().unwrap_or_default(),
    })
}

/// Starts both threads.
pub(crate) fn start(base: &str, token: &str, tx: SyncSender<Update>) {
    let auth = format!("Bearer {token}");
    let dirty = Arc::new(AtomicBool::new(true));
    {
        let (base, auth, tx, dirty) = (base.to_owned(), auth.clone(), tx.clone(), dirty.clone());
        std::thread::spawn(move || {
            let agent = ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(5))
                .build();
            let mut last: Option<Instant> = None;
            loop {
                // Every second, or a quarter second after something happened.
                if dirty.swap(false, Ordering::Relaxed)
                    || last.is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
                {
                    last = Some(Instant::now());
                    let update = snapshot(&agent, &base, &auth).unwrap_or_else(Update::Error);
                    if tx.send(update).is_err() {
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        });
    }
    let base = base.to_owned();
    std::thread::spawn(move || {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(5))
            // The dispatcher sends a keep-alive every 15 s: silence past
            // 45 s is a dead connection.
            .timeout_read(Duration::from_secs(45))
            .build();
        let mut backoff = Duration::from_millis(250);
        loop {
            let resp = agent
                .get(&format!("{base}/api/v1/events"))
                .set("Authorization", &auth)
                .call();
            match resp {
                Ok(r) => {
                    backoff = Duration::from_millis(250);
                    if tx.send(Update::Connected).is_err() {
                        return;
                    }
                    let mut kind = String::new();
                    for line in BufReader::new(r.into_reader()).lines() {
                        let Ok(line) = line else { break };
                        if let Some(k) = line.strip_prefix("event: ") {
                            kind = k.to_owned();
                        } else if let Some(d) = line.strip_prefix("data: ") {
                            let data = serde_json::from_str(d).unwrap_or(Value::Null);
                            dirty.store(true, Ordering::Relaxed);
                            if tx
                                .send(Update::Event(std::mem::take(&mut kind), data))
                                .is_err()
                            {
                                return;
                            }
                        }
                    }
                }
                Err(e) => {
                    if tx.send(Update::StreamError(e.to_string())).is_err() {
                        return;
                    }
                }
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    });
}
