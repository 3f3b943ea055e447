//! A strict, typed view of `INFO server replication keyspace persistence`,
//! and the comparison of two Redis replication histories.
//!
//! # Strictness
//!
//! [`parse_info`] refuses text that lacks a field the replication planner
//! relies on, or that holds one it cannot parse: the error names the field.
//! A Redis that answers strangely is never trusted with a promotion. Fields
//! that are optional (for example `master_link_down_since_seconds`, present
//! only while a replica's link is down) may be absent, but when present they
//! must parse too. Unknown fields are ignored, so a newer Redis that adds
//! fields still parses.
//!
//! # Replication facts (checked against redis-server 7.0.15)
//!
//! - On a replica, `master_repl_offset` equals `slave_repl_offset` (the
//!   offset of the replication stream the replica has *processed*, i.e.
//!   applied to its data) while the link is up, while it is down, and under
//!   a stream of writes; `slave_read_repl_offset` (read, maybe not yet
//!   applied) may run ahead. So [`Snapshot::offset`] is `master_repl_offset`
//!   for both roles.
//! - A replica whose master never answered shows `slave_repl_offset:0`,
//!   `master_repl_offset:0` and `master_link_down_since_seconds:-1`.
//! - `REPLICAOF NO ONE` keeps the history: the old replid becomes
//!   `master_replid2`, `second_repl_offset` becomes the offset + 1, a new
//!   `master_replid` is drawn, and the offset is unchanged.
//! - A master that never had a replica has no backlog (`repl_backlog_active:0`)
//!   and does not advance `master_repl_offset` on writes (it stays 0 however
//!   many keys are written); when its first replica attaches it draws a *new*
//!   replid and only then starts counting. Offsets therefore compare data only
//!   within one history; emptiness is judged by `keys`, never by the offset.
//! - After a full sync a replica's `master_replid2` is all zeros and its
//!   backlog is empty (`repl_backlog_histlen:0`).
//! - Redis prints the sections in its own order (Server, Persistence,
//!   Replication, Keyspace), whatever the order asked for; the `# Keyspace`
//!   header is there even when no database has keys.

use std::collections::HashMap;
use std::fmt;

use thiserror::Error;

/// The `master_replid2` of a Redis that has no previous history.
pub const NO_REPLID: &str = "0000000000000000000000000000000000000000";

/// Why INFO text was refused. Each variant names the field or line at fault.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SnapshotError {
    /// A field the planner needs is not in the text.
    #[error("INFO: missing field `{0}`")]
    Missing(String),
    /// A field is there but its value does not parse.
    #[error("INFO: field `{field}`: {reason}: {value:?}")]
    Malformed {
        /// The field (for a replica line, `slaveN.key`).
        field: String,
        /// The value as Redis sent it.
        value: String,
        /// What was expected.
        reason: String,
    },
    /// A line is neither a `# Section` header nor `key:value`.
    #[error("INFO: line {line}: not `key:value`: {text:?}")]
    MalformedLine {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// A field appears twice (two INFO answers glued together?).
    #[error("INFO: field `{0}` appears twice")]
    Duplicate(String),
    /// A section without required fields is missing (the `# Keyspace`
    /// header, without which "no keys" cannot be told from "not asked").
    #[error("INFO: missing section `# {0}`")]
    MissingSection(&'static str),
}

/// `role:` of INFO replication.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// `role:master`.
    Master,
    /// `role:slave`.
    Replica,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Master => "master",
            Role::Replica => "replica",
        })
    }
}

/// `master_link_status:` of a replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkStatus {
    /// `up`: connected to its master and in sync (or streaming).
    Up,
    /// `down`: not connected, connecting, or in the middle of a sync.
    Down,
}

impl fmt::Display for LinkStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LinkStatus::Up => "up",
            LinkStatus::Down => "down",
        })
    }
}

/// What a replica says about its master (the replica-only fields of INFO
/// replication).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterLink {
    /// `master_host`.
    pub host: String,
    /// `master_port`.
    pub port: u16,
    /// `master_link_status`.
    pub link_status: LinkStatus,
    /// `slave_repl_offset`: the offset of the master's stream this replica
    /// has processed (equal to `master_repl_offset` on a replica).
    pub slave_repl_offset: u64,
    /// `slave_read_repl_offset` (Redis ≥ 7.0): read from the master, maybe
    /// not yet processed. `None` on older servers.
    pub slave_read_repl_offset: Option<u64>,
    /// `master_sync_in_progress`: a full sync is being received.
    pub sync_in_progress: bool,
    /// `master_last_io_seconds_ago` (-1 while the link is down).
    pub last_io_seconds_ago: Option<i64>,
    /// `master_link_down_since_seconds`: present only while the link is down;
    /// -1 when it was never up.
    pub link_down_since_seconds: Option<i64>,
}

