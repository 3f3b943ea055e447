//! The invariants the soak checks after each fault has been healed:
//!
//! 1. the pair settles within a bound derived from the protocol (below): exactly
//!    one VIP holder, its Redis a master, the other Redis its replica with the
//!    link up, the holder's agent in MASTER and the other's in BACKUP, and it
//!    stays so for [`STABLE`];
//! 2. the replica catches up with the master;
//! 3. every write the client saw acknowledged is on the master, except the
//!    asynchronous-replication tail of a Redis SIGKILLed while it was master
//!    (acknowledged within [`TAIL`] before the kill), counted apart;
//! 4. both agents run (none exited unless the schedule killed it, and that one
//!    was started again), no agent log says `panicked`, and each agent's
//!    resident memory stays under [`RSS_LIMIT_KB`].

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use super::cluster::Cluster;
use super::schedule::Kind;
use crate::pair::{self, CATCH_UP_TIMEOUT, CHECK_INTERVAL, FALL, RISE, sync_bound};
use crate::redha::{self, MARGIN};
use crate::redha_bin;
use crate::writer::{WriteLog, missing_keys};

/// How long the pair must stay settled, with the same master, to count as
/// recovered: two advert intervals, so that a pair about to fall apart again
/// (a late advert, a late plan) is not taken for settled.
pub const STABLE: Duration = Duration::from_secs(2);

/// Polling period of the checks.
pub const POLL: Duration = Duration::from_millis(100);

/// The asynchronous-replication tail: writes a master acknowledged at most this
/// long before its Redis was SIGKILLed may be missing on its replica. Redis
/// replicates asynchronously: it queues a write for its replica in the same
/// event-loop turn as its reply to the client, but nothing waits for the replica
/// to have it, and the replica reports its offset (`REPLCONF ACK`) once a second,
/// so one second is the most Redis itself can tell a replica may lag. The soak
/// kills a master's Redis only while the pair is settled and nothing else is
/// faulty (link up, no loss, no delay), so the real tail is a few milliseconds
/// of writes; anything missing from further back is a violation.
pub const TAIL: Duration = Duration::from_secs(1);

/// Resident memory an agent may reach (`VmRSS`). A redha agent runs at a few
/// MiB; this is the bound of "memory bounded", with room for a debug build.
pub const RSS_LIMIT_KB: u64 = 64 * 1024;

/// How long the replica may take to reach the master's offset once settled.
pub const CAUGHT_UP: Duration = Duration::from_secs(5);

/// How long two hosts may hold the VIP at once (outside a fault that cuts the
/// pair apart): two routers that both claim it hear each other's adverts within
/// an advert interval and the loser yields at once; a stopped agent's address
/// outlives its adverts by its lease at most. Master_Down_Interval and the lease,
/// whichever is longer, plus [`MARGIN`].
pub fn several_holders_bound(c: &Cluster<'_>) -> Duration {
    let lease = c.node(1).address_lease().max(c.node(2).address_lease());
    c.master_down_interval().max(lease) + MARGIN
}

/// How long after its heal a fault of `kind` may take to leave the pair settled
/// (then [`STABLE`] more), from protocol math plus [`MARGIN`]s:
///
/// - a Redis killed or stopped: its node fails `fall` checks (at most
///   `check_interval` each) and says priority 0; the peer takes over within
///   Master_Down_Interval at most (Skew_Time after a priority-0 advert), may
///   catch up from a peer first (`catch_up_timeout`), and the Redis back (or
///   resumed) joins as replica ([`sync_bound`]: `rise` checks, a plan, the
///   diskless-sync delay before the full sync);
/// - an agent stopped: when it resumes it hears the peer within one advert
///   interval; its VIP's lease may still run (the address lease); then the same
///   catch-up and sync;
/// - an agent killed or stopped by SIGTERM and started again: its election
///   ([`pair::election_bound`]: `rise` checks and Master_Down_Interval), then a
///   catch-up and a sync;
/// - a partition, loss, delay or link down healed: the two masters (or a
///   flapping pair) meet again within Master_Down_Interval; a catch-up and a
///   sync; after link down the node also waits `rise` checks;
/// - the VIP deleted: the master adds it again at its next advert;
/// - a reload: applied within an advert interval.
pub fn recovery_bound(kind: Kind, c: &Cluster<'_>) -> Duration {
    let mdi = c.master_down_interval();
    let advert = c.node(1).advert_int.max(c.node(2).advert_int);
    let settle = CATCH_UP_TIMEOUT + sync_bound();
    match kind {
        Kind::RedisKillEmpty | Kind::RedisKillFiles | Kind::RedisStop => {
            CHECK_INTERVAL * FALL + mdi + settle + MARGIN
        }
        Kind::AgentStop => advert + c.address_lease() + mdi + settle + MARGIN,
        Kind::AgentKill | Kind::AgentTerm => pair::election_bound(c.node(2)) + settle + MARGIN,
        Kind::Partition | Kind::Loss | Kind::Delay => mdi + settle + MARGIN,
        Kind::LinkDown => CHECK_INTERVAL * RISE + mdi + settle + MARGIN,
        Kind::VipDelete | Kind::Reload => advert + MARGIN,
    }
}

