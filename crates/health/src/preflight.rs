//! Before the agent touches the network: can its Redis do what it will be
//! asked to?
//!
//! [`preflight`] checks two things and refuses, naming what is missing:
//!
//! 1. **The version**: Redis ≥ 6.2 ([`MIN_VERSION`]), the first with
//!    `CLIENT PAUSE ... WRITE`, the fence of every promotion and handover.
//!    Read from `HELLO` (any user may run it), else from `INFO`.
//! 2. **The commands** the agent runs ([`AgentCommand::ALL`]) are allowed to
//!    the connected user. How:
//!    - with `ACL DRYRUN <user> <command> <args>` (Redis ≥ 7.0) for the user
//!      `ACL WHOAMI` names (or the target's user name, or `default`). It
//!      runs nothing; the caller needs `acl|dryrun` itself.
//!    - where that is not allowed (Redis 6.2, or a user without
//!      `acl|dryrun`), with probes that cannot change anything: each is
//!      either read-only or malformed past the ACL check, so the server
//!      answers `NOPERM` or rejects its arguments, and never acts:
//!      `PING`; `INFO`; `CONFIG GET min-replicas-to-write`; `CONFIG SET`
//!      of a parameter that does not exist; `CLIENT PAUSE` with a
//!      non-numeric timeout; `CLIENT SETNAME` of a name with spaces;
//!      `CLIENT LIST TYPE` of a type that does not exist; `REPLCONF` of an
//!      option that does not exist. `REPLICAOF` and `CLIENT UNPAUSE` have
//!      no such form: they are queued in a `MULTI` that is then discarded
//!      (the ACL check happens when a command is queued), and only once a
//!      `MULTI`/`DISCARD` pair has shown that this user may open a
//!      transaction, and `REPLICAOF` with a port that is not a number in
//!      case it ran anyway. `SYNC` cannot be probed at all (Redis 7.0 checks
//!      "not allowed in a transaction" before the ACL, and a bare `SYNC`
//!      starts a full synchronisation). What could not be checked is listed
//!      in [`Capabilities::unverified`], not refused.
//!
//! # The ACL redha needs
//!
//! The smallest ACL that passes (in `users.acl`, or `ACL SETUSER` with the
//! same rules):
//!
//! ```text
//! user redha on >secret -@all +ping +info +replicaof +client|pause +client|unpause +client|setname +client|list +config|get +config|set +sync +replconf +acl|whoami +acl|dryrun
//! ```
//!
//! ([`ACL_RULES`] is the part after the password.) No key or channel
//! permission is needed. `+acl|whoami +acl|dryrun` let the check be exact;
//! without them it falls back to the probes above, and then also needs
//! `+multi +discard` to check `REPLICAOF` and `CLIENT UNPAUSE`.

use std::fmt;
use std::str::FromStr;

use redis::Value;
use thiserror::Error;

use crate::client::{Client, ClientError};

/// The oldest Redis redha works with: 6.2 brought `CLIENT PAUSE ... WRITE`.
pub const MIN_VERSION: RedisVersion = RedisVersion {
    major: 6,
    minor: 2,
    patch: 0,
};

/// `ACL DRYRUN` came with 7.0.
const DRYRUN_VERSION: RedisVersion = RedisVersion {
    major: 7,
    minor: 0,
    patch: 0,
};

/// The ACL rules that allow every [`AgentCommand`] and let [`preflight`]
/// check them exactly (see the module documentation).
pub const ACL_RULES: &str = "-@all +ping +info +replicaof +client|pause +client|unpause \
+client|setname +client|list +config|get +config|set +sync +replconf +acl|whoami +acl|dryrun";

/// A Redis version, `major.minor.patch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RedisVersion {
    /// Major.
    pub major: u32,
    /// Minor.
    pub minor: u32,
    /// Patch.
    pub patch: u32,
}

impl fmt::Display for RedisVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Why a version string is not `major.minor.patch`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid Redis version {0:?}: expected major.minor.patch")]
pub struct VersionError(pub String);

impl FromStr for RedisVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || VersionError(s.to_string());
        let mut parts = s.split('.').map(|p| {
            if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                p.parse::<u32>().map_err(|_| err())
            } else {
                Err(err())
            }
        });
        let (Some(major), Some(minor), Some(patch), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err());
        };
        Ok(RedisVersion {
            major: major?,
            minor: minor?,
            patch: patch?,
        })
    }
}

