//! What `GET /metrics` shows, in the Prometheus text format.
//!
//! Counters and histograms are fed where things happen (admission, leases,
//! completions, refusals, store flushes), on whichever way in a request
//! came (QUIC or REST); gauges are read from the scheduler and the store
//! when scraped. Counters count since this dispatcher started, as
//! Prometheus expects; `fabric_tasks_stored` is the history's own count.

use std::sync::Mutex;
use std::time::Duration;

use fabric_proto::{Priority, TaskStatus};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PriorityLabel {
    priority: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// The scrape-time figures, read from the scheduler and the store.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Queued tasks per priority.
    pub queued: Vec<(Priority, u64)>,
    /// Tasks holding a lease.
    pub running: u64,
    /// Registered workers with a connection.
    pub workers: u64,
    /// Free slots on workers that are not draining.
    pub free_slots: u64,
    /// Finished tasks in the history, per status.
    pub stored: Vec<(TaskStatus, u64)>,
    /// REST API requests being served that count against their token's
    /// share.
    pub api_in_flight: u64,
}

/// The dispatcher's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    submitted: Counter,
    submit_requests: Counter,
    finished: Family<StatusLabel, Counter>,
    fuel_used: Counter,
    refused: Family<ReasonLabel, Counter>,
    submit_to_start: Histogram,
    run_time: Histogram,
    flush: Histogram,
    queued: Family<PriorityLabel, Gauge>,
    running: Gauge,
    workers: Gauge,
    free_slots: Gauge,
    stored: Family<StatusLabel, Gauge>,
    api_connections: Gauge,
    api_in_flight: Gauge,
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Metrics {
    /// A fresh set, registered under `fabric_`.
    pub(crate) fn new() -> Self {
        let m = Self {
            registry: Mutex::new(Registry::with_prefix("fabric")),
            submitted: Counter::default(),
            submit_requests: Counter::default(),
            finished: Family::default(),
            fuel_used: Counter::default(),
            refused: Family::default(),
            // 0.5 ms .. ~16 s
            submit_to_start: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
            // 1 ms .. ~9 min
            run_time: Histogram::new(exponential_buckets(0.001, 2.0, 20)),
            // 50 µs .. ~1.6 s
            flush: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            queued: Family::default(),
            running: Gauge::default(),
            workers: Gauge::default(),
            free_slots: Gauge::default(),
            stored: Family::default(),
            api_connections: Gauge::default(),
            api_in_flight: Gauge::default(),
        };
        {
            let mut r = m.registry.lock().unwrap_or_else(|p| p.into_inner());
            r.register(
                "tasks_submitted",
                "Tasks admitted since the dispatcher started",
                m.submitted.clone(),
            );
            r.register(
                "submit_requests",
                "Submit requests admitted (one task, or a batch of many)",
                m.submit_requests.clone(),
            );
            r.register(
                "tasks_finished",
                "Tasks that ended since the dispatcher started, by final status",
                m.finished.clone(),
            );
            r.register(
                "fuel_used",
                "Wasm fuel used by reported attempts since the dispatcher started",
                m.fuel_used.clone(),
            );
            r.register(
                "requests_refused",
                "Requests refused since the dispatcher started, by reason (QUIC and REST)",
                m.refused.clone(),
            );
            r.register_with_unit(
                "task_submit_to_start",
                "Time from admission to a task's first lease",
                Unit::Seconds,
                m.submit_to_start.clone(),
            );
            r.register_with_unit(
                "task_run_time",
                "Wall time of attempts workers reported (final or retried)",
                Unit::Seconds,
                m.run_time.clone(),
            );
            r.register_with_unit(
                "store_flush",
                "Time one store flush (group commit) took",
                Unit::Seconds,
                m.flush.clone(),
            );
            r.register("queue_depth", "Queued tasks, by priority", m.queued.clone());
            r.register("tasks_running", "Tasks holding a lease", m.running.clone());
            r.register(
                "workers",
                "Registered workers with a live connection",
                m.workers.clone(),
            );
            r.register(
                "free_slots",
                "Free slots on workers that are not draining",
                m.free_slots.clone(),
            );
            r.register(
                "tasks_stored",
                "Finished tasks kept in the history, by status",
                m.stored.clone(),
            );
            r.register(
                "api_connections",
                "Open REST API connections",
                m.api_connections.clone(),
            );
            r.register(
                "api_requests_in_flight",
                "REST API requests being served (those that count against their token's share)",
                m.api_in_flight.clone(),
            );
        }
        m
    }

    /// The gauge of open REST connections, for the listener to move.
    pub fn api_connections(&self) -> Gauge {
        self.api_connections.clone()
    }

    /// A task was admitted.
    pub fn submitted(&self) {
        self.submitted.inc();
    }

    /// A submit request (of one task or many) was admitted.
    pub fn submit_request(&self) {
        self.submit_requests.inc();
    }

    /// A task's first lease went out `waited` after its admission.
    pub fn started(&self, waited: Duration) {
        self.submit_to_start.observe(seconds(waited));
    }

    /// A task ended with `status` (recorded and durable).
    pub fn finished(&self, status: TaskStatus) {
        self.finished
            .get_or_create(&StatusLabel {
                status: status.as_str(),
            })
            .inc();
    }

    /// A worker reported an attempt that ran for `run` and used `fuel`
    /// (final or retried).
    pub fn attempt(&self, run: Duration, fuel: u64) {
        self.run_time.observe(seconds(run));
        self.fuel_used.inc_by(fuel);
    }

    /// A request was refused for `reason` (an error code, `rate_limited`,
    /// `forbidden`).
    pub fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// A store flush took `took`.
    pub fn flushed(&self, took: Duration) {
        self.flush.observe(seconds(took));
    }

    /// The text exposition, with gauges set from `now`.
    pub fn render(&self, now: &Snapshot) -> String {
        for p in [Priority::High, Priority::Normal, Priority::Low] {
            let n = now
                .queued
                .iter()
                .find(|(q, _)| *q == p)
                .map_or(0, |(_, n)| *n);
            self.queued
                .get_or_create(&PriorityLabel {
                    priority: priority_name(p),
                })
                .set(gauge(n));
        }
        self.running.set(gauge(now.running));
        self.workers.set(gauge(now.workers));
        self.free_slots.set(gauge(now.free_slots));
        self.api_in_flight.set(gauge(now.api_in_flight));
        for (s, n) in &now.stored {
            self.stored
                .get_or_create(&StatusLabel { status: s.as_str() })
                .set(gauge(*n));
        }
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &registry) {
            tracing::error!(error = %e, "cannot encode the metrics");
        }
        out
    }
}

