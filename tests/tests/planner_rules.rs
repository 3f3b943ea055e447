//! The replication planner's rules as a table of cases: role, the two snapshots, and
//! the commands and eligibility expected.

use std::time::{Duration, Instant};

use health::{LinkStatus, MasterLink, Role as RedisRole, Snapshot};
use replication::{
    Claim, ClaimState, Command, Context, Endpoint, Lineage, PeerFailure, Plan, Planner,
    PlannerConfig, Role, Rule, Target,
};

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
        isolation_timeout: None,
        yield_after: Duration::from_millis(2500),
        master_down_interval: Duration::from_millis(3609),
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

/// How our Redis, a master, is made to follow the peer: writes paused, dataset
/// saved (when it may hold what the peer lacks), REPLICAOF, writes released.
fn follow(save_first: bool) -> Vec<Command> {
    let mut commands = vec![Command::PauseWrites(Target::Local, Duration::from_secs(12))];
    if save_first {
        commands.push(Command::SaveDataset(Target::Local));
    }
    commands.push(Command::ReplicaOf(Target::Local));
    commands.push(Command::Unpause(Target::Local));
    commands
}

struct Case {
    name: &'static str,
    role: Role,
    local: Option<Snapshot>,
    peer: Option<Snapshot>,
    commands: Vec<Command>,
    eligible: bool,
    rule: fn(&Rule) -> bool,
    ctx: Context,
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
            ctx: Context::default(),
        },
        Case {
            name: "master alone",
            role: Role::Master,
            local: Some(master(R1, 100, 10)),
            peer: None,
            commands: vec![],
            eligible: true,
            rule: |r| matches!(r, Rule::MasterAlone),
            ctx: Context::default(),
        },
        Case {
            name: "steady pair",
            role: Role::Master,
            local: Some(master(R1, 100, 10)),
            peer: Some(replica_of(master(R1, 100, 10), LOCAL_HOST, true)),
            commands: vec![],
            eligible: true,
            rule: |r| matches!(r, Rule::Steady { .. }),
            ctx: Context::default(),
        },
        Case {
            name: "master: an empty restarted peer becomes our replica",
            role: Role::Master,
            local: Some(master(R1, 100, 10)),
            peer: Some(fresh()),
            commands: vec![ReplicaOf(Peer)],
            eligible: true,
            rule: |r| matches!(r, Rule::AttachPeer { .. }),
            ctx: Context::default(),
        },
        Case {
            name: "master: a peer on our history and behind becomes our replica",
            role: Role::Master,
            local: Some(master(R1, 100, 10)),
            peer: Some(master(R1, 80, 8)),
            commands: vec![ReplicaOf(Peer)],
            eligible: true,
            rule: |r| matches!(r, Rule::AttachPeer { .. }),
            ctx: Context::default(),
        },
        Case {
            name: "master: a peer continuing our history with more writes: step out and follow it",
            role: Role::Master,
            local: Some(master(R1, 100, 10)),
            peer: Some(promoted(R2, R1, 100, 150, 15)),
            commands: follow(false),
            eligible: false,
            rule: |r| matches!(r, Rule::FollowNewer { .. }),
            ctx: Context::default(),
        },
        Case {
            name: "master: a peer that left our history without writing becomes our replica",
            role: Role::Master,
            local: Some(master(R1, 100, 10)),
            peer: Some(promoted(R2, R1, 100, 100, 10)),
            commands: vec![ReplicaOf(Peer)],
            eligible: true,
            rule: |r| matches!(r, Rule::AttachPeer { .. }),
            ctx: Context::default(),
        },
        Case {
            name: "master: we continue the peer's history: it becomes our replica",
            role: Role::Master,
            local: Some(promoted(R2, R1, 100, 150, 15)),
            peer: Some(master(R1, 100, 10)),
            commands: vec![ReplicaOf(Peer)],
            eligible: true,
            rule: |r| matches!(r, Rule::AttachPeer { .. }),
            ctx: Context::default(),
        },
        Case {
            name: "master: split between two promoted siblings (no winner by history): the VIP holder's side is kept, the peer's saved first (no agent there)",
            role: Role::Master,
            local: Some(promoted(R2, R1, 100, 150, 15)),
            peer: Some(promoted(R3, R1, 100, 170, 17)),
            commands: vec![SaveDataset(Peer), ReplicaOf(Peer)],
            eligible: true,
            rule: |r| {
                matches!(
                    r,
                    Rule::SplitResolved {
                        kept: Target::Local,
                        discarded: 70,
                        ..
                    }
                )
            },
            ctx: Context::default(),
        },
        Case {
            name: "master: healed split, we were promoted during it: the peer (old master) is saved, then resyncs from us",
            role: Role::Master,
            local: Some(promoted(R2, R1, 100, 10_000, 900)),
            peer: Some(master(R1, 149, 15)),
            commands: vec![SaveDataset(Peer), ReplicaOf(Peer)],
            eligible: true,
            rule: |r| {
                matches!(
                    r,
                    Rule::SplitResolved {
                        kept: Target::Local,
                        discarded: 49,
                        ..
                    }
                )
            },
            ctx: Context::default(),
        },
        Case {
            name: "master: healed split, the old master went on FURTHER than us: we were promoted, so we are kept all the same (not a byte count)",
            role: Role::Master,
            local: Some(promoted(R2, R1, 100, 120, 12)),
            peer: Some(master(R1, 50_000, 5000)),
            commands: vec![SaveDataset(Peer), ReplicaOf(Peer)],
            eligible: true,
            rule: |r| {
                matches!(
                    r,
                    Rule::SplitResolved {
                        kept: Target::Local,
                        discarded: 49_900,
                        ..
                    }
                )
            },
            ctx: Context::default(),
        },
        Case {
            name: "master (the old master won the VIP back by priority): the peer was promoted during the split: save ours, step out and follow",
            role: Role::Master,
            local: Some(master(R1, 50_000, 5000)),
            peer: Some(promoted(R2, R1, 100, 120, 12)),
            commands: follow(true),
            eligible: false,
            rule: |r| {
                matches!(
                    r,
                    Rule::SplitResolved {
                        kept: Target::Peer,
                        discarded: 49_900,
                        ..
                    }
                )
            },
            ctx: Context::default(),
        },
        Case {
            name: "backup: healed split, the master was promoted during it: save ours, follow it",
            role: PEER_MASTER,
            local: Some(master(R1, 149, 15)),
            peer: Some(promoted(R2, R1, 100, 10_000, 900)),
            commands: follow(true),
            eligible: false,
            rule: |r| {
                matches!(
                    r,
                    Rule::SplitResolved {
                        kept: Target::Peer,
                        discarded: 49,
                        ..
                    }
                )
            },
            ctx: Context::default(),
        },
        Case {
            name: "backup: two masters on one history, we are behind: step out and follow",
            role: PEER_MASTER,
            local: Some(master(R1, 90, 9)),
            peer: Some(master(R1, 100, 10)),
            commands: follow(false),
            eligible: false,
            rule: |r| matches!(r, Rule::FollowNewer { .. }),
            ctx: Context::default(),
        },
        Case {
            name: "backup: our data is ahead of the master's: wait for it to pull",
            role: PEER_MASTER,
            local: Some(promoted(R2, R1, 100, 150, 15)),
            peer: Some(master(R1, 100, 10)),
            commands: vec![],
            eligible: true,
            rule: |r| matches!(r, Rule::LocalAhead { .. }),
            ctx: Context::default(),
        },
        Case {
            name: "backup: never follow an empty restarted master",
            role: PEER_MASTER,
            local: Some(master(R1, 100, 10)),
            peer: Some(fresh()),
            commands: vec![],
            eligible: true,
            rule: |r| matches!(r, Rule::LocalAhead { .. }),
            ctx: Context::default(),
        },
        Case {
            name: "backup: never follow an unrelated dataset",
            role: PEER_MASTER,
            local: Some(master(R1, 100, 10)),
            peer: Some(master(R2, 200, 20)),
            commands: vec![],
            eligible: true,
            rule: |r| matches!(r, Rule::SplitBrain { .. }),
            ctx: Context::default(),
        },
        Case {
            name: "backup without a VRRP master, two masters, the peer's ahead: follow it all the same (we hold nothing of our own)",
            role: Role::Backup {
                peer_is_master: false,
            },
            local: Some(master(R1, 90, 9)),
            peer: Some(master(R1, 100, 10)),
            commands: follow(false),
            eligible: false,
            rule: |r| matches!(r, Rule::FollowNewer { .. }),
            ctx: Context::default(),
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
            ctx: Context::default(),
        },
        Case {
            name: "backup following with the link up",
            role: PEER_MASTER,
            local: Some(replica_of(master(R1, 100, 10), PEER_HOST, true)),
            peer: Some(master(R1, 100, 10)),
            commands: vec![],
            eligible: true,
            rule: |r| matches!(r, Rule::Following { .. }),
            ctx: Context::default(),
        },
        Case {
            name: "backup: link dropped and the peer's Redis is gone: detach to keep our data",
            role: PEER_MASTER,
            local: Some(replica_of(master(R1, 100, 10), PEER_HOST, false)),
            peer: None,
            commands: vec![ReplicaOfNoOne(Local)],
            eligible: true,
            rule: |r| matches!(r, Rule::Detach { .. }),
            ctx: Context::default(),
        },
        Case {
            name: "backup: link dropped and the master restarted empty: detach before the full sync flushes us",
            role: PEER_MASTER,
            local: Some(replica_of(master(R1, 100, 10), PEER_HOST, false)),
            peer: Some(fresh()),
            commands: vec![ReplicaOfNoOne(Local)],
            eligible: true,
            rule: |r| matches!(r, Rule::Detach { .. }),
            ctx: Context::default(),
        },
        Case {
            name: "backup: link down but the master holds our history: it resumes by itself",
            role: PEER_MASTER,
            local: Some(replica_of(master(R1, 100, 10), PEER_HOST, false)),
            peer: Some(master(R1, 120, 12)),
            commands: vec![],
            eligible: true,
            rule: |r| matches!(r, Rule::LinkDownSameHistory),
            ctx: Context::default(),
        },
        Case {
            name: "start-up, both empty: a peer that detached (an id of its own, no keys) becomes our replica",
            role: Role::Master,
            local: Some(fresh()),
            peer: Some(promoted(R2, R1, 0, 0, 0)),
            commands: vec![ReplicaOf(Peer)],
            eligible: true,
            rule: |r| matches!(r, Rule::AttachPeer { .. }),
            ctx: Context::default(),
        },
        Case {
            name: "backup: our empty Redis syncing from an empty master: nothing to lose, no detach",
            role: PEER_MASTER,
            local: Some(replica_of(promoted(R2, R1, 0, 0, 0), PEER_HOST, false)),
            peer: Some(fresh()),
            commands: vec![],
            eligible: true,
            rule: |r| matches!(r, Rule::LinkDownSameHistory),
            ctx: Context::default(),
        },
        Case {
            name: "stopping without a live replica: hand over at once",
            role: Role::Stopping,
            local: Some(master(R1, 100, 10)),
            peer: None,
            commands: vec![],
            eligible: true,
            rule: |r| matches!(r, Rule::HandoverReady { .. }),
            ctx: Context::default(),
        },
        Case {
            name: "stopping with a live replica: pause our writes first",
            role: Role::Stopping,
            local: Some(master(R1, 100, 10)),
            peer: Some(replica_of(master(R1, 90, 9), LOCAL_HOST, true)),
            commands: vec![PauseWrites(Local, Duration::from_secs(12))],
            eligible: true,
            rule: |r| matches!(r, Rule::HandoverCatchingUp { .. }),
            ctx: Context::default(),
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
            &case.ctx,
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
    planner.plan(now, role, Some(local), Some(peer), &Context::default())
}

