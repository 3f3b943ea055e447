//! The Redis helpers against real `redis-server` processes in namespaces: a
//! master and a replica, a writer on a third host, kills and empty restarts.

use std::thread;
use std::time::Duration;

use netns_tests::redis::{RedisNode, RedisOpts, Reply, lab_query, require_redis};
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
