//! Runs the planner's commands against the two Redis servers.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use health::{Client, ClientError, Snapshot};

use crate::claim::{Claim, PeerClaim};
use crate::command::{Command, Endpoint, Target};
use crate::planner::PeerFailure;

/// How often the named connection to our Redis is used while a long command runs
/// on another one: well within the two check intervals after which the peer's agent
/// takes a claim for stale ([`PeerClaim`]).
const CLAIM_KEEPALIVE: Duration = Duration::from_millis(500);

/// A command that failed.
#[derive(Debug, thiserror::Error)]
#[error("{command}: {source}")]
pub struct ExecutorError {
    /// The command, as the log shows it.
    pub command: String,
    /// What went wrong (it names the server).
    #[source]
    pub source: Failure,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The Redis client's error.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Saving a dataset failed.
    #[error(transparent)]
    Dump(#[from] health::DumpError),
    /// A command needs a setting that is not configured.
    #[error("{0}")]
    NotConfigured(&'static str),
    /// The directory for saved datasets could not be made.
    #[error("{}: {source}", dir.display())]
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// Where saved datasets go and how long a save may take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaveConfig {
    /// The directory of the RDB files.
    pub dir: PathBuf,
    /// The deadline of one save.
    pub timeout: Duration,
}

/// Clients for the local and the peer Redis, and how each reaches the other.
#[derive(Debug)]
pub struct Executor {
    local: Client,
    peer: Client,
    local_endpoint: Endpoint,
    peer_endpoint: Endpoint,
    save: Option<SaveConfig>,
    isolation_timeout: Option<Duration>,
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
            save: None,
            isolation_timeout: None,
        }
    }

    /// Where [`Command::SaveDataset`] saves.
    pub fn with_save(mut self, save: SaveConfig) -> Self {
        self.save = Some(save);
        self
    }

    /// The `min-replicas-max-lag` of [`Command::IsolationFence`].
    pub fn with_isolation_timeout(mut self, timeout: Duration) -> Self {
        self.isolation_timeout = Some(timeout);
        self
    }

