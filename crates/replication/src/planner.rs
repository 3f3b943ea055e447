//! The rules (sans-IO): given the role, the local and the peer snapshot and the time,
//! which Redis commands to send.
//!
//! The rules keep three promises (DESIGN.md, invariants 3 to 5):
//! - a Redis is never made the replica of a dataset older than, or unrelated to, its
//!   own, and an empty restarted Redis is never a source;
//! - a node promotes its Redis as soon as it has seen that it holds the newest data
//!   reachable, never after a fixed sleep;
//! - start-up order does not matter.
//!
//! A master whose old master is still reachable fences it (pauses its writes) before
//! the last catch-up, so that no write it acknowledged is left behind.
//!
//! After a split where both sides went on writing past their common offset, no
//! partial resync is possible either way: the side that went on further is kept and
//! the other is resynced from it, losing its bytes past the fork (logged, with the
//! count). Two unrelated datasets that both hold keys are never resynced.

use std::fmt;
use std::time::{Duration, Instant};

use health::{Relation, Snapshot, relation};

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

/// What the planner needs to know besides the snapshots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannerConfig {
    /// The peer's Redis, as our Redis reaches it.
    pub peer: Endpoint,
    /// Our Redis, as the peer's Redis reaches it.
    pub local: Endpoint,
    /// How long a promotion waits for the last catch-up (default 10 s).
    pub catch_up_timeout: Duration,
    /// How often to look again while an operation is under way.
    pub fast_poll: Duration,
    /// How often to look again otherwise.
    pub slow_poll: Duration,
}

/// The node's role, as the agent maps it from its VRRP state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// We hold the VIP: our Redis must be the writable one.
    Master,
    /// We do not hold the VIP. `peer_is_master` says whether the VRRP master we hear
    /// is the peer.
    Backup {
        /// The peer holds the VIP.
        peer_is_master: bool,
    },
    /// Out of the election (our Redis is down, or not eligible).
    Fault,
    /// Planned stop: hand over to the peer before leaving.
    Stopping,
}

/// Which Redis a command goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Ours.
    Local,
    /// The peer's.
    Peer,
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
    PauseWrites(Target, Duration),
    /// `CLIENT UNPAUSE` on the target.
    Unpause(Target),
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
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::ReplicaOf(t) => write!(f, "{t}: REPLICAOF <{}>", other(*t)),
            Command::ReplicaOfNoOne(t) => write!(f, "{t}: REPLICAOF NO ONE"),
            Command::PauseWrites(t, d) => write!(f, "{t}: CLIENT PAUSE {} WRITE", d.as_millis()),
            Command::Unpause(t) => write!(f, "{t}: CLIENT UNPAUSE"),
        }
    }
}

fn other(t: Target) -> Target {
    match t {
        Target::Local => Target::Peer,
        Target::Peer => Target::Local,
    }
}

