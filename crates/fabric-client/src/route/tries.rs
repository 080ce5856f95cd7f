//! How far one request may go in a group: redirects and reconnects, and
//! how long it waits for a leader.

use std::time::Duration;

use super::{MAX_HOPS, NO_LEADER_WAIT, Next};

/// How long one request waits for the group to have a leader again. An
/// election, and the new leader's take-over, can take several seconds on
/// a loaded box: a count of tries (20 of 300 ms, 6 s) gave up during
/// one.
const NO_LEADER_PATIENCE: Duration = Duration::from_secs(30);
/// While no leader is named, another member is asked this often: the
/// one asked may be a former leader cut off from the rest, which names
/// nobody while the others have elected a new one.
const ASK_ANOTHER_EVERY: Duration = Duration::from_secs(3);

/// How far one request has gone: redirects and reconnects are counted
/// (at most [`MAX_HOPS`]); "no leader yet" answers are waited out for up
/// to [`NO_LEADER_PATIENCE`] in all.
#[derive(Debug, Default)]
pub(crate) struct Tries {
    hops: usize,
    no_leader: Duration,
}

impl Tries {
    /// What to do after `next` (counted), or `None` to give up.
    pub(crate) fn go_on(&mut self, next: Next) -> Option<Next> {
        match next {
            Next::Stop => None,
            Next::Wait => {
                self.no_leader += NO_LEADER_WAIT;
                if self.no_leader > NO_LEADER_PATIENCE {
                    None
                } else if self
                    .no_leader
                    .as_millis()
                    .is_multiple_of(ASK_ANOTHER_EVERY.as_millis())
                {
                    Some(Next::Another)
                } else {
                    Some(Next::Wait)
                }
            }
            other => {
                self.hops += 1;
                (self.hops <= MAX_HOPS).then_some(other)
            }
        }
    }

    /// Redirects and reconnects so far.
    pub(crate) fn hops(&self) -> usize {
        self.hops
    }
}

#[cfg(test)]
mod tests {
    use super::{ASK_ANOTHER_EVERY, MAX_HOPS, NO_LEADER_PATIENCE, NO_LEADER_WAIT, Next, Tries};

    fn waits(t: &mut Tries, n: usize) -> Vec<Option<&'static str>> {
        (0..n)
            .map(|_| {
                t.go_on(Next::Wait).map(|n| match n {
                    Next::Wait => "wait",
                    Next::Another => "another",
                    Next::Follow(_) => "follow",
                    Next::Stop => "stop",
                })
            })
            .collect()
    }

    #[test]
    fn an_election_of_ten_seconds_is_waited_out_and_a_group_without_a_leader_is_not() {
        let mut t = Tries::default();
        let per_s = 1_000 / NO_LEADER_WAIT.as_millis() as usize;
        assert!(
            waits(&mut t, 10 * per_s).iter().all(Option::is_some),
            "gave up within 10 s of no leader"
        );
        let rest = NO_LEADER_PATIENCE.as_secs() as usize * per_s;
        assert!(
            waits(&mut t, rest).iter().any(Option::is_none),
            "waited past {NO_LEADER_PATIENCE:?}"
        );
    }

    /// A former leader cut off from the others names nobody; the others
    /// may have a leader: another member is asked every few seconds.
    #[test]
    fn without_a_leader_another_member_is_asked_every_few_seconds() {
        let mut t = Tries::default();
        let every = (ASK_ANOTHER_EVERY.as_millis() / NO_LEADER_WAIT.as_millis()) as usize;
        let seen = waits(&mut t, 3 * every);
        let asked: Vec<usize> = (0..seen.len())
            .filter(|&i| seen[i] == Some("another"))
            .collect();
        assert_eq!(
            asked,
            vec![every - 1, 2 * every - 1, 3 * every - 1],
            "{seen:?}"
        );
    }

    #[test]
    fn redirects_are_bounded_and_a_refusal_stops_at_once() {
        let mut t = Tries::default();
        assert!((0..MAX_HOPS).all(|_| t.go_on(Next::Another).is_some()));
        assert!(t.go_on(Next::Another).is_none(), "past {MAX_HOPS} hops");
        assert!(Tries::default().go_on(Next::Stop).is_none());
    }
}