/// The state of a replica as its master reports it (`slaveN:state=`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReplicaState {
    /// `wait_bgsave`: waiting for the RDB of a full sync.
    WaitBgsave,
    /// `send_bulk`: receiving the RDB.
    SendBulk,
    /// `online`: streaming.
    Online,
    /// A state this crate does not know (newer Redis).
    Other(String),
}

/// One `slaveN:ip=..,port=..,state=..,offset=..,lag=..` line of a master.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaInfo {
    /// `ip`.
    pub ip: String,
    /// `port` (the replica's listening port, as it announced it); 0 for a
    /// connection that only takes a snapshot (`redis-cli --rdb`, redha saving a
    /// dataset), which announces none.
    pub port: u16,
    /// `state`.
    pub state: ReplicaState,
    /// `offset`: the last offset the replica acknowledged (it acknowledges
    /// every second, so this lags the master's offset).
    pub offset: u64,
    /// `lag`: seconds since the last acknowledgement.
    pub lag: u64,
}

/// One parsed answer to `INFO server replication keyspace persistence`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// `redis_version`.
    pub redis_version: String,
    /// `run_id`: random per process start; a change means a restart.
    pub run_id: String,
    /// `uptime_in_seconds`.
    pub uptime_in_seconds: u64,
    /// `role`.
    pub role: Role,
    /// The replica-only fields; `Some` exactly when `role` is
    /// [`Role::Replica`].
    pub master: Option<MasterLink>,
    /// `connected_slaves`.
    pub connected_slaves: u64,
    /// The `slaveN` lines, in order (Redis may list fewer than
    /// `connected_slaves`).
    pub replicas: Vec<ReplicaInfo>,
    /// `master_replid`: the id of the history this Redis holds.
    pub master_replid: String,
    /// `master_replid2`: the id of the history this one continues, all
    /// zeros ([`NO_REPLID`]) when none.
    pub master_replid2: String,
    /// `master_repl_offset`.
    pub master_repl_offset: u64,
    /// `second_repl_offset`: `master_replid2` is valid for partial resyncs
    /// requesting up to this offset; -1 when there is no replid2.
    pub second_repl_offset: i64,
    /// `repl_backlog_active`.
    pub repl_backlog_active: bool,
    /// `repl_backlog_size` (configured bytes).
    pub repl_backlog_size: u64,
    /// `repl_backlog_first_byte_offset`.
    pub repl_backlog_first_byte_offset: u64,
    /// `repl_backlog_histlen`: bytes of history held in the backlog.
    pub repl_backlog_histlen: u64,
    /// `loading`: the dataset is being loaded from disk.
    pub loading: bool,
    /// `aof_enabled`.
    pub aof_enabled: bool,
    /// `rdb_changes_since_last_save`.
    pub rdb_changes_since_last_save: u64,
    /// The sum of `keys=` over every `dbN` line of the keyspace section.
    pub keys: u64,
}

impl Snapshot {
    /// Is this Redis a master (`role:master`)?
    pub fn is_master(&self) -> bool {
        self.role == Role::Master
    }

    /// Is this Redis a replica (`role:slave`)?
    pub fn is_replica(&self) -> bool {
        self.role == Role::Replica
    }

    /// Is this a replica whose link to its master is up?
    pub fn link_up(&self) -> bool {
        self.master
            .as_ref()
            .is_some_and(|m| m.link_status == LinkStatus::Up)
    }

    /// The offset of the data this Redis holds, in the history
    /// `master_replid`: `master_repl_offset`, for a master and for a replica
    /// alike (on a replica Redis keeps it equal to `slave_repl_offset`, the
    /// processed offset; see the module documentation).
    pub fn offset(&self) -> u64 {
        self.master_repl_offset
    }

    /// Does this Redis continue a previous history (`master_replid2` not all
    /// zeros)? True after `REPLICAOF NO ONE`, and on a master whose replica
    /// was promoted and then re-attached it by partial resync.
    pub fn has_history(&self) -> bool {
        self.master_replid2 != NO_REPLID
    }

    /// Is this Redis empty with nothing behind it: no keys and no previous
    /// history (replid2 all zeros)? That is a Redis restarted without
    /// persistence, or never written. Such a Redis must never become the
    /// source of the other one.
    ///
    /// Judged by keys, not by the offset: a master that never had a replica
    /// keeps offset 0 however much it was written.
    pub fn is_fresh_empty(&self) -> bool {
        self.keys == 0 && !self.has_history()
    }

    /// The last offset of history `replid` that this Redis holds, if it
    /// holds that history at all: its own offset when `replid` is its
    /// `master_replid`, `second_repl_offset - 1` when it is its
    /// `master_replid2` (the offset at which it left that history).
    pub fn history_end(&self, replid: &str) -> Option<u64> {
        if replid == self.master_replid {
            Some(self.offset())
        } else if self.has_history() && replid == self.master_replid2 && self.second_repl_offset > 0
        {
            Some((self.second_repl_offset - 1) as u64)
        } else {
            None
        }
    }

