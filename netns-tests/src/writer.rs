//! A client that writes sequential keys (through the VIP, typically) and
//! records which writes Redis acknowledged, so a test can check afterwards
//! that no acknowledged write was lost and how long writes were refused.
//!
//! ```no_run
//! use std::net::SocketAddrV4;
//! use std::time::Duration;
//! use netns_tests::writer::{Writer, missing_keys};
//! # fn demo(lab: &netns_tests::Lab) {
//! let vip: SocketAddrV4 = "192.0.2.100:6379".parse().unwrap();
//! let w = Writer::start(lab, 3, vip, Duration::from_millis(10));
//! std::thread::sleep(Duration::from_secs(1));
//! let log = w.stop();
//! let lost = missing_keys(lab, 3, vip, &log.acked_keys());
//! assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
//! # }
//! ```
//!
//! Two clients on either side of a split, each with its own keys, accounted
//! for separately against the final master:
//!
//! ```no_run
//! # use std::net::SocketAddrV4;
//! # use std::time::Duration;
//! use netns_tests::writer::{Writer, account};
//! # fn demo(lab: &netns_tests::Lab, master: SocketAddrV4) {
//! # let vip: SocketAddrV4 = "192.0.2.100:6379".parse().unwrap();
//! let writers = Writer::start_clients(lab, &[3, 4], vip, Duration::from_millis(10));
//! // ... lab.split(&[1, 4]) ... lab.heal_split() ...
//! let logs: Vec<_> = writers.into_iter().map(Writer::stop).collect();
//! for a in account(lab, 3, master, &logs.iter().collect::<Vec<_>>()) {
//!     println!("{}", a.summary());
//! }
//! # }
//! ```

use std::fs::File;
use std::net::{SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::Lab;
use crate::redis::{Error, Reply, Resp, lab_connect};

/// Connect timeout of the writer's connections.
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);

/// Read and write timeout of the writer's connections.
pub const IO_TIMEOUT: Duration = Duration::from_millis(500);

/// Pause after a failed write before the next attempt (on a new connection).
pub const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Keys checked per `MGET` by [`missing_keys`].
pub const CHECK_BATCH: usize = 500;

/// The key prefix of [`Writer::start`] and [`Writer::start_with`].
pub const DEFAULT_PREFIX: &str = "k:";

/// The key written for sequence number `n`: `k:<n>` (its value is `n`).
pub fn key(n: u64) -> String {
    prefixed_key(DEFAULT_PREFIX, n)
}

/// The key a writer with key prefix `prefix` writes for sequence number `n`:
/// `<prefix><n>` (its value is `n`).
pub fn prefixed_key(prefix: &str, n: u64) -> String {
    format!("{prefix}{n}")
}

/// The key prefix for a client on host `i` when several write at once:
/// `c<i>:` (so `c3:1`, `c3:2`, ... and `c4:1`, ...).
pub fn client_prefix(i: usize) -> String {
    format!("c{i}:")
}

/// What a [`Writer`] did.
#[derive(Clone, Debug)]
pub struct WriteLog {
    /// Acknowledged writes (`+OK`): sequence number and when the reply came,
    /// counted from `started`. In increasing order of both.
    pub acked: Vec<(u64, Duration)>,
    /// Writes that were not acknowledged (error reply, timeout, connection
    /// refused or lost). Each may or may not have been applied.
    pub failures: usize,
    /// Writes attempted: sequence numbers `1..=attempts` were used.
    pub attempts: u64,
    /// When the writer started.
    pub started: Instant,
    /// Each failure: sequence number, when (from `started`) and why.
    pub errors: Vec<(u64, Duration, String)>,
    /// The key prefix: sequence number `n` was written as `<prefix><n>`.
    pub prefix: String,
    /// The host the writer ran in (0 in logs built by hand).
    pub client_host: usize,
}

impl WriteLog {
    pub(crate) fn new(prefix: &str, client_host: usize) -> WriteLog {
        WriteLog {
            acked: Vec::new(),
            failures: 0,
            attempts: 0,
            started: Instant::now(),
            errors: Vec::new(),
            prefix: prefix.to_owned(),
            client_host,
        }
    }

