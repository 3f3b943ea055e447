//! The coordinator: watches the local Redis's health and the VRRP state, runs the
//! replication planner, carries out its commands, and puts the VRRP instance in and
//! out of Fault. Every decision is logged with its rule, the ids and the offsets, in
//! the tracing output and in the state log. (The VRRP transitions themselves, with
//! their hooks and counters, are relayed by `transitions::relay`, which sees every
//! one; the status watch here only tells the coordinator to look again.)

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use health::{CheckConfig, Client, ClientOptions, Health, Observation, RedisTarget, Snapshot};
use replication::executor::SaveConfig;
use replication::{
    Claim, ClaimState, Context, Endpoint, Executor, Lineage, PeerClaim, PeerFailure, Plan, Planner,
    PlannerConfig, Role, vouch,
};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};
use vrrp::{Command as VrrpCommand, InstanceHandle, State, Status};

use crate::config::{Config, RedisConfig};
use crate::durable::{Recorded, StateFile};
use crate::state::{HealthView, RedisView, Shared};

/// What the main loop asks of the coordinator.
#[derive(Debug)]
pub enum Request {
    /// Planned stop: hand the writes over to the peer, step down, then answer.
    Stop(oneshot::Sender<()>),
}

/// Replication: the planner and the clients it acts through.
struct Replication {
    planner: Planner,
    executor: Executor,
    catch_up_timeout: Duration,
    peer_address: String,
    /// Whether the peer's Redis answered at the last look.
    peer_reachable: bool,
    /// How the peer's Redis last failed to answer, and when it was last tried.
    peer_failed: Option<(PeerFailure, Instant)>,
    /// The connection to the peer's Redis dropped while we waited (its Redis was
    /// killed or restarts).
    peer_dropped: bool,
    /// The state file, and what it holds.
    state_file: Option<StateFile>,
    recorded: Option<Recorded>,
    /// When the state file was last written.
    stored_at: Option<Instant>,
    /// Witness addresses and how long each may take to answer.
    witnesses: Vec<String>,
    witness_timeout: Duration,
    /// The last answer of the witnesses, and when it came.
    witness_seen: Option<(bool, Instant)>,
    /// The claim last published (the client names every new connection with it
    /// again, so an unchanged claim is not sent twice).
    published: Option<Claim>,
    /// The peer agent's claim as last read, and when: a look during an operation
    /// (every 20 ms) need not list the peer's clients each time.
    peer_claim: Option<(PeerClaim, Instant)>,
    /// How long the peer agent's claim connection may sit idle before the claim
    /// is stale ([`PeerClaim::Stale`]): twice the check interval (a live agent
    /// looks at its Redis at least once an interval; the pair is assumed to run
    /// the same `check_interval`) plus one second (Redis counts idle time in
    /// whole seconds).
    claim_stale_after: Duration,
    /// The steps between replication histories seen so far (see
    /// [`replication::lineage`]).
    lineage: Lineage,
    /// The run of our Redis whose full syncs were told not to wait.
    tuned: Option<String>,
}

/// How often a peer that did not answer is tried again: in between, a decision
/// (a promotion above all) does not wait on it.
const PEER_RETRY: Duration = Duration::from_millis(500);
/// How often the state file is rewritten for an offset change alone (a change of
/// role or history is written at once).
const STORE_OFFSET_EVERY: Duration = Duration::from_secs(1);
/// How long the peer agent's claim, once read, is used before it is read again.
const PEER_CLAIM_EVERY: Duration = Duration::from_millis(250);
/// How long a witness's answer is trusted before it is asked again.
const WITNESS_EVERY: Duration = Duration::from_secs(1);

/// How long a read of the peer's Redis may take while it was unreachable at the last
/// look (a partition): the rest of the decision must not wait for its timeout.
const PEER_UNREACHABLE_LIMIT: Duration = Duration::from_millis(150);

/// The Redis side: health monitor and, with `[replication]`, the planner.
struct RedisSide {
    address: String,
    health: watch::Receiver<Observation>,
    _monitor: health::MonitorHandle,
    replication: Option<Replication>,
}

