//! Real `redis-server` processes inside lab hosts, and a tiny synchronous
//! RESP client to talk to them.
//!
//! A socket belongs to the network namespace of the thread that created it,
//! and stays there. So a client is opened inside a host with
//! [`lab_connect`] (or [`RedisNode::client`]) and can then be used from any
//! thread; [`lab_query`] is the one-shot form.
//!
//! ```no_run
//! use netns_tests::redis::{RedisNode, RedisOpts, require_redis};
//! use netns_tests::{Lab, require_netns};
//!
//! if !require_netns("example") || !require_redis("example") {
//!     return;
//! }
//! let lab = Lab::new("example", 2);
//! let master = RedisNode::start(&lab, 1, RedisOpts::default());
//! let replica = RedisNode::start(&lab, 2, RedisOpts::default());
//! replica.client().unwrap().replicaof(lab.addr(1), 6379).unwrap();
//! assert!(replica.wait_link_up(std::time::Duration::from_secs(10)));
//! # let _ = master;
//! ```

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};
use std::fs;
use std::io::{self, BufRead, BufReader, Write as _};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::Duration;

use crate::{Lab, Proc, REQUIRE_ENV, wait_until};

/// Where `redis-server` is expected (Debian's package).
pub const REDIS_SERVER: &str = "/usr/bin/redis-server";

/// The port every lab Redis listens on.
pub const REDIS_PORT: u16 = 6379;

/// Timeout for connecting and for each read or write of the one-shot helpers
/// ([`lab_query`], [`RedisNode::client`], ...).
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long [`RedisNode::start`] and the restarts wait for `PONG`.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Returns `true` if [`REDIS_SERVER`] exists.
///
/// Otherwise: if `REDHA_REQUIRE_NETNS=1`, panics; else prints
/// `skipped: <test>: redis-server not installed` to stderr and returns
/// `false`. Use after [`require_netns`](crate::require_netns):
/// `if !require_redis("my_test") { return; }`.
pub fn require_redis(test: &str) -> bool {
    if Path::new(REDIS_SERVER).is_file() {
        return true;
    }
    if std::env::var_os(REQUIRE_ENV).is_some_and(|v| v == "1") {
        panic!("{REQUIRE_ENV}=1 but {REDIS_SERVER} is missing for {test}");
    }
    let _ = writeln!(io::stderr(), "skipped: {test}: redis-server not installed");
    false
}

// ---------------------------------------------------------------------------
// RESP client

/// Why a RESP exchange failed.
#[derive(Debug)]
pub enum Error {
    /// Connecting, reading or writing failed (including timeouts and the
    /// server closing the connection).
    Io(io::Error),
    /// The server sent something that is not RESP, or not the reply a helper
    /// expected.
    Protocol(String),
    /// The server answered with an error reply (`-READONLY ...`, ...); only
    /// the helpers return this, [`Resp::command`] gives [`Reply::Error`].
    Server(String),
}

