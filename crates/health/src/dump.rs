//! Saving a Redis's whole dataset as an RDB file, over the replication
//! protocol, without access to the server's disk (what `redis-cli --rdb`
//! does).
//!
//! [`save_rdb`] connects, logs in as the [`RedisTarget`] says (`AUTH`), and
//! asks for a full synchronisation:
//!
//! 1. `REPLCONF capa eof`: we can take a diskless transfer. Without it a
//!    Redis with `repl-diskless-sync yes` falls back to a disk-based one
//!    (writing its own `dump.rdb`).
//! 2. `REPLCONF rdb-only 1` (Redis ≥ 7.0): send the snapshot, then close;
//!    no replication stream follows. An error reply (older servers) is
//!    ignored: we close the connection after the snapshot ourselves.
//! 3. `SYNC`. While the server prepares the snapshot (a fork, a
//!    `repl-diskless-sync-delay`) it sends a bare `\n` every second; then
//!    either `$<len>\r\n` and `len` bytes (disk-based: the server saved to
//!    its disk first) or `$EOF:<40-byte mark>\r\n`, the bytes and the mark
//!    again (diskless: streamed from the forked child).
//!
//! Each command's reply is read before the next is sent: Redis refuses a
//! `SYNC` that arrives while an earlier reply is still unsent ("SYNC and
//! PSYNC are invalid with pending output").
//!
//! The bytes go to `<dir>/<name>.rdb.tmp` as they arrive (a large dataset is
//! never held in memory), are checked to start with the `REDIS` magic,
//! fsynced, and the file is then linked to `<dir>/<name>.rdb` — never over
//! an existing file: a saved snapshot is evidence, and a second save under
//! the same name is refused ([`DumpErrorKind::Exists`]) — and the directory
//! fsynced. A failed save leaves no file behind (a save cancelled half-way,
//! its future dropped, may leave the `.tmp`, which the next save under that
//! name replaces).
//!
//! Side effects on the server, as observed with Redis 7.0.15:
//!
//! - A Redis without a replication backlog (`repl_backlog_active:0`: it
//!   never had a replica since it started) creates one for the `SYNC` and
//!   takes a **new `master_replid`, clearing `master_replid2`**. Read its
//!   INFO before saving if its history matters; the saved file's header
//!   ([`SavedRdb::header`]) names the id and offset it was taken at.
//! - A disk-based transfer (`repl-diskless-sync no`) rewrites the server's
//!   own `dump.rdb` (as any replica's full sync does).
//! - A replica whose link to its master is down refuses with
//!   `NOMASTERLINK` ([`DumpErrorKind::ErrorReply`]); detach it first
//!   (`REPLICAOF NO ONE`) to save its data.
//!
//! The user needs `+sync` and `+replconf` (see [`mod@crate::preflight`]).

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use crate::client::{AddressError, RedisTarget};
use crate::rdb::{RDB_MAGIC, RdbHeader, RdbHeaderError, parse_rdb_header};

/// Bounds of a [`save_rdb`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DumpOptions {
    /// Bound on the TCP connect. Default 1 s.
    pub connect_timeout: Duration,
    /// Longest silence from the server before it counts as gone; it sends a
    /// `\n` every second while it prepares. Default 5 s.
    pub idle_timeout: Duration,
    /// Bound on the whole save, connect to fsync. Default 60 s.
    pub timeout: Duration,
}

impl Default for DumpOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(60),
        }
    }
}

impl DumpOptions {
    /// All three bounds at most `timeout` (the defaults otherwise).
    pub fn within(timeout: Duration) -> Self {
        let d = Self::default();
        Self {
            connect_timeout: d.connect_timeout.min(timeout),
            idle_timeout: d.idle_timeout.min(timeout),
            timeout,
        }
    }
}

/// How the server sent the snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// `$<len>`: saved to the server's disk first (`repl-diskless-sync no`).
    Disk,
    /// `$EOF:<mark>`: streamed (`repl-diskless-sync yes`).
    Diskless,
}

/// A saved snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedRdb {
    /// `<dir>/<name>.rdb`.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// How the server sent it.
    pub transfer: Transfer,
    /// Its header: format version, and the replication id and offset it
    /// was taken at ([`RdbHeader::repl_id`], [`RdbHeader::repl_offset`]).
    pub header: RdbHeader,
}

