//! Hangs (issue 10, section 3): an agent or a Redis that stops for a while and then
//! resumes as if nothing had happened.
//!
//! Hosts 1 and 2 run `redis-server` and redha as in `redis_failover.rs` (host 1
//! priority 150, host 2 priority 100, both `preempt = false`, each replicating with
//! the other); client host 3 writes through the VIP and records every
//! acknowledged write.
//!
//! - The master's agent is stopped (SIGSTOP) for longer than its address lease:
//!   its VIP expires in the kernel, host 2 takes over. When the agent resumes
//!   (SIGCONT) its timers are all overdue and its socket holds the peer's
//!   adverts; it must see that it was away (the clock) and that another master
//!   took over (the adverts) within one advert interval, and settle with the peer
//!   by the protocol's rules: never two VIP holders beyond that interval (redha
//!   never makes two at all), nothing acknowledged lost.
//! - The master's Redis stalls (SIGSTOP of redis-server, or `DEBUG SLEEP`) for
//!   longer than `fall` x `check_timeout`: it is down, host 2 takes over; once it
//!   resumes it must become a replica of host 2, nothing acknowledged lost.

use std::time::{Duration, Instant};

use netns_tests::pair::{self, CHECK_INTERVAL, FALL, RISE, dbsize, require, sync_bound, vip_addr};
use netns_tests::redha::{self, MARGIN, Node, VIP};
use netns_tests::redis::{RedisNode, RedisOpts};
use netns_tests::writer::{Writer, missing_keys, ranges};
use netns_tests::{Lab, Proc, wait_until};

/// The client host.
const CLIENT: usize = 3;
/// One write every this long.
const WRITE_INTERVAL: Duration = Duration::from_millis(10);
/// Polling period of the waits.
const POLL: Duration = Duration::from_millis(20);
/// redha's default `[redis] check_timeout` (config/reference.toml).
const CHECK_TIMEOUT: Duration = Duration::from_millis(500);

/// The pair, the agents and the client.
struct Scene<'lab> {
    test: &'static str,
    lab: &'lab Lab,
    /// Index `host - 1`.
    redis: Vec<RedisNode<'lab>>,
    agents: Vec<(usize, Proc)>,
    started: Instant,
}

impl<'lab> Scene<'lab> {
    /// Starts Redis with `opts` on hosts 1 and 2, then both agents, and waits until
    /// host 1 is master with host 2 its replica.
    fn settled(test: &'static str, lab: &'lab Lab, opts: RedisOpts) -> Self {
        let mut scene = Scene {
            test,
            lab,
            redis: pair::start_redis(lab, opts),
            agents: Vec::new(),
            started: Instant::now(),
        };
        for host in 1..=2 {
            let proc = redha::start(lab, host, &scene.node(host));
            scene.agents.push((host, proc));
        }
        let within = pair::election_bound(&scene.node(1)) + sync_bound();
        scene.wait_settled(Some(1), within);
        scene.note("settled: host 1 master, host 2 its replica");
        scene
    }

    fn node(&self, host: usize) -> Node {
        pair::node(self.lab, host, false)
    }

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

    fn fail(&self, msg: &str) -> ! {
        panic!(
            "{}: {msg}\n--- lab dir {}\n{}{}",
            self.test,
            self.lab.dir().display(),
            pair::redis_state(self.lab, &self.redis),
            pair::agent_logs(self.lab, &self.agents)
        );
    }

    /// Waits until the pair is settled (with `master`, if given); returns the master.
    fn wait_settled(&self, master: Option<usize>, within: Duration) -> usize {
        match pair::wait_settled(self.lab, &self.redis, master, within, POLL, || {}) {
            Ok((m, took)) => {
                self.note(&format!("settled with host {m} master after {took:?}"));
                m
            }
            Err(last) => self.fail(&format!("not settled within {within:?}: {last}")),
        }
    }

    /// Waits until `f` holds; fails the test after `within`.
    fn wait(&self, what: &str, within: Duration, f: impl FnMut() -> bool) -> Duration {
        match wait_until(within, POLL, f) {
            Some(took) => took,
            None => self.fail(&format!("not within {within:?}: {what}")),
        }
    }