impl Error {
    /// Is this a read, write or connect timeout?
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "i/o: {e}"),
            Error::Protocol(m) => write!(f, "protocol: {m}"),
            Error::Server(m) => write!(f, "server: {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

/// One RESP2 reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`, `+PONG`, ...
    Simple(String),
    /// `-ERR ...`, `-READONLY ...`: the whole line after `-`.
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$3\r\nfoo`, or `None` for the null bulk `$-1` (a null array `*-1` is
    /// read as this too).
    Bulk(Option<Vec<u8>>),
    /// `*2\r\n...`
    Array(Vec<Reply>),
}

impl Reply {
    /// Turns an error reply into `Err(Error::Server)`.
    pub fn into_result(self) -> Result<Reply, Error> {
        match self {
            Reply::Error(m) => Err(Error::Server(m)),
            r => Ok(r),
        }
    }

    /// Is this `+OK`?
    pub fn is_ok(&self) -> bool {
        matches!(self, Reply::Simple(s) if s == "OK")
    }

    /// The text of a simple string or a (UTF-8, lossily) non-null bulk string.
    pub fn text(&self) -> Option<String> {
        match self {
            Reply::Simple(s) => Some(s.clone()),
            Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        }
    }
}

/// Longest bulk string or array accepted from a server.
const MAX_LEN: usize = 512 << 20;
/// Deepest nesting of arrays accepted.
const MAX_DEPTH: usize = 16;

fn read_line(r: &mut impl BufRead) -> Result<String, Error> {
    let mut buf = Vec::new();
    r.read_until(b'\n', &mut buf)?;
    if buf.is_empty() {
        return Err(Error::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by the server",
        )));
    }
    if !buf.ends_with(b"\r\n") {
        return Err(Error::Protocol(format!(
            "line not ended by CRLF: {:?}",
            String::from_utf8_lossy(&buf)
        )));
    }
    buf.truncate(buf.len() - 2);
    String::from_utf8(buf).map_err(|e| Error::Protocol(format!("line not UTF-8: {e}")))
}

fn parse_len(s: &str) -> Result<Option<usize>, Error> {
    let n: i64 = s
        .parse()
        .map_err(|_| Error::Protocol(format!("bad length `{s}`")))?;
    match n {
        -1 => Ok(None),
        n if n < -1 || n as u64 > MAX_LEN as u64 => {
            Err(Error::Protocol(format!("length {n} out of range")))
        }
        n => Ok(Some(n as usize)),
    }
}

/// Reads one reply from `r`.
pub fn read_reply(r: &mut impl BufRead) -> Result<Reply, Error> {
    read_reply_at(r, 0)
}

fn read_reply_at(r: &mut impl BufRead, depth: usize) -> Result<Reply, Error> {
    let line = read_line(r)?;
    let (kind, rest) = line
        .split_at_checked(1)
        .ok_or_else(|| Error::Protocol("empty line".into()))?;
    match kind {
        "+" => Ok(Reply::Simple(rest.to_owned())),
        "-" => Ok(Reply::Error(rest.to_owned())),
        ":" => rest
            .parse()
            .map(Reply::Integer)
            .map_err(|_| Error::Protocol(format!("bad integer `{rest}`"))),
        "$" => {
            let Some(len) = parse_len(rest)? else {
                return Ok(Reply::Bulk(None));
            };
            let mut data = vec![0; len + 2];
            r.read_exact(&mut data)?;
            if !data.ends_with(b"\r\n") {
                return Err(Error::Protocol("bulk string not ended by CRLF".into()));
            }
            data.truncate(len);
            Ok(Reply::Bulk(Some(data)))
        }
        "*" => {
            let Some(len) = parse_len(rest)? else {
                return Ok(Reply::Bulk(None));
            };
            if depth >= MAX_DEPTH {
                return Err(Error::Protocol("arrays nested too deep".into()));
            }
            (0..len)
                .map(|_| read_reply_at(r, depth + 1))
                .collect::<Result<_, _>>()
                .map(Reply::Array)
        }
        _ => Err(Error::Protocol(format!("unknown reply type in `{line}`"))),
    }
}

/// Appends `args` to `out` as a RESP array of bulk strings.
pub fn encode_command<A: AsRef<[u8]>>(out: &mut Vec<u8>, args: &[A]) {
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

/// Parses `INFO` text into `key -> value` (section headers and blank lines
/// skipped).
pub fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.trim_end().split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// A synchronous RESP2 connection over a [`TcpStream`].
///
/// After an [`Error::Io`] (a timeout in particular) the stream may hold half
/// a reply: drop the connection and open a new one.
pub struct Resp {
    reader: BufReader<TcpStream>,
    peer: SocketAddr,
}

impl fmt::Debug for Resp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resp").field("peer", &self.peer).finish()
    }
}

impl Resp {
    /// Connects to `addr` within `timeout`, which also bounds every later
    /// read and write. Connects from the calling thread's network namespace.
    pub fn connect(addr: impl Into<SocketAddr>, timeout: Duration) -> Result<Resp, Error> {
        Resp::connect_with(addr, timeout, timeout)
    }

    /// Like [`connect`](Resp::connect), with separate connect and read/write
    /// timeouts.
    pub fn connect_with(
        addr: impl Into<SocketAddr>,
        connect_timeout: Duration,
        io_timeout: Duration,
    ) -> Result<Resp, Error> {
        let peer = addr.into();
        let stream = TcpStream::connect_timeout(&peer, connect_timeout)?;
        stream.set_read_timeout(Some(io_timeout))?;
        stream.set_write_timeout(Some(io_timeout))?;
        stream.set_nodelay(true)?;
        Ok(Resp {
            reader: BufReader::new(stream),
            peer,
        })
    }

    /// The address connected to.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Sends one command and reads its reply. An error reply is
    /// `Ok(Reply::Error(..))`.
    pub fn command<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<Reply, Error> {
        let mut buf = Vec::new();
        encode_command(&mut buf, args);
        self.reader.get_mut().write_all(&buf)?;
        read_reply(&mut self.reader)
    }

    /// Sends all `commands` in one write, then reads their replies in order.
    pub fn pipeline<A: AsRef<[u8]>>(&mut self, commands: &[Vec<A>]) -> Result<Vec<Reply>, Error> {
        let mut buf = Vec::new();
        for c in commands {
            encode_command(&mut buf, c);
        }
        self.reader.get_mut().write_all(&buf)?;
        commands
            .iter()
            .map(|_| read_reply(&mut self.reader))
            .collect()
    }

    fn expect_ok<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Result<(), Error> {
        match self.command(args)?.into_result()? {
            r if r.is_ok() => Ok(()),
            r => Err(Error::Protocol(format!("expected +OK, got {r:?}"))),
        }
    }

    /// `PING`, expecting `+PONG` (`-LOADING` is an [`Error::Server`]).
    pub fn ping(&mut self) -> Result<(), Error> {
        match self.command(&["PING"])?.into_result()? {
            Reply::Simple(s) if s == "PONG" => Ok(()),
            r => Err(Error::Protocol(format!("expected +PONG, got {r:?}"))),
        }
    }

    /// The text of `INFO <section>`.
    pub fn info(&mut self, section: &str) -> Result<String, Error> {
        match self.command(&["INFO", section])?.into_result()? {
            Reply::Bulk(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
            r => Err(Error::Protocol(format!("INFO: unexpected {r:?}"))),
        }
    }

    /// `INFO <section>` parsed into `key -> value`.
    pub fn info_map(&mut self, section: &str) -> Result<BTreeMap<String, String>, Error> {
        self.info(section).map(|t| parse_info(&t))
    }

    fn replication_field(&mut self, key: &str) -> Result<String, Error> {
        self.info_map("replication")?
            .remove(key)
            .ok_or_else(|| Error::Protocol(format!("INFO replication has no `{key}`")))
    }

    /// `role` from `INFO replication`: `"master"` or `"slave"`.
    pub fn role(&mut self) -> Result<String, Error> {
        self.replication_field("role")
    }

    /// `master_repl_offset` from `INFO replication` (on a replica: how far
    /// it has processed its master's stream).
    pub fn offset(&mut self) -> Result<i64, Error> {
        let v = self.replication_field("master_repl_offset")?;
        v.parse()
            .map_err(|_| Error::Protocol(format!("master_repl_offset `{v}`")))
    }

    /// `master_link_status` from `INFO replication` is `up` (only on a
    /// replica).
    pub fn link_up(&mut self) -> Result<bool, Error> {
        Ok(self
            .info_map("replication")?
            .get("master_link_status")
            .is_some_and(|s| s == "up"))
    }

    /// `REPLICAOF host port`.
    pub fn replicaof(&mut self, host: impl fmt::Display, port: u16) -> Result<(), Error> {
        self.expect_ok(&["REPLICAOF".to_owned(), host.to_string(), port.to_string()])
    }

    /// `REPLICAOF NO ONE`.
    pub fn replicaof_no_one(&mut self) -> Result<(), Error> {
        self.expect_ok(&["REPLICAOF", "NO", "ONE"])
    }

    /// `DBSIZE`.
    pub fn dbsize(&mut self) -> Result<u64, Error> {
        match self.command(&["DBSIZE"])?.into_result()? {
            Reply::Integer(n) if n >= 0 => Ok(n as u64),
            r => Err(Error::Protocol(format!("DBSIZE: unexpected {r:?}"))),
        }
    }
}

/// Opens a [`Resp`] connection to `addr` from inside host `from_host`'s
/// namespace; the connection can then be used from any thread.
pub fn lab_connect(
    lab: &Lab,
    from_host: usize,
    addr: impl Into<SocketAddr>,
    timeout: Duration,
) -> Result<Resp, Error> {
    let addr = addr.into();
    lab.in_host(from_host, move || Resp::connect(addr, timeout))
}

/// Connects from host `from_host` to `addr` (timeout [`QUERY_TIMEOUT`]),
/// sends `cmd` and returns its reply.
pub fn lab_query(
    lab: &Lab,
    from_host: usize,
    addr: impl Into<SocketAddr>,
    cmd: &[&str],
) -> Result<Reply, Error> {
    lab_connect(lab, from_host, addr, QUERY_TIMEOUT)?.command(cmd)
}

// ---------------------------------------------------------------------------
// redis-server in a lab host

/// What a [`RedisNode`] keeps on disk, in its working directory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Persistence {
    /// Nothing saved by itself: `save ""`, `appendonly no` (these tests'
    /// default). A full sync may still leave a `dump.rdb` behind: a replica
    /// keeps the snapshot it received, and a master with disk-based sync
    /// (`repl-diskless-sync no`) the one it sent (`rdb-del-sync-files no`).
    #[default]
    Off,
    /// Redis 7's own default: no `save` line, so RDB snapshots at
    /// `save 3600 1 300 100 60 10000` (and at a clean shutdown), `appendonly
    /// no`. What a user who never touched `save` runs.
    RdbDefault,
    /// RDB snapshots at these save points, as the `save` line takes them
    /// (`"1 1"`: every second after at least one change), `appendonly no`.
    Rdb(String),
    /// The append-only file (`appendonly yes`, in `appendonlydir/` of the
    /// working directory) with this `appendfsync`, and Redis's default RDB
    /// save points besides (a restart loads the AOF).
    Aof(AppendFsync),
}

