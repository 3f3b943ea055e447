//! Benchmark: what a client writing to a Redis pair sees during the classic failures,
//! for redha, for keepalived 2.2 with the classic notify scripts of DESIGN.md, and for
//! Redis Sentinel, all in one run, in network namespaces.
//!
//! Scenarios (each in a fresh lab: Redis on hosts 1 and 2, the client on host 3 writing
//! a sequential key every 10 ms). Without persistence: 1. Redis SIGKILLed on the master
//! and restarted empty 5 s later; 2. the agent killed on the master; 3. a planned
//! switchover; 4. the master's Redis restarted empty at once; 5. a 10 s partition of the
//! master's host. The conditions users run (issue 7): a. the master's Redis SIGKILLed
//! and, once the peer took over, restarted from its own files (Redis 7's default RDB
//! snapshots); b. a silent partition (the master's switch port leaves the bridge,
//! carrier kept) healed after 10 s, RDB snapshots on; c. both hosts power-cycled with
//! AOF `appendfsync always`; d. a 12 s split with a client on each side (hosts 1 + 4 vs
//! 2 + 3; redha with `isolation_timeout = "2s"` and a witness on host 3); e1/e2. the
//! master's Redis restarted empty at once with `repl-diskless-sync no`, and with `yes`
//! and delay 0.
//! Metrics: the longest gap between acknowledged writes, acknowledged writes missing on
//! the final master (per client in d), how many of those are in a dataset redha saved
//! before resyncing it, how long both hosts held the VIP, the time to a settled pair
//! and, in d, how long the isolated side went on acknowledging writes.
//!
//! Run as root: `target/release/bench_redis [--scenarios 1,2,a,b,c,d,e] [--runs N]
//! [--advert-int N] [--only redha|redha-v3|keepalived|sentinel] [--cap SECONDS]`. The Markdown
//! table goes to stdout (and, after each complete run, the table so far to stderr),
//! progress to stderr.

use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, sleep};
use std::time::{Duration, Instant};

use netns_tests::measure::{self, Flags, HIGH, LOW, Table, spread};
use netns_tests::redha::{self, Node, RedisSettings, VIP};
use netns_tests::redis::{
    REDIS_PORT, REDIS_SERVER, RedisNode, RedisOpts, Reply, Resp, lab_connect, require_redis,
};
use netns_tests::sentinel::{self, SentinelSettings};
use netns_tests::writer::{CHECK_BATCH, DEFAULT_PREFIX, WriteLog, Writer, client_prefix};
use netns_tests::{Lab, Proc, keepalived, require_netns};
use netns_tests::{classic, pair};

/// The client writes one key this often.
const WRITE_INTERVAL: Duration = Duration::from_millis(10);
/// Steady writes before the fault.
const STEADY: Duration = Duration::from_secs(3);
/// Scenario a: the snapshot the master restarts from is taken this long into the
/// steady writes (so that it is older than the data).
const SNAPSHOT_AFTER: Duration = Duration::from_secs(1);
/// How often the VIP holders are polled.
const HOLDER_POLL: Duration = Duration::from_millis(50);
/// How often the Redis roles and the sentinels' views are polled.
const STATUS_POLL: Duration = Duration::from_millis(200);
/// A watch ends early once the pair has been settled this long (and every injected
/// step is done, and no classic notify script is still running).
const HOLD: Duration = Duration::from_secs(5);
/// Scenario 1: the killed Redis is restarted (empty) this long after the kill.
const RESTART_AFTER: Duration = Duration::from_secs(5);
/// Scenarios 5 and b: how long the master's host is cut off.
const PARTITION: Duration = Duration::from_secs(10);
/// Scenario d: how long the switch is split.
const SPLIT: Duration = Duration::from_secs(12);
/// Scenario d: redha's `[replication] isolation_timeout`.
const ISOLATION_TIMEOUT: &str = "2s";
/// Scenario d: the witness port on host 3 (nothing listens: a refused connection is
/// an answer).
const WITNESS_PORT: u16 = 9;
/// Scenario c: how long both hosts stay off.
const POWER_OFF: Duration = Duration::from_secs(1);
/// Scenario a: how long to wait for the peer to take over before the restart.
const TAKEOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the start-up of a system may take before the cell counts as failed.
const SETUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Timeout of the monitor's Redis and sentinel queries.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// First port of the scratch Redis servers that read saved datasets (on host 3).
const SCRATCH_PORT: u16 = 6390;
/// How long a scratch Redis may take to load a saved dataset.
const SCRATCH_TIMEOUT: Duration = Duration::from_secs(20);
/// A cell still running this long after its watch cap aborts the benchmark (after
/// printing what was measured): set-up, injected steps and accounting are all bounded
/// well within it.
const CELL_SLACK: Duration = Duration::from_secs(300);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum System {
    Redha,
    /// redha with VRRPv3 at 100 ms adverts and the health check paired with them
    /// ([`pair::at_100ms`]).
    RedhaV3,
    Keepalived,
    Sentinel,
}

impl System {
    const ALL: [System; 4] = [
        System::Redha,
        System::RedhaV3,
        System::Keepalived,
        System::Sentinel,
    ];

    fn name(self) -> &'static str {
        match self {
            System::Redha => "redha",
            System::RedhaV3 => "redha-v3",
            System::Keepalived => "keepalived",
            System::Sentinel => "sentinel",
        }
    }

    fn tag(self) -> char {
        match self {
            System::Redha => 'r',
            System::RedhaV3 => 'f',
            System::Keepalived => 'k',
            System::Sentinel => 's',
        }
    }

    /// Either redha column.
    fn is_redha(self) -> bool {
        matches!(self, System::Redha | System::RedhaV3)
    }

    fn has_vip(self) -> bool {
        self != System::Sentinel
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scenario {
    RedisKill,
    AgentKill,
    Switchover,
    EmptyRestart,
    Partition,
    /// a.
    RdbRestart,
    /// b.
    SilentPartition,
    /// c.
    PowerCycle,
    /// d.
    Split,
    /// e1.
    EmptyDiskSync,
    /// e2.
    EmptyNoDelay,
}

impl Scenario {
    const ALL: [Scenario; 11] = [
        Scenario::RedisKill,
        Scenario::AgentKill,
        Scenario::Switchover,
        Scenario::EmptyRestart,
        Scenario::Partition,
        Scenario::RdbRestart,
        Scenario::SilentPartition,
        Scenario::PowerCycle,
        Scenario::Split,
        Scenario::EmptyDiskSync,
        Scenario::EmptyNoDelay,
    ];

    fn order(self) -> usize {
        Scenario::ALL.iter().position(|&s| s == self).unwrap_or(0)
    }

    /// The name on the command line and in the table: 1 to 5, a to d, e1, e2.
    fn id(self) -> &'static str {
        ["1", "2", "3", "4", "5", "a", "b", "c", "d", "e1", "e2"][self.order()]
    }

    /// The scenarios a command-line word names (`e`: both e1 and e2).
    fn parse(word: &str) -> Option<Vec<Scenario>> {
        if word == "e" {
            return Some(vec![Scenario::EmptyDiskSync, Scenario::EmptyNoDelay]);
        }
        if word == "all" {
            return Some(Scenario::ALL.to_vec());
        }
        Scenario::ALL
            .into_iter()
            .find(|s| s.id() == word)
            .map(|s| vec![s])
    }

    /// One of the issue-7 scenarios (persistence or sync settings as users run them;
    /// the watch and the time to a settled pair count from the last injected step).
    fn is_new(self) -> bool {
        self.order() >= 5
    }

    fn title(self) -> &'static str {
        match self {
            Scenario::RedisKill => {
                "Redis SIGKILLed on the master, restarted empty 5 s later (as a supervisor would)"
            }
            Scenario::AgentKill => {
                "agent SIGKILLed on the master, its Redis lives (redha; both keepalived \
                 processes; Sentinel: the master host's sentinel, a non-event)"
            }
            Scenario::Switchover => {
                "planned switchover (SIGTERM of the master's redha / keepalived; \
                 `SENTINEL FAILOVER mymaster`)"
            }
            Scenario::EmptyRestart => {
                "the master's Redis restarted empty at once (supervisor, no persistence)"
            }
            Scenario::Partition => "the master's host partitioned for 10 s, then healed",
            Scenario::RdbRestart => {
                "RDB snapshots (Redis 7 defaults): the master's Redis SIGKILLed, restarted \
                 from its own older dump.rdb once the peer took over"
            }
            Scenario::SilentPartition => {
                "silent partition, RDB snapshots on: the master's switch port leaves the \
                 bridge (carrier kept), the client on the other side; healed after 10 s"
            }
            Scenario::PowerCycle => {
                "both hosts power-cycled, AOF `appendfsync always`: both Redis and both \
                 agents SIGKILLed together, Redis restarted from their files, agents \
                 started together"
            }
            Scenario::Split => {
                "split with a client on each side (hosts 1+4 vs 2+3) for 12 s, then healed; \
                 RDB snapshots on; redha with isolation_timeout 2s and a witness on host 3"
            }
            Scenario::EmptyDiskSync => {
                "the master's Redis restarted empty at once, `repl-diskless-sync no`"
            }
            Scenario::EmptyNoDelay => {
                "the master's Redis restarted empty at once, `repl-diskless-sync yes`, \
                 delay 0"
            }
        }
    }

    /// The Redis settings of both servers.
    fn redis_opts(self) -> RedisOpts {
        let o = RedisOpts::default();
        match self {
            Scenario::RdbRestart | Scenario::SilentPartition | Scenario::Split => o.rdb_default(),
            Scenario::PowerCycle => o.aof_always(),
            Scenario::EmptyDiskSync => o.disk_sync(),
            Scenario::EmptyNoDelay => o.diskless_sync_no_delay(),
            _ => o,
        }
    }

    /// Hosts in the lab: the split needs a client host on the master's side.
    fn hosts(self) -> usize {
        if self == Scenario::Split { 4 } else { 3 }
    }

    /// The client hosts: 3, and in the split 4 too (on the master's side).
    fn clients(self) -> Vec<usize> {
        if self == Scenario::Split {
            vec![3, 4]
        } else {
            vec![3]
        }
    }

    /// What the time to a settled pair counts from.
    fn settle_label(self) -> &'static str {
        match self {
            Scenario::RdbRestart | Scenario::EmptyDiskSync | Scenario::EmptyNoDelay => {
                "time to a settled pair (from the restart)"
            }
            Scenario::SilentPartition | Scenario::Split => "time to a settled pair (from the heal)",
            Scenario::PowerCycle => "time to a settled pair (from the agents' start)",
            _ => "time to a settled pair (from the fault)",
        }
    }
}

