//! What a soak did, counted: faults per kind, recoveries, writes, the
//! asynchronous tails lost, violations, agent memory and restarts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::schedule::{Fault, Kind};
use crate::writer::ranges;

/// Counts of one fault kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KindStats {
    /// Faults injected.
    pub injected: usize,
    /// Recoveries checked (the pair settled and every check ran).
    pub recovered: usize,
    /// The longest time from heal to settled.
    pub max_recovery: Duration,
    /// Its bound.
    pub bound: Duration,
    /// Writes lost as asynchronous tails of the kills of this kind.
    pub tail_lost: usize,
    /// Violations found after faults of this kind.
    pub violations: usize,
}

/// Writes lost as the asynchronous tail of one kill of a master's Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tail {
    /// The fault that killed it.
    pub fault: Fault,
    /// The host whose Redis it was.
    pub host: usize,
    /// The sequence numbers lost.
    pub keys: Vec<u64>,
}

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The fault after which it was found (`None`: at start-up or the end).
    pub fault: Option<Fault>,
    /// What broke.
    pub what: String,
}

/// The soak's counts.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Per kind, in [`Kind::ALL`] order.
    pub kinds: BTreeMap<Kind, KindStats>,
    /// Writes the client saw acknowledged.
    pub acked: usize,
    /// Writes the client saw fail (refused, timed out: not acknowledged, so
    /// never owed).
    pub failed: usize,
    /// Asynchronous tails lost.
    pub tails: Vec<Tail>,
    /// Violations.
    pub violations: Vec<Violation>,
    /// The largest agent `VmRSS` seen, per host, kB.
    pub max_rss_kb: [u64; 2],
    /// Agents started again.
    pub agent_restarts: usize,
    /// How long the soak ran.
    pub elapsed: Duration,
}

impl Report {
    /// The stats of `kind`, created if new.
    pub fn kind(&mut self, kind: Kind) -> &mut KindStats {
        self.kinds.entry(kind).or_default()
    }

    /// Faults injected in all.
    pub fn injected(&self) -> usize {
        self.kinds.values().map(|k| k.injected).sum()
    }

    /// Writes lost as asynchronous tails, in all.
    pub fn tail_lost(&self) -> usize {
        self.tails.iter().map(|t| t.keys.len()).sum()
    }

    /// The table printed at the end.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<18} {:>8} {:>9} {:>13} {:>8} {:>9} {:>10}",
            "fault", "injected", "recovered", "max recovery", "bound", "tail lost", "violations"
        );
        for (kind, k) in &self.kinds {
            let _ = writeln!(
                out,
                "{:<18} {:>8} {:>9} {:>12.2}s {:>7.1}s {:>9} {:>10}",
                kind.name(),
                k.injected,
                k.recovered,
                k.max_recovery.as_secs_f64(),
                k.bound.as_secs_f64(),
                k.tail_lost,
                k.violations
            );
        }
        let recovered: usize = self.kinds.values().map(|k| k.recovered).sum();
        let _ = writeln!(
            out,
            "{:<18} {:>8} {:>9} {:>13} {:>8} {:>9} {:>10}",
            "all",
            self.injected(),
            recovered,
            "",
            "",
            self.tail_lost(),
            self.violations.len()
        );
        let _ = writeln!(
            out,
            "ran {:.1} min; writes acknowledged {}, failed (not acknowledged) {}",
            self.elapsed.as_secs_f64() / 60.0,
            self.acked,
            self.failed
        );
        let _ = writeln!(
            out,
            "writes lost as the asynchronous tail of a master's Redis SIGKILLed: {}",
            self.tail_lost()
        );
        for t in &self.tails {
            let _ = writeln!(
                out,
                "  {} (host {}): {} writes ({})",
                t.fault,
                t.host,
                t.keys.len(),
                ranges(&t.keys)
            );
        }
        let _ = writeln!(
            out,
            "agent max RSS: host 1 {} kB, host 2 {} kB; agent restarts: {}",
            self.max_rss_kb[0], self.max_rss_kb[1], self.agent_restarts
        );
        let _ = writeln!(out, "violations: {}", self.violations.len());
        for v in &self.violations {
            let after = v
                .fault
                .as_ref()
                .map_or_else(|| "outside any fault".to_owned(), |f| format!("after {f}"));
            let _ = writeln!(out, "  {after}: {}", v.what);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::schedule::Target;

    #[test]
    fn the_table_counts() {
        let f = Fault {
            n: 2,
            kind: Kind::RedisKillFiles,
            target: Target::Master,
            hold: Duration::from_secs(1),
            param: 0,
            quiet: Duration::from_secs(1),
        };
        let mut r = Report::default();
        r.kind(Kind::RedisKillFiles).injected = 2;
        r.kind(Kind::RedisKillFiles).recovered = 2;
        r.kind(Kind::RedisKillFiles).tail_lost = 3;
        r.kind(Kind::Loss).injected = 1;
        r.tails.push(Tail {
            fault: f.clone(),
            host: 1,
            keys: vec![7, 8, 9],
        });
        r.violations.push(Violation {
            fault: Some(f),
            what: "boom".into(),
        });
        let t = r.render();
        assert_eq!(r.injected(), 3);
        assert_eq!(r.tail_lost(), 3);
        assert!(t.contains("redis-kill-files"), "{t}");
        assert!(t.contains("(host 1): 3 writes (7-9)"), "{t}");
        assert!(t.contains("after #2 redis-kill-files on the master"), "{t}");
        assert!(t.contains("violations: 1"), "{t}");
    }
}
