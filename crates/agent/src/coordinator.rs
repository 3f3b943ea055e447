//! The coordinator: watches the local Redis's health and the VRRP state, runs the
//! replication planner, carries out its commands, and puts the VRRP instance in and
//! out of Fault. Every decision is logged with its rule, the ids and the offsets, in
//! the tracing output and in the state log.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use health::{CheckConfig, Client, ClientOptions, Health, Observation, RedisTarget, Snapshot};
use replication::{Endpoint, Executor, Plan, Planner, PlannerConfig, Role};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};
use vrrp::{Command as VrrpCommand, InstanceHandle, State, Status};

use crate::config::{Config, RedisConfig};
use crate::hooks::{HookRunner, HookState};
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
}

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
    last_state: State,
    last_health: Health,
    hooks: Arc<HookRunner>,
    priority: u8,
}

impl Coordinator {
    /// Watches `vrrp`; with `[redis]`, also starts the health monitor and, with
    /// `[replication]`, the planner. `in_fault` says whether the instance is in
    /// Fault (at start-up with `[redis]` it is started in Fault).
    pub fn new(
        config: &Config,
        vrrp: InstanceHandle,
        shared: Shared,
        hooks: Arc<HookRunner>,
        in_fault: bool,
    ) -> Result<Self> {
        let vrrp_status = vrrp.status();
        let redis = match &config.redis {
            None => None,
            Some(redis) => Some(Self::redis_side(config, redis, &vrrp_status)?),
        };
        let last_state = vrrp_status.borrow().state;
        Ok(Coordinator {
            vrrp_status,
            vrrp,
            redis,
            shared,
            in_fault,
            last_rule: None,
            last_state,
            last_health: Health::Unknown,
            hooks,
            priority: config.vrrp.priority.0,
        })
    }