/// What one Redis looks like.
#[derive(Clone, Debug, PartialEq)]
enum RView {
    Down,
    Master,
    Replica { of: Option<Ipv4Addr>, up: bool },
}

/// What one sentinel says.
#[derive(Clone, Debug, PartialEq)]
enum SView {
    Down,
    NoMaster,
    Master(Ipv4Addr),
}

/// One observation of the pair.
#[derive(Clone, Debug)]
struct Status {
    holders: Vec<usize>,
    redis: [RView; 2],
    offsets: [Option<i64>; 2],
    sentinels: Vec<SView>,
}

fn short(ip: Ipv4Addr) -> String {
    format!(".{}", ip.octets()[3])
}

impl Status {
    /// A one-line description without offsets (so it changes only on events).
    fn describe(&self, system: System) -> String {
        let mut s = String::new();
        if system.has_vip() {
            let _ = write!(s, "VIP on {:?}", self.holders);
        } else {
            let views: Vec<String> = self
                .sentinels
                .iter()
                .map(|v| match v {
                    SView::Down => "down".into(),
                    SView::NoMaster => "none".into(),
                    SView::Master(ip) => short(*ip),
                })
                .collect();
            let _ = write!(s, "sentinels say [{}]", views.join(" "));
        }
        for (i, r) in self.redis.iter().enumerate() {
            let _ = write!(
                s,
                "; r{}={}",
                i + 1,
                match r {
                    RView::Down => "down".to_string(),
                    RView::Master => "master".into(),
                    RView::Replica { of, up } => format!(
                        "replica of {} ({})",
                        of.map(short).unwrap_or_else(|| "?".into()),
                        if *up { "up" } else { "link down" }
                    ),
                }
            );
        }
        s
    }
}

fn redis_addr(lab: &Lab, i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(lab.addr(i), REDIS_PORT)
}

/// Role and offset of host `i`'s Redis, asked from host `i` itself.
fn redis_view(lab: &Lab, i: usize) -> (RView, Option<i64>) {
    let info = lab_connect(lab, i, redis_addr(lab, i), PROBE_TIMEOUT)
        .and_then(|mut c| c.info_map("replication"));
    let Ok(m) = info else {
        return (RView::Down, None);
    };
    let offset = m.get("master_repl_offset").and_then(|v| v.parse().ok());
    let view = match m.get("role").map(String::as_str) {
        Some("master") => RView::Master,
        Some("slave") => RView::Replica {
            of: m.get("master_host").and_then(|h| h.parse().ok()),
            up: m.get("master_link_status").is_some_and(|s| s == "up"),
        },
        _ => RView::Down,
    };
    (view, offset)
}

fn sentinel_view(lab: &Lab, i: usize) -> SView {
    match sentinel::master_addr(lab, i) {
        Ok(Some(a)) => SView::Master(*a.ip()),
        Ok(None) => SView::NoMaster,
        Err(_) => SView::Down,
    }
}

fn vip_holders(lab: &Lab) -> Vec<usize> {
    (1..=2).filter(|&i| lab.has_addr(i, VIP)).collect()
}

fn observe(lab: &Lab, system: System, holders: Vec<usize>) -> Status {
    let (r1, o1) = redis_view(lab, 1);
    let (r2, o2) = redis_view(lab, 2);
    let sentinels = if system == System::Sentinel {
        (1..=3).map(|i| sentinel_view(lab, i)).collect()
    } else {
        Vec::new()
    };
    Status {
        holders,
        redis: [r1, r2],
        offsets: [o1, o2],
        sentinels,
    }
}

/// The master's host if the pair is settled: one VIP holder (or all answering
/// sentinels, at least two, naming the same master), its Redis master, the other Redis
/// its replica with the link up.
fn settled(lab: &Lab, system: System, st: &Status) -> Option<usize> {
    let m = if system.has_vip() {
        match st.holders.as_slice() {
            [h] => *h,
            _ => return None,
        }
    } else {
        let mut named = Vec::new();
        for v in &st.sentinels {
            match v {
                SView::Down => {}
                SView::NoMaster => return None,
                SView::Master(ip) => named.push(*ip),
            }
        }
        if named.len() < 2 || named.iter().any(|ip| *ip != named[0]) {
            return None;
        }
        (1..=2).find(|&i| lab.addr(i) == named[0])?
    };
    let o = 3 - m;
    let ok = st.redis[m - 1] == RView::Master
        && st.redis[o - 1]
            == RView::Replica {
                of: Some(lab.addr(m)),
                up: true,
            };
    ok.then_some(m)
}

/// The processes of one deployed system.
#[derive(Default)]
struct Deployment {
    /// redha or keepalived on hosts 1 and 2 (index host − 1).
    agents: Vec<Proc>,
    /// Sentinels on hosts 1, 2 and 3.
    sentinels: Vec<Proc>,
}

fn redha_node(lab: &Lab, i: usize, system: System, advert_int: u64, scenario: Scenario) -> Node {
    let peer = 3 - i;
    let mut settings =
        RedisSettings::pair(lab.addr(peer), lab.dir().join(format!("state-h{i}.log")));

    if scenario == Scenario::Split {
        let _ = writeln!(
            settings.replication_extra,
            "isolation_timeout = {ISOLATION_TIMEOUT:?}\nwitnesses = [\"{}:{WITNESS_PORT}\"]",
            lab.addr(3)
        );
    }
    let node = Node {
        preempt: false,
        advert_int: Duration::from_secs(advert_int),
        redis: Some(settings),
        ..Node::with_priority(if i == 1 { HIGH } else { LOW })
    };
    match system {
        System::RedhaV3 => pair::at_100ms(node),
        _ => node,
    }
}

fn plain_node(i: usize, advert_int: u64) -> Node {
    Node {
        preempt: false,
        advert_int: Duration::from_secs(advert_int),
        ..Node::with_priority(if i == 1 { HIGH } else { LOW })
    }
}

/// Polls until the pair is settled (and, for keepalived, no notify script runs);
/// returns the master's host.
fn wait_settled(lab: &Lab, system: System, timeout: Duration) -> Result<usize, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let holders = if system.has_vip() {
            vip_holders(lab)
        } else {
            Vec::new()
        };
        let st = observe(lab, system, holders);
        if let Some(m) = settled(lab, system, &st)
            && (system != System::Keepalived || classic::running_scripts(lab).is_empty())
        {
            return Ok(m);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "not settled {:.0} s after start-up: {}",
                timeout.as_secs_f64(),
                st.describe(system)
            ));
        }
        sleep(STATUS_POLL);
    }
}

