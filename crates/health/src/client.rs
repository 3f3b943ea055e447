//! An async Redis client for health checks and replication commands.
//!
//! Built on the `redis` crate's multiplexed connection (tokio), with three
//! properties the agent relies on:
//!
//! - **Every call has a deadline.** Connecting is bounded by
//!   [`ClientOptions::connect_timeout`] and each command by
//!   [`ClientOptions::response_timeout`]. A Redis that stops answering
//!   without closing the socket (a paused process, a vanished host) costs
//!   one timeout, not a hang.
//! - **A doubtful connection is never reused.** After a timeout, a dropped
//!   connection, a protocol error, or a call that was cancelled half-way, the
//!   connection is thrown away and the next call connects afresh (a late
//!   reply can never be taken for the answer to a later command).
//! - **A dropped connection is noticed at once**, not at the next command:
//!   the connection speaks RESP3 with a push sender, and the `redis` crate
//!   sends a [`PushKind::Disconnection`] push as soon as its reader sees the
//!   socket close; [`Client::connection_lost`] resolves then. (This needs
//!   `HELLO 3`, i.e. Redis ≥ 6.)
//!
//! Errors say which Redis (its address) and which command failed.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::io::tcp::TcpSettings;
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ErrorKind, IntoConnectionInfo, ProtocolVersion,
    PushInfo, PushKind, RedisConnectionInfo, RedisError, Value,
};
use thiserror::Error;
use tokio::sync::watch;
use tokio::time::{Instant, timeout_at};
use tracing::debug;

use crate::client_list::{ClientEntry, ClientListError, parse_client_list};
use crate::snapshot::{Snapshot, SnapshotError, parse_info};

/// The INFO sections a [`Snapshot`] is parsed from.
pub const INFO_SECTIONS: [&str; 4] = ["server", "replication", "keyspace", "persistence"];

/// Which Redis to talk to, and how to log in.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTarget {
    /// `host:port`; an IPv6 address goes in brackets (`[::1]:6379`).
    pub address: String,
    /// ACL user name (`AUTH username password`); needs `password`.
    pub username: Option<String>,
    /// Password: of `username`, or the `requirepass` one when no user name
    /// is given.
    pub password: Option<String>,
}

impl fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTarget")
            .field("address", &self.address)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why an address is not `host:port`.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("invalid Redis address {address:?}: {reason}")]
pub struct AddressError {
    /// The address as given.
    pub address: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl RedisTarget {
    /// A target at `address` (`host:port`) without authentication.
    pub fn new(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            username: None,
            password: None,
        }
    }

    /// Logs in with `AUTH password` (the `requirepass` password).
    pub fn with_password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Logs in as ACL user `username` (`AUTH username password`).
    pub fn with_user(mut self, username: impl Into<String>, password: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self.password = Some(password.into());
        self
    }

    /// Splits [`address`](Self::address) into host and port (brackets of
    /// an IPv6 address removed).
    pub fn host_port(&self) -> Result<(String, u16), AddressError> {
        let err = |reason| AddressError {
            address: self.address.clone(),
            reason,
        };
        let (host, port) = self
            .address
            .rsplit_once(':')
            .ok_or_else(|| err("expected host:port"))?;
        let host = match host.strip_prefix('[') {
            Some(inner) => inner
                .strip_suffix(']')
                .ok_or_else(|| err("unclosed '[' in host"))?,
            None if host.contains(':') => {
                return Err(err("an IPv6 address must be in brackets: [addr]:port"));
            }
            None => host,
        };
        if host.is_empty() {
            return Err(err("empty host"));
        }
        if !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("port must be 1..65535"));
        }
        match port.parse::<u16>() {
            Ok(port) if port != 0 => Ok((host.to_string(), port)),
            _ => Err(err("port must be 1..65535")),
        }
    }
}

/// Timeouts of a [`Client`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    /// Bound on connecting: TCP connect plus `HELLO`/`AUTH`. Default 1 s.
    pub connect_timeout: Duration,
    /// Bound on each command, from sending it to its reply. Default 500 ms.
    pub response_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_millis(500),
        }
    }
}

