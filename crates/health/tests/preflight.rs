//! `preflight` against real redis-server processes: the default user, the
//! documented ACL, users lacking commands (with and without `ACL DRYRUN`),
//! a renamed command, and probes that change nothing.

mod common;

use std::time::Duration;

use common::{RedisServer, options, require_redis};
use health::{
    ACL_RULES, AgentCommand, CheckMethod, Client, MissingReason, PreflightError, preflight,
};

/// `ACL SETUSER <user> on >pw <rules>` on `server`; a client logged in as it.
async fn user(server: &RedisServer, name: &str, rules: &str) -> Client {
    let mut admin = server.client();
    let mut args = vec!["ACL", "SETUSER", name, "reset", "on", ">pw"];
    args.extend(rules.split_whitespace());
    admin.command(&args).await.unwrap();
    Client::new(server.target().with_user(name, "pw"), options())
}

/// ACL_RULES without the rules in `drop`, with `add`.
fn rules(drop: &[&str], add: &[&str]) -> String {
    let mut rules: Vec<&str> = ACL_RULES
        .split_whitespace()
        .filter(|r| !drop.contains(r))
        .collect();
    rules.extend(add);
    rules.join(" ")
}

#[tokio::test]
async fn default_user_passes() {
    if !require_redis("default_user_passes") {
        return;
    }
    let server = RedisServer::start(&[]);
    let caps = preflight(&mut server.client()).await.unwrap();
    assert_eq!(caps.version.to_string(), "7.0.15");
    assert_eq!(caps.user, "default");
    assert_eq!(caps.method, CheckMethod::AclDryrun);
    assert!(caps.unverified.is_empty());
}

#[tokio::test]
async fn documented_acl_passes() {
    if !require_redis("documented_acl_passes") {
        return;
    }
    let server = RedisServer::start(&[]);
    let mut c = user(&server, "redha", ACL_RULES).await;
    let caps = preflight(&mut c).await.unwrap();
    assert_eq!(caps.user, "redha");
    assert_eq!(caps.method, CheckMethod::AclDryrun);
    assert!(caps.unverified.is_empty());
    // And the user really can run them.
    c.client_setname("redha").await.unwrap();
    c.client_list().await.unwrap();
    c.client_pause_write(Duration::from_millis(10))
        .await
        .unwrap();
    c.client_unpause().await.unwrap();
    let v = c
        .config_get("min-replicas-to-write")
        .await
        .unwrap()
        .unwrap();
    c.config_set("min-replicas-to-write", &v).await.unwrap();
    c.replicaof_no_one().await.unwrap();
}

#[tokio::test]
async fn user_without_client_pause_is_refused() {
    if !require_redis("user_without_client_pause_is_refused") {
        return;
    }
    let server = RedisServer::start(&[]);
    let mut c = user(&server, "redha", &rules(&["+client|pause"], &[])).await;
    let err = preflight(&mut c).await.unwrap_err();
    let text = err.to_string();
    eprintln!("{text}");
    let PreflightError::Missing { user, missing, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(user, "redha");
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].command, AgentCommand::ClientPause);
    assert_eq!(missing[0].reason, MissingReason::NoPermission);
    assert!(
        text.starts_with(&format!("redis {}: ", server.address())),
        "{text}"
    );
    assert!(text.contains("may not run CLIENT PAUSE:"), "{text}");
    assert!(text.contains("+client|pause"), "{text}");
    // The client stays usable.
    c.ping().await.unwrap();
}