    /// Would this Redis, as a source, grant a *partial* resync to a Redis
    /// that holds history `replid` up to `offset` (which then asks for
    /// `offset + 1`)? Mirrors Redis' `masterTryPartialResynchronization`:
    /// the id must be our replid, or our replid2 with the requested offset
    /// not past `second_repl_offset`, and the requested offset must lie in
    /// the backlog. Otherwise the requester gets a full sync, which flushes
    /// its data first.
    pub fn accepts_partial_resync(&self, replid: &str, offset: u64) -> bool {
        let Some(end) = self.history_end(replid) else {
            return false;
        };
        if replid != self.master_replid && offset > end {
            return false;
        }
        let wanted = offset.saturating_add(1);
        self.repl_backlog_active
            && wanted >= self.repl_backlog_first_byte_offset
            && wanted <= self.repl_backlog_first_byte_offset + self.repl_backlog_histlen
    }
}

/// How two replication histories relate: which Redis holds data the other
/// lacks. Offsets are [`Snapshot::offset`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Relation {
    /// Same `master_replid`: one history; the larger offset is newer.
    Same {
        /// Local offset.
        local_offset: u64,
        /// Peer offset.
        peer_offset: u64,
    },
    /// The peer's history continues ours: its `master_replid2` is our
    /// `master_replid` and we hold nothing past the point where it left our
    /// history (`local_offset <= fork_offset`). The peer holds everything we
    /// hold; we can follow it with a partial resync if our offset is still in
    /// its backlog ([`Snapshot::accepts_partial_resync`]).
    PeerContinuesLocal {
        /// Local offset (in our history).
        local_offset: u64,
        /// Peer offset (in its new history).
        peer_offset: u64,
        /// The last offset of our history the peer holds
        /// (`peer.second_repl_offset - 1`).
        fork_offset: u64,
    },
    /// Our history continues the peer's (the mirror of
    /// [`Relation::PeerContinuesLocal`]): we hold everything the peer holds.
    LocalContinuesPeer {
        /// Local offset (in our new history).
        local_offset: u64,
        /// Peer offset (in its history).
        peer_offset: u64,
        /// The last offset of the peer's history we hold
        /// (`local.second_repl_offset - 1`).
        fork_offset: u64,
    },
    /// The histories share a past up to `common_offset` but at least one side
    /// went on past it in a history the other does not know (a split brain, or
    /// both promoted from one master). No partial resync is possible either
    /// way; whoever follows the other does a full sync and loses what it
    /// held past `common_offset`. A side whose offset equals
    /// `common_offset` (in its own history) has lost nothing of its own;
    /// treat everything else like [`Relation::Unrelated`].
    Diverged {
        /// Local offset.
        local_offset: u64,
        /// Peer offset.
        peer_offset: u64,
        /// The last offset both hold.
        common_offset: u64,
    },
    /// No shared history that INFO can show (a Redis restarted empty, or two
    /// independent datasets).
    Unrelated,
}

/// Compares the histories of two Redis servers (see [`Relation`]).
///
/// Redis keeps only two ids (replid and replid2), so a history two
/// promotions back is not recognised and compares as
/// [`Relation::Unrelated`].
pub fn relation(local: &Snapshot, peer: &Snapshot) -> Relation {
    let local_offset = local.offset();
    let peer_offset = peer.offset();
    if local.master_replid == peer.master_replid {
        return Relation::Same {
            local_offset,
            peer_offset,
        };
    }
    // The peer left our current history at `fork`.
    if let Some(fork) = peer.history_end(&local.master_replid) {
        return if local_offset <= fork {
            Relation::PeerContinuesLocal {
                local_offset,
                peer_offset,
                fork_offset: fork,
            }
        } else {
            Relation::Diverged {
                local_offset,
                peer_offset,
                common_offset: fork,
            }
        };
    }
    if let Some(fork) = local.history_end(&peer.master_replid) {
        return if peer_offset <= fork {
            Relation::LocalContinuesPeer {
                local_offset,
                peer_offset,
                fork_offset: fork,
            }
        } else {
            Relation::Diverged {
                local_offset,
                peer_offset,
                common_offset: fork,
            }
        };
    }
    // Siblings: both left the same history.
    if local.has_history() && local.master_replid2 == peer.master_replid2 {
        let l = local.history_end(&local.master_replid2);
        let p = peer.history_end(&peer.master_replid2);
        if let (Some(l), Some(p)) = (l, p) {
            return Relation::Diverged {
                local_offset,
                peer_offset,
                common_offset: l.min(p),
            };
        }
    }
    Relation::Unrelated
}