/// A failed call: which Redis, which command, what went wrong.
#[derive(Debug, Error)]
#[error("redis {address}: {command}: {kind}")]
pub struct ClientError {
    /// The Redis ([`RedisTarget::address`]).
    pub address: String,
    /// The command (arguments that may hold secrets are left out).
    pub command: String,
    /// What went wrong.
    pub kind: ClientErrorKind,
}

/// What went wrong in a [`ClientError`].
#[derive(Debug, Error)]
pub enum ClientErrorKind {
    /// The address is not `host:port`.
    #[error("{0}")]
    InvalidAddress(AddressError),
    /// Nothing listens there (connection refused).
    #[error("connection refused")]
    Refused,
    /// Connecting took longer than allowed.
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// The server refused our credentials (or wants some).
    #[error("authentication failed: {}", server_text(.0))]
    Auth(RedisError),
    /// Connecting failed otherwise (DNS, network unreachable, HELLO refused).
    #[error("connect failed: {0}")]
    Connect(RedisError),
    /// No reply in time; the connection was dropped.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The connection broke (closed, reset) before the reply.
    #[error("connection lost: {0}")]
    ConnectionLost(RedisError),
    /// The server answered with an error (`LOADING`, `READONLY`, `ERR` ...).
    #[error("error reply: {}", server_text(.0))]
    Reply(RedisError),
    /// The server answered something this call does not expect.
    #[error("unexpected reply: {0}")]
    UnexpectedReply(String),
    /// The INFO text was refused by the strict parser.
    #[error("{0}")]
    Snapshot(SnapshotError),
    /// The `CLIENT LIST` text was refused by its parser.
    #[error("{0}")]
    ClientList(ClientListError),
    /// The client library failed otherwise (protocol error, ...); the
    /// connection was dropped.
    #[error("{0}")]
    Other(RedisError),
}

impl ClientError {
    /// Was this a connect or response timeout?
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.kind,
            ClientErrorKind::Timeout(_) | ClientErrorKind::ConnectTimeout(_)
        )
    }

    /// Is nobody there: connection refused or lost? (A Redis that was killed
    /// or is restarting.)
    pub fn is_connection_failure(&self) -> bool {
        matches!(
            self.kind,
            ClientErrorKind::Refused | ClientErrorKind::ConnectionLost(_)
        )
    }

    /// Did the server answer with an error reply?
    pub fn is_reply(&self) -> bool {
        matches!(self.kind, ClientErrorKind::Reply(_))
    }

    /// The code of an error reply (`ERR`, `NOPERM`, `LOADING`, ...); `None`
    /// for any other failure.
    pub fn reply_code(&self) -> Option<&str> {
        match &self.kind {
            ClientErrorKind::Reply(e) => e.code(),
            _ => None,
        }
    }

    /// Did the server refuse the command under its ACL (`NOPERM`)? The
    /// connected user lacks the permission; no retry will help.
    pub fn is_permission(&self) -> bool {
        self.reply_code() == Some("NOPERM")
    }

    /// Does the server not know the command or subcommand (`ERR unknown
    /// command`, `ERR unknown subcommand`)? A Redis too old for it, or one
    /// that renamed or disabled it with `rename-command`.
    pub fn is_unknown_command(&self) -> bool {
        let ClientErrorKind::Reply(e) = &self.kind else {
            return false;
        };
        e.code() == Some("ERR")
            && e.detail().is_some_and(|d| {
                let d = d.to_ascii_lowercase();
                d.starts_with("unknown command") || d.starts_with("unknown subcommand")
            })
    }

    /// Did authentication fail?
    pub fn is_auth(&self) -> bool {
        matches!(self.kind, ClientErrorKind::Auth(_))
    }
}

/// May a command be sent again after a lost connection?
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Retry {
    /// Yes: sending it twice does no harm (PING, INFO, REPLICAOF, ...).
    Idempotent,
    /// No (any command given to [`Client::command`]).
    Never,
}

