//! Replication safety under the conditions users run (issue 7), in network
//! namespaces: a split with a client on each side, empty restarts whatever the sync
//! mode, a fence that Redis refuses, and two VRRP masters whose Redis servers still
//! reach each other.
//!
//! Hosts 1 and 2 run `redis-server` and redha (host 1 priority 150, host 2 priority
//! 100, both `preempt = false`, each replicating with the other, a state log and a
//! `state_dir` each); the other hosts are clients writing their own keys through the
//! VIP. Every scenario ends with the pair settled (exactly one VIP holder, its Redis
//! master, the other Redis its replica with the link up) and every acknowledged
//! write accounted for: on the final master, or in a dataset that redha saved
//! (`<state_dir>/saved/redha-local-<unix time>.rdb`, named in its log), which the
//! test loads into a scratch `redis-server` to look.
//!
//! Timing bounds come from protocol math (DESIGN.md, README) plus [`MARGIN`]:
//! Master_Down_Interval for a takeover without adverts, Skew_Time after a priority-0
//! advert, `rise` x `check_interval` before a node joins, the isolation fence's
//! `min-replicas-max-lag` (Redis checks the lag once a second), the 1 s retry of a
//! refused fence, and `repl-diskless-sync-delay` before a full sync.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use netns_tests::pair::{
    self, CHECK_INTERVAL, DISKLESS_SYNC_DELAY, RISE, election_bound, other, replication, require,
    role, sync_bound, vip_addr,
};
use netns_tests::redha::{self, MARGIN, Node, RedisSettings, VIP};
use netns_tests::redis::{AclUser, RedisNode, RedisOpts, Reply, Resp, lab_connect};
use netns_tests::saved::{SAVED_MESSAGE, ScratchRedis};
use netns_tests::timeline::{Timeline, line_time, utc};
use netns_tests::writer::{WriteLog, Writer, account, error_kind, ranges};
use netns_tests::{Lab, Proc, redha_bin, wait_until};

/// One write every this long, per client.
const WRITE_INTERVAL: Duration = Duration::from_millis(10);
/// Polling period of the waits.
const POLL: Duration = Duration::from_millis(20);

/// How long after a refused fence the planner asks again (planner.rs).
const FENCE_RETRY: Duration = Duration::from_secs(1);

/// Port of the scratch `redis-server` that loads a saved dataset.
const SCRATCH_PORT: u16 = 6390;
/// How long a scratch `redis-server` may take to answer with its dataset loaded.
const SCRATCH_LOAD: Duration = Duration::from_secs(10);

/// What the nodes are configured with beyond the pair's defaults.
#[derive(Clone, Debug, Default)]
struct Setup {
    /// Extra `[replication]` lines for both nodes.
    replication_extra: String,
    /// The ACL user redha logs in as, if any.
    user: Option<AclUser>,
}

fn is_master(redis: &RedisNode<'_>) -> bool {
    replication(redis).is_ok_and(|m| m.get("role").is_some_and(|r| r == "master"))
}

/// `CONFIG GET key` on a Redis (as the default user).
fn config_get(redis: &RedisNode<'_>, key: &str) -> Option<String> {
    match redis.query(&["CONFIG", "GET", key]) {
        Ok(Reply::Array(v)) => v.get(1).and_then(Reply::text),
        _ => None,
    }
}

/// The VRRP state and the replication rule `redha status` reports for host `i`.
fn status(lab: &Lab, i: usize) -> (Option<String>, Option<String>) {
    let out = Command::new(redha_bin())
        .arg("status")
        .arg("--socket")
        .arg(redha::control_socket(lab, i))
        .output()
        .expect("run redha status");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|rest| rest.trim().to_owned())
    };
    let state = field("state").and_then(|s| s.split_whitespace().next().map(str::to_owned));
    (state, field("replication"))
}

/// How many of a log's failures there were of each kind, within `[from, to]`.
fn error_kinds(log: &WriteLog, from: Duration, to: Duration) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for (_, at, e) in &log.errors {
        if *at >= from && *at <= to {
            *kinds.entry(error_kind(e).to_owned()).or_default() += 1;
        }
    }
    kinds
}

/// The first acknowledgement after `since` (from the writer's start).
fn first_ack_after(log: &WriteLog, since: Duration) -> Option<Duration> {
    log.acked
        .iter()
        .find(|&&(_, at)| at > since)
        .map(|&(_, at)| at)
}

/// The last acknowledgement within `(from, to]` (from the writer's start).
fn last_ack_between(log: &WriteLog, from: Duration, to: Duration) -> Option<Duration> {
    log.acked
        .iter()
        .rev()
        .find(|&&(_, at)| at > from && at <= to)
        .map(|&(_, at)| at)
}

/// The longest interval between consecutive acknowledgements whose later one came in
/// `(from, to]`.
fn longest_gap_in(log: &WriteLog, from: Duration, to: Duration) -> Duration {
    log.acked
        .windows(2)
        .filter(|w| w[1].1 > from && w[1].1 <= to)
        .map(|w| w[1].1.saturating_sub(w[0].1))
        .max()
        .unwrap_or_default()
}

/// `at` counted from the writer's start, as an offset from `event` (also from the
/// writer's start): `+2.31s`.
fn rel(at: Duration, event: Duration) -> String {
    format!("{:+.2}s", at.as_secs_f64() - event.as_secs_f64())
}

/// `when` as an [`Instant`] counted from a writer's start.
fn since_start(log: &WriteLog, when: Instant) -> Duration {
    when.saturating_duration_since(log.started)
}

/// The saved datasets named in a log (`.../saved/redha-<...>.rdb`), in order, once
/// each.
fn saved_files(text: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for line in text.lines() {
        let mut rest = line;
        while let Some(at) = rest.find("/saved/redha-") {
            let start = rest[..at]
                .rfind(|c: char| c.is_whitespace() || c == '"' || c == '=')
                .map_or(0, |i| i + 1);
            let Some(end) = rest[at..].find(".rdb").map(|e| at + e + 4) else {
                break;
            };
            let path = PathBuf::from(&rest[start..end]);
            if !out.contains(&path) {
                out.push(path);
            }
            rest = &rest[end..];
        }
    }
    out
}

/// The first line of `text` stamped at or after `since` that contains all of
/// `needles`.
fn first_line_after<'a>(text: &'a str, since: SystemTime, needles: &[&str]) -> Option<&'a str> {
    text.lines()
        .find(|l| line_time(l).is_some_and(|t| t >= since) && needles.iter().all(|n| l.contains(n)))
}

