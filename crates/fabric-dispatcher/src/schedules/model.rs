//! A model-based property test of a schedule's firings across restarts:
//! random every-N-seconds plans, a dispatcher that looks at random moments
//! and is down for random stretches (a restart: the stored next time is all
//! it keeps). For every run: no planned time runs twice, none runs before
//! its time, runs keep their order, `catch-up one` runs exactly one per
//! downtime that missed any, `none` runs none of the missed, and the
//! count of runs plus missed times is every planned time passed.

use proptest::prelude::*;

use super::{CatchUp, ON_TIME_GRACE_MS, Plan, due};

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn firings_across_restarts_keep_their_promises(
        every in prop_oneof![Just(1u64), Just(2), Just(5), Just(15)],
        steps in proptest::collection::vec((1u64..400, any::<bool>(), 1u64..60_000), 1..60),
        one in any::<bool>(),
    ) {
        let plan = Plan::parse(&format!("*/{every} * * * * *"), "UTC").unwrap();
        let policy = if one { CatchUp::One } else { CatchUp::None };
        let start = 1_796_000_000_000u64;
        let mut now = start;
        let mut next = plan.next_after(now).unwrap();
        let mut ran: Vec<u64> = Vec::new();
        let mut accounted = 0u64;
        for (tick, down, gap) in steps {
            // Up: looked at every `tick` ms; down: nothing for `gap` ms.
            now += if down { gap } else { tick };
            let before = next;
            let d = due(&plan, next, now, policy, ON_TIME_GRACE_MS);
            if let Some(t) = d.run {
                prop_assert!(t <= now, "ran {} before its time {}", now, t);
                prop_assert!(t >= before, "ran {} before the stored next {}", t, before);
                prop_assert!(ran.last().is_none_or(|l| *l < t), "{} ran again or out of order", t);
                ran.push(t);
            }
            let passed = if before <= now {
                // Every planned time in [before, now].
                let (mut n, mut t) = (1u64, before);
                while let Some(x) = plan.next_after(t).filter(|x| *x <= now) { n += 1; t = x; }
                n
            } else { 0 };
            prop_assert_eq!(u64::from(d.missed) + u64::from(d.run.is_some()), passed);
            if passed > 1 {
                if one {
                    prop_assert!(d.run.is_some(), "catch-up one ran none after {} missed", passed);
                } else {
                    prop_assert!(d.run.is_none_or(|t| now - t <= ON_TIME_GRACE_MS));
                }
            }
            accounted += passed;
            next = d.next.unwrap();
            prop_assert!(next > now);
        }
        // Every planned time from the start to the end was run or missed.
        let (mut all, mut t) = (0u64, start);
        while let Some(x) = plan.next_after(t).filter(|x| *x <= now) { all += 1; t = x; }
        prop_assert_eq!(accounted, all);
    }
}
