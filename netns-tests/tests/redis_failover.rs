//! Redis failovers through redha in network namespaces (issue 3, section 5).
//!
//! Every test builds its own lab of three hosts: hosts 1 and 2 run `redis-server`
//! and redha (host 1 priority 150, host 2 priority 100, both `preempt = false`, each
//! replicating with the other), host 3 runs a client that writes sequential keys
//! through the VIP and records which writes were acknowledged. Each scenario ends
//! with the pair settled: exactly one VIP holder, its Redis a master, the other
//! Redis its replica with the link up; and, where the issue demands it, no
//! acknowledged write missing on the final master.
//!
//! Timing bounds come from protocol math (DESIGN.md, README):
//! - a node joins the election once its Redis has been seen healthy `rise` times,
//!   one check every `check_interval`;
//! - a backup takes over after Master_Down_Interval without adverts, or after
//!   Skew_Time when the master leaves with a priority-0 advert (SIGTERM, or its
//!   Redis down: Fault);
//! - a killed Redis is down after `fall` × `fast_recheck`;
//! - a replica's first full sync waits `repl-diskless-sync-delay` (5 s by default)
//!   on its master.
//!
//! plus [`MARGIN`] for process start-up, netlink and polling.

use std::fmt::Write as _;
use std::thread;
use std::time::{Duration, Instant};

use netns_tests::pair::{
    self, CATCH_UP_TIMEOUT, DISKLESS_SYNC_DELAY, FALL, FAST_RECHECK, dbsize, election_bound, other,
    replication, require, sync_bound, vip_addr,
};
use netns_tests::redha::{self, MARGIN, Node, VIP};
use netns_tests::redis::{RedisNode, RedisOpts, Reply};
use netns_tests::saved::{ScratchRedis, saved_snapshots};
use netns_tests::writer::{WriteLog, Writer, missing_keys, missing_prefixed_keys, ranges};
use netns_tests::{Lab, Proc, wait_until};

/// The client host.
const CLIENT: usize = 3;
/// One write every this long.
const WRITE_INTERVAL: Duration = Duration::from_millis(10);
/// Polling period of the waits.
const POLL: Duration = Duration::from_millis(20);

