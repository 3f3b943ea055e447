//! INFO from real redis-server processes: masters, replicas, promotion,
//! restarts, and what `relation()` makes of them.

mod common;

use std::time::Duration;

use common::{RedisServer, require_redis, wait_info};
use health::{Client, LinkStatus, Relation, ReplicaState, Role, relation, snapshot::NO_REPLID};

const SYNC: Duration = Duration::from_secs(10);

/// A master with keys in db0 and db2, and a replica of it in sync. Both
/// serve full syncs at once (Redis 7 waits `repl-diskless-sync-delay`, 5 s,
/// for more replicas by default).
async fn pair() -> (RedisServer, Client, RedisServer, Client) {
    let master = RedisServer::start(&["--repl-diskless-sync-delay", "0"]);
    let replica = RedisServer::start(&["--repl-diskless-sync-delay", "0"]);
    let mut m = master.client();
    let mut r = replica.client();
    m.command(&["MSET", "a", "1", "b", "2", "c", "3"])
        .await
        .unwrap();
    m.command(&["SELECT", "2"]).await.unwrap();
    m.command(&["SET", "d", "4"]).await.unwrap();
    r.replicaof("127.0.0.1", master.port).await.unwrap();
    let offset = m.info().await.unwrap().offset();
    wait_info(&mut r, SYNC, "replica in sync", |s| {
        s.link_up() && s.offset() >= offset && s.keys == 4
    })
    .await;
    (master, m, replica, r)
}

#[tokio::test]
async fn real_master_and_replica_info() {
    if !require_redis("real_master_and_replica_info") {
        return;
    }
    let (master, mut m, replica, mut r) = pair().await;
    m.command(&["SET", "e", "5"]).await.unwrap();
    let ms = m.info().await.unwrap();
    let rs = wait_info(&mut r, SYNC, "replica caught up", |s| {
        s.offset() == ms.offset()
    })
    .await;

    assert_eq!(ms.role, Role::Master);
    assert!(ms.master.is_none());
    assert_eq!(ms.keys, 5);
    assert!(ms.repl_backlog_active);
    assert!(!ms.is_fresh_empty());
    assert!(ms.offset() > 0);

    assert_eq!(rs.role, Role::Replica);
    let link = rs.master.as_ref().unwrap();
    assert_eq!(link.host, "127.0.0.1");
    assert_eq!(link.port, master.port);
    assert_eq!(link.link_status, LinkStatus::Up);
    assert!(!link.sync_in_progress);
    assert_eq!(link.slave_repl_offset, rs.master_repl_offset);
    assert_eq!(rs.keys, 5);
    assert_eq!(rs.master_replid, ms.master_replid);
    // A replica after a full sync has no replid2.
    assert_eq!(rs.master_replid2, NO_REPLID);
    assert_ne!(rs.run_id, ms.run_id);
    assert_eq!(
        relation(&rs, &ms),
        Relation::Same {
            local_offset: ms.offset(),
            peer_offset: ms.offset()
        }
    );

    // The master lists the replica (it acknowledges once a second).
    let ms = wait_info(&mut m, SYNC, "replica listed online", |s| {
        s.replicas
            .iter()
            .any(|r| r.port == replica.port && r.state == ReplicaState::Online)
    })
    .await;
    assert_eq!(ms.connected_slaves, 1);
    assert_eq!(ms.replicas[0].ip, "127.0.0.1");
}

/// `master_repl_offset` on a replica is the processed offset: equal to
/// `slave_repl_offset` under a stream of writes and after the link drops.
#[tokio::test]
async fn replica_offset_is_the_processed_offset() {
    if !require_redis("replica_offset_is_the_processed_offset") {
        return;
    }
    let (mut master, m, _replica, mut r) = pair().await;
    let writer = tokio::spawn(async move {
        let mut m = m;
        for i in 0..2000 {
            let v = i.to_string();
            m.command(&["SET", &format!("k{}", i % 50), &v])
                .await
                .unwrap();
        }
    });
    let mut seen = 0;
    let mut ahead = 0;
    while !writer.is_finished() {
        let s = r.info().await.unwrap();
        let link = s.master.as_ref().unwrap();
        assert_eq!(s.master_repl_offset, link.slave_repl_offset, "{s:?}");
        let read = link.slave_read_repl_offset.unwrap();
        assert!(read >= link.slave_repl_offset);
        if read > link.slave_repl_offset {
            ahead += 1;
        }
        seen += 1;
    }
    writer.await.unwrap();
    assert!(seen > 5, "only {seen} snapshots during the writes");
    eprintln!("{seen} replica snapshots under writes; read offset ahead in {ahead}");

    let before = r.info().await.unwrap();
    master.kill();
    let down = wait_info(&mut r, SYNC, "link down", |s| !s.link_up()).await;
    let link = down.master.as_ref().unwrap();
    assert_eq!(link.link_status, LinkStatus::Down);
    assert!(link.link_down_since_seconds.is_some());
    assert_eq!(down.offset(), before.offset());
    assert_eq!(link.slave_repl_offset, down.master_repl_offset);
}

