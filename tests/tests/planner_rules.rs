//! The replication planner's rules as a table of cases: role, the two snapshots, and
//! the commands and eligibility expected.

use std::time::{Duration, Instant};

use health::{LinkStatus, MasterLink, Role as RedisRole, Snapshot};
use replication::{Command, Endpoint, Plan, Planner, PlannerConfig, Role, Rule, Target};

const R1: &str = "1111111111111111111111111111111111111111";
const R2: &str = "2222222222222222222222222222222222222222";
const R3: &str = "3333333333333333333333333333333333333333";
const NONE: &str = "0000000000000000000000000000000000000000";

fn config() -> PlannerConfig {
    PlannerConfig {
        peer: Endpoint {
            host: "192.0.2.12".into(),
            port: 6379,
        },
        local: Endpoint {
            host: "192.0.2.11".into(),
            port: 6379,
        },
        catch_up_timeout: Duration::from_secs(10),
        fast_poll: Duration::from_millis(20),
        slow_poll: Duration::from_secs(1),
    }
}

/// A master holding history `replid` up to `offset`, with `keys` keys.
fn master(replid: &str, offset: u64, keys: u64) -> Snapshot {
    Snapshot {
        redis_version: "7.0.15".into(),
        run_id: format!("run-{replid}"),
        uptime_in_seconds: 100,
        role: RedisRole::Master,
        master: None,
        connected_slaves: 0,
        replicas: Vec::new(),
        master_replid: replid.into(),
        master_replid2: NONE.into(),
        master_repl_offset: offset,
        second_repl_offset: -1,
        repl_backlog_active: true,
        repl_backlog_size: 1 << 20,
        repl_backlog_first_byte_offset: 1,
        repl_backlog_histlen: offset,
        loading: false,
        aof_enabled: false,
        rdb_changes_since_last_save: 0,
        keys,
    }
}

/// A master that was promoted from history `old` at offset `fork` and is now at
/// `offset` of `replid`.
fn promoted(replid: &str, old: &str, fork: u64, offset: u64, keys: u64) -> Snapshot {
    Snapshot {
        master_replid2: old.into(),
        second_repl_offset: i64::try_from(fork + 1).unwrap(),
        ..master(replid, offset, keys)
    }
}

fn fresh() -> Snapshot {
    master("ffffffffffffffffffffffffffffffffffffffff", 0, 0)
}

/// `snapshot` as a replica of `host`:6379 with the link up or down.
fn replica_of(snapshot: Snapshot, host: &str, up: bool) -> Snapshot {
    Snapshot {
        role: RedisRole::Replica,
        master: Some(MasterLink {
            host: host.into(),
            port: 6379,
            link_status: if up { LinkStatus::Up } else { LinkStatus::Down },
            slave_repl_offset: snapshot.master_repl_offset,
            slave_read_repl_offset: Some(snapshot.master_repl_offset),
            sync_in_progress: false,
            last_io_seconds_ago: Some(if up { 0 } else { -1 }),
            link_down_since_seconds: if up { None } else { Some(1) },
        }),
        ..snapshot
    }
}

const LOCAL_HOST: &str = "192.0.2.11";
const PEER_HOST: &str = "192.0.2.12";
const PEER_MASTER: Role = Role::Backup {
    peer_is_master: true,
};

struct Case {
    name: &'static str,
    role: Role,
    local: Option<Snapshot>,
    peer: Option<Snapshot>,
    commands: Vec<Command>,
    eligible: bool,
    rule: fn(&Rule) -> bool,
}