/// A command the agent runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AgentCommand {
    /// `PING`: health checks.
    Ping,
    /// `INFO`: replication state.
    Info,
    /// `REPLICAOF`: following and promoting.
    Replicaof,
    /// `CLIENT PAUSE ... WRITE`: fences.
    ClientPause,
    /// `CLIENT UNPAUSE`: lifting a fence.
    ClientUnpause,
    /// `CLIENT SETNAME`: naming its connections.
    ClientSetname,
    /// `CLIENT LIST`: who is connected.
    ClientList,
    /// `CONFIG GET`: reading `min-replicas-to-write` and friends.
    ConfigGet,
    /// `CONFIG SET`: setting them.
    ConfigSet,
    /// `SYNC`: saving a dataset before it is replaced ([`crate::dump`]).
    Sync,
    /// `REPLCONF`: options of that `SYNC`.
    Replconf,
}

impl AgentCommand {
    /// Every command the agent runs.
    pub const ALL: [AgentCommand; 11] = [
        AgentCommand::Ping,
        AgentCommand::Info,
        AgentCommand::Replicaof,
        AgentCommand::ClientPause,
        AgentCommand::ClientUnpause,
        AgentCommand::ClientSetname,
        AgentCommand::ClientList,
        AgentCommand::ConfigGet,
        AgentCommand::ConfigSet,
        AgentCommand::Sync,
        AgentCommand::Replconf,
    ];

    /// As in Redis's documentation: `CLIENT PAUSE`.
    pub fn name(self) -> &'static str {
        match self {
            AgentCommand::Ping => "PING",
            AgentCommand::Info => "INFO",
            AgentCommand::Replicaof => "REPLICAOF",
            AgentCommand::ClientPause => "CLIENT PAUSE",
            AgentCommand::ClientUnpause => "CLIENT UNPAUSE",
            AgentCommand::ClientSetname => "CLIENT SETNAME",
            AgentCommand::ClientList => "CLIENT LIST",
            AgentCommand::ConfigGet => "CONFIG GET",
            AgentCommand::ConfigSet => "CONFIG SET",
            AgentCommand::Sync => "SYNC",
            AgentCommand::Replconf => "REPLCONF",
        }
    }

    /// The ACL rule that allows it: `+client|pause`.
    pub fn acl_rule(self) -> &'static str {
        match self {
            AgentCommand::Ping => "+ping",
            AgentCommand::Info => "+info",
            AgentCommand::Replicaof => "+replicaof",
            AgentCommand::ClientPause => "+client|pause",
            AgentCommand::ClientUnpause => "+client|unpause",
            AgentCommand::ClientSetname => "+client|setname",
            AgentCommand::ClientList => "+client|list",
            AgentCommand::ConfigGet => "+config|get",
            AgentCommand::ConfigSet => "+config|set",
            AgentCommand::Sync => "+sync",
            AgentCommand::Replconf => "+replconf",
        }
    }

    /// The command as the agent sends it, for `ACL DRYRUN`.
    fn dryrun_args(self) -> &'static [&'static str] {
        match self {
            AgentCommand::Ping => &["PING"],
            AgentCommand::Info => &["INFO", "server", "replication", "keyspace", "persistence"],
            AgentCommand::Replicaof => &["REPLICAOF", "192.0.2.1", "6379"],
            AgentCommand::ClientPause => &["CLIENT", "PAUSE", "1000", "WRITE"],
            AgentCommand::ClientUnpause => &["CLIENT", "UNPAUSE"],
            AgentCommand::ClientSetname => &["CLIENT", "SETNAME", "redha"],
            AgentCommand::ClientList => &["CLIENT", "LIST"],
            AgentCommand::ConfigGet => &["CONFIG", "GET", "min-replicas-to-write"],
            AgentCommand::ConfigSet => &["CONFIG", "SET", "min-replicas-to-write", "0"],
            AgentCommand::Sync => &["SYNC"],
            AgentCommand::Replconf => &["REPLCONF", "rdb-only", "1"],
        }
    }

    /// A form that passes the ACL check and then changes nothing (see the
    /// module documentation); `None`: run it queued in a discarded MULTI,
    /// or not at all.
    fn probe_args(self) -> Option<&'static [&'static str]> {
        Some(match self {
            AgentCommand::Ping => &["PING"],
            AgentCommand::Info => &["INFO", "server"],
            AgentCommand::ConfigGet => &["CONFIG", "GET", "min-replicas-to-write"],
            AgentCommand::ConfigSet => &["CONFIG", "SET", "redha-preflight-probe", "0"],
            AgentCommand::ClientPause => &["CLIENT", "PAUSE", "redha-preflight-probe", "WRITE"],
            AgentCommand::ClientSetname => &["CLIENT", "SETNAME", "redha preflight probe"],
            AgentCommand::ClientList => &["CLIENT", "LIST", "TYPE", "redha-preflight-probe"],
            AgentCommand::Replconf => &["REPLCONF", "redha-preflight-probe", "0"],
            AgentCommand::Replicaof | AgentCommand::ClientUnpause | AgentCommand::Sync => {
                return None;
            }
        })
    }

    /// The form queued (never run) in a discarded MULTI; harmless even if
    /// run. `None`: cannot be queued.
    fn queued_args(self) -> Option<&'static [&'static str]> {
        match self {
            AgentCommand::Replicaof => {
                Some(&["REPLICAOF", "redha-preflight-probe.invalid", "not-a-port"])
            }
            AgentCommand::ClientUnpause => Some(&["CLIENT", "UNPAUSE"]),
            _ => None,
        }
    }
}

