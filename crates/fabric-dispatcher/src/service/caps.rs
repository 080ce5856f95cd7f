//! What a worker may claim at registration: slots and memory are capped by
//! the dispatcher's configuration, so a joined worker cannot claim
//! `u32::MAX` slots and be leased everything.
//!
//! A claim over a cap is clamped to it and logged (the worker keeps
//! running; the dispatcher leases it no more than the cap).

use fabric_proto::wire::WorkerInfo;

use super::state::Shared;

/// Default most slots a worker may claim.
pub const DEFAULT_MAX_WORKER_SLOTS: u32 = 256;
/// Default most memory a worker may offer, in bytes (1 TiB).
pub const DEFAULT_MAX_WORKER_MEMORY: u64 = 1 << 40;

/// The most a worker may claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WorkerCaps {
    /// Task slots.
    pub max_slots: u32,
    /// Memory offered to tasks in all, in bytes.
    pub max_memory_bytes: u64,
}

impl Default for WorkerCaps {
    fn default() -> Self {
        Self {
            max_slots: DEFAULT_MAX_WORKER_SLOTS,
            max_memory_bytes: DEFAULT_MAX_WORKER_MEMORY,
        }
    }
}

impl WorkerCaps {
    /// `info` with its slots and memory clamped to these caps.
    pub(crate) fn clamp(&self, mut info: WorkerInfo) -> WorkerInfo {
        if info.slots > self.max_slots {
            tracing::warn!(
                claimed = info.slots,
                cap = self.max_slots,
                "worker claims more slots than --max-worker-slots; using the cap"
            );
            info.slots = self.max_slots;
        }
        if info.memory_bytes > self.max_memory_bytes {
            tracing::warn!(
                claimed = info.memory_bytes,
                cap = self.max_memory_bytes,
                "worker offers more memory than --max-worker-memory; using the cap"
            );
            info.memory_bytes = self.max_memory_bytes;
        }
        info
    }
}

/// A registration as the dispatcher accepts it: clamped to its caps.
pub(crate) fn admit_registration(shared: &Shared, info: WorkerInfo) -> WorkerInfo {
    shared.cfg.worker_caps.clamp(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(slots: u32, memory_bytes: u64) -> WorkerInfo {
        WorkerInfo {
            name: "w".into(),
            slots,
            memory_bytes,
            labels: vec![],
            wasm: true,
            commands: vec![],
            running: Vec::new(),
        }
    }

    #[test]
    fn claims_over_the_caps_are_clamped_and_others_kept() {
        let caps = WorkerCaps::default();
        let got = caps.clamp(info(u32::MAX, u64::MAX));
        assert_eq!((got.slots, got.memory_bytes), (256, 1 << 40));
        let got = caps.clamp(info(8, 1 << 30));
        assert_eq!((got.slots, got.memory_bytes), (8, 1 << 30));
    }
}