struct Connection {
    conn: MultiplexedConnection,
    lost: watch::Receiver<bool>,
}

impl Connection {
    fn is_lost(&self) -> bool {
        // `Err`: the sender is gone, so is the connection's reader.
        *self.lost.borrow() || self.lost.has_changed().is_err()
    }
}

/// An async client for one Redis (see the module documentation).
///
/// It holds at most one connection, made on first use and again after any
/// failure. Methods take `&mut self`: one command at a time.
pub struct Client {
    target: RedisTarget,
    options: ClientOptions,
    /// Given with [`Client::client_setname`]: every new connection is named.
    name: Option<String>,
    conn: Option<Connection>,
    /// Set while a call runs: still set at the next call means the previous
    /// one was cancelled half-way, and its connection is not trusted.
    busy: bool,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("target", &self.target)
            .field("options", &self.options)
            .field("name", &self.name)
            .field("connected", &self.conn.is_some())
            .finish()
    }
}

/// A call's deadline and the budget it came from (for messages).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Deadline {
    pub(crate) at: Instant,
    pub(crate) budget: Duration,
}

impl Deadline {
    pub(crate) fn after(budget: Duration) -> Self {
        Self {
            at: Instant::now() + budget,
            budget,
        }
    }
}

impl Client {
    /// A client for `target`; nothing is connected until the first call.
    pub fn new(target: RedisTarget, options: ClientOptions) -> Self {
        Self {
            target,
            options,
            name: None,
            conn: None,
            busy: false,
        }
    }

    /// The target.
    pub fn target(&self) -> &RedisTarget {
        &self.target
    }

    /// The timeouts.
    pub fn options(&self) -> &ClientOptions {
        &self.options
    }

    /// Is a connection open (and not known to be lost)?
    pub fn is_connected(&self) -> bool {
        self.conn.as_ref().is_some_and(|c| !c.is_lost())
    }

    /// Closes the connection, if any; the next call connects afresh.
    pub fn disconnect(&mut self) {
        self.conn = None;
    }

