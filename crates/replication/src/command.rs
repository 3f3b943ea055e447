//! What the planner asks for: Redis commands, addressed to our Redis or the peer's.

use std::fmt;
use std::time::Duration;

/// A Redis address as the other host reaches it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Which Redis a command goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Ours.
    Local,
    /// The peer's.
    Peer,
}

impl Target {
    /// The other one.
    pub fn other(self) -> Target {
        match self {
            Target::Local => Target::Peer,
            Target::Peer => Target::Local,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Local => "local",
            Target::Peer => "peer",
        })
    }
}

/// A Redis command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `REPLICAOF <other> <port>` on `target`: it follows the other Redis.
    ReplicaOf(Target),
    /// `REPLICAOF NO ONE` on the target: it becomes a master, keeping its history.
    ReplicaOfNoOne(Target),
    /// `CLIENT PAUSE <ms> WRITE` on the target: writes wait, reads and replication go on.
    /// It counts as a fence only once Redis has answered OK
    /// ([`Planner::record`](crate::Planner::record)).
    PauseWrites(Target, Duration),
    /// `CLIENT UNPAUSE` on the target.
    Unpause(Target),
    /// Save the target's whole dataset as a named RDB file before it is resynced over
    /// data that its new source's history does not contain.
    SaveDataset(Target),
    /// The isolation fence on our Redis: `CONFIG SET min-replicas-to-write 1` (on) or
    /// `0` (off), with `min-replicas-max-lag` the configured isolation timeout. While
    /// on, a master that has lost its replica for that long refuses writes.
    IsolationFence(bool),
}

impl Command {
    /// The command and its target without arguments, for metrics labels
    /// (`local REPLICAOF NO ONE`).
    pub fn kind(&self) -> &'static str {
        match self {
            Command::ReplicaOf(Target::Local) => "local REPLICAOF",
            Command::ReplicaOf(Target::Peer) => "peer REPLICAOF",
            Command::ReplicaOfNoOne(Target::Local) => "local REPLICAOF NO ONE",
            Command::ReplicaOfNoOne(Target::Peer) => "peer REPLICAOF NO ONE",
            Command::PauseWrites(Target::Local, _) => "local CLIENT PAUSE WRITE",
            Command::PauseWrites(Target::Peer, _) => "peer CLIENT PAUSE WRITE",
            Command::Unpause(Target::Local) => "local CLIENT UNPAUSE",
            Command::Unpause(Target::Peer) => "peer CLIENT UNPAUSE",
            Command::SaveDataset(Target::Local) => "local save dataset",
            Command::SaveDataset(Target::Peer) => "peer save dataset",
            Command::IsolationFence(true) => "local isolation fence on",
            Command::IsolationFence(false) => "local isolation fence off",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::ReplicaOf(t) => write!(f, "{t}: REPLICAOF <{}>", t.other()),
            Command::ReplicaOfNoOne(t) => write!(f, "{t}: REPLICAOF NO ONE"),
            Command::PauseWrites(t, d) => write!(f, "{t}: CLIENT PAUSE {} WRITE", d.as_millis()),
            Command::Unpause(t) => write!(f, "{t}: CLIENT UNPAUSE"),
            Command::SaveDataset(t) => write!(f, "{t}: save the dataset (SYNC to an RDB file)"),
            Command::IsolationFence(on) => write!(
                f,
                "local: CONFIG SET min-replicas-to-write {}",
                u8::from(*on)
            ),
        }
    }
}
