//! The Redis pair of the `redis_*` scenarios: hosts 1 and 2 run `redis-server`
//! and redha (host 1 priority 150, host 2 priority 100, each replicating with
//! the other, a state log and a `state_dir` each); the other hosts are clients
//! writing through the [`VIP`].
//!
//! This module holds what those scenarios share: redha's default check timings
//! and the bounds derived from them, the node configuration, readers of each
//! Redis's role and replication state, the "settled pair" check (exactly one
//! VIP holder, its Redis a master, the other Redis its replica with the link
//! up) and waits built on it, and the diagnostics printed when a test fails.
//!
//! The functions that look at both Redis take them as a slice indexed
//! `host - 1` (host 1 first, then host 2), as the scenarios keep them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use crate::redha::{MARGIN, Node, RedisSettings, VIP};
use crate::redis::{RedisNode, RedisOpts, require_redis};
use crate::{Lab, Proc, require_netns, wait_until};

/// redha's default `[redis] check_interval` (config/reference.toml).
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// redha's default `[redis] rise`.
pub const RISE: u32 = 2;
/// redha's default `[redis] fall`.
pub const FALL: u32 = 2;
/// The health monitor's recheck after a lost or refused connection.
pub const FAST_RECHECK: Duration = Duration::from_millis(100);
/// `[replication] catch_up_timeout` default.
pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(10);
/// Redis 7's `repl-diskless-sync-delay` default.
pub const DISKLESS_SYNC_DELAY: Duration = Duration::from_secs(5);

/// Both network namespaces and `redis-server` are usable for `test` (see
/// [`require_netns`] and [`require_redis`]).
pub fn require(test: &str) -> bool {
    require_netns(test) && require_redis(test)
}

/// The VIP's Redis port, where the clients write.
pub fn vip_addr() -> SocketAddrV4 {
    SocketAddrV4::new(VIP.parse().expect("VIP"), 6379)
}

/// The other Redis host of the pair.
pub fn other(host: usize) -> usize {
    3 - host
}

/// `<lab dir>/state-h<host>.log`, the state log of `host`'s redha.
pub fn state_log_path(lab: &Lab, host: usize) -> PathBuf {
    lab.dir().join(format!("state-h{host}.log"))
}

/// The state log of `host` so far (empty if not written yet).
pub fn state_log(lab: &Lab, host: usize) -> String {
    std::fs::read_to_string(state_log_path(lab, host)).unwrap_or_default()
}

/// The node of `host`: host 1 priority 150, host 2 priority 100, `preempt` as
/// given, replicating with the other host's Redis, with its state log at
/// [`state_log_path`].
pub fn node(lab: &Lab, host: usize, preempt: bool) -> Node {
    let priority = if host == 1 { 150 } else { 100 };
    Node {
        preempt,
        redis: Some(RedisSettings::pair(
            lab.addr(other(host)),
            state_log_path(lab, host),
        )),
        ..Node::with_priority(priority)
    }
}

/// The health check the README pairs with 100 ms adverts: every 100 ms, a 100 ms
/// timeout, down after 2 failed checks (a dropped connection counts at once).
pub const FAST_CHECK: &str = "check_interval = \"100ms\"\ncheck_timeout = \"100ms\"\nfall = 2\n";

/// `node` with VRRPv3 at 100 ms adverts and, with `[redis]`, [`FAST_CHECK`].
pub fn at_100ms(mut node: Node) -> Node {
    node.version = 3;
    node.advert_int = Duration::from_millis(100);
    if let Some(r) = node.redis.as_mut() {
        r.redis_extra.push_str(FAST_CHECK);
    }
    node
}

/// Starts `redis-server` on hosts 1 and 2 with `opts`; the result is indexed
/// `host - 1`.
pub fn start_redis(lab: &Lab, opts: RedisOpts) -> Vec<RedisNode<'_>> {
    vec![
        RedisNode::start(lab, 1, opts.clone()),
        RedisNode::start(lab, 2, opts),
    ]
}

/// The latest redha in `agents` (host and process, in the order started)
/// that runs on `host`. Panics if none does.
pub fn latest_agent(agents: &[(usize, Proc)], host: usize) -> &Proc {
    agents
        .iter()
        .rev()
        .find(|(h, _)| *h == host)
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("no redha on host {host}"))
}

/// The logs of every redha in `agents` that ran on `host`, in order, joined.
pub fn agent_log(agents: &[(usize, Proc)], host: usize) -> String {
    agents
        .iter()
        .filter(|(h, _)| *h == host)
        .map(|(_, p)| p.log())
        .collect()
}

/// How long a node needs from start to its first VIP: `rise` healthy checks,
/// then Master_Down_Interval as a backup hearing no master.
pub fn election_bound(node: &Node) -> Duration {
    CHECK_INTERVAL * RISE + node.master_down_interval() + MARGIN
}

/// How long a pair needs to settle once the roles are decided: the new
/// replica's node sees its Redis healthy (`rise`), its planner decides (one
/// check), the master waits the diskless-sync delay before the full sync, and
/// a catch-up may run first on the other side.
pub fn sync_bound() -> Duration {
    CHECK_INTERVAL * (RISE + 1) + DISKLESS_SYNC_DELAY + MARGIN * 4
}

/// A section of `INFO` of a Redis, or why it could not be read.
pub fn info(redis: &RedisNode<'_>, section: &str) -> Result<BTreeMap<String, String>, String> {
    redis
        .client()
        .and_then(|mut c| c.info_map(section))
        .map_err(|e| e.to_string())
}

/// `INFO replication` of a Redis, or why it could not be read.
pub fn replication(redis: &RedisNode<'_>) -> Result<BTreeMap<String, String>, String> {
    info(redis, "replication")
}

