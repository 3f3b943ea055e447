//! The coordinator: watches the local Redis's health and the VRRP state, runs the
//! replication planner, carries out its commands, and puts the VRRP instance in and
//! out of Fault. Every decision is logged with its rule, the ids and the offsets, in
//! the tracing output and in the state log.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use health::{CheckConfig, Client, ClientOptions, Health, Observation, RedisTarget, Snapshot};
use replication::{Endpoint, Executor, Plan, Planner, PlannerConfig, Role};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{info, warn};
use vrrp::{Command as VrrpCommand, InstanceHandle, State, Status};

use crate::config::{Config, RedisConfig};
use crate::statelog::StateLog;

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
}

/// The coordinator task's state.
pub struct Coordinator {
    vrrp: InstanceHandle,
    vrrp_status: watch::Receiver<Status>,
    health: watch::Receiver<Observation>,
    _monitor: health::MonitorHandle,
    replication: Option<Replication>,
    statelog: StateLog,
    in_fault: bool,
    /// The kind of the last rule logged and its eligibility: a decision is logged
    /// when either changes, not at every offset change.
    last_rule: Option<(std::mem::Discriminant<replication::Rule>, bool)>,
    last_state: State,
    last_health_checks: u64,
}

impl Coordinator {
    /// Starts the health monitor and, with `[replication]`, the planner. The VRRP
    /// instance must have been started in Fault.
    pub fn new(
        config: &Config,
        redis: &RedisConfig,
        vrrp: InstanceHandle,
        statelog: StateLog,
    ) -> Result<Self> {
        let target = config.redis_target(redis)?;
        let check = CheckConfig {
            interval: redis.check_interval,
            timeout: redis.check_timeout,
            fall: redis.fall.0,
            rise: redis.rise.0,
            ..CheckConfig::default()
        };
        let monitor = health::monitor::spawn(target.clone(), check);
        let vrrp_status = vrrp.status();
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
                        Client::new(target, options.clone()),
                        Client::new(peer_target, options),
                        local,
                        peer,
                    ),
                    catch_up_timeout: rep.catch_up_timeout,
                })
            }
        };
        Ok(Coordinator {
            health: monitor.subscribe(),
            _monitor: monitor,
            vrrp_status,
            vrrp,
            replication,
            statelog,
            in_fault: true,
            last_rule: None,
            last_state: State::Initialize,
            last_health_checks: 0,
        })
    }

    /// Runs until asked to stop.
    pub async fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        let mut next_check = Duration::ZERO;
        loop {
            tokio::select! {
                changed = self.health.changed() => if changed.is_err() { return },
                changed = self.vrrp_status.changed() => if changed.is_err() { return },
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
            self.note_vrrp_transition();
            next_check = self.step().await;
        }
    }

    fn note_vrrp_transition(&mut self) {
        let status = self.vrrp_status.borrow_and_update().clone();
        if status.state != self.last_state {
            self.statelog.record(
                "transition",
                &[
                    ("from", self.last_state.to_string()),
                    ("to", status.state.to_string()),
                    ("reason", status.reason.clone()),
                    ("priority", status.effective_priority.to_string()),
                ],
            );
            self.last_state = status.state;
        }
    }

    fn note_health(&mut self, obs: &Observation) {
        if obs.checks == self.last_health_checks {
            return;
        }
        self.last_health_checks = obs.checks;
        if let Some(change) = &obs.change {
            self.statelog.record(
                "health",
                &[
                    ("redis", obs.address.clone()),
                    ("from", change.from.to_string()),
                    ("to", change.to.to_string()),
                    ("reason", change.reason.clone()),
                ],
            );
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
        let obs = self.health.borrow_and_update().clone();
        self.note_health(&obs);
        let healthy = obs.health == Health::Up;
        let (eligible, why, next) = match self.replication.is_some() {
            false => (true, String::new(), Duration::from_secs(1)),
            true => {
                let role = self.role();
                let plan = self.plan_and_execute(role, healthy).await;
                (plan.eligible, plan.rule.to_string(), plan.next_check)
            }
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

    async fn observe(rep: &mut Replication, healthy: bool) -> (Option<Snapshot>, Option<Snapshot>) {
        let (local, peer) = rep.executor.observe().await;
        let local = if healthy { local.ok() } else { None };
        (local, peer.ok())
    }

    async fn plan_and_execute(&mut self, role: Role, healthy: bool) -> Plan {
        let rep = self.replication.as_mut().expect("replication configured");
        let (local, peer) = Self::observe(rep, healthy).await;
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
            info!(
                role = ?role, rule = %rule, eligible = plan.eligible,
                local_replid = %replid(&local), local_offset = %offsets(&local),
                peer_replid = %replid(&peer), peer_offset = %offsets(&peer),
                "replication decision"
            );
            self.statelog.record(
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
            self.statelog.record(
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
        self.statelog.record(
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
        let Some(timeout) = self.replication.as_ref().map(|r| r.catch_up_timeout) else {
            return;
        };
        if self.vrrp_status.borrow().state != State::Master {
            return;
        }
        let deadline = Instant::now() + timeout + Duration::from_secs(1);
        let healthy = self.health.borrow().health == Health::Up;
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
