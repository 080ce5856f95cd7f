//! Time passing: heartbeat deadlines and retry delays, read from the
//! dispatcher's clock a few times per heartbeat period.

use std::sync::Arc;
use std::time::Duration;

use super::control;
use super::state::Shared;

/// Ticks the scheduler: dead workers' tasks requeue, delayed retries become
/// ready, due schedules fire, and placement runs.
pub(crate) async fn tick_loop(shared: Arc<Shared>) {
    let period = Duration::from_millis((shared.cfg.sched.heartbeat_ms / 4).clamp(20, 1_000));
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let now = shared.now();
        let tick = {
            let mut core = shared.core();
            let tick = core.sched.tick(now);
            control::close_dead(&mut core, &tick.dead, now);
            tick
        };
        shared.settle_or_log(tick.changes, "requeued tasks").await;
        super::requests::schedules::fire_due(&shared).await;
        shared.place.notify_one();
    }
}
