//! Sync groups (keepalived's `vrrp_sync_group`): instances that change state
//! together. One member in FAULT for a cause of its own (its Redis down, its link,
//! its addresses) puts every other member in FAULT too (priority 0, VIPs released),
//! so that the group moves to the peer as a whole; once no member is in FAULT of its
//! own, the others leave it. A dual-stack Redis is one instance with `[redis]` and an
//! IPv6 one without, in a group: the group carries the Redis state to the IPv6 VIP.

use futures_util::future::select_all;
use tokio::sync::watch;
use tracing::info;
use vrrp::{Command, InstanceHandle, State, Status};

/// What the group tells a member, from what every member shows: the members in
/// FAULT of their own, other than `member` (empty: none, leave the group's fault).
fn faulty_others<'a>(names: &'a [String], own: &[bool], member: usize) -> Vec<&'a str> {
    names
        .iter()
        .zip(own)
        .enumerate()
        .filter(|(j, (_, own))| *j != member && **own)
        .map(|(_, (name, _))| name.as_str())
        .collect()
}

/// Runs group `group` over its members (name and handle) until a member's
/// instance ends.
pub async fn run(group: String, members: Vec<(String, InstanceHandle)>) {
    if members.is_empty() {
        // None of its members runs (each failed to start on a reload): nothing to
        // keep in step, and nothing ends.
        return std::future::pending().await;
    }
    let names: Vec<String> = members.iter().map(|(n, _)| n.clone()).collect();
    let mut statuses: Vec<watch::Receiver<Status>> =
        members.iter().map(|(_, h)| h.status()).collect();
    // What each member was last told: in the group's fault or not.
    let mut told: Vec<Option<bool>> = vec![None; members.len()];
    loop {
        let own: Vec<bool> = statuses
            .iter_mut()
            .map(|s| {
                let s = s.borrow_and_update();
                s.state == State::Fault && s.own_fault
            })
            .collect();
        for (i, (name, handle)) in members.iter().enumerate() {
            let others = faulty_others(&names, &own, i);
            let fault = !others.is_empty();
            if told[i] == Some(fault) {
                continue;
            }
            let command = if fault {
                let why = format!("sync group {group}: {} in FAULT", others.join(", "));
                info!(group = %group, instance = %name, why = %why, "sync group: member follows into FAULT");
                Command::EnterGroupFault(why)
            } else {
                Command::LeaveGroupFault(format!("sync group {group}: no other member in FAULT"))
            };
            if handle.command(command).await {
                told[i] = Some(fault);
            }
        }
        let changes = statuses.iter_mut().map(|s| Box::pin(s.changed()));
        if select_all(changes).await.0.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_group_without_members_waits_instead_of_ending() {
        let run = run("g".into(), Vec::new());
        let ended = tokio::time::timeout(std::time::Duration::from_millis(50), run).await;
        assert!(ended.is_err(), "the task ended");
    }

    #[test]
    fn a_member_follows_the_others_faults_not_its_own() {
        let names: Vec<String> = ["cache", "cache6", "third"].map(String::from).to_vec();
        assert!(faulty_others(&names, &[false, false, false], 1).is_empty());
        assert_eq!(faulty_others(&names, &[true, false, false], 1), ["cache"]);
        // Its own fault is no reason to be told of one.
        assert!(faulty_others(&names, &[true, false, false], 0).is_empty());
        assert_eq!(
            faulty_others(&names, &[true, false, true], 1),
            ["cache", "third"]
        );
    }
}
