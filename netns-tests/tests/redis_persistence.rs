//! Redis with persistence on, through redha, in network namespaces (issue 7, part 1).
//!
//! The lab is that of `redis_failover.rs`: hosts 1 and 2 run `redis-server` and
//! redha (host 1 priority 150, host 2 priority 100, `preempt = false` unless a
//! scenario says otherwise, each replicating with the other, a state directory
//! each), host 3 runs a client that writes sequential keys through the VIP every
//! 10 ms and records which writes were acknowledged. Redis runs as users run it:
//! Redis 7's default RDB save points, or the AOF with `appendfsync always`, and
//! the default diskless sync (`repl-diskless-sync-delay 5`).
//!
//! Each scenario ends with the pair settled (exactly one VIP holder, its Redis a
//! master, the other Redis its replica with the link up) and every acknowledged
//! write accounted for: on the final master, or in a dataset redha saved before
//! it resynced a Redis over it (a file named in its log, loaded into a scratch
//! `redis-server` in the client host to check), or, counted and printed apart, in
//! the asynchronous tail: acknowledged by a master whose Redis was SIGKILLed
//! before it had replicated them, which must be few.
//!
//! Timing bounds come from protocol math (DESIGN.md, README):
//! - a node joins the election once its Redis has been seen healthy `rise` times,
//!   one check every `check_interval`; a killed Redis is down after `fall` ×
//!   `fast_recheck`;
//! - a backup takes over after Master_Down_Interval without adverts, or after
//!   Skew_Time when the master leaves with a priority-0 advert;
//! - a full sync waits `repl-diskless-sync-delay` on its source, and so does a
//!   save of a dataset (redha takes it over the replication protocol);
//!
//! plus [`MARGIN`] for process start-up, netlink and polling.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, Scope};
use std::time::{Duration, Instant};

use netns_tests::pair::{
    self, CATCH_UP_TIMEOUT, CHECK_INTERVAL, DISKLESS_SYNC_DELAY, FALL, FAST_RECHECK, RISE, dbsize,
    describe, election_bound, info, other, replication, require, vip_addr,
};
use netns_tests::redha::{self, MARGIN, Node, VIP};
use netns_tests::redis::{RedisNode, RedisOpts};
use netns_tests::saved::{SavedSnapshot, ScratchRedis, saved_snapshots};
use netns_tests::timeline::{Timeline, utc};
use netns_tests::writer::{WriteLog, Writer, missing_keys, ranges};
use netns_tests::{Lab, Proc, wait_until};

/// The client host.
const CLIENT: usize = 3;
/// One write every this long.
const WRITE_INTERVAL: Duration = Duration::from_millis(10);
/// Polling period of the waits.
const POLL: Duration = Duration::from_millis(20);
/// Polling period of the VIP watch.
const WATCH_POLL: Duration = Duration::from_millis(50);

/// The asynchronous tail: writes a master acknowledged at most this long before
/// its Redis was SIGKILLed may be missing on its replica (replication runs behind
/// by milliseconds; this is the bound the tests allow).
const TAIL: Duration = Duration::from_secs(1);
/// First port of the scratch Redis servers (in the client host, on its loopback).
const SCRATCH_PORT: u16 = 6390;

/// How long a Redis back from its files needs to be a replica with its link up:
/// its node sees it healthy (`rise`), plans (one check), the source waits the
/// diskless-sync delay before the full sync, then the transfer and the load.
fn full_sync_bound() -> Duration {
    CHECK_INTERVAL * (RISE + 1) + DISKLESS_SYNC_DELAY + MARGIN * 2
}

/// How long saving a dataset takes: redha asks the Redis for a full sync of its
/// own, which waits the diskless-sync delay too.
fn save_bound() -> Duration {
    DISKLESS_SYNC_DELAY + MARGIN
}

/// `sync_full`, `sync_partial_ok` and `sync_partial_err` of a Redis (as a source).
fn sync_counts(redis: &RedisNode<'_>) -> (u64, u64, u64) {
    let stats = info(redis, "stats").unwrap_or_default();
    let get = |k: &str| stats.get(k).and_then(|v| v.parse().ok()).unwrap_or(0);
    (
        get("sync_full"),
        get("sync_partial_ok"),
        get("sync_partial_err"),
    )
}

/// Polls the VIP's holders every [`WATCH_POLL`] on a thread of its own, from its
/// start until it is dropped, and keeps every change.
struct VipWatch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
}

#[derive(Default)]
struct Seen {
    timeline: Timeline,
    /// Each change: when (since the watch started) and the holders from then on.
    changes: Vec<(Duration, Vec<usize>)>,
    samples: usize,
}