/// The rule that decided a plan, with what it compared. Its `Display` is the log line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Our Redis is down or answers strangely: nothing to do with it.
    LocalDown,
    /// Our Redis is empty with no history while the peer holds data: we must not
    /// hold the VIP; the node with the data must.
    LocalEmptyPeerHasData {
        /// Keys the peer holds.
        peer_keys: u64,
    },
    /// Master, our Redis is master, the peer's is our replica with its link up.
    Steady {
        /// Our offset.
        local_offset: u64,
        /// The replica's offset.
        peer_offset: u64,
    },
    /// Master, our Redis is master and the peer's is unreachable.
    MasterAlone,
    /// Master, the peer's Redis follows us but its link is not up yet.
    ReplicaLinking,
    /// Master and our Redis is a replica, but its source is gone or useless
    /// (unreachable, empty, not a master): promote at once.
    PromoteNow {
        /// Why there is nothing to wait for.
        why: &'static str,
    },
    /// Master and our Redis follows the peer's, which is still a master (its agent
    /// died, or it hands over): pause its writes before the last catch-up.
    FencePeer {
        /// Our offset.
        local_offset: u64,
        /// The peer's offset.
        peer_offset: u64,
    },
    /// Waiting for our offset to reach the fenced peer's.
    CatchingUp {
        /// Our offset.
        local_offset: u64,
        /// The peer's current offset.
        peer_offset: u64,
        /// Time left before promoting anyway.
        left: Duration,
    },
    /// Caught up: promote, then make the peer our replica.
    Promote {
        /// Our offset.
        local_offset: u64,
        /// The peer's offset.
        peer_offset: u64,
    },
    /// The catch-up did not finish in time: promote anyway; the bytes missing are lost.
    PromoteAfterTimeout {
        /// Our offset.
        local_offset: u64,
        /// The peer's offset.
        peer_offset: u64,
    },
    /// Master, the peer's data is a prefix of ours (or it has none): make it our
    /// replica.
    AttachPeer {
        /// How the histories relate.
        relation: Relation,
    },
    /// A split healed after both sides went on past their common offset: the side
    /// that went on further is kept; the other side's bytes past the fork are
    /// discarded by the resync.
    SplitBrainResolved {
        /// How the histories relate.
        relation: Relation,
        /// Which side is kept.
        kept: Target,
        /// Bytes past the fork that the other side loses.
        discarded: u64,
    },
    /// Two unrelated datasets, both holding keys: no resync either way (one side's
    /// data would be wiped); an operator decides.
    SplitBrain {
        /// How the histories relate.
        relation: Relation,
    },
    /// Backup: the peer holds the VIP and its data continues ours: follow it.
    Follow {
        /// How the histories relate.
        relation: Relation,
    },
    /// Backup and our Redis follows the peer's with its link up.
    Following {
        /// Our offset.
        local_offset: u64,
    },
    /// Backup and our Redis's link to the peer's dropped while the peer is
    /// unreachable or holds another history (restarted empty): detach at once, so
    /// that a full sync cannot flush our data.
    Detach {
        /// What the peer looks like.
        why: &'static str,
    },
    /// Backup and our Redis's link is down (a sync under way, or a blip), but the peer
    /// holds everything we hold: the sync loses nothing.
    LinkDownSameHistory,
    /// Backup and our data is ahead of the master's: it will pull from us.
    LocalAhead {
        /// How the histories relate.
        relation: Relation,
    },
    /// Nothing to do yet (no VRRP master, or the peer's Redis is not a master).
    Wait {
        /// For what.
        why: &'static str,
    },
    /// Stopping: our writes are paused; waiting for the replica to catch up.
    HandoverCatchingUp {
        /// Our offset.
        local_offset: u64,
        /// The replica's offset.
        peer_offset: u64,
    },
    /// Stopping: ready to hand the VIP over.
    HandoverReady {
        /// Why it is ready.
        why: &'static str,
    },
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::LocalDown => f.write_str("local Redis is down or unreadable"),
            Rule::LocalEmptyPeerHasData { peer_keys } => write!(
                f,
                "local Redis is empty with no history while the peer holds {peer_keys} keys: not eligible for the VIP"
            ),
            Rule::Steady {
                local_offset,
                peer_offset,
            } => write!(
                f,
                "steady: peer is our replica (offsets {local_offset} / {peer_offset})"
            ),
            Rule::MasterAlone => f.write_str("master; peer Redis unreachable"),
            Rule::ReplicaLinking => f.write_str("peer Redis follows us; link not up yet"),
            Rule::PromoteNow { why } => write!(f, "promote at once: {why}"),
            Rule::FencePeer {
                local_offset,
                peer_offset,
            } => write!(
                f,
                "old master reachable: pausing its writes before the last catch-up (offsets {local_offset} / {peer_offset})"
            ),
            Rule::CatchingUp {
                local_offset,
                peer_offset,
                left,
            } => write!(
                f,
                "catching up: local offset {local_offset} of {peer_offset} ({} bytes, {left:?} left)",
                peer_offset.saturating_sub(*local_offset)
            ),
            Rule::Promote {
                local_offset,
                peer_offset,
            } => write!(
                f,
                "caught up (local offset {local_offset} >= peer {peer_offset}): promote, peer becomes our replica"
            ),
            Rule::PromoteAfterTimeout {
                local_offset,
                peer_offset,
            } => write!(
                f,
                "catch-up timed out at offset {local_offset} of {peer_offset}: promoting; {} bytes are lost",
                peer_offset.saturating_sub(*local_offset)
            ),
            Rule::AttachPeer { relation } => write!(
                f,
                "peer's data is contained in ours ({}): it becomes our replica",
                describe(relation)
            ),
            Rule::SplitBrainResolved {
                relation,
                kept,
                discarded,
            } => write!(
                f,
                "SPLIT BRAIN healed ({}): keeping the {kept} side, which went on further; the other side's {discarded} bytes past the fork are discarded",
                describe(relation)
            ),
            Rule::SplitBrain { relation } => write!(
                f,
                "SPLIT BRAIN: two unrelated datasets ({}); refusing to resync either way, operator action needed",
                describe(relation)
            ),
            Rule::Follow { relation } => {
                write!(
                    f,
                    "peer holds the VIP and our history ({}): follow it",
                    describe(relation)
                )
            }
            Rule::Following { local_offset } => {
                write!(f, "following the peer, link up (offset {local_offset})")
            }
            Rule::Detach { why } => write!(
                f,
                "link to the peer's Redis dropped and {why}: detaching to keep our data"
            ),
            Rule::LinkDownSameHistory => f.write_str(
                "link to the peer's Redis is down (syncing?); it holds all we hold, waiting",
            ),
            Rule::LocalAhead { relation } => write!(
                f,
                "our data is ahead of the master's ({}): waiting for it to pull from us",
                describe(relation)
            ),
            Rule::Wait { why } => write!(f, "waiting: {why}"),
            Rule::HandoverCatchingUp {
                local_offset,
                peer_offset,
            } => write!(
                f,
                "handing over: writes paused, replica at {peer_offset} of {local_offset}"
            ),
            Rule::HandoverReady { why } => write!(f, "ready to hand over: {why}"),
        }
    }
}