/// `REPLICAOF NO ONE` keeps the history; `relation()` says the promoted
/// replica continues the old master, and Redis agrees: the old master,
/// attached to it, resyncs partially.
#[tokio::test]
async fn promotion_continues_history() {
    if !require_redis("promotion_continues_history") {
        return;
    }
    let (_master, mut m, replica, mut r) = pair().await;
    let old = m.info().await.unwrap();
    let before = wait_info(&mut r, SYNC, "caught up", |s| s.offset() == old.offset()).await;

    r.replicaof_no_one().await.unwrap();
    let promoted = r.info().await.unwrap();
    assert_eq!(promoted.role, Role::Master);
    assert_eq!(promoted.run_id, before.run_id);
    assert_ne!(promoted.master_replid, old.master_replid);
    assert_eq!(promoted.master_replid2, old.master_replid);
    assert_eq!(promoted.second_repl_offset, before.offset() as i64 + 1);
    assert_eq!(promoted.offset(), before.offset());
    assert!(promoted.has_history());

    // Before the old master writes again (no replication PING can have
    // advanced it: it has no replica left, and repl-ping-replica-period is
    // 10 s anyway).
    let old = m.info().await.unwrap();
    assert!(matches!(
        relation(&old, &promoted),
        Relation::PeerContinuesLocal { fork_offset, .. } if fork_offset == old.offset()
    ));
    assert!(matches!(
        relation(&promoted, &old),
        Relation::LocalContinuesPeer { .. }
    ));
    assert!(promoted.accepts_partial_resync(&old.master_replid, old.offset()));

    // Writes on the promoted side, then the old master follows it.
    r.command(&["SET", "after", "promotion"]).await.unwrap();
    m.replicaof("127.0.0.1", replica.port).await.unwrap();
    let target = r.info().await.unwrap().offset();
    let follower = wait_info(&mut m, SYNC, "old master in sync", |s| {
        s.link_up() && s.offset() >= target
    })
    .await;
    assert_eq!(follower.master_replid, promoted.master_replid);
    assert_eq!(follower.keys, 5);
    let stats = r.command(&["INFO", "stats"]).await.unwrap();
    assert!(
        stats.contains("sync_partial_ok:1"),
        "expected a partial resync:\n{stats}"
    );
}

/// Both sides write after a promotion: diverged, and Redis agrees that only
/// a full sync is possible.
#[tokio::test]
async fn split_brain_diverges() {
    if !require_redis("split_brain_diverges") {
        return;
    }
    let (_master, mut m, replica, mut r) = pair().await;
    let old = m.info().await.unwrap();
    wait_info(&mut r, SYNC, "caught up", |s| s.offset() == old.offset()).await;
    r.replicaof_no_one().await.unwrap();
    m.command(&["SET", "lost", "write"]).await.unwrap();
    r.command(&["SET", "kept", "write"]).await.unwrap();
    let ms = m.info().await.unwrap();
    let rs = r.info().await.unwrap();
    let Relation::Diverged {
        local_offset,
        peer_offset,
        common_offset,
    } = relation(&ms, &rs)
    else {
        panic!("{:?}", relation(&ms, &rs));
    };
    assert_eq!(common_offset, old.offset());
    assert!(local_offset > common_offset && peer_offset > common_offset);
    assert!(!rs.accepts_partial_resync(&ms.master_replid, ms.offset()));

    m.replicaof("127.0.0.1", replica.port).await.unwrap();
    let target = r.info().await.unwrap().offset();
    let follower = wait_info(&mut m, SYNC, "old master in sync", |s| {
        s.link_up() && s.offset() >= target
    })
    .await;
    // The full sync flushed the write made on the old master.
    assert_eq!(m.command(&["GET", "lost"]).await.unwrap(), "(nil)");
    assert_eq!(follower.master_replid2, NO_REPLID);
    let stats = r.command(&["INFO", "stats"]).await.unwrap();
    assert!(stats.contains("sync_partial_err:1"), "{stats}");
}

/// Killed and restarted without persistence: new run_id, new replid, no
/// replid2, no keys; unrelated to what it was.
#[tokio::test]
async fn restart_comes_back_fresh_and_empty() {
    if !require_redis("restart_comes_back_fresh_and_empty") {
        return;
    }
    let mut server = RedisServer::start(&[]);
    let mut c = server.client();
    c.command(&["MSET", "a", "1", "b", "2"]).await.unwrap();
    let before = c.info().await.unwrap();
    assert_eq!(before.keys, 2);
    assert!(!before.is_fresh_empty());
    // Written but never replicated: no backlog, the offset did not move.
    assert!(!before.repl_backlog_active);
    assert_eq!(before.offset(), 0);

    server.restart();
    let after = c.info().await.unwrap();
    assert_ne!(after.run_id, before.run_id);
    assert_ne!(after.master_replid, before.master_replid);
    assert_eq!(after.master_replid2, NO_REPLID);
    assert_eq!(after.keys, 0);
    assert!(after.is_fresh_empty());
    assert_eq!(relation(&after, &before), Relation::Unrelated);
}

/// A replica whose master restarted empty is refused a partial resync and
/// flushed by the full sync: why the planner detaches it first.
#[tokio::test]
async fn replica_of_restarted_empty_master_is_flushed() {
    if !require_redis("replica_of_restarted_empty_master_is_flushed") {
        return;
    }
    let (mut master, _m, _replica, mut r) = pair().await;
    let kept = r.info().await.unwrap();
    assert_eq!(kept.keys, 4);
    master.restart();
    let mut m = master.client();
    let fresh = m.info().await.unwrap();
    assert!(fresh.is_fresh_empty());
    assert_eq!(relation(&kept, &fresh), Relation::Unrelated);
    let flushed = wait_info(&mut r, SYNC, "replica resynced", |s| {
        s.link_up() && s.master_replid != kept.master_replid
    })
    .await;
    assert_eq!(flushed.keys, 0);
}