/// A failed [`save_rdb`]: which Redis, what went wrong.
#[derive(Debug, Error)]
#[error("saving an RDB snapshot of redis {address}: {kind}")]
pub struct DumpError {
    /// The Redis ([`RedisTarget::address`]).
    pub address: String,
    /// What went wrong.
    pub kind: DumpErrorKind,
}

/// What went wrong in a [`DumpError`].
#[derive(Debug, Error)]
pub enum DumpErrorKind {
    /// The name is not a plain file name.
    #[error(
        "invalid snapshot name {0:?}: use letters, digits, '.', '_' and '-', not starting with '.'"
    )]
    InvalidName(String),
    /// The address is not `host:port`.
    #[error("{0}")]
    InvalidAddress(AddressError),
    /// `<dir>/<name>.rdb` exists already; it is never overwritten.
    #[error("{} exists already", .0.display())]
    Exists(PathBuf),
    /// The TCP connect failed (refused, unreachable, name not resolved).
    #[error("connect failed: {0}")]
    Connect(io::Error),
    /// The TCP connect took longer than allowed.
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// The server refused the credentials (or wants some).
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The server answered a command with an error (`NOPERM`,
    /// `NOMASTERLINK`, `LOADING`, ...).
    #[error("{command} refused: {reply}")]
    ErrorReply {
        /// The command.
        command: &'static str,
        /// The error reply, as the server wrote it.
        reply: String,
    },
    /// The server answered something that is not the protocol.
    #[error("unexpected reply while {stage}: {reply:?}")]
    Protocol {
        /// What we were doing.
        stage: &'static str,
        /// What came (cut to 80 bytes).
        reply: String,
    },
    /// The payload is not an RDB file.
    #[error("not an RDB file: {0}")]
    NotRdb(RdbHeaderError),
    /// The server was silent for too long.
    #[error("nothing received for {idle:?} while {stage}")]
    Idle {
        /// What we were doing.
        stage: &'static str,
        /// The silence allowed ([`DumpOptions::idle_timeout`]).
        idle: Duration,
    },
    /// The whole save took longer than allowed.
    #[error("not done within {timeout:?} ({stage}, {received} bytes received)")]
    Timeout {
        /// What we were doing.
        stage: &'static str,
        /// The bound ([`DumpOptions::timeout`]).
        timeout: Duration,
        /// Snapshot bytes received so far.
        received: u64,
    },
    /// The connection broke.
    #[error("connection lost while {stage}{}: {source}", expected_text(*.received, *.expected))]
    ConnectionLost {
        /// What we were doing.
        stage: &'static str,
        /// Snapshot bytes received so far.
        received: u64,
        /// Snapshot bytes announced (disk-based transfers).
        expected: Option<u64>,
        /// The error (`UnexpectedEof` for a closed connection).
        source: io::Error,
    },
    /// Writing the file failed.
    #[error("{}: {source}", path.display())]
    File {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

fn expected_text(received: u64, expected: Option<u64>) -> String {
    match expected {
        Some(total) => format!(" after {received} of {total} bytes"),
        None if received > 0 => format!(" after {received} bytes"),
        None => String::new(),
    }
}

impl DumpError {
    /// Was this a timeout (connect, silence or the whole save)?
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.kind,
            DumpErrorKind::ConnectTimeout(_)
                | DumpErrorKind::Idle { .. }
                | DumpErrorKind::Timeout { .. }
        )
    }
}

/// Saves the whole dataset of `target` as `<dir>/<name>.rdb` (see the module
/// documentation). `dir` must exist; `name` is a plain file name
/// (letters, digits, `.`, `_`, `-`).
pub async fn save_rdb(
    target: &RedisTarget,
    dir: &Path,
    name: &str,
    options: &DumpOptions,
) -> Result<SavedRdb, DumpError> {
    let err = |kind| DumpError {
        address: target.address.clone(),
        kind,
    };
    if !valid_name(name) {
        return Err(err(DumpErrorKind::InvalidName(name.to_string())));
    }
    let path = dir.join(format!("{name}.rdb"));
    let tmp = dir.join(format!("{name}.rdb.tmp"));
    if path.exists() {
        return Err(err(DumpErrorKind::Exists(path)));
    }
    let deadline = Instant::now() + options.timeout;
    let mut session = Session::connect(target, options, deadline)
        .await
        .map_err(err)?;
    let result = session.transfer(target, &tmp).await;
    drop(session);
    let (bytes, transfer, header) = match result {
        Ok(done) => done,
        Err(kind) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(err(kind));
        }
    };
    let (tmp2, path2, dir2) = (tmp.clone(), path.clone(), dir.to_path_buf());
    blocking(move || publish(&tmp2, &path2, &dir2))
        .await
        .map_err(|kind| {
            let _ = std::fs::remove_file(&tmp);
            err(kind)
        })?;
    Ok(SavedRdb {
        path,
        bytes,
        transfer,
        header,
    })
}