impl VipWatch {
    fn start<'scope>(s: &'scope Scope<'scope, '_>, lab: &'scope Lab) -> VipWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Seen::default()));
        {
            let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
            s.spawn(move || {
                let started = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    let holders = lab.holders(VIP);
                    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                    seen.samples += 1;
                    if seen.timeline.set("VIP holders", format!("{holders:?}")) {
                        seen.changes.push((started.elapsed(), holders));
                    }
                    drop(seen);
                    thread::sleep(WATCH_POLL);
                }
            });
        }
        VipWatch { stop, seen }
    }

    fn note(&self, what: &str) {
        self.lock().timeline.note(what);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The changes in which `host` held the VIP.
    fn held_by(&self, host: usize) -> Vec<(Duration, Vec<usize>)> {
        self.lock()
            .changes
            .iter()
            .filter(|(_, h)| h.contains(&host))
            .cloned()
            .collect()
    }

    /// How long, in all, the samples saw `n` or more holders (an estimate: each
    /// change lasts until the next).
    fn time_with_holders(&self, n: usize) -> Duration {
        let seen = self.lock();
        let end = seen
            .changes
            .last()
            .map_or(Duration::ZERO, |(at, _)| *at + WATCH_POLL);
        seen.changes
            .iter()
            .enumerate()
            .filter(|(_, (_, h))| h.len() >= n)
            .map(|(i, (at, _))| seen.changes.get(i + 1).map_or(end, |(next, _)| *next) - *at)
            .sum()
    }

    fn render(&self) -> String {
        let seen = self.lock();
        format!("{}({} samples)", seen.timeline.render(), seen.samples)
    }
}

impl Drop for VipWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Where the acknowledged writes are, at the end of a scenario.
struct Accounting {
    acked: usize,
    /// Missing on the final master but found in saved snapshots.
    in_snapshots: Vec<u64>,
    /// Missing everywhere, acknowledged within [`TAIL`] before the kill.
    tail: Vec<u64>,
    /// The saved snapshots: file, keys, how many missing writes each held.
    snapshots: Vec<(PathBuf, u64, usize)>,
}

impl Accounting {
    fn summary(&self) -> String {
        let mut s = format!(
            "{} acknowledged: {} on the final master, {} only in saved snapshots ({}), {} lost \
             in the asynchronous tail of the killed master ({})",
            self.acked,
            self.acked - self.in_snapshots.len() - self.tail.len(),
            self.in_snapshots.len(),
            ranges(&self.in_snapshots),
            self.tail.len(),
            ranges(&self.tail)
        );
        for (path, keys, held) in &self.snapshots {
            let _ = write!(
                s,
                "\n  saved snapshot {} ({keys} keys) held {held} of the writes missing on the master",
                path.display()
            );
        }
        s
    }
}

/// The two Redis hosts with their redha agents, and the client.
struct Pair<'lab> {
    test: &'static str,
    lab: &'lab Lab,
    /// Index `host - 1`.
    redis: Vec<RedisNode<'lab>>,
    /// Every redha ever started, in order, with its host.
    agents: Vec<(usize, Proc)>,
    /// `preempt` of host 1 (host 2 never preempts).
    preempt1: bool,
    started: Instant,
}

impl<'lab> Pair<'lab> {
    /// Starts Redis on hosts 1 and 2 (no redha yet).
    fn new(test: &'static str, lab: &'lab Lab, opts: RedisOpts) -> Self {
        let redis = pair::start_redis(lab, opts);
        Pair {
            test,
            lab,
            redis,
            agents: Vec::new(),
            preempt1: false,
            started: Instant::now(),
        }
    }