/// Waits until the pair is [settled](pair::settled) and stays so, with the same
/// master, for [`STABLE`]; `sample` is called before every look. Gives the master
/// and how long it took until the stable period began, or what was last missing
/// when `within` ran out.
pub fn wait_recovered(
    c: &Cluster<'_>,
    within: Duration,
    mut sample: impl FnMut(),
) -> Result<(usize, Duration), String> {
    let start = Instant::now();
    let mut since: Option<(usize, Instant)> = None;
    let mut last = String::from("never looked");
    loop {
        sample();
        match pair::settled(c.lab, &c.redis).and_then(|m| agents_agree(c, m)) {
            Ok(m) => match since {
                Some((m0, t)) if m0 == m => {
                    if t.elapsed() >= STABLE {
                        return Ok((m, t - start));
                    }
                }
                Some((m0, _)) => {
                    last = format!("settled with host {m0}, then host {m} as master");
                    since = Some((m, Instant::now()));
                }
                None => since = Some((m, Instant::now())),
            },
            Err(e) => {
                if let Some((m0, t)) = since {
                    last = format!("settled with host {m0} for {:?}, then: {e}", t.elapsed());
                } else {
                    last = e;
                }
                since = None;
            }
        }
        if start.elapsed() >= within + STABLE {
            return Err(format!(
                "the pair did not settle within {within:?} (+{STABLE:?} stable); last: {last}"
            ));
        }
        thread::sleep(POLL);
    }
}

/// The VRRP state `redha status` reports for `host`'s agent (`MASTER`, ...).
pub fn agent_state(c: &Cluster<'_>, host: usize) -> Option<String> {
    let out = Command::new(redha_bin())
        .arg("status")
        .arg("--socket")
        .arg(redha::control_socket(c.lab, host))
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("state "))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_owned)
}

/// The agents agree with a pair settled with `master`: its agent says MASTER,
/// the other's BACKUP. Gives `master` back.
fn agents_agree(c: &Cluster<'_>, master: usize) -> Result<usize, String> {
    for (host, want) in [(master, "MASTER"), (Cluster::other(master), "BACKUP")] {
        let state = agent_state(c, host);
        if state.as_deref() != Some(want) {
            return Err(format!(
                "the pair is settled with host {master} as master, but host {host}'s agent \
                 says {state:?}"
            ));
        }
    }
    Ok(master)
}

/// Waits until the replica's offset has reached the master's as it is now.
pub fn caught_up(c: &Cluster<'_>, master: usize) -> Result<(), String> {
    let offset = |host: usize| -> Option<i64> { c.redis(host).client().ok()?.offset().ok() };
    let Some(target) = offset(master) else {
        return Err(format!(
            "the master's Redis (host {master}) gives no offset"
        ));
    };
    let replica = Cluster::other(master);
    let mut last = None;
    let ok = crate::wait_until(CAUGHT_UP, Duration::from_millis(20), || {
        last = offset(replica);
        last.is_some_and(|o| o >= target)
    });
    match ok {
        Some(_) => Ok(()),
        None => Err(format!(
            "the replica (host {replica}) did not reach the master's offset {target} within \
             {CAUGHT_UP:?} (last {last:?})"
        )),
    }
}

/// Acknowledged writes found missing on the master by one [`audit`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Missing {
    /// In the asynchronous tail of a master's Redis SIGKILLed by this fault.
    pub tail: Vec<u64>,
    /// Anything else: violations.
    pub lost: Vec<u64>,
}

/// Splits `missing` (acknowledged sequence numbers absent from the master) into
/// the tail of the kill at `master_kill` (from the writer's start: those
/// acknowledged within [`TAIL`] before it) and the rest.
pub fn classify(log: &WriteLog, missing: &[u64], master_kill: Option<Duration>) -> Missing {
    let mut m = Missing::default();
    for &n in missing {
        let at = log.acked_at(n);
        let in_tail = matches!((at, master_kill), (Some(at), Some(k)) if at <= k && at + TAIL >= k);
        if in_tail {
            m.tail.push(n);
        } else {
            m.lost.push(n);
        }
    }
    m
}