    /// The key of sequence number `n` in this log.
    pub fn key(&self, n: u64) -> String {
        prefixed_key(&self.prefix, n)
    }

    /// When the write of sequence number `n` was acknowledged (from
    /// `started`), if it was.
    pub fn acked_at(&self, n: u64) -> Option<Duration> {
        self.acked
            .binary_search_by_key(&n, |&(m, _)| m)
            .ok()
            .map(|i| self.acked[i].1)
    }

    /// Acknowledged sequence numbers whose acknowledgement came within
    /// `[from, to]` (from `started`).
    pub fn acked_between(&self, from: Duration, to: Duration) -> Vec<u64> {
        self.acked
            .iter()
            .filter(|&&(_, at)| at >= from && at <= to)
            .map(|&(n, _)| n)
            .collect()
    }

    /// Sequence numbers of the acknowledged writes.
    pub fn acked_keys(&self) -> Vec<u64> {
        self.acked.iter().map(|&(n, _)| n).collect()
    }

    /// The last acknowledged sequence number.
    pub fn last_acked(&self) -> Option<u64> {
        self.acked.last().map(|&(n, _)| n)
    }

    /// The longest interval between two consecutive acknowledgements (zero
    /// with fewer than two). With writes every few ms this is about how long
    /// writes were refused during a failover.
    pub fn longest_gap(&self) -> Duration {
        self.acked
            .windows(2)
            .map(|w| w[1].1.saturating_sub(w[0].1))
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Acknowledged writes for which `present` says no.
    pub fn lost(&self, present: impl Fn(u64) -> bool) -> Vec<u64> {
        self.acked
            .iter()
            .map(|&(n, _)| n)
            .filter(|&n| !present(n))
            .collect()
    }

    /// A one-line summary for messages.
    pub fn summary(&self) -> String {
        let first_errors: Vec<&str> = self
            .errors
            .iter()
            .take(3)
            .map(|(_, _, e)| e.as_str())
            .collect();
        format!(
            "{}{} attempts, {} acked (last {:?}), {} failures {first_errors:?}, longest gap {:?}",
            if self.client_host == 0 {
                String::new()
            } else {
                format!("client on host {} ({}*): ", self.client_host, self.prefix)
            },
            self.attempts,
            self.acked.len(),
            self.last_acked(),
            self.failures,
            self.longest_gap()
        )
    }
}

fn lock(m: &Mutex<WriteLog>) -> MutexGuard<'_, WriteLog> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A thread inside a client host that sends `SET k:<n> <n>` for
/// n = 1, 2, 3, ... one at a time, one every `interval`, to one address
/// ([`start`](Writer::start)) or to the one a function names
/// ([`start_with`](Writer::start_with)). Several clients writing at once use
/// a key prefix each ([`start_prefixed`](Writer::start_prefixed),
/// [`client_prefix`]), and [`account`] checks each one's acknowledged writes.
///
/// A write is acknowledged when `+OK` comes back. Anything else (an error
/// reply such as `-READONLY`, a timeout, a refused or lost connection) is a
/// failure: the connection is dropped, the next write goes to a new
/// connection after [`RETRY_PAUSE`], and the failed number is not retried.
///
/// Dropping a `Writer` stops it; [`stop`](Writer::stop) also returns the log.
pub struct Writer {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<WriteLog>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("log", &lock(&self.log).summary())
            .finish()
    }
}

fn ns_file(ns: &str) -> PathBuf {
    let run = PathBuf::from("/run/netns").join(ns);
    if run.exists() {
        run
    } else {
        PathBuf::from("/var/run/netns").join(ns)
    }
}

impl Writer {
    /// Starts writing from host `client_host` to `target`. Returns once the
    /// thread is inside the host's namespace; panics if it cannot get there.
    pub fn start(
        lab: &Lab,
        client_host: usize,
        target: impl Into<SocketAddr>,
        interval: Duration,
    ) -> Writer {
        let target = target.into();
        Writer::start_with(lab, client_host, move || Ok(target), interval)
    }