fn priority_name(p: Priority) -> &'static str {
    match p {
        Priority::High => "high",
        Priority::Normal => "normal",
        Priority::Low => "low",
    }
}

fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fabric_proto::{Priority, TaskStatus};

    use super::{Metrics, Snapshot};

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::new();
        m.submitted();
        m.submitted();
        m.started(Duration::from_millis(3));
        m.finished(TaskStatus::Succeeded);
        m.attempt(Duration::from_millis(20), 1234);
        m.refused("queue_full");
        m.flushed(Duration::from_micros(300));
        let text = m.render(&Snapshot {
            queued: vec![(Priority::High, 4)],
            running: 1,
            workers: 2,
            free_slots: 15,
            stored: vec![(TaskStatus::Succeeded, 9)],
            api_in_flight: 3,
        });
        for line in [
            "fabric_tasks_submitted_total 2",
            "fabric_tasks_finished_total{status=\"succeeded\"} 1",
            "fabric_fuel_used_total 1234",
            "fabric_requests_refused_total{reason=\"queue_full\"} 1",
            "fabric_queue_depth{priority=\"high\"} 4",
            "fabric_queue_depth{priority=\"low\"} 0",
            "fabric_tasks_running 1",
            "fabric_workers 2",
            "fabric_free_slots 15",
            "fabric_tasks_stored{status=\"succeeded\"} 9",
            "fabric_api_requests_in_flight 3",
            "fabric_api_connections 0",
            "fabric_task_submit_to_start_seconds_count 1",
            "fabric_store_flush_seconds_count 1",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
