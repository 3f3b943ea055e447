//! A randomized fault soak (issue 10): hosts 1 and 2 run `redis-server` and
//! redha ([`pair::node`]: priorities 150 and 100, nopreempt), host 3 a client
//! writing `SET k:<n> <n>` through the VIP every 10 ms, under a schedule of
//! faults drawn from a seed ([`schedule`]). Each fault is injected, held for a
//! while, healed ([`faults`]); then the soak waits for the pair to settle within a
//! bound derived from the protocol and checks the invariants ([`checker`]);
//! [`report`] counts what happened. A violation ends the run (unless
//! [`Config::keep_going`]) with the seed, the schedule so far, the command that
//! replays it, and the pair's diagnostics.
//!
//! The `soak` binary runs it from the command line; `tests/soak.rs` runs a short
//! fixed-seed form in CI.

pub mod checker;
pub mod cluster;
pub mod faults;
pub mod report;
pub mod schedule;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use cluster::{Cluster, Persist};
use report::{Report, Tail, Violation};
use schedule::{Fault, Kind, Schedule};

use crate::Lab;
use crate::pair::{self, DISKLESS_SYNC_DELAY, role, vip_addr};
use crate::redha::{MARGIN, VIP};
use crate::timeline::{Timeline, log_window, utc};
use crate::writer::{Writer, ranges};

/// The client host.
pub const CLIENT: usize = 3;
/// One write every this long.
pub const WRITE_INTERVAL: Duration = Duration::from_millis(10);

/// What to run.
#[derive(Clone, Debug)]
pub struct Config {
    /// The schedule's seed.
    pub seed: u64,
    /// No fault starts after this long (the one running finishes).
    pub duration: Duration,
    /// The kinds drawn from.
    pub kinds: Vec<Kind>,
    /// Stop after this many faults, if given.
    pub max_faults: Option<usize>,
    /// What the Redis keep on disk.
    pub persist: Persist,
    /// Go on after a violation (as long as the pair settles again).
    pub keep_going: bool,
}

impl Config {
    /// The command line that runs this again.
    pub fn replay_command(&self) -> String {
        let mut s = format!(
            "REDHA_BIN=$PWD/target/release/redha target/release/soak --seed {} --duration {}s",
            self.seed,
            self.duration.as_secs()
        );
        if self.kinds != Kind::ALL {
            let names: Vec<&str> = self.kinds.iter().map(|k| k.name()).collect();
            let _ = write!(s, " --faults {}", names.join(","));
        }
        if let Some(n) = self.max_faults {
            let _ = write!(s, " --count {n}");
        }
        if self.persist != Persist::Mixed {
            let _ = write!(s, " --persistence {}", self.persist);
        }
        if self.keep_going {
            s.push_str(" --keep-going");
        }
        s
    }
}

/// How a soak ended.
#[derive(Debug)]
pub struct Outcome {
    /// The counts.
    pub report: Report,
    /// Each fault injected, with the host it hit.
    pub schedule: Vec<(Fault, usize)>,
    /// With a violation: the seed, the schedule so far, the replay command and
    /// the pair's diagnostics; empty otherwise.
    pub failure: String,
}

impl Outcome {
    /// Did every check hold?
    pub fn passed(&self) -> bool {
        self.report.violations.is_empty()
    }
}

/// The schedule so far, one fault a line.
fn schedule_text(schedule: &[(Fault, usize)]) -> String {
    schedule
        .iter()
        .map(|(f, host)| format!("  {f} (host {host})\n"))
        .collect()
}

/// Prints the seed, the schedule so far and the replay command if the soak
/// panics (a harness failure: a Redis that does not start again, ...).
struct PanicNote<'a> {
    cfg: &'a Config,
    schedule: RefCell<Vec<(Fault, usize)>>,
}

impl Drop for PanicNote<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "soak: panicked; seed {}, schedule so far:\n{}replay: {}",
                self.cfg.seed,
                schedule_text(&self.schedule.borrow()),
                self.cfg.replay_command()
            );
        }
    }
}