impl fmt::Display for AgentCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How the commands were checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckMethod {
    /// Exactly, with `ACL DRYRUN`.
    AclDryrun,
    /// With harmless probes (Redis 6.2, or no `acl|dryrun` for this user).
    Probes,
}

/// What [`preflight`] found: all is well.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// The server's version.
    pub version: RedisVersion,
    /// The ACL user checked (`ACL WHOAMI`, else the target's user name,
    /// else `default`).
    pub user: String,
    /// How.
    pub method: CheckMethod,
    /// Commands that could not be checked without running them (only with
    /// [`CheckMethod::Probes`]); worth a warning in the log.
    pub unverified: Vec<AgentCommand>,
}

/// Why a command is not available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissingReason {
    /// The ACL does not allow it (`NOPERM`).
    NoPermission,
    /// The server does not know it (renamed or disabled with
    /// `rename-command`).
    UnknownCommand,
}

/// A command the agent needs and may not run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    /// The command.
    pub command: AgentCommand,
    /// Why.
    pub reason: MissingReason,
    /// The server's words.
    pub reply: String,
}

/// Why [`preflight`] refused.
#[derive(Debug, Error)]
pub enum PreflightError {
    /// The server could not be asked (down, timeout, authentication, an
    /// unexpected reply).
    #[error("preflight: {0}")]
    Redis(#[from] ClientError),
    /// The server's version string is not `major.minor.patch`.
    #[error("redis {address}: preflight: {error}")]
    Version {
        /// The Redis.
        address: String,
        /// The string.
        error: VersionError,
    },
    /// Older than [`MIN_VERSION`].
    #[error(
        "redis {address}: version {version} is too old: redha needs Redis {MIN_VERSION} or newer (CLIENT PAUSE ... WRITE)"
    )]
    TooOld {
        /// The Redis.
        address: String,
        /// Its version.
        version: RedisVersion,
    },
    /// Commands the agent needs are not available to its user.
    #[error("redis {address}: {}", missing_text(.user, .missing))]
    Missing {
        /// The Redis.
        address: String,
        /// The ACL user.
        user: String,
        /// Every missing command, in [`AgentCommand::ALL`] order.
        missing: Vec<Missing>,
    },
}

fn missing_text(user: &str, missing: &[Missing]) -> String {
    let of = |reason| {
        missing
            .iter()
            .filter(move |m| m.reason == reason)
            .map(|m| m.command)
    };
    let denied: Vec<AgentCommand> = of(MissingReason::NoPermission).collect();
    let unknown: Vec<AgentCommand> = of(MissingReason::UnknownCommand).collect();
    let names = |cs: &[AgentCommand]| cs.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ");
    let mut parts = Vec::new();
    if !denied.is_empty() {
        let rules = denied
            .iter()
            .map(|c| c.acl_rule())
            .collect::<Vec<_>>()
            .join(" ");
        parts.push(format!(
            "ACL user {user:?} may not run {}: add \"{rules}\" to its ACL (ACL SETUSER {user} {rules}, and the same in the ACL file)",
            names(&denied)
        ));
    }
    if !unknown.is_empty() {
        parts.push(format!(
            "this Redis does not know {} (renamed or disabled with rename-command?)",
            names(&unknown)
        ));
    }
    parts.join("; ")
}