/// Parses the text of `INFO server replication keyspace persistence`
/// strictly (see the module documentation). Lines may end with `\r\n` or
/// `\n`.
pub fn parse_info(text: &str) -> Result<Snapshot, SnapshotError> {
    let mut fields: HashMap<&str, &str> = HashMap::new();
    let mut replica_lines: Vec<(u32, &str, &str)> = Vec::new();
    let mut keyspace_seen = false;
    let mut keys: u64 = 0;
    let mut section = "";

    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('#') {
            section = name.trim();
            if section.eq_ignore_ascii_case("keyspace") {
                keyspace_seen = true;
            }
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(SnapshotError::MalformedLine {
                line: index + 1,
                text: line.to_string(),
            });
        };
        if key.is_empty() {
            return Err(SnapshotError::MalformedLine {
                line: index + 1,
                text: line.to_string(),
            });
        }
        if fields.insert(key, value).is_some() {
            return Err(SnapshotError::Duplicate(key.to_string()));
        }
        if section.eq_ignore_ascii_case("keyspace") {
            if let Some(db) = key.strip_prefix("db")
                && !db.is_empty()
                && db.bytes().all(|b| b.is_ascii_digit())
            {
                let sub = sub_fields(key, value)?;
                let n = parse_u64(&format!("{key}.keys"), required_sub(key, &sub, "keys")?)?;
                keys = keys
                    .checked_add(n)
                    .ok_or_else(|| SnapshotError::Malformed {
                        field: format!("{key}.keys"),
                        value: n.to_string(),
                        reason: "key count overflows".into(),
                    })?;
            }
        } else if let Some(n) = key.strip_prefix("slave")
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
        {
            let n = n.parse::<u32>().map_err(|_| SnapshotError::Malformed {
                field: key.to_string(),
                value: value.to_string(),
                reason: "replica number out of range".into(),
            })?;
            replica_lines.push((n, key, value));
        }
    }

    if !keyspace_seen {
        return Err(SnapshotError::MissingSection("Keyspace"));
    }

    let f = Fields(&fields);
    let role = match f.required("role")? {
        "master" => Role::Master,
        "slave" | "replica" => Role::Replica,
        other => return Err(malformed("role", other, "expected master or slave")),
    };
    let master = match role {
        Role::Master => None,
        Role::Replica => Some(MasterLink {
            host: {
                let host = f.required("master_host")?;
                if host.is_empty() {
                    return Err(malformed("master_host", host, "empty"));
                }
                host.to_string()
            },
            port: f.port("master_port")?,
            link_status: match f.required("master_link_status")? {
                "up" => LinkStatus::Up,
                "down" => LinkStatus::Down,
                other => {
                    return Err(malformed(
                        "master_link_status",
                        other,
                        "expected up or down",
                    ));
                }
            },
            slave_repl_offset: f.u64("slave_repl_offset")?,
            slave_read_repl_offset: f.optional_u64("slave_read_repl_offset")?,
            sync_in_progress: f.flag("master_sync_in_progress")?,
            last_io_seconds_ago: f.optional_i64("master_last_io_seconds_ago")?,
            link_down_since_seconds: f.optional_i64("master_link_down_since_seconds")?,
        }),
    };

    replica_lines.sort_by_key(|(n, _, _)| *n);
    let replicas = replica_lines
        .into_iter()
        .map(|(_, key, value)| parse_replica(key, value))
        .collect::<Result<Vec<_>, _>>()?;

    let second_repl_offset = f.i64("second_repl_offset")?;
    if second_repl_offset < -1 {
        return Err(malformed(
            "second_repl_offset",
            &second_repl_offset.to_string(),
            "expected -1 or an offset",
        ));
    }
    let master_replid2 = f.replid("master_replid2")?;
    if master_replid2 != NO_REPLID && second_repl_offset < 1 {
        return Err(malformed(
            "second_repl_offset",
            &second_repl_offset.to_string(),
            "master_replid2 is set but second_repl_offset is not an offset",
        ));
    }

    Ok(Snapshot {
        redis_version: f.required("redis_version")?.to_string(),
        run_id: f.replid("run_id")?,
        uptime_in_seconds: f.u64("uptime_in_seconds")?,
        role,
        master,
        connected_slaves: f.u64("connected_slaves")?,
        replicas,
        master_replid: f.replid("master_replid")?,
        master_replid2,
        master_repl_offset: f.u64("master_repl_offset")?,
        second_repl_offset,
        repl_backlog_active: f.flag("repl_backlog_active")?,
        repl_backlog_size: f.u64("repl_backlog_size")?,
        repl_backlog_first_byte_offset: f.u64("repl_backlog_first_byte_offset")?,
        repl_backlog_histlen: f.u64("repl_backlog_histlen")?,
        loading: f.flag("loading")?,
        aof_enabled: f.flag("aof_enabled")?,
        rdb_changes_since_last_save: f.u64("rdb_changes_since_last_save")?,
        keys,
    })
}

struct Fields<'a>(&'a HashMap<&'a str, &'a str>);