    /// Like [`start`](Writer::start), but the target is found by `resolve`, called
    /// in the client host's namespace before every new connection: before the
    /// first write and before the write after each failure. If it fails, so does
    /// the write it was called for (the error is the write's).
    pub fn start_with<A: Into<SocketAddr>>(
        lab: &Lab,
        client_host: usize,
        resolve: impl FnMut() -> Result<A, Error> + Send + 'static,
        interval: Duration,
    ) -> Writer {
        Writer::start_with_prefix(lab, client_host, DEFAULT_PREFIX, resolve, interval)
    }

    /// Like [`start`](Writer::start), writing `<prefix><n>` instead of
    /// `k:<n>`: one of several clients writing at once, each with its own
    /// keys (`Writer::start_prefixed(lab, 4, &client_prefix(4), vip, every)`).
    pub fn start_prefixed(
        lab: &Lab,
        client_host: usize,
        prefix: &str,
        target: impl Into<SocketAddr>,
        interval: Duration,
    ) -> Writer {
        let target = target.into();
        Writer::start_with_prefix(lab, client_host, prefix, move || Ok(target), interval)
    }

    /// Like [`start_with`](Writer::start_with), writing `<prefix><n>`. The
    /// prefix is a non-empty word (no whitespace).
    pub fn start_with_prefix<A: Into<SocketAddr>>(
        lab: &Lab,
        client_host: usize,
        prefix: &str,
        mut resolve: impl FnMut() -> Result<A, Error> + Send + 'static,
        interval: Duration,
    ) -> Writer {
        let resolve = move || resolve().map(Into::into);
        assert!(
            !prefix.is_empty() && !prefix.contains(char::is_whitespace),
            "netns-tests: a writer's key prefix is a non-empty word, not `{prefix}`"
        );
        let ns = lab.ns(client_host).to_owned();
        let path = ns_file(&ns);
        let file = File::open(&path)
            .unwrap_or_else(|e| panic!("netns-tests: opening {}: {e}", path.display()));
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(WriteLog::new(prefix, client_host)));
        let (ready_tx, ready_rx) = mpsc::channel();
        let thread = {
            let stop = Arc::clone(&stop);
            let log = Arc::clone(&log);
            thread::Builder::new()
                .name(format!("writer-h{client_host}"))
                .spawn(move || {
                    // SAFETY: setns on a valid netns fd; it only affects this
                    // thread, which lives in the namespace until it ends.
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
                        run(resolve, interval, &stop, &log);
                    }
                })
                .expect("netns-tests: spawning the writer thread")
        };
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("netns-tests: writer cannot enter {ns}: {e}"),
            Err(_) => panic!("netns-tests: writer thread for {ns} died"),
        }
        Writer {
            stop,
            log,
            thread: Some(thread),
        }
    }

    /// One writer per client host in `hosts`, all writing to `target` at
    /// once, each with the key prefix [`client_prefix`] of its host (`c3:`,
    /// `c4:`, ...); in the order of `hosts`.
    pub fn start_clients(
        lab: &Lab,
        hosts: &[usize],
        target: impl Into<SocketAddr> + Copy,
        interval: Duration,
    ) -> Vec<Writer> {
        hosts
            .iter()
            .map(|&h| Writer::start_prefixed(lab, h, &client_prefix(h), target, interval))
            .collect()
    }

    /// A copy of the log so far (the writer keeps running).
    pub fn snapshot(&self) -> WriteLog {
        lock(&self.log).clone()
    }

    /// Number of writes acknowledged so far.
    pub fn acked_count(&self) -> usize {
        lock(&self.log).acked.len()
    }

    /// Number of failed writes so far.
    pub fn failure_count(&self) -> usize {
        lock(&self.log).failures
    }

    /// Waits up to `timeout` until at least `count` writes in all have been
    /// acknowledged.
    pub fn wait_acked(&self, count: usize, timeout: Duration) -> bool {
        crate::wait_until(timeout, Duration::from_millis(5), || {
            self.acked_count() >= count
        })
        .is_some()
    }

    /// Stops the writer (after the write in flight, if any) and returns what
    /// it did.
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

