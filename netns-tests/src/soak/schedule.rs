//! The soak's schedule of faults: a pure function of a seed and the fault kinds
//! allowed, so that a failing run can be replayed from its seed alone.
//!
//! The first draws are a seeded shuffle of every allowed kind (each appears once,
//! so even a short run covers them all); after that each fault's kind is drawn
//! uniformly. Every fault also draws its target (the pair's master or its replica,
//! resolved to a host when it is injected), how long it stays active, a parameter
//! of its kind, and the quiet time after its recovery.
//!
//! ```
//! use netns_tests::soak::schedule::{Kind, Schedule};
//!
//! let a: Vec<_> = Schedule::new(7, Kind::ALL.to_vec()).take(50).collect();
//! let b: Vec<_> = Schedule::new(7, Kind::ALL.to_vec()).take(50).collect();
//! assert_eq!(a, b);
//! ```

use std::fmt;
use std::time::Duration;

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, well-mixed generator, enough
/// for a test schedule; no crate needed.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`), by multiply-and-shift.
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A duration in `[lo, hi]`, in whole milliseconds.
    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let (lo, hi) = (lo.as_millis() as u64, hi.as_millis() as u64);
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

/// A kind of fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// SIGKILL of a `redis-server`, restarted with its directory emptied.
    RedisKillEmpty,
    /// SIGKILL of a `redis-server`, restarted from its files (RDB or AOF).
    RedisKillFiles,
    /// SIGSTOP of a `redis-server`, SIGCONT after the hold.
    RedisStop,
    /// SIGSTOP of a redha agent, SIGCONT after the hold.
    AgentStop,
    /// SIGKILL of a redha agent, started again after the hold.
    AgentKill,
    /// SIGTERM of a redha agent (it must exit 0), started again after the hold.
    AgentTerm,
    /// The host cut off the switch (carrier kept), healed after the hold.
    Partition,
    /// Random loss of the host's packets, both ways (nftables).
    Loss,
    /// A slow host link (tbf) that queues: delay under load, both ways.
    Delay,
    /// The host's `eth0` set down, up after the hold.
    LinkDown,
    /// The VIP deleted by hand on its holder.
    VipDelete,
    /// The agent's file changed, then SIGHUP.
    Reload,
}

impl Kind {
    /// Does this fault keep the two agents from hearing each other while it lasts
    /// (both may then rightly hold the VIP)?
    pub fn splits_the_pair(self) -> bool {
        matches!(self, Kind::Partition | Kind::Loss | Kind::Delay)
    }

    /// Every kind, in a fixed order.
    pub const ALL: [Kind; 12] = [
        Kind::RedisKillEmpty,
        Kind::RedisKillFiles,
        Kind::RedisStop,
        Kind::AgentStop,
        Kind::AgentKill,
        Kind::AgentTerm,
        Kind::Partition,
        Kind::Loss,
        Kind::Delay,
        Kind::LinkDown,
        Kind::VipDelete,
        Kind::Reload,
    ];

    /// The name used on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Kind::RedisKillEmpty => "redis-kill-empty",
            Kind::RedisKillFiles => "redis-kill-files",
            Kind::RedisStop => "redis-stop",
            Kind::AgentStop => "agent-stop",
            Kind::AgentKill => "agent-kill",
            Kind::AgentTerm => "agent-term",
            Kind::Partition => "partition",
            Kind::Loss => "loss",
            Kind::Delay => "delay",
            Kind::LinkDown => "link-down",
            Kind::VipDelete => "vip-delete",
            Kind::Reload => "reload",
        }
    }

    /// The kind named `name` (see [`Kind::name`]).
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// A comma-separated list of names; `all` means every kind. Duplicates are
    /// dropped; the order is that of [`Kind::ALL`].
    pub fn parse_list(list: &str) -> Result<Vec<Kind>, String> {
        let mut kinds = Vec::new();
        for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if word == "all" {
                kinds.extend(Kind::ALL);
                continue;
            }
            kinds.push(Kind::parse(word).ok_or_else(|| {
                format!(
                    "unknown fault kind `{word}` (kinds: all, {})",
                    Kind::ALL.map(Kind::name).join(", ")
                )
            })?);
        }
        if kinds.is_empty() {
            return Err("no fault kinds given".into());
        }
        kinds.sort();
        kinds.dedup();
        Ok(kinds)
    }

    /// How long a fault of this kind stays active (a dead process stays dead, a
    /// cut stays cut...) before it is healed: the range the schedule draws from.
    /// The ranges straddle the protocol's bounds: shorter and longer than the
    /// 4 s address lease and the 3.6 s Master_Down_Interval, than `fall` failed
    /// checks of a stopped Redis.
    pub fn hold_range(self) -> (Duration, Duration) {
        let ms = Duration::from_millis;
        match self {
            Kind::RedisKillEmpty | Kind::RedisKillFiles => (ms(0), ms(4000)),
            Kind::RedisStop => (ms(500), ms(6000)),
            Kind::AgentStop => (ms(500), ms(10_000)),
            Kind::AgentKill | Kind::AgentTerm => (ms(0), ms(5000)),
            Kind::Partition => (ms(2000), ms(12_000)),
            Kind::Loss | Kind::Delay => (ms(5000), ms(20_000)),
            Kind::LinkDown => (ms(1000), ms(8000)),
            Kind::VipDelete | Kind::Reload => (ms(0), ms(0)),
        }
    }

    /// Does the fault have a target host (else it acts on the VIP's holder)?
    fn targeted(self) -> bool {
        self != Kind::VipDelete
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which Redis host a fault hits, in terms of the settled pair it meets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// The VIP holder, whose Redis is the master.
    Master,
    /// The other host, whose Redis is the replica.
    Replica,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Target::Master => "master",
            Target::Replica => "replica",
        })
    }
}