/// `appendfsync`: when the AOF is fsynced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendFsync {
    /// After every write, before it is acknowledged: an acknowledged write
    /// survives a crash of the host.
    Always,
    /// Once a second (Redis's default).
    EverySec,
    /// When the kernel likes.
    No,
}

impl AppendFsync {
    fn word(self) -> &'static str {
        match self {
            AppendFsync::Always => "always",
            AppendFsync::EverySec => "everysec",
            AppendFsync::No => "no",
        }
    }
}

/// An ACL user for redha to log in as ([`RedisOpts::user`]).
///
/// The `default` user stays as Redis ships it (`on nopass`, everything
/// allowed), so the tests' own clients, the writers and replication between
/// the two Redis need no credentials; only an agent configured with this user
/// ([`redha_keys`](AclUser::redha_keys),
/// [`RedisSettings::with_user`](crate::redha::RedisSettings::with_user)) is
/// bound by its rules.
///
/// ```
/// use netns_tests::redis::AclUser;
///
/// let u = AclUser::without_client_pause("redha", "s3cret");
/// assert_eq!(u.config_line(), "user redha reset on >s3cret ~* &* +@all -client|pause");
/// assert_eq!(u.redha_keys(), "username = \"redha\"\npassword = \"s3cret\"\n");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclUser {
    /// User name.
    pub name: String,
    /// Password (no spaces).
    pub password: String,
    /// ACL rules after the password: keys, channels, commands.
    pub rules: String,
}

