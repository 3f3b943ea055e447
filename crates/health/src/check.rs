//! The fall/rise counter: sans-IO, time comes in as an argument.
//!
//! A Redis is [`Health::Down`] only after `fall` consecutive failed checks
//! (each with its own deadline) and [`Health::Up`] only after `rise`
//! consecutive successful ones, so one slow answer does not fail over and
//! one lucky answer does not fail back. It starts [`Health::Unknown`].

use std::fmt;
use std::time::{Duration, Instant};

use thiserror::Error;

/// How often and how patiently to check a Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckConfig {
    /// Time between the starts of two regular checks. Default 1 s.
    pub interval: Duration,
    /// Deadline of one check (connect, PING and INFO together). Default
    /// 500 ms.
    pub timeout: Duration,
    /// Consecutive failures that make a Redis down. Default 2.
    pub fall: u32,
    /// Consecutive successes that make a Redis up. Default 2.
    pub rise: u32,
    /// After a connection-level failure (the connection dropped or was
    /// refused) while not yet down, the next check comes after this instead
    /// of `interval`, so that a killed Redis is down after about
    /// `fall × fast_recheck`. Default 100 ms.
    pub fast_recheck: Duration,
}

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(500),
            fall: 2,
            rise: 2,
            fast_recheck: Duration::from_millis(100),
        }
    }
}

/// Why a [`CheckConfig`] was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum CheckConfigError {
    /// `interval` is zero.
    #[error("interval must be more than 0")]
    ZeroInterval,
    /// `timeout` is zero.
    #[error("timeout must be more than 0")]
    ZeroTimeout,
    /// `fast_recheck` is zero.
    #[error("fast_recheck must be more than 0")]
    ZeroFastRecheck,
    /// `fall` is zero.
    #[error("fall must be at least 1")]
    ZeroFall,
    /// `rise` is zero.
    #[error("rise must be at least 1")]
    ZeroRise,
}

impl CheckConfig {
    /// Checks that every duration is positive and `fall`, `rise` ≥ 1.
    pub fn validate(&self) -> Result<(), CheckConfigError> {
        if self.interval.is_zero() {
            return Err(CheckConfigError::ZeroInterval);
        }
        if self.timeout.is_zero() {
            return Err(CheckConfigError::ZeroTimeout);
        }
        if self.fast_recheck.is_zero() {
            return Err(CheckConfigError::ZeroFastRecheck);
        }
        if self.fall == 0 {
            return Err(CheckConfigError::ZeroFall);
        }
        if self.rise == 0 {
            return Err(CheckConfigError::ZeroRise);
        }
        Ok(())
    }
}

/// The health of a Redis as the fall/rise counter sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Health {
    /// Not yet `fall` failures nor `rise` successes since start.
    Unknown,
    /// `rise` consecutive successes.
    Up,
    /// `fall` consecutive failures.
    Down,
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        })
    }
}

/// The result of one check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The Redis answered well in time.
    Success,
    /// It did not; the text says why (it ends up in the change's reason).
    Failure(String),
}

/// A change of [`Health`], with the reason to log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthChange {
    /// The health before.
    pub from: Health,
    /// The health after.
    pub to: Health,
    /// Why, for the log: the count against the threshold and the last
    /// failure.
    pub reason: String,
    /// When (the `now` of the check that changed it).
    pub at: Instant,
}

impl fmt::Display for HealthChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "from={} to={} reason={}",
            self.from, self.to, self.reason
        )
    }
}

/// Counts consecutive check outcomes against `fall` and `rise`.
#[derive(Clone, Debug)]
pub struct Checker {
    fall: u32,
    rise: u32,
    health: Health,
    successes: u32,
    failures: u32,
    streak_start: Option<Instant>,
    last_failure: Option<String>,
}

impl Checker {
    /// A checker in [`Health::Unknown`] with the thresholds of `config`
    /// (a zero threshold counts as 1).
    pub fn new(config: &CheckConfig) -> Self {
        Self::with_thresholds(config.fall, config.rise)
    }