impl<'a> Fields<'a> {
    fn required(&self, name: &str) -> Result<&'a str, SnapshotError> {
        self.0
            .get(name)
            .copied()
            .ok_or_else(|| SnapshotError::Missing(name.to_string()))
    }

    fn u64(&self, name: &str) -> Result<u64, SnapshotError> {
        parse_u64(name, self.required(name)?)
    }

    fn i64(&self, name: &str) -> Result<i64, SnapshotError> {
        let value = self.required(name)?;
        value
            .parse()
            .map_err(|_| malformed(name, value, "expected an integer"))
    }

    fn optional_u64(&self, name: &str) -> Result<Option<u64>, SnapshotError> {
        self.0.get(name).map(|v| parse_u64(name, v)).transpose()
    }

    fn optional_i64(&self, name: &str) -> Result<Option<i64>, SnapshotError> {
        self.0
            .get(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| malformed(name, v, "expected an integer"))
            })
            .transpose()
    }

    fn flag(&self, name: &str) -> Result<bool, SnapshotError> {
        match self.required(name)? {
            "0" => Ok(false),
            "1" => Ok(true),
            other => Err(malformed(name, other, "expected 0 or 1")),
        }
    }

    fn port(&self, name: &str) -> Result<u16, SnapshotError> {
        parse_port(name, self.required(name)?)
    }

    fn replid(&self, name: &str) -> Result<String, SnapshotError> {
        let value = self.required(name)?;
        if value.len() == 40 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(value.to_ascii_lowercase())
        } else {
            Err(malformed(name, value, "expected 40 hexadecimal digits"))
        }
    }
}

fn malformed(field: &str, value: &str, reason: &str) -> SnapshotError {
    SnapshotError::Malformed {
        field: field.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn parse_u64(field: &str, value: &str) -> Result<u64, SnapshotError> {
    // `u64::from_str` accepts a leading `+`; Redis never sends one.
    if value.starts_with('+') {
        return Err(malformed(field, value, "expected a non-negative integer"));
    }
    value
        .parse()
        .map_err(|_| malformed(field, value, "expected a non-negative integer"))
}

fn parse_port(field: &str, value: &str) -> Result<u16, SnapshotError> {
    match value.parse::<u16>() {
        Ok(port) if port != 0 && !value.starts_with('+') => Ok(port),
        _ => Err(malformed(field, value, "expected a port 1..65535")),
    }
}

/// A replica line's port: 0 is a snapshot-only connection that announced no port.
fn parse_replica_port(field: &str, value: &str) -> Result<u16, SnapshotError> {
    match value {
        "0" => Ok(0),
        _ => parse_port(field, value),
    }
}

/// Splits `a=1,b=2` into pairs; every item must have a `=`.
fn sub_fields<'a>(key: &str, value: &'a str) -> Result<Vec<(&'a str, &'a str)>, SnapshotError> {
    value
        .split(',')
        .map(|item| {
            item.split_once('=')
                .ok_or_else(|| malformed(key, value, "expected name=value pairs"))
        })
        .collect()
}

fn required_sub<'a>(
    key: &str,
    sub: &[(&'a str, &'a str)],
    name: &str,
) -> Result<&'a str, SnapshotError> {
    sub.iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| *v)
        .ok_or_else(|| SnapshotError::Missing(format!("{key}.{name}")))
}

