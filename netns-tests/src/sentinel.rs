//! Redis Sentinel in a [`Lab`]: one sentinel per host (`redis-server CONF --sentinel`,
//! port [`SENTINEL_PORT`]), and a client that finds the master through its local
//! sentinel ([`SentinelWriter`]), as a Sentinel-aware Redis client does.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::redis::{Error, REDIS_PORT, REDIS_SERVER, Reply, Resp, lab_connect};
use crate::writer::{CONNECT_TIMEOUT, IO_TIMEOUT, RETRY_PAUSE, WriteLog, key};
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

fn lock(m: &Mutex<WriteLog>) -> MutexGuard<'_, WriteLog> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn ns_file(ns: &str) -> PathBuf {
    let run = PathBuf::from("/run/netns").join(ns);
    if run.exists() {
        run
    } else {
        PathBuf::from("/var/run/netns").join(ns)
    }
}

/// Like [`Writer`](crate::writer::Writer) (a `SET k:<n> <n>` every `interval`, one at
/// a time, on host `client_host`, recording acknowledged writes in a [`WriteLog`]), but
/// the target comes from Sentinel: before connecting, the writer asks the sentinel at
/// `sentinel` (`SENTINEL get-master-addr-by-name`); after any failed write (error
/// reply such as `-READONLY`, timeout, refused or lost connection) it drops the
/// connection and asks again before the next write.
pub struct SentinelWriter {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<WriteLog>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for SentinelWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelWriter")
            .field("log", &lock(&self.log).summary())
            .finish()
    }
}

impl SentinelWriter {
    /// Starts writing from host `client_host`, asking the sentinel at `sentinel` for
    /// the master. Returns once the thread is inside the host's namespace.
    pub fn start(
        lab: &Lab,
        client_host: usize,
        sentinel: SocketAddrV4,
        interval: Duration,
    ) -> SentinelWriter {
        let ns = lab.ns(client_host).to_owned();
        let path = ns_file(&ns);
        let file = File::open(&path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(WriteLog {
            acked: Vec::new(),
            failures: 0,
            attempts: 0,
            started: Instant::now(),
            errors: Vec::new(),
        }));
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = {
            let stop = Arc::clone(&stop);
            let log = Arc::clone(&log);
            thread::Builder::new()
                .name(format!("sentinel-writer-h{client_host}"))
                .spawn(move || {
                    // SAFETY: setns on a valid netns fd; only this thread moves.
                    let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                    let entered = if r == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    };
                    drop(file);
                    let ok = entered.is_ok();
                    let _ = ready_tx.send(entered);
                    if ok {
                        run(sentinel, interval, &stop, &log);
                    }
                })
                .expect("spawning the sentinel writer thread")
        };
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("sentinel writer cannot enter {ns}: {e}"),
            Err(_) => panic!("sentinel writer thread for {ns} died"),
        }
        SentinelWriter {
            stop,
            log,
            thread: Some(thread),
        }
    }

    /// A copy of the log so far.
    pub fn snapshot(&self) -> WriteLog {
        lock(&self.log).clone()
    }

    /// Number of writes acknowledged so far.
    pub fn acked_count(&self) -> usize {
        lock(&self.log).acked.len()
    }

    /// Stops the writer and returns what it did.
    pub fn stop(mut self) -> WriteLog {
        self.halt();
        lock(&self.log).clone()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take()
            && let Err(panic) = t.join()
            && !thread::panicking()
        {
            std::panic::resume_unwind(panic);
        }
    }
}

impl Drop for SentinelWriter {
    fn drop(&mut self) {
        self.halt();
    }
}

fn pause_until(until: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        thread::sleep((until - now).min(Duration::from_millis(20)));
    }
}

/// Asks the sentinel for the master and connects to it.
fn connect_master(sentinel: SocketAddrV4) -> Result<Resp, Error> {
    let mut s = Resp::connect(sentinel, SENTINEL_TIMEOUT)?;
    let reply = s.command(&["SENTINEL", "get-master-addr-by-name", MASTER_NAME])?;
    let master = parse_master_addr(&reply)?
        .ok_or_else(|| Error::Protocol("the sentinel knows no master".into()))?;
    Resp::connect_with(SocketAddr::V4(master), CONNECT_TIMEOUT, IO_TIMEOUT)
}

fn run(sentinel: SocketAddrV4, interval: Duration, stop: &AtomicBool, log: &Mutex<WriteLog>) {
    let started = lock(log).started;
    let mut conn: Option<Resp> = None;
    let mut next = Instant::now();
    let mut n: u64 = 0;
    while pause_until(next, stop) {
        n += 1;
        let begun = Instant::now();
        next = begun + interval;
        let value = n.to_string();
        let result = match conn.take() {
            Some(c) => Ok(c),
            None => connect_master(sentinel),
        }
        .and_then(|mut c| {
            let r = c.command(&["SET", &key(n), &value]);
            conn = Some(c);
            r
        });
        let at = started.elapsed();
        let mut log = lock(log);
        log.attempts = n;
        match result {
            Ok(Reply::Simple(s)) if s == "OK" => log.acked.push((n, at)),
            other => {
                let why = match other {
                    Ok(Reply::Error(e)) => format!("-{e}"),
                    Ok(r) => format!("unexpected reply {r:?}"),
                    Err(e) => e.to_string(),
                };
                log.failures += 1;
                log.errors.push((n, at, why));
                conn = None;
                next = next.max(Instant::now() + RETRY_PAUSE);
            }
        }
    }
}