    /// A checker in [`Health::Unknown`] going down after `fall` consecutive
    /// failures and up after `rise` consecutive successes (0 counts as 1).
    pub fn with_thresholds(fall: u32, rise: u32) -> Self {
        Self {
            fall: fall.max(1),
            rise: rise.max(1),
            health: Health::Unknown,
            successes: 0,
            failures: 0,
            streak_start: None,
            last_failure: None,
        }
    }

    /// The current health.
    pub fn health(&self) -> Health {
        self.health
    }

    /// Failures since the last success.
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// Successes since the last failure.
    pub fn consecutive_successes(&self) -> u32 {
        self.successes
    }

    /// The reason of the last failure, until the next success.
    pub fn last_failure(&self) -> Option<&str> {
        self.last_failure.as_deref()
    }

    /// Records the outcome of one check made at `now`; returns the change of
    /// health it causes, if any.
    pub fn record(&mut self, outcome: Outcome, now: Instant) -> Option<HealthChange> {
        match outcome {
            Outcome::Success => {
                if self.successes == 0 {
                    self.streak_start = Some(now);
                }
                self.successes = self.successes.saturating_add(1);
                self.failures = 0;
                self.last_failure = None;
                if self.health != Health::Up && self.successes >= self.rise {
                    let reason = format!(
                        "{} consecutive successful checks in {} (rise {})",
                        self.successes,
                        self.streak(now),
                        self.rise
                    );
                    return Some(self.change(Health::Up, reason, now));
                }
            }
            Outcome::Failure(why) => {
                if self.failures == 0 {
                    self.streak_start = Some(now);
                }
                self.failures = self.failures.saturating_add(1);
                self.successes = 0;
                let change = if self.health != Health::Down && self.failures >= self.fall {
                    let reason = format!(
                        "{} consecutive failed checks in {} (fall {}), last: {why}",
                        self.failures,
                        self.streak(now),
                        self.fall
                    );
                    Some(self.change(Health::Down, reason, now))
                } else {
                    None
                };
                self.last_failure = Some(why);
                return change;
            }
        }
        None
    }

    fn streak(&self, now: Instant) -> String {
        let span = self
            .streak_start
            .map(|start| now.saturating_duration_since(start))
            .unwrap_or_default();
        format!("{:.3}s", span.as_secs_f64())
    }