fn cases() -> Vec<Case> {
    use Command::*;
    use Target::*;
    vec![
        Case {
            name: "local Redis down: nothing, not eligible",
            role: Role::Master,
            local: None,
            peer: Some(master(R1, 100, 10)),
            commands: vec![],
            eligible: false,
            rule: |r| matches!(r, Rule::LocalDown),
        },
        Case {
            name: "master alone",
            role: Role::Master,
            local: Some(master(R1, 100, 10)),
            peer: None,
            commands: vec![],
            eligible: true,
            rule: |r| matches!(r, Rule::MasterAlone),
        },
        Case {
            name: "steady pair",
            role: Role::Master,
            local: Some(master(R1, 100, 10)),
            peer: Some(replica_of(master(R1, 100, 10), LOCAL_HOST, true)),
            commands: vec![],
            eligible: true,
            rule: |r| matches!(r, Rule::Steady { .. }),
        },
        Case {
            name: "master: an empty restarted peer becomes our replica",
            role: Role::Master,
            local: Some(master(R1, 100, 10)),
            peer: Some(fresh()),
            commands: vec![ReplicaOf(Peer)],
            eligible: true,
            rule: |r| matches!(r, Rule::AttachPeer { .. }),
        },
        Case {
            name: "master: a peer on our history and behind becomes our replica",
            role: Role::Master,
            local: Some(master(R1, 100, 10)),
            peer: Some(master(R1, 80, 8)),
            commands: vec![ReplicaOf(Peer)],
            eligible: true,
            rule: |r| matches!(r, Rule::AttachPeer { .. }),
        },
        Case {
            name: "master: a peer continuing our history with more writes: step out and follow it",
            role: Role::Master,
            local: Some(master(R1, 100, 10)),
            peer: Some(promoted(R2, R1, 100, 150, 15)),
            commands: vec![ReplicaOf(Local)],
            eligible: false,
            rule: |r| matches!(r, Rule::Follow { .. }),
        },
        Case {
            name: "master: a peer that left our history without writing becomes our replica",
            role: Role::Master,
            local: Some(master(R1, 100, 10)),
            peer: Some(promoted(R2, R1, 100, 100, 10)),
            commands: vec![ReplicaOf(Peer)],
            eligible: true,
            rule: |r| matches!(r, Rule::AttachPeer { .. }),
        },
        Case {
            name: "master: we continue the peer's history: it becomes our replica",
            role: Role::Master,
            local: Some(promoted(R2, R1, 100, 150, 15)),
            peer: Some(master(R1, 100, 10)),
            commands: vec![ReplicaOf(Peer)],
            eligible: true,
            rule: |r| matches!(r, Rule::AttachPeer { .. }),
        },
        Case {
            name: "master: healed split, the peer went on further: step out and follow it (ours past the fork is discarded)",
            role: Role::Master,
            local: Some(promoted(R2, R1, 100, 150, 15)),
            peer: Some(promoted(R3, R1, 100, 170, 17)),
            commands: vec![ReplicaOf(Local)],
            eligible: false,
            rule: |r| {
                matches!(
                    r,
                    Rule::SplitBrainResolved {
                        kept: Target::Peer,
                        discarded: 50,
                        ..
                    }
                )
            },
        },
        Case {
            name: "master: healed split, we went on further: the peer resyncs from us",
            role: Role::Master,
            local: Some(promoted(R2, R1, 100, 10_000, 900)),
            peer: Some(master(R1, 149, 15)),
            commands: vec![ReplicaOf(Peer)],
            eligible: true,
            rule: |r| {
                matches!(
                    r,
                    Rule::SplitBrainResolved {
                        kept: Target::Local,
                        discarded: 49,
                        ..
                    }
                )
            },
        },
        Case {
            name: "backup: healed split, the master went on further: step out and follow it",
            role: PEER_MASTER,
            local: Some(master(R1, 149, 15)),
            peer: Some(promoted(R2, R1, 100, 10_000, 900)),
            commands: vec![ReplicaOf(Local)],
            eligible: false,
            rule: |r| {
                matches!(
                    r,
                    Rule::SplitBrainResolved {
                        kept: Target::Peer,
                        discarded: 49,
                        ..
                    }
                )
            },
        },
        Case {
            name: "backup: healed split, we went on further: wait for the master to pull",
            role: PEER_MASTER,
            local: Some(promoted(R2, R1, 100, 10_000, 900)),
            peer: Some(master(R1, 149, 15)),
            commands: vec![],
            eligible: true,
            rule: |r| matches!(r, Rule::LocalAhead { .. }),
        },
        Case {
            name: "master: two unrelated datasets: no resync either way",
            role: Role::Master,
            local: Some(master(R1, 100, 10)),
            peer: Some(master(R2, 100, 10)),
            commands: vec![],
            eligible: true,
            rule: |r| matches!(r, Rule::SplitBrain { .. }),
        },
        Case {
            name: "master with an empty restarted Redis while the peer holds data: step down, copy it",
            role: Role::Master,
            local: Some(fresh()),
            peer: Some(master(R1, 100, 10)),
            commands: vec![ReplicaOf(Local)],
            eligible: false,
            rule: |r| matches!(r, Rule::Follow { .. }),
        },
        Case {
            name: "fault with an empty Redis: copy the peer's data to become eligible",
            role: Role::Fault,
            local: Some(fresh()),
            peer: Some(master(R1, 100, 10)),
            commands: vec![ReplicaOf(Local)],
            eligible: false,
            rule: |r| matches!(r, Rule::Follow { .. }),
        },
        Case {
            name: "empty and syncing from the peer: wait, still not eligible",
            role: PEER_MASTER,
            local: Some(replica_of(fresh(), PEER_HOST, false)),
            peer: Some(master(R1, 100, 10)),
            commands: vec![],
            eligible: false,
            rule: |r| matches!(r, Rule::Wait { .. } | Rule::LocalEmptyPeerHasData { .. }),
        },
        Case {
            name: "both empty at first start: the master takes the peer as replica",
            role: Role::Master,
            local: Some(fresh()),
            peer: Some(master("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", 0, 0)),
            commands: vec![ReplicaOf(Peer)],
            eligible: true,
            rule: |r| matches!(r, Rule::AttachPeer { .. }),
        },
        Case {
            name: "master while our Redis follows an unreachable peer: promote at once",
            role: Role::Master,
            local: Some(replica_of(master(R1, 100, 10), PEER_HOST, false)),
            peer: None,
            commands: vec![ReplicaOfNoOne(Local)],
            eligible: true,
            rule: |r| matches!(r, Rule::PromoteNow { .. }),
        },
        Case {
            name: "master while our Redis follows a peer restarted empty: promote at once",
            role: Role::Master,
            local: Some(replica_of(master(R1, 100, 10), PEER_HOST, false)),
            peer: Some(fresh()),
            commands: vec![ReplicaOfNoOne(Local)],
            eligible: true,
            rule: |r| matches!(r, Rule::PromoteNow { .. }),
        },
        Case {
            name: "master while our Redis follows a live old master: fence it first",
            role: Role::Master,
            local: Some(replica_of(master(R1, 90, 9), PEER_HOST, true)),
            peer: Some(master(R1, 100, 10)),
            commands: vec![PauseWrites(Peer, Duration::from_secs(12))],
            eligible: true,
            rule: |r| matches!(r, Rule::FencePeer { .. }),
        },
        Case {
            name: "backup: two masters, the VIP holder's continues ours: step out and follow it",
            role: PEER_MASTER,
            local: Some(master(R1, 100, 10)),
            peer: Some(promoted(R2, R1, 100, 150, 15)),
            commands: vec![ReplicaOf(Local)],
            eligible: false,
            rule: |r| matches!(r, Rule::Follow { .. }),
        },
        Case {
            name: "backup: two masters on one history, we are behind: step out and follow",
            role: PEER_MASTER,
            local: Some(master(R1, 90, 9)),
            peer: Some(master(R1, 100, 10)),
            commands: vec![ReplicaOf(Local)],
            eligible: false,
            rule: |r| matches!(r, Rule::Follow { .. }),
        },
        Case {
            name: "backup: our data is ahead of the master's: wait for it to pull",
            role: PEER_MASTER,
            local: Some(promoted(R2, R1, 100, 150, 15)),
            peer: Some(master(R1, 100, 10)),
            commands: vec![],
            eligible: true,
            rule: |r| matches!(r, Rule::LocalAhead { .. }),
        },
        Case {
            name: "backup: never follow an empty restarted master",
            role: PEER_MASTER,
            local: Some(master(R1, 100, 10)),
            peer: Some(fresh()),
            commands: vec![],
            eligible: true,
            rule: |r| matches!(r, Rule::LocalAhead { .. }),
        },
        Case {
            name: "backup: never follow an unrelated dataset",
            role: PEER_MASTER,
            local: Some(master(R1, 100, 10)),
            peer: Some(master(R2, 200, 20)),
            commands: vec![],
            eligible: true,
            rule: |r| matches!(r, Rule::SplitBrain { .. }),
        },
        Case {
            name: "backup without a VRRP master, two masters, the peer's ahead: follow it all the same (we hold nothing of our own)",
            role: Role::Backup {
                peer_is_master: false,
            },
            local: Some(master(R1, 90, 9)),
            peer: Some(master(R1, 100, 10)),
            commands: vec![ReplicaOf(Local)],
            eligible: false,
            rule: |r| matches!(r, Rule::Follow { .. }),
        },
        Case {
            name: "backup without a VRRP master, equal data: leave our Redis alone",
            role: Role::Backup {
                peer_is_master: false,
            },
            local: Some(master(R1, 100, 10)),
            peer: Some(master(R1, 100, 10)),
            commands: vec![],
            eligible: true,
            rule: |r| matches!(r, Rule::Wait { .. }),
        },
        Case {
            name: "backup following with the link up",
            role: PEER_MASTER,
            local: Some(replica_of(master(R1, 100, 10), PEER_HOST, true)),
            peer: Some(master(R1, 100, 10)),
            commands: vec![],
            eligible: true,
            rule: |r| matches!(r, Rule::Following { .. }),
        },
        Case {
            name: "backup: link dropped and the peer's Redis is gone: detach to keep our data",
            role: PEER_MASTER,
            local: Some(replica_of(master(R1, 100, 10), PEER_HOST, false)),
            peer: None,
            commands: vec![ReplicaOfNoOne(Local)],
            eligible: true,
            rule: |r| matches!(r, Rule::Detach { .. }),
        },
        Case {
            name: "backup: link dropped and the master restarted empty: detach before the full sync flushes us",
            role: PEER_MASTER,
            local: Some(replica_of(master(R1, 100, 10), PEER_HOST, false)),
            peer: Some(fresh()),
            commands: vec![ReplicaOfNoOne(Local)],
            eligible: true,
            rule: |r| matches!(r, Rule::Detach { .. }),
        },
        Case {
            name: "backup: link down but the master holds our history: it resumes by itself",
            role: PEER_MASTER,
            local: Some(replica_of(master(R1, 100, 10), PEER_HOST, false)),
            peer: Some(master(R1, 120, 12)),
            commands: vec![],
            eligible: true,
            rule: |r| matches!(r, Rule::LinkDownSameHistory),
        },
        Case {
            name: "stopping without a live replica: hand over at once",
            role: Role::Stopping,
            local: Some(master(R1, 100, 10)),
            peer: None,
            commands: vec![],
            eligible: true,
            rule: |r| matches!(r, Rule::HandoverReady { .. }),
        },
        Case {
            name: "stopping with a live replica: pause our writes first",
            role: Role::Stopping,
            local: Some(master(R1, 100, 10)),
            peer: Some(replica_of(master(R1, 90, 9), LOCAL_HOST, true)),
            commands: vec![PauseWrites(Local, Duration::from_secs(12))],
            eligible: true,
            rule: |r| matches!(r, Rule::HandoverCatchingUp { .. }),
        },
    ]
}