/// Runs file I/O (writes, fsync) off the async threads: the agent's
/// runtime is single-threaded, and a slow disk must not hold up its timers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, DumpErrorKind> + Send + 'static,
) -> Result<T, DumpErrorKind> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(DumpErrorKind::File {
            path: PathBuf::new(),
            source: io::Error::other(format!("file task failed: {e}")),
        })
    })
}

/// The `.tmp` file being written, in batches, off the async threads.
struct TmpFile {
    path: PathBuf,
    file: Option<std::fs::File>,
    pending: Vec<u8>,
}

/// Bytes gathered before a write.
const WRITE_BATCH: usize = 1024 * 1024;

impl TmpFile {
    async fn create(path: &Path) -> Result<TmpFile, DumpErrorKind> {
        let p = path.to_path_buf();
        let file = blocking(move || {
            std::fs::File::create(&p).map_err(|source| DumpErrorKind::File { path: p, source })
        })
        .await?;
        Ok(TmpFile {
            path: path.to_path_buf(),
            file: Some(file),
            pending: Vec::with_capacity(WRITE_BATCH),
        })
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), DumpErrorKind> {
        self.pending.extend_from_slice(bytes);
        if self.pending.len() >= WRITE_BATCH {
            self.flush(false).await?;
        }
        Ok(())
    }

    /// Writes what is pending; with `sync`, fsyncs too.
    async fn flush(&mut self, sync: bool) -> Result<(), DumpErrorKind> {
        let Some(mut file) = self.file.take() else {
            unreachable!("TmpFile used after a failed write");
        };
        let bytes = std::mem::take(&mut self.pending);
        let path = self.path.clone();
        let (file, bytes) = blocking(move || {
            let result = std::io::Write::write_all(&mut file, &bytes)
                .and_then(|()| if sync { file.sync_all() } else { Ok(()) });
            match result {
                Ok(()) => Ok((file, bytes)),
                Err(source) => Err(DumpErrorKind::File { path, source }),
            }
        })
        .await?;
        self.file = Some(file);
        self.pending = bytes;
        self.pending.clear();
        Ok(())
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Links `tmp` to `path` (failing if `path` exists), removes `tmp`, and
/// fsyncs the directory.
fn publish(tmp: &Path, path: &Path, dir: &Path) -> Result<(), DumpErrorKind> {
    let file_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DumpErrorKind::File { path, source }
    };
    match std::fs::hard_link(tmp, path) {
        Ok(()) => std::fs::remove_file(tmp).map_err(file_err(tmp))?,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(DumpErrorKind::Exists(path.to_path_buf()));
        }
        // A file system without hard links: rename, having looked first.
        Err(_) if !path.exists() => std::fs::rename(tmp, path).map_err(file_err(path))?,
        Err(_) => return Err(DumpErrorKind::Exists(path.to_path_buf())),
    }
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(file_err(dir))
}

/// Bytes kept to read the RDB header from.
const HEADER_BYTES: usize = 4096;
/// Longest reply line accepted before the payload.
const MAX_LINE: usize = 1024;
/// The length of the diskless end mark.
const EOF_MARK_LEN: usize = 40;

struct Session<'a> {
    stream: TcpStream,
    /// Received, not yet consumed.
    buf: Vec<u8>,
    options: &'a DumpOptions,
    deadline: Instant,
    /// Snapshot bytes received (for messages).
    received: u64,
    expected: Option<u64>,
}

