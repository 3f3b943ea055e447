//! The Redis helpers against real `redis-server` processes in namespaces: a
//! master and a replica, a writer on a third host, kills and empty restarts.

use std::thread;
use std::time::Duration;

use netns_tests::redha::RedisSettings;
use netns_tests::redis::{
    AclUser, RedisNode, RedisOpts, Reply, lab_connect, lab_query, require_redis,
};
use netns_tests::writer::{Writer, missing_keys};
use netns_tests::{Lab, require_netns};

const WAIT: Duration = Duration::from_secs(10);
const INTERVAL: Duration = Duration::from_millis(10);
const CLIENT: usize = 3;

fn require(test: &str) -> bool {
    require_netns(test) && require_redis(test)
}

/// Options for a master whose replicas should get their first full sync at
/// once rather than after the default 5 s diskless-sync delay.
fn quick_sync() -> RedisOpts {
    RedisOpts {
        repl_diskless_sync_delay: Some(0),
        ..RedisOpts::default()
    }
}

/// Redis on hosts 1 (master) and 2 (its replica, link up).
fn pair(lab: &Lab) -> (RedisNode<'_>, RedisNode<'_>) {
    let master = RedisNode::start(lab, 1, quick_sync());
    let replica = RedisNode::start(lab, 2, quick_sync());
    replica
        .client()
        .and_then(|mut c| c.replicaof(lab.addr(1), 6379))
        .expect("REPLICAOF 192.0.2.11 6379");
    assert!(
        replica.wait_link_up(WAIT),
        "replica link not up; replica log:\n{}",
        replica.proc().log()
    );
    (master, replica)
}

#[test]
fn acknowledged_writes_reach_master_and_replica() {
    let test = "acknowledged_writes_reach_master_and_replica";
    if !require(test) {
        return;
    }
    let lab = Lab::new("rwrite", 3);
    let (master, replica) = pair(&lab);
    assert_eq!(master.client().unwrap().role().unwrap(), "master");
    assert_eq!(replica.client().unwrap().role().unwrap(), "slave");

    let writer = Writer::start(&lab, CLIENT, master.addr(), INTERVAL);
    thread::sleep(Duration::from_secs(1));
    let log = writer.stop();
    eprintln!("{test}: {}", log.summary());
    assert!(log.acked.len() >= 30, "too few writes: {}", log.summary());
    assert_eq!(log.failures, 0, "{}", log.summary());
    assert_eq!(log.acked.len() as u64, log.attempts, "{}", log.summary());
    assert!(
        log.longest_gap() < Duration::from_millis(300),
        "{}",
        log.summary()
    );
    let keys = log.acked_keys();
    assert_eq!(keys, (1..=log.attempts).collect::<Vec<_>>());

    assert_eq!(
        missing_keys(&lab, CLIENT, master.addr(), &keys),
        Vec::<u64>::new()
    );
    assert!(
        replica.wait_caught_up(&master, WAIT),
        "replica did not catch up"
    );
    assert_eq!(
        missing_keys(&lab, CLIENT, replica.addr(), &keys),
        Vec::<u64>::new()
    );
    assert_eq!(
        replica.client().unwrap().dbsize().unwrap(),
        keys.len() as u64
    );

    // The check can fail: a deleted key and one set to another value are
    // reported.
    assert_eq!(
        lab_query(&lab, CLIENT, master.addr(), &["DEL", "k:5"]).unwrap(),
        Reply::Integer(1)
    );
    assert!(
        lab_query(&lab, CLIENT, master.addr(), &["SET", "k:7", "x"])
            .unwrap()
            .is_ok()
    );
    assert_eq!(missing_keys(&lab, CLIENT, master.addr(), &keys), [5, 7]);
    assert_eq!(log.lost(|n| n != 5 && n != 7), [5, 7]);
}

#[test]
fn writes_to_a_replica_fail_readonly() {
    let test = "writes_to_a_replica_fail_readonly";
    if !require(test) {
        return;
    }
    let lab = Lab::new("rro", 3);
    let (_master, replica) = pair(&lab);
    let writer = Writer::start(&lab, CLIENT, replica.addr(), INTERVAL);
    let got_failures = netns_tests::wait_until(WAIT, INTERVAL, || writer.failure_count() >= 5);
    let log = writer.stop();
    assert!(got_failures.is_some(), "{}", log.summary());
    assert!(log.acked.is_empty(), "{}", log.summary());
    assert_eq!(log.failures as u64, log.attempts);
    assert!(
        log.errors
            .iter()
            .all(|(_, _, e)| e.starts_with("-READONLY")),
        "{:?}",
        log.errors
    );
}