impl AclUser {
    /// A user allowed everything: `~* &* +@all`.
    pub fn full(name: &str, password: &str) -> AclUser {
        AclUser::with_rules(name, password, "~* &* +@all")
    }

    /// A user allowed everything but `CLIENT PAUSE` (`-client|pause`; `CLIENT
    /// UNPAUSE` stays allowed): redha's fence fails with `NOPERM`.
    pub fn without_client_pause(name: &str, password: &str) -> AclUser {
        AclUser::with_rules(name, password, "~* &* +@all -client|pause")
    }

    /// A user with these rules (`~* +@all -replicaof`, ...).
    pub fn with_rules(name: &str, password: &str, rules: &str) -> AclUser {
        assert!(
            !name.is_empty() && !name.contains(char::is_whitespace),
            "netns-tests: ACL user name `{name}`"
        );
        assert!(
            !password.is_empty()
                && !password.contains(char::is_whitespace)
                && !password.contains('"'),
            "netns-tests: ACL password must be a non-empty word"
        );
        AclUser {
            name: name.to_owned(),
            password: password.to_owned(),
            rules: rules.to_owned(),
        }
    }

    /// The `redis.conf` line defining the user:
    /// `user <name> reset on ><password> <rules>`.
    pub fn config_line(&self) -> String {
        format!(
            "user {} reset on >{} {}",
            self.name, self.password, self.rules
        )
    }

    /// The lines for redha's `[redis]` section that make it log in as this
    /// user (the same credentials serve the peer's Redis).
    pub fn redha_keys(&self) -> String {
        format!(
            "username = {:?}\npassword = {:?}\n",
            self.name, self.password
        )
    }
}