/// The run's state between faults.
struct Run<'lab, 'cfg> {
    cfg: &'cfg Config,
    c: Cluster<'lab>,
    timeline: RefCell<Timeline>,
    started: Instant,
    /// Two or more VIP holders at once, as sampled: since when (the current
    /// stretch), and the longest stretch since [`Run::watch_holders`].
    several: RefCell<(Option<Instant>, Duration)>,
}

impl Run<'_, '_> {
    /// Starts measuring stretches of several VIP holders afresh.
    fn watch_holders(&self) {
        *self.several.borrow_mut() = (None, Duration::ZERO);
    }

    /// The longest stretch of several VIP holders since [`Run::watch_holders`].
    fn longest_several(&self) -> Duration {
        let (since, longest) = *self.several.borrow();
        since.map_or(longest, |s| longest.max(s.elapsed()))
    }

    fn say(&self, what: &str) {
        let wall = utc(SystemTime::now());
        println!(
            "[{:>8.1}s {}] {what}",
            self.started.elapsed().as_secs_f64(),
            wall.split_once('T').map_or(wall.as_str(), |(_, t)| t)
        );
        self.timeline.borrow_mut().note(what);
    }

    /// Records the VIP holders and both Redis roles in the timeline.
    fn sample(&self) {
        let holders = self.c.lab.holders(VIP);
        {
            let mut several = self.several.borrow_mut();
            match (holders.len() > 1, several.0) {
                (true, None) => several.0 = Some(Instant::now()),
                (false, Some(since)) => {
                    several.1 = several.1.max(since.elapsed());
                    several.0 = None;
                }
                _ => {}
            }
        }
        let roles = [role(self.c.redis(1)), role(self.c.redis(2))];
        let mut t = self.timeline.borrow_mut();
        t.set("VIP holders", format!("{holders:?}"));
        for (i, r) in roles.into_iter().enumerate() {
            t.set(&format!("host {} Redis", i + 1), r);
        }
    }

    /// Samples until `d` has passed.
    fn hold(&self, d: Duration) {
        let end = Instant::now() + d;
        loop {
            self.sample();
            let now = Instant::now();
            if now >= end {
                return;
            }
            thread::sleep(checker::POLL.min(end - now));
        }
    }

    /// The timeline since `from`, both Redis, and the agents' and state logs'
    /// lines (without DEBUG) from `from` on.
    fn diagnostics(&self, from: Instant) -> String {
        let t = self.timeline.borrow();
        let zero = from.saturating_duration_since(t.started());
        let wall_from = t.wall(from);
        let now = SystemTime::now();
        let mut out = format!("--- lab dir {}\n", self.c.lab.dir().display());
        out.push_str("--- timeline (seconds from the fault):\n");
        for line in t.render_from(zero).lines() {
            let at: f64 = line
                .split_whitespace()
                .next()
                .and_then(|w| w.trim_end_matches('s').parse().ok())
                .unwrap_or(0.0);
            if at >= -1.0 {
                let _ = writeln!(out, "{line}");
            }
        }
        out.push_str("--- now:\n");
        out.push_str(&pair::redis_state(self.c.lab, &self.c.redis));
        for (host, proc) in &self.c.agents {
            let log = proc.log();
            let lines: Vec<&str> = log_window(&log, wall_from, now)
                .into_iter()
                .filter(|l| !l.contains(" DEBUG "))
                .collect();
            if lines.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "--- redha on host {host} (pid {}, {}), from the fault on:\n{}",
                proc.pid(),
                proc.log_path().display(),
                lines.join("\n")
            );
        }
        for host in 1..=2 {
            let log = pair::state_log(self.c.lab, host);
            let _ = writeln!(
                out,
                "--- state log of host {host}, from the fault on:\n{}",
                log_window(&log, wall_from, now).join("\n")
            );
        }
        out
    }
}