/// Plans, and confirms every command of the plan as Redis would answer OK.
fn step_ok(
    planner: &mut Planner,
    now: Instant,
    role: Role,
    local: &Snapshot,
    peer: &Snapshot,
) -> Plan {
    let plan = step(planner, now, role, local, peer);
    for command in &plan.commands {
        planner.record(now, command, Ok(()));
    }
    plan
}

const PAUSE: Duration = Duration::from_secs(12);

#[test]
fn a_promotion_fences_waits_for_the_offset_then_swaps_roles() {
    let mut planner = Planner::new(config());
    let t0 = Instant::now();
    let old_master = master(R1, 100, 10);
    let behind = replica_of(master(R1, 90, 9), PEER_HOST, true);
    let fence = step_ok(&mut planner, t0, Role::Master, &behind, &old_master);
    assert!(matches!(fence.rule, Rule::FencePeer { .. }));
    assert_eq!(fence.commands, [Command::PauseWrites(Target::Peer, PAUSE)]);
    assert_eq!(fence.next_check, Duration::from_millis(20));
    // Still behind: wait, no command, no sleep.
    let wait = step_ok(
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
    let done = step_ok(
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
fn a_fence_that_redis_refused_allows_no_promotion_and_is_tried_again() {
    let mut planner = Planner::new(config());
    let t0 = Instant::now();
    let old_master = master(R1, 100, 10);
    let caught_up = replica_of(master(R1, 100, 10), PEER_HOST, true);
    let fence = step(&mut planner, t0, Role::Master, &caught_up, &old_master);
    assert_eq!(fence.commands, [Command::PauseWrites(Target::Peer, PAUSE)]);
    planner.record(
        t0,
        &fence.commands[0],
        Err("NOPERM this user has no permissions to run the 'client|pause' command".into()),
    );
    // Caught up, but nothing fenced the old master: no promotion, for a while.
    for ms in [20, 500, 980] {
        let plan = step(
            &mut planner,
            t0 + Duration::from_millis(ms),
            Role::Master,
            &caught_up,
            &old_master,
        );
        assert!(plan.commands.is_empty(), "{plan:?}");
        assert!(
            matches!(&plan.rule, Rule::FenceFailed { error } if error.contains("NOPERM")),
            "{}",
            plan.rule
        );
    }
    // Then the fence is asked for again.
    let again = step(
        &mut planner,
        t0 + Duration::from_secs(1),
        Role::Master,
        &caught_up,
        &old_master,
    );
    assert_eq!(again.commands, [Command::PauseWrites(Target::Peer, PAUSE)]);
    // A fence sent but never confirmed (no answer recorded) is no fence either.
    let unconfirmed = step(
        &mut planner,
        t0 + Duration::from_millis(1020),
        Role::Master,
        &caught_up,
        &old_master,
    );
    assert!(
        !unconfirmed
            .commands
            .contains(&Command::ReplicaOfNoOne(Target::Local)),
        "{unconfirmed:?}"
    );
}

#[test]
fn a_timed_out_catch_up_never_demotes_a_peer_holding_newer_writes() {
    let mut planner = Planner::new(config());
    let t0 = Instant::now();
    let old_master = master(R1, 100, 10);
    let behind = replica_of(master(R1, 90, 9), PEER_HOST, false);
    step_ok(&mut planner, t0, Role::Master, &behind, &old_master);
    let before = step_ok(
        &mut planner,
        t0 + Duration::from_millis(9_990),
        Role::Master,
        &behind,
        &old_master,
    );
    assert!(before.commands.is_empty());
    let after = step_ok(
        &mut planner,
        t0 + Duration::from_secs(10),
        Role::Master,
        &behind,
        &old_master,
    );
    assert!(matches!(
        after.rule,
        Rule::CatchUpTimedOut {
            local_offset: 90,
            peer_offset: 100
        }
    ));
    // The peer stays master, its fence lifted at once; we leave the election.
    assert_eq!(after.commands, [Command::Unpause(Target::Peer)]);
    assert!(!after.eligible);
    // Out of the election (Fault) until our Redis follows with its link up.
    let fault = step_ok(
        &mut planner,
        t0 + Duration::from_secs(11),
        Role::Fault,
        &behind,
        &old_master,
    );
    assert!(!fault.eligible && fault.commands.is_empty(), "{fault:?}");
    let linked = replica_of(master(R1, 95, 9), PEER_HOST, true);
    let back = step_ok(
        &mut planner,
        t0 + Duration::from_secs(12),
        Role::Fault,
        &linked,
        &old_master,
    );
    assert!(back.eligible, "{back:?}");
}

#[test]
fn a_promotion_abandoned_by_a_role_change_lifts_its_fence() {
    let mut planner = Planner::new(config());
    let t0 = Instant::now();
    let old_master = master(R1, 100, 10);
    let behind = replica_of(master(R1, 90, 9), PEER_HOST, true);
    step_ok(&mut planner, t0, Role::Master, &behind, &old_master);
    let backup = step_ok(
        &mut planner,
        t0 + Duration::from_millis(20),
        PEER_MASTER,
        &behind,
        &old_master,
    );
    assert_eq!(backup.commands, [Command::Unpause(Target::Peer)]);
}

#[test]
fn a_promotion_never_serves_a_half_loaded_full_sync() {
    let mut planner = Planner::new(config());
    let t0 = Instant::now();
    let source = master(R1, 100, 10);
    // Our Redis is receiving a full sync: still on another history, link down.
    let loading = replica_of(master(R3, 50, 5), PEER_HOST, false);
    step_ok(&mut planner, t0, Role::Master, &loading, &source);
    for secs in [5, 11] {
        let late = step_ok(
            &mut planner,
            t0 + Duration::from_secs(secs),
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
    }
    // An empty Redis still loading its first sync is not even eligible for the VIP.
    let empty = replica_of(fresh(), PEER_HOST, false);
    let plan = step(
        &mut planner,
        t0 + Duration::from_secs(12),
        Role::Master,
        &empty,
        &source,
    );
    assert!(!plan.eligible, "{plan:?}");
    assert!(
        !plan
            .commands
            .contains(&Command::ReplicaOfNoOne(Target::Local)),
        "{plan:?}"
    );
}

#[test]
fn a_planned_stop_waits_for_the_replica_then_hands_over() {
    let mut planner = Planner::new(config());
    let t0 = Instant::now();
    let local = master(R1, 100, 10);
    let behind = replica_of(master(R1, 90, 9), LOCAL_HOST, true);
    let pause = step_ok(&mut planner, t0, Role::Stopping, &local, &behind);
    assert!(!pause.handover_ready);
    let wait = step_ok(
        &mut planner,
        t0 + Duration::from_millis(20),
        Role::Stopping,
        &local,
        &behind,
    );
    assert!(!wait.handover_ready && wait.commands.is_empty());
    let caught_up = replica_of(master(R1, 100, 10), LOCAL_HOST, true);
    let ready = step_ok(
        &mut planner,
        t0 + Duration::from_millis(40),
        Role::Stopping,
        &local,
        &caught_up,
    );
    assert!(ready.handover_ready);
    // A replica that never catches up does not hold the stop forever, and our Redis
    // keeps its writes: the pause is lifted, not left to run out.
    let mut planner = Planner::new(config());
    step_ok(&mut planner, t0, Role::Stopping, &local, &behind);
    let late = step_ok(
        &mut planner,
        t0 + Duration::from_secs(10),
        Role::Stopping,
        &local,
        &behind,
    );
    assert!(late.handover_ready);
    assert_eq!(late.commands, [Command::Unpause(Target::Local)]);
}

#[test]
fn a_planned_stop_whose_pause_was_refused_hands_over_without_assuming_it() {
    let mut planner = Planner::new(config());
    let t0 = Instant::now();
    let local = master(R1, 100, 10);
    let caught_up = replica_of(master(R1, 100, 10), LOCAL_HOST, true);
    let pause = step(&mut planner, t0, Role::Stopping, &local, &caught_up);
    planner.record(t0, &pause.commands[0], Err("timeout".into()));
    let plan = step(
        &mut planner,
        t0 + Duration::from_millis(20),
        Role::Stopping,
        &local,
        &caught_up,
    );
    assert!(plan.handover_ready);
    assert!(
        matches!(plan.rule, Rule::HandoverReady { why } if why.contains("could not be paused")),
        "{}",
        plan.rule
    );
}

fn claim(state: ClaimState, priority: u8, address: &str) -> Claim {
    Claim {
        state,
        priority,
        address: address.parse().unwrap(),
        vouched: None,
    }
}

#[test]
fn two_vrrp_masters_make_exactly_one_redis_master_without_ping_pong() {
    // One-way multicast loss: both agents are VRRP master; both Redis reach each
    // other. Host .11 (priority 150) holds the Redis master; .12 (100) its replica.
    let t0 = Instant::now();
    let high = claim(ClaimState::Master, 150, LOCAL_HOST);
    let low = claim(ClaimState::Master, 100, PEER_HOST);
    let redis_master = master(R1, 100, 10);
    let redis_replica = replica_of(master(R1, 100, 10), LOCAL_HOST, true);
    // The low-priority node (its Redis the replica) would have fenced and promoted;
    // it yields instead.
    let mut low_planner = Planner::new(PlannerConfig {
        peer: config().local,
        local: config().peer,
        ..config()
    });
    let low_ctx = Context {
        me: Some(low.clone()),
        peer_agent: Some(high.clone()),
        master_for: Duration::from_secs(5),
        ..Context::default()
    };
    let redis_replica_of_high = replica_of(master(R1, 100, 10), LOCAL_HOST, true);
    // Just become master too (a healed split): VRRP settles it within an advert
    // interval, so nothing is touched meanwhile: no fence, no promotion, no yield.
    let healing = Context {
        master_for: Duration::from_millis(300),
        ..low_ctx.clone()
    };
    let plan = Planner::new(PlannerConfig {
        peer: config().local,
        local: config().peer,
        ..config()
    })
    .plan(
        t0,
        Role::Master,
        Some(&redis_replica_of_high),
        Some(&redis_master),
        &healing,
    );
    assert!(plan.commands.is_empty() && plan.eligible, "{plan:?}");
    assert!(matches!(plan.rule, Rule::Wait { .. }), "{}", plan.rule);
    // Master for a while, but the peer's claim is new: it may be out of date (an
    // agent whose Redis stalled could not rename its connection, and says what it
    // is now at its next look). Nothing is touched until it has lasted
    // `yield_after`; a break in it starts the count again.
    let yield_after = config().yield_after;
    let mut at = t0;
    for round in 0..2 {
        let first = at;
        while at < first + yield_after {
            let plan = low_planner.plan(
                at,
                Role::Master,
                Some(&redis_replica_of_high),
                Some(&redis_master),
                &low_ctx,
            );
            assert!(plan.commands.is_empty() && plan.eligible, "{plan:?}");
            assert!(matches!(plan.rule, Rule::Wait { .. }), "{}", plan.rule);
            at += Duration::from_millis(100);
            if round == 0 && at >= first + yield_after / 2 {
                // The claim changes (the peer said what it is now): a break.
                let plan = low_planner.plan(
                    at,
                    Role::Master,
                    Some(&redis_replica_of_high),
                    Some(&redis_master),
                    &Context {
                        peer_agent: Some(claim(ClaimState::Fault, 150, LOCAL_HOST)),
                        ..low_ctx.clone()
                    },
                );
                assert!(plan.eligible, "{plan:?}");
                break;
            }
        }
    }
    let t0 = at;
    for i in 0..100 {
        let plan = low_planner.plan(
            t0 + Duration::from_millis(20 * i),
            Role::Master,
            Some(&redis_replica_of_high),
            Some(&redis_master),
            &low_ctx,
        );
        // The first yield lifts the fence of the promotion that the break began.
        let lifted: &[Command] = if i == 0 {
            &[Command::Unpause(Target::Peer)]
        } else {
            &[]
        };
        assert!(plan.commands == lifted && !plan.eligible, "{i}: {plan:?}");
        assert!(matches!(
            plan.rule,
            Rule::YieldToPeer {
                peer_priority: 150,
                ..
            }
        ));
        // Out of the election (Fault) it stays out while the peer claims master.
        let plan = low_planner.plan(
            t0 + Duration::from_millis(20 * i + 10),
            Role::Fault,
            Some(&redis_replica_of_high),
            Some(&redis_master),
            &low_ctx,
        );
        assert!(!plan.eligible, "{plan:?}");
    }
    // The high-priority node, VRRP master with the Redis master, is undisturbed.
    let mut high_planner = Planner::new(config());
    let high_ctx = Context {
        me: Some(high),
        peer_agent: Some(low.clone()),
        ..Context::default()
    };
    let plan = high_planner.plan(
        t0,
        Role::Master,
        Some(&redis_master),
        Some(&redis_replica),
        &high_ctx,
    );
    assert!(plan.eligible && plan.commands.is_empty(), "{plan:?}");
    assert!(matches!(plan.rule, Rule::Steady { .. }));
    // After a while it rejoins the election (as backup: if the loss is over it
    // hears the master and stays backup), even if the peer still claims master.
    let plan = low_planner.plan(
        t0 + Duration::from_secs(13),
        Role::Fault,
        Some(&redis_replica_of_high),
        Some(&redis_master),
        &low_ctx,
    );
    assert!(plan.eligible, "{plan:?}");
    // A claim whose Redis is no master (an agent that stepped down and has not
    // said so yet) is no reason to yield.
    let mut fresh = Planner::new(PlannerConfig {
        peer: config().local,
        local: config().peer,
        ..config()
    });
    let plan = fresh.plan(
        t0,
        Role::Master,
        Some(&redis_master),
        Some(&replica_of(master(R1, 100, 10), PEER_HOST, false)),
        &low_ctx,
    );
    assert!(plan.eligible, "{plan:?}");
    // Once the winner's agent is gone (no claim), the loser may take over again.
    let alone = Context {
        me: Some(low),
        ..Context::default()
    };
    let mut low_planner = Planner::new(PlannerConfig {
        peer: config().local,
        local: config().peer,
        ..config()
    });
    low_planner.plan(
        t0,
        Role::Master,
        Some(&redis_replica_of_high),
        Some(&redis_master),
        &low_ctx,
    );
    let plan = low_planner.plan(
        t0 + Duration::from_secs(5),
        Role::Fault,
        Some(&redis_replica_of_high),
        Some(&redis_master),
        &alone,
    );
    assert!(plan.eligible, "{plan:?}");
}

#[test]
fn a_dropped_peer_connection_detaches_the_replica_even_before_its_link_shows_down() {
    // The master's Redis was killed: it may come back empty at once and flush us,
    // whatever its sync mode; our Redis may not have noticed yet.
    let mut planner = Planner::new(config());
    let following = replica_of(master(R1, 100, 10), PEER_HOST, true);
    let ctx = Context {
        peer_dropped: true,
        peer_failure: PeerFailure::Refused,
        ..Context::default()
    };
    let plan = planner.plan(Instant::now(), PEER_MASTER, Some(&following), None, &ctx);
    assert_eq!(plan.commands, [Command::ReplicaOfNoOne(Target::Local)]);
    assert!(matches!(plan.rule, Rule::Detach { .. }));
    // A slow answer (silent) with the link up is no reason to detach.
    let silent = planner.plan(
        Instant::now(),
        PEER_MASTER,
        Some(&following),
        None,
        &Context::default(),
    );
    assert!(silent.commands.is_empty(), "{silent:?}");
}

/// `replica` with its master last heard `secs` seconds ago.
fn quiet_for(mut replica: Snapshot, secs: i64) -> Snapshot {
    if let Some(m) = replica.master.as_mut() {
        m.last_io_seconds_ago = Some(secs);
    }
    replica
}

/// The plan promotes our Redis at once, without a fence or a catch-up.
fn promotes_at_once(plan: &Plan) -> bool {
    plan.commands == [Command::ReplicaOfNoOne(Target::Local)]
}

/// The plan promotes our Redis with its writes held (the peer, alive behind a
/// slow link, went silent): paused first, for longer than the hold.
fn promotes_holding_writes(plan: &Plan) -> bool {
    plan.commands
        == [
            Command::PauseWrites(Target::Local, PAUSE),
            Command::ReplicaOfNoOne(Target::Local),
        ]
        && matches!(plan.rule, Rule::HoldingWrites { .. })
}

fn is_wait(plan: &Plan) -> bool {
    matches!(plan.rule, Rule::Wait { .. }) && plan.commands.is_empty()
}

/// The fault soak's finding: a slow link on the replica's side loses adverts (the
/// replica becomes VRRP master) and times out its agent's reads of the master's
/// Redis, while the replication stream still flows. Promoting then made a second
/// master whose clients split from the first's, and the first one's writes were
/// lost at the heal. The replica looks again for a grace time, then leaves the
/// election while its Redis hears the master; a master whose stream went quiet (a
/// partition, a host without power) is promoted over.
#[test]
fn a_slow_master_that_still_streams_is_not_promoted_over() {
    let t0 = Instant::now();
    let silent = Context::default();
    let streaming = replica_of(master(R1, 100, 10), PEER_HOST, true);
    let mut planner = Planner::new(config());
    let plan = planner.plan(t0, Role::Master, Some(&streaming), None, &silent);
    assert!(is_wait(&plan) && plan.eligible, "{plan:?}");
    assert_eq!(
        plan.next_check,
        Duration::from_millis(20),
        "looks again soon"
    );
    assert!(planner.holds_for_slow_master());
    let plan = planner.plan(
        t0 + Duration::from_secs(2),
        Role::Master,
        Some(&streaming),
        None,
        &silent,
    );
    assert!(
        is_wait(&plan) && !plan.eligible,
        "out after the grace: {plan:?}"
    );
    // Out of the election (Fault), it stays out while the stream flows...
    let plan = planner.plan(
        t0 + Duration::from_secs(3),
        Role::Fault,
        Some(&streaming),
        None,
        &silent,
    );
    assert!(is_wait(&plan) && !plan.eligible, "{plan:?}");
    // ... and rejoins once the peer answers again (it follows it, link up).
    let peer = master(R1, 100, 10);
    let plan = planner.plan(
        t0 + Duration::from_secs(4),
        Role::Fault,
        Some(&streaming),
        Some(&peer),
        &silent,
    );
    assert!(
        plan.eligible && matches!(plan.rule, Rule::Following { .. }),
        "{plan:?}"
    );
    assert!(!planner.holds_for_slow_master());

    // A master whose stream goes quiet (as long as its adverts: Master_Down_Interval,
    // 3.6 s here, and Redis's seconds round down) is dead or cut off: promoted over,
    // also during the grace. Heard 2 s ago (under 3 s) still counts as heard.
    let plan = Planner::new(config()).plan(
        t0,
        Role::Master,
        Some(&quiet_for(streaming.clone(), 2)),
        None,
        &silent,
    );
    assert!(is_wait(&plan), "{plan:?}");
    let mut planner = Planner::new(config());
    let plan = planner.plan(t0, Role::Master, Some(&streaming), None, &silent);
    assert!(is_wait(&plan) && plan.eligible, "{plan:?}");
    let quiet = quiet_for(streaming.clone(), 3);
    let plan = planner.plan(
        t0 + Duration::from_secs(1),
        Role::Master,
        Some(&quiet),
        None,
        &silent,
    );
    assert!(promotes_at_once(&plan), "{plan:?}");
    let plan = Planner::new(config()).plan(
        t0,
        Role::Master,
        Some(&quiet_for(streaming.clone(), 4)),
        None,
        &silent,
    );
    assert!(promotes_at_once(&plan), "{plan:?}");
    // With sub-second adverts the stream counts as quiet after 2 s (whole seconds).
    let fast = PlannerConfig {
        master_down_interval: Duration::from_millis(360),
        ..config()
    };
    let plan = Planner::new(fast.clone()).plan(
        t0,
        Role::Master,
        Some(&quiet_for(streaming.clone(), 1)),
        None,
        &silent,
    );
    assert!(is_wait(&plan), "{plan:?}");
    let plan = Planner::new(fast).plan(
        t0,
        Role::Master,
        Some(&quiet_for(streaming.clone(), 2)),
        None,
        &silent,
    );
    assert!(promotes_at_once(&plan), "{plan:?}");
    // Out after the grace, it rejoins once the stream goes quiet (then, as master
    // again, it promotes).
    let mut planner = Planner::new(config());
    planner.plan(t0, Role::Master, Some(&streaming), None, &silent);
    planner.plan(
        t0 + Duration::from_secs(2),
        Role::Master,
        Some(&streaming),
        None,
        &silent,
    );
    let plan = planner.plan(
        t0 + Duration::from_secs(3),
        Role::Fault,
        Some(&quiet),
        None,
        &silent,
    );
    assert!(plan.eligible, "{plan:?}");

    // A peer whose Redis refuses connections is down, whatever the stream said.
    let refused = Context {
        peer_failure: PeerFailure::Refused,
        ..Context::default()
    };
    let plan = Planner::new(config()).plan(t0, Role::Master, Some(&streaming), None, &refused);
    assert!(promotes_at_once(&plan), "{plan:?}");
}

/// A read of the peer cut short by a VRRP change (becoming master) tells nothing:
/// the planner neither promotes over it while our Redis hears the peer's, nor counts
/// it towards leaving the election; it looks again at once.
#[test]
fn an_unread_peer_is_read_again_before_any_promotion_over_it() {
    let t0 = Instant::now();
    let unread = Context {
        peer_failure: PeerFailure::Unread,
        ..Context::default()
    };
    let streaming = replica_of(master(R1, 100, 10), PEER_HOST, true);
    let mut planner = Planner::new(config());
    for later in [0, 5, 10] {
        let now = t0 + Duration::from_secs(later);
        let plan = planner.plan(now, Role::Master, Some(&streaming), None, &unread);
        assert!(is_wait(&plan) && plan.eligible, "{plan:?}");
        assert_eq!(plan.next_check, Duration::from_millis(20));
    }
    // Read: it answers, and the promotion fences it as usual.
    let peer = master(R1, 100, 10);
    let plan = planner.plan(
        t0,
        Role::Master,
        Some(&streaming),
        Some(&peer),
        &Context::default(),
    );
    assert!(matches!(plan.rule, Rule::FencePeer { .. }), "{plan:?}");
    // A replica that no longer hears its master promotes over an unread peer, as
    // over a silent one (a promotion never waits on a silent peer).
    let quiet = quiet_for(streaming, 3);
    let plan = Planner::new(config()).plan(t0, Role::Master, Some(&quiet), None, &unread);
    assert!(promotes_at_once(&plan), "{plan:?}");
}

fn isolating(timeout: u64) -> Planner {
    Planner::new(PlannerConfig {
        isolation_timeout: Some(Duration::from_secs(timeout)),
        ..config()
    })
}

#[test]
fn the_isolation_fence_holds_while_the_peer_is_silent_and_lifts_on_evidence() {
    let t0 = Instant::now();
    let local = master(R1, 100, 10);
    let replica = replica_of(master(R1, 100, 10), LOCAL_HOST, true);
    let mut planner = isolating(5);
    // Steady: armed, so that it holds the moment the replica vanishes.
    let armed = planner.plan(
        t0,
        Role::Master,
        Some(&local),
        Some(&replica),
        &Context::default(),
    );
    assert_eq!(armed.commands, [Command::IsolationFence(true)]);
    planner.record(t0, &armed.commands[0], Ok(()));
    // Confirmed: not sent again.
    let again = planner.plan(
        t0,
        Role::Master,
        Some(&local),
        Some(&replica),
        &Context::default(),
    );
    assert!(again.commands.is_empty());
    // The peer goes silent, no witness answers: stays on (Redis refuses writes
    // min-replicas-max-lag after the last acknowledgement).
    let no_witness = Context {
        witness: Some(false),
        ..Context::default()
    };
    let silent = planner.plan(t0, Role::Master, Some(&local), None, &no_witness);
    assert!(silent.commands.is_empty(), "{silent:?}");
    // A witness answers: this side is the connected one.
    let witness = Context {
        witness: Some(true),
        ..Context::default()
    };
    let lifted = planner.plan(t0, Role::Master, Some(&local), None, &witness);
    assert_eq!(lifted.commands, [Command::IsolationFence(false)]);
    planner.record(t0, &lifted.commands[0], Ok(()));
    // The peer's Redis refuses connections: it is down, writes may go on.
    let mut planner = isolating(5);
    let refused = Context {
        peer_failure: PeerFailure::Refused,
        ..Context::default()
    };
    let plan = planner.plan(t0, Role::Master, Some(&local), None, &refused);
    assert_eq!(plan.commands, [Command::IsolationFence(false)]);
    // A promotion over a silent peer without a witness sets it before promoting.
    let mut planner = isolating(5);
    let ours = quiet_for(replica_of(master(R1, 100, 10), PEER_HOST, true), 4);
    let plan = planner.plan(t0, Role::Master, Some(&ours), None, &Context::default());
    assert_eq!(
        plan.commands,
        [
            Command::IsolationFence(true),
            Command::ReplicaOfNoOne(Target::Local)
        ]
    );
    // Without an isolation timeout the fence is never touched.
    let mut planner = Planner::new(config());
    let plan = planner.plan(t0, Role::Master, Some(&local), None, &Context::default());
    assert!(plan.commands.is_empty());
}

#[test]
fn a_master_restarted_from_its_rdb_rejoins_as_replica_and_never_takes_the_vip() {
    // Redis 7.0.15: a master restarted from dump.rdb comes back with a new id, its
    // old id as replid2 and the snapshot's offset; meanwhile the peer was promoted.
    let restarted = promoted(R3, R1, 3_107, 3_107, 100);
    let new_master = promoted(R2, R1, 4_757, 4_817, 151);
    let mut planner = Planner::new(config());
    for role in [Role::Fault, PEER_MASTER, Role::Master] {
        let plan = planner.plan(
            Instant::now(),
            role,
            Some(&restarted),
            Some(&new_master),
            &Context::default(),
        );
        assert!(!plan.eligible, "{role:?}: {plan:?}");
        assert_eq!(plan.commands, follow(false), "{role:?}");
        assert!(
            matches!(plan.rule, Rule::FollowNewer { .. }),
            "{}",
            plan.rule
        );
    }
}

/// The soak's finding: two promotions happened since the master's last `dump.rdb`
/// (R1, continued by R2, continued by R4 on the peer). Redis remembers one step, so
/// the restarted Redis (R3 continuing R1 at its snapshot's offset) looks unrelated
/// to the peer; the agent saw R2 continue R1 and follows the peer without saving.
#[test]
fn a_master_restarted_from_an_rdb_two_promotions_old_follows_the_peer() {
    let restarted = promoted(R3, R1, 3_107, 3_107, 100);
    let r4 = "4444444444444444444444444444444444444444";
    let new_master = promoted(r4, R2, 5_000, 5_200, 170);
    let mut lineage = Lineage::default();
    lineage.observe(&promoted(R2, R1, 4_000, 4_200, 150));
    let seen = Context {
        lineage,
        ..Context::default()
    };
    let blind = Planner::new(config()).plan(
        Instant::now(),
        PEER_MASTER,
        Some(&restarted),
        Some(&new_master),
        &Context::default(),
    );
    assert!(
        blind.commands.is_empty() && matches!(blind.rule, Rule::SplitBrain { .. }),
        "{blind:?}"
    );
    let mut planner = Planner::new(config());
    for role in [Role::Fault, PEER_MASTER, Role::Master] {
        let plan = planner.plan(
            Instant::now(),
            role,
            Some(&restarted),
            Some(&new_master),
            &seen,
        );
        assert!(!plan.eligible, "{role:?}: {plan:?}");
        assert_eq!(plan.commands, follow(false), "{role:?}");
        assert!(
            matches!(plan.rule, Rule::FollowNewer { .. }),
            "{}",
            plan.rule
        );
    }
}

#[test]
fn a_replica_restarted_from_its_rdb_resyncs_from_the_master() {
    // It comes back as a master: new id, replid2 its old (the master's) id, offset
    // of its snapshot; the master went on.
    let restarted = promoted(R3, R1, 3_107, 3_107, 100);
    let master_now = master(R1, 4_757, 150);
    let mut planner = Planner::new(config());
    let plan = planner.plan(
        Instant::now(),
        PEER_MASTER,
        Some(&restarted),
        Some(&master_now),
        &Context::default(),
    );
    assert_eq!(plan.commands, follow(false));
    assert!(!plan.eligible);
}

/// The fault soak's finding: a replica restarted from its AOF, saved and told to
/// follow by the master's agent, served that `SYNC` and so took a fresh id of its
/// own; until its full sync arrives it still holds the data it loaded, so its agent
/// vouches for it as before and waits for the sync instead of detaching.
#[test]
fn a_replica_back_from_its_aof_and_told_to_follow_waits_for_its_full_sync() {
    use replication::vouch;
    let record = vouch::record(&replica_of(master(R1, 5_454, 170), LOCAL_HOST, true));
    let waiting = Snapshot {
        aof_enabled: true,
        ..replica_of(
            master("cccccccccccccccccccccccccccccccccccccccc", 0, 170),
            PEER_HOST,
            false,
        )
    };
    assert!(vouch::needs_vouching(&waiting, &record));
    let synced = replica_of(master(R1, 5_600, 171), PEER_HOST, true);
    assert!(!vouch::needs_vouching(&synced, &record));
    let local = vouch::vouched(&waiting, &record);
    let peer = master(R1, 5_600, 171);
    let ctx = Context {
        local_vouched: true,
        ..Context::default()
    };
    let plan =
        Planner::new(config()).plan(Instant::now(), PEER_MASTER, Some(&local), Some(&peer), &ctx);
    assert!(plan.commands.is_empty(), "{plan:?}");
    assert!(
        matches!(plan.rule, Rule::LinkDownSameHistory),
        "{}",
        plan.rule
    );
    // Without the vouching it looked unrelated and detached.
    let blind = Planner::new(config()).plan(
        Instant::now(),
        PEER_MASTER,
        Some(&waiting),
        Some(&peer),
        &Context::default(),
    );
    assert_eq!(
        blind.commands,
        [Command::ReplicaOfNoOne(Target::Local)],
        "{blind:?}"
    );
}

/// The fault soak's finding: a master's Redis (RDB only) killed and restarted empty
/// at once takes a few writes from clients before its agent looks: fresh ids,
/// offset 0, keys. Under RDB alone nothing without history was loaded from disk,
/// so its agent must not vouch for its recorded history (it would then have the
/// peer, holding everything, resynced from these few keys).
#[test]
fn a_redis_restarted_empty_under_rdb_is_never_vouched_for() {
    use replication::vouch;
    let record = vouch::record(&master(R1, 3_122_214, 84_907));
    let restarted = master("5555555555555555555555555555555555555555", 0, 5);
    assert!(!vouch::needs_vouching(&restarted, &record));
    // With the AOF on, the same looks like a restart from it.
    let from_aof = Snapshot {
        aof_enabled: true,
        ..restarted
    };
    assert!(vouch::needs_vouching(&from_aof, &record));
}

/// The same Redis, restarted empty under RDB and written before its agent looked:
/// the peer holds the history it had, so it leaves the election, its few keys are
/// saved, and it follows the peer.
#[test]
fn a_redis_restarted_without_data_saves_its_few_keys_and_follows_the_peer() {
    use replication::vouch;
    let record = vouch::record(&master(R1, 3_000, 150));
    let restarted = Snapshot {
        run_id: "another-run".into(),
        ..master("5555555555555555555555555555555555555555", 0, 5)
    };
    let peer = promoted(R2, R1, 3_100, 3_200, 150);
    assert!(vouch::restarted_without_data(
        &restarted, "run-r1", &record, &peer
    ));
    // Not the same run, not under the AOF, not a peer without our history.
    assert!(!vouch::restarted_without_data(
        &restarted,
        "another-run",
        &record,
        &peer
    ));
    let aof = Snapshot {
        aof_enabled: true,
        ..restarted.clone()
    };
    assert!(!vouch::restarted_without_data(
        &aof, "run-r1", &record, &peer
    ));
    let stranger = master(R3, 9_000, 150);
    assert!(!vouch::restarted_without_data(
        &restarted, "run-r1", &record, &stranger
    ));
    let ctx = Context {
        local_restarted_without_data: true,
        ..Context::default()
    };
    for role in [Role::Master, PEER_MASTER, Role::Fault] {
        let plan =
            Planner::new(config()).plan(Instant::now(), role, Some(&restarted), Some(&peer), &ctx);
        assert!(!plan.eligible, "{role:?}: {plan:?}");
        assert_eq!(plan.commands, follow(true), "{role:?}");
        assert!(
            matches!(
                plan.rule,
                Rule::LocalRestartedWithoutData {
                    local_keys: 5,
                    peer_keys: 150
                }
            ),
            "{}",
            plan.rule
        );
    }
}

/// Vouching is the agents' word, not Redis's: a vouched master that attaches the
/// peer saves the peer's dataset first.
#[test]
fn a_vouched_master_saves_the_peer_before_attaching_it() {
    let local = master(R1, replication::vouch::VOUCHED_MASTER_OFFSET, 170);
    let peer = master(R1, 5_000, 170);
    let ctx = Context {
        local_vouched: true,
        ..Context::default()
    };
    let plan = Planner::new(config()).plan(
        Instant::now(),
        Role::Master,
        Some(&local),
        Some(&peer),
        &ctx,
    );
    assert_eq!(
        plan.commands,
        [
            Command::SaveDataset(Target::Peer),
            Command::ReplicaOf(Target::Peer)
        ],
        "{plan:?}"
    );
}

#[test]
fn both_restarted_from_aof_the_vouched_master_wins_and_the_other_is_saved_first() {
    use replication::vouch;
    // Both came back from their append-only files with fresh ids and offset 0.
    let aof = |s: Snapshot| Snapshot {
        aof_enabled: true,
        ..s
    };
    let a_live = aof(master("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, 170));
    let b_live = aof(master("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", 0, 170));
    // A was master of R1 (recorded at 5000), B its replica (recorded at 5454: the
    // records are written at most once a second, so offsets alone would mislead).
    let a_record = vouch::record(&master(R1, 5_000, 170));
    let b_record = vouch::record(&replica_of(master(R1, 5_454, 170), LOCAL_HOST, true));
    assert!(vouch::needs_vouching(&a_live, &a_record));
    let a = vouch::vouched(&a_live, &a_record);
    let b = vouch::vouched(&b_live, &b_record);
    // A (VRRP master, after the election) attaches B, saving B's dataset first.
    let mut planner = Planner::new(config());
    let ctx = Context {
        local_vouched: true,
        peer_vouched: true,
        ..Context::default()
    };
    let plan = planner.plan(Instant::now(), Role::Master, Some(&a), Some(&b), &ctx);
    assert_eq!(
        plan.commands,
        [
            Command::SaveDataset(Target::Peer),
            Command::ReplicaOf(Target::Peer)
        ]
    );
    assert!(plan.eligible);
    // B, whatever its role, follows A after saving its own dataset, and leaves the
    // election until it does.
    let mut planner = Planner::new(config());
    for role in [Role::Fault, Role::Master] {
        let plan = planner.plan(Instant::now(), role, Some(&b), Some(&a), &ctx);
        assert_eq!(plan.commands, follow(true), "{role:?}");
        assert!(!plan.eligible, "{role:?}");
    }
}

#[test]
fn every_rule_explains_itself_with_offsets() {
    let mut planner = Planner::new(config());
    let plan = planner.plan(
        Instant::now(),
        Role::Master,
        Some(&master(R1, 100, 10)),
        Some(&promoted(R2, R1, 100, 150, 15)),
        &Context::default(),
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
        &Context::default(),
    );
    assert!(plan.commands.is_empty(), "{plan:?}");
    assert!(
        matches!(plan.rule, Rule::LinkDownSameHistory),
        "{}",
        plan.rule
    );
}

#[test]
fn a_resync_we_started_is_not_undone_while_it_waits_for_its_full_sync() {
    use replication::vouch;
    // Our Redis came back from its AOF (fresh id, offset 0); we vouch for the
    // recorded history, lose to the peer, save and follow it.
    let live = master("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0, 253);
    let recorded = vouch::record(&replica_of(master(R1, 4_468, 253), PEER_HOST, true));
    let vouched = vouch::vouched(&live, &recorded);
    let peer = promoted(R2, R1, 4_000, 9_000, 400);
    let ctx = Context {
        local_vouched: true,
        ..Context::default()
    };
    let mut planner = Planner::new(config());
    let t0 = Instant::now();
    let plan = planner.plan(t0, Role::Fault, Some(&vouched), Some(&peer), &ctx);
    assert_eq!(plan.commands, follow(true));
    for command in &plan.commands {
        planner.record(t0, command, Ok(()));
    }
    // Now a replica waiting for its full sync, with an id of its own that relates
    // to nothing (the save's SYNC gave it a new one): it stays.
    let waiting = replica_of(
        master("cccccccccccccccccccccccccccccccccccccccc", 0, 253),
        PEER_HOST,
        false,
    );
    for ms in [2, 1_000, 5_000] {
        let plan = planner.plan(
            t0 + Duration::from_millis(ms),
            Role::Fault,
            Some(&waiting),
            Some(&peer),
            &Context::default(),
        );
        assert!(plan.commands.is_empty(), "{ms} ms: {plan:?}");
    }
    // But the peer's Redis dropping still detaches it (it may come back empty).
    let dropped = Context {
        peer_dropped: true,
        ..Context::default()
    };
    let plan = planner.plan(t0, Role::Fault, Some(&waiting), None, &dropped);
    assert_eq!(plan.commands, [Command::ReplicaOfNoOne(Target::Local)]);
}

/// The fault soak's finding: a slow link on the replica's side (a 64 kbit/s queue)
/// first timed out our reads of the master's Redis while its stream still came
/// in, then lost its adverts and stalled the stream for 6 s, so the replica took
/// the VIP with a copy seconds old while the master lived on; clients followed the
/// VIP, both sides took writes, and the master's were lost at the heal. A
/// promotion over a peer seen alive that way now holds our writes until it is
/// read: it holds writes ours lacks, and we follow it with nothing of ours to lose.
/// A peer that went silent all at once (dead, or cut off) is promoted over at once.
#[test]
fn a_promotion_over_a_slow_peer_holds_writes_until_the_peer_answers() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let silent = Context::default();
    let streaming = |offset| replica_of(master(R1, offset, 10), PEER_HOST, true);
    let stalled = quiet_for(streaming(300), 6);
    let promoted_ours = promoted(R2, R1, 300, 300, 10);
    // As backup: the peer's Redis does not answer, while its stream moves ours
    // from offset 100 to 300.
    let slow_peer = || {
        let mut planner = Planner::new(config());
        for (at, offset) in [(0, 100), (1000, 200), (2000, 300)] {
            let plan = planner.plan(
                t0 + ms(at),
                PEER_MASTER,
                Some(&streaming(offset)),
                None,
                &silent,
            );
            assert!(plan.eligible, "{plan:?}");
        }
        planner
    };
    let t1 = t0 + ms(6000);
    let mut planner = slow_peer();
    let plan = planner.plan(t1, Role::Master, Some(&stalled), None, &silent);
    assert!(promotes_holding_writes(&plan) && plan.eligible, "{plan:?}");
    for command in &plan.commands {
        planner.record(t1, command, Ok(()));
    }
    assert!(planner.holds_writes());
    // Still silent: held, looked at again soon.
    let plan = planner.plan(
        t1 + ms(500),
        Role::Master,
        Some(&promoted_ours),
        None,
        &silent,
    );
    assert!(
        matches!(plan.rule, Rule::HoldingWrites { left } if left == ms(9500))
            && plan.commands.is_empty()
            && plan.eligible
            && plan.next_check == ms(20),
        "{plan:?}"
    );
    // The peer answers: alive, with writes ours lacks. We follow it (nothing of
    // ours past the fork: no save), out of the election; the hold is over.
    let alive = master(R1, 900, 16);
    let plan = planner.plan(
        t1 + ms(900),
        Role::Master,
        Some(&promoted_ours),
        Some(&alive),
        &silent,
    );
    assert!(
        matches!(plan.rule, Rule::FollowNewer { .. }) && !plan.eligible,
        "{plan:?}"
    );
    assert_eq!(plan.commands, follow(false));
    assert!(!planner.holds_writes());

    // A peer that never answers (it died after all): the hold ends with the
    // catch-up timeout, writes go on.
    let mut planner = slow_peer();
    planner.plan(t1, Role::Master, Some(&stalled), None, &silent);
    let plan = planner.plan(
        t1 + ms(10_000),
        Role::Master,
        Some(&promoted_ours),
        None,
        &silent,
    );
    assert_eq!(plan.commands, [Command::Unpause(Target::Local)]);
    assert!(
        matches!(plan.rule, Rule::MasterAlone) && plan.eligible,
        "{plan:?}"
    );
    assert!(!planner.holds_writes());
    // One whose Redis refuses connections is down: released at once.
    let mut planner = slow_peer();
    planner.plan(t1, Role::Master, Some(&stalled), None, &silent);
    let refused = Context {
        peer_failure: PeerFailure::Refused,
        ..Context::default()
    };
    let plan = planner.plan(
        t1 + ms(100),
        Role::Master,
        Some(&promoted_ours),
        None,
        &refused,
    );
    assert_eq!(plan.commands, [Command::Unpause(Target::Local)]);
    // One that answers with nothing ours lacks becomes our replica, writes released.
    let mut planner = slow_peer();
    planner.plan(t1, Role::Master, Some(&stalled), None, &silent);
    let plan = planner.plan(
        t1 + ms(100),
        Role::Master,
        Some(&promoted_ours),
        Some(&master(R1, 300, 10)),
        &silent,
    );
    assert!(matches!(plan.rule, Rule::AttachPeer { .. }), "{plan:?}");
    assert_eq!(
        plan.commands,
        [
            Command::ReplicaOf(Target::Peer),
            Command::Unpause(Target::Local)
        ]
    );
    // Out of Master meanwhile (the peer's adverts got through): released too.
    let mut planner = slow_peer();
    planner.plan(t1, Role::Master, Some(&stalled), None, &silent);
    let plan = planner.plan(
        t1 + ms(100),
        PEER_MASTER,
        Some(&promoted_ours),
        None,
        &silent,
    );
    assert!(
        plan.commands.ends_with(&[Command::Unpause(Target::Local)]),
        "{plan:?}"
    );
    assert!(!planner.holds_writes());
    // A Redis that refuses the pause is promoted without it rather than not at all.
    let mut planner = slow_peer();
    let plan = planner.plan(t1, Role::Master, Some(&stalled), None, &silent);
    planner.record(t1, &plan.commands[0], Err("ERR unknown command".into()));
    let plan = planner.plan(t1 + ms(20), Role::Master, Some(&stalled), None, &silent);
    assert!(promotes_at_once(&plan), "{plan:?}");

    // A peer that went silent all at once (its stream stopped with its answers)
    // is dead or cut off: promoted over at once, even when the look in flight at
    // the cut had taken our snapshot just before it; so is a slow peer that
    // answered again since.
    let mut planner = Planner::new(config());
    for (at, offset) in [(0, 290), (1000, 300), (2000, 300), (3000, 300)] {
        planner.plan(
            t0 + ms(at),
            PEER_MASTER,
            Some(&streaming(offset)),
            None,
            &silent,
        );
    }
    let plan = planner.plan(t1, Role::Master, Some(&stalled), None, &silent);
    assert!(promotes_at_once(&plan), "{plan:?}");
    let mut planner = slow_peer();
    planner.plan(
        t0 + ms(3000),
        PEER_MASTER,
        Some(&streaming(300)),
        Some(&master(R1, 300, 10)),
        &silent,
    );
    let plan = planner.plan(t1, Role::Master, Some(&stalled), None, &silent);
    assert!(promotes_at_once(&plan), "{plan:?}");
}

/// The same slow link, seen through the adverts: the link queues and drops so
/// much that our Redis receives none of the stream, but the peer's adverts keep
/// arriving after our reads of its Redis failed. That peer is alive: a promotion
/// over it holds our writes. When the adverts stopped with the answers (a master
/// that died, or a cut), or the peer said goodbye (priority 0: its agent hands
/// over, or its Redis is down), the promotion goes at once.
#[test]
fn adverts_heard_after_silent_reads_show_a_slow_peer() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let stalled = quiet_for(replica_of(master(R1, 300, 10), PEER_HOST, true), 6);
    let looks = |adverts: [u64; 3]| {
        let mut planner = Planner::new(config());
        for (i, heard) in adverts.into_iter().enumerate() {
            let ctx = Context {
                adverts_heard: heard,
                ..Context::default()
            };
            let at = t0 + ms(1000 * i as u64);
            let plan = planner.plan(at, PEER_MASTER, Some(&stalled), None, &ctx);
            assert!(plan.eligible, "{plan:?}");
        }
        planner
    };
    let t1 = t0 + ms(6000);
    let took_over = Context {
        adverts_heard: 9,
        ..Context::default()
    };
    // Adverts after each silent look: alive behind a slow link.
    let mut planner = looks([3, 5, 7]);
    let plan = planner.plan(t1, Role::Master, Some(&stalled), None, &took_over);
    assert!(promotes_holding_writes(&plan), "{plan:?}");
    // One advert after a silent look is enough: that look's read had failed
    // before it counted, and a dead master stops advertising before a read of it
    // times out.
    let mut planner = looks([3, 4, 4]);
    let plan = planner.plan(t1, Role::Master, Some(&stalled), None, &took_over);
    assert!(promotes_holding_writes(&plan), "{plan:?}");
    // No advert after the first silent look: dead or cut off.
    let mut planner = looks([3, 3, 3]);
    let plan = planner.plan(t1, Role::Master, Some(&stalled), None, &took_over);
    assert!(promotes_at_once(&plan), "{plan:?}");
    // Alive behind a slow link, but it said goodbye: its Redis is down or it
    // handed over, and it takes no writes through the VIP.
    let mut planner = looks([3, 5, 7]);
    let goodbye = Context {
        peer_stepped_down: true,
        ..took_over.clone()
    };
    let plan = planner.plan(t1, Role::Master, Some(&stalled), None, &goodbye);
    assert!(promotes_at_once(&plan), "{plan:?}");
    // Adverts counted while the peer was not our VRRP master prove nothing of it.
    let mut planner = Planner::new(config());
    for (i, heard) in [3, 5, 7].into_iter().enumerate() {
        let ctx = Context {
            adverts_heard: heard,
            ..Context::default()
        };
        let at = t0 + ms(1000 * i as u64);
        let no_master = Role::Backup {
            peer_is_master: false,
        };
        planner.plan(at, no_master, Some(&stalled), None, &ctx);
    }
    let plan = planner.plan(t1, Role::Master, Some(&stalled), None, &took_over);
    assert!(promotes_at_once(&plan), "{plan:?}");
}
