//! Time passing: heartbeat deadlines and retry delays, read from the
//! dispatcher's clock a few times per heartbeat period.

use std::sync::Arc;
use std::time::Duration;

use super::control;
use super::state::Shared;

/// How often the clock is read: a quarter of the heartbeat period, between
/// 20 ms and 1 s.
pub(crate) fn period(shared: &Shared) -> Duration {
    Duration::from_millis((shared.cfg.sched.heartbeat_ms / 4).clamp(20, 1_000))
}

/// Ticks the scheduler: dead workers' tasks requeue, delayed retries become
/// ready, and placement runs. (Schedules fire from a loop of their own.)
pub(crate) async fn tick_loop(shared: Arc<Shared>) {
    let period = period(&shared);
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if !shared.leading() {
            continue;
        }
        let now = shared.now();
        let tick = {
            let mut core = shared.core();
            let tick = core.sched.tick(now);
            control::close_dead(&mut core, &tick.dead, now);
            tick
        };
        shared.settle_or_log(tick.changes, "requeued tasks").await;
        shared.place.notify_one();
    }
}
