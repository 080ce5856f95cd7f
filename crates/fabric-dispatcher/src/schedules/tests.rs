use super::*;

/// ms since the epoch of an RFC 3339 time.
fn ms(rfc3339: &str) -> u64 {
    u64::try_from(
        DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis(),
    )
    .unwrap()
}

#[test]
fn six_fields_fire_every_two_seconds_and_five_fields_in_a_zone() {
    let every2 = Plan::parse("*/2 * * * * *", "UTC").unwrap();
    let t = ms("2026-12-07T00:00:00.500Z");
    assert_eq!(every2.next_after(t), Some(ms("2026-12-07T00:00:02Z")));
    assert_eq!(
        every2.next_after(ms("2026-12-07T00:00:02Z")),
        Some(ms("2026-12-07T00:00:04Z")),
        "strictly after"
    );
    // 03:00 in Berlin is 02:00 UTC in winter.
    let nightly = Plan::parse("0 3 * * *", "Europe/Berlin").unwrap();
    assert_eq!(
        nightly.next_after(ms("2026-12-06T12:00:00Z")),
        Some(ms("2026-12-07T02:00:00Z"))
    );
}

#[test]
fn a_bad_expression_names_its_bad_field_and_a_bad_zone_is_named() {
    let e = Plan::parse("*/2 * 25 * * *", "UTC").unwrap_err();
    assert!(e.contains("the hour field \"25\""), "{e}");
    let e = Plan::parse("61 * * * *", "UTC").unwrap_err();
    assert!(e.contains("the minute field \"61\""), "{e}");
    let e = Plan::parse("0 0 1 13 *", "UTC").unwrap_err();
    assert!(e.contains("the month field \"13\""), "{e}");
    let e = Plan::parse("* * * * * * 2027", "UTC").unwrap_err();
    assert!(e.contains("has 7 fields"), "{e}");
    let e = Plan::parse("* * * * *", "Mars/Base").unwrap_err();
    assert!(e.contains("not an IANA time zone"), "{e}");
}

#[test]
fn a_spring_forward_runs_a_skipped_time_once_after_the_gap() {
    // New York skips 02:00-03:00 local on 2026-03-08.
    let plan = Plan::parse("30 2 * * *", "America/New_York").unwrap();
    let first = plan.next_after(ms("2026-03-08T00:00:00-05:00")).unwrap();
    assert_eq!(
        first,
        ms("2026-03-08T03:00:00-04:00"),
        "at the first valid time after the gap"
    );
    let second = plan.next_after(first).unwrap();
    assert_eq!(second, ms("2026-03-09T02:30:00-04:00"), "once that day");
}

#[test]
fn a_fall_back_runs_a_repeated_time_once() {
    // New York repeats 01:00-02:00 local on 2026-11-01.
    let plan = Plan::parse("30 1 * * *", "America/New_York").unwrap();
    let first = plan.next_after(ms("2026-11-01T00:00:00-04:00")).unwrap();
    assert_eq!(
        first,
        ms("2026-11-01T01:30:00-04:00"),
        "its first occurrence"
    );
    let second = plan.next_after(first).unwrap();
    assert_eq!(
        second,
        ms("2026-11-02T01:30:00-05:00"),
        "not again at 01:30 EST"
    );
}

#[test]
fn missed_runs_are_caught_up_once_or_skipped() {
    let plan = Plan::parse("0 * * * * *", "UTC").unwrap();
    let t = ms("2026-12-07T10:00:00Z");
    // On time: a tick late is not missed, whatever the policy.
    for policy in [CatchUp::None, CatchUp::One] {
        let d = due(&plan, t, t + 400, policy, ON_TIME_GRACE_MS);
        assert_eq!(d.run, Some(t), "{policy:?}");
        assert_eq!(d.missed, 0);
        assert_eq!(d.next, Some(t + 60_000));
    }
    // Down from before 10:00 until 10:03:30: four planned times passed.
    let now = t + 210_000;
    let one = due(&plan, t, now, CatchUp::One, ON_TIME_GRACE_MS);
    assert_eq!(one.run, Some(t + 180_000), "one run, for the latest");
    assert_eq!(one.missed, 3);
    assert_eq!(one.next, Some(t + 240_000));
    let none = due(&plan, t, now, CatchUp::None, ON_TIME_GRACE_MS);
    assert_eq!(none.run, None);
    assert_eq!(none.missed, 4);
    assert_eq!(none.next, Some(t + 240_000));
    // Not due yet.
    let early = due(&plan, t, t - 1, CatchUp::One, ON_TIME_GRACE_MS);
    assert_eq!(
        early,
        Due {
            run: None,
            missed: 0,
            next: Some(t)
        }
    );
}

#[test]
fn inside_a_repeated_hour_the_next_time_is_never_in_the_past() {
    // 01:10 EST on 2026-11-01 is in the second copy of 01:00-02:00.
    let hourly = Plan::parse("30 * * * *", "America/New_York").unwrap();
    let inside = ms("2026-11-01T01:10:00-05:00");
    let next = hourly.next_after(inside).unwrap();
    assert!(next > inside, "{next} is not after {inside}");
    assert!(next <= ms("2026-11-01T02:30:00-05:00"), "{next}");
    let every5 = Plan::parse("*/5 * * * *", "America/New_York").unwrap();
    let mut t = ms("2026-11-01T00:50:00-04:00");
    // Through the whole double hour: always forward.
    for _ in 0..40 {
        let n = every5.next_after(t).unwrap();
        assert!(n > t, "{n} after {t}");
        t = n;
    }
}