impl<'a> Session<'a> {
    async fn connect(
        target: &RedisTarget,
        options: &'a DumpOptions,
        deadline: Instant,
    ) -> Result<Session<'a>, DumpErrorKind> {
        let (host, port) = target.host_port().map_err(DumpErrorKind::InvalidAddress)?;
        let limit = deadline.min(Instant::now() + options.connect_timeout);
        let budget = options.connect_timeout.min(options.timeout);
        let stream = match timeout_at(limit, TcpStream::connect((host.as_str(), port))).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(DumpErrorKind::Connect(e)),
            Err(_) => return Err(DumpErrorKind::ConnectTimeout(budget)),
        };
        let _ = stream.set_nodelay(true);
        Ok(Session {
            stream,
            buf: Vec::with_capacity(64 * 1024),
            options,
            deadline,
            received: 0,
            expected: None,
        })
    }

    async fn transfer(
        &mut self,
        target: &RedisTarget,
        tmp: &Path,
    ) -> Result<(u64, Transfer, RdbHeader), DumpErrorKind> {
        if let Some(password) = &target.password {
            let mut auth = vec!["AUTH"];
            if let Some(user) = &target.username {
                auth.push(user);
            }
            auth.push(password);
            let reply = self.command(&auth, "authenticating").await?;
            if let Some(error) = reply.strip_prefix('-') {
                return Err(DumpErrorKind::Auth(error.to_string()));
            }
            self.expect_ok(&reply, "authenticating")?;
        }
        // Error replies are fine here: an older server without the option.
        for args in [["REPLCONF", "capa", "eof"], ["REPLCONF", "rdb-only", "1"]] {
            let reply = self.command(&args, "sending REPLCONF").await?;
            if !reply.starts_with('-') {
                self.expect_ok(&reply, "sending REPLCONF")?;
            }
        }
        self.send(&["SYNC"], "sending SYNC").await?;
        let stage = "waiting for the snapshot";
        // Keep-alives: a bare "\n" a second while the server prepares.
        loop {
            if self.buf.is_empty() {
                self.fill(stage).await?;
            }
            let skip = self.buf.iter().take_while(|&&b| b == b'\n').count();
            self.buf.drain(..skip);
            if !self.buf.is_empty() {
                break;
            }
        }
        let line = self.line(stage).await?;
        if let Some(error) = line.strip_prefix('-') {
            return Err(DumpErrorKind::ErrorReply {
                command: "SYNC",
                reply: error.to_string(),
            });
        }
        let protocol = || DumpErrorKind::Protocol {
            stage,
            reply: cut(&line),
        };
        let (transfer, mark) = match line.strip_prefix("$EOF:") {
            Some(mark) if mark.len() == EOF_MARK_LEN => {
                (Transfer::Diskless, mark.as_bytes().to_vec())
            }
            Some(_) => return Err(protocol()),
            None => {
                let len = line
                    .strip_prefix('$')
                    .filter(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|l| l.parse::<u64>().ok())
                    .ok_or_else(protocol)?;
                self.expected = Some(len);
                (Transfer::Disk, Vec::new())
            }
        };

        let mut file = TmpFile::create(tmp).await?;
        let mut head = Vec::with_capacity(HEADER_BYTES);
        let stage = "receiving the snapshot";
        loop {
            // Garbage fails as soon as five bytes show it, also while a
            // diskless transfer holds them back as a possible end mark.
            if head.len() < RDB_MAGIC.len() {
                let first: Vec<u8> = head
                    .iter()
                    .chain(&self.buf)
                    .take(RDB_MAGIC.len())
                    .copied()
                    .collect();
                if first[..] != RDB_MAGIC[..first.len()] {
                    return Err(DumpErrorKind::NotRdb(RdbHeaderError::NoMagic(cut_bytes(
                        &first,
                    ))));
                }
            }
            // How much of the buffer is snapshot, and is this the end?
            let (take, done) = match self.expected {
                Some(total) => {
                    let left = total - self.received;
                    let take = left.min(self.buf.len() as u64) as usize;
                    (take, left == take as u64)
                }
                // What follows the mark (a replication stream, from a
                // server without rdb-only) is not ours.
                None => match self.buf.windows(EOF_MARK_LEN).position(|w| w == mark) {
                    Some(end) => (end, true),
                    // Hold back what may be the start of the mark.
                    None => (self.buf.len().saturating_sub(EOF_MARK_LEN - 1), false),
                },
            };
            let chunk: Vec<u8> = self.buf.drain(..take).collect();
            if head.len() < HEADER_BYTES {
                let more = (HEADER_BYTES - head.len()).min(chunk.len());
                head.extend_from_slice(&chunk[..more]);
            }
            file.write(&chunk).await?;
            self.received += chunk.len() as u64;
            if done {
                break;
            }
            self.fill(stage).await?;
        }
        let header = parse_rdb_header(&head).map_err(DumpErrorKind::NotRdb)?;
        file.flush(true).await?;
        Ok((self.received, transfer, header))
    }

    /// Sends a command, reads its one-line reply.
    async fn command(
        &mut self,
        args: &[&str],
        stage: &'static str,
    ) -> Result<String, DumpErrorKind> {
        self.send(args, stage).await?;
        self.line(stage).await
    }

    fn expect_ok(&self, reply: &str, stage: &'static str) -> Result<(), DumpErrorKind> {
        if reply.starts_with("+OK") {
            Ok(())
        } else {
            Err(DumpErrorKind::Protocol {
                stage,
                reply: cut(reply),
            })
        }
    }

    async fn send(&mut self, args: &[&str], stage: &'static str) -> Result<(), DumpErrorKind> {
        let mut bytes = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            bytes.extend(format!("${}\r\n", arg.len()).as_bytes());
            bytes.extend(arg.as_bytes());
            bytes.extend(b"\r\n");
        }
        let result = timeout_at(self.deadline, self.stream.write_all(&bytes)).await;
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(self.lost(stage, source)),
            Err(_) => Err(self.timed_out(stage)),
        }
    }

    /// A reply line, without its `\r\n`.
    async fn line(&mut self, stage: &'static str) -> Result<String, DumpErrorKind> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                let line = line.strip_suffix(b"\r\n").unwrap_or(&line[..end]);
                return Ok(String::from_utf8_lossy(line).into_owned());
            }
            if self.buf.len() > MAX_LINE {
                return Err(DumpErrorKind::Protocol {
                    stage,
                    reply: cut_bytes(&self.buf),
                });
            }
            self.fill(stage).await?;
        }
    }

    /// Reads more into the buffer, within the idle and overall bounds.
    async fn fill(&mut self, stage: &'static str) -> Result<(), DumpErrorKind> {
        let idle_limit = Instant::now() + self.options.idle_timeout;
        let limit = idle_limit.min(self.deadline);
        self.buf.reserve(64 * 1024);
        match timeout_at(limit, self.stream.read_buf(&mut self.buf)).await {
            Ok(Ok(0)) => Err(self.lost(stage, io::ErrorKind::UnexpectedEof.into())),
            Ok(Ok(_)) => Ok(()),
            Ok(Err(source)) => Err(self.lost(stage, source)),
            Err(_) if limit == self.deadline => Err(self.timed_out(stage)),
            Err(_) => Err(DumpErrorKind::Idle {
                stage,
                idle: self.options.idle_timeout,
            }),
        }
    }

    fn lost(&self, stage: &'static str, source: io::Error) -> DumpErrorKind {
        DumpErrorKind::ConnectionLost {
            stage,
            received: self.received,
            expected: self.expected,
            source,
        }
    }

    fn timed_out(&self, stage: &'static str) -> DumpErrorKind {
        DumpErrorKind::Timeout {
            stage,
            timeout: self.options.timeout,
            received: self.received,
        }
    }
}

fn cut(text: &str) -> String {
    cut_bytes(text.as_bytes())
}

fn cut_bytes(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["a", "split-2024-05-01T10.00.00Z_node27", "x.y"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "..", "a b", "ü", &"x".repeat(201)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn messages() {
        let e = DumpError {
            address: "10.0.0.1:6379".into(),
            kind: DumpErrorKind::ConnectionLost {
                stage: "receiving the snapshot",
                received: 10,
                expected: Some(212),
                source: io::ErrorKind::UnexpectedEof.into(),
            },
        };
        assert_eq!(
            e.to_string(),
            "saving an RDB snapshot of redis 10.0.0.1:6379: connection lost while receiving \
             the snapshot after 10 of 212 bytes: unexpected end of file"
        );
    }
}
