//! Redis Sentinel in a [`Lab`]: one sentinel per host (`redis-server CONF --sentinel`,
//! port [`SENTINEL_PORT`]), and a client that finds the master through its local
//! sentinel ([`start_writer`]), as a Sentinel-aware Redis client does.

use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Command;
use std::time::Duration;

use crate::redis::{Error, REDIS_PORT, REDIS_SERVER, Reply, Resp, lab_connect};
use crate::writer::Writer;
use crate::{Lab, Proc};

/// The port every lab sentinel listens on.
pub const SENTINEL_PORT: u16 = 26379;

/// The name the sentinels monitor the pair under.
pub const MASTER_NAME: &str = "mymaster";

/// Timeout of one question to a sentinel.
pub const SENTINEL_TIMEOUT: Duration = Duration::from_millis(500);

/// A sentinel's monitoring settings.
#[derive(Clone, Debug)]
pub struct SentinelSettings {
    /// Sentinels that must agree that the master is down (`quorum`).
    pub quorum: u32,
    /// `down-after-milliseconds`.
    pub down_after: Duration,
    /// `failover-timeout`.
    pub failover_timeout: Duration,
}

impl Default for SentinelSettings {
    fn default() -> Self {
        SentinelSettings {
            quorum: 2,
            down_after: Duration::from_millis(2000),
            failover_timeout: Duration::from_millis(10_000),
        }
    }
}

/// The sentinel configuration text for a sentinel monitoring `master`:6379.
pub fn config_text(dir: &std::path::Path, master: Ipv4Addr, s: &SentinelSettings) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "port {SENTINEL_PORT}");
    t.push_str("bind 0.0.0.0\nprotected-mode no\ndaemonize no\nlogfile \"\"\n");
    let _ = writeln!(t, "dir {:?}", dir.display().to_string());
    let _ = writeln!(
        t,
        "sentinel monitor {MASTER_NAME} {master} {REDIS_PORT} {}",
        s.quorum
    );
    let _ = writeln!(
        t,
        "sentinel down-after-milliseconds {MASTER_NAME} {}",
        s.down_after.as_millis()
    );
    let _ = writeln!(
        t,
        "sentinel failover-timeout {MASTER_NAME} {}",
        s.failover_timeout.as_millis()
    );
    let _ = writeln!(t, "sentinel parallel-syncs {MASTER_NAME} 1");
    t
}

/// Starts a sentinel on host `i` monitoring `master`:6379; its (rewritable)
/// configuration is `<lab dir>/sentinel-h<i>.conf`, its log `sentinel-h<i>.log`.
pub fn start(lab: &Lab, i: usize, master: Ipv4Addr, settings: &SentinelSettings) -> Proc {
    let dir = lab.dir().join(format!("sentinel-h{i}"));
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let conf = lab.dir().join(format!("sentinel-h{i}.conf"));
    fs::write(&conf, config_text(&dir, master, settings))
        .unwrap_or_else(|e| panic!("writing {}: {e}", conf.display()));
    let mut c = Command::new(REDIS_SERVER);
    c.arg(&conf).arg("--sentinel");
    lab.spawn_command(i, &format!("sentinel-h{i}"), &c)
}

/// Address of host `i`'s sentinel.
pub fn addr(lab: &Lab, i: usize) -> SocketAddrV4 {
    SocketAddrV4::new(lab.addr(i), SENTINEL_PORT)
}

/// One command to host `i`'s sentinel, from host `i` itself.
pub fn query(lab: &Lab, i: usize, cmd: &[&str]) -> Result<Reply, Error> {
    lab_connect(lab, i, addr(lab, i), SENTINEL_TIMEOUT)?.command(cmd)
}

/// Parses the reply of `SENTINEL get-master-addr-by-name`.
pub fn parse_master_addr(reply: &Reply) -> Result<Option<SocketAddrV4>, Error> {
    match reply {
        Reply::Bulk(None) => Ok(None),
        Reply::Array(items) if items.len() == 2 => {
            let ip = items[0].text().unwrap_or_default();
            let port = items[1].text().unwrap_or_default();
            let ip: Ipv4Addr = ip
                .parse()
                .map_err(|_| Error::Protocol(format!("master address `{ip}`")))?;
            let port: u16 = port
                .parse()
                .map_err(|_| Error::Protocol(format!("master port `{port}`")))?;
            Ok(Some(SocketAddrV4::new(ip, port)))
        }
        Reply::Error(e) => Err(Error::Server(e.clone())),
        r => Err(Error::Protocol(format!(
            "get-master-addr-by-name: unexpected {r:?}"
        ))),
    }
}

/// The master host `i`'s sentinel names now (asked from host `i`).
pub fn master_addr(lab: &Lab, i: usize) -> Result<Option<SocketAddrV4>, Error> {
    let reply = query(
        lab,
        i,
        &["SENTINEL", "get-master-addr-by-name", MASTER_NAME],
    )?;
    parse_master_addr(&reply)
}

/// Number of entries in the array reply of `SENTINEL <what> mymaster`
/// (`replicas`, `sentinels`) on host `i`'s sentinel.
pub fn count(lab: &Lab, i: usize, what: &str) -> Result<usize, Error> {
    match query(lab, i, &["SENTINEL", what, MASTER_NAME])? {
        Reply::Array(items) => Ok(items.len()),
        Reply::Error(e) => Err(Error::Server(e)),
        r => Err(Error::Protocol(format!(
            "SENTINEL {what}: unexpected {r:?}"
        ))),
    }
}

/// Is host `i`'s sentinel ready: it knows `replicas` replicas and `peers` other
/// sentinels, and `SENTINEL CKQUORUM` is satisfied?
pub fn ready(lab: &Lab, i: usize, replicas: usize, peers: usize) -> bool {
    let quorum_ok = matches!(
        query(lab, i, &["SENTINEL", "CKQUORUM", MASTER_NAME]),
        Ok(Reply::Simple(_))
    );
    quorum_ok
        && count(lab, i, "replicas").is_ok_and(|n| n >= replicas)
        && count(lab, i, "sentinels").is_ok_and(|n| n >= peers)
}

/// Starts a [`Writer`] (a `SET k:<n> <n>` every `interval`, one at a time, on host
/// `client_host`, recording acknowledged writes in its [`WriteLog`](crate::writer::WriteLog))
/// whose target comes from Sentinel: before connecting, the writer asks the sentinel at
/// `sentinel` (`SENTINEL get-master-addr-by-name`); after any failed write (error
/// reply such as `-READONLY`, timeout, refused or lost connection) it drops the
/// connection and asks again before the next write. Returns once the thread is inside
/// the host's namespace.
pub fn start_writer(
    lab: &Lab,
    client_host: usize,
    sentinel: SocketAddrV4,
    interval: Duration,
) -> Writer {
    Writer::start_with(lab, client_host, move || ask_master(sentinel), interval)
}

/// Asks the sentinel at `sentinel` for the master's address.
fn ask_master(sentinel: SocketAddrV4) -> Result<SocketAddrV4, Error> {
    let mut s = Resp::connect(sentinel, SENTINEL_TIMEOUT)?;
    let reply = s.command(&["SENTINEL", "get-master-addr-by-name", MASTER_NAME])?;
    parse_master_addr(&reply)?.ok_or_else(|| Error::Protocol("the sentinel knows no master".into()))
}