    fn redis(&self, host: usize) -> &RedisNode<'lab> {
        &self.redis[host - 1]
    }

    /// Host 1: priority 150; host 2: priority 100; `preempt` as set for host 1.
    fn node(&self, host: usize) -> Node {
        pair::node(self.lab, host, host == 1 && self.preempt1)
    }

    fn start_redha(&mut self, host: usize) {
        let proc = redha::start(self.lab, host, &self.node(host));
        self.note(&format!("redha started on host {host}"));
        self.agents.push((host, proc));
    }

    /// The latest redha started on `host`.
    fn agent(&self, host: usize) -> &Proc {
        pair::latest_agent(&self.agents, host)
    }

    fn note(&self, what: &str) {
        eprintln!(
            "{}: +{:.2}s {} {what}",
            self.test,
            self.started.elapsed().as_secs_f64(),
            utc(std::time::SystemTime::now())
        );
    }

    fn redis_state(&self) -> String {
        pair::redis_state(self.lab, &self.redis)
    }

    /// Both redha logs (every agent ever started; DEBUG lines left out) and both
    /// state logs.
    fn diagnostics(&self) -> String {
        let mut out = format!("--- lab dir {}\n", self.lab.dir().display());
        out.push_str(&self.redis_state());
        out.push_str(&pair::agent_logs(self.lab, &self.agents));
        out
    }

    fn state_log(&self, host: usize) -> String {
        pair::state_log(self.lab, host)
    }

    /// `<state_dir>/state.json` of `host`, if written.
    fn state_file(&self, host: usize) -> Option<String> {
        let dir = self.node(host).redis.and_then(|r| r.state_dir())?;
        std::fs::read_to_string(dir.join("state.json")).ok()
    }

    /// The `.rdb` files in `<state_dir>/saved/` of `host`.
    fn saved_files(&self, host: usize) -> Vec<PathBuf> {
        let Some(dir) = self.node(host).redis.and_then(|r| r.state_dir()) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("saved"))
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "rdb"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
    }

    /// The state logs' decisions, commands, saves and transitions since `since`
    /// (wall clock), for the report.
    fn digest(&self, since: std::time::SystemTime) -> String {
        let mut out = String::new();
        for host in 1..=2 {
            let log = self.state_log(host);
            let lines =
                netns_tests::timeline::log_window(&log, since, std::time::SystemTime::now());
            let _ = writeln!(out, "--- host {host}'s state log since {}:", utc(since));
            let mut last_rule = String::new();
            for l in lines {
                let keep = l.contains("event=transition")
                    || l.contains("event=command")
                    || l.contains("event=saved")
                    || l.contains("event=health");
                let rule = l
                    .split(" rule=")
                    .nth(1)
                    .map(|r| r.split(" eligible=").next().unwrap_or(r).to_owned());
                let new_rule =
                    l.contains("event=decision") && rule.as_ref().is_some_and(|r| *r != last_rule);
                if let (true, Some(r)) = (new_rule, rule) {
                    last_rule = r;
                }
                if keep || new_rule {
                    let _ = writeln!(out, "  {l}");
                }
            }
        }
        out
    }

    fn fail(&self, msg: &str) -> ! {
        panic!("{}: {msg}\n{}", self.test, self.diagnostics());
    }

    fn check(&self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            self.fail(&msg());
        }
    }

    /// Waits up to `within` for `what`; fails the test if it does not happen.
    fn wait(&self, what: &str, within: Duration, f: impl FnMut() -> bool) -> Duration {
        match wait_until(within, POLL, f) {
            Some(d) => d,
            None => self.fail(&format!("not within {within:?}: {what}")),
        }
    }

    /// Waits until the pair is settled with `master` holding the VIP; returns how
    /// long it took.
    fn wait_settled(&self, master: usize, within: Duration, writer: Option<&Writer>) -> Duration {
        match pair::wait_settled(self.lab, &self.redis, Some(master), within, POLL, || {}) {
            Ok((_, d)) => d,
            Err(last) => self.fail(&format!(
                "the pair did not settle with host {master} as master within {within:?}; last: \
                 {last}{}",
                writer.map_or(String::new(), |w| self.writes_report(&w.snapshot()))
            )),
        }
    }

    fn writes_report(&self, log: &WriteLog) -> String {
        let mut out = format!("\nwriter so far: {}", log.summary());
        for host in 1..=2 {
            if replication(self.redis(host)).is_err() {
                continue;
            }
            let lost = self.missing(host, log);
            let _ = write!(
                out,
                "\nacknowledged writes missing on host {host}: {} ({})",
                lost.len(),
                ranges(&lost)
            );
        }
        out
    }

    /// Asserts that the pair stays settled with `master` for `period`.
    fn assert_stays_settled(&self, master: usize, period: Duration) {
        let every = Duration::from_millis(100);
        if let Err(e) = pair::stays_settled(self.lab, &self.redis, master, period, every, || {}) {
            self.fail(&e);
        }
    }

    fn missing(&self, host: usize, log: &WriteLog) -> Vec<u64> {
        missing_keys(self.lab, CLIENT, self.redis(host).addr(), &log.acked_keys())
    }

    /// Starts the client writing through the VIP.
    fn writer(&self) -> Writer {
        Writer::start(self.lab, CLIENT, vip_addr(), WRITE_INTERVAL)
    }

    /// Waits until the writer has `more` acknowledgements beyond what it has now.
    fn wait_more_acks(&self, writer: &Writer, more: usize, within: Duration) {
        let want = writer.acked_count() + more;
        if !writer.wait_acked(want, within) {
            self.fail(&format!(
                "fewer than {more} writes acknowledged within {within:?}: {}",
                writer.snapshot().summary()
            ));
        }
    }

    /// Starts redha on host 1, then host 2, waits until host 1 is master and host
    /// 2's Redis its replica, and starts the client.
    fn settle_with_host1_master(&mut self) -> Writer {
        self.start_redha(1);
        self.start_redha(2);
        let took = self.wait_settled(
            1,
            election_bound(&self.node(1)) + DISKLESS_SYNC_DELAY + MARGIN * 2,
            None,
        );
        self.note(&format!("settled, host 1 master, after {took:?}"));
        let writer = self.writer();
        if !writer.wait_acked(50, Duration::from_secs(5)) {
            self.fail(&format!(
                "the client could not write through the VIP: {:?}",
                writer.snapshot().summary()
            ));
        }
        writer
    }

    /// The saved snapshots named in the agents' logs; each must exist and be named
    /// in a state log too, and no file in a saved directory may go unnamed.
    fn saved_snapshots(&self) -> Vec<SavedSnapshot> {
        let mut found: Vec<SavedSnapshot> = Vec::new();
        for (_, proc) in &self.agents {
            for s in saved_snapshots(&proc.log()) {
                if found.iter().all(|f| f.path != s.path) {
                    found.push(s);
                }
            }
        }
        let path_text = |s: &SavedSnapshot| s.path.display().to_string();
        for s in &found {
            self.check(s.path.is_file(), || {
                format!(
                    "the log names {} but there is no such file",
                    s.path.display()
                )
            });
            let in_state_log = (1..=2).any(|h| {
                self.state_log(h)
                    .lines()
                    .any(|l| l.contains("event=saved") && l.contains(&path_text(s)))
            });
            self.check(in_state_log, || {
                format!(
                    "no state log has an `event=saved` line naming {}",
                    s.path.display()
                )
            });
        }
        for host in 1..=2 {
            for file in self.saved_files(host) {
                self.check(found.iter().any(|s| s.path == file), || {
                    format!(
                        "{} is in host {host}'s saved directory but no log names it",
                        file.display()
                    )
                });
            }
        }
        found
    }

    /// Accounts for every acknowledged write against the final `master` and the
    /// saved snapshots; writes missing from both must have been acknowledged
    /// within [`TAIL`] before `killed_at` (the SIGKILL of a master's Redis, from
    /// the writer's start; `None`: no tail is allowed), and, once the replica has
    /// caught up, it must hold what the master holds.
    fn account(&self, master: usize, log: &WriteLog, killed_at: Option<Duration>) -> Accounting {
        let missing = self.missing(master, log);
        let mut rest = missing.clone();
        let mut snapshots = Vec::new();
        for (i, s) in self.saved_snapshots().iter().enumerate() {
            let port = SCRATCH_PORT + u16::try_from(i).expect("few snapshots");
            let scratch = ScratchRedis::load(self.lab, CLIENT, port, &s.path).unwrap_or_else(|e| {
                self.fail(&format!(
                    "the saved snapshot {} does not load into a scratch Redis: {e}\nnamed in: {}",
                    s.path.display(),
                    s.line
                ))
            });
            let keys = scratch.dbsize().unwrap_or_else(|e| {
                self.fail(&format!(
                    "DBSIZE on the scratch Redis of {}: {e}",
                    s.path.display()
                ))
            });
            let absent = scratch.missing(&log.prefix, &rest);
            snapshots.push((s.path.clone(), keys, rest.len() - absent.len()));
            rest = absent;
        }
        let in_snapshots: Vec<u64> = missing
            .iter()
            .copied()
            .filter(|n| !rest.contains(n))
            .collect();
        let in_tail = |n: u64| {
            let at = log.acked_at(n).expect("an acknowledged write");
            killed_at.is_some_and(|k| at <= k && at + TAIL >= k)
        };
        let (tail, unexplained): (Vec<u64>, Vec<u64>) = rest.iter().partition(|&&n| in_tail(n));
        let accounting = Accounting {
            acked: log.acked.len(),
            in_snapshots,
            tail,
            snapshots,
        };
        eprintln!("{}: writes: {}", self.test, accounting.summary());
        self.check(unexplained.is_empty(), || {
            let when: Vec<String> = unexplained
                .iter()
                .take(10)
                .map(|&n| format!("#{n} acked at {:?}", log.acked_at(n).unwrap_or_default()))
                .collect();
            format!(
                "{} acknowledged writes are neither on the final master (host {master}) nor in a \
                 saved snapshot{}: {} (first: {when:?}; kill at {killed_at:?})\n{}",
                unexplained.len(),
                if killed_at.is_some() {
                    ", nor in the asynchronous tail of the kill"
                } else {
                    ""
                },
                ranges(&unexplained),
                accounting.summary()
            )
        });
        let replica = other(master);
        self.check(
            self.redis(replica)
                .wait_caught_up(self.redis(master), Duration::from_secs(5)),
            || "the replica did not catch up with the master within 5 s".into(),
        );
        let on_replica = self.missing(replica, log);
        self.check(on_replica == missing, || {
            format!(
                "the replica (host {replica}) lacks other writes than the master: {} vs {}",
                ranges(&on_replica),
                ranges(&missing)
            )
        });
        accounting
    }
}