impl Drop for Writer {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Sleeps until `until`, waking early if `stop` is set; returns whether the
/// writer should go on.
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

fn run(
    mut resolve: impl FnMut() -> Result<SocketAddr, Error>,
    interval: Duration,
    stop: &AtomicBool,
    log: &Mutex<WriteLog>,
) {
    let (started, prefix) = {
        let log = lock(log);
        (log.started, log.prefix.clone())
    };
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
            None => {
                resolve().and_then(|target| Resp::connect_with(target, CONNECT_TIMEOUT, IO_TIMEOUT))
            }
        }
        .and_then(|mut c| {
            let r = c.command(&["SET", &prefixed_key(&prefix, n), &value]);
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

/// Which of the `acked` sequence numbers are missing on the Redis at
/// `redis_addr` (absent, or holding another value), checked from host
/// `from_host` with `MGET` in batches of [`CHECK_BATCH`]. Panics if the
/// Redis cannot be queried.
pub fn missing_keys(
    lab: &Lab,
    from_host: usize,
    redis_addr: SocketAddrV4,
    acked: &[u64],
) -> Vec<u64> {
    missing_prefixed_keys(lab, from_host, redis_addr, DEFAULT_PREFIX, acked)
}

/// Like [`missing_keys`], for the keys `<prefix><n>` of a prefixed writer.
pub fn missing_prefixed_keys(
    lab: &Lab,
    from_host: usize,
    redis_addr: SocketAddrV4,
    prefix: &str,
    acked: &[u64],
) -> Vec<u64> {
    let mut conn =
        lab_connect(lab, from_host, redis_addr, Duration::from_secs(5)).unwrap_or_else(|e| {
            panic!("netns-tests: connecting to {redis_addr} from host {from_host}: {e}")
        });
    let mut missing = Vec::new();
    for batch in acked.chunks(CHECK_BATCH) {
        let mut cmd = vec!["MGET".to_owned()];
        cmd.extend(batch.iter().map(|&n| prefixed_key(prefix, n)));
        let reply = conn
            .command(&cmd)
            .unwrap_or_else(|e| panic!("netns-tests: MGET on {redis_addr}: {e}"));
        let Reply::Array(values) = reply else {
            panic!("netns-tests: MGET on {redis_addr}: unexpected {reply:?}");
        };
        assert_eq!(
            values.len(),
            batch.len(),
            "netns-tests: MGET on {redis_addr}: wrong number of values"
        );
        for (&n, v) in batch.iter().zip(&values) {
            if v.text() != Some(n.to_string()) {
                missing.push(n);
            }
        }
    }
    missing
}

/// One client's acknowledged writes checked against a Redis ([`account`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// The client's host.
    pub client_host: usize,
    /// Its key prefix.
    pub prefix: String,
    /// How many writes it had acknowledged.
    pub acked: usize,
    /// Acknowledged sequence numbers missing on the Redis (absent or holding
    /// another value), ascending.
    pub missing: Vec<u64>,
}

impl Account {
    /// `client on host 3 (c3:*): 812 acknowledged, 0 missing`, with the
    /// missing ranges when there are any.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "client on host {} ({}*): {} acknowledged, {} missing",
            self.client_host,
            self.prefix,
            self.acked,
            self.missing.len()
        );
        if !self.missing.is_empty() {
            s.push_str(&format!(" ({})", ranges(&self.missing)));
        }
        s
    }

    /// The missing writes of `log` (this account's) acknowledged within
    /// `[from, to]` of its start: those lost while, say, the client's side
    /// was cut off.
    pub fn missing_between(&self, log: &WriteLog, from: Duration, to: Duration) -> Vec<u64> {
        self.missing
            .iter()
            .copied()
            .filter(|&n| log.acked_at(n).is_some_and(|at| at >= from && at <= to))
            .collect()
    }
}