fn parse_replica(key: &str, value: &str) -> Result<ReplicaInfo, SnapshotError> {
    let sub = sub_fields(key, value)?;
    let ip = required_sub(key, &sub, "ip")?;
    if ip.is_empty() {
        return Err(malformed(&format!("{key}.ip"), ip, "empty"));
    }
    let state = match required_sub(key, &sub, "state")? {
        "wait_bgsave" => ReplicaState::WaitBgsave,
        "send_bulk" => ReplicaState::SendBulk,
        "online" => ReplicaState::Online,
        other => ReplicaState::Other(other.to_string()),
    };
    Ok(ReplicaInfo {
        ip: ip.to_string(),
        port: parse_replica_port(&format!("{key}.port"), required_sub(key, &sub, "port")?)?,
        state,
        offset: parse_u64(&format!("{key}.offset"), required_sub(key, &sub, "offset")?)?,
        lag: parse_u64(&format!("{key}.lag"), required_sub(key, &sub, "lag")?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = include_str!("../tests/fixtures/master.txt");
    const REPLICA_UP: &str = include_str!("../tests/fixtures/replica_up.txt");
    const REPLICA_DOWN: &str = include_str!("../tests/fixtures/replica_down.txt");
    const REPLICA_NEVER: &str = include_str!("../tests/fixtures/replica_never_connected.txt");
    const PROMOTED: &str = include_str!("../tests/fixtures/promoted.txt");
    const PROMOTED_WITH_REPLICA: &str = include_str!("../tests/fixtures/promoted_with_replica.txt");
    const REPLICA_OF_PROMOTED: &str = include_str!("../tests/fixtures/replica_of_promoted.txt");
    const FRESH: &str = include_str!("../tests/fixtures/fresh_master.txt");
    const RESTARTED_EMPTY: &str = include_str!("../tests/fixtures/restarted_empty.txt");

    fn parse(text: &str) -> Snapshot {
        parse_info(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn master_with_a_replica() {
        let s = parse(MASTER);
        assert_eq!(s.redis_version, "7.0.15");
        assert_eq!(s.run_id, "fde807c1a3ec02bf440a5154ce5c85b51603a6b1");
        assert_eq!(s.role, Role::Master);
        assert!(s.is_master() && !s.is_replica());
        assert_eq!(s.master, None);
        assert_eq!(s.connected_slaves, 1);
        assert_eq!(
            s.replicas,
            vec![ReplicaInfo {
                ip: "127.0.0.1".into(),
                port: 27102,
                state: ReplicaState::Online,
                offset: 64,
                lag: 1,
            }]
        );
        assert_eq!(s.master_replid, "9623f1629597f7f38bb484a6783fe1d4d632349b");
        assert_eq!(s.master_replid2, NO_REPLID);
        assert_eq!(s.master_repl_offset, 64);
        assert_eq!(s.offset(), 64);
        assert_eq!(s.second_repl_offset, -1);
        assert!(s.repl_backlog_active);
        assert_eq!(s.repl_backlog_size, 1_048_576);
        assert_eq!(s.repl_backlog_first_byte_offset, 1);
        assert_eq!(s.repl_backlog_histlen, 64);
        // db0:keys=4 + db3:keys=1
        assert_eq!(s.keys, 5);
        assert!(!s.loading);
        assert!(!s.aof_enabled);
        assert!(!s.has_history());
        assert!(!s.is_fresh_empty());
    }

    #[test]
    fn replica_link_up() {
        let s = parse(REPLICA_UP);
        assert_eq!(s.role, Role::Replica);
        assert!(s.link_up());
        let m = s.master.as_ref().unwrap();
        assert_eq!(m.host, "127.0.0.1");
        assert_eq!(m.port, 27101);
        assert_eq!(m.link_status, LinkStatus::Up);
        assert_eq!(m.slave_repl_offset, 50);
        assert_eq!(m.slave_read_repl_offset, Some(50));
        assert!(!m.sync_in_progress);
        assert_eq!(m.last_io_seconds_ago, Some(0));
        assert_eq!(m.link_down_since_seconds, None);
        assert_eq!(s.offset(), m.slave_repl_offset);
        assert_eq!(s.master_replid, "9623f1629597f7f38bb484a6783fe1d4d632349b");
        assert_eq!(s.keys, 5);
        assert!(s.replicas.is_empty());
    }

    #[test]
    fn replica_link_down() {
        let s = parse(REPLICA_DOWN);
        assert!(!s.link_up());
        let m = s.master.as_ref().unwrap();
        assert_eq!(m.link_status, LinkStatus::Down);
        assert_eq!(m.last_io_seconds_ago, Some(-1));
        assert_eq!(m.link_down_since_seconds, Some(0));
        assert_eq!(m.slave_repl_offset, 64);
        assert_eq!(s.offset(), 64);
    }

    #[test]
    fn replica_never_connected() {
        let s = parse(REPLICA_NEVER);
        let m = s.master.as_ref().unwrap();
        assert_eq!(m.port, 27199);
        assert_eq!(m.link_down_since_seconds, Some(-1));
        assert_eq!(m.slave_repl_offset, 0);
        assert_eq!(s.offset(), 0);
        assert!(s.is_fresh_empty());
    }

    #[test]
    fn promoted_replica_keeps_its_history() {
        let old = parse(REPLICA_DOWN);
        let s = parse(PROMOTED);
        assert_eq!(s.role, Role::Master);
        assert_eq!(s.run_id, old.run_id);
        assert_ne!(s.master_replid, old.master_replid);
        assert_eq!(s.master_replid2, old.master_replid);
        assert_eq!(s.second_repl_offset, old.offset() as i64 + 1);
        assert_eq!(s.offset(), old.offset());
        assert!(s.has_history());
        assert!(!s.is_fresh_empty());
        assert_eq!(s.history_end(&old.master_replid), Some(64));
        assert_eq!(s.history_end(&s.master_replid), Some(64));
        assert_eq!(s.history_end(NO_REPLID), None);
    }

    #[test]
    fn fresh_and_restarted_empty() {
        let fresh = parse(FRESH);
        assert!(fresh.is_fresh_empty());
        assert_eq!(fresh.keys, 0);
        assert!(!fresh.repl_backlog_active);
        let restarted = parse(RESTARTED_EMPTY);
        assert!(restarted.is_fresh_empty());
        assert_ne!(restarted.run_id, fresh.run_id);
        // The master before its restart is unrelated to it.
        assert_eq!(relation(&parse(MASTER), &restarted), Relation::Unrelated);
        assert_eq!(relation(&restarted, &parse(PROMOTED)), Relation::Unrelated);
    }

    #[test]
    fn relation_same_history() {
        let master = parse(MASTER);
        let replica = parse(REPLICA_UP);
        assert_eq!(
            relation(&replica, &master),
            Relation::Same {
                local_offset: 50,
                peer_offset: 64
            }
        );
        assert_eq!(
            relation(&parse(REPLICA_OF_PROMOTED), &parse(PROMOTED_WITH_REPLICA)),
            // 14 bytes more than the 128 seen at the sync: the master's
            // replication PING (every repl-ping-replica-period, 10 s)
            // advances the offset without any write.
            Relation::Same {
                local_offset: 142,
                peer_offset: 142
            }
        );
    }

    #[test]
    fn relation_across_promotion() {
        let old_master = parse(MASTER); // offset 64 in history 9623...
        let promoted = parse(PROMOTED); // replid2 9623..., second 65
        assert_eq!(
            relation(&old_master, &promoted),
            Relation::PeerContinuesLocal {
                local_offset: 64,
                peer_offset: 64,
                fork_offset: 64
            }
        );
        assert_eq!(
            relation(&promoted, &old_master),
            Relation::LocalContinuesPeer {
                local_offset: 64,
                peer_offset: 64,
                fork_offset: 64
            }
        );
        // A replica that lagged behind also continues into the promoted one.
        let lagging = parse(REPLICA_UP); // offset 50
        assert!(matches!(
            relation(&lagging, &promoted),
            Relation::PeerContinuesLocal {
                local_offset: 50,
                ..
            }
        ));
        assert!(promoted.accepts_partial_resync(&lagging.master_replid, 50));
        assert!(promoted.accepts_partial_resync(&old_master.master_replid, 64));
        assert!(!promoted.accepts_partial_resync(&old_master.master_replid, 65));
        assert!(!promoted.accepts_partial_resync(NO_REPLID, 0));
    }

    #[test]
    fn relation_split_brain() {
        let promoted = parse(PROMOTED);
        // The old master went on writing after the promotion.
        let mut old_master = parse(MASTER);
        old_master.master_repl_offset = 90;
        assert_eq!(
            relation(&old_master, &promoted),
            Relation::Diverged {
                local_offset: 90,
                peer_offset: 64,
                common_offset: 64
            }
        );
        assert_eq!(
            relation(&promoted, &old_master),
            Relation::Diverged {
                local_offset: 64,
                peer_offset: 90,
                common_offset: 64
            }
        );
        // Two replicas of one master, both promoted at different offsets.
        let mut sibling = promoted.clone();
        sibling.master_replid = "1111111111111111111111111111111111111111".into();
        sibling.second_repl_offset = 51;
        sibling.master_repl_offset = 70;
        assert_eq!(
            relation(&promoted, &sibling),
            Relation::Diverged {
                local_offset: 64,
                peer_offset: 70,
                common_offset: 50
            }
        );
    }

    #[test]
    fn backlog_bounds_partial_resync() {
        let mut s = parse(PROMOTED);
        let id = s.master_replid.clone();
        assert!(s.accepts_partial_resync(&id, 64));
        assert!(s.accepts_partial_resync(&id, 0));
        s.repl_backlog_first_byte_offset = 30;
        s.repl_backlog_histlen = 35;
        assert!(!s.accepts_partial_resync(&id, 10));
        assert!(s.accepts_partial_resync(&id, 29));
        s.repl_backlog_active = false;
        assert!(!s.accepts_partial_resync(&id, 64));
    }

    #[test]
    fn lf_line_endings_parse_too() {
        let lf = MASTER.replace("\r\n", "\n");
        assert_eq!(parse(&lf), parse(MASTER));
    }

    fn without(text: &str, field: &str) -> String {
        text.lines()
            .filter(|l| !l.starts_with(&format!("{field}:")))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    fn with(text: &str, field: &str, value: &str) -> String {
        text.lines()
            .map(|l| {
                if l.starts_with(&format!("{field}:")) {
                    format!("{field}:{value}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect()
    }

    #[test]
    fn every_required_field_is_required() {
        for field in [
            "redis_version",
            "run_id",
            "uptime_in_seconds",
            "role",
            "connected_slaves",
            "master_replid",
            "master_replid2",
            "master_repl_offset",
            "second_repl_offset",
            "repl_backlog_active",
            "repl_backlog_size",
            "repl_backlog_first_byte_offset",
            "repl_backlog_histlen",
            "loading",
            "aof_enabled",
            "rdb_changes_since_last_save",
        ] {
            assert_eq!(
                parse_info(&without(MASTER, field)),
                Err(SnapshotError::Missing(field.into())),
                "{field}"
            );
        }
        for field in [
            "master_host",
            "master_port",
            "master_link_status",
            "slave_repl_offset",
            "master_sync_in_progress",
        ] {
            let err = parse_info(&without(REPLICA_UP, field)).unwrap_err();
            assert_eq!(err, SnapshotError::Missing(field.into()));
            assert!(err.to_string().contains(field), "{err}");
        }
        // Optional replica fields.
        for field in [
            "slave_read_repl_offset",
            "master_last_io_seconds_ago",
            "master_link_down_since_seconds",
        ] {
            parse_info(&without(REPLICA_DOWN, field)).unwrap();
        }
    }

    #[test]
    fn malformed_values_are_refused() {
        let cases = [
            (MASTER, "role", "sentinel"),
            (MASTER, "master_repl_offset", "-5"),
            (MASTER, "master_repl_offset", "12x"),
            (MASTER, "master_repl_offset", ""),
            (MASTER, "master_repl_offset", "+5"),
            (MASTER, "second_repl_offset", "abc"),
            (MASTER, "second_repl_offset", "-2"),
            (MASTER, "master_replid", "xyz"),
            (MASTER, "master_replid2", "00"),
            (MASTER, "run_id", "not-a-run-id-not-a-run-id-not-a-run-id!!"),
            (MASTER, "repl_backlog_active", "yes"),
            (MASTER, "loading", "2"),
            (MASTER, "connected_slaves", "one"),
            (REPLICA_UP, "master_link_status", "sideways"),
            (REPLICA_UP, "master_port", "0"),
            (REPLICA_UP, "master_port", "70000"),
            (REPLICA_UP, "master_host", ""),
            (REPLICA_UP, "master_sync_in_progress", "maybe"),
            (REPLICA_DOWN, "master_link_down_since_seconds", "never"),
        ];
        for (text, field, value) in cases {
            match parse_info(&with(text, field, value)) {
                Err(SnapshotError::Malformed { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}={value:?}: {other:?}"),
            }
        }
        // replid2 set without a second_repl_offset.
        let text = with(PROMOTED, "second_repl_offset", "-1");
        assert!(matches!(
            parse_info(&text),
            Err(SnapshotError::Malformed { field, .. }) if field == "second_repl_offset"
        ));
    }

    #[test]
    fn malformed_lines_and_sections() {
        let text = MASTER.replace("loading:0", "loading 0");
        assert!(matches!(
            parse_info(&text),
            Err(SnapshotError::MalformedLine { .. })
        ));
        let text = format!("{MASTER}master_repl_offset:70\r\n");
        assert_eq!(
            parse_info(&text),
            Err(SnapshotError::Duplicate("master_repl_offset".into()))
        );
        let text = MASTER.replace("# Keyspace", "");
        assert_eq!(
            parse_info(&text),
            Err(SnapshotError::MissingSection("Keyspace"))
        );
        assert_eq!(
            parse_info(""),
            Err(SnapshotError::MissingSection("Keyspace"))
        );
        let text = MASTER.replace("db3:keys=1", "db3:keyz=1");
        assert_eq!(
            parse_info(&text),
            Err(SnapshotError::Missing("db3.keys".into()))
        );
        let text = MASTER.replace("db3:keys=1", "db3:keys=lots");
        assert!(matches!(
            parse_info(&text),
            Err(SnapshotError::Malformed { field, .. }) if field == "db3.keys"
        ));
        let text = MASTER.replace("state=online", "state=online,offset");
        assert!(matches!(
            parse_info(&text),
            Err(SnapshotError::Malformed { field, .. }) if field == "slave0"
        ));
        let text = MASTER.replace("offset=64,lag=1", "offset=x,lag=1");
        assert!(matches!(
            parse_info(&text),
            Err(SnapshotError::Malformed { field, .. }) if field == "slave0.offset"
        ));
        let text = MASTER.replace(",lag=1", "");
        assert_eq!(
            parse_info(&text),
            Err(SnapshotError::Missing("slave0.lag".into()))
        );
    }

    #[test]
    fn unknown_fields_and_replica_states_are_tolerated() {
        let text = MASTER
            .replace("# Keyspace", "future_field:whatever\r\n# Keyspace")
            .replace("state=online", "state=rdb_transmitted");
        let s = parse(&text);
        assert_eq!(
            s.replicas[0].state,
            ReplicaState::Other("rdb_transmitted".into())
        );
    }

    #[test]
    fn a_snapshot_only_connection_shows_as_a_replica_without_a_port() {
        // What `redis-cli --rdb` and redha's dataset save look like while they run:
        // a replica line with port 0. The Redis is healthy all the same.
        let extra = "slave1:ip=127.0.0.1,port=0,state=wait_bgsave,offset=0,lag=0\r\n";
        let text = MASTER.replace(
            "master_failover_state",
            &format!("{extra}master_failover_state"),
        );
        let s = parse(&text);
        assert_eq!(s.replicas.last().map(|r| r.port), Some(0), "{text}");
        // A master's own port of 0 is still malformed.
        let bad = REPLICA_UP.replace("master_port:27101", "master_port:0");
        assert!(parse_info(&bad).is_err());
    }
}
