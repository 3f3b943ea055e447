//! The planner and the executor together against real redis-server processes on
//! loopback ports: promotions, planned stops, and the protections of invariant 3.

#[path = "../../crates/health/tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{RedisServer, options, require_redis, wait_info};
use health::{Client, RedisTarget, Snapshot};
use replication::{
    Command, Context, Endpoint, Executor, Planner, PlannerConfig, Role, Rule, Target,
};
use tokio::sync::Mutex;

fn endpoint(server: &RedisServer) -> Endpoint {
    Endpoint {
        host: "127.0.0.1".into(),
        port: server.port,
    }
}

fn planner_config(local: &RedisServer, peer: &RedisServer) -> PlannerConfig {
    PlannerConfig {
        peer: endpoint(peer),
        local: endpoint(local),
        catch_up_timeout: Duration::from_secs(5),
        fast_poll: Duration::from_millis(20),
        slow_poll: Duration::from_millis(200),
        isolation_timeout: None,
        yield_after: Duration::from_millis(2500),
        master_down_interval: Duration::from_millis(3609),
    }
}

fn setup(local: &RedisServer, peer: &RedisServer) -> (Planner, Executor) {
    let planner = Planner::new(planner_config(local, peer));
    let executor = Executor::new(
        local.client(),
        peer.client(),
        endpoint(local),
        endpoint(peer),
    );
    (planner, executor)
}

/// One planning round: observe both, plan, run the commands. Returns the rule and
/// the commands run.
async fn round(
    planner: &mut Planner,
    executor: &mut Executor,
    role: Role,
) -> (Rule, Vec<Command>, bool) {
    let (local, peer) = executor.observe(None).await;
    let ctx = Context {
        peer_failure: peer.as_ref().err().copied().unwrap_or_default(),
        ..Context::default()
    };
    let plan = planner.plan(
        Instant::now(),
        role,
        local.ok().as_ref(),
        peer.ok().as_ref(),
        &ctx,
    );
    for command in &plan.commands {
        let result = executor.run(command).await;
        planner.record(
            Instant::now(),
            command,
            result.as_ref().map(|_| ()).map_err(ToString::to_string),
        );
        result.unwrap_or_else(|e| panic!("{command}: {e}"));
    }
    (plan.rule, plan.commands, plan.handover_ready)
}

async fn set_keys(client: &mut Client, range: std::ops::Range<u64>) {
    for n in range {
        client
            .command(&["SET", &format!("k:{n}"), "v"])
            .await
            .expect("SET");
    }
}

async fn has_keys(client: &mut Client, acked: &[u64]) -> Vec<u64> {
    let mut missing = Vec::new();
    for n in acked {
        if client
            .command(&["EXISTS", &format!("k:{n}")])
            .await
            .expect("EXISTS")
            != "1"
        {
            missing.push(*n);
        }
    }
    missing
}