/// Kills host 1's Redis (the master's), waits for host 2 to take over, and
/// returns (when the kill happened, from the writer's start; when host 2 held the
/// VIP alone).
fn kill_master_redis(pair: &Pair<'_>, writer: &Writer) -> (Duration, Instant) {
    let lab = pair.lab;
    let t0 = Instant::now();
    let killed_at = writer.snapshot().started.elapsed();
    pair.redis(1).kill();
    pair.note("host 1's Redis SIGKILLed");
    let bound = FAST_RECHECK * FALL + pair.node(2).skew_time() + MARGIN;
    let takeover = pair.wait("host 2 is the only VIP holder", bound, || {
        lab.holders(VIP) == [2]
    });
    let at = Instant::now();
    pair.wait("host 2's Redis is master", Duration::from_secs(2), || {
        replication(pair.redis(2)).is_ok_and(|m| m.get("role").is_some_and(|r| r == "master"))
    });
    let resumed = pair.wait("writes resume", Duration::from_secs(3), || {
        writer
            .snapshot()
            .acked
            .last()
            .is_some_and(|&(_, t)| t > killed_at)
    });
    pair.note(&format!(
        "host 2 took the VIP {takeover:?} after the kill (bound {bound:?}); writes resumed \
         {:?} after it",
        t0.elapsed().min(takeover + resumed)
    ));
    (killed_at, at)
}