    /// Both agents still run and none logged a panic.
    fn agents_alive(&self) {
        for (host, proc) in &self.agents {
            if !proc.is_running() {
                self.fail(&format!("the agent on host {host} exited"));
            }
            if proc.log().contains("panicked") {
                self.fail(&format!("the agent on host {host} panicked"));
            }
        }
    }

    /// Every write the client saw acknowledged is on `master`'s Redis.
    fn nothing_lost(&self, writer: Writer, master: usize) {
        let log = writer.stop();
        let missing = missing_keys(
            self.lab,
            CLIENT,
            self.redis[master - 1].addr(),
            &log.acked_keys(),
        );
        self.note(&format!(
            "writer: {}; host {master} holds {:?} keys",
            log.summary(),
            dbsize(&self.redis[master - 1])
        ));
        if !missing.is_empty() {
            self.fail(&format!(
                "{} acknowledged writes missing on host {master}: {}",
                missing.len(),
                ranges(&missing)
            ));
        }
    }
}

/// SIGSTOP of the master's agent for twice its address lease, then SIGCONT.
#[test]
fn agent_stopped_longer_than_its_lease() {
    let test = "agent_stopped_longer_than_its_lease";
    if !require(test) {
        return;
    }
    let lab = Lab::new("agentstop", 3);
    let scene = Scene::settled(test, &lab, RedisOpts::default().rdb_default());
    let writer = Writer::start(&lab, CLIENT, vip_addr(), WRITE_INTERVAL);
    scene.wait("the client writes through the VIP", MARGIN * 2, || {
        writer.acked_count() >= 50
    });

    let n1 = scene.node(1);
    let n2 = scene.node(2);
    let advert_int = n1.advert_int;
    scene.agent(1).signal(libc::SIGSTOP);
    let stopped = Instant::now();
    scene.note("host 1's agent stopped (SIGSTOP)");
    // Host 1's VIP runs out with its lease; host 2 hears no advert for its
    // Master_Down_Interval and takes over.
    let takeover = n1.address_lease().max(n2.master_down_interval()) + MARGIN;
    scene.wait("host 2 alone holds the VIP", takeover, || {
        lab.holders(VIP) == [2]
    });
    scene.note("host 2 alone holds the VIP");
    // Writes resume on host 2 (it promoted its Redis), then the agent stays stopped
    // for a while longer: the resumed agent finds host 2 settled as master.
    let acked = writer.acked_count();
    scene.wait(
        "writes resume through host 2",
        sync_bound() + pair::CATCH_UP_TIMEOUT,
        || writer.acked_count() > acked + 50,
    );
    scene.note("writes go on through host 2");
    // The fault lasts twice the lease in all (its duration, not a wait for a state).
    std::thread::sleep((n1.address_lease() * 2).saturating_sub(stopped.elapsed()));

    scene.agent(1).signal(libc::SIGCONT);
    let resumed = Instant::now();
    scene.note("host 1's agent resumed (SIGCONT)");
    // The issue allows two holders for one advert interval after the resume; redha
    // does better: the resumed agent notices the stall at its first event and never
    // adds the VIP again (it expired with its lease), so host 2 stays the only
    // holder throughout.
    let watch = advert_int + n1.master_down_interval() * 2 + CHECK_INTERVAL * (RISE + FALL);
    while resumed.elapsed() < watch {
        let holders = lab.holders(VIP);
        if holders != [2] {
            scene.fail(&format!(
                "{:?} after SIGCONT, {holders:?} hold the VIP (host 2 alone should)",
                resumed.elapsed()
            ));
        }
        std::thread::sleep(POLL);
    }
    scene.note(&format!(
        "for {watch:?} after SIGCONT host 2 alone held the VIP"
    ));
    let master = scene.wait_settled(None, sync_bound() + pair::CATCH_UP_TIMEOUT);
    scene.agents_alive();
    if !scene.agent(1).log().contains("this agent did not run for") {
        scene.fail("host 1's agent did not say that it had been stopped");
    }
    // Without preempt, host 2 keeps the VIP: host 1 came back as its backup.
    if master != 2 {
        scene.fail(&format!(
            "host {master} is master: the resumed agent took the VIP back from host 2 (nopreempt)"
        ));
    }
    scene.nothing_lost(writer, master);
}