/// Lines of `text` stamped at or after `since` that contain all of `needles`.
fn lines_after<'a>(text: &'a str, since: SystemTime, needles: &[&str]) -> Vec<&'a str> {
    text.lines()
        .filter(|l| {
            line_time(l).is_some_and(|t| t >= since) && needles.iter().all(|n| l.contains(n))
        })
        .collect()
}

/// The two Redis hosts with their redha agents, and what the test saw.
struct Pair<'lab> {
    test: &'static str,
    lab: &'lab Lab,
    /// Index `host - 1`.
    redis: Vec<RedisNode<'lab>>,
    /// Every redha ever started, in order, with its host.
    agents: Vec<(usize, Proc)>,
    setup: Setup,
    timeline: RefCell<Timeline>,
}

impl<'lab> Pair<'lab> {
    /// Starts Redis on hosts 1 and 2 (no redha yet).
    fn new(test: &'static str, lab: &'lab Lab, opts: RedisOpts, setup: Setup) -> Self {
        let redis = pair::start_redis(lab, opts);
        Pair {
            test,
            lab,
            redis,
            agents: Vec::new(),
            setup,
            timeline: RefCell::new(Timeline::new()),
        }
    }

    fn redis(&self, host: usize) -> &RedisNode<'lab> {
        &self.redis[host - 1]
    }

    /// Host 1: priority 150; host 2: priority 100; both nopreempt, with the setup's
    /// extra lines and user.
    fn node(&self, host: usize) -> Node {
        let priority = if host == 1 { 150 } else { 100 };
        let mut settings = RedisSettings::pair(
            self.lab.addr(other(host)),
            pair::state_log_path(self.lab, host),
        );
        settings
            .replication_extra
            .push_str(&self.setup.replication_extra);
        if let Some(user) = &self.setup.user {
            settings = settings.with_user(user);
        }
        Node {
            preempt: false,
            redis: Some(settings),
            ..Node::with_priority(priority)
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

    /// Every log of the redha agents on `host`, in order.
    fn agent_log(&self, host: usize) -> String {
        pair::agent_log(&self.agents, host)
    }

    fn state_log(&self, host: usize) -> String {
        pair::state_log(self.lab, host)
    }

    fn note(&self, what: &str) {
        let mut t = self.timeline.borrow_mut();
        eprintln!(
            "{}: +{:.2}s {what}",
            self.test,
            t.started().elapsed().as_secs_f64()
        );
        t.note(what);
    }

    /// Looks at the VIP and both Redis once and records what changed.
    fn sample(&self) {
        let holders = self.lab.holders(VIP);
        let roles = [role(self.redis(1)), role(self.redis(2))];
        let mut t = self.timeline.borrow_mut();
        t.set("VIP holders", format!("{holders:?}"));
        for (i, r) in roles.into_iter().enumerate() {
            t.set(&format!("host {} Redis", i + 1), r);
        }
    }

    /// Each Redis's role, master, link, offset and keys, in one line each.
    fn redis_state(&self) -> String {
        pair::redis_state(self.lab, &self.redis)
    }

    /// The timeline, both Redis, the redha logs (DEBUG lines left out) and both
    /// state logs.
    fn diagnostics(&self) -> String {
        let mut out = format!(
            "--- timeline:\n{}--- lab dir {}\n",
            self.timeline.borrow().render(),
            self.lab.dir().display()
        );
        out.push_str(&self.redis_state());
        out.push_str(&pair::agent_logs(self.lab, &self.agents));
        out
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

    /// Samples until `f` holds or `within` passes; fails the test if it does not
    /// happen; returns how long it took.
    fn wait(&self, what: &str, within: Duration, mut f: impl FnMut() -> bool) -> Duration {
        let found = wait_until(within, POLL, || {
            self.sample();
            f()
        });
        match found {
            Some(d) => d,
            None => self.fail(&format!("not within {within:?}: {what}")),
        }
    }

    /// Is the pair settled? Returns the master host, or what is missing.
    fn settled(&self) -> Result<usize, String> {
        pair::settled(self.lab, &self.redis)
    }

    /// Waits until the pair is settled, with `master` holding the VIP if given;
    /// returns the master and how long it took. `watch` is called at every sample.
    fn wait_settled(
        &self,
        master: Option<usize>,
        within: Duration,
        mut watch: impl FnMut(),
    ) -> (usize, Duration) {
        let each = || {
            self.sample();
            watch();
        };
        pair::wait_settled(self.lab, &self.redis, master, within, POLL, each).unwrap_or_else(
            |last| {
                self.fail(&format!(
                    "the pair did not settle (master {master:?}) within {within:?}; last: {last}"
                ))
            },
        )
    }

    /// Asserts that the pair stays settled with `master` for `period`.
    fn assert_stays_settled(&self, master: usize, period: Duration) {
        let each = || self.sample();
        if let Err(e) = pair::stays_settled(self.lab, &self.redis, master, period, POLL, each) {
            self.fail(&e);
        }
    }

    /// Starts redha on host 1, then host 2, and waits until host 1 is master and
    /// host 2's Redis its replica.
    fn start_and_settle(&mut self) {
        self.start_redha(1);
        self.start_redha(2);
        let within = election_bound(&self.node(1)) + DISKLESS_SYNC_DELAY + MARGIN * 2;
        let (_, took) = self.wait_settled(Some(1), within, || {});
        self.note(&format!("settled, host 1 master, after {took:?}"));
    }

    /// Starts a client on each host of `clients`, each with its own keys, and waits
    /// until each has 100 writes acknowledged.
    fn writers(&self, clients: &[usize]) -> Vec<Writer> {
        let writers = Writer::start_clients(self.lab, clients, vip_addr(), WRITE_INTERVAL);
        for w in &writers {
            if !w.wait_acked(100, Duration::from_secs(5)) {
                self.fail(&format!(
                    "a client could not write through the VIP: {}",
                    w.snapshot().summary()
                ));
            }
        }
        writers
    }

    /// Waits until the replica's offset equals the master's.
    fn wait_replica_caught_up(&self, master: usize) {
        let (m, r) = (self.redis(master), self.redis(other(master)));
        if !r.wait_caught_up(m, Duration::from_secs(5)) {
            self.fail("the replica did not catch up with the master within 5 s");
        }
    }

    /// Every acknowledged write of `logs` is on the master and, once caught up, on
    /// its replica.
    fn assert_no_write_lost(&self, master: usize, logs: &[&WriteLog]) {
        for host in [master, other(master)] {
            if host != master {
                self.wait_replica_caught_up(master);
            }
            for a in account(self.lab, host, self.redis(host).addr(), logs) {
                eprintln!("{}: on host {host}: {}", self.test, a.summary());
                self.check(a.missing.is_empty(), || {
                    format!(
                        "acknowledged writes missing on host {host} ({}): {}",
                        if host == master { "master" } else { "replica" },
                        a.summary()
                    )
                });
            }
        }
    }
}

// ---------------------------------------------------------------------------
// 1. A split with a client on each side

/// `[replication] isolation_timeout` of the split scenario.
const ISOLATION: Duration = Duration::from_secs(2);
/// How long the switch stays cut in two.
const SPLIT_FOR: Duration = Duration::from_secs(12);

/// Four hosts: 1 and 2 run Redis and redha, clients 3 and 4 write their own keys
/// through the VIP. Both nodes have `isolation_timeout = "2s"` and host 3's port 9
/// (nobody listens: a refusal is an answer) as their witness. The switch is cut in
/// two, hosts 1 and 4 on one side, 2 and 3 on the other, for 12 s, then healed.
///
/// While apart: host 2 takes the VIP (Master_Down_Interval), its witness answers, so
/// it promotes and client 3's writes go on there; host 1 keeps the VIP on its side,
/// but its Redis, without its replica and with no witness answering, refuses client
/// 4's writes within isolation_timeout + 2 s of the cut. After the heal host 2, the
/// side promoted during the split, stays master; host 1 saves its dataset, then
/// becomes host 2's replica; each acknowledged write is on the final master or in
/// that saved dataset.
#[test]
fn split_with_a_client_on_each_side() {
    let test = "split_with_a_client_on_each_side";
    if !require(test) {
        return;
    }
    let lab = Lab::new("twoside", 4);
    let setup = Setup {
        replication_extra: format!(
            "isolation_timeout = \"{}s\"\nwitnesses = [\"{}:9\"]\n",
            ISOLATION.as_secs(),
            lab.addr(3)
        ),
        user: None,
    };
    let mut pair = Pair::new(test, &lab, RedisOpts::default(), setup);
    pair.start_and_settle();
    let lag = ISOLATION.as_secs().to_string();
    pair.wait(
        &format!("host 1's Redis keeps min-replicas-to-write 1, min-replicas-max-lag {lag}"),
        CHECK_INTERVAL * 2 + MARGIN,
        || {
            config_get(pair.redis(1), "min-replicas-to-write").as_deref() == Some("1")
                && config_get(pair.redis(1), "min-replicas-max-lag").as_deref()
                    == Some(lag.as_str())
        },
    );
    pair.note("isolation fence on host 1's Redis");
    let writers = pair.writers(&[3, 4]);

    let n2 = pair.node(2);
    let cut = Instant::now();
    lab.split(&[1, 4]);
    pair.note("switch cut in two: hosts 1 and 4 | hosts 2 and 3");
    let cut_wall = SystemTime::now();
    let mut host2_vip = None;
    let mut host2_master = None;
    let mut host1_lost_vip = false;
    let mut host1_redis = Vec::new();
    while cut.elapsed() < SPLIT_FOR {
        pair.sample();
        let holders = lab.holders(VIP);
        if host2_vip.is_none() && holders.contains(&2) {
            host2_vip = Some(cut.elapsed());
        }
        if host2_master.is_none() && is_master(pair.redis(2)) {
            host2_master = Some(cut.elapsed());
        }
        host1_lost_vip |= !holders.contains(&1);
        let r1 = role(pair.redis(1));
        if host1_redis.last() != Some(&r1) {
            host1_redis.push(r1);
        }
        thread::sleep(POLL);
    }
    let heal = Instant::now();
    let healed = lab.heal_split();
    pair.note(&format!("split healed (hosts {healed:?} moved back)"));
    let heal_wall = SystemTime::now();

    let take_bound = n2.master_down_interval() + MARGIN;
    let Some(took_vip) = host2_vip else {
        pair.fail(&format!(
            "host 2 never took the VIP during the {SPLIT_FOR:?} split"
        ));
    };
    let Some(promoted) = host2_master else {
        pair.fail("host 2's Redis was never promoted during the split");
    };
    pair.check(took_vip <= take_bound, || {
        format!("host 2 took the VIP {took_vip:?} after the cut, bound {take_bound:?}")
    });
    pair.check(!host1_lost_vip && host1_redis == ["master"], || {
        format!(
            "host 1 should have kept the VIP and its Redis master on its side; lost the VIP: \
             {host1_lost_vip}, its Redis: {host1_redis:?}"
        )
    });

    // The pair settles; host 2, promoted during the split, must be its master,
    // its Redis master throughout. What happens is recorded first, the numbers
    // printed, and the rules checked at the end.
    let mut problems: Vec<String> = Vec::new();
    let settle_bound = CHECK_INTERVAL * 2 + n2.skew_time() + sync_bound();
    let mut host2_demoted: Option<(Duration, String)> = None;
    let mut no_holder: (Option<Instant>, Duration) = (None, Duration::ZERO);
    let (master, settle) = pair.wait_settled(None, settle_bound, || {
        if host2_demoted.is_none() && !is_master(pair.redis(2)) {
            host2_demoted = Some((heal.elapsed(), role(pair.redis(2))));
        }
        match (lab.holders(VIP).is_empty(), no_holder.0) {
            (true, None) => no_holder.0 = Some(Instant::now()),
            (false, Some(since)) => {
                no_holder = (None, no_holder.1.max(since.elapsed()));
            }
            _ => {}
        }
    });
    pair.note(&format!(
        "settled with host {master} master {settle:?} after the heal"
    ));
    pair.assert_stays_settled(master, Duration::from_secs(2));
    let logs: Vec<WriteLog> = writers.into_iter().map(Writer::stop).collect();
    let (log3, log4) = (&logs[0], &logs[1]);
    if master != 2 {
        problems.push(format!(
            "after the heal the pair settled with host {master} master, not host 2, which was \
             promoted during the split"
        ));
    }
    if let Some((at, r)) = &host2_demoted {
        problems.push(format!(
            "{at:?} after the heal host 2's Redis stopped being master: {r}"
        ));
    }

    // Numbers of the split.
    let (cut3, heal3) = (since_start(log3, cut), since_start(log3, heal));
    let (cut4, heal4) = (since_start(log4, cut), since_start(log4, heal));
    let acked3 = log3.acked_between(cut3, heal3).len();
    let acked4 = log4.acked_between(cut4, heal4).len();
    let resumed3 = first_ack_after(log3, cut3 + promoted);
    let last4 = last_ack_between(log4, cut4, heal4);
    eprintln!(
        "{test}: during the {SPLIT_FOR:?} split: host 2 took the VIP {took_vip:?} after the cut \
         (bound {take_bound:?}), its Redis master after {promoted:?}\n\
         {test}: client 3 (host 2's side): {acked3} acks, first after the promotion at {}, \
         longest gap {:?}, errors {:?}\n\
         {test}: client 4 (host 1's side): {acked4} acks, the last at {} of the cut (bound \
         isolation_timeout + 2 s = {:?}), errors {:?}\n\
         {test}: after the heal: settled with host {master} master {settle:?} after it (bound \
         {settle_bound:?}); no VIP holder for up to {:?}; longest write gap client 3 {:?}, \
         client 4 {:?}",
        resumed3.map_or("never".into(), |at| rel(at, cut3)),
        longest_gap_in(log3, cut3, heal3),
        error_kinds(log3, cut3, heal3),
        last4.map_or("none".into(), |at| rel(at, cut4)),
        ISOLATION + Duration::from_secs(2),
        error_kinds(log4, cut4, heal4),
        no_holder.1,
        longest_gap_in(log3, heal3, Duration::MAX),
        longest_gap_in(log4, heal4, Duration::MAX),
    );
    if resumed3.is_none() || acked3 < 100 {
        problems.push(format!(
            "client 3's writes did not go on on host 2 during the split: {acked3} acks; {}",
            log3.summary()
        ));
    }
    let stop_bound = ISOLATION + Duration::from_secs(2);
    if last4.is_some_and(|at| at.saturating_sub(cut4) > stop_bound) {
        problems.push(format!(
            "host 1, cut off from its replica and its witness, acknowledged client 4's writes \
             until {} of the cut (bound {stop_bound:?})",
            last4.map_or("-".into(), |at| rel(at, cut4))
        ));
    }
    if !error_kinds(log4, cut4 + stop_bound, heal4).contains_key("NOREPLICAS") {
        problems.push(format!(
            "client 4's writes were not refused with NOREPLICAS while host 1 was isolated: {:?}",
            error_kinds(log4, cut4, heal4)
        ));
    }

    // Accounting: the final master, then the datasets saved after the heal.
    let log_refs = [log3, log4];
    let on_master = account(&lab, master, pair.redis(master).addr(), &log_refs);
    let mut files: Vec<PathBuf> = Vec::new();
    for host in 1..=2 {
        let agent = pair.agent_log(host);
        let state = pair.state_log(host);
        let said = lines_after(&agent, heal_wall, &[SAVED_MESSAGE]);
        let events = lines_after(&state, heal_wall, &["event=saved"]);
        for line in said.iter().chain(&events) {
            eprintln!("{test}: host {host}: {line}");
        }
        for f in saved_files(&said.join("\n"))
            .into_iter()
            .chain(saved_files(&events.join("\n")))
        {
            if !files.contains(&f) {
                files.push(f);
            }
        }
    }
    let missing_total: usize = on_master.iter().map(|a| a.missing.len()).sum();
    if missing_total > 0 && files.is_empty() {
        problems.push(format!(
            "acknowledged writes are missing on the final master and no dataset was saved after \
             the heal: {:?}",
            on_master.iter().map(|a| a.summary()).collect::<Vec<_>>()
        ));
    }
    if acked4 > 0 && files.is_empty() {
        problems.push(format!(
            "host 1 acknowledged {acked4} writes during the split but no dataset was saved"
        ));
    }
    let mut lost_total = 0;
    for (a, log) in on_master.iter().zip(log_refs) {
        let mut left = a.missing.clone();
        for file in &files {
            if left.is_empty() {
                break;
            }
            let scratch = ScratchRedis::load_within(&lab, 4, SCRATCH_PORT, file, SCRATCH_LOAD)
                .unwrap_or_else(|e| {
                    panic!("the scratch Redis did not load {}: {e}", file.display())
                });
            let still = scratch.missing(&a.prefix, &left);
            eprintln!(
                "{test}: {} ({} keys) holds {} of client {}'s {} writes missing on the master",
                file.display(),
                scratch.dbsize().map_or("?".into(), |k| k.to_string()),
                left.len() - still.len(),
                a.client_host,
                left.len()
            );
            left = still;
        }
        let saved = a.missing.len() - left.len();
        let during = a.missing_between(log, since_start(log, cut), since_start(log, heal));
        eprintln!(
            "{test}: client {}: {} acknowledged, {} on the final master (host {master}), {saved} \
             only in a saved dataset ({} of the missing acknowledged during the split), {} lost \
             ({})",
            a.client_host,
            a.acked,
            a.acked - a.missing.len(),
            during.len(),
            left.len(),
            ranges(&left)
        );
        lost_total += left.len();
        if a.client_host == 3 {
            // Everything host 2 acknowledged after its promotion is on the master.
            let after = since_start(log, cut + promoted);
            let from_host2: Vec<u64> = a
                .missing
                .iter()
                .copied()
                .filter(|&n| log.acked_at(n).is_some_and(|at| at > after))
                .collect();
            if !from_host2.is_empty() {
                problems.push(format!(
                    "writes of client 3 acknowledged after host 2's promotion are missing on the \
                     final master: {}",
                    ranges(&from_host2)
                ));
            }
        }
    }
    if lost_total > 0 {
        problems.push(format!(
            "{lost_total} acknowledged writes are neither on the final master nor saved"
        ));
    }
    eprintln!(
        "{test}: cut at {}, healed at {}, lab dir {}",
        utc(cut_wall),
        utc(heal_wall),
        lab.dir().display()
    );
    if !problems.is_empty() {
        pair.fail(&problems.join("\n"));
    }
    pair.wait_replica_caught_up(master);
}

// ---------------------------------------------------------------------------
// 2. Empty restarts, whatever the sync mode

/// How often the replica's key count is read while the pair settles.
const DBSIZE_POLL: Duration = Duration::from_millis(10);

/// What [`watch_keys`] saw.
#[derive(Debug)]
struct KeyCounts {
    /// The lowest `DBSIZE` read (`u64::MAX`: none).
    min: u64,
    /// When, from the start given.
    min_at: Duration,
    /// Successful reads.
    samples: u32,
    /// The longest time between two successful reads.
    longest_between: Duration,
    /// Failed reads by kind (`-LOADING` would be a full sync into this Redis).
    errors: BTreeMap<String, usize>,
}

/// Reads `DBSIZE` of the Redis at `addr` from host `host` every [`DBSIZE_POLL`] on
/// one connection (a new one after an i/o error) until `stop` is set.
fn watch_keys(
    lab: &Lab,
    host: usize,
    addr: SocketAddrV4,
    since: Instant,
    stop: &AtomicBool,
) -> KeyCounts {
    let mut counts = KeyCounts {
        min: u64::MAX,
        min_at: Duration::ZERO,
        samples: 0,
        longest_between: Duration::ZERO,
        errors: BTreeMap::new(),
    };
    let mut conn: Option<Resp> = None;
    let mut last_read: Option<Instant> = None;
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let c = match conn.take() {
            Some(c) => Ok(c),
            None => lab_connect(lab, host, addr, Duration::from_millis(500)),
        };
        match c.and_then(|mut c| c.dbsize().map(|n| (n, c))) {
            Ok((n, c)) => {
                let now = Instant::now();
                if let Some(before) = last_read {
                    counts.longest_between = counts.longest_between.max(now - before);
                }
                last_read = Some(now);
                counts.samples += 1;
                if n < counts.min {
                    counts.min = n;
                    counts.min_at = now - since;
                }
                conn = Some(c);
            }
            Err(e) => {
                let kind = match &e {
                    netns_tests::redis::Error::Server(m) => {
                        m.split_whitespace().next().unwrap_or("").to_owned()
                    }
                    other => error_kind(&other.to_string()).to_owned(),
                };
                *counts.errors.entry(kind).or_default() += 1;
            }
        }
        next += DBSIZE_POLL;
        let now = Instant::now();
        if next > now {
            thread::sleep(next - now);
        } else {
            next = now;
        }
    }
    counts
}

/// The master's Redis restarted empty at once: its replica is never flushed (its key
/// count, read every 10 ms, never drops below the writes acknowledged before the
/// restart, and its Redis log shows no full sync flushing it), host 2 (which holds
/// the data) ends up master and the restarted Redis its replica, and no
/// acknowledged write is lost (writes the empty Redis took before its agent looked
/// are in the snapshot redha saved before resyncing it).
fn empty_restart(test: &'static str, tag: &str, opts: RedisOpts) {
    if !require(test) {
        return;
    }
    let lab = Lab::new(tag, 3);
    let mut pair = Pair::new(test, &lab, opts, Setup::default());
    pair.start_and_settle();
    let writer = pair.writers(&[3]).pop().expect("one writer");
    pair.check(writer.wait_acked(300, Duration::from_secs(10)), || {
        format!(
            "the client's writes stalled: {}",
            writer.snapshot().summary()
        )
    });
    pair.wait_replica_caught_up(1);
    let flushes_before = pair
        .redis(2)
        .proc()
        .log()
        .matches("Flushing old data")
        .count();

    let acked_before = writer.acked_count() as u64;
    let t0 = Instant::now();
    pair.redis[0].restart_empty();
    let restart_took = t0.elapsed();
    let restarted_at = since_start(&writer.snapshot(), t0);
    pair.note(&format!(
        "host 1's Redis restarted empty (answering after {restart_took:?}); {acked_before} writes \
         acknowledged before"
    ));

    // Host 2's key count every 10 ms, on a thread of its own, until the pair settles.
    let stop = AtomicBool::new(false);
    let bound = sync_bound() + pair.node(2).master_down_interval();
    let mut last = String::new();
    let addr2 = pair.redis(2).addr();
    let (settled, keys) = thread::scope(|s| {
        let watch = s.spawn(|| watch_keys(&lab, 2, addr2, t0, &stop));
        let settled = wait_until(bound, POLL, || {
            pair.sample();
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
        stop.store(true, Ordering::Relaxed);
        (settled, watch.join().expect("the key-count thread"))
    });
    let min_keys = keys.min;
    let flushes = pair
        .redis(2)
        .proc()
        .log()
        .matches("Flushing old data")
        .count()
        - flushes_before;
    pair.note(&format!(
        "host 2's Redis held at least {min_keys} keys (lowest at +{:.3}s of the restart; {} \
         reads, at most {:?} apart; errors {:?}); {flushes} `Flushing old data` in its log since \
         the restart",
        keys.min_at.as_secs_f64(),
        keys.samples,
        keys.longest_between,
        keys.errors
    ));
    if settled.is_none() {
        pair.fail(&format!(
            "the pair did not settle with host 2 (which held the data) as master within \
             {bound:?}; last: {last}"
        ));
    }
    pair.note(&format!(
        "settled with host 2 master after {:?}",
        t0.elapsed()
    ));
    pair.check(min_keys >= acked_before && flushes == 0 && keys.samples > 0, || {
        format!(
            "host 2's Redis was flushed: {acked_before} writes acknowledged before the restart, \
             it held {min_keys} keys at one point after; {flushes} `Flushing old data` in its log"
        )
    });
    pair.assert_stays_settled(2, Duration::from_secs(1));
    let log = writer.stop();
    let acked_by_empty: Vec<u64> = log
        .acked
        .iter()
        .filter(|&&(_, at)| at > restarted_at)
        .map(|&(n, _)| n)
        .collect();
    pair.note(&format!(
        "writer: {}; longest gap after the restart {:?}; {} acks after the restart",
        log.summary(),
        longest_gap_in(&log, restarted_at, Duration::MAX),
        acked_by_empty.len()
    ));
    // Writes the empty Redis acknowledged before its agent looked are not in the
    // final dataset; redha saved them before the resync, in a file.
    let missing: Vec<u64> = account(&lab, 3, pair.redis(2).addr(), &[&log])
        .into_iter()
        .flat_map(|a| a.missing)
        .collect();
    if missing.is_empty() {
        pair.assert_no_write_lost(2, &[&log]);
        return;
    }
    pair.check(missing.iter().all(|n| acked_by_empty.contains(n)), || {
        format!(
            "writes acknowledged before the empty restart are missing on host 2: {}",
            ranges(&missing)
        )
    });
    let mut left = missing.clone();
    for file in saved_files(&pair::agent_log(&pair.agents, 1)) {
        let scratch = ScratchRedis::load_within(&lab, 3, SCRATCH_PORT, &file, SCRATCH_LOAD)
            .unwrap_or_else(|e| panic!("the scratch Redis did not load {}: {e}", file.display()));
        left = scratch.missing(&log.prefix, &left);
    }
    pair.check(left.is_empty(), || {
        format!(
            "{} writes the restarted empty Redis acknowledged are neither on host 2 nor in a \
             snapshot redha saved: {}",
            left.len(),
            ranges(&left)
        )
    });
    eprintln!(
        "{}: the {} writes the restarted empty Redis took are in the snapshot redha saved",
        pair.test,
        missing.len()
    );
}

#[test]
fn empty_restart_with_disk_based_sync() {
    empty_restart(
        "empty_restart_with_disk_based_sync",
        "emptydsk",
        RedisOpts::default().disk_sync(),
    );
}

#[test]
fn empty_restart_with_diskless_sync_without_delay() {
    empty_restart(
        "empty_restart_with_diskless_sync_without_delay",
        "emptyd0",
        RedisOpts::default().diskless_sync_no_delay(),
    );
}

// ---------------------------------------------------------------------------
// 3. A failed fence

/// How long host 2 must hold back while its fence is refused.
const REFUSED_FOR: Duration = Duration::from_secs(5);

/// Both Redis have an ACL user allowed everything, and redha logs in as it. Once the
/// pair settled, `client|pause` is taken from that user on host 1's Redis and host
/// 1's redha is SIGKILLed (its Redis lives). Host 2 becomes VRRP master; its fence
/// of the old master is refused (NOPERM): it must say so and not promote, retrying
/// every second, for as long as the permission is missing. Once it is back, host 2
/// fences, promotes, and makes host 1's Redis its replica; nothing is lost.
#[test]
fn refused_fence_blocks_the_promotion() {
    let test = "refused_fence_blocks_the_promotion";
    if !require(test) {
        return;
    }
    let lab = Lab::new("nofence", 3);
    let user = AclUser::full("redha", "fence-pw");
    let setup = Setup {
        replication_extra: String::new(),
        user: Some(user.clone()),
    };
    let mut pair = Pair::new(test, &lab, RedisOpts::default().user(user.clone()), setup);
    pair.start_and_settle();
    let writer = pair.writers(&[3]).pop().expect("one writer");
    pair.wait_replica_caught_up(1);

    let set = |rule: &str| {
        let r = pair.redis(1).query(&["ACL", "SETUSER", &user.name, rule]);
        pair.check(r.as_ref().is_ok_and(Reply::is_ok), || {
            format!("ACL SETUSER {} {rule} on host 1's Redis: {r:?}", user.name)
        });
    };
    let dry_run = || {
        pair.redis(1).query(&[
            "ACL", "DRYRUN", &user.name, "CLIENT", "PAUSE", "100", "WRITE",
        ])
    };
    set("-client|pause");
    let refused = dry_run();
    pair.check(!refused.as_ref().is_ok_and(Reply::is_ok), || {
        format!(
            "CLIENT PAUSE still allowed to {} after the change: {refused:?}",
            user.name
        )
    });
    pair.note(&format!(
        "client|pause taken from {} on host 1's Redis (ACL DRYRUN: {})",
        user.name,
        refused
            .as_ref()
            .ok()
            .and_then(Reply::text)
            .unwrap_or_else(|| format!("{refused:?}"))
    ));
    let killed_wall = SystemTime::now();
    let killed = Instant::now();
    let killed_at = since_start(&writer.snapshot(), killed);
    pair.agent(1).kill();
    pair.note("host 1's redha SIGKILLed (its Redis lives)");

    // Host 2 takes the VIP and says that the fence was refused.
    let n2 = pair.node(2);
    let needle = "the old master's writes could not be paused";
    let bound = n2.master_down_interval() + CHECK_INTERVAL + MARGIN;
    let refused_after = pair.wait(
        &format!("host 2 holds the VIP and logs `{needle}`"),
        bound,
        || {
            lab.has_addr(2, VIP)
                && first_line_after(&pair.state_log(2), killed_wall, &[needle]).is_some()
        },
    );
    pair.note(&format!(
        "host 2 VIP master, fence refused, {refused_after:?} after the kill"
    ));
    // ... and does not promote while the permission is missing.
    let hold = Instant::now();
    while hold.elapsed() < REFUSED_FOR {
        pair.sample();
        let r2 = role(pair.redis(2));
        let r1 = role(pair.redis(1));
        pair.check(r2.starts_with("replica of") && r1 == "master", || {
            format!(
                "{:?} after the fence was refused: host 2's Redis is {r2}, host 1's {r1}",
                hold.elapsed()
            )
        });
        thread::sleep(POLL);
    }
    let agent2 = pair.agent_log(2);
    let state2 = pair.state_log(2);
    let pause_errors = lines_after(&state2, killed_wall, &["event=command", "CLIENT PAUSE"])
        .into_iter()
        .filter(|l| l.contains("NOPERM") || l.contains("rror"))
        .count();
    let rule_lines = lines_after(&state2, killed_wall, &[needle]);
    let log_says = first_line_after(&agent2, killed_wall, &[needle]);
    pair.note(&format!(
        "host 2 held back {REFUSED_FOR:?}: {pause_errors} refused pauses, {} state-log lines \
         naming the refusal; its status: {:?}",
        rule_lines.len(),
        status(&lab, 2)
    ));
    eprintln!(
        "{test}: host 2's log: {}\n{test}: host 2's state log: {}",
        log_says.unwrap_or("(nothing)"),
        rule_lines.first().unwrap_or(&"(nothing)")
    );
    pair.check(log_says.is_some(), || {
        format!("host 2's redha log does not say `{needle}`")
    });
    pair.check(
        lines_after(&state2, killed_wall, &["REPLICAOF NO ONE"]).is_empty(),
        || "host 2 promoted its Redis while the fence was refused".into(),
    );
    // A refused fence is asked again every second.
    let retries_bound = (REFUSED_FOR.as_secs() / FENCE_RETRY.as_secs() / 2) as usize;
    pair.check(pause_errors >= retries_bound, || {
        format!(
            "host 2 asked for the fence {pause_errors} times in {REFUSED_FOR:?} (refused), \
             expected a retry every {FENCE_RETRY:?}"
        )
    });

    // The permission back: host 2 fences, promotes, host 1's Redis follows it.
    set("+client|pause");
    let restored_wall = SystemTime::now();
    pair.note("client|pause given back");
    let settle_bound = FENCE_RETRY + CHECK_INTERVAL * 2 + DISKLESS_SYNC_DELAY + MARGIN * 2;
    let (_, settled) = pair.wait_settled(Some(2), settle_bound, || {});
    let state2 = pair.state_log(2);
    let fenced = first_line_after(&state2, restored_wall, &["event=command", "CLIENT PAUSE"]);
    let promoted = first_line_after(&state2, restored_wall, &["REPLICAOF NO ONE"]);
    pair.note(&format!(
        "settled with host 2 master {settled:?} after the permission came back ({:?} after the \
         kill)",
        killed.elapsed()
    ));
    eprintln!(
        "{test}: host 2 fenced: {}\n{test}: host 2 promoted: {}",
        fenced.unwrap_or("(nothing)"),
        promoted.unwrap_or("(nothing)")
    );
    pair.check(
        fenced.is_some_and(|l| !l.contains("NOPERM")) && promoted.is_some(),
        || "host 2's state log shows no confirmed fence before its promotion".into(),
    );
    pair.assert_stays_settled(2, Duration::from_secs(1));
    let log = writer.stop();
    pair.note(&format!(
        "writer: {}; longest gap after the kill {:?}; errors {:?}",
        log.summary(),
        longest_gap_in(&log, killed_at, Duration::MAX),
        error_kinds(&log, killed_at, Duration::MAX)
    ));
    pair.assert_no_write_lost(2, &[&log]);
}

// ---------------------------------------------------------------------------
// 4. Two VRRP masters while both Redis reach each other

/// How long the one-way multicast loss is watched.
const TWO_MASTERS_FOR: Duration = Duration::from_secs(15);
/// How often it is sampled.
const TWO_MASTERS_POLL: Duration = Duration::from_millis(50);

/// Runs `tc ARGS...` in host `i`: its output, or the error with stderr.
fn try_tc(lab: &Lab, i: usize, args: &[&str]) -> Result<String, String> {
    let out = lab.try_run(i, "tc", args);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.success() {
        true => Ok(text),
        false => Err(format!("tc {} in host {i}: {text}", args.join(" "))),
    }
}

/// Runs `tc ARGS...` in host `i`; panics unless it succeeds.
fn tc(lab: &Lab, i: usize, args: &[&str]) -> String {
    try_tc(lab, i, args).unwrap_or_else(|e| panic!("{e}"))
}

/// Makes host `i` drop every VRRP packet (IP protocol 112) from `src` as it comes
/// in on `eth0`, with iproute2 only: an ingress qdisc and a u32 filter `match ip
/// protocol 112 0xff match ip src <src>/32`. Its action is `drop` (act_gact); on a
/// kernel without act_gact it is `mirred egress redirect` to a veth that is never
/// up, which drops what it redirects. Returns which action was used.
fn drop_vrrp_from(lab: &Lab, i: usize, src: Ipv4Addr) -> &'static str {
    tc(lab, i, &["qdisc", "add", "dev", "eth0", "ingress"]);
    let src = format!("{src}/32");
    #[rustfmt::skip]
    let filter = [
        "filter", "add", "dev", "eth0", "parent", "ffff:", "protocol", "ip", "u32",
        "match", "ip", "protocol", "112", "0xff", "match", "ip", "src", src.as_str(),
    ];
    let with = |action: &[&str]| {
        let args: Vec<&str> = filter.iter().chain(action).copied().collect();
        try_tc(lab, i, &args)
    };
    match with(&["action", "drop"]) {
        Ok(_) => "drop",
        Err(e) if e.contains("action module") => {
            lab.ip(
                i,
                [
                    "link", "add", "rhdrop0", "type", "veth", "peer", "name", "rhdrop1",
                ],
            );
            with(&["action", "mirred", "egress", "redirect", "dev", "rhdrop0"])
                .unwrap_or_else(|e| panic!("{e}"));
            "mirred egress redirect to a veth that is down (no act_gact in this kernel)"
        }
        Err(e) => panic!("{e}"),
    }
}

/// One-way multicast loss: host 2 drops every VRRP packet (IP protocol 112) from
/// host 1 at its interface's ingress, while host 1 hears host 2 and both Redis reach
/// each other. Host 2 (priority 100) becomes VRRP master too; over 15 s there is
/// exactly one Redis master at all times after the first second, no role ping-pong,
/// and host 2 leaves the election (FAULT, `TWO VRRP MASTERS ... wins the
/// tie-break`), so that only host 1 holds the VIP; no acknowledged write is lost.
/// Without the filter the pair is settled as before; with `loser_rejoins`, host 2
/// How long redha keeps a node that yielded to another VRRP master out of the
/// election (`YIELD_HOLD` in crates/replication/src/planner.rs).
const YIELD_HOLD: Duration = Duration::from_secs(10);

/// must also be back in the election (BACKUP) once it hears host 1 again.
fn two_vrrp_masters(test: &'static str, tag: &str, loser_rejoins: bool) {
    if !require(test) {
        return;
    }
    let lab = Lab::new(tag, 3);
    let mut pair = Pair::new(test, &lab, RedisOpts::default(), Setup::default());
    pair.start_and_settle();
    let writer = pair.writers(&[3]).pop().expect("one writer");

    let how = drop_vrrp_from(&lab, 2, lab.addr(1));
    let cut = Instant::now();
    let cut_wall = SystemTime::now();
    let cut_at = since_start(&writer.snapshot(), cut);
    pair.note(&format!(
        "host 2 drops VRRP from host 1 (tc ingress u32 filter, action {how})"
    ));

    let n2 = pair.node(2);
    let mut roles: [Vec<(Duration, String)>; 2] = [Vec::new(), Vec::new()];
    let mut holders_seen: Vec<(Duration, Vec<usize>)> = Vec::new();
    let mut states2: Vec<(Duration, String)> = Vec::new();
    while cut.elapsed() < TWO_MASTERS_FOR {
        let at = cut.elapsed();
        pair.sample();
        for host in 1..=2 {
            let r = replication(pair.redis(host))
                .ok()
                .and_then(|m| m.get("role").cloned())
                .unwrap_or_else(|| "unreachable".into());
            let seen = &mut roles[host - 1];
            if seen.last().is_none_or(|(_, last)| *last != r) {
                seen.push((at, r));
            }
        }
        let masters = roles
            .iter()
            .filter(|r| r.last().is_some_and(|(_, r)| r == "master"))
            .count();
        if at > Duration::from_secs(1) && masters != 1 {
            pair.fail(&format!(
                "{masters} Redis masters {at:?} after the filter: host 1 {:?}, host 2 {:?}",
                roles[0], roles[1]
            ));
        }
        let holders = lab.holders(VIP);
        if holders_seen.last().is_none_or(|(_, h)| *h != holders) {
            holders_seen.push((at, holders));
        }
        let state = status(&lab, 2).0.unwrap_or_else(|| "?".into());
        if states2.last().is_none_or(|(_, s)| *s != state) {
            pair.timeline.borrow_mut().set("host 2 VRRP", &state);
            states2.push((at, state));
        }
        thread::sleep(TWO_MASTERS_POLL);
    }
    let changes: usize = roles.iter().map(|r| r.len().saturating_sub(1)).sum();
    let agent2 = pair.agent_log(2);
    let state2 = pair.state_log(2);
    let became_master = first_line_after(&agent2, cut_wall, &["to=MASTER"]);
    let yielded = first_line_after(
        &agent2,
        cut_wall,
        &["TWO VRRP MASTERS", "wins the tie-break"],
    );
    let yielded_state = first_line_after(&state2, cut_wall, &["TWO VRRP MASTERS"]);
    let fault = first_line_after(&state2, cut_wall, &["event=transition", "to=FAULT"]);
    eprintln!(
        "{test}: over {TWO_MASTERS_FOR:?}: Redis roles host 1 {:?}, host 2 {:?} ({changes} \
         changes); VIP holders {holders_seen:?}; host 2's VRRP state {states2:?}\n\
         {test}: host 2 VRRP master: {}\n{test}: host 2 yields: {}\n{test}: host 2 FAULT: {}",
        roles[0],
        roles[1],
        became_master.unwrap_or("(never)"),
        yielded.or(yielded_state).unwrap_or("(never)"),
        fault.unwrap_or("(never)"),
    );
    pair.check(changes <= 1, || {
        format!(
            "Redis role ping-pong: {changes} changes (host 1 {:?}, host 2 {:?})",
            roles[0], roles[1]
        )
    });
    pair.check(
        became_master.is_some() || holders_seen.iter().any(|(_, h)| h.contains(&2)),
        || "host 2 never became VRRP master: the filter did not cut host 1's adverts".into(),
    );
    pair.check(yielded.is_some() || yielded_state.is_some(), || {
        "host 2 never logged `TWO VRRP MASTERS ... wins the tie-break`".into()
    });
    // Host 2 out of the election, only host 1 holds the VIP, well before the end:
    // Master_Down_Interval, then both masteries must last the agent's yield_after
    // (2 x advert_int + 0.5 s) before the loser yields, at its next look (one
    // check_interval at most).
    let yield_after = n2.advert_int * 2 + Duration::from_millis(500);
    let fault_bound = n2.master_down_interval() + yield_after + CHECK_INTERVAL + MARGIN;
    let out_at = states2
        .iter()
        .rev()
        .take_while(|(_, s)| s == "FAULT")
        .last()
        .map(|(at, _)| *at);
    let sole_at = holders_seen
        .last()
        .filter(|(_, h)| *h == [1])
        .map(|(at, _)| *at);
    pair.check(
        out_at.is_some_and(|at| at <= fault_bound)
            && sole_at.is_some_and(|at| at <= fault_bound + MARGIN),
        || {
            format!(
                "host 2 should be in FAULT and host 1 the only VIP holder within {fault_bound:?} \
                 of the filter, to the end: FAULT from {out_at:?}, sole holder from {sole_at:?}"
            )
        },
    );

    // The filter removed: the pair is settled with host 1 master, and host 2 back
    // in the election once it hears host 1 again.
    let stats = tc(&lab, 2, &["-s", "filter", "show", "dev", "eth0", "ingress"]);
    eprintln!("{test}: host 2's ingress filter:\n{stats}");
    tc(&lab, 2, &["qdisc", "del", "dev", "eth0", "ingress"]);
    let removed = Instant::now();
    pair.note("filter removed");
    let (_, settled) = pair.wait_settled(Some(1), CHECK_INTERVAL * 2 + MARGIN, || {});
    // A node that yielded stays out for redha's yield hold (10 s) before it tries
    // the election again; then it hears the master and stays backup.
    let rejoin_bound =
        YIELD_HOLD + CHECK_INTERVAL * (RISE + 1) + n2.master_down_interval() + MARGIN;
    let backup = match loser_rejoins {
        true => wait_until(rejoin_bound, POLL, || {
            status(&lab, 2).0.as_deref() == Some("BACKUP")
        }),
        false => None,
    };
    pair.note(&format!(
        "after the filter: settled {settled:?}; host 2 {} ({:?})",
        backup.map_or("not BACKUP".into(), |d| format!("BACKUP after {d:?}")),
        status(&lab, 2)
    ));
    pair.assert_stays_settled(1, Duration::from_secs(2));
    let log = writer.stop();
    pair.note(&format!(
        "writer: {}; longest gap after the filter {:?}; errors {:?}",
        log.summary(),
        longest_gap_in(&log, cut_at, Duration::MAX),
        error_kinds(&log, cut_at, Duration::MAX)
    ));
    pair.assert_no_write_lost(1, &[&log]);
    pair.check(!loser_rejoins || backup.is_some(), || {
        format!(
            "host 2 did not return to BACKUP within {rejoin_bound:?} of the filter's removal \
             ({:?} ago): {:?}",
            removed.elapsed(),
            status(&lab, 2)
        )
    });
}

#[test]
fn two_vrrp_masters_while_both_redis_reach_each_other() {
    two_vrrp_masters(
        "two_vrrp_masters_while_both_redis_reach_each_other",
        "twomast",
        false,
    );
}

/// The same, and once the multicast loss is over host 2 is back in the election.
#[test]
fn two_vrrp_masters_then_the_loser_rejoins_the_election() {
    two_vrrp_masters(
        "two_vrrp_masters_then_the_loser_rejoins_the_election",
        "twomastr",
        true,
    );
}