/// Scenario 1 and 2: the master's Redis dies and comes back from its own files
/// after the peer took over. It must rejoin as the new master's replica by
/// itself and never take the VIP back (also with `preempt = true` and the
/// higher priority: redha holds preempt back while its Redis follows the peer's).
///
/// With RDB (Redis 7's default save points, and an explicit SAVE early on, so
/// that an older `dump.rdb` exists) it comes back with that older copy and its
/// history as `master_replid2`: a prefix of what host 2 went on to write, so no
/// save is needed. With the AOF it comes back with every write it acknowledged
/// but without replication ids: redha vouches for it from `state.json`, and, as
/// it holds the asynchronous tail that host 2 lacks, saves it before resyncing.
fn master_restarted_from_files(test: &'static str, tag: &str, aof: bool, preempt: bool) {
    master_restarted_from_files_after(test, tag, aof, preempt, false);
}

/// Hands the VIP over with SIGTERM of `from`'s agent, starts that agent again and
/// waits until the pair is settled with the other host as master.
fn switch_over(pair: &mut Pair<'_>, from: usize, writer: &Writer) {
    let to = 3 - from;
    pair.agent(from).signal(libc::SIGTERM);
    let bound = CATCH_UP_TIMEOUT + MARGIN * 4;
    pair.wait(&format!("host {from}'s agent exits"), bound, || {
        !pair.agent(from).is_running()
    });
    pair.start_redha(from);
    pair.wait_settled(to, full_sync_bound(), Some(writer));
    pair.note(&format!(
        "switched over to host {to}: {}",
        describe(pair.redis(to))
    ));
}

/// [`master_restarted_from_files`]; with `two_promotions`, host 1's RDB snapshot
/// is taken and then the VIP goes to host 2 and back by two planned switchovers
/// before host 1's Redis is killed: its `dump.rdb` is then two promotions old,
/// older than anything Redis remembers (one previous history), and only the steps
/// redha saw ([`replication::lineage`]) relate it to host 2's history.
fn master_restarted_from_files_after(
    test: &'static str,
    tag: &str,
    aof: bool,
    preempt: bool,
    two_promotions: bool,
) {
    if !require(test) {
        return;
    }
    let lab = Lab::new(tag, 3);
    let opts = if aof {
        RedisOpts::default().aof_always()
    } else {
        RedisOpts::default().rdb_default()
    };
    let mut pair = Pair::new(test, &lab, opts);
    pair.preempt1 = preempt;
    let writer = pair.settle_with_host1_master();
    if !aof {
        pair.redis(1)
            .save()
            .unwrap_or_else(|e| pair.fail(&format!("SAVE on host 1: {e}")));
        pair.note(&format!(
            "SAVE on host 1 with {:?} keys; its files: {:?}",
            dbsize(pair.redis(1)),
            pair.redis(1).files()
        ));
        pair.check(pair.redis(1).files().contains(&"dump.rdb".into()), || {
            "host 1 has no dump.rdb after SAVE".into()
        });
    }
    if two_promotions {
        let dump = pair.redis(1).dir().join("dump.rdb");
        let saved = std::fs::metadata(&dump).and_then(|m| m.modified()).ok();
        pair.wait_more_acks(&writer, 100, Duration::from_secs(5));
        switch_over(&mut pair, 1, &writer);
        pair.wait_more_acks(&writer, 100, Duration::from_secs(5));
        switch_over(&mut pair, 2, &writer);
        let now = std::fs::metadata(&dump).and_then(|m| m.modified()).ok();
        pair.check(saved.is_some() && saved == now, || {
            format!("host 1's dump.rdb was rewritten meanwhile ({saved:?} -> {now:?}): the test needs the old one")
        });
    }
    // Writes after the snapshot: the restarted Redis will lack them.
    pair.wait_more_acks(&writer, 200, Duration::from_secs(5));
    // Writes host 1 acknowledged that host 2 never received (with the AOF: on host
    // 1's disk, so the saved dataset must hold them).
    let mut tail_acked = Vec::new();
    if aof {
        // Redis replicates a write in the same event-loop turn that acknowledges it,
        // so a SIGKILL leaves no tail by itself. Make one, as a lagging replica
        // would: host 1 refuses its replica's PSYNC (an ACL change on host 1 only,
        // lost with the kill), the link is cut, and host 1 acknowledges some more
        // writes alone.
        let ok = |r: Result<netns_tests::redis::Reply, netns_tests::redis::Error>| {
            r.is_ok_and(|r| !matches!(r, netns_tests::redis::Reply::Error(_)))
        };
        pair.check(
            ok(pair
                .redis(1)
                .query(&["ACL", "SETUSER", "default", "-psync", "-sync"])),
            || "ACL SETUSER on host 1 failed".into(),
        );
        pair.check(
            ok(pair.redis(1).query(&["CLIENT", "KILL", "TYPE", "replica"])),
            || "CLIENT KILL TYPE replica on host 1 failed".into(),
        );
        let cut_at = writer.snapshot().started.elapsed();
        pair.wait("host 1 has no replica", Duration::from_secs(2), || {
            replication(pair.redis(1))
                .is_ok_and(|m| m.get("connected_slaves").is_some_and(|n| n == "0"))
        });
        pair.wait_more_acks(&writer, 20, Duration::from_secs(2));
        tail_acked = writer.snapshot().acked_between(cut_at, Duration::MAX);
        pair.note(&format!(
            "host 2's link cut: host 1 acknowledged {} writes alone ({})",
            tail_acked.len(),
            ranges(&tail_acked)
        ));
    }
    let before = describe(pair.redis(1));
    pair.note(&format!("host 1's Redis before the kill: {before}"));
    let since = std::time::SystemTime::now();
    thread::scope(|s| {
        let (killed_at, _) = kill_master_redis(&pair, &writer);
        let watch = VipWatch::start(s, &lab);
        pair.redis[0].start_again();
        let restarted = Instant::now();
        watch.note("host 1's Redis restarted from its files");
        pair.note(&format!(
            "host 1's Redis restarted from its files {:?}: {}",
            pair.redis(1).files(),
            describe(pair.redis(1))
        ));
        let bound = full_sync_bound() + if aof { save_bound() } else { Duration::ZERO };
        let took = pair.wait_settled(2, bound, Some(&writer));
        pair.note(&format!(
            "settled: host 1's Redis a replica of host 2 with the link up {took:?} after its \
             restart (bound {bound:?}): {}",
            describe(pair.redis(1))
        ));
        // With preempt, host 1 (150) would take the VIP within Master_Down_Interval
        // of hearing host 2's (100) adverts; watch twice that.
        let watch_for = pair.node(1).master_down_interval() * 2 + MARGIN;
        pair.assert_stays_settled(2, watch_for);
        let log = writer.stop();
        pair.note(&format!(
            "writer: {}; stopped {:?} after the restart",
            log.summary(),
            restarted.elapsed()
        ));
        let held = watch.held_by(1);
        eprintln!(
            "{test}: VIP holders from the takeover on:\n{}",
            watch.render()
        );
        pair.check(held.is_empty(), || {
            format!(
                "host 1 held the VIP again after the takeover (its Redis came back stale): \
                 {held:?}\n{}",
                watch.render()
            )
        });
        pair.check(watch.time_with_holders(2).is_zero(), || {
            format!("two VIP holders after the takeover:\n{}", watch.render())
        });
        let accounting = pair.account(2, &log, Some(killed_at));
        if aof {
            pair.check(!accounting.snapshots.is_empty(), || {
                "host 1's Redis came back from its AOF without replication ids and was \
                 resynced without its dataset being saved"
                    .into()
            });
            // appendfsync always: every write host 1 acknowledged is in its AOF, so
            // none may be lost, and those host 2 never had are in the saved file.
            pair.check(accounting.tail.is_empty(), || {
                format!(
                    "writes acknowledged by host 1 (AOF, appendfsync always) are in no saved \
                     snapshot: {}",
                    ranges(&accounting.tail)
                )
            });
            let unsaved: Vec<u64> = tail_acked
                .iter()
                .copied()
                .filter(|n| !accounting.in_snapshots.contains(n))
                .collect();
            pair.check(unsaved.is_empty(), || {
                format!(
                    "of the {} writes host 1 acknowledged alone, these are on host 2 (they \
                     should not be) or lost: {}",
                    tail_acked.len(),
                    ranges(&unsaved)
                )
            });
        }
        if preempt {
            let held_back = pair
                .agent(1)
                .log()
                .lines()
                .filter(|l| l.contains("preempt") && !l.contains(" DEBUG "))
                .map(str::to_owned)
                .collect::<Vec<_>>();
            eprintln!("{test}: host 1's preempt lines:\n{}", held_back.join("\n"));
        }
        eprintln!("{}", pair.digest(since));
    });
}