/// The coordinator task's state.
pub struct Coordinator {
    vrrp: InstanceHandle,
    vrrp_status: watch::Receiver<Status>,
    redis: Option<RedisSide>,
    shared: Shared,
    in_fault: bool,
    /// The kind of the last rule logged and its eligibility: a decision is logged
    /// when either changes, not at every offset change.
    last_rule: Option<(std::mem::Discriminant<replication::Rule>, bool)>,
    last_health: Health,
    priority: u8,
    /// The local Redis and the check deadline, for the version and ACL check.
    redis_target: Option<RedisTarget>,
    check_timeout: Duration,
    /// Whether `preempt` is configured (for the log).
    preempt_configured: bool,
    /// Whether our Redis follows another at the last look: then a configured
    /// preempt is held back (see [`Coordinator::hold_preempt`]).
    local_follows: bool,
    /// Whether the router holds preemption back, as last told (`None`: not told
    /// yet, e.g. after a reload restarted the coordinator).
    preempt_held: Option<bool>,
    /// The VRRP instance's count of conflicting adverts at the last look.
    conflicts: u64,
    /// The local Redis's version and ACL, once checked (with `[replication]`):
    /// `Some(Err(why))` keeps the instance out of the election.
    preflight: Option<Result<(), String>>,
}

impl Coordinator {
    /// Watches `vrrp`; with `[redis]`, also starts the health monitor and, with
    /// `[replication]`, the planner. `in_fault` says whether the instance is in
    /// Fault (at start-up with `[redis]` it is started in Fault).
    pub fn new(
        config: &Config,
        vrrp: InstanceHandle,
        shared: Shared,
        in_fault: bool,
    ) -> Result<Self> {
        let vrrp_status = vrrp.status();
        let redis = match &config.redis {
            None => None,
            Some(redis) => Some(Self::redis_side(config, redis, &vrrp_status, &shared)?),
        };
        Ok(Coordinator {
            vrrp_status,
            vrrp,
            redis,
            shared,
            in_fault,
            last_rule: None,
            last_health: Health::Unknown,
            priority: config.vrrp.priority.0,
            preempt_configured: config.vrrp.preempt,
            redis_target: match &config.redis {
                Some(r) => Some(config.redis_target(r)?),
                None => None,
            },
            check_timeout: config
                .redis
                .as_ref()
                .map_or(Duration::from_millis(500), |r| r.check_timeout),
            local_follows: false,
            preempt_held: None,
            conflicts: 0,
            preflight: None,
        })
    }