    /// Resolves when the current connection is lost (the server closed or
    /// reset it), typically within a millisecond or two of a `kill -9` of the
    /// server on the same host; also when this client drops that connection
    /// (after a timeout, [`disconnect`](Self::disconnect), ...). Never
    /// resolves when there is no connection; resolves at once when the
    /// connection is already known lost. The future does not borrow the
    /// client: create it afresh before each wait, in a `select!` next to a
    /// timer, and call [`disconnect`](Self::disconnect) when it fires.
    pub fn connection_lost(&self) -> impl Future<Output = ()> + Send + 'static {
        let lost = self.conn.as_ref().map(|c| c.lost.clone());
        async move {
            match lost {
                // Err: the sender is gone with the connection's reader.
                Some(mut lost) => {
                    let _ = lost.wait_for(|lost| *lost).await;
                }
                None => std::future::pending().await,
            }
        }
    }

    /// `PING`; returns the round-trip time of the command (connecting, if
    /// needed, is not counted).
    pub async fn ping(&mut self) -> Result<Duration, ClientError> {
        self.ping_by(self.response_deadline()).await
    }

    /// `INFO server replication keyspace persistence`, parsed strictly.
    pub async fn info(&mut self) -> Result<Snapshot, ClientError> {
        self.info_by(self.response_deadline()).await
    }

    /// `REPLICAOF host port`: become a replica of that Redis.
    pub async fn replicaof(&mut self, host: &str, port: u16) -> Result<(), ClientError> {
        let port = port.to_string();
        self.ok(&["REPLICAOF", host, &port]).await
    }

    /// `REPLICAOF NO ONE`: become a master, keeping the data and history.
    pub async fn replicaof_no_one(&mut self) -> Result<(), ClientError> {
        self.ok(&["REPLICAOF", "NO", "ONE"]).await
    }

    /// `CLIENT PAUSE <ms> WRITE`: refuse writes (reads and replication go on)
    /// for `duration` (rounded down to milliseconds) or until
    /// [`client_unpause`](Self::client_unpause).
    pub async fn client_pause_write(&mut self, duration: Duration) -> Result<(), ClientError> {
        let ms = duration.as_millis().to_string();
        self.ok(&["CLIENT", "PAUSE", &ms, "WRITE"]).await
    }

    /// `CLIENT UNPAUSE`.
    pub async fn client_unpause(&mut self) -> Result<(), ClientError> {
        self.ok(&["CLIENT", "UNPAUSE"]).await
    }

    /// `CONFIG SET parameter value`. Errors show the parameter, never the
    /// value (it may be a password).
    pub async fn config_set(&mut self, parameter: &str, value: &str) -> Result<(), ClientError> {
        self.ok(&["CONFIG", "SET", parameter, value]).await
    }

    /// `CONFIG GET parameter`: the value of that one parameter (an exact
    /// name, not a pattern), or `None` when the server has no such
    /// parameter. A reply naming other parameters only (a pattern that
    /// matched several) is [`UnexpectedReply`](ClientErrorKind::UnexpectedReply).
    pub async fn config_get(&mut self, parameter: &str) -> Result<Option<String>, ClientError> {
        let args = ["CONFIG", "GET", parameter];
        let deadline = self.response_deadline();
        let value = self.exec(&args, deadline, Retry::Idempotent).await?.0;
        let pairs: Vec<(&Value, &Value)> = match &value {
            Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
            Value::Array(items) if items.len() % 2 == 0 => {
                items.chunks(2).map(|kv| (&kv[0], &kv[1])).collect()
            }
            other => {
                return Err(self.error(&args, ClientErrorKind::UnexpectedReply(render(other))));
            }
        };
        if pairs.is_empty() {
            return Ok(None);
        }
        for (key, val) in pairs {
            if text_of(key).is_some_and(|k| k.eq_ignore_ascii_case(parameter)) {
                return match text_of(val) {
                    Some(val) => Ok(Some(val)),
                    None => {
                        Err(self.error(&args, ClientErrorKind::UnexpectedReply(render(&value))))
                    }
                };
            }
        }
        Err(self.error(&args, ClientErrorKind::UnexpectedReply(render(&value))))
    }

    /// `CLIENT SETNAME name`, now and on every connection this client makes
    /// from now on (it reconnects after failures; the name is sent right
    /// after `HELLO`, within the first command's deadline). An empty name
    /// removes it. Redis refuses names with spaces or newlines: an error
    /// reply, and the name is not kept.
    pub async fn client_setname(&mut self, name: &str) -> Result<(), ClientError> {
        self.ok(&["CLIENT", "SETNAME", name]).await?;
        self.name = (!name.is_empty()).then(|| name.to_string());
        Ok(())
    }

    /// The name given with [`client_setname`](Self::client_setname), if any.
    pub fn client_name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// `CLIENT LIST`: every connection of the server, parsed (see
    /// [`ClientEntry`]).
    pub async fn client_list(&mut self) -> Result<Vec<ClientEntry>, ClientError> {
        let args = ["CLIENT", "LIST"];
        let deadline = self.response_deadline();
        let text = match self.exec(&args, deadline, Retry::Idempotent).await?.0 {
            Value::VerbatimString { text, .. } | Value::SimpleString(text) => text,
            Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            other => {
                return Err(self.error(&args, ClientErrorKind::UnexpectedReply(render(&other))));
            }
        };
        parse_client_list(&text).map_err(|e| self.error(&args, ClientErrorKind::ClientList(e)))
    }

    /// Any command; the reply rendered as text: strings as they are, integers
    /// in decimal, nil as `(nil)`, and the items of arrays, sets and maps
    /// (key, then value) one per line. An error reply is an error.
    pub async fn command(&mut self, args: &[&str]) -> Result<String, ClientError> {
        let deadline = self.response_deadline();
        let (value, _) = self.exec(args, deadline, Retry::Never).await?;
        Ok(render(&value))
    }

    /// Any idempotent command (sent again on a fresh connection if an idle
    /// one turns out lost); the reply as it came.
    pub(crate) async fn call(&mut self, args: &[&str]) -> Result<Value, ClientError> {
        let deadline = self.response_deadline();
        Ok(self.exec(args, deadline, Retry::Idempotent).await?.0)
    }

    /// `MULTI`, `commands`, `DISCARD`, written at once on one connection:
    /// the commands are queued, checked by the server's ACL and arity
    /// rules, and dropped unrun. Returns the reply to each, `MULTI` first
    /// and `DISCARD` last. If `MULTI` itself is refused the commands do run:
    /// only give commands that are harmless when run. Sent again on a fresh
    /// connection if a reused idle one turns out lost (a server discards the
    /// transaction of a connection that goes).
    pub(crate) async fn queued(
        &mut self,
        commands: &[&[&str]],
    ) -> Result<Vec<Result<Value, ClientError>>, ClientError> {
        let deadline = self.response_deadline();
        let label = ["MULTI", "...", "DISCARD"];
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        pipe.cmd("MULTI");
        for args in commands {
            let cmd = pipe.cmd(args[0]);
            for arg in &args[1..] {
                cmd.arg(*arg);
            }
        }
        pipe.cmd("DISCARD");
        let mut retried = false;
        loop {
            let reused = self.begin(&label, deadline).await?;
            let Some(conn) = self.conn.as_mut() else {
                unreachable!("begin leaves a connection");
            };
            let result = timeout_at(deadline.at, pipe.query_async::<Value>(&mut conn.conn)).await;
            self.busy = false;
            let kind = match result {
                Ok(Ok(Value::Array(replies))) if replies.len() == commands.len() + 2 => {
                    let names = std::iter::once(&["MULTI"][..])
                        .chain(commands.iter().copied())
                        .chain(std::iter::once(&["DISCARD"][..]));
                    let replies: Vec<Result<Value, ClientError>> = names
                        .zip(replies)
                        .map(|(args, reply)| match reply {
                            Value::ServerError(e) => {
                                Err(self.error(args, ClientErrorKind::Reply(e.into())))
                            }
                            other => Ok(other),
                        })
                        .collect();
                    // Left inside a transaction: not reused.
                    if replies[0].is_ok() && replies[replies.len() - 1].is_err() {
                        self.conn = None;
                    }
                    return Ok(replies);
                }
                Ok(Ok(other)) => ClientErrorKind::UnexpectedReply(render(&other)),
                Err(_) => ClientErrorKind::Timeout(deadline.budget),
                Ok(Err(e)) if e.is_timeout() => ClientErrorKind::Timeout(deadline.budget),
                Ok(Err(e)) if e.is_connection_dropped() || e.is_io_error() => {
                    ClientErrorKind::ConnectionLost(e)
                }
                Ok(Err(e)) => ClientErrorKind::Other(e),
            };
            self.conn = None;
            if matches!(kind, ClientErrorKind::ConnectionLost(_)) && reused && !retried {
                retried = true;
                continue;
            }
            return Err(self.error(&label, kind));
        }
    }

    pub(crate) async fn ping_by(&mut self, deadline: Deadline) -> Result<Duration, ClientError> {
        let args = ["PING"];
        let (value, rtt) = self.exec(&args, deadline, Retry::Idempotent).await?;
        match value {
            Value::SimpleString(s) if s == "PONG" => Ok(rtt),
            other => Err(self.error(&args, ClientErrorKind::UnexpectedReply(render(&other)))),
        }
    }

    pub(crate) async fn info_by(&mut self, deadline: Deadline) -> Result<Snapshot, ClientError> {
        let mut args = vec!["INFO"];
        args.extend(INFO_SECTIONS);
        let text = match self.exec(&args, deadline, Retry::Idempotent).await?.0 {
            Value::VerbatimString { text, .. } | Value::SimpleString(text) => text,
            Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            other => {
                return Err(self.error(&args, ClientErrorKind::UnexpectedReply(render(&other))));
            }
        };
        parse_info(&text).map_err(|e| self.error(&args, ClientErrorKind::Snapshot(e)))
    }

    async fn ok(&mut self, args: &[&str]) -> Result<(), ClientError> {
        let deadline = self.response_deadline();
        match self.exec(args, deadline, Retry::Idempotent).await?.0 {
            Value::Okay => Ok(()),
            // "OK Already connected to specified master"
            Value::SimpleString(s) if s.starts_with("OK") => Ok(()),
            other => Err(self.error(args, ClientErrorKind::UnexpectedReply(render(&other)))),
        }
    }

    fn response_deadline(&self) -> Deadline {
        Deadline::after(self.options.response_timeout)
    }

    /// Connect (if needed), send, receive: one call. Returns the reply and
    /// the command's round-trip time (connecting not included).
    ///
    /// A connection that was idle since the previous call may have been
    /// closed by the server a moment ago, before its reader noticed: if such
    /// a reused connection turns out lost, an idempotent command is sent
    /// once more on a fresh connection, within the same deadline.
    async fn exec(
        &mut self,
        args: &[&str],
        deadline: Deadline,
        retry: Retry,
    ) -> Result<(Value, Duration), ClientError> {
        let mut retried = false;
        loop {
            let reused = self.begin(args, deadline).await?;
            let start = Instant::now();
            let result = self.query(args, deadline).await;
            let rtt = start.elapsed();
            match result {
                Err(ClientError {
                    kind: ClientErrorKind::ConnectionLost(e),
                    ..
                }) if reused && !retried && retry == Retry::Idempotent => {
                    debug!(
                        redis = %self.target.address, command = %describe(args), error = %e,
                        "idle connection was lost; sending again on a fresh one"
                    );
                    retried = true;
                }
                other => {
                    self.busy = false;
                    return other.map(|value| (value, rtt));
                }
            }
        }
    }

    /// Drops an untrusted connection, connects if needed, marks the client
    /// busy (cleared by the caller when the call completes). Returns whether
    /// an existing connection is reused.
    async fn begin(&mut self, args: &[&str], deadline: Deadline) -> Result<bool, ClientError> {
        if self.busy || self.conn.as_ref().is_some_and(Connection::is_lost) {
            self.conn = None;
        }
        self.busy = true;
        if self.conn.is_some() {
            return Ok(true);
        }
        match self.connect(args, deadline).await {
            Ok(conn) => {
                self.conn = Some(conn);
                Ok(false)
            }
            Err(e) => {
                self.busy = false;
                Err(e)
            }
        }
    }

    async fn connect(&self, args: &[&str], deadline: Deadline) -> Result<Connection, ClientError> {
        let (host, port) = self
            .target
            .host_port()
            .map_err(|e| self.error(args, ClientErrorKind::InvalidAddress(e)))?;
        let mut settings = RedisConnectionInfo::default()
            .set_protocol(ProtocolVersion::RESP3)
            // CLIENT SETINFO is Redis ≥ 7.2; older ones count an error reply
            // per connection in their stats.
            .set_skip_set_lib_name();
        if let Some(password) = &self.target.password {
            settings = settings.set_password(password);
            if let Some(username) = &self.target.username {
                settings = settings.set_username(username);
            }
        }
        let info = ConnectionAddr::Tcp(host, port)
            .into_connection_info()
            .map_err(|e| self.error(args, ClientErrorKind::Connect(e)))?
            .set_redis_settings(settings)
            .set_tcp_settings(TcpSettings::default().set_nodelay(true));
        let client =
            redis::Client::open(info).map_err(|e| self.error(args, ClientErrorKind::Connect(e)))?;

        let (lost_tx, lost_rx) = watch::channel(false);
        let config = AsyncConnectionConfig::new()
            // Our own deadlines bound both.
            .set_connection_timeout(None)
            .set_response_timeout(None)
            .set_push_sender(move |push: PushInfo| {
                if push.kind == PushKind::Disconnection {
                    lost_tx.send_replace(true);
                }
                Ok::<(), Infallible>(())
            });

        let connect_limit = Instant::now() + self.options.connect_timeout;
        let (limit, budget) = if connect_limit < deadline.at {
            (connect_limit, self.options.connect_timeout)
        } else {
            (deadline.at, deadline.budget)
        };
        let mut conn = match timeout_at(
            limit,
            client.get_multiplexed_async_connection_with_config(&config),
        )
        .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(self.error(args, connect_error(e, budget))),
            Err(_) => return Err(self.error(args, ClientErrorKind::ConnectTimeout(budget))),
        };
        if let Some(name) = &self.name {
            let setname = ["CLIENT", "SETNAME", name.as_str()];
            let reply = timeout_at(
                limit,
                redis::cmd("CLIENT")
                    .arg("SETNAME")
                    .arg(name)
                    .query_async::<Value>(&mut conn),
            )
            .await;
            let kind = match reply {
                Ok(Ok(_)) => None,
                Ok(Err(e)) if is_server_error(&e) => Some(ClientErrorKind::Reply(e)),
                Ok(Err(e)) => Some(connect_error(e, budget)),
                Err(_) => Some(ClientErrorKind::ConnectTimeout(budget)),
            };
            if let Some(kind) = kind {
                return Err(self.error(&setname, kind));
            }
        }
        Ok(Connection {
            conn,
            lost: lost_rx,
        })
    }

    async fn query(&mut self, args: &[&str], deadline: Deadline) -> Result<Value, ClientError> {
        let Some(conn) = self.conn.as_mut() else {
            unreachable!("query without a connection");
        };
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        let result = timeout_at(deadline.at, cmd.query_async::<Value>(&mut conn.conn)).await;
        let kind = match result {
            Ok(Ok(value)) => return Ok(value),
            Err(_) => ClientErrorKind::Timeout(deadline.budget),
            Ok(Err(e)) => {
                if is_server_error(&e) {
                    // The server answered: the connection is fine.
                    return Err(self.error(args, ClientErrorKind::Reply(e)));
                }
                if e.is_timeout() {
                    ClientErrorKind::Timeout(deadline.budget)
                } else if e.is_connection_dropped() || e.is_io_error() {
                    ClientErrorKind::ConnectionLost(e)
                } else {
                    ClientErrorKind::Other(e)
                }
            }
        };
        self.conn = None;
        Err(self.error(args, kind))
    }

    fn error(&self, args: &[&str], kind: ClientErrorKind) -> ClientError {
        ClientError {
            address: self.target.address.clone(),
            command: describe(args),
            kind,
        }
    }
}

