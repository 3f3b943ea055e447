//! The client against real redis-server processes: authentication,
//! timeouts against a paused server, disconnect notification, errors.

mod common;

use std::time::{Duration, Instant};

use common::{RedisServer, options, require_redis};
use health::{Client, ClientErrorKind, ClientOptions, RedisTarget};

#[tokio::test]
async fn commands_and_replies() {
    if !require_redis("commands_and_replies") {
        return;
    }
    let master = RedisServer::start(&[]);
    let replica = RedisServer::start(&[]);
    let mut c = replica.client();
    let rtt = c.ping().await.unwrap();
    assert!(rtt < Duration::from_secs(1));
    assert_eq!(c.command(&["SET", "k", "v"]).await.unwrap(), "OK");
    assert_eq!(c.command(&["GET", "k"]).await.unwrap(), "v");
    assert_eq!(c.command(&["GET", "missing"]).await.unwrap(), "(nil)");
    assert_eq!(c.command(&["INCR", "n"]).await.unwrap(), "1");
    assert_eq!(
        c.command(&["CONFIG", "GET", "appendonly"]).await.unwrap(),
        "appendonly\nno"
    );

    c.replicaof("127.0.0.1", master.port).await.unwrap();
    // Asking again answers "+OK Already connected to specified master".
    c.replicaof("127.0.0.1", master.port).await.unwrap();
    let s = c.info().await.unwrap();
    assert!(s.is_replica());
    assert_eq!(s.master.as_ref().unwrap().port, master.port);
    c.replicaof_no_one().await.unwrap();
    assert!(c.info().await.unwrap().is_master());

    // CLIENT PAUSE WRITE: writes wait, reads go on.
    c.client_pause_write(Duration::from_secs(5)).await.unwrap();
    let mut other = replica.client();
    assert_eq!(other.command(&["GET", "k"]).await.unwrap(), "v");
    let err = other.command(&["SET", "k", "w"]).await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    c.client_unpause().await.unwrap();
    assert_eq!(other.command(&["SET", "k", "w"]).await.unwrap(), "OK");

    // An error reply names the Redis and the command, and keeps the
    // connection.
    let err = c.command(&["INCR", "k"]).await.unwrap_err();
    assert!(err.is_reply(), "{err}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "redis {}: INCR k: error reply: ",
            replica.address()
        )),
        "{text}"
    );
    assert!(c.is_connected());
}

#[tokio::test]
async fn refused_connection() {
    if !require_redis("refused_connection") {
        return;
    }
    let mut server = RedisServer::start(&[]);
    let address = server.address();
    server.kill();
    let mut c = Client::new(RedisTarget::new(&address), options());
    let start = Instant::now();
    let err = c.ping().await.unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(500));
    assert!(matches!(err.kind, ClientErrorKind::Refused), "{err:?}");
    assert!(err.is_connection_failure());
    assert_eq!(
        err.to_string(),
        format!("redis {address}: PING: connection refused")
    );
}