/// Starts `system` on the two Redis hosts (and the client's host, for Sentinel) and
/// waits for a settled pair. Returns the processes and the master's host.
fn deploy(
    lab: &Lab,
    system: System,
    scenario: Scenario,
    advert_int: u64,
    redis: &[RedisNode<'_>],
) -> Result<(Deployment, usize), String> {
    let mut d = Deployment::default();
    match system {
        System::Redha | System::RedhaV3 => {
            d.agents = start_agents(lab, system, scenario, advert_int);
        }
        System::Keepalived => {
            // The classic manual ritual: host 2 syncs from host 1 and is detached, so
            // that the datasets are equal; keepalived starts on host 1 first, on host
            // 2 once host 1 holds the VIP.
            replicate(lab, &redis[1], &redis[0])?;
            redis[1]
                .client()
                .and_then(|mut c| c.replicaof_no_one())
                .map_err(|e| format!("detaching host 2: {e}"))?;
            d.agents.push(classic::start(
                lab,
                1,
                &plain_node(1, advert_int),
                lab.addr(2),
            ));
            let limit = plain_node(1, advert_int).master_down_interval() + Duration::from_secs(10);
            if netns_tests::wait_until(limit, Duration::from_millis(50), || lab.has_addr(1, VIP))
                .is_none()
            {
                return Err(format!(
                    "classic ritual: host 1 did not take the VIP within {:.0} s",
                    limit.as_secs_f64()
                ));
            }
            d.agents.push(classic::start(
                lab,
                2,
                &plain_node(2, advert_int),
                lab.addr(1),
            ));
        }
        System::Sentinel => {
            replicate(lab, &redis[1], &redis[0])?;
            let settings = SentinelSettings::default();
            for i in 1..=3 {
                d.sentinels
                    .push(sentinel::start(lab, i, lab.addr(1), &settings));
            }
            if netns_tests::wait_until(SETUP_TIMEOUT, Duration::from_millis(250), || {
                (1..=3).all(|i| sentinel::ready(lab, i, 1, 2))
            })
            .is_none()
            {
                return Err("sentinels did not discover each other and the replica".into());
            }
        }
    }
    let m = wait_settled(lab, system, SETUP_TIMEOUT)?;
    Ok((d, m))
}

/// `replica` REPLICAOF `source`, waiting for the link and the catch-up.
fn replicate(lab: &Lab, replica: &RedisNode<'_>, source: &RedisNode<'_>) -> Result<(), String> {
    replica
        .client()
        .and_then(|mut c| c.replicaof(lab.addr(source.host()), REDIS_PORT))
        .map_err(|e| format!("REPLICAOF on host {}: {e}", replica.host()))?;
    if !replica.wait_link_up(Duration::from_secs(20))
        || !replica.wait_caught_up(source, Duration::from_secs(10))
    {
        return Err(format!(
            "host {} did not sync from host {}",
            replica.host(),
            source.host()
        ));
    }
    Ok(())
}

/// Starts both agents at once (redha, or keepalived with the classic scripts, without
/// the manual ritual).
fn start_agents(lab: &Lab, system: System, scenario: Scenario, advert_int: u64) -> Vec<Proc> {
    match system {
        System::Redha | System::RedhaV3 => (1..=2)
            .map(|i| redha::start(lab, i, &redha_node(lab, i, system, advert_int, scenario)))
            .collect(),
        System::Keepalived => (1..=2)
            .map(|i| classic::start(lab, i, &plain_node(i, advert_int), lab.addr(3 - i)))
            .collect(),
        System::Sentinel => Vec::new(),
    }
}

/// Starts host `i`'s sentinel again from the configuration it rewrote (what a
/// reboot does), unlike [`sentinel::start`], which writes a fresh one.
fn restart_sentinel(lab: &Lab, i: usize) -> Proc {
    let conf = lab.dir().join(format!("sentinel-h{i}.conf"));
    let mut c = Command::new(REDIS_SERVER);
    c.arg(&conf).arg("--sentinel");
    lab.spawn_command(i, &format!("sentinel-h{i}"), &c)
}

/// Asks the sentinel at `at` for the master (called in the client's namespace).
fn ask_sentinel(at: SocketAddrV4) -> Result<SocketAddrV4, netns_tests::redis::Error> {
    let mut s = Resp::connect(at, sentinel::SENTINEL_TIMEOUT)?;
    let reply = s.command(&["SENTINEL", "get-master-addr-by-name", sentinel::MASTER_NAME])?;
    sentinel::parse_master_addr(&reply)?
        .ok_or_else(|| netns_tests::redis::Error::Protocol("the sentinel knows no master".into()))
}

/// Starts the clients: one on host 3 writing `k:<n>`, or (the split) one on host 3 and
/// one on host 4 writing `c3:<n>` and `c4:<n>`; through the VIP, or through Sentinel
/// (host 3 asks its own sentinel; host 4, which has none, the sentinel on the master's
/// host `m`, on its side of the split).
fn start_clients(lab: &Lab, system: System, scenario: Scenario, m: usize) -> Vec<Writer> {
    let hosts = scenario.clients();
    let single = hosts.len() == 1;
    hosts
        .into_iter()
        .map(|h| {
            let prefix = if single {
                DEFAULT_PREFIX.to_owned()
            } else {
                client_prefix(h)
            };
            if system.has_vip() {
                let vip: SocketAddrV4 = format!("{VIP}:{REDIS_PORT}").parse().expect("VIP");
                Writer::start_prefixed(lab, h, &prefix, vip, WRITE_INTERVAL)
            } else {
                let at = if h == 3 {
                    SocketAddrV4::new(Ipv4Addr::LOCALHOST, sentinel::SENTINEL_PORT)
                } else {
                    sentinel::addr(lab, m)
                };
                Writer::start_with_prefix(lab, h, &prefix, move || ask_sentinel(at), WRITE_INTERVAL)
            }
        })
        .collect()
}

/// Which acknowledged keys `<prefix><n>` the Redis at `addr` lacks (asked from host
/// `from`).
fn missing(
    lab: &Lab,
    from: usize,
    addr: SocketAddrV4,
    prefix: &str,
    acked: &[u64],
) -> Result<Vec<u64>, String> {
    let mut conn = lab_connect(lab, from, addr, Duration::from_secs(5))
        .map_err(|e| format!("connecting to {addr}: {e}"))?;
    let mut lost = Vec::new();
    for batch in acked.chunks(CHECK_BATCH) {
        let mut cmd = vec!["MGET".to_owned()];
        cmd.extend(batch.iter().map(|&n| format!("{prefix}{n}")));
        match conn.command(&cmd) {
            Ok(Reply::Array(values)) if values.len() == batch.len() => {
                for (&n, v) in batch.iter().zip(&values) {
                    if v.text() != Some(n.to_string()) {
                        lost.push(n);
                    }
                }
            }
            Ok(r) => return Err(format!("MGET on {addr}: unexpected {r:?}")),
            Err(e) => return Err(format!("MGET on {addr}: {e}")),
        }
    }
    Ok(lost)
}

/// The datasets redha saved before resyncing a Redis over them:
/// `<lab>/state-h<i>.d/saved/*.rdb` of both hosts.
fn saved_files(lab: &Lab) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for i in 1..=2 {
        let dir = lab.dir().join(format!("state-h{i}.d")).join("saved");
        if let Ok(rd) = fs::read_dir(&dir) {
            out.extend(
                rd.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "rdb")),
            );
        }
    }
    out.sort();
    out
}

/// Which of `wanted` (per client: prefix and sequence numbers) the RDB file `rdb`
/// holds: loads a copy of it into a scratch `redis-server` on host 3's loopback, port
/// `port`, without persistence, and asks it (bounded by [`SCRATCH_TIMEOUT`]).
fn in_snapshot(
    lab: &Lab,
    port: u16,
    rdb: &Path,
    wanted: &[(String, Vec<u64>)],
) -> Result<Vec<Vec<u64>>, String> {
    let dir = lab.dir().join(format!("bench-scratch-{port}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    fs::copy(rdb, dir.join("dump.rdb")).map_err(|e| format!("copying {}: {e}", rdb.display()))?;
    let conf = lab.dir().join(format!("bench-scratch-{port}.conf"));
    fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\nlogfile \"\"\n\
             save \"\"\nappendonly no\ndir {:?}\ndbfilename dump.rdb\n",
            dir.display().to_string()
        ),
    )
    .map_err(|e| format!("writing {}: {e}", conf.display()))?;
    let mut c = Command::new(REDIS_SERVER);
    c.arg(&conf);
    let proc = lab.spawn_command(3, &format!("bench-scratch-{port}"), &c);
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
    let up = netns_tests::wait_until(SCRATCH_TIMEOUT, Duration::from_millis(50), || {
        !proc.is_running()
            || lab_connect(lab, 3, addr, PROBE_TIMEOUT)
                .and_then(|mut c| c.ping())
                .is_ok()
    });
    if up.is_none() || !proc.is_running() {
        proc.kill();
        return Err(format!(
            "{} does not load (scratch log {})",
            rdb.display(),
            proc.log_path().display()
        ));
    }
    let mut present = Vec::new();
    for (prefix, keys) in wanted {
        let absent = missing(lab, 3, addr, prefix, keys)?;
        present.push(
            keys.iter()
                .copied()
                .filter(|n| !absent.contains(n))
                .collect(),
        );
    }
    proc.kill();
    Ok(present)
}