#[test]
fn master_restarted_from_rdb_rejoins_as_replica() {
    master_restarted_from_files(
        "master_restarted_from_rdb_rejoins_as_replica",
        "prdb",
        false,
        false,
    );
}

/// Scenario 1 with RDB after two switchovers: the snapshot is two promotions old.
#[test]
fn master_restarted_from_an_rdb_two_promotions_old_rejoins_as_replica() {
    master_restarted_from_files_after(
        "master_restarted_from_an_rdb_two_promotions_old_rejoins_as_replica",
        "prdb2",
        false,
        false,
        true,
    );
}

#[test]
fn master_restarted_from_rdb_with_preempt_stays_replica() {
    master_restarted_from_files(
        "master_restarted_from_rdb_with_preempt_stays_replica",
        "prdbpre",
        false,
        true,
    );
}

#[test]
fn master_restarted_from_aof_is_saved_and_rejoins() {
    master_restarted_from_files(
        "master_restarted_from_aof_is_saved_and_rejoins",
        "paof",
        true,
        false,
    );
}

/// Scenario 3: the replica's Redis dies and comes back from its files. It resyncs
/// from the master (a full sync: Redis 7.0 restarted from disk has a new
/// replication id, and a master told `REPLICAOF` asks for a partial resync with
/// that id, which its source does not know; so Redis itself cannot resume it), its
/// link comes up, host 1 keeps the VIP throughout, nothing is lost. With RDB it
/// comes back with the copy of an explicit SAVE taken early on (as Redis's own
/// save points would, later); with the AOF with everything it had received, and
/// without ids: its agent vouches for it from `state.json`.
fn replica_restarted_from_files(test: &'static str, tag: &str, aof: bool) {
    if !require(test) {
        return;
    }
    let lab = Lab::new(tag, 3);
    let opts = if aof {
        RedisOpts::default().aof_always()
    } else {
        RedisOpts::default().rdb_default()
    };
    let mut pair = Pair::new(test, &lab, opts);
    let writer = pair.settle_with_host1_master();
    if !aof {
        pair.redis(2)
            .save()
            .unwrap_or_else(|e| pair.fail(&format!("SAVE on host 2: {e}")));
        pair.note(&format!(
            "SAVE on host 2 with {:?} keys; its files: {:?}",
            dbsize(pair.redis(2)),
            pair.redis(2).files()
        ));
    }
    pair.wait_more_acks(&writer, 200, Duration::from_secs(5));
    let syncs_before = sync_counts(pair.redis(1));
    let since = std::time::SystemTime::now();
    thread::scope(|s| {
        let watch = VipWatch::start(s, &lab);
        pair.note(&format!(
            "host 2's Redis before the kill: {}",
            describe(pair.redis(2))
        ));
        pair.redis(2).kill();
        watch.note("host 2's Redis SIGKILLed");
        pair.note("host 2's Redis SIGKILLed");
        pair.redis[1].start_again();
        let restarted = Instant::now();
        watch.note("host 2's Redis restarted from its files");
        pair.note(&format!(
            "host 2's Redis restarted from its files {:?}: {}",
            pair.redis(2).files(),
            describe(pair.redis(2))
        ));
        let bound = full_sync_bound() + if aof { save_bound() } else { Duration::ZERO };
        let took = pair.wait_settled(1, bound, Some(&writer));
        let syncs_after = sync_counts(pair.redis(1));
        pair.note(&format!(
            "settled: host 2's Redis a replica of host 1 with the link up {took:?} after its \
             restart (bound {bound:?}); host 1's syncs (full, partial ok, partial refused): \
             {syncs_before:?} -> {syncs_after:?}"
        ));
        pair.assert_stays_settled(1, Duration::from_secs(2));
        let log = writer.stop();
        pair.note(&format!(
            "writer: {}; stopped {:?} after the restart",
            log.summary(),
            restarted.elapsed()
        ));
        eprintln!("{test}: VIP holders from the kill on:\n{}", watch.render());
        let changes = watch.lock().changes.clone();
        pair.check(changes.iter().all(|(_, h)| h == &[1]), || {
            format!(
                "host 1 did not hold the VIP alone throughout: {changes:?}\n{}",
                watch.render()
            )
        });
        let accounting = pair.account(1, &log, None);
        pair.check(accounting.in_snapshots.is_empty(), || {
            "writes acknowledged by the master are missing on it (only in a saved snapshot)".into()
        });
        eprintln!("{}", pair.digest(since));
    });
}