/// Checks the Redis behind `client` (see the module documentation). Runs
/// only commands that change nothing; the client stays usable.
pub async fn preflight(client: &mut Client) -> Result<Capabilities, PreflightError> {
    let address = client.target().address.clone();
    let version = version(client).await?;
    let version = version
        .parse::<RedisVersion>()
        .map_err(|error| PreflightError::Version {
            address: address.clone(),
            error,
        })?;
    if version < MIN_VERSION {
        return Err(PreflightError::TooOld { address, version });
    }

    let user = match client.command(&["ACL", "WHOAMI"]).await {
        Ok(user) => user,
        Err(e) if e.is_reply() => client
            .target()
            .username
            .clone()
            .unwrap_or_else(|| "default".into()),
        Err(e) => return Err(e.into()),
    };

    let mut verdicts = None;
    if version >= DRYRUN_VERSION {
        verdicts = dryrun(client, &user).await?;
    }
    let method = match verdicts {
        Some(_) => CheckMethod::AclDryrun,
        None => CheckMethod::Probes,
    };
    let verdicts = match verdicts {
        Some(v) => v,
        None => probes(client).await?,
    };

    let mut missing = Vec::new();
    let mut unverified = Vec::new();
    for (command, verdict) in AgentCommand::ALL.into_iter().zip(verdicts) {
        match verdict {
            Verdict::Allowed => {}
            Verdict::Unverified => unverified.push(command),
            Verdict::Missing(reason, reply) => missing.push(Missing {
                command,
                reason,
                reply,
            }),
        }
    }
    if !missing.is_empty() {
        return Err(PreflightError::Missing {
            address,
            user,
            missing,
        });
    }
    Ok(Capabilities {
        version,
        user,
        method,
        unverified,
    })
}

/// `version` of `HELLO` (no arguments: the connection is left as it is);
/// `redis_version` of INFO if that fails.
async fn version(client: &mut Client) -> Result<String, ClientError> {
    if let Ok(Value::Map(pairs)) = client.call(&["HELLO"]).await {
        for (key, value) in pairs {
            if let (Value::BulkString(k), Value::BulkString(v)) = (&key, &value)
                && k == b"version"
            {
                return Ok(String::from_utf8_lossy(v).into_owned());
            }
        }
    }
    Ok(client.info().await?.redis_version)
}

/// What a check found for one command.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    Allowed,
    Missing(MissingReason, String),
    Unverified,
}

/// `ACL DRYRUN` for every command; `None` when this user may not use it.
async fn dryrun(client: &mut Client, user: &str) -> Result<Option<Vec<Verdict>>, ClientError> {
    let mut verdicts = Vec::new();
    for command in AgentCommand::ALL {
        let mut args = vec!["ACL", "DRYRUN", user];
        args.extend(command.dryrun_args());
        let verdict = match client.call(&args).await {
            Ok(Value::Okay) => Verdict::Allowed,
            Ok(Value::SimpleString(s)) if s == "OK" => Verdict::Allowed,
            // "This user has no permissions to run the 'client|pause' command"
            Ok(Value::BulkString(text)) => Verdict::Missing(
                MissingReason::NoPermission,
                String::from_utf8_lossy(&text).into_owned(),
            ),
            Ok(Value::VerbatimString { text, .. } | Value::SimpleString(text)) => {
                Verdict::Missing(MissingReason::NoPermission, text)
            }
            Ok(other) => {
                return Err(unexpected(client, &args, format!("{other:?}")));
            }
            // The caller may not run ACL DRYRUN, or the user name was a
            // guess ("ERR User 'x' not found"): probe instead.
            Err(e) if verdicts.is_empty() && (e.is_permission() || user_not_found(&e)) => {
                return Ok(None);
            }
            // "ERR Command 'sync' not found": renamed away.
            Err(e) if command_not_found(&e) => {
                Verdict::Missing(MissingReason::UnknownCommand, reply_text(&e))
            }
            Err(e) => return Err(e),
        };
        verdicts.push(verdict);
    }
    Ok(Some(verdicts))
}

/// Harmless probes for every command (see the module documentation).
async fn probes(client: &mut Client) -> Result<Vec<Verdict>, ClientError> {
    let mut verdicts = Vec::new();
    for command in AgentCommand::ALL {
        let verdict = match command.probe_args() {
            Some(args) => judge(client.call(args).await)?,
            None => Verdict::Unverified,
        };
        verdicts.push(verdict);
    }
    // A transaction, first on its own: may this user open one?
    let multi = client.queued(&[]).await?;
    if !matches!(multi.first(), Some(Ok(_))) {
        return Ok(verdicts);
    }
    let queued: Vec<(usize, &[&str])> = AgentCommand::ALL
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((i, c.queued_args()?)))
        .collect();
    let args: Vec<&[&str]> = queued.iter().map(|(_, a)| *a).collect();
    let mut replies = client.queued(&args).await?.into_iter();
    if !matches!(replies.next(), Some(Ok(_))) {
        return Ok(verdicts);
    }
    for ((i, _), reply) in queued.iter().zip(replies) {
        verdicts[*i] = match reply {
            // "+QUEUED": past the ACL check.
            Ok(_) => Verdict::Allowed,
            Err(e) if e.is_permission() => {
                Verdict::Missing(MissingReason::NoPermission, reply_text(&e))
            }
            Err(e) if e.is_unknown_command() => {
                Verdict::Missing(MissingReason::UnknownCommand, reply_text(&e))
            }
            Err(_) => Verdict::Unverified,
        };
    }
    Ok(verdicts)
}