/// Settings of a [`RedisNode`] beyond the fixed ones (port 6379, bind
/// 0.0.0.0, log to stdout), persistence off unless chosen.
///
/// The helpers set the conditions users run and chain:
/// `RedisOpts::default().rdb_default().disk_sync()`.
#[derive(Clone, Debug, Default)]
pub struct RedisOpts {
    /// `repl-diskless-sync` (Redis 7 default: yes).
    pub repl_diskless_sync: Option<bool>,
    /// `repl-diskless-sync-delay` in seconds (Redis 7 default: 5).
    pub repl_diskless_sync_delay: Option<u32>,
    /// What it keeps on disk (default: nothing).
    pub persistence: Persistence,
    /// ACL users besides `default`.
    pub users: Vec<AclUser>,
    /// Lines appended to the configuration file as they are.
    pub extra: Vec<String>,
    /// Its port; `None`: [`REDIS_PORT`]. Another port names its files
    /// `redis-h<i>-<port>` so that one host can run several.
    pub port: Option<u16>,
}

impl RedisOpts {
    /// With this persistence.
    pub fn persistence(mut self, persistence: Persistence) -> Self {
        self.persistence = persistence;
        self
    }

    /// With Redis 7's default RDB snapshots ([`Persistence::RdbDefault`]).
    pub fn rdb_default(self) -> Self {
        self.persistence(Persistence::RdbDefault)
    }

    /// With the AOF fsynced at every write (`appendonly yes`, `appendfsync
    /// always`): every acknowledged write is on disk.
    pub fn aof_always(self) -> Self {
        self.persistence(Persistence::Aof(AppendFsync::Always))
    }

    /// Disk-based full syncs: `repl-diskless-sync no` (the master writes an
    /// RDB file, then sends it).
    pub fn disk_sync(mut self) -> Self {
        self.repl_diskless_sync = Some(false);
        self.repl_diskless_sync_delay = None;
        self
    }

    /// Diskless full syncs that start at once: `repl-diskless-sync yes`,
    /// `repl-diskless-sync-delay 0`.
    pub fn diskless_sync_no_delay(mut self) -> Self {
        self.repl_diskless_sync = Some(true);
        self.repl_diskless_sync_delay = Some(0);
        self
    }

    /// On this port.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// With this ACL user as well.
    pub fn user(mut self, user: AclUser) -> Self {
        self.users.push(user);
        self
    }
}

/// A `redis-server` running in host `i` of a lab, on `192.0.2.(10+i):6379`.
///
/// Its configuration is `<lab dir>/redis-h<i>.conf`, its working directory
/// (dump files) `<lab dir>/redis-h<i>/`, its log `<lab dir>/redis-h<i>.log`.
/// Dropping it SIGKILLs the server.
pub struct RedisNode<'lab> {
    lab: &'lab Lab,
    host: usize,
    port: u16,
    /// `redis-h<i>`, or `redis-h<i>-<port>` on another port than [`REDIS_PORT`].
    name: String,
    conf: PathBuf,
    dir: PathBuf,
    proc: Proc,
}

impl fmt::Debug for RedisNode<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisNode")
            .field("host", &self.host)
            .field("conf", &self.conf)
            .field("proc", &self.proc)
            .finish()
    }
}

/// The configuration text for a node working in `dir`.
fn config_text(dir: &Path, opts: &RedisOpts) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "port {}", opts.port.unwrap_or(REDIS_PORT));
    s.push_str("bind 0.0.0.0\nprotected-mode no\ndaemonize no\nlogfile \"\"\n");
    match &opts.persistence {
        Persistence::Off => s.push_str("save \"\"\nappendonly no\n"),
        Persistence::RdbDefault => s.push_str("appendonly no\n"),
        Persistence::Rdb(points) => {
            assert!(
                points.split_whitespace().count() % 2 == 0
                    && points.split_whitespace().all(|w| w.parse::<u64>().is_ok()),
                "netns-tests: save points are pairs of numbers, not `{points}`"
            );
            let _ = writeln!(s, "save {points}\nappendonly no");
        }
        Persistence::Aof(fsync) => {
            let _ = writeln!(s, "appendonly yes\nappendfsync {}", fsync.word());
        }
    }
    let _ = writeln!(s, "dir {:?}", dir.display().to_string());
    if let Some(on) = opts.repl_diskless_sync {
        let _ = writeln!(s, "repl-diskless-sync {}", if on { "yes" } else { "no" });
    }
    if let Some(delay) = opts.repl_diskless_sync_delay {
        let _ = writeln!(s, "repl-diskless-sync-delay {delay}");
    }
    for user in &opts.users {
        let _ = writeln!(s, "{}", user.config_line());
    }
    for line in &opts.extra {
        let _ = writeln!(s, "{line}");
    }
    s
}