/// Checks every write of `log` acknowledged so far, except those in `gone`
/// (found missing before, already counted), on the Redis of `master`, read from
/// the client host `client`.
pub fn audit(
    c: &Cluster<'_>,
    client: usize,
    master: usize,
    log: &WriteLog,
    gone: &BTreeSet<u64>,
    master_kill: Option<Duration>,
) -> Missing {
    let acked: Vec<u64> = log
        .acked_keys()
        .into_iter()
        .filter(|n| !gone.contains(n))
        .collect();
    let missing = missing_keys(c.lab, client, c.redis(master).addr(), &acked);
    classify(log, &missing, master_kill)
}

/// `VmRSS` of a process, in kB.
pub fn rss_kb(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Watches the agents: alive, no panic in their logs, memory.
#[derive(Debug, Default)]
pub struct AgentWatch {
    /// How far each host's agent log (`redha-h<host>.log`, shared by the agents
    /// started there) has been read.
    read: [u64; 2],
    /// The largest `VmRSS` seen per host, kB.
    pub max_rss_kb: [u64; 2],
}

impl AgentWatch {
    /// Looks at both agents now; returns the violations found.
    pub fn check(&mut self, c: &Cluster<'_>) -> Vec<String> {
        let mut problems = Vec::new();
        for host in 1..=2 {
            let agent = c.agent(host);
            if !agent.is_running() {
                let status = agent.wait_exit(Duration::ZERO);
                let log = agent.log();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                problems.push(format!(
                    "host {host}'s agent (pid {}) exited by itself: {status:?}; its last lines:\n{}",
                    agent.pid(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            } else if let Some(kb) = rss_kb(agent.pid()) {
                let max = &mut self.max_rss_kb[host - 1];
                *max = (*max).max(kb);
                if kb > RSS_LIMIT_KB {
                    problems.push(format!(
                        "host {host}'s agent (pid {}) has {kb} kB resident, over {RSS_LIMIT_KB} kB",
                        agent.pid()
                    ));
                }
            }
            let path = c.lab.dir().join(format!("redha-h{host}.log"));
            let new = read_from(&path, &mut self.read[host - 1]);
            for line in new.lines().filter(|l| l.contains("panicked")) {
                problems.push(format!("host {host}'s agent log: {line}"));
            }
        }
        problems
    }
}

/// What `path` holds past `*pos` (whole lines only); advances `*pos`.
fn read_from(path: &std::path::Path, pos: &mut u64) -> String {
    let Ok(mut f) = fs::File::open(path) else {
        return String::new();
    };
    if f.seek(SeekFrom::Start(*pos)).is_err() {
        return String::new();
    }
    let mut buf = Vec::new();
    if f.read_to_end(&mut buf).is_err() {
        return String::new();
    }
    let end = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    buf.truncate(end);
    *pos += end as u64;
    String::from_utf8_lossy(&buf).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(acked: &[(u64, u64)]) -> WriteLog {
        WriteLog {
            acked: acked
                .iter()
                .map(|&(n, ms)| (n, Duration::from_millis(ms)))
                .collect(),
            attempts: acked.last().map_or(0, |a| a.0),
            ..WriteLog::new("k:", 3)
        }
    }

    #[test]
    fn only_the_last_second_before_a_master_kill_is_excused() {
        let l = log(&[(1, 100), (2, 4000), (3, 4990), (4, 5000), (5, 5200)]);
        let kill = Some(Duration::from_millis(5000));
        let m = classify(&l, &[1, 2, 3, 4, 5], kill);
        assert_eq!(m.tail, [2, 3, 4]);
        assert_eq!(m.lost, [1, 5]);
        let none = classify(&l, &[3], None);
        assert_eq!(none.lost, [3]);
        assert!(none.tail.is_empty());
    }

    #[test]
    fn logs_are_read_in_whole_lines() {
        let dir = std::env::temp_dir().join(format!("soak-read-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.log");
        fs::write(&path, "one\ntwo\nthr").unwrap();
        let mut pos = 0;
        assert_eq!(read_from(&path, &mut pos), "one\ntwo\n");
        assert_eq!(read_from(&path, &mut pos), "");
        fs::write(&path, "one\ntwo\nthree\n").unwrap();
        assert_eq!(read_from(&path, &mut pos), "three\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rss_of_this_process() {
        let kb = rss_kb(std::process::id()).expect("VmRSS of ourselves");
        assert!(kb > 0);
    }
}