/// Without `acl|dryrun`: probes find the same, name every missing
/// command, and say what they could not check.
#[tokio::test]
async fn probes_without_acl_dryrun() {
    if !require_redis("probes_without_acl_dryrun") {
        return;
    }
    let server = RedisServer::start(&[]);
    let no_acl = ["+acl|dryrun", "+acl|whoami"];

    // Everything else allowed, and MULTI: only SYNC is left unchecked.
    let mut c = user(&server, "p1", &rules(&no_acl, &["+multi", "+discard"])).await;
    let caps = preflight(&mut c).await.unwrap();
    assert_eq!(caps.method, CheckMethod::Probes);
    assert_eq!(caps.user, "p1");
    assert_eq!(caps.unverified, [AgentCommand::Sync]);

    // Without MULTI, REPLICAOF and CLIENT UNPAUSE cannot be checked either.
    let mut c = user(&server, "p2", &rules(&no_acl, &[])).await;
    let caps = preflight(&mut c).await.unwrap();
    assert_eq!(
        caps.unverified,
        [
            AgentCommand::Replicaof,
            AgentCommand::ClientUnpause,
            AgentCommand::Sync
        ]
    );

    // Each probe finds its command missing.
    let probed = [
        ("+ping", AgentCommand::Ping),
        ("+info", AgentCommand::Info),
        ("+replicaof", AgentCommand::Replicaof),
        ("+client|pause", AgentCommand::ClientPause),
        ("+client|unpause", AgentCommand::ClientUnpause),
        ("+client|setname", AgentCommand::ClientSetname),
        ("+client|list", AgentCommand::ClientList),
        ("+config|get", AgentCommand::ConfigGet),
        ("+config|set", AgentCommand::ConfigSet),
        ("+replconf", AgentCommand::Replconf),
    ];
    for (rule, command) in probed {
        let mut drop = no_acl.to_vec();
        drop.push(rule);
        let mut c = user(&server, "p3", &rules(&drop, &["+multi", "+discard"])).await;
        let err = preflight(&mut c).await.unwrap_err();
        let PreflightError::Missing { missing, .. } = &err else {
            panic!("{rule}: {err:?}");
        };
        let found: Vec<AgentCommand> = missing.iter().map(|m| m.command).collect();
        assert_eq!(found, [command], "{rule}: {err}");
        assert!(err.to_string().contains(command.name()), "{err}");
    }

    // Several at once, all named.
    let mut drop = no_acl.to_vec();
    drop.extend(["+client|pause", "+config|set", "+client|list"]);
    let mut c = user(&server, "p4", &rules(&drop, &[])).await;
    let text = preflight(&mut c).await.unwrap_err().to_string();
    assert!(
        text.contains("may not run CLIENT PAUSE, CLIENT LIST, CONFIG SET:"),
        "{text}"
    );
    assert!(
        text.contains("ACL SETUSER p4 +client|pause +client|list +config|set"),
        "{text}"
    );
}

/// The probes change nothing: no pause lifted or made, no REPLICAOF, no
/// config or name changed.
#[tokio::test]
async fn probes_are_harmless() {
    if !require_redis("probes_are_harmless") {
        return;
    }
    let server = RedisServer::start(&[]);
    let mut admin = server.client();
    admin.config_set("min-replicas-max-lag", "7").await.unwrap();
    let mut c = user(
        &server,
        "p",
        &rules(&["+acl|dryrun", "+acl|whoami"], &["+multi", "+discard"]),
    )
    .await;
    c.client_setname("named").await.unwrap();
    // A fence in force (someone else's) must survive the check.
    admin
        .client_pause_write(Duration::from_secs(30))
        .await
        .unwrap();
    let caps = preflight(&mut c).await.unwrap();
    assert_eq!(caps.method, CheckMethod::Probes);

    let mut writer = server.client();
    let err = writer.command(&["SET", "k", "v"]).await.unwrap_err();
    assert!(err.is_timeout(), "the pause was lifted: {err}");
    admin.client_unpause().await.unwrap();
    let mut writer = server.client();
    writer.command(&["SET", "k", "v"]).await.unwrap();

    let snapshot = admin.info().await.unwrap();
    assert!(snapshot.is_master() && snapshot.master.is_none());
    assert_eq!(
        admin
            .config_get("min-replicas-max-lag")
            .await
            .unwrap()
            .as_deref(),
        Some("7")
    );
    let list = admin.client_list().await.unwrap();
    let mine = list
        .iter()
        .find(|e| e.user.as_deref() == Some("p"))
        .unwrap();
    assert_eq!(mine.name, "named");
    assert!(!mine.has_flag('x'), "left in MULTI: {mine:?}");
    // The same client goes on working.
    c.ping().await.unwrap();
    c.info().await.unwrap();
}

#[tokio::test]
async fn renamed_command_is_unknown() {
    if !require_redis("renamed_command_is_unknown") {
        return;
    }
    let server = RedisServer::start(&["--rename-command", "SYNC", ""]);
    let err = preflight(&mut server.client()).await.unwrap_err();
    let PreflightError::Missing { missing, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert_eq!(missing[0].command, AgentCommand::Sync);
    assert_eq!(missing[0].reason, MissingReason::UnknownCommand);
    let text = err.to_string();
    assert!(text.contains("does not know SYNC"), "{text}");
    assert!(!text.contains("may not run"), "{text}");
}

#[tokio::test]
async fn unreachable_server_is_an_error() {
    if !require_redis("unreachable_server_is_an_error") {
        return;
    }
    let mut server = RedisServer::start(&[]);
    let mut c = server.client();
    server.kill();
    let err = preflight(&mut c).await.unwrap_err();
    let PreflightError::Redis(e) = &err else {
        panic!("{err:?}");
    };
    assert!(e.is_connection_failure(), "{err}");
}