impl<'lab> RedisNode<'lab> {
    /// Writes the configuration, starts `redis-server` in host `i` and waits
    /// (up to [`START_TIMEOUT`]) until it answers `PING`. Panics, with the
    /// server's log, if it does not.
    pub fn start(lab: &'lab Lab, i: usize, opts: RedisOpts) -> RedisNode<'lab> {
        let port = opts.port.unwrap_or(REDIS_PORT);
        let name = match port {
            REDIS_PORT => format!("redis-h{i}"),
            other => format!("redis-h{i}-{other}"),
        };
        let dir = lab.dir().join(&name);
        fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("netns-tests: creating {}: {e}", dir.display()));
        let conf = lab.dir().join(format!("{name}.conf"));
        fs::write(&conf, config_text(&dir, &opts))
            .unwrap_or_else(|e| panic!("netns-tests: writing {}: {e}", conf.display()));
        let proc = Self::spawn(lab, i, &name, &conf);
        let node = RedisNode {
            lab,
            host: i,
            port,
            name,
            conf,
            dir,
            proc,
        };
        node.wait_ready();
        node
    }

    fn spawn(lab: &Lab, i: usize, name: &str, conf: &Path) -> Proc {
        let mut c = Command::new(REDIS_SERVER);
        c.arg(conf);
        lab.spawn_command(i, name, &c)
    }

    /// Waits until the server answers `PING` with `PONG`; panics with its log
    /// if it exits or [`START_TIMEOUT`] passes.
    fn wait_ready(&self) {
        let mut last = String::new();
        let ready = wait_until(START_TIMEOUT, Duration::from_millis(20), || {
            if !self.proc.is_running() {
                return true;
            }
            match self.client().and_then(|mut c| c.ping()) {
                Ok(()) => true,
                Err(e) => {
                    last = e.to_string();
                    false
                }
            }
        });
        if !self.proc.is_running() {
            panic!(
                "netns-tests: redis-server on host {} exited at start-up; log:\n{}",
                self.host,
                self.proc.log()
            );
        }
        if ready.is_none() {
            panic!(
                "netns-tests: redis-server on host {} not answering PING after {START_TIMEOUT:?} \
                 (last: {last}); log:\n{}",
                self.host,
                self.proc.log()
            );
        }
    }

    /// The host index.
    pub fn host(&self) -> usize {
        self.host
    }