#[test]
fn killing_redis_under_the_writer_records_failures() {
    let test = "killing_redis_under_the_writer_records_failures";
    if !require(test) {
        return;
    }
    let lab = Lab::new("rkill", 3);
    let mut master = RedisNode::start(&lab, 1, RedisOpts::default());
    let writer = Writer::start(&lab, CLIENT, master.addr(), INTERVAL);
    assert!(writer.wait_acked(20, WAIT), "{:?}", writer);

    master.kill();
    // Every write acknowledged so far went to the killed server.
    let before = writer.snapshot().acked_keys();
    assert!(
        netns_tests::wait_until(WAIT, INTERVAL, || writer.failure_count() >= 5).is_some(),
        "no failures recorded: {writer:?}"
    );
    assert_eq!(writer.acked_count(), before.len(), "acked by a dead Redis");

    master.restart_empty();
    assert!(
        writer.wait_acked(before.len() + 20, WAIT),
        "the writer did not reconnect: {writer:?}"
    );
    let log = writer.stop();
    eprintln!("{test}: {}", log.summary());
    assert!(log.failures >= 5, "{}", log.summary());
    assert_eq!(log.acked.len() + log.failures, log.attempts as usize);

    let after: Vec<u64> = log.acked_keys().split_off(before.len());
    assert!(after.iter().all(|&n| n > *before.last().unwrap()));
    // The restarted server is empty but for what was written since.
    assert_eq!(
        missing_keys(&lab, CLIENT, master.addr(), &after),
        Vec::<u64>::new()
    );
    assert_eq!(missing_keys(&lab, CLIENT, master.addr(), &before), before);
    assert_eq!(
        master.client().unwrap().dbsize().unwrap(),
        after.len() as u64
    );
}

#[test]
fn restart_empty_forgets_and_restart_keeps_the_dump() {
    let test = "restart_empty_forgets_and_restart_keeps_the_dump";
    if !require(test) {
        return;
    }
    let lab = Lab::new("rempty", 2);
    let mut node = RedisNode::start(&lab, 1, RedisOpts::default());
    let mut c = node.client().unwrap();
    for n in 0..10 {
        let (k, v) = (format!("key{n}"), n.to_string());
        assert!(c.command(&["SET", &k, &v]).unwrap().is_ok());
    }
    assert!(c.command(&["SAVE"]).unwrap().is_ok());
    drop(c);
    assert!(node.dir().join("dump.rdb").is_file());
    let replid = |node: &RedisNode<'_>| {
        node.client().unwrap().info_map("replication").unwrap()["master_replid"].clone()
    };
    let first_id = replid(&node);

    // A restart loads the dump.
    node.restart();
    assert_eq!(node.client().unwrap().dbsize().unwrap(), 10);

    // An empty restart does not, and comes back with a new history.
    let pid = node.proc().pid();
    node.restart_empty();
    assert_ne!(node.proc().pid(), pid);
    assert!(!node.dir().join("dump.rdb").exists());
    let mut c = node.client().unwrap();
    assert_eq!(c.dbsize().unwrap(), 0);
    assert_eq!(c.role().unwrap(), "master");
    assert_eq!(c.offset().unwrap(), 0);
    assert_ne!(replid(&node), first_id);
    // Another host reaches it too.
    assert_eq!(
        lab_query(&lab, 2, node.addr(), &["PING"]).unwrap(),
        Reply::Simple("PONG".into())
    );
    assert!(node.proc().log().contains("Ready to accept connections"));
}

/// `CONFIG GET <name>`'s value.
fn config_get(node: &RedisNode<'_>, name: &str) -> String {
    match node.query(&["CONFIG", "GET", name]).unwrap() {
        Reply::Array(v) if v.len() == 2 => v[1].text().unwrap(),
        r => panic!("CONFIG GET {name}: {r:?}"),
    }
}

fn set_keys(node: &RedisNode<'_>, prefix: &str, range: std::ops::RangeInclusive<u64>) {
    let mut c = node.client().unwrap();
    for n in range {
        let (k, v) = (format!("{prefix}{n}"), n.to_string());
        assert!(c.command(&["SET", &k, &v]).unwrap().is_ok());
    }
}

#[test]
fn rdb_default_restarts_from_its_last_snapshot() {
    let test = "rdb_default_restarts_from_its_last_snapshot";
    if !require(test) {
        return;
    }
    let lab = Lab::new("rrdb", 1);
    let mut node = RedisNode::start(&lab, 1, RedisOpts::default().rdb_default());
    assert_eq!(config_get(&node, "save"), "3600 1 300 100 60 10000");
    assert_eq!(config_get(&node, "appendonly"), "no");
    set_keys(&node, "a:", 1..=10);
    node.save().unwrap();
    assert_eq!(node.files(), ["dump.rdb"]);
    let before = node.client().unwrap().info_map("replication").unwrap();
    set_keys(&node, "b:", 1..=5);

    // A crash: the writes after the snapshot are gone, the snapshot's are back,
    // under a new replication id. (A master without replicas has no backlog, so
    // its snapshot keeps no history: `master_replid2` comes back unset. With a
    // replica, Redis 7 keeps the old id as `master_replid2`; DESIGN.md.)
    node.restart();
    assert_eq!(node.client().unwrap().dbsize().unwrap(), 10);
    let after = node.client().unwrap().info_map("replication").unwrap();
    eprintln!(
        "{test}: before: replid {} offset {}; after the restart: replid {} replid2 {} \
         offset {} second_offset {}",
        before["master_replid"],
        before["master_repl_offset"],
        after["master_replid"],
        after["master_replid2"],
        after["master_repl_offset"],
        after["second_repl_offset"]
    );
    assert_ne!(after["master_replid"], before["master_replid"]);

    // A clean stop saves at shutdown (it has save points).
    set_keys(&node, "c:", 1..=5);
    assert!(node.stop(WAIT), "redis-server ignored SIGTERM");
    node.start_again();
    assert_eq!(node.client().unwrap().dbsize().unwrap(), 15);
}

