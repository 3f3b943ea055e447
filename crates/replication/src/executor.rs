//! Runs the planner's commands against the two Redis servers.

use std::time::Duration;

use health::{Client, ClientError, Snapshot};

use crate::planner::{Command, Endpoint, Target};

/// A command that failed.
#[derive(Debug, thiserror::Error)]
#[error("{command}: {source}")]
pub struct ExecutorError {
    /// The command, as the log shows it.
    pub command: String,
    /// The Redis client's error (it names the server).
    #[source]
    pub source: ClientError,
}

/// Clients for the local and the peer Redis, and how each reaches the other.
#[derive(Debug)]
pub struct Executor {
    local: Client,
    peer: Client,
    local_endpoint: Endpoint,
    peer_endpoint: Endpoint,
}

impl Executor {
    /// An executor over two clients. `local_endpoint` is how the peer's Redis reaches
    /// ours, `peer_endpoint` how ours reaches the peer's.
    pub fn new(
        local: Client,
        peer: Client,
        local_endpoint: Endpoint,
        peer_endpoint: Endpoint,
    ) -> Self {
        Executor {
            local,
            peer,
            local_endpoint,
            peer_endpoint,
        }
    }

    fn client(&mut self, target: Target) -> &mut Client {
        match target {
            Target::Local => &mut self.local,
            Target::Peer => &mut self.peer,
        }
    }

    /// Fresh snapshots of both Redis servers, read concurrently; an error for one
    /// that is down, unreachable or answers strangely. `peer_limit` bounds the
    /// peer's read more tightly than its client's timeouts (used when the peer was
    /// unreachable at the last look: a partitioned peer must not delay a promotion);
    /// past it the peer counts as unreachable.
    pub async fn observe(
        &mut self,
        peer_limit: Option<Duration>,
    ) -> (Result<Snapshot, ClientError>, Option<Snapshot>) {
        let peer = async {
            match peer_limit {
                None => self.peer.info().await.ok(),
                Some(limit) => tokio::time::timeout(limit, self.peer.info())
                    .await
                    .ok()
                    .and_then(Result::ok),
            }
        };
        tokio::join!(self.local.info(), peer)
    }

    /// Runs one command.
    pub async fn run(&mut self, command: &Command) -> Result<(), ExecutorError> {
        let wrap = |source| ExecutorError {
            command: command.to_string(),
            source,
        };
        match command {
            Command::ReplicaOf(target) => {
                let source = match target {
                    Target::Local => self.peer_endpoint.clone(),
                    Target::Peer => self.local_endpoint.clone(),
                };
                self.client(*target)
                    .replicaof(&source.host, source.port)
                    .await
                    .map_err(wrap)
            }
            Command::ReplicaOfNoOne(target) => {
                self.client(*target).replicaof_no_one().await.map_err(wrap)
            }
            Command::PauseWrites(target, duration) => self
                .client(*target)
                .client_pause_write(*duration)
                .await
                .map_err(wrap),
            Command::Unpause(target) => self.client(*target).client_unpause().await.map_err(wrap),
        }
    }

    /// The endpoint the command's source is, for logs (`REPLICAOF host port`).
    pub fn source_of(&self, command: &Command) -> Option<&Endpoint> {
        match command {
            Command::ReplicaOf(Target::Local) => Some(&self.peer_endpoint),
            Command::ReplicaOf(Target::Peer) => Some(&self.local_endpoint),
            _ => None,
        }
    }
}