#[test]
fn replica_restarted_from_rdb_resyncs() {
    replica_restarted_from_files("replica_restarted_from_rdb_resyncs", "rrdb", false);
}

#[test]
fn replica_restarted_from_aof_resyncs() {
    replica_restarted_from_files("replica_restarted_from_aof_resyncs", "raof", true);
}

/// Scenario 4: both hosts lose power together, with the AOF fsynced at every
/// write on both. First a failover makes host 2 the master (SIGTERM to host 1's
/// redha, a planned switchover, then host 1's redha started again as the
/// backup), so that "the master last" is not simply the higher priority. Then
/// both agents and both Redis are SIGKILLed, both Redis come back from their
/// files (no replication ids: the AOF keeps none), and both agents start
/// together, `first` a moment before the other: host 2, whose Redis was master
/// last, ends up master, host 1's its replica, no acknowledged write lost, no
/// manual step.
fn power_cycle(test: &'static str, tag: &str, first: usize) {
    if !require(test) {
        return;
    }
    let lab = Lab::new(tag, 3);
    let mut pair = Pair::new(test, &lab, RedisOpts::default().aof_always());
    let writer = pair.settle_with_host1_master();

    // The failover: host 2 becomes the master.
    pair.agent(1).signal(libc::SIGTERM);
    pair.note("SIGTERM to host 1's redha");
    let exit = pair.agent(1).wait_exit(CATCH_UP_TIMEOUT + MARGIN);
    pair.check(exit.is_some_and(|s| s.success()), || {
        format!("host 1's redha did not exit 0 after SIGTERM: {exit:?}")
    });
    pair.wait(
        "host 2 holds the VIP",
        pair.node(2).skew_time() + MARGIN,
        || lab.holders(VIP) == [2],
    );
    pair.start_redha(1);
    let took = pair.wait_settled(
        2,
        election_bound(&pair.node(1)) + full_sync_bound(),
        Some(&writer),
    );
    pair.note(&format!(
        "host 2 master, host 1 its replica, {took:?} after host 1's redha restarted"
    ));
    pair.wait_more_acks(&writer, 200, Duration::from_secs(5));
    // Both state files know the roles and the history before the power goes.
    let replid2 = replication(pair.redis(2))
        .ok()
        .and_then(|m| m.get("master_replid").cloned())
        .unwrap_or_default();
    pair.wait(
        "both state files record host 2's history, host 2 as master and host 1 as replica",
        Duration::from_secs(3),
        || {
            let has = |host: usize, role: &str| {
                pair.state_file(host).is_some_and(|t| {
                    t.contains(&format!("\"role\": \"{role}\"")) && t.contains(&replid2)
                })
            };
            has(2, "master") && has(1, "replica")
        },
    );
    pair.note(&format!(
        "before the power cut: host 1 {} / host 2 {}",
        describe(pair.redis(1)),
        describe(pair.redis(2))
    ));
    for host in 1..=2 {
        eprintln!(
            "{test}: host {host}'s state.json before the power cut:\n{}",
            pair.state_file(host).unwrap_or_default()
        );
    }

    // The power cut: the agents first (so that neither reacts), then both Redis.
    let t0 = Instant::now();
    pair.agent(1).kill();
    pair.agent(2).kill();
    pair.redis(2).kill();
    pair.redis(1).kill();
    pair.note(&format!(
        "power cut: both redha and both Redis SIGKILLed within {:?}",
        t0.elapsed()
    ));
    // A host without power holds no address: wait for the VIP's lease to run out.
    let lease = pair.node(2).address_lease() + MARGIN;
    let gone = pair.wait("the VIP's lease runs out", lease, || {
        lab.holders(VIP).is_empty()
    });
    pair.note(&format!(
        "VIP gone {gone:?} after the cut (bound {lease:?})"
    ));
    pair.redis[0].start_again();
    pair.redis[1].start_again();
    for host in 1..=2 {
        pair.note(&format!(
            "host {host}'s Redis back from its files {:?}: {}",
            pair.redis(host).files(),
            describe(pair.redis(host))
        ));
    }
    let since = std::time::SystemTime::now();
    thread::scope(|s| {
        let watch = VipWatch::start(s, &lab);
        // Both agents at once, `first` a moment (one spawn) ahead of the other.
        let second = other(first);
        let (n1, n2) = (pair.node(first), pair.node(second));
        let lab = &lab;
        let (tx, rx) = std::sync::mpsc::channel();
        let a = s.spawn(move || {
            let p = redha::start(lab, first, &n1);
            let _ = tx.send(());
            p
        });
        let b = s.spawn(move || {
            let _ = rx.recv();
            redha::start(lab, second, &n2)
        });
        let (pa, pb) = (
            a.join().expect("start redha"),
            b.join().expect("start redha"),
        );
        let started = Instant::now();
        watch.note(&format!("both redha started, host {first} first"));
        pair.agents.push((first, pa));
        pair.agents.push((second, pb));
        pair.note(&format!("both redha started together, host {first} first"));
        let bound = election_bound(&pair.node(2)) + save_bound() + full_sync_bound();
        let took = pair.wait_settled(2, bound, Some(&writer));
        pair.note(&format!(
            "settled with host 2 (master last) master, host 1 its replica, {took:?} after the \
             agents started (bound {bound:?})"
        ));
        pair.assert_stays_settled(2, pair.node(1).master_down_interval() * 2 + MARGIN);
        let log = writer.stop();
        pair.note(&format!(
            "writer: {}; stopped {:?} after the start",
            log.summary(),
            started.elapsed()
        ));
        eprintln!(
            "{test}: VIP holders from the agents' start on:\n{}",
            watch.render()
        );
        let held = watch.held_by(1);
        pair.check(held.is_empty(), || {
            format!(
                "host 1 (its Redis a replica last) held the VIP after the power cycle: {held:?}\n{}",
                watch.render()
            )
        });
        let accounting = pair.account(2, &log, None);
        pair.check(accounting.in_snapshots.is_empty(), || {
            "acknowledged writes are missing on host 2, whose Redis was master last".into()
        });
        eprintln!("{}", pair.digest(since));
    });
}

