//! `save_rdb` against real redis-server processes (disk-based and diskless
//! transfers; the saved file loaded by a fresh server) and against fake
//! servers that say nothing or the wrong thing.

mod common;

use std::time::{Duration, Instant};

use common::{RedisServer, TempDir, require_redis};
use health::{Client, DumpErrorKind, DumpOptions, RedisTarget, SavedRdb, Transfer, save_rdb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const KEYS: usize = 300;

/// KEYS strings (`key:N` = `value-N`, one with an expiry), a hash and a
/// list in db 0, two keys in db 3.
async fn fill(c: &mut Client) {
    for i in 0..KEYS {
        c.command(&["SET", &format!("key:{i}"), &format!("value-{i}")])
            .await
            .unwrap();
    }
    c.command(&["EXPIRE", "key:7", "3600"]).await.unwrap();
    c.command(&["HSET", "hash", "f1", "v1", "f2", "v2"])
        .await
        .unwrap();
    c.command(&["RPUSH", "list", "a", "b", "c"]).await.unwrap();
    c.command(&["SELECT", "3"]).await.unwrap();
    c.command(&["MSET", "x", "1", "y", "2"]).await.unwrap();
    c.command(&["SELECT", "0"]).await.unwrap();
}

/// Starts a fresh redis-server on the saved file and checks its data.
async fn check_loads(saved: &SavedRdb) {
    let dir = saved.path.parent().unwrap().to_str().unwrap();
    let file = saved.path.file_name().unwrap().to_str().unwrap();
    let loaded = RedisServer::start(&["--dir", dir, "--dbfilename", file]);
    let mut c = loaded.client();
    assert_eq!(
        c.command(&["DBSIZE"]).await.unwrap(),
        (KEYS + 2).to_string()
    );
    assert_eq!(c.command(&["GET", "key:0"]).await.unwrap(), "value-0");
    assert_eq!(c.command(&["GET", "key:299"]).await.unwrap(), "value-299");
    let ttl: i64 = c.command(&["TTL", "key:7"]).await.unwrap().parse().unwrap();
    assert!(ttl > 3000, "{ttl}");
    assert_eq!(c.command(&["HGET", "hash", "f2"]).await.unwrap(), "v2");
    assert_eq!(
        c.command(&["LRANGE", "list", "0", "-1"]).await.unwrap(),
        "a\nb\nc"
    );
    c.command(&["SELECT", "3"]).await.unwrap();
    assert_eq!(c.command(&["DBSIZE"]).await.unwrap(), "2");
    assert_eq!(c.command(&["GET", "y"]).await.unwrap(), "2");
}

async fn save_and_check(args: &[&str], transfer: Transfer) {
    let server = RedisServer::start(args);
    let mut c = server.client();
    fill(&mut c).await;
    let dir = TempDir::new("dump");
    let start = Instant::now();
    let saved = save_rdb(&server.target(), &dir.path, "snap", &DumpOptions::default())
        .await
        .unwrap();
    eprintln!(
        "{transfer:?}: {} bytes in {:?}",
        saved.bytes,
        start.elapsed()
    );
    assert_eq!(saved.transfer, transfer);
    assert_eq!(saved.path, dir.path.join("snap.rdb"));
    assert_eq!(dir.files(), ["snap.rdb"]);
    let bytes = std::fs::read(&saved.path).unwrap();
    assert_eq!(bytes.len() as u64, saved.bytes);
    assert!(bytes.starts_with(b"REDIS"));
    assert_eq!(saved.header.version, 10, "Redis 7.0 writes RDB 10");
    assert_eq!(saved.header.redis_version(), Some("7.0.15"));
    // The header names the history the snapshot belongs to.
    let info = c.info().await.unwrap();
    assert_eq!(saved.header.repl_id(), Some(info.master_replid.as_str()));
    assert!(saved.header.repl_offset().unwrap() <= info.master_repl_offset);
    check_loads(&saved).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_based_sync() {
    if !require_redis("disk_based_sync") {
        return;
    }
    save_and_check(&["--repl-diskless-sync", "no"], Transfer::Disk).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diskless_sync() {
    if !require_redis("diskless_sync") {
        return;
    }
    save_and_check(
        &[
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "0",
        ],
        Transfer::Diskless,
    )
    .await;
}

/// With a delay the server sends a `\n` a second until it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diskless_sync_with_keepalives() {
    if !require_redis("diskless_sync_with_keepalives") {
        return;
    }
    save_and_check(
        &[
            "--repl-diskless-sync",
            "yes",
            "--repl-diskless-sync-delay",
            "2",
        ],
        Transfer::Diskless,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_user_and_refusals() {
    if !require_redis("acl_user_and_refusals") {
        return;
    }
    let server = RedisServer::start(&["--repl-diskless-sync-delay", "0"]);
    let mut admin = server.client();
    admin.command(&["SET", "k", "v"]).await.unwrap();
    for (user, rules) in [
        ("dumper", &["+sync", "+replconf"][..]),
        ("nosync", &["+replconf"][..]),
    ] {
        let mut args = vec!["ACL", "SETUSER", user, "on", ">pw", "-@all"];
        args.extend(rules);
        admin.command(&args).await.unwrap();
    }
    let dir = TempDir::new("dump-acl");
    let opts = DumpOptions::default();
    let target = server.target().with_user("dumper", "pw");
    let saved = save_rdb(&target, &dir.path, "ok", &opts).await.unwrap();
    assert!(saved.bytes > 0);

    // The same name again: refused, the first file intact.
    let err = save_rdb(&target, &dir.path, "ok", &opts).await.unwrap_err();
    assert!(matches!(err.kind, DumpErrorKind::Exists(_)), "{err}");
    assert_eq!(std::fs::metadata(&saved.path).unwrap().len(), saved.bytes);

    let wrong = server.target().with_user("dumper", "nope");
    let err = save_rdb(&wrong, &dir.path, "wrong", &opts)
        .await
        .unwrap_err();
    assert!(matches!(err.kind, DumpErrorKind::Auth(_)), "{err}");
    assert!(!err.to_string().contains("nope"), "{err}");

    let nosync = server.target().with_user("nosync", "pw");
    let err = save_rdb(&nosync, &dir.path, "nosync", &opts)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err.kind,
            DumpErrorKind::ErrorReply {
                command: "SYNC",
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.starts_with(&format!(
            "saving an RDB snapshot of redis {}: ",
            server.address()
        )),
        "{text}"
    );
    assert!(text.contains("NOPERM"), "{text}");

    let err = save_rdb(&target, &dir.path, "../escape", &opts)
        .await
        .unwrap_err();
    assert!(matches!(err.kind, DumpErrorKind::InvalidName(_)), "{err}");
    assert_eq!(dir.files(), ["ok.rdb"]);
}

/// A replica whose master is gone refuses SYNC (NOMASTERLINK).
#[tokio::test]
async fn replica_without_master_link_refuses() {
    if !require_redis("replica_without_master_link_refuses") {
        return;
    }
    let mut gone = RedisServer::start(&[]);
    let port = gone.port;
    gone.kill();
    let replica = RedisServer::start(&[]);
    replica.client().replicaof("127.0.0.1", port).await.unwrap();
    let dir = TempDir::new("dump-nolink");
    let err = save_rdb(&replica.target(), &dir.path, "r", &DumpOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("NOMASTERLINK"), "{err}");
    assert!(dir.files().is_empty());
}

#[tokio::test]
async fn refused_connection() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    drop(listener);
    let dir = TempDir::new("dump-refused");
    let err = save_rdb(
        &RedisTarget::new(&address),
        &dir.path,
        "x",
        &DumpOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err.kind, DumpErrorKind::Connect(_)), "{err}");
    assert!(err.to_string().contains(&address), "{err}");
}

/// A fake server: answers each read with the next reply of `script`
/// (empty: say nothing), then holds the connection open, or closes it
/// after the script when `close`.
async fn fake(script: Vec<Vec<u8>>, close: bool) -> RedisTarget {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        for reply in script {
            if !next_command(&mut stream).await {
                return;
            }
            stream.write_all(&reply).await.unwrap();
        }
        if !close {
            // Hold it open, reading whatever comes, until the client goes.
            while next_command(&mut stream).await {}
        }
    });
    RedisTarget::new(address)
}