/// The two Redis hosts with their redha agents, and the client.
struct Pair<'lab> {
    test: &'static str,
    lab: &'lab Lab,
    /// Index `host - 1`.
    redis: Vec<RedisNode<'lab>>,
    /// Every redha ever started, in order, with its host.
    agents: Vec<(usize, Proc)>,
    started: Instant,
    /// VRRPv3 at 100 ms adverts with the paired health check ([`pair::at_100ms`]).
    fast: bool,
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
            started: Instant::now(),
            fast: false,
        }
    }

    /// The same pair at 100 ms adverts (VRRPv3) with the paired health check.
    fn at_100ms(mut self) -> Self {
        self.fast = true;
        self
    }

    fn redis(&self, host: usize) -> &RedisNode<'lab> {
        &self.redis[host - 1]
    }

    /// Host 1: priority 150; host 2: priority 100; both nopreempt.
    fn node(&self, host: usize) -> Node {
        let node = pair::node(self.lab, host, false);
        if self.fast {
            pair::at_100ms(node)
        } else {
            node
        }
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
            "{}: +{:.2}s {what}",
            self.test,
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Each Redis's role, master, link, offset and keys, in one line each.
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

    /// The state log of `host` so far.
    fn state_log(&self, host: usize) -> String {
        pair::state_log(self.lab, host)
    }

    /// Panics with `msg` and the diagnostics.
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

    /// Is the pair settled? Returns the master host, or what is missing.
    fn settled(&self) -> Result<usize, String> {
        pair::settled(self.lab, &self.redis)
    }

    /// Waits until the pair is settled with `master` (if given) holding the VIP;
    /// returns the master and how long it took.
    fn wait_settled(
        &self,
        master: Option<usize>,
        within: Duration,
        writer: Option<&Writer>,
    ) -> (usize, Duration) {
        pair::wait_settled(self.lab, &self.redis, master, within, POLL, || {}).unwrap_or_else(
            |last| {
                self.fail(&format!(
                    "the pair did not settle (master {master:?}) within {within:?}; last: {last}{}",
                    writer.map_or(String::new(), |w| self.writes_report(&w.snapshot()))
                ))
            },
        )
    }

    /// For a failure message: which acknowledged writes each Redis lacks.
    fn writes_report(&self, log: &WriteLog) -> String {
        let mut out = format!("\nwriter so far: {}", log.summary());
        for host in 1..=2 {
            let holds_vip = if self.lab.has_addr(host, VIP) {
                " (holds the VIP)"
            } else {
                ""
            };
            let lost = self.missing(host, log);
            let _ = write!(
                out,
                "\nacknowledged writes missing on host {host}{holds_vip}: {} ({})",
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

    /// The replica has every byte of the master (offsets equal).
    fn wait_replica_caught_up(&self, master: usize) {
        let (m, r) = (self.redis(master), self.redis(other(master)));
        if !r.wait_caught_up(m, Duration::from_secs(5)) {
            self.fail("the replica did not catch up with the master within 5 s");
        }
    }

    /// Keys `prefix<n>` (value `n`) for `n` in `1..=count` that `host`'s Redis
    /// lacks.
    fn missing_prefixed(&self, host: usize, prefix: &str, count: u64) -> Vec<u64> {
        let all: Vec<u64> = (1..=count).collect();
        let redis = self.redis(host);
        missing_prefixed_keys(self.lab, host, redis.addr(), prefix, &all)
    }

    /// Acknowledged writes missing on `host`'s Redis.
    fn missing(&self, host: usize, log: &WriteLog) -> Vec<u64> {
        missing_keys(self.lab, CLIENT, self.redis(host).addr(), &log.acked_keys())
    }

    /// The final checks on acknowledged writes: none missing on the master, nor,
    /// once caught up, on its replica.
    fn assert_no_write_lost(&self, master: usize, log: &WriteLog) {
        let lost = self.missing(master, log);
        self.check(lost.is_empty(), || {
            format!(
                "{} acknowledged writes missing on the master (host {master}): {}\nwriter: {}\nerrors: {:?}",
                lost.len(),
                ranges(&lost),
                log.summary(),
                first_errors(log)
            )
        });
        self.wait_replica_caught_up(master);
        let lost = self.missing(other(master), log);
        self.check(lost.is_empty(), || {
            format!(
                "{} acknowledged writes missing on the replica (host {}): {}",
                lost.len(),
                other(master),
                ranges(&lost)
            )
        });
    }

    /// Starts the client writing through the VIP.
    fn writer(&self) -> Writer {
        Writer::start(self.lab, CLIENT, vip_addr(), WRITE_INTERVAL)
    }

    /// Starts redha on host 1, then host 2, and waits until host 1 is master and
    /// host 2's Redis its replica; starts the client and lets it write a while.
    fn settle_with_host1_master(&mut self) -> Writer {
        self.start_redha(1);
        self.start_redha(2);
        let (_, took) = self.wait_settled(
            Some(1),
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
        thread::sleep(Duration::from_secs(1));
        writer
    }
}

fn first_errors(log: &WriteLog) -> Vec<String> {
    log.errors
        .iter()
        .take(5)
        .map(|(n, at, e)| format!("#{n} at {at:?}: {e}"))
        .collect()
}

/// The longest gap between acknowledgements, and where it lay relative to an event
/// at `event` (both counted from the writer's start): `"771ms (from +0.05s to
/// +0.82s)"`.
fn gap_around(log: &WriteLog, event: Duration) -> String {
    let Some((a, b)) = log
        .acked
        .windows(2)
        .map(|w| (w[0].1, w[1].1))
        .max_by_key(|(a, b)| b.saturating_sub(*a))
    else {
        return "none".into();
    };
    let rel = |t: Duration| t.as_secs_f64() - event.as_secs_f64();
    format!(
        "{:?} (from {:+.2}s to {:+.2}s of the event)",
        b.saturating_sub(a),
        rel(a),
        rel(b)
    )
}

/// The first acknowledgement after `since` (from the writer's start).
fn first_ack_after(log: &WriteLog, since: Duration) -> Option<Duration> {
    log.acked
        .iter()
        .find(|&&(_, at)| at > since)
        .map(|&(_, at)| at)
}

/// Start-up in either order: the node started first becomes master (nopreempt),
/// the later one follows it whatever its priority; writes acknowledged before the
/// second node joins survive.
fn startup(test: &'static str, tag: &str, first: usize) {
    if !require(test) {
        return;
    }
    let lab = Lab::new(tag, 3);
    let mut pair = Pair::new(test, &lab, RedisOpts::default());
    pair.start_redha(first);
    let took = pair.wait(
        &format!("host {first} holds the VIP"),
        election_bound(&pair.node(first)),
        || lab.holders(VIP) == [first],
    );
    pair.note(&format!("host {first} holds the VIP after {took:?}"));
    let writer = pair.writer();
    thread::sleep(Duration::from_secs(3));
    pair.start_redha(other(first));
    let (master, took) = pair.wait_settled(
        Some(first),
        election_bound(&pair.node(first)) + sync_bound(),
        Some(&writer),
    );
    pair.note(&format!(
        "settled with host {master} master {took:?} after the second redha started"
    ));
    // The second node must not take over later (nopreempt) nor disturb the pair.
    pair.assert_stays_settled(first, pair.node(1).master_down_interval());
    let log = writer.stop();
    pair.note(&format!("writer: {}", log.summary()));
    pair.check(log.acked.len() > 100, || {
        format!("too few writes: {}", log.summary())
    });
    pair.assert_no_write_lost(master, &log);
}

#[test]
fn startup_host1_first() {
    startup("startup_host1_first", "up1", 1);
}

#[test]
fn startup_host2_first() {
    startup("startup_host2_first", "up2", 2);
}

/// Host 2's Redis already holds data, host 1's (the higher priority) is empty, and
/// host 1's redha starts first: the empty Redis must never become the source; the
/// data ends up on the master and its replica.
#[test]
fn startup_data_on_one_side_survives() {
    let test = "startup_data_on_one_side_survives";
    if !require(test) {
        return;
    }
    const PRE: u64 = 2000;
    let lab = Lab::new("updata", 3);
    let mut pair = Pair::new(test, &lab, RedisOpts::default());
    {
        let mut c = pair.redis(2).client().expect("connect to host 2's Redis");
        for batch in (1..=PRE).collect::<Vec<_>>().chunks(500) {
            let cmds: Vec<Vec<String>> = batch
                .iter()
                .map(|n| vec!["SET".into(), format!("pre:{n}"), n.to_string()])
                .collect();
            let replies = c.pipeline(&cmds).expect("pre-writing keys");
            assert!(replies.iter().all(Reply::is_ok), "pre-writing keys");
        }
    }
    assert_eq!(dbsize(pair.redis(2)), Some(PRE));
    assert_eq!(dbsize(pair.redis(1)), Some(0));

    pair.start_redha(1);
    thread::sleep(Duration::from_secs(3));
    pair.start_redha(2);
    let writer = pair.writer();
    let (master, took) = pair.wait_settled(
        None,
        election_bound(&pair.node(1)) + sync_bound(),
        Some(&writer),
    );
    pair.note(&format!("settled with host {master} master after {took:?}"));
    // Whoever is master, it must hold host 2's data, and must not have been
    // serving an empty dataset: every acknowledged write is there too.
    let missing = pair.missing_prefixed(master, "pre:", PRE);
    pair.check(missing.is_empty(), || {
        format!(
            "{} of the {PRE} keys host 2 held at start-up are missing on the master (host {master}): {}",
            missing.len(),
            ranges(&missing)
        )
    });
    pair.assert_stays_settled(master, pair.node(1).master_down_interval());
    let log = writer.stop();
    pair.note(&format!("writer: {}", log.summary()));
    pair.assert_no_write_lost(master, &log);
    let missing = pair.missing_prefixed(other(master), "pre:", PRE);
    pair.check(missing.is_empty(), || {
        format!(
            "{} pre-existing keys missing on the replica: {}",
            missing.len(),
            ranges(&missing)
        )
    });
}

/// SIGKILL of the master's Redis: its node enters Fault (priority 0) once the check
/// has failed `fall` times, the peer takes over after Skew_Time and promotes at once;
/// the old Redis, restarted empty, rejoins as the new master's replica.
#[test]
fn redis_killed_on_the_master() {
    let test = "redis_killed_on_the_master";
    if !require(test) {
        return;
    }
    let lab = Lab::new("rkill", 3);
    redis_killed(Pair::new(test, &lab, RedisOpts::default()));
}

/// The same at 100 ms adverts (VRRPv3) and the paired health check.
#[test]
fn redis_killed_on_the_master_at_100ms() {
    let test = "redis_killed_on_the_master_at_100ms";
    if !require(test) {
        return;
    }
    let lab = Lab::new("rkill3", 3);
    redis_killed(Pair::new(test, &lab, RedisOpts::default()).at_100ms());
}

fn redis_killed(mut pair: Pair<'_>) {
    let (test, lab) = (pair.test, pair.lab);
    let writer = pair.settle_with_host1_master();

    let t0 = Instant::now();
    let killed_at = writer.snapshot().started.elapsed();
    pair.redis(1).kill();
    pair.note("host 1's Redis killed");
    let bound = FAST_RECHECK * FALL + pair.node(2).skew_time() + MARGIN;
    let takeover = pair.wait("host 2 is the only VIP holder", bound, || {
        lab.holders(VIP) == [2]
    });
    let promoted = pair.wait("host 2's Redis is master", Duration::from_secs(2), || {
        replication(pair.redis(2)).is_ok_and(|m| m.get("role").is_some_and(|r| r == "master"))
    }) + takeover;
    pair.wait("writes resume", Duration::from_secs(3), || {
        first_ack_after(&writer.snapshot(), killed_at).is_some()
    });
    pair.note(&format!(
        "VIP on host 2 {takeover:?} after the kill (bound {bound:?}), its Redis master after \
         {promoted:?}; writes resumed within {:?}",
        t0.elapsed()
    ));

    // Invariant 2: a node whose Redis is down never holds the VIP.
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        let holders = lab.holders(VIP);
        pair.check(holders == [2], || {
            format!("host 1's Redis is down, yet VIP holders are {holders:?}")
        });
        thread::sleep(POLL);
    }
    pair.redis[0].restart_empty();
    let restarted = Instant::now();
    pair.note("host 1's Redis restarted empty");
    // Its empty Redis is not eligible: host 1 stays out while it copies host 2's data.
    let mut host1_held = false;
    wait_until(sync_bound(), POLL, || {
        host1_held |= lab.has_addr(1, VIP);
        pair.settled() == Ok(2)
    });
    pair.check(!host1_held, || {
        "host 1 held the VIP while its Redis was empty and host 2's held the data".into()
    });
    pair.wait_settled(Some(2), MARGIN, Some(&writer));
    let took = restarted.elapsed();
    pair.note(&format!(
        "settled, host 1's Redis replica of host 2 after {took:?}"
    ));
    thread::sleep(Duration::from_millis(500));
    let log = writer.stop();
    pair.note(&format!(
        "writer: {}; longest gap {}",
        log.summary(),
        gap_around(&log, killed_at)
    ));
    // Replication is asynchronous: writes the killed Redis acknowledged but had not
    // sent yet are lost (the issue does not demand otherwise here), but none
    // acknowledged after the kill may be.
    let lost = pair.missing(2, &log);
    let before_kill: Vec<u64> = log
        .acked
        .iter()
        .filter(|&&(_, at)| at <= killed_at)
        .map(|&(n, _)| n)
        .collect();
    eprintln!(
        "{test}: {} acknowledged writes lost (only the killed Redis's may be): {}",
        lost.len(),
        ranges(&lost)
    );
    pair.check(lost.iter().all(|n| before_kill.contains(n)), || {
        format!(
            "writes acknowledged after the kill are missing: {}",
            ranges(&lost)
        )
    });
    pair.wait_replica_caught_up(2);
}

/// SIGKILL of the master's redha while its Redis lives: the peer takes over after
/// Master_Down_Interval, fences the old master's Redis, catches up and promotes; no
/// acknowledged write is lost; the restarted redha leaves its Redis replicating from
/// the new master.
#[test]
fn redha_killed_on_the_master() {
    let test = "redha_killed_on_the_master";
    if !require(test) {
        return;
    }
    let lab = Lab::new("hkill", 3);
    redha_killed(Pair::new(test, &lab, RedisOpts::default()));
}

/// The same at 100 ms adverts (VRRPv3) and the paired health check.
#[test]
fn redha_killed_on_the_master_at_100ms() {
    let test = "redha_killed_on_the_master_at_100ms";
    if !require(test) {
        return;
    }
    let lab = Lab::new("hkill3", 3);
    redha_killed(Pair::new(test, &lab, RedisOpts::default()).at_100ms());
}

fn redha_killed(mut pair: Pair<'_>) {
    let lab = pair.lab;
    let writer = pair.settle_with_host1_master();

    let t0 = Instant::now();
    let killed_at = writer.snapshot().started.elapsed();
    pair.agent(1).kill();
    pair.note("host 1's redha killed");
    let (n1, n2) = (pair.node(1), pair.node(2));
    // The last advert came up to advert_int before the kill.
    let take_bound = n2.master_down_interval() + MARGIN;
    pair.wait("host 2 holds the VIP", take_bound, || lab.has_addr(2, VIP));
    let taken = t0.elapsed();
    // The lease runs from the last refresh, up to advert_int before the kill.
    let gone_bound = n1.address_lease() + MARGIN;
    pair.wait("host 1's VIP expires", gone_bound, || !lab.has_addr(1, VIP));
    let gone = t0.elapsed();
    pair.wait(
        "host 2's Redis master, host 1's its replica",
        CATCH_UP_TIMEOUT + MARGIN,
        || pair.settled() == Ok(2),
    );
    let settled = t0.elapsed();
    pair.check(gone <= gone_bound, || {
        format!("host 1's VIP gone {gone:?} after the kill, bound {gone_bound:?}")
    });
    pair.note(&format!(
        "after the kill: VIP on host 2 {taken:?} (bound {take_bound:?}), gone from host 1 \
         {gone:?} (bound {gone_bound:?}), pair settled (fenced, caught up, promoted) {settled:?}"
    ));
    // The promotion fenced the old master before its last catch-up.
    let log2 = pair.state_log(2);
    let fence = log2.find("command=\"peer: CLIENT PAUSE");
    let promote = log2.rfind("command=\"local: REPLICAOF NO ONE\"");
    pair.check(
        fence.is_some() && promote.is_some() && fence < promote,
        || "host 2's state log shows no fence (peer: CLIENT PAUSE) before its promotion".into(),
    );
    thread::sleep(Duration::from_secs(1));

    pair.start_redha(1);
    let bound = election_bound(&n1);
    pair.assert_stays_settled(2, bound);
    pair.check(pair.agent(1).log().contains("to=BACKUP"), || {
        "the restarted redha never entered BACKUP".into()
    });
    pair.wait_settled(Some(2), MARGIN, Some(&writer));
    let log = writer.stop();
    pair.note(&format!(
        "writer: {}; longest gap {}",
        log.summary(),
        gap_around(&log, killed_at)
    ));
    pair.assert_no_write_lost(2, &log);
}

/// SIGTERM of the master's redha: a planned switchover. It pauses its writes until
/// the replica has caught up, says goodbye with priority 0, the peer takes over
/// after Skew_Time and promotes; no acknowledged write is lost and the gap is short.
#[test]
fn sigterm_of_the_master_is_a_planned_switchover() {
    let test = "sigterm_of_the_master_is_a_planned_switchover";
    if !require(test) {
        return;
    }
    let lab = Lab::new("sigterm", 3);
    switchover(Pair::new(test, &lab, RedisOpts::default()));
}

/// The same at 100 ms adverts (VRRPv3) and the paired health check.
#[test]
fn sigterm_of_the_master_is_a_planned_switchover_at_100ms() {
    let test = "sigterm_of_the_master_is_a_planned_switchover_at_100ms";
    if !require(test) {
        return;
    }
    let lab = Lab::new("sigterm3", 3);
    switchover(Pair::new(test, &lab, RedisOpts::default()).at_100ms());
}

fn switchover(mut pair: Pair<'_>) {
    let lab = pair.lab;
    let writer = pair.settle_with_host1_master();

    let t0 = Instant::now();
    let stopped_at = writer.snapshot().started.elapsed();
    pair.agent(1).signal(libc::SIGTERM);
    pair.note("SIGTERM to host 1's redha");
    let skew = pair.node(2).skew_time();
    let bound = skew + MARGIN;
    let taken = pair.wait("host 2 is the only VIP holder", bound, || {
        lab.holders(VIP) == [2]
    });
    let exit = pair.agent(1).wait_exit(CATCH_UP_TIMEOUT + MARGIN);
    pair.check(exit.is_some_and(|s| s.success()), || {
        format!("host 1's redha did not exit 0 after SIGTERM: {exit:?}")
    });
    let (_, settled) = pair.wait_settled(Some(2), CATCH_UP_TIMEOUT + MARGIN, Some(&writer));
    pair.note(&format!(
        "VIP on host 2 after {taken:?} (bound {bound:?}), settled {:?} after the SIGTERM",
        t0.elapsed().min(taken + settled)
    ));
    thread::sleep(Duration::from_secs(1));
    let log = writer.stop();
    let gap = log.longest_gap();
    pair.note(&format!(
        "writer: {}; longest gap {}",
        log.summary(),
        gap_around(&log, stopped_at)
    ));
    pair.assert_no_write_lost(2, &log);
    pair.check(
        pair.state_log(1).contains("command=\"local: CLIENT PAUSE"),
        || "host 1 handed over without pausing its writes".into(),
    );
    // Refused writes last about Skew_Time: the handover pause plus the takeover.
    pair.check(gap <= bound, || {
        format!("longest write gap {gap:?} exceeds Skew_Time {skew:?} + margin")
    });
}

/// The master's Redis restarted empty at once (a supervisor): the replica must not
/// be flushed by a full sync from the empty one; its node, which holds the data,
/// ends up master, and the empty Redis its replica.
fn empty_restart(test: &'static str, tag: &str, opts: RedisOpts) {
    empty_restart_written(test, tag, opts, 0);
}

/// [`empty_restart`]; with `direct` > 0, the test writes that many keys straight
/// to host 1's restarted Redis before its agent can look (as a client that reached
/// it first would): they must end up in a snapshot redha saved, and host 2's data
/// must win all the same.
fn empty_restart_written(test: &'static str, tag: &str, opts: RedisOpts, direct: u64) {
    if !require(test) {
        return;
    }
    let lab = Lab::new(tag, 3);
    let mut pair = Pair::new(test, &lab, opts);
    let writer = pair.settle_with_host1_master();
    pair.wait_replica_caught_up(1);
    let keys_before = dbsize(pair.redis(2));

    let t0 = Instant::now();
    let restarted_at = writer.snapshot().started.elapsed();
    pair.redis[0].restart_empty();
    let direct_keys: Vec<u64> = (1..=direct).collect();
    if direct > 0 {
        let mut client = pair
            .redis(1)
            .client()
            .unwrap_or_else(|e| pair.fail(&format!("connecting to host 1's Redis: {e}")));
        for n in &direct_keys {
            // The writer's convention: key `<prefix><n>`, value `n`.
            let reply = client.command(&["SET", &format!("direct:{n}"), &n.to_string()]);
            pair.check(reply.as_ref().is_ok_and(Reply::is_ok), || {
                format!("SET direct:{n} on the restarted Redis: {reply:?}")
            });
        }
    }
    let restart_took = t0.elapsed();
    pair.note(&format!(
        "host 1's Redis restarted empty (answering after {restart_took:?}); host 2 held {keys_before:?} keys"
    ));
    // Watch host 2's key count for a flush while the pair settles.
    let mut min_keys_h2 = u64::MAX;
    let bound = sync_bound() + pair.node(2).master_down_interval();
    let mut last = String::new();
    let settled = wait_until(bound, POLL, || {
        if let Some(n) = dbsize(pair.redis(2)) {
            min_keys_h2 = min_keys_h2.min(n);
        }
        match pair.settled() {
            Ok(2) => true,
            Ok(m) => {
                last = format!("settled with host {m} as master");
                false
            }
            Err(e) => {
                last = e;
                false
            }
        }
    });
    pair.note(&format!(
        "host 2's Redis held at least {min_keys_h2} keys meanwhile (before: {keys_before:?}); \
         now: {}",
        pair.redis_state().replace('\n', " ")
    ));
    if settled.is_none() {
        pair.fail(&format!(
            "the pair did not settle with host 2 (which held the data) as master within \
             {bound:?}; last: {last}; host 2 held at least {min_keys_h2} keys meanwhile{}",
            pair.writes_report(&writer.snapshot())
        ));
    }
    pair.note(&format!(
        "settled with host 2 master after {:?}",
        t0.elapsed()
    ));
    pair.check(keys_before.is_some_and(|k| min_keys_h2 >= k), || {
        format!(
            "host 2's Redis was flushed: it held {keys_before:?} keys before the restart, \
             {min_keys_h2} at one point after"
        )
    });
    pair.assert_stays_settled(2, Duration::from_secs(1));
    let log = writer.stop();
    pair.note(&format!(
        "writer: {}; longest gap {}",
        log.summary(),
        gap_around(&log, restarted_at)
    ));
    let lost = pair.missing(2, &log);
    let (before, after): (Vec<u64>, Vec<u64>) = lost.iter().partition(|&&n| {
        log.acked
            .iter()
            .any(|&(m, at)| m == n && at <= restarted_at)
    });
    eprintln!(
        "{test}: lost {} writes acknowledged before the restart ({}), {} acknowledged by the \
         restarted empty Redis ({})",
        before.len(),
        ranges(&before),
        after.len(),
        ranges(&after)
    );
    pair.check(before.is_empty(), || {
        format!(
            "{} writes acknowledged before the empty restart are missing on host 2: {}",
            before.len(),
            ranges(&before)
        )
    });
    if after.is_empty() && direct == 0 {
        pair.assert_no_write_lost(2, &log);
        return;
    }
    // Clients reached the restarted Redis before its agent looked: those writes
    // are not in the final dataset, but redha saved them before the resync.
    let saved = saved_snapshots(&pair::agent_log(&pair.agents, 1));
    let mut unsaved = after.clone();
    let mut direct_unsaved = direct_keys.clone();
    for (i, snapshot) in saved.iter().enumerate() {
        let port = 7400 + u16::try_from(i).expect("few snapshots");
        let scratch = ScratchRedis::load(&lab, CLIENT, port, &snapshot.path)
            .unwrap_or_else(|e| pair.fail(&format!("loading {}: {e}", snapshot.path.display())));
        unsaved = scratch.missing("k:", &unsaved);
        direct_unsaved = scratch.missing("direct:", &direct_unsaved);
    }
    pair.check(direct_unsaved.is_empty(), || {
        format!(
            "{} of the {direct} keys written straight to the restarted Redis are in no snapshot \
             redha saved ({} saved): {}",
            direct_unsaved.len(),
            saved.len(),
            ranges(&direct_unsaved)
        )
    });
    pair.check(unsaved.is_empty(), || {
        format!(
            "{} writes acknowledged by the restarted empty Redis are neither on host 2 nor in a \
             snapshot redha saved ({} saved): {}",
            unsaved.len(),
            saved.len(),
            ranges(&unsaved)
        )
    });
    eprintln!(
        "{test}: the {} writes the restarted empty Redis took are in the snapshot redha saved",
        after.len()
    );
}

#[test]
fn master_redis_restarted_empty() {
    empty_restart(
        "master_redis_restarted_empty",
        "empty5",
        RedisOpts::default(),
    );
}

/// Clients reach the restarted empty Redis before its agent looks: its few keys
/// are saved, it follows host 2, whose data wins.
#[test]
fn master_redis_restarted_empty_and_written_before_its_agent_looks() {
    empty_restart_written(
        "master_redis_restarted_empty_and_written_before_its_agent_looks",
        "emptyw",
        RedisOpts::default(),
        20,
    );
}

#[test]
fn master_redis_restarted_empty_without_sync_delay() {
    empty_restart(
        "master_redis_restarted_empty_without_sync_delay",
        "empty0",
        RedisOpts {
            repl_diskless_sync_delay: Some(0),
            ..RedisOpts::default()
        },
    );
}

/// A partition cuts the master (and so the client's path to it) off: both nodes are
/// VRRP master while apart, the client writes to host 2; after the heal exactly one
/// VIP holder remains and every acknowledged write is on the final master.
#[test]
fn partition_and_heal() {
    let test = "partition_and_heal";
    if !require(test) {
        return;
    }
    let lab = Lab::new("split", 3);
    let mut pair = Pair::new(test, &lab, RedisOpts::default());
    let writer = pair.settle_with_host1_master();

    let t0 = Instant::now();
    let cut_at = writer.snapshot().started.elapsed();
    lab.detach(1);
    pair.note("host 1 detached");
    let bound = pair.node(2).master_down_interval() + MARGIN;
    let taken = pair.wait("host 2 holds the VIP", bound, || lab.has_addr(2, VIP));
    let both = pair.wait("both hold the VIP while apart", MARGIN, || {
        lab.holders(VIP) == [1, 2]
    });
    let resumed = pair.wait("writes resume on host 2", Duration::from_secs(3), || {
        first_ack_after(&writer.snapshot(), cut_at).is_some()
    });
    pair.note(&format!(
        "host 2 took the VIP after {taken:?} (bound {bound:?}); both held it {both:?} later; \
         writes resumed {:?} after the cut",
        t0.elapsed().min(taken + resumed)
    ));
    thread::sleep(Duration::from_secs(3));
    pair.check(lab.holders(VIP) == [1, 2], || {
        format!("while apart, VIP holders {:?}", lab.holders(VIP))
    });

    let t1 = Instant::now();
    let healed_at = writer.snapshot().started.elapsed();
    lab.attach(1);
    pair.note("host 1 attached again");
    let one = pair.wait(
        "exactly one VIP holder after the heal",
        pair.node(2).master_down_interval() + MARGIN,
        || lab.holders(VIP).len() == 1,
    );
    let (master, _) = pair.wait_settled(None, CATCH_UP_TIMEOUT + sync_bound(), Some(&writer));
    pair.note(&format!(
        "one VIP holder {one:?} after the heal; settled with host {master} master {:?} after it",
        t1.elapsed()
    ));
    pair.assert_stays_settled(master, Duration::from_secs(2));
    let log = writer.stop();
    pair.note(&format!(
        "writer: {}; longest gap while apart {:?}, after the heal {:?}; acks after the heal: {}",
        log.summary(),
        longest_gap_in(&log, cut_at, healed_at),
        longest_gap_in(&log, healed_at, Duration::MAX),
        log.acked.iter().filter(|&&(_, at)| at > healed_at).count()
    ));
    // Writes acknowledged while apart (by host 2, the side the client could reach)
    // must survive; so must those acknowledged after the heal, by whichever side.
    let lost = pair.missing(master, &log);
    let when = |n: u64| {
        let at = log.acked.iter().find(|&&(m, _)| m == n).map(|&(_, at)| at);
        match at {
            Some(at) if at <= cut_at => "before the cut",
            Some(at) if at <= healed_at => "while apart",
            _ => "after the heal",
        }
    };
    for phase in ["before the cut", "while apart", "after the heal"] {
        let these: Vec<u64> = lost.iter().copied().filter(|&n| when(n) == phase).collect();
        eprintln!(
            "{test}: acknowledged {phase}, missing on the final master (host {master}): {} ({})",
            these.len(),
            ranges(&these)
        );
    }
    pair.assert_no_write_lost(master, &log);
}

/// The longest interval between consecutive acknowledgements where the later one
/// came in `(from, to]` (counted from the writer's start).
fn longest_gap_in(log: &WriteLog, from: Duration, to: Duration) -> Duration {
    log.acked
        .windows(2)
        .filter(|w| w[1].1 > from && w[1].1 <= to)
        .map(|w| w[1].1.saturating_sub(w[0].1))
        .max()
        .unwrap_or_default()
}