/// `DBSIZE` of a Redis, if it answers.
pub fn dbsize(redis: &RedisNode<'_>) -> Option<u64> {
    redis.client().and_then(|mut c| c.dbsize()).ok()
}

/// A Redis's role in a few words: `master`, `replica of 192.0.2.11 link up`,
/// `unreachable (...)`.
pub fn role(redis: &RedisNode<'_>) -> String {
    match replication(redis) {
        Ok(m) => {
            let get = |k: &str| m.get(k).map_or("-", String::as_str);
            match get("role") {
                "slave" => format!(
                    "replica of {} link {}",
                    get("master_host"),
                    get("master_link_status")
                ),
                r => r.to_owned(),
            }
        }
        Err(e) => format!("unreachable ({e})"),
    }
}

/// `role`, master, link, ids, offsets and keys of a Redis in one line.
pub fn describe(redis: &RedisNode<'_>) -> String {
    match replication(redis) {
        Ok(m) => {
            let get = |k: &str| m.get(k).map_or("-", String::as_str).to_owned();
            format!(
                "role={} master_host={} link={} offset={} replid={} replid2={} second_offset={} keys={:?}",
                get("role"),
                get("master_host"),
                get("master_link_status"),
                get("master_repl_offset"),
                get("master_replid"),
                get("master_replid2"),
                get("second_repl_offset"),
                dbsize(redis)
            )
        }
        Err(e) => format!("unreachable: {e}"),
    }
}

/// Each Redis [described](describe) in a line of its own, then the VIP's
/// holders.
pub fn redis_state(lab: &Lab, redis: &[RedisNode<'_>]) -> String {
    let mut out = String::new();
    for r in redis {
        let _ = writeln!(out, "  redis host {}: {}", r.host(), describe(r));
    }
    let _ = writeln!(out, "  VIP holders: {:?}", lab.holders(VIP));
    out
}

/// For a failure report: the log of every redha in `agents` (host and
/// process, in the order started; DEBUG lines left out), then the state logs
/// of hosts 1 and 2.
pub fn agent_logs(lab: &Lab, agents: &[(usize, Proc)]) -> String {
    let mut out = String::new();
    for (host, proc) in agents {
        let log = proc.log();
        let lines: Vec<&str> = log.lines().filter(|l| !l.contains(" DEBUG ")).collect();
        let _ = writeln!(
            out,
            "--- redha on host {host} (pid {}, {} lines without DEBUG; full log {}):\n{}",
            proc.pid(),
            lines.len(),
            proc.log_path().display(),
            lines.join("\n")
        );
    }
    for host in 1..=2 {
        let _ = writeln!(
            out,
            "--- state log of host {host}:\n{}",
            state_log(lab, host)
        );
    }
    out
}

/// Is the pair settled: exactly one VIP holder, host 1 or 2, its Redis a
/// master, the other Redis its replica (`master_host` the holder's address)
/// with the link up? Returns the master host, or what is missing.
pub fn settled(lab: &Lab, redis: &[RedisNode<'_>]) -> Result<usize, String> {
    let holders = lab.holders(VIP);
    let &[master] = holders.as_slice() else {
        return Err(format!("VIP holders {holders:?}"));
    };
    if master > 2 {
        return Err(format!("client host {master} holds the VIP"));
    }
    let m = replication(&redis[master - 1])?;
    if m.get("role").map(String::as_str) != Some("master") {
        return Err(format!(
            "host {master} holds the VIP but its Redis is {:?}",
            m.get("role")
        ));
    }
    let replica = other(master);
    let r = replication(&redis[replica - 1])?;
    let want_host = lab.addr(master).to_string();
    if r.get("role").map(String::as_str) != Some("slave")
        || r.get("master_host") != Some(&want_host)
    {
        return Err(format!(
            "host {replica}'s Redis is role {:?} master_host {:?}, not a replica of host {master}",
            r.get("role"),
            r.get("master_host")
        ));
    }
    if r.get("master_link_status").map(String::as_str) != Some("up") {
        return Err(format!(
            "host {replica}'s Redis follows host {master}, link {:?}",
            r.get("master_link_status")
        ));
    }
    Ok(master)
}

/// Polls every `poll`, up to `within`, until the pair is [`settled`] with
/// `master` (if given) as master, calling `each` before every look. Returns
/// the master and how long it took, or the last thing missing.
pub fn wait_settled(
    lab: &Lab,
    redis: &[RedisNode<'_>],
    master: Option<usize>,
    within: Duration,
    poll: Duration,
    mut each: impl FnMut(),
) -> Result<(usize, Duration), String> {
    let mut last = String::new();
    let mut found = 0;
    let took = wait_until(within, poll, || {
        each();
        match settled(lab, redis) {
            Ok(m) if master.is_none_or(|want| want == m) => {
                found = m;
                true
            }
            Ok(m) => {
                last = format!(
                    "settled with host {m} as master, not host {}",
                    master.unwrap_or_default()
                );
                false
            }
            Err(e) => {
                last = e;
                false
            }
        }
    });
    took.map(|d| (found, d)).ok_or(last)
}

/// Checks every `interval` for `period` that the pair stays [`settled`] with
/// `master`, calling `each` before every look; the first time it does not,
/// says how.
pub fn stays_settled(
    lab: &Lab,
    redis: &[RedisNode<'_>],
    master: usize,
    period: Duration,
    interval: Duration,
    mut each: impl FnMut(),
) -> Result<(), String> {
    let end = Instant::now() + period;
    while Instant::now() < end {
        each();
        match settled(lab, redis) {
            Ok(m) if m == master => {}
            Ok(m) => return Err(format!("the master moved to host {m}")),
            Err(e) => return Err(format!("the settled pair came apart: {e}")),
        }
        thread::sleep(interval);
    }
    Ok(())
}