/// Waits for the client's next command (one read: the client sends one
/// command and waits for its reply); `false` when it closed.
async fn next_command(stream: &mut tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    stream.read(&mut buf).await.unwrap_or(0) > 0
}

fn ok() -> Vec<u8> {
    b"+OK\r\n".to_vec()
}

#[tokio::test]
async fn silent_server_times_out() {
    let dir = TempDir::new("dump-silent");
    // Accepts, says nothing: the idle bound.
    let target = fake(vec![], false).await;
    let opts = DumpOptions {
        connect_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(300),
        timeout: Duration::from_secs(5),
    };
    let start = Instant::now();
    let err = save_rdb(&target, &dir.path, "x", &opts).await.unwrap_err();
    let took = start.elapsed();
    assert!(err.is_timeout(), "{err}");
    assert!(matches!(err.kind, DumpErrorKind::Idle { .. }), "{err}");
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(1),
        "{took:?}"
    );

    // Keep-alives forever: the overall bound.
    let target = keepalives_forever().await;
    let opts = DumpOptions::within(Duration::from_millis(700));
    let start = Instant::now();
    let err = save_rdb(&target, &dir.path, "y", &opts).await.unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err.kind, DumpErrorKind::Timeout { .. }), "{err}");
    assert!(
        took >= Duration::from_millis(700) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert!(
        err.to_string().contains("waiting for the snapshot"),
        "{err}"
    );
    assert!(dir.files().is_empty(), "{:?}", dir.files());
}

