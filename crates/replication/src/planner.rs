//! The rules (sans-IO): given the node's role, fresh snapshots of both Redis servers,
//! what else is known of the peer ([`Context`]) and the time, which Redis commands to
//! send and whether this node may hold the VIP.
//!
//! The rules keep the promises of DESIGN.md (invariants 3 to 5):
//! - a Redis is never made the replica of a dataset older than, or unrelated to, its
//!   own, and an empty restarted Redis is never a source;
//! - a node promotes its Redis as soon as it has seen that it holds the newest data
//!   reachable, never after a fixed sleep;
//! - start-up order does not matter.
//!
//! and those of the replication-safety work:
//! - a fence counts only once Redis confirmed it, and no promotion assumes a fence
//!   that failed; a fence that is abandoned is lifted at once;
//! - a catch-up that times out never demotes a reachable Redis that holds writes
//!   ours lacks: the data decides where the master stays;
//! - after a split where both sides took writes, the side promoted during the split
//!   is kept (see [`crate::standing`]) and the other's dataset is saved before it is
//!   resynced;
//! - of two VRRP masters whose Redis servers reach each other, the one that loses
//!   VRRP's tie-break leaves the election (see [`crate::claim`]);
//! - a promotion over a peer whose Redis went silent while its stream still
//!   reached ours (alive behind a slow link) holds our writes until the peer is
//!   read: the peer keeps the writes ours lacks, and ours takes none meanwhile;
//! - with an isolation timeout, a master that lost its replica and cannot tell that
//!   the peer is down stops acknowledging writes within that time.
//!
//! [`Planner::plan`] looks at one situation per function: our Redis down
//! ([`Rule::LocalDown`]), restarted empty, the node stopping, master with our Redis
//! a master, master with our Redis a replica (promotion), and backup or fault. Each
//! returns its rule and its commands; the isolation fence is added after, for any
//! plan that leaves or makes our Redis a master.

use std::time::{Duration, Instant};

use health::Snapshot;

use crate::claim::{Claim, ClaimState};
use crate::command::{Command, Endpoint, Target};
use crate::lineage::Lineage;
use crate::rule::Rule;
use crate::standing::{Standing, compare_known};

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
    /// With `Some`, the isolation fence is managed: a master whose replica has
    /// been gone this long refuses writes unless the peer is known to be down.
    pub isolation_timeout: Option<Duration>,
    /// How long two VRRP masters are left to VRRP (a healed split settles within
    /// an advert interval) before the one that loses the tie-break yields.
    pub yield_after: Duration,
    /// Our VRRP Master_Down_Interval: how long the peer's adverts had been missing
    /// when we became master. A replication stream heard more recently than that is
    /// a slow link, not a dead master (see [`Planner::hears_silent_master`]).
    pub master_down_interval: Duration,
}

/// How long a node that yielded to another VRRP master stays out of the election
/// before it tries again.
const YIELD_HOLD: Duration = Duration::from_secs(10);

/// Why a node whose Redis hears a master that does not answer stays out.
const SLOW_MASTER: &str = "the peer's Redis does not answer, but ours still hears its replication stream: it is alive, only slow to reach; out of the election while it is so";

/// How long after a refused fence the planner tries it again.
const FENCE_RETRY: Duration = Duration::from_secs(1);

/// The shortest silence of the replication stream that counts as the master being
/// gone, whatever the advert interval: Redis counts `master_last_io_seconds_ago` in
/// whole seconds (see [`Planner::hears_silent_master`]).
const STREAM_QUIET_AT_LEAST: Duration = Duration::from_secs(2);

/// How long a VRRP master whose Redis still hears a peer that does not answer
/// looks again before it leaves the election: long enough for the stream of a
/// master that just died or was cut off to go quiet (see [`STREAM_QUIET_AT_LEAST`]).
const SLOW_MASTER_GRACE: Duration = Duration::from_secs(2);

/// How many silent looks at the peer must find our offset moved on before the
/// peer counts as alive behind a slow link (see [`Planner::note_slow_link`]).
const SLOW_LINK_ADVANCES: u32 = 2;

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

/// Why the peer's Redis gave no snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PeerFailure {
    /// No answer in time (a partition, a host without power): it may be alive.
    #[default]
    Silent,
    /// The connection was refused or reset: its host answers, its Redis is down.
    Refused,
    /// Not read this time: the read was cut short (the node just became VRRP
    /// master). Nothing is known of the peer; look again at once.
    Unread,
}