/// A probe's reply: an error reply other than NOPERM or "unknown command"
/// means the server got past its ACL check and refused the arguments.
fn judge(result: Result<Value, ClientError>) -> Result<Verdict, ClientError> {
    match result {
        Ok(_) => Ok(Verdict::Allowed),
        Err(e) if e.is_permission() => Ok(Verdict::Missing(
            MissingReason::NoPermission,
            reply_text(&e),
        )),
        Err(e) if e.is_unknown_command() => Ok(Verdict::Missing(
            MissingReason::UnknownCommand,
            reply_text(&e),
        )),
        Err(e) if e.is_reply() => Ok(Verdict::Allowed),
        Err(e) => Err(e),
    }
}

fn reply_text(e: &ClientError) -> String {
    e.kind.to_string()
}

fn user_not_found(e: &ClientError) -> bool {
    detail(e).is_some_and(|d| d.starts_with("User ") && d.ends_with("not found"))
}

fn command_not_found(e: &ClientError) -> bool {
    detail(e).is_some_and(|d| d.starts_with("Command ") && d.ends_with("not found"))
}

fn detail(e: &ClientError) -> Option<&str> {
    match &e.kind {
        crate::client::ClientErrorKind::Reply(r) if r.code() == Some("ERR") => r.detail(),
        _ => None,
    }
}

fn unexpected(client: &Client, args: &[&str], reply: String) -> ClientError {
    ClientError {
        address: client.target().address.clone(),
        command: format!("{} {}", args[0], args.get(1).copied().unwrap_or_default()),
        kind: crate::client::ClientErrorKind::UnexpectedReply(reply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let v = |s: &str| s.parse::<RedisVersion>();
        assert_eq!(
            v("7.0.15"),
            Ok(RedisVersion {
                major: 7,
                minor: 0,
                patch: 15
            })
        );
        assert!(v("6.2.0").unwrap() >= MIN_VERSION);
        assert!(v("6.0.16").unwrap() < MIN_VERSION);
        assert!(v("10.0.0").unwrap() > v("7.4.2").unwrap());
        for bad in [
            "", "7", "7.0", "7.0.x", "7.0.15.1", "v7.0.1", "7..1", "7.0.-1",
        ] {
            assert_eq!(v(bad), Err(VersionError(bad.into())), "{bad}");
        }
    }

    #[test]
    fn acl_rules_cover_every_command_and_match_the_docs() {
        let rules: Vec<&str> = ACL_RULES.split_whitespace().collect();
        for command in AgentCommand::ALL {
            assert!(rules.contains(&command.acl_rule()), "{command}");
        }
        let source = include_str!("preflight.rs");
        let documented = format!("//! user redha on >secret {ACL_RULES}\n");
        assert!(
            source.contains(&documented),
            "module docs differ from ACL_RULES"
        );
    }

    #[test]
    fn every_command_is_checked_somehow() {
        for command in AgentCommand::ALL {
            let probed = command.probe_args().is_some() || command.queued_args().is_some();
            assert!(probed || command == AgentCommand::Sync, "{command}");
            // Never a real REPLICAOF or CLIENT UNPAUSE outside MULTI.
            if let Some(args) = command.probe_args() {
                assert!(!matches!(
                    args,
                    ["REPLICAOF", ..] | ["CLIENT", "UNPAUSE"] | ["SYNC"]
                ));
            }
        }
    }

    #[test]
    fn missing_message() {
        let m = |command, reason| Missing {
            command,
            reason,
            reply: String::new(),
        };
        let err = PreflightError::Missing {
            address: "10.0.0.1:6379".into(),
            user: "redha".into(),
            missing: vec![
                m(AgentCommand::ClientPause, MissingReason::NoPermission),
                m(AgentCommand::ConfigSet, MissingReason::NoPermission),
                m(AgentCommand::Sync, MissingReason::UnknownCommand),
            ],
        };
        assert_eq!(
            err.to_string(),
            "redis 10.0.0.1:6379: ACL user \"redha\" may not run CLIENT PAUSE, CONFIG SET: \
             add \"+client|pause +config|set\" to its ACL (ACL SETUSER redha +client|pause \
             +config|set, and the same in the ACL file); this Redis does not know SYNC \
             (renamed or disabled with rename-command?)"
        );
    }
}
