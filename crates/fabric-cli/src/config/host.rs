//! Defaults read off this machine.

/// Worker slots: one per CPU.
pub(super) fn default_slots() -> u32 {
    std::thread::available_parallelism().map_or(2, |n| n.get() as u32)
}

/// Memory a worker offers in all: half of this machine's RAM (4 GiB when
/// `/proc/meminfo` cannot be read).
pub(super) fn default_memory_total() -> u64 {
    let kib = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    });
    kib.map_or(4 << 30, |k| k * 1024 / 2)
}

/// The worker name: this machine's host name.
pub(super) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "worker".into())
}