/// What is known of the peer besides its Redis's snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// When the peer gave no snapshot: how it failed.
    pub peer_failure: PeerFailure,
    /// The connection to the peer's Redis dropped since the last plan (its Redis
    /// was killed or is restarting): a replica of it must detach before a restarted
    /// empty Redis can flush it, whatever its sync mode.
    pub peer_dropped: bool,
    /// This agent's claim (its priority and address, for the tie-break).
    pub me: Option<Claim>,
    /// How long this node has been VRRP master (zero when it is not).
    pub master_for: Duration,
    /// The peer's agent's claim, read from the peer's Redis; `None`: no agent runs
    /// there.
    pub peer_agent: Option<Claim>,
    /// With witnesses configured: whether one answered.
    pub witness: Option<bool>,
    /// Our snapshot's history comes from the state file, not from Redis (it came
    /// back from disk without its ids): its data cannot be shown to be contained
    /// anywhere, so it is saved before any resync.
    pub local_vouched: bool,
    /// Likewise for the peer's Redis, as its agent vouches.
    pub peer_vouched: bool,
    /// Our Redis restarted without its data and took writes before this agent
    /// looked (see [`crate::vouch::restarted_without_data`]).
    pub local_restarted_without_data: bool,
    /// The steps between histories this agent has seen, for datasets that Redis
    /// alone cannot relate (see [`crate::lineage`]).
    pub lineage: Lineage,
    /// How many adverts our VRRP instance has heard so far: while its master is
    /// the peer, more of them since a read of the peer's Redis failed show the
    /// peer alive behind a slow link (see [`Planner::note_slow_link`]).
    pub adverts_heard: u64,
    /// We are VRRP master because the peer said goodbye (priority 0): its agent
    /// hands over or its Redis is down, so it takes no writes through the VIP
    /// and holding ours for it would only widen the gap.
    pub peer_stepped_down: bool,
}

/// What to do now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Commands to run, in order; stop at the first failure.
    pub commands: Vec<Command>,
    /// Whether this node may hold the VIP.
    pub eligible: bool,
    /// Stopping: whether the VIP may be handed over now.
    pub handover_ready: bool,
    /// The rule that decided.
    pub rule: Rule,
    /// When to plan again at the latest.
    pub next_check: Duration,
}

/// A pause the planner asked for, as far as Redis confirmed it.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Fence {
    /// Sent, not confirmed yet.
    Asked,
    /// Redis answered OK.
    Held,
    /// Redis refused it or did not answer.
    Refused(String),
}

/// An operation that spans several plans.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Operation {
    /// Promoting: the peer is fenced; our Redis catches up until `deadline`.
    CatchUp { deadline: Instant, fence: Fence },
    /// Stopping: our writes are paused; the replica catches up until `deadline`.
    Handover { deadline: Instant, paused: Fence },
}

/// The planner: the rules plus what is under way.
#[derive(Debug)]
pub struct Planner {
    config: PlannerConfig,
    operation: Option<Operation>,
    /// The last refused fence and when to try again.
    fence_refused: Option<(String, Instant)>,
    /// After a timed-out catch-up: out of the election until our Redis follows the
    /// peer with its link up.
    wait_for_link: bool,
    /// Yielded to a peer agent that claimed master and won the tie-break: out of
    /// the election while it claims master, until this time; then the node rejoins
    /// (as backup: if the one-way loss is over, it hears the master and stays
    /// backup; if not, it becomes master again and yields again).
    yielded: Option<Instant>,
    /// Since when, as master, we have seen the peer's agent claim master over us
    /// (its Redis a master) without a break: see [`Planner::yield_to_peer`].
    outranked_since: Option<Instant>,
    /// Our Redis was told to follow the peer's (by this planner) and has not had
    /// its link up since: the full sync it waits for is ours, not a history to
    /// detach from (its own id may look unrelated meanwhile: a Redis back from its
    /// AOF, or one whose dataset was just saved over SYNC).
    resyncing: bool,
    /// Since when, as VRRP master, we have seen the peer's Redis not answer while
    /// ours, its replica, still hears its replication stream: a slow link, not a
    /// dead master (see [`Planner::slow_master`]).
    slow_master: Option<Instant>,
    /// Our offset at the last look that found the peer's Redis silent (since it
    /// last answered), while ours followed it with the link up.
    silent_offset: Option<u64>,
    /// The adverts our VRRP instance had heard at that look, while its master
    /// was the peer.
    silent_adverts: Option<u64>,
    /// How many of those looks found our offset beyond the one before: the
    /// peer's stream flows while its Redis does not answer (see
    /// [`Planner::note_slow_link`]).
    stream_advances: u32,
    /// Our VRRP instance heard the peer's adverts after a look found its Redis
    /// silent (see [`Planner::note_slow_link`]).
    adverts_after_silence: bool,
    /// Until when our Redis, promoted over a peer that did not answer, holds its
    /// writes while the peer is read again (see [`Planner::hold_writes`]).
    holding_writes: Option<Instant>,
    /// Our Redis refused to hold its writes for a promotion: the next one goes
    /// without the hold.
    hold_refused: bool,
    /// The isolation fence as Redis last confirmed it: (run id, on).
    isolation: Option<(String, bool)>,
    /// The isolation fence command sent and not yet confirmed.
    isolation_sent: Option<(String, bool)>,
}

