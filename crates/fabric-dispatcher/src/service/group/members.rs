//! `fabric admin members`: the group as a member sees it, and adding and
//! removing members (openraft's learner, then a joint change).

use std::time::Duration;

use fabric_raft::Member;

use super::Group;
use crate::service::state::Shared;

/// The group as this member sees it (`fabric admin members`).
pub(crate) fn members(group: &Group) -> Vec<fabric_proto::wire::MemberView> {
    let st = group.node.status();
    st.members
        .iter()
        .map(|(id, m, voter)| {
            let this = *id == st.id;
            fabric_proto::wire::MemberView {
                id: *id,
                addr: m.addr.clone(),
                key: fabric_net::PublicKey::from_bytes(&m.key)
                    .map_or_else(String::new, |k| k.to_string()),
                voter: *voter,
                role: if this {
                    // Raft's leader that lost the majority does not serve.
                    if st.role == "leader" && !group.leading() {
                        "leader-without-quorum".to_owned()
                    } else {
                        st.role.to_owned()
                    }
                } else if st.leader == Some(*id) {
                    "leader".to_owned()
                } else {
                    "member".to_owned()
                },
                this,
                log_index: if this {
                    st.last_log
                } else {
                    st.replication
                        .iter()
                        .find(|(r, _)| r == id)
                        .and_then(|(_, i)| *i)
                },
                applied: this.then_some(st.applied).flatten(),
                term: this.then_some(st.term),
            }
        })
        .collect()
}

fn not_in_group() -> crate::service::requests::RequestError {
    crate::service::requests::RequestError::Conflict(
        "this dispatcher runs alone (no --peer): it has no group to change".into(),
    )
}

/// `fabric admin members add`: the new member copies the log (or a
/// snapshot) as a learner, then votes (a joint change through openraft).
pub(crate) async fn add_member(shared: &Shared, m: Member) -> crate::service::requests::Answer {
    let group = shared.group.as_ref().ok_or_else(not_in_group)?;
    let id = fabric_raft::member_id(&m.key);
    let st = group.node.status();
    if st
        .members
        .iter()
        .any(|(i, o, _)| *i == id && o.key != m.key)
    {
        return Err(crate::service::requests::RequestError::Conflict(
            "another member's id clashes with this key's (their first 8 bytes match); make the new dispatcher a new key".into(),
        ));
    }
    let failed = |e: String| {
        crate::service::requests::RequestError::Internal(format!("adding {}: {e}", m.addr))
    };
    tokio::time::timeout(Duration::from_secs(120), group.node.raft().add_learner(id, m.clone(), true))
        .await
        .map_err(|_| failed("it did not copy the log within 120 s; is it running with --joining and --peer for this group?".into()))?
        .map_err(|e| failed(e.to_string()))?;
    let mut voters: std::collections::BTreeSet<u64> = group
        .node
        .status()
        .members
        .iter()
        .filter(|(_, _, v)| *v)
        .map(|(i, _, _)| *i)
        .collect();
    voters.insert(id);
    group
        .node
        .raft()
        .change_membership(voters, false)
        .await
        .map_err(|e| failed(e.to_string()))?;
    shared.event(
        None,
        fabric_store::EventKind::MembersChanged,
        format!("dispatcher {} added", m.addr),
    );
    shared.ledger.durable().await?;
    Ok(fabric_proto::wire::Response::Members(members(group)))
}

/// `fabric admin members remove`: a joint change without it.
pub(crate) async fn remove_member(
    shared: &Shared,
    key: [u8; 32],
) -> crate::service::requests::Answer {
    let group = shared.group.as_ref().ok_or_else(not_in_group)?;
    let id = fabric_raft::member_id(&key);
    let st = group.node.status();
    if !st.members.iter().any(|(_, m, _)| m.key == key) {
        return Err(crate::service::requests::RequestError::NotFound(
            "no member of the group has that key (see fabric admin members)".into(),
        ));
    }
    let voters: std::collections::BTreeSet<u64> = st
        .members
        .iter()
        .filter(|(i, _, v)| *v && *i != id)
        .map(|(i, _, _)| *i)
        .collect();
    if voters.is_empty() {
        return Err(crate::service::requests::RequestError::Conflict(
            "that is the group's last voter".into(),
        ));
    }
    group
        .node
        .raft()
        .change_membership(voters, false)
        .await
        .map_err(|e| {
            crate::service::requests::RequestError::Internal(format!("removing the member: {e}"))
        })?;
    let gone = st
        .members
        .iter()
        .find(|(_, m, _)| m.key == key)
        .map(|(_, m, _)| m.addr.clone());
    shared.event(
        None,
        fabric_store::EventKind::MembersChanged,
        format!("dispatcher {} removed", gone.unwrap_or_default()),
    );
    // A leader that removed itself no longer writes; the others know.
    let _ = shared.ledger.durable().await;
    Ok(fabric_proto::wire::Response::Members(members(group)))
}