    fn redis_side(
        config: &Config,
        redis: &RedisConfig,
        vrrp_status: &watch::Receiver<Status>,
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
                info!(local = %local, peer = %peer, catch_up_timeout = ?rep.catch_up_timeout, "replication with the peer's Redis");
                Some(Replication {
                    planner: Planner::new(PlannerConfig {
                        peer: peer.clone(),
                        local: local.clone(),
                        catch_up_timeout: rep.catch_up_timeout,
                        fast_poll: Duration::from_millis(20),
                        slow_poll: redis.check_interval,
                    }),
                    executor: Executor::new(
                        Client::new(target.clone(), options.clone()),
                        Client::new(peer_target, options),
                        local,
                        peer,
                    ),
                    catch_up_timeout: rep.catch_up_timeout,
                    peer_address: rep.peer.to_string(),
                    peer_reachable: true,
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
            let health_changed = async {
                match self.redis.as_mut() {
                    Some(side) => side.health.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                alive = health_changed => if !alive { return },
                changed = self.vrrp_status.changed() => if changed.is_err() { return },
                () = tokio::time::sleep(next_check) => {}
                request = requests.recv() => {
                    match request {
                        Some(Request::Stop(done)) => {
                            self.hand_over().await;
                            self.vrrp.shutdown().await;
                            self.note_vrrp_transition();
                            let _ = done.send(());
                        }
                        None => self.vrrp.shutdown().await,
                    }
                    return;
                }
            }
            self.note_vrrp_transition();
            next_check = self.step().await;
        }
    }

    fn note_vrrp_transition(&mut self) {
        let status = self.vrrp_status.borrow_and_update().clone();
        if status.state != self.last_state {
            if let Some(state) = HookState::from_vrrp(status.state) {
                // keepalived passes the configured priority, also in FAULT.
                let priority = match status.effective_priority {
                    0 => self.priority,
                    p => p,
                };
                self.hooks.notify(state, priority);
            }
            self.shared.event(
                "transition",
                &[
                    ("from", self.last_state.to_string()),
                    ("to", status.state.to_string()),
                    ("reason", status.reason.clone()),
                    ("priority", status.effective_priority.to_string()),
                ],
            );
            *self
                .shared
                .lock()
                .transitions
                .entry((status.state.to_string(), status.reason_kind.to_string()))
                .or_default() += 1;
            self.last_state = status.state;
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
            let role = self.role();
            let plan = self.plan_and_execute(role, healthy).await;
            (plan.eligible, plan.rule.to_string(), plan.next_check)
        } else {
            let side = self.redis.as_ref().expect("redis side");
            let local = side.health.borrow().snapshot.clone();
            self.shared.lock().local =
                Some(RedisView::from_snapshot(&side.address, local.as_ref()));
            (true, String::new(), Duration::from_secs(1))
        };
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

    /// Fresh snapshots. A dropped or refused connection to the local Redis counts at
    /// once (`None`: it was killed or is restarting, and a Redis restarted empty must
    /// not take writes while it holds the VIP). Any other failed read of a Redis that
    /// is healthy by its checks (a slow answer) is `Err`: only `fall` failed checks are
    /// a reason to act, so the caller skips this round.
    async fn observe(
        rep: &mut Replication,
        healthy: bool,
    ) -> (Result<Option<Snapshot>, ()>, Option<Snapshot>) {
        let limit = (!rep.peer_reachable).then_some(PEER_UNREACHABLE_LIMIT);
        let (local, peer) = rep.executor.observe(limit).await;
        rep.peer_reachable = peer.is_some();
        let local = match (healthy, local) {
            (false, _) => Ok(None),
            (true, Ok(snapshot)) => Ok(Some(snapshot)),
            (true, Err(e)) if e.is_connection_failure() => Ok(None),
            (true, Err(_)) => Err(()),
        };
        (local, peer)
    }

    async fn plan_and_execute(&mut self, role: Role, healthy: bool) -> Plan {
        let side = self.redis.as_mut().expect("redis side");
        let rep = side.replication.as_mut().expect("replication configured");
        let (local, peer) = Self::observe(rep, healthy).await;
        let Ok(local) = local else {
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
        {
            let mut state = self.shared.lock();
            state.local = Some(RedisView::from_snapshot(&side.address, local.as_ref()));
            state.peer = Some(RedisView::from_snapshot(&rep.peer_address, peer.as_ref()));
        }
        let plan = rep
            .planner
            .plan(Instant::now(), role, local.as_ref(), peer.as_ref());
        let offsets = |s: &Option<Snapshot>| {
            s.as_ref()
                .map_or("-".to_string(), |s| s.offset().to_string())
        };
        let replid = |s: &Option<Snapshot>| {
            s.as_ref()
                .map_or("-".to_string(), |s| s.master_replid.clone())
        };
        let rule = plan.rule.to_string();
        let kind = Some((std::mem::discriminant(&plan.rule), plan.eligible));
        if kind != self.last_rule || !plan.commands.is_empty() {
            let loud = matches!(
                plan.rule,
                replication::Rule::SplitBrain { .. }
                    | replication::Rule::SplitBrainResolved { .. }
                    | replication::Rule::PromoteAfterTimeout { .. }
            );
            if loud {
                warn!(
                    role = ?role, rule = %rule, eligible = plan.eligible,
                    local_replid = %replid(&local), local_offset = %offsets(&local),
                    peer_replid = %replid(&peer), peer_offset = %offsets(&peer),
                    "replication decision"
                );
            } else {
                info!(
                    role = ?role, rule = %rule, eligible = plan.eligible,
                    local_replid = %replid(&local), local_offset = %offsets(&local),
                    peer_replid = %replid(&peer), peer_offset = %offsets(&peer),
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
                ],
            );
            self.last_rule = kind;
        }
        {
            let mut state = self.shared.lock();
            state.rule = Some(rule.clone());
            state.eligible = Some(plan.eligible);
        }
        if plan.commands.is_empty() {
            return plan;
        }
        for command in &plan.commands {
            let source = rep.executor.source_of(command).map(ToString::to_string);
            info!(command = %command, source = ?source, rule = %rule, local_offset = %offsets(&local), peer_offset = %offsets(&peer), "redis command");
            let result = rep.executor.run(command).await;
            let outcome = match &result {
                Ok(()) => "ok".to_string(),
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
            if let Err(e) = result {
                warn!(command = %command, error = %e, "redis command failed; the next check decides again");
                break;
            }
        }
        let (after_local, after_peer) = Self::observe(rep, healthy).await;
        let after_local = after_local.ok().flatten();
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
