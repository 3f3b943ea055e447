//! Datasets that redha saved before it resynced a Redis over them, and a
//! scratch `redis-server` to look inside one.
//!
//! Before redha makes a Redis follow a source whose history lacks some of its
//! data, it saves that dataset as an RDB file in `<state_dir>/saved/` and logs
//! the path (`dataset saved before it is resynced over ... saved=<path> (<n>
//! bytes) keys=...`, and `event=saved ... file=...` in the state log).
//! [`saved_snapshots`] finds the files a log names; [`ScratchRedis::load`]
//! starts a throwaway `redis-server` on one of them, inside a lab host and
//! bound to its loopback only, so that a test can check which acknowledged
//! writes the file holds.
//!
//! ```no_run
//! use netns_tests::saved::{ScratchRedis, saved_snapshots};
//! # fn demo(lab: &netns_tests::Lab, redha_log: &str, acked: &[u64]) {
//! for (i, s) in saved_snapshots(redha_log).iter().enumerate() {
//!     let scratch = ScratchRedis::load(lab, 3, 6390 + i as u16, &s.path).unwrap();
//!     let missing = scratch.missing("k:", acked);
//!     println!("{}: {} keys, {} acked writes absent", s.path.display(),
//!              scratch.dbsize().unwrap(), missing.len());
//! }
//! # }
//! ```

use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::redis::{Error, REDIS_SERVER, Resp, lab_connect};
use crate::writer::missing_prefixed_keys;
use crate::{Lab, Proc, wait_until};

/// The message redha logs (at WARN) when it saved a dataset.
pub const SAVED_MESSAGE: &str = "dataset saved before it is resynced over";

/// How long [`ScratchRedis::load`] waits for the server to answer `PING`
/// (loading included).
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(20);

/// A saved dataset named in a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedSnapshot {
    /// The RDB file.
    pub path: PathBuf,
    /// The log line that named it.
    pub line: String,
}

/// The saved datasets that `log` (redha's output) names, in order, once each:
/// every line with [`SAVED_MESSAGE`] gives the first word in it that is a path
/// ending in `.rdb` (quotes and a `key=` prefix stripped).
pub fn saved_snapshots(log: &str) -> Vec<SavedSnapshot> {
    let mut out: Vec<SavedSnapshot> = Vec::new();
    for line in log.lines().filter(|l| l.contains(SAVED_MESSAGE)) {
        let Some(path) = line.split_whitespace().find_map(rdb_path) else {
            continue;
        };
        if out.iter().all(|s| s.path != path) {
            out.push(SavedSnapshot {
                path,
                line: line.to_owned(),
            });
        }
    }
    out
}

/// `word` as an RDB path: `saved=/x/y.rdb`, `"/x/y.rdb"`, `/x/y.rdb,` ...
fn rdb_path(word: &str) -> Option<PathBuf> {
    let word = word.split_once('=').map_or(word, |(_, v)| v);
    let word = word.trim_matches(|c| matches!(c, '"' | '\'' | ',' | ';' | '(' | ')'));
    (word.starts_with('/') && word.ends_with(".rdb")).then(|| PathBuf::from(word))
}

/// A throwaway `redis-server` serving one saved RDB file, in a lab host on
/// `127.0.0.1:<port>` (loopback of that host's namespace only), without
/// persistence of its own. It works on a copy of the file, in
/// `<lab dir>/scratch-<port>/`; the original is left as it is. Dropping it
/// SIGKILLs the server.
pub struct ScratchRedis<'lab> {
    lab: &'lab Lab,
    host: usize,
    port: u16,
    proc: Proc,
}

impl std::fmt::Debug for ScratchRedis<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScratchRedis")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("proc", &self.proc)
            .finish()
    }
}

impl<'lab> ScratchRedis<'lab> {
    /// Copies `rdb` into a directory of its own, starts `redis-server` on it in
    /// host `host` and waits (up to [`LOAD_TIMEOUT`]) until it answers `PING`.
    /// `Err` says why not (the file cannot be copied, or the server exited or
    /// never answered: its log is in the message), so that a test can report a
    /// snapshot that does not load.
    pub fn load(lab: &'lab Lab, host: usize, port: u16, rdb: &Path) -> Result<Self, String> {
        Self::load_within(lab, host, port, rdb, LOAD_TIMEOUT)
    }