#[test]
fn aof_always_keeps_every_acknowledged_write_across_a_crash() {
    let test = "aof_always_keeps_every_acknowledged_write_across_a_crash";
    if !require(test) {
        return;
    }
    let lab = Lab::new("raof", 3);
    let mut node = RedisNode::start(&lab, 1, RedisOpts::default().aof_always());
    assert_eq!(config_get(&node, "appendonly"), "yes");
    assert_eq!(config_get(&node, "appendfsync"), "always");
    let writer = Writer::start(&lab, CLIENT, node.addr(), INTERVAL);
    assert!(writer.wait_acked(100, WAIT), "{writer:?}");
    node.kill();
    let log = writer.stop();
    assert!(
        node.files().iter().any(|f| f.starts_with("appendonlydir/")),
        "{:?}",
        node.files()
    );
    node.start_again();
    let lost = missing_keys(&lab, CLIENT, node.addr(), &log.acked_keys());
    eprintln!("{test}: {}; lost after the crash: {lost:?}", log.summary());
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    // An empty restart removes the AOF as well (Redis starts a new, empty one).
    node.restart_empty();
    assert_eq!(node.client().unwrap().dbsize().unwrap(), 0);
}

#[test]
fn sync_modes_and_the_files_a_full_sync_leaves() {
    let test = "sync_modes_and_the_files_a_full_sync_leaves";
    if !require(test) {
        return;
    }
    let lab = Lab::new("rsync", 3);
    let master = RedisNode::start(&lab, 1, RedisOpts::default().disk_sync());
    assert_eq!(config_get(&master, "repl-diskless-sync"), "no");
    let replica = RedisNode::start(&lab, 2, RedisOpts::default().diskless_sync_no_delay());
    assert_eq!(config_get(&replica, "repl-diskless-sync"), "yes");
    assert_eq!(config_get(&replica, "repl-diskless-sync-delay"), "0");
    assert_eq!(
        config_get(&master, "save"),
        "",
        "persistence off by default"
    );
    set_keys(&master, "k:", 1..=10);
    replica
        .client()
        .and_then(|mut c| c.replicaof(lab.addr(1), 6379))
        .unwrap();
    assert!(replica.wait_link_up(WAIT), "{}", replica.proc().log());
    // Even without persistence, a disk-based full sync leaves an RDB file on
    // both sides: what a restart "from its files" loads.
    eprintln!(
        "{test}: master files {:?}, replica files {:?}",
        master.files(),
        replica.files()
    );
    assert_eq!(master.files(), ["dump.rdb"]);
    assert_eq!(replica.files(), ["dump.rdb"]);
    // A replica of a diskless master keeps what it received as well.
    let sub = RedisNode::start(&lab, 3, RedisOpts::default());
    sub.client()
        .and_then(|mut c| c.replicaof(lab.addr(2), 6379))
        .unwrap();
    assert!(sub.wait_link_up(WAIT), "{}", sub.proc().log());
    assert_eq!(sub.files(), ["dump.rdb"]);
    assert_eq!(sub.client().unwrap().dbsize().unwrap(), 10);
}

#[test]
fn an_acl_user_without_client_pause_is_refused_the_fence() {
    let test = "an_acl_user_without_client_pause_is_refused_the_fence";
    if !require(test) {
        return;
    }
    let lab = Lab::new("racl", 2);
    let user = AclUser::without_client_pause("redha", "s3cret");
    let node = RedisNode::start(&lab, 1, RedisOpts::default().user(user.clone()));
    let mut c = lab_connect(&lab, 2, node.addr(), WAIT).unwrap();
    let auth = c.command(&["AUTH", &user.name, &user.password]).unwrap();
    assert!(auth.is_ok(), "{auth:?}");
    c.info("replication").unwrap();
    match c.command(&["CLIENT", "PAUSE", "100", "WRITE"]).unwrap() {
        Reply::Error(e) => assert!(e.starts_with("NOPERM"), "{e}"),
        r => panic!("CLIENT PAUSE allowed to {}: {r:?}", user.name),
    }
    assert!(c.command(&["CLIENT", "UNPAUSE"]).unwrap().is_ok());
    assert!(c.command(&["REPLICAOF", "NO", "ONE"]).unwrap().is_ok());
    // The default user (the tests' clients, replication) is untouched.
    assert!(
        node.query(&["CLIENT", "PAUSE", "10", "WRITE"])
            .unwrap()
            .is_ok()
    );
    // How redha logs in as that user.
    let settings = RedisSettings::pair(lab.addr(2), lab.dir().join("state.log")).with_user(&user);
    assert!(
        settings
            .redis_extra
            .contains("username = \"redha\"\npassword = \"s3cret\"\n"),
        "{}",
        settings.redis_extra
    );
}