/// A server that takes REPLCONF and SYNC and then sends `\n` every 50 ms.
async fn keepalives_forever() -> RedisTarget {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        for _ in 0..2 {
            next_command(&mut stream).await;
            stream.write_all(b"+OK\r\n").await.unwrap();
        }
        next_command(&mut stream).await;
        loop {
            if stream.write_all(b"\n").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    RedisTarget::new(address)
}

#[tokio::test]
async fn garbage_is_an_error_not_a_file() {
    let dir = TempDir::new("dump-garbage");
    let opts = DumpOptions::within(Duration::from_secs(2));
    let cases: Vec<(Vec<Vec<u8>>, &str)> = vec![
        // Not Redis at all.
        (
            vec![b"HTTP/1.1 400 Bad Request\r\n\r\n".to_vec()],
            "unexpected reply",
        ),
        // A payload that is not an RDB.
        (
            vec![ok(), ok(), b"\n\n$10\r\nNOTANRDB!!".to_vec()],
            "not an RDB file",
        ),
        (
            vec![
                ok(),
                ok(),
                b"$EOF:0123456789012345678901234567890123456789\r\n<html>".to_vec(),
            ],
            "not an RDB file",
        ),
        // A bad header line.
        (vec![ok(), ok(), b"$-1\r\n".to_vec()], "unexpected reply"),
        (
            vec![ok(), ok(), b"$EOF:short\r\n".to_vec()],
            "unexpected reply",
        ),
        (
            vec![ok(), ok(), b"+FULLRESYNC abc 0\r\n".to_vec()],
            "unexpected reply",
        ),
        (vec![ok(), ok(), vec![b'x'; 5000]], "unexpected reply"),
    ];
    for (script, expected) in cases {
        let target = fake(script.clone(), false).await;
        let err = save_rdb(&target, &dir.path, "g", &opts).await.unwrap_err();
        assert!(err.to_string().contains(expected), "{script:?}: {err}");
        assert!(dir.files().is_empty(), "{:?}", dir.files());
    }
}

/// Cut short: an error naming how far it got, and no file.
#[tokio::test]
async fn truncated_transfer() {
    let dir = TempDir::new("dump-truncated");
    let opts = DumpOptions::within(Duration::from_secs(2));
    let target = fake(
        vec![ok(), ok(), b"$100\r\nREDIS0010\xfa\x01a".to_vec()],
        true,
    )
    .await;
    let err = save_rdb(&target, &dir.path, "t", &opts).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("connection lost while receiving the snapshot after 12 of 100 bytes"),
        "{err}"
    );
    let mark = "7798f95e3f1fa1e07f99485b78ff0193843f237b";
    let diskless = format!("$EOF:{mark}\r\nREDIS0010 and then nothing");
    let target = fake(vec![ok(), ok(), diskless.into_bytes()], true).await;
    let err = save_rdb(&target, &dir.path, "t", &opts).await.unwrap_err();
    assert!(err.to_string().contains("connection lost"), "{err}");
    assert!(dir.files().is_empty(), "{:?}", dir.files());
}

/// The mark split across reads, and a replication stream after it (a
/// server without rdb-only): the file holds exactly the snapshot.
#[tokio::test]
async fn diskless_end_mark() {
    let dir = TempDir::new("dump-mark");
    let mark = "7798f95e3f1fa1e07f99485b78ff0193843f237b";
    let rdb = b"REDIS0009\xfa\x07repl-id\x03abc\xfa\x0brepl-offset\xc1\x39\x30\xff";
    let mut first = format!("\n$EOF:{mark}\r\n").into_bytes();
    first.extend(rdb);
    first.extend(&mark.as_bytes()[..25]);
    let mut second = mark.as_bytes()[25..].to_vec();
    second.extend(b"*1\r\n$4\r\nPING\r\n");
    let script = vec![
        b"-ERR Unrecognized REPLCONF option: capa\r\n".to_vec(),
        ok(),
        first,
    ];
    // The second part comes with the next read: send it from a task that
    // waits for the client's SYNC first.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        for reply in script {
            next_command(&mut stream).await;
            stream.write_all(&reply).await.unwrap();
        }
        stream.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        stream.write_all(&second).await.unwrap();
        while next_command(&mut stream).await {}
    });
    let saved = save_rdb(
        &RedisTarget::new(address),
        &dir.path,
        "m",
        &DumpOptions::within(Duration::from_secs(2)),
    )
    .await
    .unwrap();
    assert_eq!(saved.transfer, Transfer::Diskless);
    assert_eq!(std::fs::read(&saved.path).unwrap(), rdb);
    assert_eq!(saved.header.version, 9);
    assert_eq!(saved.header.repl_id(), Some("abc"));
    assert_eq!(saved.header.repl_offset(), Some(12345));
}