    /// Like [`ScratchRedis::load`], waiting up to `timeout` for the server to
    /// answer.
    pub fn load_within(
        lab: &'lab Lab,
        host: usize,
        port: u16,
        rdb: &Path,
        timeout: Duration,
    ) -> Result<Self, String> {
        let dir = lab.dir().join(format!("scratch-{port}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let name = rdb
            .file_name()
            .ok_or_else(|| format!("{} names no file", rdb.display()))?;
        fs::copy(rdb, dir.join(name))
            .map_err(|e| format!("copying {} to {}: {e}", rdb.display(), dir.display()))?;
        let mut conf = String::new();
        let _ = writeln!(conf, "port {port}");
        conf.push_str("bind 127.0.0.1\nprotected-mode no\ndaemonize no\nlogfile \"\"\n");
        conf.push_str("save \"\"\nappendonly no\n");
        let _ = writeln!(conf, "dir {:?}", dir.display().to_string());
        let _ = writeln!(conf, "dbfilename {:?}", name.to_string_lossy());
        let conf_path = lab.dir().join(format!("scratch-{port}.conf"));
        fs::write(&conf_path, conf).map_err(|e| format!("writing {}: {e}", conf_path.display()))?;
        let mut c = Command::new(REDIS_SERVER);
        c.arg(&conf_path);
        let proc = lab.spawn_command(host, &format!("scratch-{port}"), &c);
        let scratch = ScratchRedis {
            lab,
            host,
            port,
            proc,
        };
        let mut last = String::new();
        let up = wait_until(timeout, Duration::from_millis(20), || {
            if !scratch.proc.is_running() {
                return true;
            }
            match scratch.client().and_then(|mut c| c.ping()) {
                Ok(()) => true,
                Err(e) => {
                    last = e.to_string();
                    false
                }
            }
        });
        if !scratch.proc.is_running() || up.is_none() {
            return Err(format!(
                "redis-server on {} in host {host} {} (last: {last}); log:\n{}",
                rdb.display(),
                if scratch.proc.is_running() {
                    "not answering"
                } else {
                    "exited"
                },
                scratch.proc.log()
            ));
        }
        Ok(scratch)
    }

    /// `127.0.0.1:<port>`, reachable from its host only.
    pub fn addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port)
    }

    /// A fresh connection, opened in its host.
    pub fn client(&self) -> Result<Resp, Error> {
        lab_connect(self.lab, self.host, self.addr(), Duration::from_secs(2))
    }

    /// `DBSIZE`.
    pub fn dbsize(&self) -> Result<u64, Error> {
        self.client()?.dbsize()
    }

    /// Which of `acked` (sequence numbers of a writer with key prefix
    /// `prefix`) the file lacks. Panics if the server cannot be queried.
    pub fn missing(&self, prefix: &str, acked: &[u64]) -> Vec<u64> {
        missing_prefixed_keys(self.lab, self.host, self.addr(), prefix, acked)
    }

    /// The server process.
    pub fn proc(&self) -> &Proc {
        &self.proc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_files_a_log_names() {
        let log = "\
2026-12-02T12:00:00.000000Z  INFO redha: something else /x/dump.rdb
2026-12-02T12:00:01.000000Z  WARN redha::coordinator: dataset saved before it is resynced over: its writes past the fork are in this file saved=saved /d/state-h1.d/saved/redha-local-1796.rdb (1234 bytes) keys=17 replid=ab offset=12
2026-12-02T12:00:02.000000Z  WARN redha::coordinator: dataset saved before it is resynced over saved=\"/d/saved/redha-peer-1797.rdb (99 bytes)\" keys=3
2026-12-02T12:00:03.000000Z  WARN redha::coordinator: dataset saved before it is resynced over saved=/d/state-h1.d/saved/redha-local-1796.rdb
2026-12-02T12:00:04.000000Z  WARN redha::coordinator: dataset saved before it is resynced over (no file)
";
        let found = saved_snapshots(log);
        let paths: Vec<&Path> = found.iter().map(|s| s.path.as_path()).collect();
        assert_eq!(
            paths,
            [
                Path::new("/d/state-h1.d/saved/redha-local-1796.rdb"),
                Path::new("/d/saved/redha-peer-1797.rdb"),
            ]
        );
        assert!(found[0].line.contains("keys=17"));
    }

    #[test]
    fn rdb_words() {
        assert_eq!(rdb_path("saved=/a/b.rdb"), Some(PathBuf::from("/a/b.rdb")));
        assert_eq!(rdb_path("\"/a/b.rdb\","), Some(PathBuf::from("/a/b.rdb")));
        assert_eq!(rdb_path("b.rdb"), None);
        assert_eq!(rdb_path("/a/b.rdb.tmp"), None);
    }
}