/// Writes k:0, k:1, ... to `server` until told to stop; returns the acknowledged ones.
fn start_writer(server: &RedisServer, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<u64>> {
    let mut client = server.client();
    tokio::spawn(async move {
        let mut acked = Vec::new();
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            if client
                .command(&["SET", &format!("k:{n}"), "v"])
                .await
                .is_ok()
            {
                acked.push(n);
            }
            n += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        acked
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_fences_the_old_master_and_loses_no_acknowledged_write() {
    if !require_redis("a_promotion_fences_the_old_master_and_loses_no_acknowledged_write") {
        return;
    }
    let old = RedisServer::start(&[]);
    let new = RedisServer::start(&["--replicaof", "127.0.0.1", &old.port.to_string()]);
    let mut new_client = new.client();
    wait_info(
        &mut new_client,
        Duration::from_secs(10),
        "replica link up",
        Snapshot::link_up,
    )
    .await;

    // Writes keep flowing to the old master (its agent died; clients still reach it).
    let stop = Arc::new(AtomicBool::new(false));
    let writer = start_writer(&old, stop.clone());
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (mut planner, mut executor) = setup(&new, &old);
    let started = Instant::now();
    let mut rules = Vec::new();
    loop {
        let (rule, commands, _) = round(&mut planner, &mut executor, Role::Master).await;
        let promoted = commands.contains(&Command::ReplicaOfNoOne(Target::Local));
        rules.push(rule.to_string());
        if promoted {
            assert!(matches!(rule, Rule::Promote { .. }), "{rules:#?}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no promotion: {rules:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let promoted_after = started.elapsed();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let acked = writer.await.unwrap();
    assert!(
        acked.len() > 50,
        "the writer wrote too little: {}",
        acked.len()
    );
    let missing = has_keys(&mut new_client, &acked).await;
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
    // The old master follows the new one.
    let mut old_client = old.client();
    let old_state = wait_info(
        &mut old_client,
        Duration::from_secs(10),
        "old master follows",
        Snapshot::link_up,
    )
    .await;
    assert_eq!(old_state.master.unwrap().port, new.port);
    eprintln!("promoted after {promoted_after:?}; rules: {rules:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planned_stop_pauses_writes_until_the_replica_has_them() {
    if !require_redis("a_planned_stop_pauses_writes_until_the_replica_has_them") {
        return;
    }
    let master = RedisServer::start(&[]);
    let replica = RedisServer::start(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let mut replica_client = replica.client();
    wait_info(
        &mut replica_client,
        Duration::from_secs(10),
        "replica link up",
        Snapshot::link_up,
    )
    .await;
    let mut master_client = master.client();
    set_keys(&mut master_client, 0..500).await;

    let (mut planner, mut executor) = setup(&master, &replica);
    let started = Instant::now();
    loop {
        let (rule, _, ready) = round(&mut planner, &mut executor, Role::Stopping).await;
        if ready {
            assert!(matches!(rule, Rule::HandoverReady { .. }), "{rule}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(6));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (local, peer) = executor.observe(None).await;
    assert_eq!(
        local.unwrap().offset(),
        peer.unwrap().offset(),
        "the replica holds every byte"
    );
    // Writes wait while paused: a SET does not complete within the client's timeout.
    let blocked = master_client.command(&["SET", "after", "pause"]).await;
    assert!(
        blocked.is_err(),
        "a write went through the pause: {blocked:?}"
    );
    // Reads go on.
    assert!(
        Client::new(master.target(), options())
            .command(&["GET", "k:1"])
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_detaches_from_a_master_restarted_empty_and_keeps_its_data() {
    if !require_redis("a_backup_detaches_from_a_master_restarted_empty_and_keeps_its_data") {
        return;
    }
    let mut master = RedisServer::start(&[]);
    let replica = RedisServer::start(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let mut master_client = master.client();
    set_keys(&mut master_client, 0..200).await;
    let mut replica_client = replica.client();
    wait_info(
        &mut replica_client,
        Duration::from_secs(10),
        "replica has the keys",
        |s| s.link_up() && s.keys == 200,
    )
    .await;

    let (planner, executor) = setup(&replica, &master);
    let shared = Arc::new(Mutex::new((planner, executor)));
    // The backup's agent looks every 200 ms (a check interval), as in production.
    let stop = Arc::new(AtomicBool::new(false));
    let agent = {
        let shared = shared.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut commands = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let mut guard = shared.lock().await;
                let (planner, executor) = &mut *guard;
                let (_, run, _) = round(
                    planner,
                    executor,
                    Role::Backup {
                        peer_is_master: true,
                    },
                )
                .await;
                commands.extend(run);
                drop(guard);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            commands
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A supervisor restarts the master at once, empty (no persistence).
    master.kill();
    master.restart();
    // Redis 7's default diskless sync delay is 5 s: by then the replica must be detached.
    tokio::time::sleep(Duration::from_secs(7)).await;
    stop.store(true, Ordering::Relaxed);
    let commands = agent.await.unwrap();
    let after = replica_client.info().await.unwrap();
    assert_eq!(
        after.keys, 200,
        "the replica was flushed by the empty master"
    );
    assert!(
        after.is_master(),
        "the replica must have detached: {after:?}"
    );
    assert!(
        commands.contains(&Command::ReplicaOfNoOne(Target::Local)),
        "{commands:?}"
    );
    assert!(
        !commands.contains(&Command::ReplicaOf(Target::Local)),
        "it followed the empty master: {commands:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_unrelated_datasets_are_left_alone() {
    if !require_redis("two_unrelated_datasets_are_left_alone") {
        return;
    }
    let a = RedisServer::start(&[]);
    let b = RedisServer::start(&[]);
    set_keys(&mut a.client(), 0..10).await;
    set_keys(&mut b.client(), 100..110).await;
    let (mut planner, mut executor) = setup(&a, &b);
    for role in [
        Role::Master,
        Role::Backup {
            peer_is_master: true,
        },
    ] {
        let (rule, commands, _) = round(&mut planner, &mut executor, role).await;
        assert!(matches!(rule, Rule::SplitBrain { .. }), "{rule}");
        assert!(commands.is_empty());
    }
    assert_eq!(a.client().info().await.unwrap().keys, 10);
    assert_eq!(b.client().info().await.unwrap().keys, 10);
}

/// One round that tolerates failed commands (they are recorded, as the agent does).
async fn round_with(
    planner: &mut Planner,
    executor: &mut Executor,
    role: Role,
    ctx: &Context,
) -> (Rule, Vec<Command>, Vec<Result<Option<String>, String>>) {
    let (mut local, mut peer) = executor.observe(None).await;
    // As the coordinator does: a live local Redis whose read failed (a slow answer
    // on a loaded machine) is looked at again, not taken for one that is down.
    for _ in 0..10 {
        match &local {
            Err(e) if !e.is_connection_failure() => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                (local, peer) = executor.observe(None).await;
            }
            _ => break,
        }
    }
    let mut ctx = ctx.clone();
    if let Err(failure) = &peer {
        ctx.peer_failure = *failure;
    }
    let plan = planner.plan(
        Instant::now(),
        role,
        local.ok().as_ref(),
        peer.ok().as_ref(),
        &ctx,
    );
    let mut results = Vec::new();
    for command in &plan.commands {
        let result = executor.run(command).await.map_err(|e| e.to_string());
        planner.record(
            Instant::now(),
            command,
            result.as_ref().map(|_| ()).map_err(Clone::clone),
        );
        let failed = result.is_err();
        results.push(result);
        if failed {
            break;
        }
    }
    (plan.rule, plan.commands, results)
}

const USER: &str = "redha";
const PASSWORD: &str = "s3cret";

fn as_user(server: &RedisServer) -> Client {
    Client::new(
        RedisTarget::new(server.address()).with_user(USER, PASSWORD),
        options(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_fence_blocks_the_promotion_until_redis_allows_it() {
    if !require_redis("a_refused_fence_blocks_the_promotion_until_redis_allows_it") {
        return;
    }
    let old = RedisServer::start(&[]);
    let password = format!(">{PASSWORD}");
    old.client()
        .command(&[
            "ACL",
            "SETUSER",
            USER,
            "on",
            &password,
            "~*",
            "&*",
            "+@all",
            "-client|pause",
        ])
        .await
        .expect("ACL SETUSER");
    let new = RedisServer::start(&["--replicaof", "127.0.0.1", &old.port.to_string()]);
    let mut new_client = new.client();
    wait_info(
        &mut new_client,
        Duration::from_secs(10),
        "replica link up",
        Snapshot::link_up,
    )
    .await;
    // The old master holds data before the rounds start (an empty one with no
    // history would rightly be promoted over at once: nothing to fence).
    set_keys(&mut old.client(), 0..50).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = start_writer(&old, stop.clone());

    let (mut planner, _) = setup(&new, &old);
    let mut executor = Executor::new(new.client(), as_user(&old), endpoint(&new), endpoint(&old));
    // For two seconds: the pause is refused (NOPERM), nothing is promoted.
    let started = Instant::now();
    let mut refused = 0;
    while started.elapsed() < Duration::from_secs(2) {
        let (rule, commands, results) = round_with(
            &mut planner,
            &mut executor,
            Role::Master,
            &Context::default(),
        )
        .await;
        assert!(
            !commands.contains(&Command::ReplicaOfNoOne(Target::Local)),
            "promoted over an unfenced master: {rule}"
        );
        refused += results
            .iter()
            .filter(|r| r.as_ref().is_err_and(|e| e.contains("NOPERM")))
            .count();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Asked once at first, then again after a second: two refusals, no more.
    assert_eq!(refused, 2, "the fence is retried once a second");
    // The operator fixes the ACL: the next fence holds and the promotion follows.
    let mut admin = old.client();
    admin
        .command(&["ACL", "SETUSER", USER, "+client|pause"])
        .await
        .expect("ACL SETUSER");
    let fixed = Instant::now();
    loop {
        let (rule, commands, _) = round_with(
            &mut planner,
            &mut executor,
            Role::Master,
            &Context::default(),
        )
        .await;
        if commands.contains(&Command::ReplicaOfNoOne(Target::Local)) {
            assert!(matches!(rule, Rule::Promote { .. }), "{rule}");
            break;
        }
        assert!(
            fixed.elapsed() < Duration::from_secs(5),
            "no promotion: {rule}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let acked = writer.await.unwrap();
    let missing = has_keys(&mut new_client, &acked).await;
    assert!(missing.is_empty(), "acknowledged writes lost: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_loser_is_saved_to_an_rdb_file_before_it_is_resynced() {
    if !require_redis("a_split_loser_is_saved_to_an_rdb_file_before_it_is_resynced") {
        return;
    }
    let old = RedisServer::start(&["--repl-diskless-sync-delay", "0"]);
    let new = RedisServer::start(&[
        "--replicaof",
        "127.0.0.1",
        &old.port.to_string(),
        "--repl-diskless-sync-delay",
        "0",
    ]);
    let mut old_client = old.client();
    let mut new_client = new.client();
    set_keys(&mut old_client, 0..100).await;
    wait_info(&mut new_client, Duration::from_secs(10), "caught up", |s| {
        s.link_up() && s.keys == 100
    })
    .await;
    // The split: the replica is promoted; both sides go on taking writes.
    new_client.replicaof_no_one().await.expect("promote");
    for n in 0..20 {
        old_client
            .command(&["SET", &format!("old:{n}"), "v"])
            .await
            .expect("SET");
        new_client
            .command(&["SET", &format!("new:{n}"), "v"])
            .await
            .expect("SET");
    }
    let saved = common::TempDir::new("saved");
    let (mut planner, executor) = setup(&new, &old);
    let mut executor = executor.with_save(replication::executor::SaveConfig {
        dir: saved.path.clone(),
        timeout: Duration::from_secs(10),
    });
    // The old master's agent is gone: the promoted side saves it, then resyncs it.
    let (rule, commands, results) = round_with(
        &mut planner,
        &mut executor,
        Role::Master,
        &Context::default(),
    )
    .await;
    assert!(
        matches!(
            rule,
            Rule::SplitResolved {
                kept: Target::Local,
                ..
            }
        ),
        "{rule}"
    );
    assert_eq!(
        commands,
        [
            Command::SaveDataset(Target::Peer),
            Command::ReplicaOf(Target::Peer)
        ]
    );
    let detail = results[0].clone().expect("saved").expect("a file");
    let files = saved.files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(detail.contains(&files[0]), "{detail}");
    // The saved file holds the loser's writes past the fork.
    let scratch = RedisServer::start(&[
        "--dir",
        saved.path.to_str().unwrap(),
        "--dbfilename",
        &files[0],
    ]);
    let mut scratch_client = scratch.client();
    for n in 0..20 {
        let v = scratch_client
            .command(&["EXISTS", &format!("old:{n}")])
            .await
            .unwrap();
        assert_eq!(v, "1", "old:{n} is not in the saved dataset");
    }
    // And the loser now follows the winner, with the winner's data.
    wait_info(
        &mut old_client,
        Duration::from_secs(10),
        "old follows new",
        |s| s.link_up() && s.keys == 120,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_isolation_fence_makes_a_master_without_its_replica_refuse_writes() {
    if !require_redis("the_isolation_fence_makes_a_master_without_its_replica_refuse_writes") {
        return;
    }
    let master = RedisServer::start(&[]);
    let mut replica = RedisServer::start(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let mut replica_client = replica.client();
    wait_info(
        &mut replica_client,
        Duration::from_secs(10),
        "replica link up",
        Snapshot::link_up,
    )
    .await;
    let (_, executor) = setup(&master, &replica);
    let mut planner = Planner::new(PlannerConfig {
        isolation_timeout: Some(Duration::from_secs(1)),
        ..planner_config(&master, &replica)
    });
    let mut executor = executor.with_isolation_timeout(Duration::from_secs(1));
    let (_, commands, results) = round_with(
        &mut planner,
        &mut executor,
        Role::Master,
        &Context::default(),
    )
    .await;
    assert_eq!(commands, [Command::IsolationFence(true)]);
    assert!(results[0].is_ok(), "{results:?}");
    // The replica goes silent (a partition): writes are refused within the lag
    // plus Redis's once-a-second check, and a margin.
    let paused = replica.pause();
    let mut client = master.client();
    let silent = Instant::now();
    loop {
        match client.command(&["SET", "probe", "v"]).await {
            Err(e) if e.to_string().contains("NOREPLICAS") => break,
            _ => assert!(
                silent.elapsed() < Duration::from_secs(4),
                "writes still acknowledged"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused_after = silent.elapsed();
    drop(paused);
    // The replica's Redis is down (connections refused): evidence; writes go on.
    replica.kill();
    let (_, commands, _) = round_with(
        &mut planner,
        &mut executor,
        Role::Master,
        &Context::default(),
    )
    .await;
    assert_eq!(commands, [Command::IsolationFence(false)]);
    client
        .command(&["SET", "probe", "v"])
        .await
        .expect("writes accepted again");
    eprintln!("writes refused {refused_after:?} after the replica went silent");
}