    /// `192.0.2.(10+i):<port>` (6379 unless chosen).
    pub fn addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.lab.addr(self.host), self.port)
    }

    /// The host's IP address.
    pub fn ip(&self) -> Ipv4Addr {
        self.lab.addr(self.host)
    }

    /// The working directory (where dump files go).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration file.
    pub fn conf_path(&self) -> &Path {
        &self.conf
    }

    /// The running (or killed) server process.
    pub fn proc(&self) -> &Proc {
        &self.proc
    }

    /// A fresh connection to this server, opened from its own host
    /// (timeout [`QUERY_TIMEOUT`]).
    pub fn client(&self) -> Result<Resp, Error> {
        lab_connect(self.lab, self.host, self.addr(), QUERY_TIMEOUT)
    }

    /// One command on a fresh connection from its own host.
    pub fn query(&self, cmd: &[&str]) -> Result<Reply, Error> {
        self.client()?.command(cmd)
    }

    /// Waits up to `timeout` until `master_link_status:up`.
    pub fn wait_link_up(&self, timeout: Duration) -> bool {
        wait_until(timeout, Duration::from_millis(20), || {
            self.client().and_then(|mut c| c.link_up()).unwrap_or(false)
        })
        .is_some()
    }

    /// Waits up to `timeout` until this server's `master_repl_offset` equals
    /// `source`'s (a replica that has processed everything its master sent).
    pub fn wait_caught_up(&self, source: &RedisNode<'_>, timeout: Duration) -> bool {
        wait_until(timeout, Duration::from_millis(20), || {
            let ours = self.client().and_then(|mut c| c.offset());
            let theirs = source.client().and_then(|mut c| c.offset());
            matches!((ours, theirs), (Ok(a), Ok(b)) if a == b)
        })
        .is_some()
    }

    /// SIGKILLs the server (if running) and reaps it.
    pub fn kill(&self) -> ExitStatus {
        self.proc.kill()
    }

    /// A crash and a supervisor's restart, "from its files": SIGKILLs the
    /// server (nothing is saved at exit) and starts it again with the same
    /// configuration and working directory, so it loads whatever its files
    /// hold (the AOF with [`Persistence::Aof`], else `dump.rdb`: the last
    /// snapshot, or the last full sync's, even with [`Persistence::Off`]; see
    /// [`files`](Self::files)); waits for `PONG` (loading included). Compare
    /// [`restart_empty`](Self::restart_empty).
    pub fn restart(&mut self) {
        self.proc.kill();
        self.start_again();
    }

    /// A clean stop: SIGTERM, then waits up to `timeout` for the exit (SIGKILL
    /// after it). Redis saves an RDB snapshot at shutdown when it has save
    /// points ([`Persistence::RdbDefault`], [`Persistence::Rdb`],
    /// [`Persistence::Aof`]) and fsyncs the AOF. Returns whether it exited by
    /// itself in time.
    pub fn stop(&self, timeout: Duration) -> bool {
        if !self.proc.signal(libc::SIGTERM) {
            return !self.proc.is_running();
        }
        match self.proc.wait_exit(timeout) {
            Some(_) => true,
            None => {
                self.proc.kill();
                false
            }
        }
    }

    /// Starts the server again after [`kill`](Self::kill) or
    /// [`stop`](Self::stop) (killing it first if it still runs), with the same
    /// configuration and its files; waits for `PONG`. With [`kill`](Self::kill)
    /// of both nodes first, this is the power cycle of a pair.
    pub fn start_again(&mut self) {
        self.proc.kill();
        self.proc = Self::spawn(self.lab, self.host, &self.name, &self.conf);
        self.wait_ready();
    }

    /// The persistence files in its working directory, sorted: `dump.rdb`,
    /// and the AOF directory's files as `appendonlydir/<name>`.
    pub fn files(&self) -> Vec<String> {
        let list = |dir: &Path| -> Vec<String> {
            fs::read_dir(dir)
                .map(|rd| {
                    rd.filter_map(Result::ok)
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut out = Vec::new();
        for name in list(&self.dir) {
            if name == "appendonlydir" {
                out.extend(
                    list(&self.dir.join(&name))
                        .into_iter()
                        .map(|f| format!("appendonlydir/{f}")),
                );
            } else if name.ends_with(".rdb") {
                out.push(name);
            }
        }
        out.sort();
        out
    }

    /// `SAVE`: writes a snapshot to `dump.rdb` now (whatever the save
    /// points), so that a [`restart`](Self::restart) comes back with exactly
    /// this data.
    pub fn save(&self) -> Result<(), Error> {
        match self.query(&["SAVE"])?.into_result()? {
            r if r.is_ok() => Ok(()),
            r => Err(Error::Protocol(format!("SAVE: unexpected {r:?}"))),
        }
    }

    /// Kills the server, empties its directory (no `dump.rdb` to load) and
    /// starts it again: an empty Redis with a new replication id.
    pub fn restart_empty(&mut self) {
        self.proc.kill();
        if let Err(e) = fs::remove_dir_all(&self.dir)
            && e.kind() != io::ErrorKind::NotFound
        {
            panic!("netns-tests: emptying {}: {e}", self.dir.display());
        }
        fs::create_dir_all(&self.dir)
            .unwrap_or_else(|e| panic!("netns-tests: creating {}: {e}", self.dir.display()));
        self.proc = Self::spawn(self.lab, self.host, &self.name, &self.conf);
        self.wait_ready();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Result<Reply, Error> {
        read_reply(&mut &bytes[..])
    }

    #[test]
    fn replies_parse() {
        assert_eq!(parse(b"+OK\r\n").unwrap(), Reply::Simple("OK".into()));
        assert_eq!(
            parse(b"-READONLY You can't write\r\n").unwrap(),
            Reply::Error("READONLY You can't write".into())
        );
        assert_eq!(parse(b":-12\r\n").unwrap(), Reply::Integer(-12));
        assert_eq!(
            parse(b"$5\r\na\r\nbc\r\n").unwrap(),
            Reply::Bulk(Some(b"a\r\nbc".to_vec()))
        );
        assert_eq!(parse(b"$0\r\n\r\n").unwrap(), Reply::Bulk(Some(vec![])));
        assert_eq!(parse(b"$-1\r\n").unwrap(), Reply::Bulk(None));
        assert_eq!(parse(b"*-1\r\n").unwrap(), Reply::Bulk(None));
        assert_eq!(
            parse(b"*3\r\n$1\r\n1\r\n$-1\r\n*1\r\n:7\r\n").unwrap(),
            Reply::Array(vec![
                Reply::Bulk(Some(b"1".to_vec())),
                Reply::Bulk(None),
                Reply::Array(vec![Reply::Integer(7)]),
            ])
        );
    }

    #[test]
    fn bad_replies_are_errors() {
        for bad in [
            &b""[..],
            b"+OK\n",
            b"?x\r\n",
            b":x\r\n",
            b"$3\r\nab\r\n",
            b"$2\r\nabcd",
            b"$-2\r\n",
            b"*2\r\n:1\r\n",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(matches!(parse(b""), Err(Error::Io(_))));
    }

    #[test]
    fn commands_encode() {
        let mut out = Vec::new();
        encode_command(&mut out, &["SET", "k:1", ""]);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$3\r\nk:1\r\n$0\r\n\r\n");
    }

    #[test]
    fn info_parses() {
        let m = parse_info(
            "# Replication\r\nrole:slave\r\nmaster_host:192.0.2.11\r\n\r\nmaster_repl_offset:42\r\n",
        );
        assert_eq!(m["role"], "slave");
        assert_eq!(m["master_host"], "192.0.2.11");
        assert_eq!(m["master_repl_offset"], "42");
        assert_eq!(m.len(), 3);
    }

    #[test]
    fn config_has_the_fixed_settings() {
        let c = config_text(
            Path::new("/tmp/x y/redis-h1"),
            &RedisOpts {
                repl_diskless_sync_delay: Some(0),
                extra: vec!["repl-backlog-size 16mb".into()],
                ..RedisOpts::default()
            },
        );
        for line in [
            "port 6379",
            "bind 0.0.0.0",
            "protected-mode no",
            "daemonize no",
            "save \"\"",
            "appendonly no",
            "logfile \"\"",
            "dir \"/tmp/x y/redis-h1\"",
            "repl-diskless-sync-delay 0",
            "repl-backlog-size 16mb",
        ] {
            assert!(c.lines().any(|l| l == line), "missing `{line}` in:\n{c}");
        }
        assert!(!c.contains("repl-diskless-sync "), "{c}");
    }

    fn lines(opts: &RedisOpts) -> Vec<String> {
        config_text(Path::new("/d"), opts)
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn persistence_lines() {
        let rdb = lines(&RedisOpts::default().rdb_default());
        assert!(!rdb.iter().any(|l| l.starts_with("save")), "{rdb:?}");
        assert!(rdb.contains(&"appendonly no".to_owned()));

        let every = lines(&RedisOpts::default().persistence(Persistence::Rdb("1 1".into())));
        assert!(every.contains(&"save 1 1".to_owned()), "{every:?}");

        let aof = lines(&RedisOpts::default().aof_always());
        for l in ["appendonly yes", "appendfsync always"] {
            assert!(aof.contains(&l.to_owned()), "missing `{l}` in {aof:?}");
        }
        assert!(!aof.iter().any(|l| l.starts_with("save")), "{aof:?}");
    }

    #[test]
    fn sync_mode_and_user_lines() {
        let disk = lines(&RedisOpts::default().disk_sync());
        assert!(
            disk.contains(&"repl-diskless-sync no".to_owned()),
            "{disk:?}"
        );
        assert!(
            !disk
                .iter()
                .any(|l| l.starts_with("repl-diskless-sync-delay"))
        );

        let now = lines(&RedisOpts::default().diskless_sync_no_delay());
        for l in ["repl-diskless-sync yes", "repl-diskless-sync-delay 0"] {
            assert!(now.contains(&l.to_owned()), "missing `{l}` in {now:?}");
        }

        let user = AclUser::without_client_pause("redha", "pw");
        let acl = lines(&RedisOpts::default().user(user.clone()));
        assert!(acl.contains(&user.config_line()), "{acl:?}");
        assert!(user.config_line().ends_with("+@all -client|pause"));
        assert_eq!(
            AclUser::full("u", "p").config_line(),
            "user u reset on >p ~* &* +@all"
        );
    }
}
