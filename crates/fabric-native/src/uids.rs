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

#[cfg(test)]
mod tests {
    use super::*;

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