/// Runs the soak of `cfg` in a fresh lab (dropped at the end, namespaces and
/// processes with it; the logs stay in its directory). Prints each fault as it is
/// injected and each recovery; the caller prints [`Report::render`].
pub fn run(cfg: &Config) -> Outcome {
    let note = PanicNote {
        cfg,
        schedule: RefCell::new(Vec::new()),
    };
    let lab = Lab::new("soak", 3);
    println!(
        "soak: seed {}, duration {:?}, faults {}, persistence {}; lab {}\nreplay: {}",
        cfg.seed,
        cfg.duration,
        cfg.kinds
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(","),
        cfg.persist,
        lab.dir().display(),
        cfg.replay_command()
    );
    let c = Cluster::start(&lab, cfg.persist);
    let run = Run {
        cfg,
        c,
        timeline: RefCell::new(Timeline::new()),
        started: Instant::now(),
        several: RefCell::new((None, Duration::ZERO)),
    };
    let outcome = soak(run, &note);
    drop(note);
    outcome
}

fn soak(mut run: Run<'_, '_>, note: &PanicNote<'_>) -> Outcome {
    let cfg = run.cfg;
    let mut report = Report::default();
    let mut failure = String::new();
    let mut gone: BTreeSet<u64> = BTreeSet::new();
    let mut agents = checker::AgentWatch::default();
    let fail = |report: &mut Report,
                failure: &mut String,
                run: &Run<'_, '_>,
                fault: Option<&Fault>,
                since: Instant,
                what: String| {
        run.say(&format!("VIOLATION: {what}"));
        let text = format!(
            "soak: VIOLATION after {}: {what}\nseed {}; schedule so far:\n{}replay: {}\n{}",
            fault.map_or_else(|| "start-up".to_owned(), ToString::to_string),
            cfg.seed,
            schedule_text(&note.schedule.borrow()),
            cfg.replay_command(),
            run.diagnostics(since)
        );
        let path = run.c.lab.dir().join(format!(
            "soak-violation-{}.txt",
            report.violations.len() + 1
        ));
        let _ = std::fs::write(&path, &text);
        if failure.is_empty() {
            *failure = text;
        } else {
            let _ = writeln!(
                failure,
                "--- another violation, after {}: {what}\n    its diagnostics: {}",
                fault.map_or_else(|| "start-up".to_owned(), ToString::to_string),
                path.display()
            );
        }
        if let Some(f) = fault {
            report.kind(f.kind).violations += 1;
        }
        report.violations.push(Violation {
            fault: fault.cloned(),
            what,
        });
    };

    let first = pair::election_bound(run.c.node(1)) + DISKLESS_SYNC_DELAY + MARGIN * 2;
    let start = Instant::now();
    let mut master = match checker::wait_recovered(&run.c, first, || run.sample()) {
        Ok((m, took)) => {
            run.say(&format!("settled with host {m} as master after {took:?}"));
            m
        }
        Err(e) => {
            fail(&mut report, &mut failure, &run, None, start, e);
            return finish(run, report, note, failure, None);
        }
    };
    let writer = Writer::start(run.c.lab, CLIENT, vip_addr(), WRITE_INTERVAL);
    if !writer.wait_acked(50, Duration::from_secs(5)) {
        let what = format!(
            "the client cannot write through the VIP: {}",
            writer.snapshot().summary()
        );
        fail(&mut report, &mut failure, &run, None, start, what);
        return finish(run, report, note, failure, Some(writer));
    }

    let mut schedule = Schedule::new(cfg.seed, cfg.kinds.clone());
    while run.started.elapsed() < cfg.duration
        && cfg
            .max_faults
            .is_none_or(|n| note.schedule.borrow().len() < n)
    {
        let fault = schedule.next().expect("the schedule is endless");
        let mut active = faults::inject(&mut run.c, &fault, master, writer.snapshot().started);
        note.schedule
            .borrow_mut()
            .push((fault.clone(), active.host));
        report.kind(fault.kind).injected += 1;
        run.say(&format!("inject {fault} (host {})", active.host));
        run.watch_holders();
        run.hold(fault.hold);
        if fault.kind.splits_the_pair() {
            // Cut off, lossy or slow, each side may rightly hold the VIP until the
            // fault is healed; from then on the same bound holds.
            run.watch_holders();
        }
        faults::heal(&mut run.c, &mut active);
        let bound = checker::recovery_bound(fault.kind, &run.c);
        {
            let k = report.kind(fault.kind);
            k.bound = k.bound.max(bound);
        }
        let mut problems = std::mem::take(&mut active.problems);
        let recovered = checker::wait_recovered(&run.c, bound, || run.sample());
        let settled = match recovered {
            Ok((m, took)) => {
                master = m;
                let k = report.kind(fault.kind);
                k.max_recovery = k.max_recovery.max(took);
                run.say(&format!(
                    "healed; settled with host {m} as master after {:.2}s (bound {:.1}s)",
                    took.as_secs_f64(),
                    bound.as_secs_f64()
                ));
                true
            }
            Err(e) => {
                problems.push(e);
                false
            }
        };
        if settled {
            if let Err(e) = checker::caught_up(&run.c, master) {
                problems.push(e);
            }
            let log = writer.snapshot();
            let missing = checker::audit(&run.c, CLIENT, master, &log, &gone, active.master_kill);
            gone.extend(missing.tail.iter().chain(&missing.lost));
            if !missing.tail.is_empty() {
                run.say(&format!(
                    "{} writes lost as the asynchronous tail of host {}'s Redis, killed as \
                     master: {}",
                    missing.tail.len(),
                    active.host,
                    ranges(&missing.tail)
                ));
                report.kind(fault.kind).tail_lost += missing.tail.len();
                report.tails.push(Tail {
                    fault: fault.clone(),
                    host: active.host,
                    keys: missing.tail.clone(),
                });
            }
            if !missing.lost.is_empty() {
                let when: Vec<String> = missing
                    .lost
                    .iter()
                    .take(5)
                    .map(|&n| format!("#{n} acked at {:?}", log.acked_at(n).unwrap_or_default()))
                    .collect();
                problems.push(format!(
                    "{} acknowledged writes missing on the master (host {master}): {} (first: \
                     {when:?}; fault injected at {:?} of the writer's time{})",
                    missing.lost.len(),
                    ranges(&missing.lost),
                    active.injected.saturating_duration_since(log.started),
                    active
                        .master_kill
                        .map_or_else(String::new, |k| format!(", master's Redis killed at {k:?}"))
                ));
            }
        }
        let several = run.longest_several();
        let allowed = checker::several_holders_bound(&run.c);
        if several > allowed {
            problems.push(format!(
                "two VIP holders for {several:?} at a stretch (allowed: {allowed:?}, \
                 Master_Down_Interval and margin{})",
                if fault.kind.splits_the_pair() {
                    ", counted from the heal"
                } else {
                    ""
                }
            ));
        }
        problems.extend(agents.check(&run.c));
        report.max_rss_kb = agents.max_rss_kb;
        let clean = problems.is_empty();
        for p in problems {
            fail(
                &mut report,
                &mut failure,
                &run,
                Some(&fault),
                active.injected,
                p,
            );
        }
        if clean {
            report.kind(fault.kind).recovered += 1;
        } else if !cfg.keep_going {
            break;
        }
        if !settled {
            // Keep going only from a settled pair.
            match checker::wait_recovered(&run.c, Duration::from_secs(60), || run.sample()) {
                Ok((m, _)) => master = m,
                Err(e) => {
                    run.say(&format!("the pair does not settle again: {e}; stopping"));
                    break;
                }
            }
        }
        run.hold(fault.quiet);
    }
    finish(run, report, note, failure, Some(writer))
}

fn finish(
    run: Run<'_, '_>,
    mut report: Report,
    note: &PanicNote<'_>,
    failure: String,
    writer: Option<Writer>,
) -> Outcome {
    if let Some(w) = writer {
        let log = w.stop();
        report.acked = log.acked.len();
        report.failed = log.failures;
    }
    report.agent_restarts = run.c.restarts;
    report.elapsed = run.started.elapsed();
    Outcome {
        report,
        schedule: note.schedule.borrow().clone(),
        failure,
    }
}