/// How a Redis is made to stall.
#[derive(Clone, Copy, Debug)]
enum Stall {
    /// SIGSTOP of `redis-server`, SIGCONT later.
    Signal,
    /// `DEBUG SLEEP` on a connection of its own.
    DebugSleep,
}

/// The master's Redis stalls for longer than `fall` x `check_timeout` (and long
/// enough for host 2 to take over and promote), then resumes: it must end as
/// host 2's replica, nothing acknowledged lost.
fn master_redis_stalls(test: &'static str, tag: &str, stall: Stall) {
    if !require(test) {
        return;
    }
    let lab = Lab::new(tag, 3);
    let mut opts = RedisOpts::default().rdb_default();
    if matches!(stall, Stall::DebugSleep) {
        // Redis 7 refuses DEBUG unless told; on loopback only.
        opts.extra.push("enable-debug-command local".into());
    }
    let scene = Scene::settled(test, &lab, opts);
    let writer = Writer::start(&lab, CLIENT, vip_addr(), WRITE_INTERVAL);
    scene.wait("the client writes through the VIP", MARGIN * 2, || {
        writer.acked_count() >= 50
    });
    // Down after `fall` checks of `check_timeout` each (one every check_interval),
    // then host 1 leaves with priority 0 and host 2 takes over after Skew_Time.
    let down = (CHECK_INTERVAL + CHECK_TIMEOUT) * FALL + scene.node(2).skew_time() + MARGIN;
    let stall_for = down + sync_bound();
    let sleeper = match stall {
        Stall::Signal => {
            scene.redis[0].proc().signal(libc::SIGSTOP);
            scene.note("host 1's redis-server stopped (SIGSTOP)");
            None
        }
        Stall::DebugSleep => {
            let secs = format!("{:.1}", stall_for.as_secs_f64());
            let port = scene.redis[0].addr().port().to_string();
            let sleeper = lab.spawn(
                1,
                "debug-sleep",
                "redis-cli",
                ["-h", "127.0.0.1", "-p", &port, "DEBUG", "SLEEP", &secs],
            );
            scene.note(&format!("host 1's Redis told DEBUG SLEEP {secs}"));
            Some(sleeper)
        }
    };
    scene.wait(
        "host 2 holds the VIP with its Redis master",
        stall_for,
        || {
            lab.holders(VIP) == [2]
                && scene.redis[1]
                    .client()
                    .and_then(|mut c| c.role())
                    .is_ok_and(|r| r == "master")
        },
    );
    scene.note("host 2 holds the VIP, its Redis promoted");
    match stall {
        Stall::Signal => {
            scene.redis[0].proc().signal(libc::SIGCONT);
            scene.note("host 1's redis-server resumed (SIGCONT)");
        }
        Stall::DebugSleep => {
            let sleeper = sleeper.expect("the DEBUG SLEEP client");
            if sleeper.wait_exit(stall_for + MARGIN).is_none() {
                scene.fail("DEBUG SLEEP did not end");
            }
            scene.note("host 1's Redis woke up from DEBUG SLEEP");
        }
    }
    let settle = CHECK_INTERVAL * (RISE + 1) + sync_bound() + pair::CATCH_UP_TIMEOUT;
    scene.wait_settled(Some(2), settle);
    // And it stays so: host 1 does not take the VIP back (nopreempt).
    if let Err(e) = pair::stays_settled(
        &lab,
        &scene.redis,
        2,
        scene.node(1).master_down_interval(),
        POLL,
        || {},
    ) {
        scene.fail(&e);
    }
    scene.agents_alive();
    scene.nothing_lost(writer, 2);
}

#[test]
fn master_redis_stopped_by_signal() {
    master_redis_stalls("master_redis_stopped_by_signal", "redisstop", Stall::Signal);
}

#[test]
fn master_redis_in_debug_sleep() {
    master_redis_stalls(
        "master_redis_in_debug_sleep",
        "redissleep",
        Stall::DebugSleep,
    );
}