/// An error reply as Redis wrote it (`NOPERM this user has no ...`); the
/// `redis` crate's own rendering spells the code its way (`NoPerm: ...`).
fn server_text(e: &RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

fn is_server_error(e: &RedisError) -> bool {
    matches!(e.kind(), ErrorKind::Server(_) | ErrorKind::Extension)
}

fn is_auth_error(e: &RedisError) -> bool {
    e.kind() == ErrorKind::AuthenticationFailed
        || matches!(e.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
}

fn connect_error(e: RedisError, budget: Duration) -> ClientErrorKind {
    if e.is_connection_refusal() {
        ClientErrorKind::Refused
    } else if e.is_timeout() {
        ClientErrorKind::ConnectTimeout(budget)
    } else if is_auth_error(&e) {
        ClientErrorKind::Auth(e)
    } else {
        ClientErrorKind::Connect(e)
    }
}

/// The command for messages, without arguments that may be secret.
fn describe(args: &[&str]) -> String {
    let Some(name) = args.first() else {
        return String::new();
    };
    let upper = name.to_ascii_uppercase();
    let shown = match upper.as_str() {
        "AUTH" | "HELLO" | "MIGRATE" => 1,
        "ACL" => 2,
        // The parameter, not its value.
        "CONFIG" => 3,
        _ => args.len(),
    };
    let mut text = args[..shown.min(args.len())].join(" ");
    if shown < args.len() {
        text.push_str(" ...");
    }
    if text.len() > 120 {
        let mut cut = 117;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

/// A string reply's text (bulk, simple or verbatim).
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
        Value::SimpleString(s) | Value::VerbatimString { text: s, .. } => Some(s.clone()),
        _ => None,
    }
}

/// Renders a reply as text (see [`Client::command`]).
fn render(value: &Value) -> String {
    fn items<'a>(values: impl Iterator<Item = &'a Value>) -> String {
        values.map(render).collect::<Vec<_>>().join("\n")
    }
    match value {
        Value::Nil => "(nil)".into(),
        Value::Int(i) => i.to_string(),
        Value::BulkString(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::VerbatimString { text, .. } => text.clone(),
        Value::Okay => "OK".into(),
        Value::Double(d) => d.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Array(values) | Value::Set(values) => items(values.iter()),
        Value::Map(pairs) => items(pairs.iter().flat_map(|(k, v)| [k, v])),
        Value::Attribute { data, .. } => render(data),
        Value::Push { data, .. } => items(data.iter()),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let hp = |a: &str| RedisTarget::new(a).host_port();
        assert_eq!(hp("127.0.0.1:6379"), Ok(("127.0.0.1".into(), 6379)));
        assert_eq!(hp("redis.example:7000"), Ok(("redis.example".into(), 7000)));
        assert_eq!(hp("[::1]:6380"), Ok(("::1".into(), 6380)));
        for bad in [
            "127.0.0.1",
            ":6379",
            "127.0.0.1:",
            "127.0.0.1:0",
            "127.0.0.1:65536",
            "127.0.0.1:+80",
            "::1:6379",
            "[::1:6379",
        ] {
            let err = hp(bad).unwrap_err();
            assert_eq!(err.address, bad);
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn passwords_stay_out_of_debug_and_errors() {
        let target = RedisTarget::new("127.0.0.1:1").with_user("redha", "s3cret");
        assert!(!format!("{target:?}").contains("s3cret"));
        assert_eq!(describe(&["AUTH", "redha", "s3cret"]), "AUTH ...");
        assert_eq!(
            describe(&["CONFIG", "SET", "requirepass", "s3cret"]),
            "CONFIG SET requirepass ..."
        );
        assert_eq!(
            describe(&["CONFIG", "GET", "maxmemory"]),
            "CONFIG GET maxmemory"
        );
        assert_eq!(
            describe(&["ACL", "SETUSER", "u", ">s3cret"]),
            "ACL SETUSER ..."
        );
        assert_eq!(
            describe(&["REPLICAOF", "10.0.0.1", "6379"]),
            "REPLICAOF 10.0.0.1 6379"
        );
        let long = "x".repeat(300);
        assert_eq!(describe(&["GET", &long]).len(), 120);
    }

    #[test]
    fn rendering() {
        assert_eq!(render(&Value::Okay), "OK");
        assert_eq!(render(&Value::Nil), "(nil)");
        assert_eq!(render(&Value::Int(-3)), "-3");
        assert_eq!(
            render(&Value::Map(vec![(
                Value::BulkString(b"maxmemory".to_vec()),
                Value::BulkString(b"0".to_vec())
            )])),
            "maxmemory\n0"
        );
        assert_eq!(
            render(&Value::Array(vec![
                Value::SimpleString("a".into()),
                Value::Int(1)
            ])),
            "a\n1"
        );
    }

    #[test]
    fn error_messages_name_redis_and_command() {
        let client = Client::new(RedisTarget::new("10.1.2.3:6379"), ClientOptions::default());
        let err = client.error(
            &["INFO", "replication"],
            ClientErrorKind::Timeout(Duration::from_millis(500)),
        );
        assert_eq!(
            err.to_string(),
            "redis 10.1.2.3:6379: INFO replication: no reply within 500ms"
        );
        assert!(err.is_timeout() && !err.is_connection_failure());
    }

    #[tokio::test]
    async fn invalid_address_fails_every_call() {
        let mut client = Client::new(RedisTarget::new("nonsense"), ClientOptions::default());
        let err = client.ping().await.unwrap_err();
        assert!(matches!(err.kind, ClientErrorKind::InvalidAddress(_)));
        assert!(
            err.to_string().starts_with("redis nonsense: PING: "),
            "{err}"
        );
    }
}