/// A relation in words, with its offsets.
pub fn describe(relation: &Relation) -> String {
    match relation {
        Relation::Same {
            local_offset,
            peer_offset,
        } => format!("same history, offsets local {local_offset} / peer {peer_offset}"),
        Relation::PeerContinuesLocal {
            local_offset,
            peer_offset,
            fork_offset,
        } => format!(
            "peer continues our history from offset {fork_offset}, local {local_offset} / peer {peer_offset}"
        ),
        Relation::LocalContinuesPeer {
            local_offset,
            peer_offset,
            fork_offset,
        } => format!(
            "we continue the peer's history from offset {fork_offset}, local {local_offset} / peer {peer_offset}"
        ),
        Relation::Diverged {
            local_offset,
            peer_offset,
            common_offset,
        } => format!(
            "diverged after offset {common_offset}, local {local_offset} / peer {peer_offset}"
        ),
        Relation::Unrelated => "unrelated histories".to_string(),
    }
}

/// What to do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Commands to run, in order; stop at the first failure.
    pub commands: Vec<Command>,
    /// Whether this node may hold the VIP (its Redis is up and not an empty copy
    /// while the peer holds data).
    pub eligible: bool,
    /// Stopping: whether the VIP may be handed over now.
    pub handover_ready: bool,
    /// The rule that decided.
    pub rule: Rule,
    /// When to plan again at the latest.
    pub next_check: Duration,
}

/// An operation that spans several plans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operation {
    /// Promoting: the peer is fenced; our Redis catches up until `deadline`.
    CatchUp { deadline: Instant },
    /// Stopping: our writes are paused; the replica catches up until `deadline`.
    Handover { deadline: Instant },
}

/// The planner: the rules plus the one operation under way.
#[derive(Debug)]
pub struct Planner {
    config: PlannerConfig,
    operation: Option<Operation>,
}