#[test]
fn every_rule_in_the_table() {
    let mut failures = Vec::new();
    for case in cases() {
        let mut planner = Planner::new(config());
        let plan = planner.plan(
            Instant::now(),
            case.role,
            case.local.as_ref(),
            case.peer.as_ref(),
        );
        if plan.commands != case.commands
            || plan.eligible != case.eligible
            || !(case.rule)(&plan.rule)
        {
            failures.push(format!(
                "{}:\n  got commands {:?}, eligible {}, rule {:?} ({})\n  expected {:?}, eligible {}",
                case.name, plan.commands, plan.eligible, plan.rule, plan.rule, case.commands, case.eligible
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn step(
    planner: &mut Planner,
    now: Instant,
    role: Role,
    local: &Snapshot,
    peer: &Snapshot,
) -> Plan {
    planner.plan(now, role, Some(local), Some(peer))
}

#[test]
fn a_promotion_fences_waits_for_the_offset_then_swaps_roles() {
    let mut planner = Planner::new(config());
    let t0 = Instant::now();
    let old_master = master(R1, 100, 10);
    let behind = replica_of(master(R1, 90, 9), PEER_HOST, true);
    let fence = step(&mut planner, t0, Role::Master, &behind, &old_master);
    assert!(matches!(fence.rule, Rule::FencePeer { .. }));
    assert_eq!(fence.next_check, Duration::from_millis(20));
    // Still behind: wait, no command, no sleep.
    let wait = step(
        &mut planner,
        t0 + Duration::from_millis(20),
        Role::Master,
        &behind,
        &old_master,
    );
    assert!(wait.commands.is_empty());
    assert!(matches!(
        wait.rule,
        Rule::CatchingUp {
            local_offset: 90,
            peer_offset: 100,
            ..
        }
    ));
    // Caught up with the master's current offset: promote at once.
    let caught_up = replica_of(master(R1, 100, 10), PEER_HOST, true);
    let done = step(
        &mut planner,
        t0 + Duration::from_millis(40),
        Role::Master,
        &caught_up,
        &old_master,
    );
    assert_eq!(
        done.commands,
        [
            Command::ReplicaOfNoOne(Target::Local),
            Command::ReplicaOf(Target::Peer),
            Command::Unpause(Target::Peer)
        ]
    );
    assert!(matches!(done.rule, Rule::Promote { .. }));
    assert_eq!(done.next_check, Duration::from_secs(1));
}

#[test]
fn a_promotion_gives_up_waiting_after_the_catch_up_timeout() {
    let mut planner = Planner::new(config());
    let t0 = Instant::now();
    let old_master = master(R1, 100, 10);
    let behind = replica_of(master(R1, 90, 9), PEER_HOST, false);
    step(&mut planner, t0, Role::Master, &behind, &old_master);
    let before = step(
        &mut planner,
        t0 + Duration::from_millis(9_990),
        Role::Master,
        &behind,
        &old_master,
    );
    assert!(before.commands.is_empty());
    let after = step(
        &mut planner,
        t0 + Duration::from_secs(10),
        Role::Master,
        &behind,
        &old_master,
    );
    assert!(matches!(
        after.rule,
        Rule::PromoteAfterTimeout {
            local_offset: 90,
            peer_offset: 100
        }
    ));
    assert_eq!(after.commands[0], Command::ReplicaOfNoOne(Target::Local));
}

#[test]
fn a_promotion_never_serves_a_half_loaded_full_sync() {
    let mut planner = Planner::new(config());
    let t0 = Instant::now();
    let source = master(R1, 100, 10);
    // Our Redis is receiving a full sync: still on another history, link down.
    let loading = replica_of(master(R3, 50, 5), PEER_HOST, false);
    step(&mut planner, t0, Role::Master, &loading, &source);
    let late = step(
        &mut planner,
        t0 + Duration::from_secs(11),
        Role::Master,
        &loading,
        &source,
    );
    assert!(
        !late
            .commands
            .contains(&Command::ReplicaOfNoOne(Target::Local)),
        "{late:?}"
    );
    assert!(matches!(late.rule, Rule::CatchingUp { .. }));
    // An empty Redis still loading its first sync is not even eligible for the VIP.
    let empty = replica_of(fresh(), PEER_HOST, false);
    let plan = step(
        &mut planner,
        t0 + Duration::from_secs(12),
        Role::Master,
        &empty,
        &source,
    );
    assert!(!plan.eligible && plan.commands.is_empty(), "{plan:?}");
}

#[test]
fn a_planned_stop_waits_for_the_replica_then_hands_over() {
    let mut planner = Planner::new(config());
    let t0 = Instant::now();
    let local = master(R1, 100, 10);
    let behind = replica_of(master(R1, 90, 9), LOCAL_HOST, true);
    let pause = step(&mut planner, t0, Role::Stopping, &local, &behind);
    assert!(!pause.handover_ready);
    let wait = step(
        &mut planner,
        t0 + Duration::from_millis(20),
        Role::Stopping,
        &local,
        &behind,
    );
    assert!(!wait.handover_ready && wait.commands.is_empty());
    let caught_up = replica_of(master(R1, 100, 10), LOCAL_HOST, true);
    let ready = step(
        &mut planner,
        t0 + Duration::from_millis(40),
        Role::Stopping,
        &local,
        &caught_up,
    );
    assert!(ready.handover_ready);
    // A replica that never catches up does not hold the stop forever.
    let mut planner = Planner::new(config());
    step(&mut planner, t0, Role::Stopping, &local, &behind);
    let late = step(
        &mut planner,
        t0 + Duration::from_secs(10),
        Role::Stopping,
        &local,
        &behind,
    );
    assert!(late.handover_ready);
}

#[test]
fn every_rule_explains_itself_with_offsets() {
    let mut planner = Planner::new(config());
    let plan = planner.plan(
        Instant::now(),
        Role::Master,
        Some(&master(R1, 100, 10)),
        Some(&promoted(R2, R1, 100, 150, 15)),
    );
    let text = plan.rule.to_string();
    assert!(text.contains("100") && text.contains("150"), "{text}");
}

#[test]
fn a_replica_resyncing_after_a_healed_split_is_not_detached_again() {
    // Our Redis followed the master after a healed split (it went on less far) and is
    // in its full sync: link down, still on its own diverged history.
    let mut planner = Planner::new(config());
    let syncing = replica_of(master(R1, 149, 15), PEER_HOST, false);
    let plan = planner.plan(
        Instant::now(),
        PEER_MASTER,
        Some(&syncing),
        Some(&promoted(R2, R1, 100, 10_000, 900)),
    );
    assert!(plan.commands.is_empty(), "{plan:?}");
    assert!(
        matches!(plan.rule, Rule::LinkDownSameHistory),
        "{}",
        plan.rule
    );
}