/// Checks each writer's acknowledged writes against the Redis at
/// `redis_addr` (the final master, say), from host `from_host`: one
/// [`Account`] per log, in order. The logs must have distinct prefixes.
/// Panics if the Redis cannot be queried.
pub fn account(
    lab: &Lab,
    from_host: usize,
    redis_addr: SocketAddrV4,
    logs: &[&WriteLog],
) -> Vec<Account> {
    for (i, a) in logs.iter().enumerate() {
        assert!(
            logs[..i].iter().all(|b| b.prefix != a.prefix),
            "netns-tests: two writers share the key prefix `{}`",
            a.prefix
        );
    }
    logs.iter()
        .map(|log| Account {
            client_host: log.client_host,
            prefix: log.prefix.clone(),
            acked: log.acked.len(),
            missing: missing_prefixed_keys(
                lab,
                from_host,
                redis_addr,
                &log.prefix,
                &log.acked_keys(),
            ),
        })
        .collect()
}

/// The kind of a write error (an entry of [`WriteLog::errors`]), without the
/// details that change every time: `READONLY`, `NOREPLICAS`, `timeout`,
/// `refused`, `connection lost`, `unreachable`, or else the error itself.
pub fn error_kind(e: &str) -> &str {
    if e.starts_with("-READONLY") {
        "READONLY"
    } else if e.starts_with("-NOREPLICAS") {
        "NOREPLICAS"
    } else if e.contains("timed out") || e.contains("temporarily unavailable") {
        "timeout"
    } else if e.contains("refused") {
        "refused"
    } else if e.contains("reset") || e.contains("closed") {
        "connection lost"
    } else if e.contains("unreachable") {
        "unreachable"
    } else {
        e
    }
}

/// A compact list of numbers: `1-5, 9, 12-13`.
pub fn ranges(ns: &[u64]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < ns.len() {
        let start = ns[i];
        let mut end = start;
        while i + 1 < ns.len() && ns[i + 1] == end + 1 {
            i += 1;
            end = ns[i];
        }
        if !out.is_empty() {
            out.push_str(", ");
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    out
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
            ..WriteLog::new("k:", 0)
        }
    }

    #[test]
    fn keys_with_prefixes() {
        assert_eq!(key(7), "k:7");
        assert_eq!(prefixed_key(&client_prefix(4), 7), "c4:7");
        let l = WriteLog::new("c3:", 3);
        assert_eq!(l.key(12), "c3:12");
        assert!(
            l.summary().starts_with("client on host 3 (c3:*): "),
            "{}",
            l.summary()
        );
    }

    #[test]
    fn acked_at_and_between() {
        let l = log(&[(1, 10), (2, 20), (5, 320), (6, 330)]);
        assert_eq!(l.acked_at(5), Some(Duration::from_millis(320)));
        assert_eq!(l.acked_at(3), None);
        assert_eq!(
            l.acked_between(Duration::from_millis(20), Duration::from_millis(320)),
            [2, 5]
        );
        let a = Account {
            client_host: 3,
            prefix: "k:".into(),
            acked: 4,
            missing: vec![1, 5, 6],
        };
        assert_eq!(
            a.missing_between(&l, Duration::from_millis(300), Duration::MAX),
            [5, 6]
        );
        assert_eq!(
            a.summary(),
            "client on host 3 (k:*): 4 acknowledged, 3 missing (1, 5-6)"
        );
    }

    #[test]
    fn number_ranges() {
        assert_eq!(ranges(&[]), "");
        assert_eq!(ranges(&[1, 2, 3, 5, 7, 8]), "1-3, 5, 7-8");
    }

    #[test]
    fn longest_gap_between_acks() {
        assert_eq!(log(&[]).longest_gap(), Duration::ZERO);
        assert_eq!(log(&[(1, 5)]).longest_gap(), Duration::ZERO);
        let l = log(&[(1, 10), (2, 20), (5, 320), (6, 330)]);
        assert_eq!(l.longest_gap(), Duration::from_millis(300));
        assert_eq!(l.acked_keys(), [1, 2, 5, 6]);
        assert_eq!(l.last_acked(), Some(6));
    }

    #[test]
    fn lost_lists_absent_acked_keys() {
        let l = log(&[(1, 1), (2, 2), (4, 4)]);
        assert_eq!(l.lost(|n| n != 2), [2]);
        assert!(l.lost(|_| true).is_empty());
    }
}
