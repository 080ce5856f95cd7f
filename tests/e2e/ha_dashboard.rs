//! The dashboard of a group of dispatchers (issue 26) in headless
//! Chromium: the leader's page lists every dispatcher with its role and
//! log position; a follower's page says it does not lead and links to the
//! leader's.

use std::time::Duration;

use fabric_tests::harness::browser::Browser;
use fabric_tests::harness::group::Group;
use fabric_tests::harness::sandbox::Sandbox;

#[test]
fn the_dashboard_shows_each_dispatcher_role_and_log_position() {
    let sb = Sandbox::new();
    let g = Group::start(&sb, 3);
    let leader = g.leader_by_cli(&sb, Duration::from_secs(30));
    let token = g.api_token(&sb, leader, "read");

    let mut b = Browser::start();
    b.open(&format!("http://{}/#token={token}", g.members[leader].api));
    b.wait_for(
        "three dispatchers",
        "document.querySelectorAll('#members tbody tr').length === 3 && !document.getElementById('dispatchers').hidden",
    );
    let rows = b.eval(
        "[...document.querySelectorAll('#members tbody tr')].map(r => [...r.cells].map(c => c.textContent))",
    );
    let rows = rows.as_array().expect("rows");
    let leaders: Vec<_> = rows.iter().filter(|r| r[1] == "leader").collect();
    assert_eq!(leaders.len(), 1, "one leader: {rows:?}");
    let me = &leaders[0];
    assert_eq!(
        me[0],
        format!("{} (this one)", g.members[leader].addr),
        "{rows:?}"
    );
    for r in rows {
        assert_eq!(r[2], "yes", "every member votes: {rows:?}");
        // The leader knows each member's log position.
        let index: u64 = r[3]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("a log index for each: {rows:?}"));
        assert!(index > 0, "{rows:?}");
    }
    assert!(
        me[5].as_str().is_some_and(|t| t.parse::<u64>().is_ok()),
        "the leader's term: {rows:?}"
    );
    assert!(b.eval("document.getElementById('follower').hidden") == true);

    // A follower's page cannot follow its API's redirect (another origin):
    // it sends the reader to the leader's dashboard.
    let follower = (leader + 1) % 3;
    b.open(&format!("http://{}/", g.members[follower].api));
    b.wait_for(
        "the follower's note",
        "!document.getElementById('follower').hidden",
    );
    assert_eq!(
        b.eval("document.getElementById('leader-link').getAttribute('href')"),
        format!("http://{}/", g.members[leader].api).as_str(),
    );
}