/// A killed Redis is noticed through the push channel, without a command.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_is_noticed_at_once() {
    if !require_redis("disconnect_is_noticed_at_once") {
        return;
    }
    let mut server = RedisServer::start(&[]);
    let mut c = server.client();
    c.ping().await.unwrap();
    assert!(c.is_connected());
    let lost = c.connection_lost();
    // Nothing happens while the server lives.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), c.connection_lost())
            .await
            .is_err()
    );
    let killed = Instant::now();
    server.kill();
    tokio::time::timeout(Duration::from_secs(2), lost)
        .await
        .expect("connection loss not notified");
    let noticed = killed.elapsed();
    eprintln!("connection loss noticed {noticed:?} after SIGKILL");
    assert!(noticed < Duration::from_millis(100), "{noticed:?}");
    assert!(!c.is_connected());

    // The next call connects afresh: refused now, fine after a restart.
    assert!(matches!(
        c.ping().await.unwrap_err().kind,
        ClientErrorKind::Refused
    ));
    server.restart();
    c.ping().await.unwrap();
    // CLIENT KILL from another client is a lost connection too.
    let lost = c.connection_lost();
    let mut admin = server.client();
    admin
        .command(&["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(1), lost)
        .await
        .expect("CLIENT KILL not notified");
    c.ping().await.unwrap();
}

/// A paused (SIGSTOP) server keeps its sockets open and answers nothing:
/// each call fails after its timeout, and the next call uses a fresh
/// connection.
#[tokio::test]
async fn paused_server_times_out() {
    if !require_redis("paused_server_times_out") {
        return;
    }
    let server = RedisServer::start(&[]);
    let timeout = Duration::from_millis(300);
    let mut c = Client::new(
        server.target(),
        ClientOptions {
            connect_timeout: timeout,
            response_timeout: timeout,
        },
    );
    c.ping().await.unwrap();
    {
        let _paused = server.pause();
        let start = Instant::now();
        let err = c.ping().await.unwrap_err();
        let took = start.elapsed();
        assert!(matches!(err.kind, ClientErrorKind::Timeout(_)), "{err:?}");
        assert!(err.is_timeout());
        assert!(
            took >= timeout && took < timeout + Duration::from_millis(200),
            "{took:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("redis {}: PING: no reply within 300ms", server.address())
        );
        assert!(!c.is_connected());

        // The kernel still accepts connections; HELLO gets no answer.
        let start = Instant::now();
        let err = c.info().await.unwrap_err();
        let took = start.elapsed();
        assert!(
            matches!(err.kind, ClientErrorKind::ConnectTimeout(_)),
            "{err:?}"
        );
        assert!(took < timeout + Duration::from_millis(200), "{took:?}");
    }
    // SIGCONT: works again.
    c.ping().await.unwrap();
    assert!(c.info().await.unwrap().is_master());
}

/// A call cancelled half-way (dropped future) leaves no stale reply behind.
#[tokio::test]
async fn cancelled_call_does_not_poison_the_connection() {
    if !require_redis("cancelled_call_does_not_poison_the_connection") {
        return;
    }
    let server = RedisServer::start(&[]);
    let mut c = server.client();
    c.command(&["SET", "k", "v"]).await.unwrap();
    // BLPOP blocks server-side for 0.3 s; cancel the call after 50 ms.
    let cancelled = tokio::time::timeout(
        Duration::from_millis(50),
        c.command(&["BLPOP", "nolist", "0.3"]),
    )
    .await;
    assert!(cancelled.is_err());
    // The reply of BLPOP must not be taken for the reply of GET.
    assert_eq!(c.command(&["GET", "k"]).await.unwrap(), "v");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(c.command(&["GET", "k"]).await.unwrap(), "v");
}

#[tokio::test]
async fn requirepass() {
    if !require_redis("requirepass") {
        return;
    }
    let server = RedisServer::start(&["--requirepass", "s3cret"]);
    let mut anonymous = server.client();
    let err = anonymous.ping().await.unwrap_err();
    assert!(err.is_auth(), "{err:?}");
    assert!(!err.to_string().contains("s3cret"));

    let mut wrong = Client::new(server.target().with_password("nope"), options());
    let err = wrong.info().await.unwrap_err();
    assert!(err.is_auth(), "{err:?}");

    let mut right = Client::new(server.target().with_password("s3cret"), options());
    right.ping().await.unwrap();
    assert!(right.info().await.unwrap().is_master());
}

#[tokio::test]
async fn acl_user() {
    if !require_redis("acl_user") {
        return;
    }
    let server = RedisServer::start(&[]);
    let mut admin = server.client();
    // Only what the health monitor needs.
    admin
        .command(&[
            "ACL", "SETUSER", "health", "on", ">hpw", "-@all", "+ping", "+info",
        ])
        .await
        .unwrap();
    admin
        .command(&["ACL", "SETUSER", "admin", "on", ">apw", "+@all", "~*"])
        .await
        .unwrap();
    admin
        .command(&["ACL", "SETUSER", "default", "off"])
        .await
        .unwrap();

    let mut health = Client::new(server.target().with_user("health", "hpw"), options());
    health.ping().await.unwrap();
    assert!(health.info().await.unwrap().is_master());
    let err = health.replicaof_no_one().await.unwrap_err();
    assert!(
        err.is_reply() && err.to_string().contains("NOPERM"),
        "{err}"
    );
    let err = health.command(&["GET", "k"]).await.unwrap_err();
    assert!(err.is_reply(), "{err}");

    let mut bad = Client::new(server.target().with_user("health", "wrong"), options());
    assert!(bad.ping().await.unwrap_err().is_auth());
    let mut default = Client::new(server.target(), options());
    assert!(default.ping().await.unwrap_err().is_auth());

    let mut full = Client::new(server.target().with_user("admin", "apw"), options());
    full.replicaof_no_one().await.unwrap();
    full.client_pause_write(Duration::from_millis(10))
        .await
        .unwrap();
}

#[tokio::test]
async fn config_set_and_get() {
    if !require_redis("config_set_and_get") {
        return;
    }
    let server = RedisServer::start(&[]);
    let mut c = server.client();
    let param = "min-replicas-to-write";
    assert_eq!(c.config_get(param).await.unwrap().as_deref(), Some("0"));
    c.config_set(param, "1").await.unwrap();
    assert_eq!(c.config_get(param).await.unwrap().as_deref(), Some("1"));
    // Names are case-insensitive; an alias answers under its own name.
    assert_eq!(
        c.config_get("MIN-REPLICAS-TO-WRITE")
            .await
            .unwrap()
            .as_deref(),
        Some("1")
    );
    assert_eq!(
        c.config_get("min-slaves-to-write")
            .await
            .unwrap()
            .as_deref(),
        Some("1")
    );
    c.config_set(param, "0").await.unwrap();
    // An empty value is a value.
    c.config_set("save", "").await.unwrap();
    assert_eq!(c.config_get("save").await.unwrap().as_deref(), Some(""));

    assert_eq!(c.config_get("no-such-parameter").await.unwrap(), None);
    let err = c.config_get("min-replicas-*").await.unwrap_err();
    assert!(
        matches!(err.kind, ClientErrorKind::UnexpectedReply(_)),
        "{err}"
    );
    let err = c.config_set("no-such-parameter", "1").await.unwrap_err();
    assert!(err.is_reply() && !err.is_permission(), "{err}");
    // The parameter is named, its value never.
    let err = c
        .config_set("maxmemory", "lots-of-s3cret")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("CONFIG SET maxmemory ..."), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

#[tokio::test]
async fn client_setname_and_list() {
    if !require_redis("client_setname_and_list") {
        return;
    }
    let server = RedisServer::start(&[]);
    let mut c = server.client();
    let mut other = server.client();
    other.ping().await.unwrap();
    assert_eq!(c.client_name(), None);
    c.client_setname("redha-test").await.unwrap();
    assert_eq!(c.client_name(), Some("redha-test"));

    let list = c.client_list().await.unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let me = list.iter().find(|e| e.name == "redha-test").expect("named");
    assert_eq!(me.cmd, "client|list");
    assert_eq!(me.flags, "N");
    assert_eq!(me.user.as_deref(), Some("default"));
    assert_eq!(me.laddr.as_deref(), Some(server.address().as_str()));
    let them = list.iter().find(|e| e.id != me.id).unwrap();
    assert_eq!((them.name.as_str(), them.cmd.as_str()), ("", "ping"));

    // A new connection (after CLIENT KILL) carries the name again.
    other
        .command(&["CLIENT", "KILL", "ID", &me.id.to_string()])
        .await
        .unwrap();
    let list = c.client_list().await.unwrap();
    let me2 = list
        .iter()
        .find(|e| e.name == "redha-test")
        .expect("renamed");
    assert_ne!(me2.id, me.id);

    // A name Redis refuses is not kept; an empty one removes it.
    let err = c.client_setname("two words").await.unwrap_err();
    assert!(err.is_reply(), "{err}");
    assert_eq!(c.client_name(), Some("redha-test"));
    c.client_setname("").await.unwrap();
    assert_eq!(c.client_name(), None);
    let list = c.client_list().await.unwrap();
    assert!(list.iter().all(|e| e.name.is_empty()), "{list:?}");
}

/// NOPERM, an unknown command and a timeout are told apart.
#[tokio::test]
async fn pause_errors_are_distinguishable() {
    if !require_redis("pause_errors_are_distinguishable") {
        return;
    }
    let server = RedisServer::start(&["--rename-command", "CONFIG", ""]);
    let mut admin = server.client();
    admin
        .command(&[
            "ACL",
            "SETUSER",
            "nopause",
            "on",
            ">pw",
            "+@all",
            "-client|pause",
        ])
        .await
        .unwrap();
    let mut nopause = Client::new(server.target().with_user("nopause", "pw"), options());
    let err = nopause
        .client_pause_write(Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(err.is_permission() && err.is_reply(), "{err}");
    assert!(!err.is_unknown_command() && !err.is_timeout(), "{err}");
    assert_eq!(err.reply_code(), Some("NOPERM"));
    assert!(err.to_string().contains("CLIENT PAUSE 100 WRITE"), "{err}");

    // Renamed away: unknown command; an unknown subcommand likewise.
    let err = admin.config_get("save").await.unwrap_err();
    assert!(err.is_unknown_command() && !err.is_permission(), "{err}");
    let err = admin.command(&["CLIENT", "NOSUCH"]).await.unwrap_err();
    assert!(err.is_unknown_command(), "{err}");
    let err = admin.command(&["INCR", "k", "x"]).await.unwrap_err();
    assert!(err.is_reply() && !err.is_unknown_command(), "{err}");

    let timeout = Duration::from_millis(200);
    let mut c = Client::new(
        server.target(),
        ClientOptions {
            connect_timeout: timeout,
            response_timeout: timeout,
        },
    );
    c.ping().await.unwrap();
    let _paused = server.pause();
    let err = c
        .client_pause_write(Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(
        err.is_timeout() && !err.is_reply() && !err.is_permission(),
        "{err}"
    );
}