impl Planner {
    /// A planner with nothing under way.
    pub fn new(config: PlannerConfig) -> Self {
        Planner {
            config,
            operation: None,
            fence_refused: None,
            wait_for_link: false,
            yielded: None,
            outranked_since: None,
            resyncing: false,
            slow_master: None,
            silent_offset: None,
            silent_adverts: None,
            stream_advances: 0,
            adverts_after_silence: false,
            holding_writes: None,
            hold_refused: false,
            isolation: None,
            isolation_sent: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &PlannerConfig {
        &self.config
    }

    /// Whether a promotion is held back because our Redis still hears a peer that
    /// does not answer (a slow link): the peer is worth reading again meanwhile.
    pub fn holds_for_slow_master(&self) -> bool {
        self.slow_master.is_some()
    }

    /// Whether our Redis, just promoted over a peer that did not answer, holds its
    /// writes until the peer is read: the peer deserves a full read meanwhile.
    pub fn holds_writes(&self) -> bool {
        self.holding_writes.is_some()
    }

    /// Decides what to do now. `local` and `peer` are fresh snapshots, `None` when
    /// that Redis is down, unreachable or answered strangely.
    pub fn plan(
        &mut self,
        now: Instant,
        role: Role,
        local: Option<&Snapshot>,
        peer: Option<&Snapshot>,
        ctx: &Context,
    ) -> Plan {
        // Out of Master the count ends, but for the hold after a yield (out of the
        // election while the peer claims master: it must not start again).
        if role != Role::Master && self.yielded.is_none_or(|until| now >= until) {
            self.outranked_since = None;
        }
        let Some(local) = local else {
            self.operation = None;
            self.slow_master = None;
            self.holding_writes = None;
            return self.plan_of(Vec::new(), false, Rule::LocalDown, role == Role::Stopping);
        };
        if !self.hears_silent_master(local, peer, ctx) {
            self.slow_master = None;
        }
        self.note_slow_link(role, local, peer, ctx);
        let restarted = local.is_fresh_empty() || ctx.local_restarted_without_data;
        let mut plan =
            if let Some(peer_keys) = peer.filter(|p| restarted && p.keys > 0).map(|p| p.keys) {
                self.restarted_empty(local, peer, peer_keys, role)
            } else {
                match role {
                    Role::Stopping => self.as_stopping(now, local, peer),
                    Role::Master if local.is_replica() => self.promote(now, local, peer, ctx),
                    Role::Master if self.holding_writes.is_some() => {
                        self.while_holding_writes(now, local, peer, ctx)
                    }
                    Role::Master => self.as_master(now, local, peer, ctx),
                    Role::Backup { peer_is_master } => {
                        self.as_backup(now, local, peer, ctx, peer_is_master)
                    }
                    Role::Fault => self.as_backup(now, local, peer, ctx, false),
                }
            };
        if role != Role::Master && self.holding_writes.take().is_some() {
            Self::release_writes(&mut plan);
        }
        self.add_isolation_fence(&mut plan, local, peer, ctx);
        plan
    }

    /// Tells the planner how a command of its plan ended (`Err` with what Redis
    /// said). A fence counts only once confirmed here.
    pub fn record(&mut self, now: Instant, command: &Command, result: Result<(), String>) {
        match (command, result) {
            (Command::PauseWrites(Target::Peer, _), result) => {
                if let Some(Operation::CatchUp { fence, .. }) = &mut self.operation {
                    match result {
                        Ok(()) => *fence = Fence::Held,
                        Err(error) => {
                            self.operation = None;
                            self.fence_refused = Some((error, now + FENCE_RETRY));
                        }
                    }
                }
            }
            (Command::PauseWrites(Target::Local, _), result) => {
                if let Some(Operation::Handover { paused, .. }) = &mut self.operation {
                    *paused = match result {
                        Ok(()) => Fence::Held,
                        Err(error) => Fence::Refused(error),
                    };
                } else if result.is_err() && self.holding_writes.take().is_some() {
                    // The promotion it was to protect did not run: the next one
                    // goes without a hold rather than not at all.
                    self.hold_refused = true;
                }
            }
            (Command::IsolationFence(_), Ok(())) => self.isolation = self.isolation_sent.take(),
            (Command::IsolationFence(_), Err(_)) => {
                self.isolation = None;
                self.isolation_sent = None;
            }
            (Command::ReplicaOfNoOne(Target::Local), Ok(())) => {
                self.fence_refused = None;
                self.hold_refused = false;
                self.resyncing = false;
            }
            (Command::ReplicaOf(Target::Local), Ok(())) => self.resyncing = true,
            _ => {}
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

    fn follows(redis: &Snapshot, endpoint: &Endpoint) -> bool {
        redis
            .master
            .as_ref()
            .is_some_and(|m| m.host == endpoint.host && m.port == endpoint.port)
    }

    fn follows_peer(&self, local: &Snapshot) -> bool {
        local.is_replica() && Self::follows(local, &self.config.peer)
    }

    fn is_our_replica(&self, peer: &Snapshot) -> bool {
        peer.is_replica() && Self::follows(peer, &self.config.local)
    }

    /// Does our Redis, a replica of the peer's, still hear its replication stream
    /// while the peer's Redis gave no snapshot and did not refuse the connection?
    /// Then the peer's Redis is alive: its host is only slow to answer (a slow or
    /// lossy link) or was not read.
    ///
    /// "Still hears": the link is up and the stream has been silent for less time
    /// than the adverts were when we became master (Master_Down_Interval, at least
    /// [`STREAM_QUIET_AT_LEAST`]). A master that died or was cut off went quiet on
    /// both at once; a slow link loses adverts (they queue behind the data, and VRRP
    /// gives up after three) while the stream still trickles in. Redis reports the
    /// silence in whole seconds, rounded down: `n` means less than `n + 1` s.
    fn hears_silent_master(
        &self,
        local: &Snapshot,
        peer: Option<&Snapshot>,
        ctx: &Context,
    ) -> bool {
        let quiet_at = self.config.master_down_interval.max(STREAM_QUIET_AT_LEAST);
        peer.is_none()
            && ctx.peer_failure != PeerFailure::Refused
            && self.follows_peer(local)
            && local.link_up()
            && local
                .master
                .as_ref()
                .and_then(|m| m.last_io_seconds_ago)
                .and_then(|s| u64::try_from(s).ok())
                .is_some_and(|s| Duration::from_secs(s + 1) <= quiet_at)
    }

    /// Notes whether the peer is alive behind a slow link: its Redis gives our
    /// reads no answer, yet its host shows that it lives on after a read failed.
    ///
    /// - Adverts: our VRRP instance, whose master is the peer, heard more of them
    ///   since a look that found the peer's Redis silent. That look's read had
    ///   failed before the count was taken, and a master that died or was cut off
    ///   stops advertising before a read of it times out: one such look is enough.
    /// - The stream: our Redis, its replica, received more of it from one silent
    ///   look to the next, twice ([`SLOW_LINK_ADVANCES`]). Our snapshot may be
    ///   taken before the read of the peer fails, so the look in flight at a cut
    ///   can show the last bytes sent before it: one advance proves nothing.
    ///
    /// The evidence lasts until the peer's Redis answers (or refuses: then it is
    /// down), and decides whether a promotion over the silent peer holds our
    /// writes (see [`Planner::hold_writes`]).
    fn note_slow_link(
        &mut self,
        role: Role,
        local: &Snapshot,
        peer: Option<&Snapshot>,
        ctx: &Context,
    ) {
        if peer.is_some() || ctx.peer_failure == PeerFailure::Refused {
            self.silent_offset = None;
            self.silent_adverts = None;
            self.stream_advances = 0;
            self.adverts_after_silence = false;
            return;
        }
        if ctx.peer_failure != PeerFailure::Silent || !self.follows_peer(local) {
            return;
        }
        let offset = local.link_up().then(|| local.offset());
        if matches!((self.silent_offset, offset), (Some(before), Some(now)) if now > before) {
            self.stream_advances += 1;
        }
        let hears_peer = matches!(
            role,
            Role::Backup {
                peer_is_master: true
            }
        );
        if hears_peer
            && self
                .silent_adverts
                .is_some_and(|before| ctx.adverts_heard > before)
        {
            self.adverts_after_silence = true;
        }
        self.silent_offset = offset;
        self.silent_adverts = hears_peer.then_some(ctx.adverts_heard);
    }

    /// Whether the peer was seen alive behind a slow link (see
    /// [`Planner::note_slow_link`]).
    fn slow_link_seen(&self) -> bool {
        self.adverts_after_silence || self.stream_advances >= SLOW_LINK_ADVANCES
    }

    /// VRRP master over a peer whose Redis does not answer but still streams to
    /// ours (see [`Planner::hears_silent_master`]). Promoting would make a second
    /// master that the clients of the first may never reach, and the first one's
    /// writes would be lost at the heal: look again for [`SLOW_MASTER_GRACE`] (the
    /// stream of a master that died or was cut off goes quiet meanwhile, and the
    /// promotion follows), then leave the election while it is so (the VIP goes
    /// back to the live master; see [`Planner::as_replica`]). A peer that was not
    /// read is read again at once.
    fn slow_master(&mut self, now: Instant, ctx: &Context) -> Plan {
        let commands = self.abandon_catch_up();
        if ctx.peer_failure == PeerFailure::Unread {
            let why = "the peer's Redis was not read (our VRRP state changed meanwhile): reading it again";
            let mut plan = self.plan_of(commands, true, Rule::Wait { why }, false);
            plan.next_check = self.config.fast_poll;
            return plan;
        }
        let since = *self.slow_master.get_or_insert(now);
        let (eligible, why) = if now.saturating_duration_since(since) < SLOW_MASTER_GRACE {
            (
                true,
                "the peer's Redis does not answer, but ours still hears its replication stream: looking again before promoting",
            )
        } else {
            (false, SLOW_MASTER)
        };
        let mut plan = self.plan_of(commands, eligible, Rule::Wait { why }, false);
        plan.next_check = self.config.fast_poll;
        plan
    }

    /// Promotes our Redis, with its writes held, over a peer that is alive behind
    /// a slow link (see [`Planner::note_slow_link`]) and now silent: its adverts
    /// and its stream were lost in a queue, it holds writes ours lacks, and its
    /// clients follow the VIP to us. Once our Redis no longer pulls the stream the
    /// link drains and the peer answers: holding what we would acknowledge until
    /// then keeps our side free of writes, so that the data decides (its Redis
    /// holds writes ours lacks: we follow it) instead of a split in which one
    /// side's writes are lost. The hold lasts `catch_up_timeout` at most, as a
    /// catch-up does: a peer that died meanwhile costs that much write gap.
    fn hold_writes(&mut self, now: Instant) -> Plan {
        self.operation = None;
        let hold = self.config.catch_up_timeout;
        self.holding_writes = Some(now + hold);
        // Paused first: nothing is acknowledged between the promotion and the pause.
        let commands = vec![
            Command::PauseWrites(Target::Local, self.pause_length()),
            Command::ReplicaOfNoOne(Target::Local),
        ];
        let mut plan = self.plan_of(commands, true, Rule::HoldingWrites { left: hold }, false);
        plan.next_check = self.config.fast_poll;
        plan
    }

    /// Master, our Redis promoted with its writes held (see
    /// [`Planner::hold_writes`]): still held while the peer gives no answer within
    /// the hold; then the rules of a master decide, and the writes are released
    /// (or stay paused until our Redis follows the peer).
    fn while_holding_writes(
        &mut self,
        now: Instant,
        local: &Snapshot,
        peer: Option<&Snapshot>,
        ctx: &Context,
    ) -> Plan {
        let until = self.holding_writes.unwrap_or(now);
        if peer.is_none() && ctx.peer_failure != PeerFailure::Refused && now < until {
            let rule = Rule::HoldingWrites {
                left: until.saturating_duration_since(now),
            };
            let mut plan = self.plan_of(Vec::new(), true, rule, false);
            plan.next_check = self.config.fast_poll;
            return plan;
        }
        self.holding_writes = None;
        let mut plan = self.as_master(now, local, peer, ctx);
        Self::release_writes(&mut plan);
        plan
    }

    /// Ends a hold of our writes: the plan unpauses our Redis, unless it already
    /// does (after making it follow the peer).
    fn release_writes(plan: &mut Plan) {
        if !plan.commands.contains(&Command::Unpause(Target::Local)) {
            plan.commands.push(Command::Unpause(Target::Local));
        }
    }

    /// Commands that make `target` follow the other Redis, saving its dataset first
    /// when it holds data the other may lack. Our own Redis, a master until then,
    /// has its writes paused first: nothing it acknowledges between the look and
    /// the resync is lost, none is left out of the saved dataset, and the writes
    /// that waited fail once it is a replica (`READONLY`).
    fn resync(&self, target: Target, save_first: bool) -> Vec<Command> {
        let mut commands = Vec::new();
        if target == Target::Local {
            commands.push(Command::PauseWrites(Target::Local, self.pause_length()));
        }
        if save_first {
            commands.push(Command::SaveDataset(target));
        }
        commands.push(Command::ReplicaOf(target));
        if target == Target::Local {
            commands.push(Command::Unpause(Target::Local));
        }
        commands
    }

    /// Out of the election; our Redis follows the peer's (once that is a master):
    /// the peer holds writes ours lacks, or won the split.
    fn step_out(
        &self,
        commands: &mut Vec<Command>,
        peer: &Snapshot,
        save_first: bool,
        rule: Rule,
    ) -> (bool, Rule) {
        if peer.is_master() {
            commands.extend(self.resync(Target::Local, save_first));
        }
        (false, rule)
    }

    /// Lifts a fence that the promotion it protected no longer needs.
    fn abandon_catch_up(&mut self) -> Vec<Command> {
        match self.operation.take() {
            Some(Operation::CatchUp { .. }) => vec![Command::Unpause(Target::Peer)],
            other => {
                self.operation = other;
                Vec::new()
            }
        }
    }

    /// Two VRRP masters whose Redis servers reach each other: the one that loses
    /// VRRP's tie-break leaves the election.
    ///
    /// Only once both have lasted `yield_after`: our mastership (a healed split is
    /// settled by VRRP within an advert interval) and the peer's claim. A claim can
    /// be out of date for a moment: the agent of a Redis that stalled (`DEBUG
    /// SLEEP`, SIGSTOP) could not rename its connection meanwhile, and when that
    /// Redis wakes it still says what its agent was before; the agent says what it
    /// is now at its next look, well within `yield_after`.
    fn yield_to_peer(&mut self, now: Instant, peer: &Snapshot, ctx: &Context) -> Option<Plan> {
        let outranked = match (ctx.me.as_ref(), ctx.peer_agent.as_ref()) {
            // A claim of an agent that just stepped down counts only while the
            // peer's Redis is a master too.
            (Some(me), Some(them)) => {
                them.state == ClaimState::Master && them.outranks(me) && peer.is_master()
            }
            _ => false,
        };
        if !outranked {
            self.outranked_since = None;
            return None;
        }
        let them = ctx.peer_agent.as_ref()?;
        let claimed_for = now.saturating_duration_since(*self.outranked_since.get_or_insert(now));
        if ctx.master_for < self.config.yield_after || claimed_for < self.config.yield_after {
            // Touch nothing meanwhile (a promotion now would be undone).
            let why = "the peer's agent claims master too: leaving it to VRRP";
            return Some(self.plan_of(Vec::new(), true, Rule::Wait { why }, false));
        }
        self.yielded = Some(now + YIELD_HOLD);
        let commands = self.abandon_catch_up();
        let rule = Rule::YieldToPeer {
            peer_priority: them.priority,
            peer_address: them.address,
        };
        Some(self.plan_of(commands, false, rule, false))
    }

    /// Our Redis restarted empty while the peer's holds keys: never a source, out of
    /// the election; copy the peer's data while out of it.
    fn restarted_empty(
        &mut self,
        local: &Snapshot,
        peer: Option<&Snapshot>,
        peer_keys: u64,
        role: Role,
    ) -> Plan {
        let mut commands = self.abandon_catch_up();
        let stopping = role == Role::Stopping;
        let peer = peer.expect("peer has keys");
        if self.follows_peer(local) {
            if local.link_up() {
                let rule = Rule::Following {
                    local_offset: local.offset(),
                };
                return self.plan_of(commands, false, rule, stopping);
            }
        } else if peer.is_master() {
            if local.keys > 0 {
                // Writes it took since it restarted: kept in a file.
                commands.extend(self.resync(Target::Local, true));
            } else {
                commands.push(Command::ReplicaOf(Target::Local));
            }
        }
        let rule = match local.keys {
            0 => Rule::LocalEmptyPeerHasData { peer_keys },
            local_keys => Rule::LocalRestartedWithoutData {
                local_keys,
                peer_keys,
            },
        };
        self.plan_of(commands, false, rule, stopping)
    }

    /// Master with our Redis a master.
    fn as_master(
        &mut self,
        now: Instant,
        local: &Snapshot,
        peer: Option<&Snapshot>,
        ctx: &Context,
    ) -> Plan {
        let lift = self.abandon_catch_up();
        let Some(peer) = peer else {
            return self.plan_of(lift, true, Rule::MasterAlone, false);
        };
        if let Some(plan) = self.yield_to_peer(now, peer, ctx) {
            return plan;
        }
        if self.is_our_replica(peer) {
            let rule = match peer.link_up() {
                true => Rule::Steady {
                    local_offset: local.offset(),
                    peer_offset: peer.offset(),
                },
                false => Rule::ReplicaLinking,
            };
            return self.plan_of(lift, true, rule, false);
        }
        // The peer's Redis is a master (or follows a third party): the data decides.
        let (relation, standing) = compare_known(local, peer, &ctx.lineage);
        let mut commands = lift;
        let (eligible, rule) = match standing {
            Standing::Equal | Standing::LocalAhead => {
                // A vouched history on either side is the agents' word, not Redis's:
                // the peer's dataset is saved before it is resynced over.
                let save = ctx.peer_vouched || ctx.local_vouched;
                commands.extend(self.resync(Target::Peer, save));
                (true, Rule::AttachPeer { relation })
            }
            Standing::PeerAhead => {
                let rule = Rule::FollowNewer { relation };
                self.step_out(&mut commands, peer, ctx.local_vouched, rule)
            }
            Standing::Split {
                winner: Some(Target::Peer),
                ours,
                ..
            } => {
                let rule = Rule::SplitResolved {
                    relation,
                    kept: Target::Peer,
                    discarded: ours,
                };
                self.step_out(&mut commands, peer, true, rule)
            }
            // Promoted during the split, or no winner by history: the VIP holder's
            // side is kept.
            Standing::Split { theirs, .. } => match ctx.peer_agent {
                Some(_) => (true, Rule::SplitPeerResyncs { relation }),
                None => {
                    commands.extend(self.resync(Target::Peer, true));
                    let rule = Rule::SplitResolved {
                        relation,
                        kept: Target::Local,
                        discarded: theirs,
                    };
                    (true, rule)
                }
            },
            Standing::Unrelated => (true, Rule::SplitBrain { relation }),
        };
        self.plan_of(commands, eligible, rule, false)
    }

    /// Master while our Redis is a replica: catch up from the peer (fenced) and
    /// promote, or promote at once when there is nothing to wait for.
    fn promote(
        &mut self,
        now: Instant,
        local: &Snapshot,
        peer: Option<&Snapshot>,
        ctx: &Context,
    ) -> Plan {
        let promote_now = |planner: &mut Planner, why| {
            planner.operation = None;
            let commands = vec![Command::ReplicaOfNoOne(Target::Local)];
            planner.plan_of(commands, true, Rule::PromoteNow { why }, false)
        };
        if !self.follows_peer(local) {
            return promote_now(
                self,
                "our Redis follows neither the peer nor anyone we know",
            );
        }
        if self.hears_silent_master(local, peer, ctx) {
            return self.slow_master(now, ctx);
        }
        let Some(peer) = peer else {
            if ctx.peer_failure == PeerFailure::Refused {
                return promote_now(self, "the peer's Redis refuses connections (it is down)");
            }
            if !self.slow_link_seen() {
                return promote_now(self, "the peer's Redis is unreachable");
            }
            if ctx.peer_stepped_down {
                return promote_now(
                    self,
                    "the peer's Redis is unreachable and its agent stepped down",
                );
            }
            if self.hold_refused {
                return promote_now(
                    self,
                    "the peer's Redis is unreachable (ours refused to hold its writes meanwhile)",
                );
            }
            return self.hold_writes(now);
        };
        if let Some(plan) = self.yield_to_peer(now, peer, ctx) {
            return plan;
        }
        if peer.is_fresh_empty() {
            return promote_now(
                self,
                "the peer's Redis is empty with no history (restarted)",
            );
        }
        if !peer.is_master() {
            return promote_now(self, "the peer's Redis is not a master");
        }
        let (local_offset, peer_offset) = (local.offset(), peer.offset());
        if let Some((error, retry_at)) = &self.fence_refused
            && now < *retry_at
        {
            let rule = Rule::FenceFailed {
                error: error.clone(),
            };
            return self.plan_of(Vec::new(), true, rule, false);
        }
        let fence = |planner: &Planner| Command::PauseWrites(Target::Peer, planner.pause_length());
        let deadline = match &self.operation {
            Some(Operation::CatchUp {
                deadline,
                fence: Fence::Held,
            }) => *deadline,
            Some(Operation::CatchUp {
                deadline,
                fence: Fence::Asked | Fence::Refused(_),
            }) => {
                // Sent, never confirmed: ask again; nothing may assume it.
                let deadline = *deadline;
                self.operation = Some(Operation::CatchUp {
                    deadline,
                    fence: Fence::Asked,
                });
                let rule = Rule::FencePeer {
                    local_offset,
                    peer_offset,
                };
                return self.plan_of(vec![fence(self)], true, rule, false);
            }
            _ => {
                self.operation = Some(Operation::CatchUp {
                    deadline: now + self.config.catch_up_timeout,
                    fence: Fence::Asked,
                });
                self.fence_refused = None;
                let rule = Rule::FencePeer {
                    local_offset,
                    peer_offset,
                };
                return self.plan_of(vec![fence(self)], true, rule, false);
            }
        };
        let same_history = local.master_replid == peer.master_replid;
        if same_history && local.link_up() && local_offset >= peer_offset {
            self.operation = None;
            let commands = vec![
                Command::ReplicaOfNoOne(Target::Local),
                Command::ReplicaOf(Target::Peer),
                Command::Unpause(Target::Peer),
            ];
            let rule = Rule::Promote {
                local_offset,
                peer_offset,
            };
            return self.plan_of(commands, true, rule, false);
        }
        if now >= deadline {
            // The peer's Redis, reachable, holds what ours lacks (or ours is still
            // loading a full sync): it stays master.
            self.operation = None;
            self.wait_for_link = true;
            let rule = Rule::CatchUpTimedOut {
                local_offset,
                peer_offset,
            };
            return self.plan_of(vec![Command::Unpause(Target::Peer)], false, rule, false);
        }
        let rule = Rule::CatchingUp {
            local_offset,
            peer_offset,
            left: deadline.saturating_duration_since(now),
        };
        self.plan_of(Vec::new(), true, rule, false)
    }

    /// Backup or fault.
    fn as_backup(
        &mut self,
        now: Instant,
        local: &Snapshot,
        peer: Option<&Snapshot>,
        ctx: &Context,
        peer_is_master: bool,
    ) -> Plan {
        let mut commands = self.abandon_catch_up();
        if let Some(until) = self.yielded {
            let them = ctx
                .peer_agent
                .as_ref()
                .filter(|c| c.state == ClaimState::Master && peer.is_some() && now < until);
            match them {
                Some(them) => {
                    let rule = Rule::YieldToPeer {
                        peer_priority: them.priority,
                        peer_address: them.address,
                    };
                    return self.plan_of(commands, false, rule, false);
                }
                None => self.yielded = None,
            }
        }
        if self.follows_peer(local) {
            return self.as_replica(now, commands, local, peer, ctx);
        }
        let Some(peer) = peer else {
            let why = "the peer's Redis is unreachable";
            return self.plan_of(commands, true, Rule::Wait { why }, false);
        };
        let (relation, standing) = compare_known(local, peer, &ctx.lineage);
        let (eligible, rule) = match standing {
            Standing::PeerAhead => {
                let rule = Rule::FollowNewer { relation };
                self.step_out(&mut commands, peer, ctx.local_vouched, rule)
            }
            Standing::Split { winner, ours, .. }
                if winner == Some(Target::Peer) || (winner.is_none() && peer_is_master) =>
            {
                let rule = Rule::SplitResolved {
                    relation,
                    kept: Target::Peer,
                    discarded: ours,
                };
                self.step_out(&mut commands, peer, true, rule)
            }
            Standing::Equal if !peer_is_master => {
                let why = "the peer does not hold the VIP";
                (true, Rule::Wait { why })
            }
            Standing::Equal if !peer.is_master() => {
                let why = "the peer's Redis is not a master yet";
                (true, Rule::Wait { why })
            }
            Standing::Equal => {
                commands.extend(self.resync(Target::Local, ctx.local_vouched));
                (true, Rule::Follow { relation })
            }
            Standing::LocalAhead | Standing::Split { .. } => (true, Rule::LocalAhead { relation }),
            Standing::Unrelated => (true, Rule::SplitBrain { relation }),
        };
        self.plan_of(commands, eligible, rule, false)
    }

    /// Backup or fault with our Redis following the peer's.
    fn as_replica(
        &mut self,
        now: Instant,
        commands: Vec<Command>,
        local: &Snapshot,
        peer: Option<&Snapshot>,
        ctx: &Context,
    ) -> Plan {
        if local.link_up() {
            self.wait_for_link = false;
            self.resyncing = false;
        }
        let eligible = !self.wait_for_link;
        if self
            .slow_master
            .is_some_and(|since| now.saturating_duration_since(since) >= SLOW_MASTER_GRACE)
        {
            // Still so (else `plan` forgot it): out of the election until the peer
            // answers or its stream goes quiet.
            return self.plan_of(commands, false, Rule::Wait { why: SLOW_MASTER }, false);
        }
        if local.link_up() && !ctx.peer_dropped {
            let rule = Rule::Following {
                local_offset: local.offset(),
            };
            return self.plan_of(commands, eligible, rule, false);
        }
        let detach = |planner: &Planner, mut commands: Vec<Command>, why| {
            commands.push(Command::ReplicaOfNoOne(Target::Local));
            planner.plan_of(commands, eligible, Rule::Detach { why }, false)
        };
        if local.keys == 0 {
            // Nothing of ours to protect: a resync can only bring data.
            return self.plan_of(commands, eligible, Rule::LinkDownSameHistory, false);
        }
        if ctx.peer_dropped {
            return detach(
                self,
                commands,
                "the connection to the peer's Redis dropped (killed or restarting)",
            );
        }
        let Some(peer) = peer else {
            return detach(self, commands, "the peer's Redis is unreachable");
        };
        // While the link is down (a full sync under way, or a blip), stay only if
        // we started this resync, or the peer holds everything we hold, or won the
        // split we were resynced for.
        let (_, standing) = compare_known(local, peer, &ctx.lineage);
        let stays = self.resyncing
            || standing.loses_nothing(Target::Local)
            || standing.must_keep(Target::Peer);
        if stays && !peer.is_fresh_empty() {
            return self.plan_of(commands, eligible, Rule::LinkDownSameHistory, false);
        }
        let why = if peer.is_fresh_empty() {
            "the peer's Redis restarted empty"
        } else {
            "the peer's Redis holds another history"
        };
        detach(self, commands, why)
    }

    /// Stopping: pause our writes until the replica has every byte, then hand over.
    fn as_stopping(&mut self, now: Instant, local: &Snapshot, peer: Option<&Snapshot>) -> Plan {
        let live_replica =
            peer.filter(|p| local.is_master() && self.is_our_replica(p) && p.link_up());
        let Some(peer) = live_replica else {
            self.operation = None;
            let why = "the peer's Redis is not our live replica: nothing to wait for";
            return self.plan_of(Vec::new(), true, Rule::HandoverReady { why }, true);
        };
        let (local_offset, peer_offset) = (local.offset(), peer.offset());
        let waiting = Rule::HandoverCatchingUp {
            local_offset,
            peer_offset,
        };
        let (deadline, paused) = match &self.operation {
            Some(Operation::Handover { deadline, paused }) => (*deadline, paused.clone()),
            _ => {
                self.operation = Some(Operation::Handover {
                    deadline: now + self.config.catch_up_timeout,
                    paused: Fence::Asked,
                });
                let commands = vec![Command::PauseWrites(Target::Local, self.pause_length())];
                return self.plan_of(commands, true, waiting, false);
            }
        };
        if let Fence::Refused(_) = paused {
            self.operation = None;
            let why = "our writes could not be paused; the peer's agent fences our Redis before it promotes";
            return self.plan_of(Vec::new(), true, Rule::HandoverReady { why }, true);
        }
        if paused == Fence::Held && peer_offset >= local_offset {
            self.operation = None;
            let why = "the replica caught up";
            return self.plan_of(Vec::new(), true, Rule::HandoverReady { why }, true);
        }
        if now >= deadline {
            self.operation = None;
            let why = "the replica did not catch up in time: our Redis keeps its writes, unpaused, and the peer's agent will not promote over them";
            let commands = vec![Command::Unpause(Target::Local)];
            return self.plan_of(commands, true, Rule::HandoverReady { why }, true);
        }
        self.plan_of(Vec::new(), true, waiting, false)
    }

    /// Adds the isolation fence to a plan that leaves or makes our Redis a master,
    /// when it must change: on while the peer is our live replica (so that it holds
    /// when the replica vanishes) or silent with no witness answering; off when the
    /// peer's Redis answers otherwise, refuses connections (it is down), or a
    /// witness shows that this side is the connected one.
    fn add_isolation_fence(
        &mut self,
        plan: &mut Plan,
        local: &Snapshot,
        peer: Option<&Snapshot>,
        ctx: &Context,
    ) {
        if self.config.isolation_timeout.is_none() {
            return;
        }
        let promoting = plan
            .commands
            .contains(&Command::ReplicaOfNoOne(Target::Local));
        let stays_replica = plan.commands.contains(&Command::ReplicaOf(Target::Local));
        if !(local.is_master() || promoting) || stays_replica {
            return;
        }
        let on = match peer {
            Some(p) => self.is_our_replica(p) && p.link_up(),
            None => ctx.peer_failure != PeerFailure::Refused && ctx.witness != Some(true),
        };
        let wanted = (local.run_id.clone(), on);
        if self.isolation.as_ref() == Some(&wanted) {
            return;
        }
        self.isolation_sent = Some(wanted);
        plan.commands.insert(0, Command::IsolationFence(on));
    }

    /// A pause outlives the catch-up it protects, so that it cannot lapse before the
    /// promotion, and ends by itself if the agent that set it dies.
    fn pause_length(&self) -> Duration {
        self.config.catch_up_timeout + Duration::from_secs(2)
    }
}