impl Planner {
    /// A planner with nothing under way.
    pub fn new(config: PlannerConfig) -> Self {
        Planner {
            config,
            operation: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PlannerConfig {
        &self.config
    }

    /// Decides what to do now. `local` and `peer` are fresh snapshots, `None` when
    /// that Redis is down, unreachable or answered strangely.
    pub fn plan(
        &mut self,
        now: Instant,
        role: Role,
        local: Option<&Snapshot>,
        peer: Option<&Snapshot>,
    ) -> Plan {
        let Some(local) = local else {
            self.operation = None;
            return self.plan_of(Vec::new(), false, Rule::LocalDown, role == Role::Stopping);
        };
        if let Some(peer_keys) = peer
            .filter(|p| local.is_fresh_empty() && p.keys > 0)
            .map(|p| p.keys)
        {
            // Not eligible; while out of the election we may still copy the peer's
            // data, which makes us eligible again.
            let mut plan = self.as_backup(now, local, peer, true);
            plan.eligible = false;
            if plan.commands.is_empty() && !matches!(plan.rule, Rule::Following { .. }) {
                plan.rule = Rule::LocalEmptyPeerHasData { peer_keys };
            }
            plan.handover_ready = role == Role::Stopping;
            return plan;
        }
        if let Some(peer) = peer.filter(|p| local.is_master() && p.is_master())
            && peer_has_more(local, peer, &relation(local, peer))
        {
            // Two masters, and the peer's holds writes ours lacks (a healed split, or
            // a start-up): the node with the newer data must hold the VIP, so this one
            // steps out of the election and follows the peer instead of copying its
            // data while holding the VIP (which would refuse writes meanwhile, and
            // acknowledge writes on an old copy). Following it makes us eligible again.
            self.operation = None;
            let mut plan = self.as_backup(now, local, Some(peer), true);
            plan.eligible = false;
            plan.handover_ready = role == Role::Stopping;
            return plan;
        }
        match role {
            Role::Master => self.as_master(now, local, peer),
            Role::Backup { peer_is_master } => self.as_backup(now, local, peer, peer_is_master),
            Role::Fault => self.as_backup(now, local, peer, false),
            Role::Stopping => self.as_stopping(now, local, peer),
        }
    }

    fn plan_of(
        &self,
        commands: Vec<Command>,
        eligible: bool,
        rule: Rule,
        handover_ready: bool,
    ) -> Plan {
        let next_check = if self.operation.is_some() {
            self.config.fast_poll
        } else {
            self.config.slow_poll
        };
        Plan {
            commands,
            eligible,
            handover_ready,
            rule,
            next_check,
        }
    }

    fn follows(&self, redis: &Snapshot, endpoint: &Endpoint) -> bool {
        redis
            .master
            .as_ref()
            .is_some_and(|m| m.host == endpoint.host && m.port == endpoint.port)
    }

    fn as_master(&mut self, now: Instant, local: &Snapshot, peer: Option<&Snapshot>) -> Plan {
        if local.is_replica() {
            return self.promote(now, local, peer);
        }
        if matches!(self.operation, Some(Operation::CatchUp { .. })) {
            self.operation = None;
        }
        let Some(peer) = peer else {
            return self.plan_of(Vec::new(), true, Rule::MasterAlone, false);
        };
        if peer.is_replica() && self.follows(peer, &self.config.local) {
            let rule = if peer.link_up() {
                Rule::Steady {
                    local_offset: local.offset(),
                    peer_offset: peer.offset(),
                }
            } else {
                Rule::ReplicaLinking
            };
            return self.plan_of(Vec::new(), true, rule, false);
        }
        // The peer's Redis is a master (or follows a third party): compare histories.
        // (A peer that holds more was handled in `plan`: we step out and follow it.)
        let relation = relation(local, peer);
        if peer_holds_nothing_of_its_own(local, peer, &relation) {
            let rule = match divergence(&relation) {
                Some((_, theirs)) if theirs > 0 => Rule::SplitBrainResolved {
                    relation,
                    kept: Target::Local,
                    discarded: theirs,
                },
                _ => Rule::AttachPeer { relation },
            };
            return self.plan_of(vec![Command::ReplicaOf(Target::Peer)], true, rule, false);
        }
        self.plan_of(Vec::new(), true, Rule::SplitBrain { relation }, false)
    }

    /// Master while our Redis is a replica: catch up from the peer (fenced) and
    /// promote, or promote at once when there is nothing to wait for.
    fn promote(&mut self, now: Instant, local: &Snapshot, peer: Option<&Snapshot>) -> Plan {
        let promote_now = |planner: &mut Planner, why| {
            planner.operation = None;
            let commands = vec![Command::ReplicaOfNoOne(Target::Local)];
            planner.plan_of(commands, true, Rule::PromoteNow { why }, false)
        };
        if !self.follows(local, &self.config.peer) {
            return promote_now(
                self,
                "our Redis follows neither the peer nor anyone we know",
            );
        }
        let Some(peer) = peer else {
            return promote_now(self, "the peer's Redis is unreachable");
        };
        if peer.is_fresh_empty() {
            return promote_now(
                self,
                "the peer's Redis is empty with no history (restarted)",
            );
        }
        if !peer.is_master() {
            return promote_now(self, "the peer's Redis is not a master");
        }
        let local_offset = local.offset();
        let peer_offset = peer.offset();
        let Some(Operation::CatchUp { deadline }) = self.operation else {
            self.operation = Some(Operation::CatchUp {
                deadline: now + self.config.catch_up_timeout,
            });
            let commands = vec![Command::PauseWrites(Target::Peer, self.pause_length())];
            return self.plan_of(
                commands,
                true,
                Rule::FencePeer {
                    local_offset,
                    peer_offset,
                },
                false,
            );
        };
        let same_history = local.master_replid == peer.master_replid;
        let caught_up = same_history && local.link_up() && local_offset >= peer_offset;
        let finish = vec![
            Command::ReplicaOfNoOne(Target::Local),
            Command::ReplicaOf(Target::Peer),
            Command::Unpause(Target::Peer),
        ];
        if caught_up {
            self.operation = None;
            return self.plan_of(
                finish,
                true,
                Rule::Promote {
                    local_offset,
                    peer_offset,
                },
                false,
            );
        }
        if now >= deadline && same_history {
            self.operation = None;
            return self.plan_of(
                finish,
                true,
                Rule::PromoteAfterTimeout {
                    local_offset,
                    peer_offset,
                },
                false,
            );
        }
        // Without the same history (a full sync still loading), promoting would serve
        // a partial or empty dataset: keep waiting, and keep the peer fenced.
        let mut commands = Vec::new();
        if now >= deadline {
            self.operation = Some(Operation::CatchUp {
                deadline: now + self.config.catch_up_timeout,
            });
            commands.push(Command::PauseWrites(Target::Peer, self.pause_length()));
        }
        let left = deadline.saturating_duration_since(now);
        self.plan_of(
            commands,
            true,
            Rule::CatchingUp {
                local_offset,
                peer_offset,
                left,
            },
            false,
        )
    }

    fn as_backup(
        &mut self,
        _now: Instant,
        local: &Snapshot,
        peer: Option<&Snapshot>,
        peer_is_master: bool,
    ) -> Plan {
        self.operation = None;
        let following_peer = local.is_replica() && self.follows(local, &self.config.peer);
        if following_peer {
            if local.link_up() {
                return self.plan_of(
                    Vec::new(),
                    true,
                    Rule::Following {
                        local_offset: local.offset(),
                    },
                    false,
                );
            }
            if local.is_fresh_empty() {
                return self.plan_of(
                    Vec::new(),
                    true,
                    Rule::Wait {
                        why: "our Redis is empty; its link is not up yet",
                    },
                    false,
                );
            }
            let Some(peer) = peer else {
                let why = "the peer's Redis is unreachable";
                return self.plan_of(
                    vec![Command::ReplicaOfNoOne(Target::Local)],
                    true,
                    Rule::Detach { why },
                    false,
                );
            };
            // While the link is down (a full sync under way, or a blip), stay only if
            // the peer holds everything we hold: then a resync loses nothing.
            let relation = relation(local, peer);
            return match local_holds_nothing_of_its_own(local, peer, &relation) {
                true => self.plan_of(Vec::new(), true, Rule::LinkDownSameHistory, false),
                false => {
                    let why = if peer.is_fresh_empty() {
                        "the peer's Redis restarted empty"
                    } else {
                        "the peer's Redis holds another history"
                    };
                    self.plan_of(
                        vec![Command::ReplicaOfNoOne(Target::Local)],
                        true,
                        Rule::Detach { why },
                        false,
                    )
                }
            };
        }
        let Some(peer) = peer else {
            return self.plan_of(
                Vec::new(),
                true,
                Rule::Wait {
                    why: "the peer's Redis is unreachable",
                },
                false,
            );
        };
        if !peer_is_master {
            return self.plan_of(
                Vec::new(),
                true,
                Rule::Wait {
                    why: "the peer does not hold the VIP",
                },
                false,
            );
        }
        if !peer.is_master() {
            return self.plan_of(
                Vec::new(),
                true,
                Rule::Wait {
                    why: "the peer's Redis is not a master yet",
                },
                false,
            );
        }
        let relation = relation(local, peer);
        if local_holds_nothing_of_its_own(local, peer, &relation) {
            let rule = match divergence(&relation) {
                Some((ours, _)) if ours > 0 => Rule::SplitBrainResolved {
                    relation,
                    kept: Target::Peer,
                    discarded: ours,
                },
                _ => Rule::Follow { relation },
            };
            return self.plan_of(vec![Command::ReplicaOf(Target::Local)], true, rule, false);
        }
        if peer_holds_nothing_of_its_own(local, peer, &relation) {
            return self.plan_of(Vec::new(), true, Rule::LocalAhead { relation }, false);
        }
        self.plan_of(Vec::new(), true, Rule::SplitBrain { relation }, false)
    }

    fn as_stopping(&mut self, now: Instant, local: &Snapshot, peer: Option<&Snapshot>) -> Plan {
        let live_replica = peer.filter(|p| {
            local.is_master()
                && p.is_replica()
                && self.follows(p, &self.config.local)
                && p.link_up()
        });
        let Some(peer) = live_replica else {
            self.operation = None;
            let why = "the peer's Redis is not our live replica: nothing to wait for";
            return self.plan_of(Vec::new(), true, Rule::HandoverReady { why }, true);
        };
        let (local_offset, peer_offset) = (local.offset(), peer.offset());
        let Some(Operation::Handover { deadline }) = self.operation else {
            self.operation = Some(Operation::Handover {
                deadline: now + self.config.catch_up_timeout,
            });
            let commands = vec![Command::PauseWrites(Target::Local, self.pause_length())];
            return self.plan_of(
                commands,
                true,
                Rule::HandoverCatchingUp {
                    local_offset,
                    peer_offset,
                },
                false,
            );
        };
        if peer_offset >= local_offset {
            self.operation = None;
            return self.plan_of(
                Vec::new(),
                true,
                Rule::HandoverReady {
                    why: "the replica caught up",
                },
                true,
            );
        }
        if now >= deadline {
            self.operation = None;
            let why = "the replica did not catch up in time";
            return self.plan_of(Vec::new(), true, Rule::HandoverReady { why }, true);
        }
        self.plan_of(
            Vec::new(),
            true,
            Rule::HandoverCatchingUp {
                local_offset,
                peer_offset,
            },
            false,
        )
    }

    /// A pause outlives the catch-up it protects, so that it cannot lapse before the
    /// promotion, and ends by itself if the agent that set it dies.
    fn pause_length(&self) -> Duration {
        self.config.catch_up_timeout + Duration::from_secs(2)
    }
}

/// After a split where both sides went on past their common offset: how many bytes
/// of its own each side holds (local, peer).
fn divergence(relation: &Relation) -> Option<(u64, u64)> {
    match *relation {
        Relation::Diverged {
            local_offset,
            peer_offset,
            common_offset,
        } => Some((
            local_offset.saturating_sub(common_offset),
            peer_offset.saturating_sub(common_offset),
        )),
        _ => None,
    }
}

/// Does the peer hold writes we lack, so that we must copy them before serving? On a
/// split where both sides went on, the side that went on further is kept (the other
/// side's bytes past the fork are discarded, and logged).
fn peer_has_more(local: &Snapshot, peer: &Snapshot, relation: &Relation) -> bool {
    match *relation {
        Relation::Same {
            local_offset,
            peer_offset,
        } => peer_offset > local_offset,
        Relation::PeerContinuesLocal {
            peer_offset,
            fork_offset,
            ..
        } => peer_offset > fork_offset,
        Relation::Diverged { .. } => divergence(relation).is_some_and(|(l, p)| p > l),
        Relation::LocalContinuesPeer { .. } => false,
        Relation::Unrelated => local.keys == 0 && peer.keys > 0 && !peer.is_fresh_empty(),
    }
}

/// May the peer follow us? Its data is contained in ours, or it has none, or (after a
/// split) it went on no further than we did.
fn peer_holds_nothing_of_its_own(local: &Snapshot, peer: &Snapshot, relation: &Relation) -> bool {
    match *relation {
        Relation::Same {
            local_offset,
            peer_offset,
        } => peer_offset <= local_offset,
        Relation::LocalContinuesPeer { .. } => true,
        Relation::PeerContinuesLocal {
            peer_offset,
            fork_offset,
            ..
        } => peer_offset <= fork_offset,
        Relation::Diverged { .. } => divergence(relation).is_some_and(|(l, p)| p <= l),
        Relation::Unrelated => peer.is_fresh_empty() || (peer.keys == 0 && local.keys > 0),
    }
}

/// May we follow the peer? Our data is contained in its, or we have none, or (after
/// a split) we went on no further than it did.
fn local_holds_nothing_of_its_own(local: &Snapshot, peer: &Snapshot, relation: &Relation) -> bool {
    match *relation {
        Relation::Same {
            local_offset,
            peer_offset,
        } => local_offset <= peer_offset,
        Relation::PeerContinuesLocal { .. } => true,
        Relation::LocalContinuesPeer {
            local_offset,
            fork_offset,
            ..
        } => local_offset <= fork_offset,
        Relation::Diverged { .. } => divergence(relation).is_some_and(|(l, p)| l <= p),
        Relation::Unrelated => local.is_fresh_empty() || (local.keys == 0 && peer.keys > 0),
    }
}
