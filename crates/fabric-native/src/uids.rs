//! The host uids tasks run as (when the worker is root): a block of 4,096
//! ids that no account and no user's subordinate id range uses, so no
//! local user can act as a task's uid (through `newuidmap` or otherwise).

/// Where the search for a free block starts.
const FIRST: u32 = 200_000;
/// Ids in the block.
pub(crate) const SPAN: u32 = 4_096;
/// Blocks tried before giving up.
const TRIES: u32 = 1_000;

/// The first free block's base, given the contents of `/etc/passwd`,
/// `/etc/group`, `/etc/subuid` and `/etc/subgid`; `None` when none of
/// the blocks tried is free.
pub(crate) fn free_base(passwd: &str, group: &str, subuid: &str, subgid: &str) -> Option<u32> {
    let mut taken: Vec<(u64, u64)> = Vec::new();
    // name:x:uid:gid:... and name:x:gid:...
    for (text, field) in [(passwd, 2), (passwd, 3), (group, 2)] {
        for l in text.lines() {
            if let Some(id) = l.split(':').nth(field).and_then(|v| v.parse::<u64>().ok()) {
                taken.push((id, id + 1));
            }
        }
    }
    // name:start:count
    for text in [subuid, subgid] {
        for l in text.lines() {
            let mut f = l.split(':').skip(1);
            if let (Some(Ok(start)), Some(Ok(count))) = (
                f.next().map(str::parse::<u64>),
                f.next().map(str::parse::<u64>),
            ) {
                taken.push((start, start.saturating_add(count)));
            }
        }
    }
    (0..TRIES).map(|i| FIRST + i * SPAN).find(|&base| {
        let (lo, hi) = (u64::from(base), u64::from(base) + u64::from(SPAN));
        taken.iter().all(|&(a, b)| b <= lo || a >= hi)
    })
}

/// The free block's base on this host.
pub(crate) fn host_base() -> Option<u32> {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    free_base(
        &read("/etc/passwd"),
        &read("/etc/group"),
        &read("/etc/subuid"),
        &read("/etc/subgid"),
    )
}

/// Hands out the block's uids so that none is reused while anything of
/// its last task may remain: a uid is taken until its task's processes
/// were killed and its files removed ([`UidPool::release`]); one whose
/// clean-up failed is never handed out again by this worker.
#[derive(Debug)]
pub(crate) struct UidPool {
    base: u32,
    state: std::sync::Mutex<PoolState>,
}

#[derive(Debug, Default)]
struct PoolState {
    /// Where the search for the next free uid starts (round robin, so a
    /// released uid rests as long as possible).
    next: u32,
    /// Offsets in the block now in use or retired.
    taken: std::collections::HashSet<u32>,
}

impl UidPool {
    /// A pool over `SPAN` uids from `base`.
    pub(crate) fn new(base: u32) -> Self {
        Self {
            base,
            state: std::sync::Mutex::default(),
        }
    }

    /// Whether `uid` is one of the block's.
    pub(crate) fn contains(&self, uid: u32) -> bool {
        uid.checked_sub(self.base).is_some_and(|o| o < SPAN)
    }

    /// The next free uid, or `None` when every one is in use or retired.
    pub(crate) fn take(&self) -> Option<u32> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for i in 0..SPAN {
            let offset = (s.next + i) % SPAN;
            if s.taken.insert(offset) {
                s.next = (offset + 1) % SPAN;
                return Some(self.base + offset);
            }
        }
        None
    }

    /// Gives `uid` back once nothing of its task remains.
    pub(crate) fn release(&self, uid: u32) {
        if self.contains(uid) {
            let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
            s.taken.remove(&(uid - self.base));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_uid_is_not_handed_out_again_until_released_and_a_retired_one_never() {
        let pool = UidPool::new(FIRST);
        let first = pool.take().unwrap();
        let second = pool.take().unwrap();
        assert_ne!(first, second);
        // `first` is never released (its clean-up failed): a whole turn of
        // the block later it is still not handed out.
        pool.release(second);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..SPAN - 1 {
            let u = pool.take().expect("a free uid");
            assert!(pool.contains(u));
            assert_ne!(u, first, "a uid still in use was handed out again");
            assert!(seen.insert(u), "uid {u} handed out twice while taken");
        }
        assert_eq!(pool.take(), None, "every uid is taken");
        pool.release(FIRST + 5);
        assert_eq!(pool.take(), Some(FIRST + 5));
        assert!(!pool.contains(FIRST + SPAN) && !pool.contains(FIRST - 1));
    }

    #[test]
    fn the_block_avoids_accounts_and_subordinate_ranges() {
        assert_eq!(free_base("", "", "", ""), Some(FIRST));
        // Debian's second user gets 165536..231072: past it.
        let sub = "alice:100000:65536\nbob:165536:65536\n";
        let base = free_base("root:x:0:0::/root:/bin/sh\n", "", sub, sub).unwrap();
        assert!(base >= 231_072, "{base}");
        assert_eq!(base % SPAN, FIRST % SPAN);
        // An account inside a block moves it on.
        let passwd = format!("svc:x:{}:{}::/:/bin/false\n", base + 7, base + 7);
        let next = free_base(&passwd, "", sub, sub).unwrap();
        assert!(next >= base + SPAN, "{next}");
    }
}