    fn change(&mut self, to: Health, reason: String, at: Instant) -> HealthChange {
        let from = std::mem::replace(&mut self.health, to);
        HealthChange {
            from,
            to,
            reason,
            at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(why: &str) -> Outcome {
        Outcome::Failure(why.into())
    }

    #[test]
    fn defaults() {
        let c = CheckConfig::default();
        assert_eq!(c.interval, Duration::from_secs(1));
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert_eq!((c.fall, c.rise), (2, 2));
        assert_eq!(c.fast_recheck, Duration::from_millis(100));
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn validation() {
        let ok = CheckConfig::default();
        let cases = [
            (
                CheckConfig {
                    interval: Duration::ZERO,
                    ..ok.clone()
                },
                CheckConfigError::ZeroInterval,
            ),
            (
                CheckConfig {
                    timeout: Duration::ZERO,
                    ..ok.clone()
                },
                CheckConfigError::ZeroTimeout,
            ),
            (
                CheckConfig {
                    fast_recheck: Duration::ZERO,
                    ..ok.clone()
                },
                CheckConfigError::ZeroFastRecheck,
            ),
            (
                CheckConfig {
                    fall: 0,
                    ..ok.clone()
                },
                CheckConfigError::ZeroFall,
            ),
            (
                CheckConfig {
                    rise: 0,
                    ..ok.clone()
                },
                CheckConfigError::ZeroRise,
            ),
        ];
        for (config, err) in cases {
            assert_eq!(config.validate(), Err(err));
        }
    }

    #[test]
    fn unknown_goes_up_after_rise_successes() {
        let t = Instant::now();
        let mut c = Checker::with_thresholds(2, 3);
        assert_eq!(c.health(), Health::Unknown);
        assert_eq!(c.record(Outcome::Success, t), None);
        assert_eq!(c.record(Outcome::Success, t + Duration::from_secs(1)), None);
        let change = c
            .record(Outcome::Success, t + Duration::from_secs(2))
            .unwrap();
        assert_eq!((change.from, change.to), (Health::Unknown, Health::Up));
        assert_eq!(
            change.reason,
            "3 consecutive successful checks in 2.000s (rise 3)"
        );
        assert_eq!(change.at, t + Duration::from_secs(2));
        assert_eq!(c.health(), Health::Up);
        // More successes change nothing.
        assert_eq!(c.record(Outcome::Success, t), None);
        assert_eq!(c.consecutive_successes(), 4);
    }

    #[test]
    fn unknown_goes_down_after_fall_failures() {
        let t = Instant::now();
        let mut c = Checker::with_thresholds(2, 2);
        assert_eq!(c.record(fail("connection refused"), t), None);
        assert_eq!(c.last_failure(), Some("connection refused"));
        let change = c
            .record(fail("timed out"), t + Duration::from_millis(100))
            .unwrap();
        assert_eq!((change.from, change.to), (Health::Unknown, Health::Down));
        assert_eq!(
            change.reason,
            "2 consecutive failed checks in 0.100s (fall 2), last: timed out"
        );
        assert_eq!(c.consecutive_failures(), 2);
        assert_eq!(c.record(fail("again"), t), None);
        assert_eq!(c.consecutive_failures(), 3);
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let t = Instant::now();
        let mut c = Checker::with_thresholds(3, 1);
        assert_eq!(c.record(Outcome::Success, t).unwrap().to, Health::Up);
        assert_eq!(c.record(fail("a"), t), None);
        assert_eq!(c.record(fail("b"), t), None);
        assert_eq!(c.record(Outcome::Success, t), None);
        assert_eq!(c.consecutive_failures(), 0);
        assert_eq!(c.last_failure(), None);
        assert_eq!(c.record(fail("c"), t), None);
        assert_eq!(c.record(fail("d"), t), None);
        let change = c.record(fail("e"), t).unwrap();
        assert_eq!((change.from, change.to), (Health::Up, Health::Down));
        assert!(change.reason.ends_with("last: e"), "{}", change.reason);
    }

    #[test]
    fn a_failure_resets_the_success_count() {
        let t = Instant::now();
        let mut c = Checker::with_thresholds(1, 2);
        assert_eq!(c.record(fail("x"), t).unwrap().to, Health::Down);
        assert_eq!(c.record(Outcome::Success, t), None);
        assert_eq!(c.record(fail("y"), t), None);
        assert_eq!(c.record(Outcome::Success, t), None);
        let change = c.record(Outcome::Success, t).unwrap();
        assert_eq!((change.from, change.to), (Health::Down, Health::Up));
        assert_eq!(
            change.to_string(),
            "from=down to=up reason=2 consecutive successful checks in 0.000s (rise 2)"
        );
    }

    #[test]
    fn zero_thresholds_count_as_one() {
        let t = Instant::now();
        let mut c = Checker::new(&CheckConfig {
            fall: 0,
            rise: 0,
            ..CheckConfig::default()
        });
        assert_eq!(c.record(Outcome::Success, t).unwrap().to, Health::Up);
        assert_eq!(c.record(fail("x"), t).unwrap().to, Health::Down);
    }

    #[test]
    fn flapping_never_changes_health() {
        let t = Instant::now();
        let mut c = Checker::with_thresholds(2, 2);
        for i in 0..100 {
            let outcome = if i % 2 == 0 {
                Outcome::Success
            } else {
                fail("flap")
            };
            assert_eq!(c.record(outcome, t), None);
        }
        assert_eq!(c.health(), Health::Unknown);
    }
}