    /// Whether the connection to the peer's Redis is open: a future that resolves
    /// when it drops (see [`Client::connection_lost`]).
    pub fn peer_connection_lost(&self) -> impl Future<Output = ()> + Send + 'static {
        self.peer.connection_lost()
    }

    /// Publishes this agent's claim as the name of its connection to our Redis
    /// (sent again on every new connection).
    pub async fn publish_claim(&mut self, claim: &Claim) -> Result<(), ClientError> {
        self.local.client_setname(&claim.to_name()).await
    }

    /// The claim of the peer's agent, read from the peer's Redis (`CLIENT LIST`):
    /// `Ok(None)` when no agent claims anything there.
    ///
    /// A live agent uses its named connection at every look at its Redis (once a
    /// `check_interval` at least) and every [`CLAIM_KEEPALIVE`] while it saves a
    /// dataset over another connection, so the connection's `idle` stays below that
    /// (the pair is assumed to run the same `check_interval`). A
    /// claim whose connection has been idle for `stale_after` or longer speaks for
    /// an agent that is not acting (stopped, hung): it is returned as
    /// [`PeerClaim::Stale`], never trusted as a live master's word.
    pub async fn peer_claim(&mut self, stale_after: Duration) -> Result<PeerClaim, ClientError> {
        let clients = self.peer.client_list().await?;
        Ok(PeerClaim::from_clients(&clients, stale_after))
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
    ) -> (Result<Snapshot, ClientError>, Result<Snapshot, PeerFailure>) {
        self.observe_abandoning(peer_limit, std::future::pending())
            .await
    }

    /// [`observe`](Self::observe), but a bounded read of the peer (`peer_limit`)
    /// is also abandoned the moment `abandon` resolves ([`PeerFailure::Unread`]: the
    /// node just became master, and a promotion must not wait on a silent peer).
    pub async fn observe_abandoning(
        &mut self,
        peer_limit: Option<Duration>,
        abandon: impl Future<Output = ()>,
    ) -> (Result<Snapshot, ClientError>, Result<Snapshot, PeerFailure>) {
        let peer = async {
            let failure = |e: ClientError| match e.is_connection_failure() {
                true => PeerFailure::Refused,
                false => PeerFailure::Silent,
            };
            let Some(limit) = peer_limit else {
                return self.peer.info().await.map_err(failure);
            };
            let read = tokio::select! {
                read = tokio::time::timeout(limit, self.peer.info()) => Some(read),
                () = abandon => None,
            };
            match read {
                Some(Ok(result)) => result.map_err(failure),
                Some(Err(_elapsed)) => {
                    // No answer within the limit: silent. The connection's state is
                    // unknown; start afresh.
                    self.peer.disconnect();
                    Err(PeerFailure::Silent)
                }
                None => {
                    // Cut short by `abandon`: nothing learnt.
                    self.peer.disconnect();
                    Err(PeerFailure::Unread)
                }
            }
        };
        tokio::join!(self.local.info(), peer)
    }

    /// In a pair there is one replica at a time: a full sync need not wait
    /// `repl-diskless-sync-delay` for more. Sets `repl-diskless-sync-max-replicas
    /// 1` on our Redis when it is at Redis's default (0, wait the whole delay);
    /// returns whether it changed anything. A value an operator set is left alone.
    pub async fn start_full_syncs_at_once(&mut self) -> Result<bool, ClientError> {
        const KEY: &str = "repl-diskless-sync-max-replicas";
        match self.local.config_get(KEY).await? {
            Some(value) if value == "0" => {
                self.local.config_set(KEY, "1").await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// A fresh snapshot of our Redis alone (the peer's is known unreachable and not
    /// worth waiting for again yet).
    pub async fn observe_local(&mut self) -> Result<Snapshot, ClientError> {
        self.local.info().await
    }

    /// Runs one command; returns what it produced worth logging (the path of a
    /// saved dataset).
    pub async fn run(&mut self, command: &Command) -> Result<Option<String>, ExecutorError> {
        let wrap = |source: Failure| ExecutorError {
            command: command.to_string(),
            source,
        };
        match command {
            Command::SaveDataset(target) => {
                let save = self
                    .save
                    .clone()
                    .ok_or(Failure::NotConfigured(
                        "no [replication] state_dir to save datasets in",
                    ))
                    .map_err(wrap)?;
                let stamp = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let name = format!("redha-{target}-{stamp}");
                let client = self.client(*target);
                let target = client.target().clone();
                std::fs::create_dir_all(&save.dir).map_err(|e| {
                    wrap(Failure::Dir {
                        dir: save.dir.clone(),
                        source: e,
                    })
                })?;
                let options = health::DumpOptions::within(save.timeout);
                let saving = health::save_rdb(&target, &save.dir, &name, &options);
                tokio::pin!(saving);
                // The save runs on a connection of its own and may take a while:
                // meanwhile our named connection stays in use, so that the peer's
                // agent does not take our claim for a stalled agent's.
                let saved = loop {
                    tokio::select! {
                        saved = &mut saving => break saved,
                        () = tokio::time::sleep(CLAIM_KEEPALIVE) => {
                            let _ = self.local.ping().await;
                        }
                    }
                }
                .map_err(|e| wrap(e.into()))?;
                return Ok(Some(format!(
                    "saved {} ({} bytes)",
                    saved.path.display(),
                    saved.bytes
                )));
            }
            Command::IsolationFence(on) => {
                let lag = self
                    .isolation_timeout
                    .ok_or(Failure::NotConfigured("no [replication] isolation_timeout"))
                    .map_err(wrap)?;
                let lag = lag.as_secs().max(1).to_string();
                let count = if *on { "1" } else { "0" };
                let client = &mut self.local;
                client
                    .config_set("min-replicas-max-lag", &lag)
                    .await
                    .map_err(|e| wrap(e.into()))?;
                client
                    .config_set("min-replicas-to-write", count)
                    .await
                    .map_err(|e| wrap(e.into()))?;
                return Ok(None);
            }
            _ => {}
        }
        let wrap = |source: ClientError| wrap(source.into());
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
            Command::SaveDataset(_) | Command::IsolationFence(_) => Ok(()),
        }
        .map(|()| None)
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