/// Sequence numbers as compact ranges: `1-5, 9`.
fn ranges(keys: &[u64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < keys.len() {
        let mut j = i;
        while j + 1 < keys.len() && keys[j + 1] == keys[j] + 1 {
            j += 1;
        }
        out.push(if i == j {
            keys[i].to_string()
        } else {
            format!("{}-{}", keys[i], keys[j])
        });
        i = j + 1;
    }
    if out.len() > 6 {
        let n = out.len();
        format!(
            "{}, … ({} ranges) …, {}",
            out[..3].join(", "),
            n - 4,
            out[n - 1]
        )
    } else {
        out.join(", ")
    }
}

/// What one client saw in one cell.
#[derive(Clone, Debug)]
struct ClientOutcome {
    /// The client's host.
    host: usize,
    /// Longest gap between its acknowledged writes, seconds.
    gap: f64,
    /// The longest gap is the one still open when the watch ended.
    gap_open: bool,
    /// Its acknowledged writes missing on the final master (None: unreadable).
    lost: Option<usize>,
    acked: usize,
    /// Of the lost ones, how many are in a dataset redha saved (None: not redha, or
    /// a saved file could not be read).
    saved: Option<usize>,
    /// The split, the client on the master's side: seconds from the split to its last
    /// write acknowledged before the heal.
    isolated_last: Option<f64>,
}

/// The result of one cell (one system, one scenario, one run).
#[derive(Clone, Debug)]
struct Outcome {
    clients: Vec<ClientOutcome>,
    /// redha: how many datasets it saved (files in `<state_dir>/saved/`).
    saved_files: Option<usize>,
    /// Seconds both hosts held the VIP, and whether they still did at the end.
    both: Option<(f64, bool)>,
    /// Seconds from the scenario's reference (the fault; for a–d the last injected
    /// step) to the start of the final settled stretch.
    settled: Option<f64>,
    /// Length of the watch after the reference, seconds.
    watched: f64,
    /// Where the lost writes were looked for and which were missing, and the pair's
    /// state at the end of the watch.
    detail: String,
}

struct HolderTrack {
    last: Option<(Instant, bool)>,
    both: Duration,
    latest: Vec<usize>,
}

struct StatusTrack {
    settled_since: Option<Instant>,
    timeline: Vec<(Duration, String)>,
}

struct Watch {
    stop: AtomicBool,
    holders: Mutex<HolderTrack>,
    status: Mutex<StatusTrack>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn holder_loop(lab: &Lab, w: &Watch) {
    while !w.stop.load(Ordering::Relaxed) {
        let h = vip_holders(lab);
        let now = Instant::now();
        {
            let mut t = lock(&w.holders);
            if let Some((at, true)) = t.last {
                t.both += now - at;
            }
            t.last = Some((now, h.len() == 2));
            t.latest = h;
        }
        sleep(HOLDER_POLL);
    }
    let now = Instant::now();
    let mut t = lock(&w.holders);
    if let Some((at, true)) = t.last {
        t.both += now - at;
    }
}

fn status_loop(lab: &Lab, system: System, t0: Instant, w: &Watch) {
    let mut last_desc = String::new();
    while !w.stop.load(Ordering::Relaxed) {
        let holders = if system.has_vip() {
            lock(&w.holders).latest.clone()
        } else {
            Vec::new()
        };
        let st = observe(lab, system, holders);
        let now = Instant::now();
        let ok = settled(lab, system, &st);
        let mut desc = st.describe(system);
        if ok.is_some() {
            desc.push_str("  [settled]");
        }
        let mut t = lock(&w.status);
        match (ok, t.settled_since) {
            (Some(_), None) => t.settled_since = Some(now),
            (None, Some(_)) => t.settled_since = None,
            _ => {}
        }
        if desc != last_desc {
            let offs: Vec<String> = st
                .offsets
                .iter()
                .map(|o| o.map(|v| v.to_string()).unwrap_or_else(|| "-".into()))
                .collect();
            t.timeline
                .push((now - t0, format!("{desc}  (offsets {})", offs.join("/"))));
            last_desc = desc;
        }
        drop(t);
        sleep(STATUS_POLL);
    }
}

struct Cell<'a> {
    lab: &'a Lab,
    system: System,
    scenario: Scenario,
    advert_int: u64,
    cap: Duration,
    /// The watch lasts at least this long after the fault (for a–d: after the last
    /// injected step), so that a fault which acts late (a takeover after
    /// Master_Down_Interval) is seen.
    min_watch: Duration,
}

/// When the injected steps happened.
struct Injected {
    /// What the watch and the time to a settled pair count from.
    reference: Instant,
    /// The split: when it began and when it was healed.
    split: Option<(Instant, Instant)>,
}

/// Whether host `o` took over: it alone holds the VIP (Sentinel: host 3's sentinel
/// names it) and its Redis is a master.
fn took_over(lab: &Lab, system: System, o: usize) -> bool {
    let named = if system.has_vip() {
        vip_holders(lab) == [o]
    } else {
        sentinel_view(lab, 3) == SView::Master(lab.addr(o))
    };
    named && redis_view(lab, o).0 == RView::Master
}

/// Injects the fault (and its follow-up: restart, heal) on master host `m`.
fn inject(
    c: &Cell<'_>,
    d: &mut Deployment,
    redis: &mut [RedisNode<'_>],
    m: usize,
    t0: Instant,
    events: &mut Vec<(Duration, String)>,
) -> Injected {
    let lab = c.lab;
    let mut note = |what: String| events.push((t0.elapsed(), what));
    let mut reference = t0;
    let mut split = None;
    match (c.scenario, c.system) {
        (Scenario::RedisKill, _) => {
            redis[m - 1].kill();
            note(format!("SIGKILL redis-server on host {m}"));
            sleep(RESTART_AFTER.saturating_sub(t0.elapsed()));
            redis[m - 1].restart_empty();
            note(format!(
                "redis-server on host {m} restarted empty (answers PING)"
            ));
        }
        (Scenario::AgentKill, System::Redha | System::RedhaV3) => {
            d.agents[m - 1].kill();
            note(format!("SIGKILL redha on host {m}"));
        }
        (Scenario::AgentKill, System::Keepalived) => {
            keepalived::crash(lab, m, &d.agents[m - 1]);
            note(format!(
                "SIGKILL keepalived on host {m} (VRRP child and parent)"
            ));
        }
        (Scenario::AgentKill, System::Sentinel) => {
            d.sentinels[m - 1].kill();
            note(format!("SIGKILL the sentinel on host {m}"));
        }
        (Scenario::Switchover, System::Sentinel) => {
            let r = sentinel::query(lab, 3, &["SENTINEL", "FAILOVER", sentinel::MASTER_NAME]);
            note(format!("SENTINEL FAILOVER mymaster (on host 3): {r:?}"));
        }
        (Scenario::Switchover, _) => {
            d.agents[m - 1].signal(libc::SIGTERM);
            note(format!("SIGTERM {} on host {m}", c.system.name()));
        }
        (Scenario::EmptyRestart | Scenario::EmptyDiskSync | Scenario::EmptyNoDelay, _) => {
            redis[m - 1].restart_empty();
            note(format!(
                "redis-server on host {m} killed and restarted empty (answers PING)"
            ));
        }
        (Scenario::Partition | Scenario::SilentPartition, _) => {
            lab.detach(m);
            note(format!(
                "host {m}'s switch port taken off the bridge (carrier kept)"
            ));
            sleep(PARTITION.saturating_sub(t0.elapsed()));
            lab.attach(m);
            note(format!("host {m}'s port back on the bridge"));
            reference = Instant::now();
        }
        (Scenario::RdbRestart, system) => {
            redis[m - 1].kill();
            note(format!("SIGKILL redis-server on host {m}"));
            let o = 3 - m;
            match netns_tests::wait_until(TAKEOVER_TIMEOUT, Duration::from_millis(100), || {
                took_over(lab, system, o)
            }) {
                Some(_) => note(format!("host {o} took over (its Redis is master)")),
                None => note(format!(
                    "host {o} had not taken over {:.0} s after the kill; restarting anyway",
                    TAKEOVER_TIMEOUT.as_secs_f64()
                )),
            }
            redis[m - 1].restart();
            reference = Instant::now();
            note(format!(
                "redis-server on host {m} restarted from its files (dump.rdb), answers PING"
            ));
        }
        (Scenario::PowerCycle, system) => {
            match system {
                System::Redha | System::RedhaV3 => {
                    for p in &d.agents {
                        p.kill();
                    }
                }
                System::Keepalived => {
                    for (i, p) in d.agents.iter().enumerate() {
                        keepalived::crash(lab, i + 1, p);
                        // A reboot clears /run: without this, the new keepalived finds
                        // the pid file of its killed VRRP child (a zombie until reaped)
                        // and exits with "daemon is already running".
                        for suffix in ["", "-vrrp", "-checkers"] {
                            let _ = fs::remove_file(
                                lab.dir().join(format!("keepalived-h{}{suffix}.pid", i + 1)),
                            );
                        }
                    }
                    for (pid, _) in classic::running_scripts(lab) {
                        // SAFETY: kill(2) on a pid just read from /proc; at worst ESRCH.
                        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
                    }
                }
                System::Sentinel => {
                    for p in d.sentinels.iter().take(2) {
                        p.kill();
                    }
                }
            }
            for r in redis.iter() {
                r.kill();
            }
            if system.has_vip() {
                for i in 1..=2 {
                    lab.try_run(
                        i,
                        "ip",
                        ["addr", "del", &format!("{VIP}/24"), "dev", "eth0"],
                    );
                }
            }
            note(format!(
                "power off: SIGKILL of both {} and both redis-server, VIP addresses gone",
                match system {
                    System::Redha | System::RedhaV3 => "redha",
                    System::Keepalived => "keepalived (and their notify scripts)",
                    System::Sentinel => "sentinels (hosts 1 and 2)",
                }
            ));
            sleep(POWER_OFF);
            for r in redis.iter_mut() {
                r.start_again();
            }
            note("both redis-server restarted from their files (AOF), answer PING".into());
            if system == System::Sentinel {
                d.sentinels[0] = restart_sentinel(lab, 1);
                d.sentinels[1] = restart_sentinel(lab, 2);
            } else {
                d.agents = start_agents(lab, system, c.scenario, c.advert_int);
            }
            reference = Instant::now();
            note(format!(
                "{} started together{}",
                system.name(),
                if system == System::Sentinel {
                    " (hosts 1 and 2, from their rewritten configurations)"
                } else {
                    ""
                }
            ));
        }
        (Scenario::Split, _) => {
            let o = 3 - m;
            let began = Instant::now();
            lab.split(&[m, 4]);
            note(format!(
                "switch split: hosts {m} + 4 on one side, {o} + 3 on the other (carrier kept)"
            ));
            sleep(SPLIT.saturating_sub(began.elapsed()));
            lab.heal_split();
            reference = Instant::now();
            split = Some((began, reference));
            note("split healed".into());
        }
    }
    Injected { reference, split }
}

/// Runs one cell; returns its outcome and writes its timeline to stderr and the lab.
fn run_cell(c: &Cell<'_>) -> Result<Outcome, String> {
    let lab = c.lab;
    let began = Instant::now();
    let opts = c.scenario.redis_opts();
    let mut redis = vec![
        RedisNode::start(lab, 1, opts.clone()),
        RedisNode::start(lab, 2, opts),
    ];
    let (mut d, m) = deploy(lab, c.system, c.scenario, c.advert_int, &redis)?;
    eprintln!(
        "    set up in {:.1} s, master on host {m}",
        began.elapsed().as_secs_f64()
    );
    let clients = start_clients(lab, c.system, c.scenario, m);
    if netns_tests::wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
        clients.iter().all(|w| w.acked_count() > 0)
    })
    .is_none()
    {
        let logs: Vec<String> = clients.into_iter().map(|w| w.stop().summary()).collect();
        return Err(format!("a client could not write: {}", logs.join("; ")));
    }
    let mut snapshot_note = None;
    if c.scenario == Scenario::RdbRestart {
        // An older snapshot to restart from (as the save points would have taken).
        sleep(SNAPSHOT_AFTER);
        let r = redis[m - 1].save();
        snapshot_note = Some(format!(
            "SAVE on host {m} ({} writes acknowledged so far): {r:?}",
            clients[0].acked_count()
        ));
        sleep(STEADY.saturating_sub(SNAPSHOT_AFTER));
    } else {
        sleep(STEADY);
    }

    let watch = Watch {
        stop: AtomicBool::new(false),
        holders: Mutex::new(HolderTrack {
            last: None,
            both: Duration::ZERO,
            latest: vip_holders(lab),
        }),
        status: Mutex::new(StatusTrack {
            settled_since: None,
            timeline: Vec::new(),
        }),
    };
    let t0 = Instant::now();
    let mut events = Vec::new();
    if let Some(n) = snapshot_note {
        events.push((Duration::ZERO, n));
    }
    let (end, injected) = thread::scope(|s| {
        if c.system.has_vip() {
            s.spawn(|| holder_loop(lab, &watch));
        }
        s.spawn(|| status_loop(lab, c.system, t0, &watch));
        let injected = catch_unwind(AssertUnwindSafe(|| {
            inject(c, &mut d, &mut redis, m, t0, &mut events)
        }));
        let injected = match injected {
            Ok(i) => i,
            Err(p) => {
                watch.stop.store(true, Ordering::Relaxed);
                return (Instant::now(), Err(panic_text(p)));
            }
        };
        let base = if c.scenario.is_new() {
            injected.reference
        } else {
            t0
        };
        loop {
            let now = Instant::now();
            if now - base >= c.cap {
                break;
            }
            let since = lock(&watch.status).settled_since;
            if now - base >= c.min_watch
                && since.is_some_and(|s| now - s >= HOLD)
                && (c.system != System::Keepalived || classic::running_scripts(lab).is_empty())
            {
                break;
            }
            sleep(Duration::from_millis(100));
        }
        watch.stop.store(true, Ordering::Relaxed);
        (Instant::now(), Ok(injected))
    });
    let logs: Vec<WriteLog> = clients.into_iter().map(Writer::stop).collect();
    let injected = injected.map_err(|e| format!("injecting the fault: {e}"))?;
    let base = if c.scenario.is_new() {
        injected.reference
    } else {
        t0
    };
    let watched = end.saturating_duration_since(base).as_secs_f64();

    let holders = lock(&watch.holders);
    let status = lock(&watch.status);
    let settled_at = status
        .settled_since
        .map(|s| s.saturating_duration_since(base).as_secs_f64());
    let both = c.system.has_vip().then(|| {
        (
            holders.both.as_secs_f64(),
            holders.last.is_some_and(|(_, b)| b),
        )
    });

    // Acknowledged writes on the final master: what the client on host 3 reaches
    // through the VIP, or the master its sentinel names.
    let mut report = Vec::new();
    let target = if c.system.has_vip() {
        let via = match lab.neigh_mac(3, VIP) {
            Some(mac) => (1..=2)
                .find(|&i| lab.mac(i) == mac)
                .map(|i| format!("host {i}"))
                .unwrap_or_else(|| format!("MAC {mac}")),
            None => "no neighbour entry".into(),
        };
        Some((
            format!("{VIP}:{REDIS_PORT}").parse().expect("VIP"),
            format!("through the VIP ({via})"),
        ))
    } else {
        match sentinel::master_addr(lab, 3) {
            Ok(Some(a)) => Some((a, format!("Sentinel's master {a}"))),
            other => {
                report.push(format!("no master from the sentinel on host 3: {other:?}"));
                None
            }
        }
    };
    let mut detail = String::new();
    let mut outs = Vec::new();
    let mut lost_keys: Vec<(String, Vec<u64>)> = Vec::new();
    for log in &logs {
        let acked = log.acked_keys();
        // The gap, including one still open at the end of the watch.
        let mut gap = log.longest_gap().as_secs_f64();
        let mut gap_open = false;
        if let Some(&(_, last)) = log.acked.last() {
            let open = end
                .saturating_duration_since(log.started + last)
                .as_secs_f64();
            if open > gap {
                gap = open;
                gap_open = true;
            }
        }
        let isolated_last = match injected.split {
            Some((from, to)) if log.client_host == 4 => Some(
                log.acked
                    .iter()
                    .map(|&(_, at)| log.started + at)
                    .filter(|&t| t >= from && t <= to)
                    .max()
                    .map(|t| (t - from).as_secs_f64())
                    .unwrap_or(0.0),
            ),
            _ => None,
        };
        let who = format!("client on host {} ({}*)", log.client_host, log.prefix);
        let lost = match &target {
            Some((addr, label)) => match missing(lab, 3, *addr, &log.prefix, &acked) {
                Ok(l) => {
                    let _ = write!(
                        detail,
                        "{}{who}: final master {label}{}",
                        if detail.is_empty() { "" } else { "; " },
                        if l.is_empty() {
                            String::new()
                        } else {
                            format!(" lacks {}{}", log.prefix, ranges(&l))
                        }
                    );
                    report.push(format!(
                        "{who}: final master {label}: {} of {} acknowledged writes missing{}",
                        l.len(),
                        acked.len(),
                        if l.is_empty() {
                            String::new()
                        } else {
                            format!(" ({}{})", log.prefix, ranges(&l))
                        }
                    ));
                    let n = l.len();
                    lost_keys.push((log.prefix.clone(), l));
                    Some(n)
                }
                Err(e) => {
                    report.push(format!("{who}: final master {label} unreadable: {e}"));
                    let _ = write!(detail, "{who}: final master {label} unreadable: {e}; ");
                    lost_keys.push((log.prefix.clone(), Vec::new()));
                    None
                }
            },
            None => {
                lost_keys.push((log.prefix.clone(), Vec::new()));
                None
            }
        };
        for i in 1..=2 {
            match missing(lab, i, redis_addr(lab, i), &log.prefix, &acked) {
                Ok(l) => report.push(format!("  host {i}'s Redis lacks {} of them", l.len())),
                Err(e) => report.push(format!("  host {i}'s Redis unreadable: {e}")),
            }
        }
        if let Some(t) = isolated_last {
            report.push(format!(
                "  {who}, on the isolated side: last write acknowledged during the split \
                 {t:.2} s after it began"
            ));
        }
        outs.push(ClientOutcome {
            host: log.client_host,
            gap,
            gap_open,
            lost,
            acked: acked.len(),
            saved: None,
            isolated_last,
        });
    }

    // redha: which of the lost writes are in a dataset it saved before resyncing.
    let mut saved_files_n = None;
    if c.system.is_redha() {
        let files = saved_files(lab);
        saved_files_n = Some(files.len());
        let mut found: Vec<Vec<u64>> = vec![Vec::new(); lost_keys.len()];
        let mut readable = true;
        let anything = lost_keys.iter().any(|(_, l)| !l.is_empty());
        for (k, f) in files.iter().enumerate() {
            report.push(format!("saved dataset {}", f.display()));
            if !anything {
                continue;
            }
            match in_snapshot(lab, SCRATCH_PORT + k as u16, f, &lost_keys) {
                Ok(present) => {
                    for (acc, p) in found.iter_mut().zip(present) {
                        acc.extend(p);
                    }
                }
                Err(e) => {
                    readable = false;
                    report.push(format!("  unreadable: {e}"));
                }
            }
        }
        for (o, f) in outs.iter_mut().zip(&mut found) {
            f.sort_unstable();
            f.dedup();
            o.saved = readable.then_some(f.len());
        }
        for ((prefix, l), f) in lost_keys.iter().zip(&found) {
            if !l.is_empty() {
                report.push(format!(
                    "{prefix}*: {} of the {} lost writes are in a saved dataset",
                    f.len(),
                    l.len()
                ));
            }
        }
        if !files.is_empty() {
            let _ = write!(
                detail,
                "; saved {}",
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }

    // The timeline, to stderr and into the lab directory.
    let mut text = String::new();
    let mut lines: Vec<(Duration, String)> = events
        .iter()
        .map(|(t, e)| (*t, format!("FAULT: {e}")))
        .chain(status.timeline.iter().cloned())
        .collect();
    lines.sort_by_key(|(t, _)| *t);
    for (t, l) in &lines {
        let _ = writeln!(text, "      {:+7.2} s  {l}", t.as_secs_f64());
    }
    for log in &logs {
        let _ = writeln!(
            text,
            "      writes of host {}: {}; errors first/last: {:?} / {:?}",
            log.client_host,
            log.summary(),
            log.errors
                .first()
                .map(|(n, t, e)| format!("#{n} at {:.2} s: {e}", t.as_secs_f64())),
            log.errors
                .last()
                .map(|(n, t, e)| format!("#{n} at {:.2} s: {e}", t.as_secs_f64())),
        );
    }
    for r in &report {
        let _ = writeln!(text, "      {r}");
    }
    eprint!("{text}");
    if let Some((_, last)) = status.timeline.last() {
        let _ = write!(detail, "; at the end: {last}");
    }
    let _ = write!(detail, " [lab {}]", lab.name());
    let _ = fs::write(lab.dir().join("bench-timeline.txt"), &text);
    let lost_any = outs.iter().any(|o| o.lost.unwrap_or(1) > 0);
    if c.system.is_redha() && (lost_any || settled_at.is_none()) {
        for i in 1..=2 {
            let path = lab.dir().join(format!("state-h{i}.log"));
            let text = fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!("      --- last lines of {}:", path.display());
            for l in &lines[lines.len().saturating_sub(25)..] {
                eprintln!("      {l}");
            }
        }
    }
    drop(d);
    Ok(Outcome {
        clients: outs,
        saved_files: saved_files_n,
        both,
        settled: settled_at,
        watched,
        detail,
    })
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panic".into())
}

type Results = Vec<(System, Scenario, Result<Outcome, String>)>;

fn outcomes(results: &Results, sys: System, scen: Scenario) -> (Vec<Outcome>, Vec<String>) {
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (s, c, r) in results {
        if *s == sys && *c == scen {
            match r {
                Ok(o) => ok.push(o.clone()),
                Err(e) => failed.push(e.clone()),
            }
        }
    }
    (ok, failed)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Metric {
    Gap,
    Lost,
    Saved,
    Both,
    Settled,
    Isolated,
}

impl Metric {
    fn rows(scenario: Scenario) -> Vec<Metric> {
        let mut v = vec![
            Metric::Gap,
            Metric::Lost,
            Metric::Saved,
            Metric::Both,
            Metric::Settled,
        ];
        if scenario == Scenario::Split {
            v.push(Metric::Isolated);
        }
        v
    }

    fn label(self, scenario: Scenario) -> &'static str {
        match self {
            Metric::Gap => "longest gap between acknowledged writes",
            Metric::Lost => "acknowledged writes lost (missing on the final master)",
            Metric::Saved => "of them, in a dataset saved before a resync (redha only)",
            Metric::Both => "both hosts held the VIP",
            Metric::Settled => scenario.settle_label(),
            Metric::Isolated => {
                "isolated side (host 1 + client 4): split → its last acknowledged write"
            }
        }
    }
}

/// One value per client: "x" for one client, "host 3: x; host 4: y" for several.
fn per_client(os: &[Outcome], f: impl Fn(&[&ClientOutcome]) -> String) -> String {
    let n = os.iter().map(|o| o.clients.len()).max().unwrap_or(0);
    let mut parts = Vec::new();
    for k in 0..n {
        let cs: Vec<&ClientOutcome> = os.iter().filter_map(|o| o.clients.get(k)).collect();
        let v = f(&cs);
        if n == 1 {
            return v;
        }
        parts.push(format!("host {}: {v}", cs[0].host));
    }
    parts.join("; ")
}

fn metric_cell(os: &[Outcome], failed: usize, metric: Metric, system: System) -> String {
    if os.is_empty() {
        return if failed > 0 {
            "run failed".into()
        } else {
            "—".into()
        };
    }
    let mut s = match metric {
        Metric::Gap => per_client(os, |cs| {
            let v: Vec<f64> = cs.iter().map(|o| o.gap).collect();
            let mut s = spread(&v, |x| format!("{x:.2} s"));
            let open = cs.iter().filter(|o| o.gap_open).count();
            if open > 0 {
                let _ = write!(
                    s,
                    " (no write acknowledged since{})",
                    if cs.len() > 1 {
                        format!(" in {open} of {} runs", cs.len())
                    } else {
                        String::new()
                    }
                );
            }
            s
        }),
        Metric::Lost => per_client(os, |cs| {
            let v: Vec<f64> = cs.iter().filter_map(|o| o.lost.map(|l| l as f64)).collect();
            let unreadable = cs.len() - v.len();
            let acked: Vec<f64> = cs.iter().map(|o| o.acked as f64).collect();
            let mut s = if v.is_empty() {
                "final master unreadable".into()
            } else {
                format!(
                    "{} of {}",
                    spread(&v, |x| format!("{x:.0}")),
                    spread(&acked, |x| format!("{x:.0}"))
                )
            };
            if unreadable > 0 && !v.is_empty() {
                let _ = write!(s, "; unreadable in {unreadable} runs");
            }
            s
        }),
        Metric::Saved => {
            if !system.is_redha() {
                return "n/a".into();
            }
            let v: Vec<f64> = os
                .iter()
                .filter_map(|o| {
                    o.clients
                        .iter()
                        .map(|c| c.saved)
                        .sum::<Option<usize>>()
                        .map(|n| n as f64)
                })
                .collect();
            let files: Vec<f64> = os
                .iter()
                .filter_map(|o| o.saved_files.map(|n| n as f64))
                .collect();
            let mut s = if v.is_empty() {
                "unreadable".into()
            } else {
                spread(&v, |x| format!("{x:.0}"))
            };
            if files.iter().any(|&f| f > 0.0) {
                let same = files.iter().all(|&f| f == files[0]);
                let _ = write!(
                    s,
                    " ({} saved file{})",
                    if same {
                        format!("{:.0}", files[0])
                    } else {
                        spread(&files, |x| format!("{x:.0}"))
                    },
                    if same && files[0] == 1.0 { "" } else { "s" }
                );
            }
            s
        }
        Metric::Both => {
            if !system.has_vip() {
                return "n/a".into();
            }
            let v: Vec<f64> = os.iter().filter_map(|o| o.both.map(|b| b.0)).collect();
            let mut s = spread(&v, |x| format!("{x:.2} s"));
            let ongoing = os.iter().filter(|o| o.both.is_some_and(|b| b.1)).count();
            if ongoing > 0 {
                let _ = write!(
                    s,
                    ", still both at the end{}",
                    if os.len() > 1 {
                        format!(" in {ongoing} of {} runs", os.len())
                    } else {
                        String::new()
                    }
                );
            }
            s
        }
        Metric::Settled => {
            let done: Vec<f64> = os.iter().filter_map(|o| o.settled).collect();
            let watched = os.iter().map(|o| o.watched).fold(f64::INFINITY, f64::min);
            if done.len() * 2 > os.len() || (done.len() * 2 == os.len() && !done.is_empty()) {
                let mut s = spread(&done, |x| format!("{x:.1} s"));
                if done.len() < os.len() {
                    let _ = write!(
                        s,
                        "; not settled in {} of {} runs",
                        os.len() - done.len(),
                        os.len()
                    );
                }
                s
            } else {
                let mut s = format!("not settled by {watched:.0} s");
                if !done.is_empty() {
                    let _ = write!(s, " in {} of {} runs", os.len() - done.len(), os.len());
                }
                s
            }
        }
        Metric::Isolated => {
            let v: Vec<f64> = os
                .iter()
                .filter_map(|o| o.clients.iter().find_map(|c| c.isolated_last))
                .collect();
            if v.is_empty() {
                "—".into()
            } else {
                spread(&v, |x| format!("{x:.2} s"))
            }
        }
    };
    if failed > 0 {
        let _ = write!(s, "; {failed} run(s) failed");
    }
    s
}

/// The Markdown table of `results` and the failed runs.
fn render_table(args: &Args, results: &Results) -> (String, Vec<String>) {
    let mut table = Table::new(
        ["scenario", "metric"]
            .into_iter()
            .chain(args.systems.iter().map(|s| match s {
                System::Redha => "redha",
                System::RedhaV3 => "redha, VRRPv3 at 100 ms",
                System::Keepalived => "keepalived + classic notify scripts",
                System::Sentinel => "Redis Sentinel",
            })),
    );
    let mut failures = Vec::new();
    for &scenario in &args.scenarios {
        for (mi, metric) in Metric::rows(scenario).into_iter().enumerate() {
            let label = if mi == 0 {
                format!("{}. {}", scenario.id(), scenario.title())
            } else {
                String::new()
            };
            let mut cells = vec![label, metric.label(scenario).to_owned()];
            for &system in &args.systems {
                let (os, failed) = outcomes(results, system, scenario);
                if mi == 0 {
                    for f in &failed {
                        failures.push(format!(
                            "scenario {} × {}: {f}",
                            scenario.id(),
                            system.name()
                        ));
                    }
                }
                cells.push(metric_cell(&os, failed.len(), metric, system));
            }
            table.row(cells);
        }
    }
    (table.text().to_owned(), failures)
}

#[derive(Clone)]
struct Args {
    advert_int: u64,
    runs: usize,
    systems: Vec<System>,
    scenarios: Vec<Scenario>,
    /// None: the default, [`default_cap`].
    cap: Option<Duration>,
}

/// The shortest watch of a system: for the VIP systems, Master_Down_Interval of host
/// 2 plus two advert intervals and a second (a takeover, lease expiry included, has
/// happened by then); for Sentinel, down-after-milliseconds plus 3 s.
fn min_watch(system: System, advert_int: u64) -> Duration {
    if system.has_vip() {
        plain_node(2, advert_int).master_down_interval() + Duration::from_secs(2 * advert_int + 1)
    } else {
        SentinelSettings::default().down_after + Duration::from_secs(3)
    }
}

/// The default cap of a watch: 40 s, longer with a long advert interval.
fn default_cap(advert_int: u64) -> Duration {
    Duration::from_secs(40).max(min_watch(System::Redha, advert_int) + Duration::from_secs(25))
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        advert_int: 1,
        runs: 3,
        systems: Vec::new(),
        scenarios: Vec::new(),
        cap: None,
    };
    let mut flags = Flags::from_env();
    while let Some(flag) = flags.next_flag() {
        match flag.as_str() {
            "--advert-int" => a.advert_int = flags.advert_int()?,
            "--runs" => a.runs = flags.runs()?,
            "--cap" => {
                let v = flags.value("--cap")?;
                a.cap = v
                    .parse::<u64>()
                    .ok()
                    .filter(|&n| n >= 15)
                    .map(|n| Some(Duration::from_secs(n)))
                    .ok_or_else(|| format!("--cap: `{v}` is not a number of seconds ≥ 15"))?;
            }
            "--only" => {
                for v in flags.value("--only")?.split(',') {
                    let s = System::ALL
                        .into_iter()
                        .find(|s| s.name() == v)
                        .ok_or_else(|| {
                            format!("--only: `{v}` is not redha, redha-v3, keepalived or sentinel")
                        })?;
                    if !a.systems.contains(&s) {
                        a.systems.push(s);
                    }
                }
            }
            "--scenario" | "--scenarios" => {
                for v in flags.value("--scenarios")?.split(',') {
                    let found = Scenario::parse(v.trim()).ok_or_else(|| {
                        format!(
                            "--scenarios: `{v}` is not 1 to 5, a to d, e (e1 and e2), e1, e2 or all"
                        )
                    })?;
                    for s in found {
                        if !a.scenarios.contains(&s) {
                            a.scenarios.push(s);
                        }
                    }
                }
            }
            "-h" | "--help" => {
                return Err(
                    "usage: bench_redis [--scenarios 1,2,3,4,5,a,b,c,d,e1,e2 (e = e1,e2; \
                     default: all)] [--runs N (default 3)] [--advert-int SECONDS (default \
                     1)] [--only redha|redha-v3|keepalived|sentinel[,...]] [--cap SECONDS (default \
                     40, more with a long advert_int; for a to e2 counted from the last \
                     injected step)]"
                        .into(),
                );
            }
            other => return Err(format!("unknown argument `{other}` (try --help)")),
        }
    }
    if a.systems.is_empty() {
        a.systems = System::ALL.to_vec();
    } else {
        a.systems
            .sort_by_key(|s| System::ALL.iter().position(|x| x == s));
    }
    if a.scenarios.is_empty() {
        a.scenarios = Scenario::ALL.to_vec();
    } else {
        a.scenarios.sort_by_key(|s| s.order());
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("bench_redis: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(code) = measure::require_root("bench_redis", "network namespaces, VRRP") {
        return code;
    }
    if args.systems.contains(&System::Keepalived) && keepalived::binary().is_none() {
        eprintln!("bench_redis: keepalived is not installed: apt-get install keepalived");
        return ExitCode::from(1);
    }
    let redha_bin = if args.systems.iter().any(|s| s.is_redha()) {
        match measure::require_redha_bin("bench_redis") {
            Ok(p) => Some(p),
            Err(code) => return code,
        }
    } else {
        None
    };
    if !require_netns("bench_redis") || !require_redis("bench_redis") {
        eprintln!("bench_redis: network namespaces or redis-server unusable here (see above)");
        return ExitCode::from(1);
    }

    let cap = args.cap.unwrap_or_else(|| default_cap(args.advert_int));
    let began = Instant::now();
    let total = args.runs * args.scenarios.len() * args.systems.len();
    eprintln!(
        "bench_redis: {} × scenarios {:?} × {} run(s) = {total} cells; advert_int {} s; \
         watch cap {:.0} s; redha {}",
        args.systems
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", "),
        args.scenarios.iter().map(|s| s.id()).collect::<Vec<_>>(),
        args.runs,
        args.advert_int,
        cap.as_secs_f64(),
        redha_bin
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "-".into()),
    );
    let results: Arc<Mutex<Results>> = Arc::new(Mutex::new(Vec::new()));
    // The watchdog: a cell that outlives every bounded wait by CELL_SLACK ends the
    // benchmark, after printing what was measured.
    let current: Arc<Mutex<Option<(Instant, String)>>> = Arc::new(Mutex::new(None));
    {
        let current = Arc::clone(&current);
        let results = Arc::clone(&results);
        let args = args.clone();
        thread::spawn(move || {
            loop {
                sleep(Duration::from_secs(1));
                let over = lock(&current)
                    .as_ref()
                    .filter(|(deadline, _)| Instant::now() >= *deadline)
                    .map(|(_, what)| what.clone());
                if let Some(what) = over {
                    eprintln!("bench_redis: {what} is hung (past every bounded wait): aborting");
                    let (text, failures) = render_table(&args, &lock(&results));
                    println!("{text}");
                    println!("(aborted: {what} hung; the table holds the cells finished before)");
                    measure::print_list("Failed runs", &failures);
                    std::process::exit(3);
                }
            }
        });
    }
    let cell_limit = SETUP_TIMEOUT + STEADY + TAKEOVER_TIMEOUT + SPLIT + cap + CELL_SLACK;
    let mut n = 0;
    for run in 1..=args.runs {
        for (si, &scenario) in args.scenarios.iter().enumerate() {
            // Rotate the order of the systems from cell to cell.
            let k = args.systems.len();
            let order: Vec<System> = (0..k)
                .map(|j| args.systems[(j + run - 1 + si) % k])
                .collect();
            for system in order {
                n += 1;
                let tag = format!("br{}{}{run}", system.tag(), scenario.id());
                eprintln!(
                    "[{n}/{total}] scenario {} × {}, run {run} ({:.0} s elapsed): {}",
                    scenario.id(),
                    system.name(),
                    began.elapsed().as_secs_f64(),
                    scenario.title()
                );
                *lock(&current) = Some((
                    Instant::now() + cell_limit,
                    format!(
                        "cell {n} (scenario {} × {}, run {run})",
                        scenario.id(),
                        system.name()
                    ),
                ));
                let result = catch_unwind(AssertUnwindSafe(|| {
                    let lab = Lab::new(&tag, scenario.hosts());
                    eprintln!("    lab {}", lab.dir().display());
                    let cell = Cell {
                        lab: &lab,
                        system,
                        scenario,
                        advert_int: args.advert_int,
                        cap,
                        min_watch: min_watch(system, args.advert_int),
                    };
                    run_cell(&cell)
                }))
                .unwrap_or_else(|p| Err(panic_text(p)));
                *lock(&current) = None;
                match &result {
                    Ok(o) => eprintln!(
                        "    => {}; both held the VIP {}, settled {}{}",
                        o.clients
                            .iter()
                            .map(|c| format!(
                                "host {}: gap {:.2} s{}, lost {}{}",
                                c.host,
                                c.gap,
                                if c.gap_open { " (open)" } else { "" },
                                c.lost
                                    .map(|l| format!("{l} of {}", c.acked))
                                    .unwrap_or_else(|| "?".into()),
                                c.saved
                                    .map(|s| format!(" ({s} in saved datasets)"))
                                    .unwrap_or_default()
                            ))
                            .collect::<Vec<_>>()
                            .join("; "),
                        o.both
                            .map(|(b, end)| format!(
                                "{b:.2} s{}",
                                if end { " (still at the end)" } else { "" }
                            ))
                            .unwrap_or_else(|| "n/a".into()),
                        o.settled
                            .map(|s| format!("after {s:.1} s"))
                            .unwrap_or_else(|| format!("not by {:.0} s", o.watched)),
                        o.clients
                            .iter()
                            .find_map(|c| c.isolated_last)
                            .map(|t| format!("; isolated side's last ack {t:.2} s into the split"))
                            .unwrap_or_default(),
                    ),
                    Err(e) => eprintln!("    => FAILED: {e}"),
                }
                lock(&results).push((system, scenario, result));
            }
        }
        if run < args.runs {
            let (text, _) = render_table(&args, &lock(&results));
            eprintln!(
                "bench_redis: the table after {run} of {} runs ({:.0} s elapsed):\n{text}",
                args.runs,
                began.elapsed().as_secs_f64()
            );
        }
    }
    let elapsed = began.elapsed().as_secs_f64();
    let results = lock(&results).clone();
    let (text, failures) = render_table(&args, &results);
    println!("{text}");

    let ka_version = measure::version(
        keepalived::binary()
            .map(|p| p.display().to_string())
            .as_deref()
            .unwrap_or("keepalived"),
        &["--version"],
    );
    let redis_version = measure::version("/usr/bin/redis-server", &["--version"]);
    println!(
        "Method: one invocation ran every cell ({} run(s) per cell; cells show the median, \
         with min–max when there are several runs; the order of the systems rotates from \
         cell to cell). Each cell is a fresh lab of three network namespaces on one bridge \
         (hosts 192.0.2.11–13), redis-server ({redis_version}) on hosts 1 and 2 with \
         Redis defaults and no persistence (`save \"\"`, diskless sync with a 5 s delay), \
         and a client on host 3 that sends `SET k:<n> <n>` every {} ms, one at a time \
         (connect timeout 200 ms, I/O timeout 500 ms, a new connection after any \
         failure), recording each acknowledged write. redha: priorities {HIGH}/{LOW}, \
         advert_int {} s, nopreempt, `[redis]` and `[replication]` with defaults, both \
         started at once. keepalived ({ka_version}): the classic setup of DESIGN.md, \
         both `state BACKUP`, `nopreempt`, the same priorities and advert_int (the \
         classic config uses 5 s: `--advert-int 5`), `vrrp_script chk_redis` \
         (`redis-cli -h 127.0.0.1 PING`, interval 1, fall 2, rise 2) tracked, \
         notify_backup = sleep {} s (host 1) / {} s (host 2) then `SLAVEOF <peer> 6379`, \
         notify_master = `SLAVEOF <peer> 6379`, sleep {} s, `SLAVEOF NO ONE`; started \
         with the classic manual ritual (host 2 syncs from host 1 and is detached with \
         `SLAVEOF NO ONE`, keepalived starts on host 1, then on host 2 once host 1 holds \
         the VIP) and measured only once its scripts had finished. redha and keepalived \
         clients write to the VIP {VIP}:6379. Sentinel: one sentinel per host (hosts 1, \
         2 and the client's host 3), quorum 2, down-after-milliseconds 2000, \
         failover-timeout 10000, monitoring host 1 with host 2 its replica; the client \
         asks its local sentinel (`SENTINEL get-master-addr-by-name mymaster`) before \
         connecting and again after every failed write (it does not subscribe to \
         `+switch-master`), so it stays on a master that Sentinel has replaced but not \
         yet reconfigured, as long as that master accepts its writes; no VIP (n/a). \
         Every cell waits \
         for a settled pair, writes {} s, then injects the fault on the master's host. \
         Scenario 1 kills redis-server with SIGKILL and restarts it empty {} s after the \
         kill; 2 SIGKILLs the agent (keepalived: its VRRP child and its parent; Sentinel: \
         the sentinel on the master's host, which changes nothing) and does not restart \
         it; 3 sends SIGTERM to the master's agent (Sentinel: `SENTINEL FAILOVER \
         mymaster`); 4 kills redis-server and restarts it empty at once; 5 takes the \
         master's host off the bridge for {} s (it loses the client too). Metrics: the \
         longest gap between two acknowledged writes (or from the last one to the end of \
         the watch, when no write was acknowledged since); acknowledged writes missing \
         (`MGET`) on the final master, i.e. the Redis the client reaches through the VIP \
         at the end, or the master the client's sentinel names; the time during which \
         hosts 1 and 2 both had the VIP on eth0 (polled every {} ms, from the fault to \
         the end of the watch); time to a settled pair = from the fault to the start of \
         the final stretch during which one host held the VIP (Sentinel: every answering \
         sentinel, at least two, named the same master), its Redis was master and the \
         other Redis its replica with `master_link_status:up` (polled every {} ms from \
         each host itself). A watch ends once the pair has been settled for {} s after \
         the last injected step and at least {:.1} s (redha, keepalived: \
         Master_Down_Interval({LOW}) + 2 × advert_int + 1 s) or {:.0} s (Sentinel: \
         down-after + 3 s) after the fault (keepalived: and no notify script still \
         runs), or {:.0} s after the fault (\"not settled by N s\"). Total runtime \
         {elapsed:.0} s.",
        args.runs,
        WRITE_INTERVAL.as_millis(),
        args.advert_int,
        classic::BACKUP_SLEEP[0],
        classic::BACKUP_SLEEP[1],
        classic::MASTER_SLEEP,
        STEADY.as_secs(),
        RESTART_AFTER.as_secs(),
        PARTITION.as_secs(),
        HOLDER_POLL.as_millis(),
        STATUS_POLL.as_millis(),
        HOLD.as_secs(),
        min_watch(System::Redha, args.advert_int).as_secs_f64(),
        min_watch(System::Sentinel, args.advert_int).as_secs_f64(),
        cap.as_secs_f64(),
    );
    println!(
        "\nScenarios a to e2 (issue 7): every new scenario runs with the persistence or sync \
         settings users run: a, b and d with Redis 7's default RDB snapshots (no `save` \
         line), c with `appendonly yes` and `appendfsync always`, e1 with \
         `repl-diskless-sync no`, e2 with `repl-diskless-sync yes` and \
         `repl-diskless-sync-delay 0`; their watch, cap and time to a settled pair count \
         from the last injected step. a: {:.0} s into the steady writes the master's Redis \
         takes a snapshot (`SAVE`, standing in for the save points), so the dump.rdb it \
         restarts from is older than its data; it is SIGKILLed, and once host 2 holds the \
         VIP (Sentinel: host 3's sentinel names it) with its Redis a master (at most {:.0} \
         s), restarted from its files. b: as 5, with RDB snapshots on. c: the agents \
         (keepalived and its notify scripts; Sentinel: the sentinels on hosts 1 and 2) \
         and both redis-server SIGKILLed together, the VIP deleted from both hosts, {:.0} \
         s off, both Redis started from their files, then both agents started at once \
         (keepalived without the manual ritual; sentinels from the configuration they \
         rewrote). d: a fourth host, a second client on host 4 (keys c4:<n>, the first \
         writes c3:<n>); the switch is cut in two (hosts 1 + 4 and 2 + 3, every link \
         keeps its carrier) for {} s; redha with `isolation_timeout = \"{ISOLATION_TIMEOUT}\"` \
         and `witnesses = [\"<host 3>:{WITNESS_PORT}\"]` (nothing listens there: a refused \
         connection is an answer); the Sentinel client on host 4 asks the sentinel on host \
         1; \"isolated side\" = the time from the split to the last write the host-4 client \
         had acknowledged before the heal. Saved datasets (redha): every RDB file in \
         `<state_dir>/saved/` of both hosts is loaded into a scratch redis-server and the \
         writes missing on the final master are looked up in it.",
        SNAPSHOT_AFTER.as_secs_f64(),
        TAKEOVER_TIMEOUT.as_secs_f64(),
        POWER_OFF.as_secs_f64(),
        SPLIT.as_secs(),
    );
    println!("\nPer cell (lab directories under /tmp/redha-netns keep every log):");
    for (system, scenario, r) in &results {
        match r {
            Ok(o) => println!("- {}. {}: {}", scenario.id(), system.name(), o.detail),
            Err(e) => println!("- {}. {}: failed: {e}", scenario.id(), system.name()),
        }
    }
    measure::print_list("Failed runs", &failures);
    measure::finish("bench_redis", elapsed);
    ExitCode::SUCCESS
}