/// The loss percentages [`Kind::Loss`] draws from (the issue's example is 30 %).
pub const LOSS_PERCENT: [u32; 3] = [10, 20, 30];
/// The link rates (kbit/s) [`Kind::Delay`] draws from; the client's writes and
/// their replication need about 100 kbit/s, so the slower ones keep the queue
/// full (the tbf `latency`, 200 ms, of delay) and drop what overflows it.
pub const DELAY_RATE_KBIT: [u32; 3] = [64, 128, 512];
/// What a [`Kind::Reload`] changes: 0, the node's priority (it stays on the
/// same side of the peer's); 1, `[redis] check_timeout`.
pub const RELOAD_CHANGES: u32 = 2;

/// One fault of the schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Its place in the schedule, from 1.
    pub n: usize,
    /// What it does.
    pub kind: Kind,
    /// Whom it hits ([`Target::Master`] for [`Kind::VipDelete`]).
    pub target: Target,
    /// How long it stays active before it is healed.
    pub hold: Duration,
    /// The kind's parameter: the loss percentage ([`LOSS_PERCENT`]), the link
    /// rate ([`DELAY_RATE_KBIT`]), the reload's change ([`RELOAD_CHANGES`]); 0
    /// otherwise.
    pub param: u32,
    /// How long the soak runs without a fault after this one has recovered and
    /// been checked.
    pub quiet: Duration,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} {} on the {}", self.n, self.kind, self.target)?;
        match self.kind {
            Kind::Loss => write!(f, ", {}% loss", self.param)?,
            Kind::Delay => write!(f, ", {} kbit/s link", self.param)?,
            Kind::Reload if self.param == 0 => f.write_str(", priority changed")?,
            Kind::Reload => f.write_str(", check_timeout changed")?,
            _ => {}
        }
        if !self.hold.is_zero() {
            write!(f, ", held {:.1}s", self.hold.as_secs_f64())?;
        }
        Ok(())
    }
}

/// The schedule: an endless iterator of [`Fault`]s.
#[derive(Clone, Debug)]
pub struct Schedule {
    rng: SplitMix64,
    kinds: Vec<Kind>,
    /// The shuffled kinds still to come before uniform draws start.
    first: Vec<Kind>,
    n: usize,
}

/// The quiet time after each recovery is drawn from this range.
pub const QUIET: (Duration, Duration) = (Duration::from_millis(500), Duration::from_millis(3000));

impl Schedule {
    /// The schedule of `seed` over `kinds` (not empty; sorted and deduplicated by
    /// [`Kind::parse_list`] if it came from a user).
    pub fn new(seed: u64, kinds: Vec<Kind>) -> Self {
        assert!(!kinds.is_empty(), "a schedule needs at least one kind");
        let mut rng = SplitMix64::new(seed);
        let mut first = kinds.clone();
        // Fisher-Yates; popped from the back.
        for i in (1..first.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            first.swap(i, j);
        }
        Schedule {
            rng,
            kinds,
            first,
            n: 0,
        }
    }

    /// The kinds this schedule draws from.
    pub fn kinds(&self) -> &[Kind] {
        &self.kinds
    }
}

impl Iterator for Schedule {
    type Item = Fault;