    fn redis_side(
        config: &Config,
        redis: &RedisConfig,
        vrrp_status: &watch::Receiver<Status>,
        shared: &Shared,
    ) -> Result<RedisSide> {
        let target = config.redis_target(redis)?;
        let check = CheckConfig {
            interval: redis.check_interval,
            timeout: redis.check_timeout,
            fall: redis.fall.0,
            rise: redis.rise.0,
            ..CheckConfig::default()
        };
        let monitor = health::monitor::spawn(target.clone(), check);
        let replication = match &config.replication {
            None => None,
            Some(rep) => {
                let primary = vrrp_status.borrow().primary_address;
                let local = match &rep.announce {
                    Some(a) => Endpoint {
                        host: a.host.clone(),
                        port: a.port,
                    },
                    None => Endpoint {
                        host: primary
                            .context("no primary address to announce our Redis with; set [replication] announce")?
                            .to_string(),
                        port: redis.address.port,
                    },
                };
                let peer = Endpoint {
                    host: rep.peer.host.clone(),
                    port: rep.peer.port,
                };
                let options = ClientOptions {
                    connect_timeout: redis.check_timeout,
                    response_timeout: redis.check_timeout,
                };
                let peer_target = RedisTarget {
                    address: rep.peer.to_string(),
                    ..target.clone()
                };
                info!(local = %local, peer = %peer, catch_up_timeout = ?rep.catch_up_timeout, state_dir = ?rep.state_dir, isolation_timeout = ?rep.isolation_timeout, "replication with the peer's Redis");
                let mut executor = Executor::new(
                    Client::new(target.clone(), options.clone()),
                    Client::new(peer_target, options),
                    local.clone(),
                    peer.clone(),
                );
                if let Some(dir) = &rep.state_dir {
                    executor = executor.with_save(SaveConfig {
                        dir: dir.join("saved"),
                        timeout: rep.catch_up_timeout.max(Duration::from_secs(60)),
                    });
                }
                if let Some(t) = rep.isolation_timeout {
                    executor = executor.with_isolation_timeout(t);
                }
                let state_file = rep.state_dir.as_deref().map(StateFile::in_dir);
                let recorded = match &state_file {
                    Some(file) => file.load().context("reading the state file")?,
                    None => None,
                };
                if let Some(r) = &recorded {
                    info!(file = %state_file.as_ref().expect("file").path().display(), run_id = %r.run_id, replid = %r.history.replid, offset = r.history.offset, was_master = r.history.was_master, "state file read");
                }
                Some(Replication {
                    planner: Planner::new(PlannerConfig {
                        peer: peer.clone(),
                        local: local.clone(),
                        catch_up_timeout: rep.catch_up_timeout,
                        fast_poll: Duration::from_millis(20),
                        slow_poll: redis.check_interval,
                        isolation_timeout: rep.isolation_timeout,
                        yield_after: config.vrrp.advert_int.0 * 2 + Duration::from_millis(500),
                        master_down_interval: config
                            .instance()
                            .router_config(
                                primary.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()),
                            )
                            .master_down_interval(),
                    }),
                    executor,
                    catch_up_timeout: rep.catch_up_timeout,
                    peer_address: rep.peer.to_string(),
                    peer_reachable: true,
                    peer_failed: None,
                    peer_dropped: false,
                    state_file,
                    recorded,
                    stored_at: None,
                    witnesses: rep.witnesses.iter().map(ToString::to_string).collect(),
                    witness_timeout: redis.check_timeout,
                    witness_seen: None,
                    published: None,
                    peer_claim: None,
                    claim_stale_after: redis.check_interval * 2 + Duration::from_secs(1),
                    lineage: shared.lock().lineage.clone(),
                    tuned: None,
                })
            }
        };
        Ok(RedisSide {
            address: target.address,
            health: monitor.subscribe(),
            _monitor: monitor,
            replication,
        })
    }

    /// Runs until asked to stop.
    pub async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut next_check = Duration::ZERO;
        loop {
            let peer_lost = self
                .redis
                .as_ref()
                .and_then(|side| side.replication.as_ref())
                .map(|rep| rep.executor.peer_connection_lost());
            let peer_lost = async {
                match peer_lost {
                    Some(lost) => lost.await,
                    None => std::future::pending().await,
                }
            };
            let health_changed = async {
                match self.redis.as_mut() {
                    Some(side) => side.health.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                alive = health_changed => if !alive { return },
                () = peer_lost => {
                    if let Some(rep) = self.redis.as_mut().and_then(|s| s.replication.as_mut()) {
                        info!(peer = %rep.peer_address, "the connection to the peer's Redis dropped: looking again at once");
                        rep.peer_dropped = true;
                        rep.peer_failed = None;
                    }
                }
                changed = self.vrrp_status.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    // Another router claimed the VIP (a healed split): read the peer
                    // now, even if it was silent a moment ago.
                    let conflicts = self.vrrp_status.borrow().conflicts;
                    if conflicts != self.conflicts {
                        self.conflicts = conflicts;
                        if let Some(rep) = self.redis.as_mut().and_then(|s| s.replication.as_mut()) {
                            rep.peer_failed = None;
                        }
                    }
                }
                () = tokio::time::sleep(next_check) => {}
                request = requests.recv() => {
                    match request {
                        Some(Request::Stop(done)) => {
                            self.hand_over().await;
                            self.vrrp.shutdown().await;
                            let _ = done.send(());
                        }
                        None => self.vrrp.shutdown().await,
                    }
                    return;
                }
            }
            // Whatever woke us, the status as it is now is seen: a change watched
            // during the step (see `observe`) is one that comes after this.
            self.vrrp_status.borrow_and_update();
            next_check = self.step().await;
        }
    }

    fn note_health(&mut self, obs: &Observation) {
        {
            let mut state = self.shared.lock();
            state.health = Some(HealthView {
                health: obs.health.to_string(),
                latency: obs.latency,
                last_error: obs.last_error.clone(),
                checks: obs.checks,
                failures: obs.failures,
            });
        }
        if obs.health != self.last_health {
            let reason = match (&obs.change, &obs.last_error) {
                (Some(change), _) => change.reason.clone(),
                (None, Some(error)) => error.clone(),
                (None, None) => String::new(),
            };
            self.shared.event(
                "health",
                &[
                    ("redis", obs.address.clone()),
                    ("from", self.last_health.to_string()),
                    ("to", obs.health.to_string()),
                    ("reason", reason),
                ],
            );
            self.last_health = obs.health;
        }
    }

    fn role(&self) -> Role {
        let status = self.vrrp_status.borrow();
        match status.state {
            State::Master => Role::Master,
            State::Backup => Role::Backup {
                peer_is_master: status.master.is_some(),
            },
            State::Fault | State::Initialize => Role::Fault,
        }
    }

    /// One look at everything, one decision; returns when to look again.
    async fn step(&mut self) -> Duration {
        let Some(side) = self.redis.as_mut() else {
            return Duration::from_secs(3600);
        };
        let obs = side.health.borrow_and_update().clone();
        self.note_health(&obs);
        if obs.health == Health::Unknown {
            // Not judged yet (start-up, or a reload restarted the monitor): keep the
            // instance where it is.
            return Duration::from_millis(100);
        }
        let healthy = obs.health == Health::Up;
        let (eligible, why, next) = if self.redis.as_ref().is_some_and(|s| s.replication.is_some())
        {
            if healthy && self.preflight.is_none() {
                self.preflight = self.check_redis().await;
            }
            let role = self.role();
            let plan = self.plan_and_execute(role, healthy).await;
            match &self.preflight {
                Some(Err(why)) => (false, why.clone(), plan.next_check),
                _ => (plan.eligible, plan.rule.to_string(), plan.next_check),
            }
        } else {
            let side = self.redis.as_ref().expect("redis side");
            let local = side.health.borrow().snapshot.clone();
            self.shared.lock().local =
                Some(RedisView::from_snapshot(&side.address, local.as_ref()));
            (true, String::new(), Duration::from_secs(1))
        };
        self.hold_preempt().await;
        let want_fault = !(healthy && eligible);
        if want_fault != self.in_fault {
            let reason = if !healthy {
                format!(
                    "local Redis {}: {}",
                    obs.health,
                    obs.last_error.as_deref().unwrap_or("not seen healthy yet")
                )
            } else if !eligible {
                why
            } else {
                "local Redis is up and eligible".to_string()
            };
            let command = if want_fault {
                VrrpCommand::EnterFault(reason)
            } else {
                VrrpCommand::LeaveFault(reason)
            };
            if self.vrrp.command(command).await {
                self.in_fault = want_fault;
            }
        }
        next
    }

    /// Checks the local Redis's version and ACL (the agent checked at start too, if
    /// it answered then). `None`: it could not be asked; ask again.
    async fn check_redis(&self) -> Option<Result<(), String>> {
        let target = self.redis_target.clone()?;
        match crate::preflight::check(&target, self.check_timeout).await {
            crate::preflight::Verdict::Usable => Some(Ok(())),
            crate::preflight::Verdict::Refused(why) => {
                tracing::error!(error = %why, "the local Redis cannot be used: out of the election until it is fixed and redha reloaded or restarted");
                Some(Err(format!("the local Redis cannot be used: {why}")))
            }
            crate::preflight::Verdict::Unknown => None,
        }
    }

    /// A node whose Redis follows the VIP holder's holds at most what that one holds:
    /// preempting it would only open a write gap (and, from a stale copy restarted
    /// from disk, serve old data). So a configured `preempt` applies only while our
    /// Redis is a master: the router holds it back while our Redis follows.
    async fn hold_preempt(&mut self) {
        let hold = self.local_follows;
        if self.preempt_held == Some(hold) {
            return;
        }
        if self.vrrp.command(VrrpCommand::HoldPreempt(hold)).await {
            if self.preempt_configured {
                info!(
                    held = hold,
                    "preempt {}: our Redis {} the peer's",
                    if hold { "held back" } else { "restored" },
                    if hold { "follows" } else { "no longer follows" }
                );
            }
            self.preempt_held = Some(hold);
        }
    }

    /// Fresh snapshots. A dropped or refused connection to the local Redis counts at
    /// once (`None`: it was killed or is restarting, and a Redis restarted empty must
    /// not take writes while it holds the VIP). Any other failed read of a Redis that
    /// is healthy by its checks (a slow answer) is `Err`: only `fall` failed checks are
    /// a reason to act, so the caller skips this round.
    ///
    /// A peer that did not answer is not read again within [`PEER_RETRY`], nor at
    /// all when `promoting` (we hold the VIP and our Redis was a replica): a
    /// promotion never waits on a silent peer. A read cut short by a VRRP change
    /// ([`PeerFailure::Unread`]) is not a failure: the next look reads again.
    async fn observe(
        rep: &mut Replication,
        healthy: bool,
        promoting: bool,
        vrrp: &watch::Receiver<Status>,
    ) -> (Result<Option<Snapshot>, ()>, Result<Snapshot, PeerFailure>) {
        let (local, peer) = match rep.peer_failed {
            Some((failure, at)) if promoting || at.elapsed() < PEER_RETRY => {
                (rep.executor.observe_local().await, Err(failure))
            }
            _ => {
                // Holding our writes, nothing waits on the read: it gets its
                // full timeout (the peer may be alive behind a slow link).
                let limit = (!rep.peer_reachable && !rep.planner.holds_writes())
                    .then_some(PEER_UNREACHABLE_LIMIT);
                // A VRRP change (becoming master above all) cuts short the read of
                // a peer that did not answer last time.
                let mut vrrp = vrrp.clone();
                let changed = async move {
                    let _ = vrrp.changed().await;
                };
                let (local, peer) = rep.executor.observe_abandoning(limit, changed).await;
                // A read cut short tells nothing: the next look reads again.
                rep.peer_failed = peer
                    .as_ref()
                    .err()
                    .filter(|f| **f != PeerFailure::Unread)
                    .map(|f| (*f, Instant::now()));
                (local, peer)
            }
        };
        rep.peer_reachable = peer.is_ok();
        let local = match (healthy, local) {
            (false, _) => Ok(None),
            (true, Ok(snapshot)) => Ok(Some(snapshot)),
            (true, Err(e)) if e.is_connection_failure() => Ok(None),
            (true, Err(_)) => Err(()),
        };
        (local, peer)
    }

    /// This agent's claim, as the peer's agent reads it.
    fn claim(&self) -> Option<Claim> {
        let status = self.vrrp_status.borrow();
        let state = match status.state {
            State::Master => ClaimState::Master,
            State::Backup => ClaimState::Backup,
            State::Fault | State::Initialize => ClaimState::Fault,
        };
        Some(Claim {
            state,
            priority: self.priority,
            address: status.primary_address?,
            vouched: None,
        })
    }

    /// Everything the planner needs besides the snapshots: claims (ours published,
    /// the peer's read), vouched histories, the witnesses, how the peer failed.
    async fn context(
        rep: &mut Replication,
        me: Option<Claim>,
        master_for: Duration,
        local: &mut Option<Snapshot>,
        peer: &mut Result<Snapshot, PeerFailure>,
    ) -> Context {
        let mut ctx = Context {
            peer_dropped: std::mem::take(&mut rep.peer_dropped)
                || matches!(peer, Err(PeerFailure::Refused)),
            ..Context::default()
        };
        // Every step between histories either Redis shows, and the one recorded
        // before a restart: Redis remembers one step only.
        if let Some(l) = local.as_ref() {
            rep.lineage.observe(l);
        }
        if let Ok(p) = peer.as_ref() {
            rep.lineage.observe(p);
        }
        if let Some(r) = rep.recorded.as_ref() {
            rep.lineage.observe_recorded(&r.history);
        }
        ctx.lineage = rep.lineage.clone();
        if let (Some(l), Some(r)) = (local.as_mut(), rep.recorded.as_ref())
            && vouch::needs_vouching(l, &r.history)
        {
            *l = vouch::vouched(l, &r.history);
            ctx.local_vouched = true;
        }
        let me = me.map(|mut c| {
            if ctx.local_vouched {
                c.vouched = rep.recorded.as_ref().map(|r| r.history.clone());
            }
            c
        });
        if let Some(claim) = &me
            && rep.published.as_ref() != Some(claim)
            && local.is_some()
        {
            match rep.executor.publish_claim(claim).await {
                Ok(()) => rep.published = Some(claim.clone()),
                Err(e) => warn!(error = %e, "publishing our claim on the local Redis failed"),
            }
        }
        if let (Some(l), Some(r), Ok(p)) = (local.as_ref(), rep.recorded.as_ref(), peer.as_ref()) {
            ctx.local_restarted_without_data =
                vouch::restarted_without_data(l, &r.run_id, &r.history, p);
        }
        match peer {
            Ok(p) => {
                let claim = match &rep.peer_claim {
                    Some((claim, at)) if at.elapsed() < PEER_CLAIM_EVERY => claim.clone(),
                    _ => {
                        let claim = rep
                            .executor
                            .peer_claim(rep.claim_stale_after)
                            .await
                            .unwrap_or(PeerClaim::Absent);
                        let was_stale =
                            matches!(rep.peer_claim, Some((PeerClaim::Stale { .. }, _)));
                        match &claim {
                            PeerClaim::Stale { claim, idle } if !was_stale => warn!(
                                peer = %rep.peer_address, claim = %claim.to_name(), idle = ?idle,
                                "the peer's agent claim is stale (its connection idle for {idle:?}): that agent is not acting (stopped or hung); its claim is ignored"
                            ),
                            PeerClaim::Live(_) if was_stale => info!(
                                peer = %rep.peer_address,
                                "the peer's agent acts again: its claim is fresh"
                            ),
                            _ => {}
                        }
                        rep.peer_claim = Some((claim.clone(), Instant::now()));
                        claim
                    }
                };
                ctx.peer_agent = claim.live().cloned();
                if let Some(v) = ctx.peer_agent.as_ref().and_then(|c| c.vouched.as_ref())
                    && vouch::needs_vouching(p, v)
                {
                    *p = vouch::vouched(p, v);
                    ctx.peer_vouched = true;
                }
            }
            Err(failure) => {
                rep.peer_claim = None;
                ctx.peer_failure = *failure;
                // Silent, or not read this time: either way nothing says the peer is
                // down, so the witnesses say which side is connected.
                if *failure != PeerFailure::Refused && !rep.witnesses.is_empty() {
                    let answered = match rep.witness_seen {
                        Some((answered, at)) if at.elapsed() < WITNESS_EVERY => answered,
                        _ => {
                            let answered =
                                crate::witness::any_answers(&rep.witnesses, rep.witness_timeout)
                                    .await;
                            if rep
                                .witness_seen
                                .is_none_or(|(before, _)| before != answered)
                            {
                                info!(answered, witnesses = ?rep.witnesses, "witnesses asked while the peer is silent");
                            }
                            rep.witness_seen = Some((answered, Instant::now()));
                            answered
                        }
                    };
                    ctx.witness = Some(answered);
                }
            }
        }
        ctx.me = me;
        ctx.master_for = master_for;
        ctx
    }

    /// Records our Redis's history in the state file: at once when its role or
    /// history changed, at most once a second for an offset alone. Never while
    /// `keep`: we vouch for the recorded history instead, or our Redis came back
    /// without its data (the record is what shows the peer holds it).
    async fn record_history(rep: &mut Replication, local: Option<&Snapshot>, keep: bool) {
        let (Some(file), Some(local)) = (rep.state_file.as_ref(), local) else {
            return;
        };
        if keep || local.loading {
            return;
        }
        let recorded = Recorded {
            run_id: local.run_id.clone(),
            history: vouch::record(local),
        };
        let due = match (&rep.recorded, rep.stored_at) {
            (Some(old), Some(at)) => {
                let same = |a: &replication::Vouched, b: &replication::Vouched| {
                    (a.was_master, &a.replid, &a.replid2) == (b.was_master, &b.replid, &b.replid2)
                };
                if *old == recorded {
                    false
                } else if same(&old.history, &recorded.history) && old.run_id == recorded.run_id {
                    at.elapsed() >= STORE_OFFSET_EVERY
                } else {
                    true
                }
            }
            _ => true,
        };
        if !due {
            return;
        }
        match file.store(&recorded).await {
            Ok(()) => {
                rep.recorded = Some(recorded);
                rep.stored_at = Some(Instant::now());
            }
            Err(e) => warn!(error = %e, "writing the state file failed"),
        }
    }

    async fn plan_and_execute(&mut self, role: Role, healthy: bool) -> Plan {
        // A node that is handing over claims no mastership: the peer, once VRRP
        // master, must promote rather than yield to it.
        let me = self.claim().map(|mut c| {
            if role == Role::Stopping {
                c.state = ClaimState::Fault;
            }
            c
        });
        let side = self.redis.as_mut().expect("redis side");
        let rep = side.replication.as_mut().expect("replication configured");
        // A promotion does not wait on a silent peer; one held back because our
        // Redis still hears the peer's (see `Planner::hears_silent_master`) reads it
        // again at the usual pace.
        let promoting =
            role == Role::Master && self.local_follows && !rep.planner.holds_for_slow_master();
        let (local, mut peer) = Self::observe(rep, healthy, promoting, &self.vrrp_status).await;
        let Ok(mut local) = local else {
            // Healthy by its checks, but this read failed: look again soon.
            return Plan {
                commands: Vec::new(),
                eligible: !self.in_fault,
                handover_ready: false,
                rule: replication::Rule::Wait {
                    why: "the local Redis did not answer this read",
                },
                next_check: Duration::from_millis(100),
            };
        };
        let master_for = {
            let status = self.vrrp_status.borrow();
            match status.state {
                State::Master => status.since.elapsed().unwrap_or_default(),
                _ => Duration::ZERO,
            }
        };
        if let Some(l) = local.as_ref()
            && rep.tuned.as_deref() != Some(l.run_id.as_str())
        {
            match rep.executor.start_full_syncs_at_once().await {
                Ok(true) => {
                    info!(redis = %side.address, "set repl-diskless-sync-max-replicas 1: a full sync to the one replica of a pair starts at once instead of after repl-diskless-sync-delay")
                }
                Ok(false) => {}
                Err(e) => {
                    warn!(redis = %side.address, error = %e, "could not set repl-diskless-sync-max-replicas; full syncs wait repl-diskless-sync-delay")
                }
            }
            rep.tuned = Some(l.run_id.clone());
        }
        let mut ctx = Self::context(rep, me, master_for, &mut local, &mut peer).await;
        ctx.adverts_heard = self.vrrp.stats().adverts_received();
        ctx.peer_stepped_down = {
            let status = self.vrrp_status.borrow();
            status.state == State::Master && status.reason_kind == "priority_zero"
        };
        {
            let mut state = self.shared.lock();
            if state.lineage != rep.lineage {
                state.lineage = rep.lineage.clone();
            }
        }
        self.local_follows = local.as_ref().is_some_and(Snapshot::is_replica);
        let peer = peer.ok();
        {
            let mut state = self.shared.lock();
            state.local = Some(RedisView::from_snapshot(&side.address, local.as_ref()));
            state.peer = Some(RedisView::from_snapshot(&rep.peer_address, peer.as_ref()));
        }
        let plan = rep
            .planner
            .plan(Instant::now(), role, local.as_ref(), peer.as_ref(), &ctx);
        let offsets = |s: &Option<Snapshot>| {
            s.as_ref()
                .map_or("-".to_string(), |s| s.offset().to_string())
        };
        let replid = |s: &Option<Snapshot>| {
            s.as_ref()
                .map_or("-".to_string(), |s| s.master_replid.clone())
        };
        let keys =
            |s: &Option<Snapshot>| s.as_ref().map_or("-".to_string(), |s| s.keys.to_string());
        let rule = plan.rule.to_string();
        let kind = Some((std::mem::discriminant(&plan.rule), plan.eligible));
        if kind != self.last_rule || !plan.commands.is_empty() {
            let peer_agent = ctx
                .peer_agent
                .as_ref()
                .map_or("-".to_string(), Claim::to_name);
            if plan.rule.is_loud() {
                warn!(
                    role = ?role, rule = %rule, eligible = plan.eligible,
                    local_replid = %replid(&local), local_offset = %offsets(&local),
                    peer_replid = %replid(&peer), peer_offset = %offsets(&peer),
                    peer_agent = %peer_agent, local_vouched = ctx.local_vouched,
                    local_replid2 = %local.as_ref().map_or("-", |s| s.master_replid2.as_str()),
                    peer_replid2 = %peer.as_ref().map_or("-", |s| s.master_replid2.as_str()),
                    known_steps = ?ctx.lineage.links(),
                    "replication decision"
                );
            } else {
                info!(
                    role = ?role, rule = %rule, eligible = plan.eligible,
                    local_replid = %replid(&local), local_offset = %offsets(&local),
                    peer_replid = %replid(&peer), peer_offset = %offsets(&peer),
                    peer_agent = %peer_agent, local_vouched = ctx.local_vouched,
                    peer_failure = ?peer.is_none().then_some(ctx.peer_failure),
                    witness = ?ctx.witness,
                    local_link = ?local.as_ref().and_then(|l| l.master.as_ref()).map(|m| (m.link_status, m.last_io_seconds_ago)),
                    "replication decision"
                );
            }
            self.shared.event(
                "decision",
                &[
                    ("role", format!("{role:?}")),
                    ("rule", rule.clone()),
                    ("eligible", plan.eligible.to_string()),
                    ("local_replid", replid(&local)),
                    ("local_offset", offsets(&local)),
                    ("peer_replid", replid(&peer)),
                    ("peer_offset", offsets(&peer)),
                    ("peer_agent", peer_agent),
                    ("local_vouched", ctx.local_vouched.to_string()),
                ],
            );
            self.last_rule = kind;
        }
        {
            let mut state = self.shared.lock();
            state.rule = Some(rule.clone());
            state.eligible = Some(plan.eligible);
        }
        // Neither a vouched history nor a Redis that lost its data replaces the
        // record: the one recorded is what tells them apart from the peer's.
        let keep_record = ctx.local_vouched || ctx.local_restarted_without_data;
        Self::record_history(rep, local.as_ref(), keep_record).await;
        if plan.commands.is_empty() {
            return plan;
        }
        if !plan.eligible && !self.in_fault {
            // Out of the election before the commands run (saving a dataset can take
            // seconds): the VIP must not stay on a node that just lost it.
            let reason = plan.rule.to_string();
            if self.vrrp.command(VrrpCommand::EnterFault(reason)).await {
                self.in_fault = true;
            }
            // And say so at once: the peer must not wait for our claim to change.
            if let Some(mut claim) = ctx.me.clone() {
                claim.state = ClaimState::Fault;
                if rep.executor.publish_claim(&claim).await.is_ok() {
                    rep.published = Some(claim);
                }
            }
        }
        for command in &plan.commands {
            let source = rep.executor.source_of(command).map(ToString::to_string);
            info!(command = %command, source = ?source, rule = %rule, local_offset = %offsets(&local), peer_offset = %offsets(&peer), "redis command");
            let result = rep.executor.run(command).await;
            rep.planner.record(
                Instant::now(),
                command,
                result
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| e.source.to_string()),
            );
            let outcome = match &result {
                Ok(None) => "ok".to_string(),
                Ok(Some(detail)) => detail.clone(),
                Err(e) => e.to_string(),
            };
            *self
                .shared
                .lock()
                .redis_commands
                .entry((
                    command.kind().to_string(),
                    if result.is_ok() { "ok" } else { "error" }.to_string(),
                ))
                .or_default() += 1;
            self.shared.event(
                "command",
                &[
                    ("command", command.to_string()),
                    ("source", source.unwrap_or_default()),
                    ("rule", rule.clone()),
                    ("local_offset", offsets(&local)),
                    ("peer_offset", offsets(&peer)),
                    ("result", outcome.clone()),
                ],
            );
            if let replication::Command::SaveDataset(target) = command
                && let Ok(Some(detail)) = &result
            {
                let saved = match target {
                    replication::Target::Local => &local,
                    replication::Target::Peer => &peer,
                };
                warn!(
                    saved = %detail, keys = %keys(saved), replid = %replid(saved),
                    offset = %offsets(saved), rule = %rule,
                    "dataset saved before it is resynced over: its writes past the fork are in this file"
                );
                self.shared.event(
                    "saved",
                    &[
                        ("target", target.to_string()),
                        ("file", detail.clone()),
                        ("keys", keys(saved)),
                        ("replid", replid(saved)),
                        ("offset", offsets(saved)),
                        (
                            "replid2",
                            saved
                                .as_ref()
                                .map_or("-".into(), |s| s.master_replid2.clone()),
                        ),
                    ],
                );
            }
            if let Err(e) = result {
                warn!(command = %command, error = %e, "redis command failed; the next check decides again");
                break;
            }
        }
        let (after_local, after_peer) = Self::observe(rep, healthy, false, &self.vrrp_status).await;
        let after_local = after_local.ok().flatten();
        let after_peer = after_peer.ok();
        self.shared.event(
            "after",
            &[
                (
                    "local_role",
                    after_local
                        .as_ref()
                        .map_or("-".into(), |s| format!("{:?}", s.role)),
                ),
                ("local_offset", offsets(&after_local)),
                (
                    "peer_role",
                    after_peer
                        .as_ref()
                        .map_or("-".into(), |s| format!("{:?}", s.role)),
                ),
                ("peer_offset", offsets(&after_peer)),
            ],
        );
        Plan {
            next_check: Duration::from_millis(20),
            ..plan
        }
    }

    /// Planned stop: while master, pause our writes and wait (bounded) until the
    /// peer's replica has every byte, so that the peer can promote at once.
    async fn hand_over(&mut self) {
        let Some(timeout) = self
            .redis
            .as_ref()
            .and_then(|side| side.replication.as_ref())
            .map(|r| r.catch_up_timeout)
        else {
            return;
        };
        if self.vrrp_status.borrow().state != State::Master {
            return;
        }
        let deadline = Instant::now() + timeout + Duration::from_secs(1);
        let healthy = self
            .redis
            .as_ref()
            .is_some_and(|side| side.health.borrow().health == Health::Up);
        while Instant::now() < deadline {
            let plan = self.plan_and_execute(Role::Stopping, healthy).await;
            if plan.handover_ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        warn!("handing over: the replica did not catch up in time; stepping down anyway");
    }
}
