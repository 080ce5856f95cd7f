//! A registered worker as placement sees it: capacity, what it runs, its
//! leases and whether it drains.

use std::collections::HashSet;

use fabric_proto::wire::WorkerInfo;
use fabric_proto::{TaskId, TaskKind, TaskRecord};

/// What placement checks a task against: its memory, the program it runs
/// (`None`: a wasm module) and the labels it requires. A whole record and
/// a cold entry (`cold.rs`) both give one.
#[derive(Clone, Copy, Debug)]
pub(super) struct Need<'a> {
    pub memory: u64,
    pub program: Option<&'a str>,
    pub require: &'a [String],
}

impl<'a> Need<'a> {
    pub(super) fn of(rec: &'a TaskRecord) -> Self {
        Self {
            memory: rec.spec.limits.memory_bytes,
            program: match &rec.spec.kind {
                TaskKind::Wasm { .. } => None,
                TaskKind::Command { program, .. } => Some(program),
            },
            require: &rec.spec.require,
        }
    }
}

#[derive(Debug)]
pub(super) struct Worker {
    /// The name it registered with (kept with each attempt it takes).
    pub name: String,
    pub slots: u32,
    pub memory: u64,
    pub used_memory: u64,
    pub wasm: bool,
    pub commands: HashSet<String>,
    /// Its labels, for tasks that require some.
    pub labels: HashSet<String>,
    pub last_seen: u64,
    pub leases: HashSet<TaskId>,
    pub draining: bool,
    /// False from a lost connection until it registers again.
    pub connected: bool,
    /// Runs the worker reported at registration that it no longer holds a
    /// lease for (being cancelled); they occupy slots until its heartbeats
    /// say they ended.
    pub busy: u32,
    /// A worker of the former leader not registered here yet (`adopt.rs`).
    pub awaited: bool,
}

impl Worker {
    /// A worker as it registered, keeping leases it already held.
    pub(super) fn new(
        info: &WorkerInfo,
        leases: HashSet<TaskId>,
        used_memory: u64,
        now: u64,
    ) -> Self {
        Self {
            name: info.name.clone(),
            slots: info.slots,
            memory: info.memory_bytes,
            used_memory,
            wasm: info.wasm,
            commands: info.commands.iter().cloned().collect(),
            labels: info.labels.iter().cloned().collect(),
            last_seen: now,
            leases,
            draining: false,
            connected: true,
            busy: 0,
            awaited: false,
        }
    }

    /// A worker the former leader of a group had, awaited until `until`
    /// (its last heartbeat is put there): it runs nothing new until it
    /// registers.
    pub(super) fn awaited(until: u64) -> Self {
        Self {
            name: String::new(),
            slots: 0,
            memory: 0,
            used_memory: 0,
            wasm: false,
            commands: HashSet::new(),
            labels: HashSet::new(),
            last_seen: until,
            leases: HashSet::new(),
            draining: false,
            connected: false,
            busy: 0,
            awaited: true,
        }
    }

    pub(super) fn free_slots(&self) -> u32 {
        self.slots
            .saturating_sub(self.leases.len() as u32)
            .saturating_sub(self.busy)
    }

    /// Whether it could ever run a task that needs `need`: the kind of
    /// work and the memory, whatever it is doing now.
    pub(super) fn could_run(&self, need: &Need<'_>) -> bool {
        need.memory <= self.memory && self.runs(need.program) && self.carries(need.require)
    }

    /// Whether it runs wasm (`None`) or this program.
    fn runs(&self, program: Option<&str>) -> bool {
        match program {
            None => self.wasm,
            Some(p) => self.commands.contains(p),
        }
    }

    /// Whether it carries every label in `require`.
    pub(super) fn carries(&self, require: &[String]) -> bool {
        require.iter().all(|l| self.labels.contains(l))
    }

    /// Whether it runs this kind of task at all.
    pub(super) fn runs_kind(&self, kind: &TaskKind) -> bool {
        match kind {
            TaskKind::Wasm { .. } => self.runs(None),
            TaskKind::Command { program, .. } => self.runs(Some(program)),
        }
    }

    /// Whether it can take a task that needs `need` now: connected, not
    /// draining, a free slot, the memory, and the kind of work.
    pub(super) fn fits(&self, need: &Need<'_>) -> bool {
        if !self.open() {
            return false;
        }
        if self.used_memory + need.memory > self.memory {
            return false;
        }
        self.runs(need.program) && self.carries(need.require)
    }

    /// Connected, not draining, with a free slot.
    pub(super) fn open(&self) -> bool {
        self.connected && !self.draining && self.free_slots() > 0
    }
}