    fn next(&mut self) -> Option<Fault> {
        self.n += 1;
        let rng = &mut self.rng;
        let kind = match self.first.pop() {
            Some(k) => k,
            None => self.kinds[rng.below(self.kinds.len() as u64) as usize],
        };
        let target = if rng.below(2) == 0 {
            Target::Master
        } else {
            Target::Replica
        };
        let (lo, hi) = kind.hold_range();
        let hold = rng.between(lo, hi);
        let pick = |rng: &mut SplitMix64, from: &[u32]| from[rng.below(from.len() as u64) as usize];
        let param = match kind {
            Kind::Loss => pick(rng, &LOSS_PERCENT),
            Kind::Delay => pick(rng, &DELAY_RATE_KBIT),
            Kind::Reload => rng.below(u64::from(RELOAD_CHANGES)) as u32,
            _ => 0,
        };
        let quiet = rng.between(QUIET.0, QUIET.1);
        Some(Fault {
            n: self.n,
            kind,
            target: if kind.targeted() {
                target
            } else {
                Target::Master
            },
            hold,
            param,
            quiet,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn draw(seed: u64, kinds: &[Kind], n: usize) -> Vec<Fault> {
        Schedule::new(seed, kinds.to_vec()).take(n).collect()
    }

    #[test]
    fn splitmix_matches_the_reference() {
        // The first outputs for seed 1234567 (the reference implementation's).
        let mut r = SplitMix64::new(1_234_567);
        assert_eq!(r.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(r.next_u64(), 3_203_168_211_198_807_973);
        assert_eq!(r.next_u64(), 9_817_491_932_198_370_423);
    }

    #[test]
    fn same_seed_same_schedule() {
        for seed in [0, 1, 42, u64::MAX] {
            assert_eq!(
                draw(seed, &Kind::ALL, 500),
                draw(seed, &Kind::ALL, 500),
                "seed {seed}"
            );
        }
        assert_ne!(draw(1, &Kind::ALL, 50), draw(2, &Kind::ALL, 50));
    }

    #[test]
    fn the_first_draws_cover_every_kind_once() {
        for seed in 0..200 {
            let first: Vec<Kind> = draw(seed, &Kind::ALL, Kind::ALL.len())
                .into_iter()
                .map(|f| f.kind)
                .collect();
            let set: BTreeSet<Kind> = first.iter().copied().collect();
            assert_eq!(set.len(), Kind::ALL.len(), "seed {seed}: {first:?}");
        }
        let some = [Kind::Loss, Kind::Reload, Kind::AgentStop];
        let first: BTreeSet<Kind> = draw(9, &some, 3).into_iter().map(|f| f.kind).collect();
        assert_eq!(first, some.into_iter().collect());
    }

    #[test]
    fn a_long_schedule_draws_every_kind_target_and_parameter_in_range() {
        let faults = draw(3, &Kind::ALL, 5000);
        for (i, f) in faults.iter().enumerate() {
            assert_eq!(f.n, i + 1);
            let (lo, hi) = f.kind.hold_range();
            assert!(f.hold >= lo && f.hold <= hi, "{f:?}");
            assert!(f.quiet >= QUIET.0 && f.quiet <= QUIET.1, "{f:?}");
            match f.kind {
                Kind::Loss => assert!(LOSS_PERCENT.contains(&f.param), "{f:?}"),
                Kind::Delay => assert!(DELAY_RATE_KBIT.contains(&f.param), "{f:?}"),
                Kind::Reload => assert!(f.param < RELOAD_CHANGES, "{f:?}"),
                Kind::VipDelete => assert_eq!((f.param, f.target), (0, Target::Master)),
                _ => assert_eq!(f.param, 0, "{f:?}"),
            }
        }
        for kind in Kind::ALL {
            let of: Vec<&Fault> = faults.iter().filter(|f| f.kind == kind).collect();
            // 5000 draws over 12 kinds: about 417 each.
            assert!(of.len() > 300, "{kind}: {} draws", of.len());
            if kind.targeted() {
                for t in [Target::Master, Target::Replica] {
                    assert!(
                        of.iter().any(|f| f.target == t),
                        "{kind} never hits the {t}"
                    );
                }
            }
        }
        for p in LOSS_PERCENT {
            assert!(faults.iter().any(|f| f.kind == Kind::Loss && f.param == p));
        }
        for p in 0..RELOAD_CHANGES {
            assert!(
                faults
                    .iter()
                    .any(|f| f.kind == Kind::Reload && f.param == p)
            );
        }
    }

    #[test]
    fn kind_lists_parse() {
        assert_eq!(Kind::parse_list("all").unwrap(), Kind::ALL);
        assert_eq!(
            Kind::parse_list("reload, loss,reload").unwrap(),
            [Kind::Loss, Kind::Reload]
        );
        for k in Kind::ALL {
            assert_eq!(Kind::parse(k.name()), Some(k));
        }
        assert!(
            Kind::parse_list("loss,bogus")
                .unwrap_err()
                .contains("bogus")
        );
        assert!(Kind::parse_list("").is_err());
    }

    #[test]
    fn faults_describe_themselves() {
        let f = Fault {
            n: 3,
            kind: Kind::Loss,
            target: Target::Replica,
            hold: Duration::from_millis(4300),
            param: 30,
            quiet: Duration::from_secs(1),
        };
        assert_eq!(f.to_string(), "#3 loss on the replica, 30% loss, held 4.3s");
    }
}