#[test]
fn power_cycle_host1_agent_first() {
    power_cycle("power_cycle_host1_agent_first", "pwr1", 1);
}

#[test]
fn power_cycle_host2_agent_first() {
    power_cycle("power_cycle_host2_agent_first", "pwr2", 2);
}

/// The accounting's own tool: an RDB file (here a lab Redis's `dump.rdb` after
/// `SAVE`) loads into a scratch Redis in the client host, which tells which keys it
/// holds; the original file is left alone.
#[test]
fn a_snapshot_loads_into_a_scratch_redis() {
    let test = "a_snapshot_loads_into_a_scratch_redis";
    if !require(test) {
        return;
    }
    let lab = Lab::new("scratch", 3);
    let redis = RedisNode::start(&lab, 1, RedisOpts::default());
    let mut c = redis.client().expect("connect");
    for n in 1..=20u64 {
        let reply = c
            .command(&["SET".to_owned(), format!("k:{n}"), n.to_string()])
            .expect("SET");
        assert!(reply.is_ok(), "SET k:{n}: {reply:?}");
    }
    redis.save().expect("SAVE");
    let dump = redis.dir().join("dump.rdb");
    let before = std::fs::read(&dump).expect("dump.rdb");
    let scratch = ScratchRedis::load(&lab, CLIENT, SCRATCH_PORT, &dump)
        .unwrap_or_else(|e| panic!("{test}: {e}"));
    assert_eq!(scratch.dbsize().expect("DBSIZE"), 20);
    assert_eq!(scratch.missing("k:", &[1, 7, 20, 21, 22]), [21, 22]);
    drop(scratch);
    assert_eq!(std::fs::read(&dump).expect("dump.rdb"), before);
    assert!(
        ScratchRedis::load(&lab, CLIENT, SCRATCH_PORT + 1, &lab.dir().join("none.rdb")).is_err()
    );
}
