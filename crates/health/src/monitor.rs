//! The health monitor: a task that checks one Redis and publishes what it
//! sees on a `watch` channel.
//!
//! Every [`CheckConfig::interval`] it runs `PING` then `INFO server
//! replication keyspace persistence` under one deadline
//! ([`CheckConfig::timeout`], connecting included) and feeds the outcome to
//! a [`Checker`]. It keeps its connection open between checks, and the
//! moment that connection drops (the Redis was killed, or restarts) it
//! counts one failure without waiting for the next tick, then checks again
//! after [`CheckConfig::fast_recheck`]; a refused connection also brings the
//! next check forward. So with `fall = 2` a killed Redis is down after about
//! `fast_recheck` (100 ms by default), while a slow Redis (timeouts, error
//! replies) is judged at the regular interval.
//!
//! Each change of health is logged (`from`, `to`, `reason`) and carried in
//! the [`Observation`] that reports it. A change of `run_id` between two
//! successful checks (a restart) is reported too: see
//! [`Observation::restarted`].
//!
//! ```no_run
//! use health::{CheckConfig, Health, RedisTarget, monitor};
//!
//! # async fn example() {
//! let handle = monitor::spawn(RedisTarget::new("127.0.0.1:6379"), CheckConfig::default());
//! let mut rx = handle.subscribe();
//! while rx.changed().await.is_ok() {
//!     let obs = rx.borrow_and_update().clone();
//!     if let Some(change) = &obs.change {
//!         println!("{change}");
//!     }
//!     if obs.health == Health::Up && obs.restarted {
//!         println!("restarted: keys={:?}", obs.snapshot.map(|s| s.keys));
//!     }
//! }
//! # }
//! ```

use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::sleep_until;
use tracing::{debug, info, warn};

use crate::check::{CheckConfig, Checker, Health, HealthChange, Outcome};
use crate::client::{Client, ClientOptions, Deadline, RedisTarget};
use crate::snapshot::Snapshot;

/// What the monitor knows after its latest check (or lost connection).
#[derive(Clone, Debug, PartialEq)]
pub struct Observation {
    /// The Redis ([`RedisTarget::address`]).
    pub address: String,
    /// Health after this event.
    pub health: Health,
    /// The change of health this event caused, if any.
    pub change: Option<HealthChange>,
    /// What INFO said at this check. `None` when INFO did not answer; may be
    /// `Some` on a failed check whose PING got an error reply (a Redis still
    /// `LOADING` answers INFO).
    pub snapshot: Option<Snapshot>,
    /// Why this check failed; `None` after a success.
    pub last_error: Option<String>,
    /// Round-trip time of this check's PING.
    pub latency: Option<Duration>,
    /// When this check started (or the connection was found lost).
    pub checked_at: Instant,
    /// Failed checks in a row (a lost connection counts as one).
    pub consecutive_failures: u32,
    /// Successful checks in a row.
    pub consecutive_successes: u32,
    /// Events so far: checks plus lost connections. 0 before the first.
    pub checks: u64,
    /// Failed events so far (failed checks plus lost connections).
    pub failures: u64,
    /// This check's `run_id` differs from the one seen at the previous
    /// successful check: the Redis restarted in between. True for that one
    /// observation only; a consumer that may skip observations compares
    /// [`restarts`](Self::restarts) or the run ids instead.
    pub restarted: bool,
    /// The `run_id` before the latest restart seen.
    pub previous_run_id: Option<String>,
    /// Restarts seen since the monitor started.
    pub restarts: u64,
}

impl Observation {
    fn initial(address: String, now: Instant) -> Self {
        Self {
            address,
            health: Health::Unknown,
            change: None,
            snapshot: None,
            last_error: None,
            latency: None,
            checked_at: now,
            consecutive_failures: 0,
            consecutive_successes: 0,
            checks: 0,
            failures: 0,
            restarted: false,
            previous_run_id: None,
            restarts: 0,
        }
    }
}

/// A running monitor. Dropping it stops the task.
#[derive(Debug)]
pub struct MonitorHandle {
    rx: watch::Receiver<Observation>,
    task: JoinHandle<()>,
}

impl MonitorHandle {
    /// A receiver of observations (each call gives an independent one).
    pub fn subscribe(&self) -> watch::Receiver<Observation> {
        self.rx.clone()
    }

    /// The latest observation.
    pub fn latest(&self) -> Observation {
        self.rx.borrow().clone()
    }

    /// Stops the task (also done on drop).
    pub fn stop(self) {}
}

impl Drop for MonitorHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts monitoring `target` on the current tokio runtime (panics outside
/// one). Validate `config` first ([`CheckConfig::validate`]): zero durations
/// are raised to 1 ms, zero thresholds to 1.
pub fn spawn(target: RedisTarget, config: CheckConfig) -> MonitorHandle {
    let (tx, rx) = watch::channel(Observation::initial(target.address.clone(), Instant::now()));
    let task = tokio::spawn(run(target, config, tx));
    MonitorHandle { rx, task }
}

struct CheckResult {
    outcome: Outcome,
    snapshot: Option<Snapshot>,
    latency: Option<Duration>,
    /// Nobody there (refused or lost): check again soon.
    connection_failure: bool,
}

async fn check(client: &mut Client, timeout: Duration) -> CheckResult {
    let deadline = Deadline::after(timeout);
    let failure = |e: crate::ClientError, snapshot| CheckResult {
        connection_failure: e.is_connection_failure(),
        outcome: Outcome::Failure(e.to_string()),
        snapshot,
        latency: None,
    };
    match client.ping_by(deadline).await {
        Ok(rtt) => match client.info_by(deadline).await {
            Ok(snapshot) => CheckResult {
                outcome: Outcome::Success,
                snapshot: Some(snapshot),
                latency: Some(rtt),
                connection_failure: false,
            },
            Err(e) => failure(e, None),
        },
        Err(e) if e.is_reply() => {
            // It answers, but not well (LOADING, ...): show what INFO says.
            let snapshot = client.info_by(deadline).await.ok();
            failure(e, snapshot)
        }
        Err(e) => failure(e, None),
    }
}

struct Monitor {
    address: String,
    checker: Checker,
    tx: watch::Sender<Observation>,
    checks: u64,
    failures: u64,
    run_id: Option<String>,
    previous_run_id: Option<String>,
    restarts: u64,
}

impl Monitor {
    fn record(&mut self, at: tokio::time::Instant, result: CheckResult) {
        let at = at.into_std();
        self.checks += 1;
        let last_error = match &result.outcome {
            Outcome::Success => None,
            Outcome::Failure(why) => {
                self.failures += 1;
                Some(why.clone())
            }
        };
        let change = self.checker.record(result.outcome, at);
        let mut restarted = false;
        if let Some(snapshot) = &result.snapshot {
            if let Some(old) = &self.run_id
                && *old != snapshot.run_id
            {
                restarted = true;
                self.restarts += 1;
                info!(
                    redis = %self.address,
                    old_run_id = %old,
                    new_run_id = %snapshot.run_id,
                    uptime_s = snapshot.uptime_in_seconds,
                    keys = snapshot.keys,
                    replid = %snapshot.master_replid,
                    offset = snapshot.offset(),
                    "redis restarted (run_id changed)"
                );
                self.previous_run_id = Some(old.clone());
            }
            self.run_id = Some(snapshot.run_id.clone());
        }
        if let Some(change) = &change {
            let offset = result.snapshot.as_ref().map(Snapshot::offset);
            match change.to {
                Health::Down => warn!(
                    redis = %self.address, from = %change.from, to = %change.to,
                    reason = %change.reason, "redis health changed"
                ),
                _ => info!(
                    redis = %self.address, from = %change.from, to = %change.to,
                    reason = %change.reason, offset, "redis health changed"
                ),
            }
        } else if let Some(error) = &last_error {
            debug!(redis = %self.address, error = %error, health = %self.checker.health(), "check failed");
        }
        self.tx.send_replace(Observation {
            address: self.address.clone(),
            health: self.checker.health(),
            change,
            snapshot: result.snapshot,
            last_error,
            latency: result.latency,
            checked_at: at,
            consecutive_failures: self.checker.consecutive_failures(),
            consecutive_successes: self.checker.consecutive_successes(),
            checks: self.checks,
            failures: self.failures,
            restarted,
            previous_run_id: self.previous_run_id.clone(),
            restarts: self.restarts,
        });
    }
}

async fn run(target: RedisTarget, config: CheckConfig, tx: watch::Sender<Observation>) {
    let floor = Duration::from_millis(1);
    let interval = config.interval.max(floor);
    let timeout = config.timeout.max(floor);
    let fast_recheck = config.fast_recheck.max(floor);
    let mut monitor = Monitor {
        address: target.address.clone(),
        checker: Checker::new(&config),
        tx,
        checks: 0,
        failures: 0,
        run_id: None,
        previous_run_id: None,
        restarts: 0,
    };
    let mut client = Client::new(
        target,
        ClientOptions {
            connect_timeout: timeout,
            response_timeout: timeout,
        },
    );
    let mut next = tokio::time::Instant::now();
    loop {
        let lost = client.connection_lost();
        tokio::select! {
            () = monitor.tx.closed() => return,
            () = lost => {
                let now = tokio::time::Instant::now();
                client.disconnect();
                monitor.record(now, CheckResult {
                    outcome: Outcome::Failure("connection lost".into()),
                    snapshot: None,
                    latency: None,
                    connection_failure: true,
                });
                if monitor.checker.health() != Health::Down {
                    next = next.min(now + fast_recheck);
                }
            }
            () = sleep_until(next) => {
                let start = tokio::time::Instant::now();
                let result = check(&mut client, timeout).await;
                let soon = result.connection_failure;
                monitor.record(start, result);
                next = if soon && monitor.checker.health() != Health::Down {
                    tokio::time::Instant::now() + fast_recheck
                } else {
                    (start + interval).max(tokio::time::Instant::now())
                };
            }
        }
    }
}
