//! Real `redis-server` processes for the tests, on free loopback ports.
//!
//! Each server gets its own temporary directory, no persistence
//! (`--save '' --appendonly no`), and is killed (SIGKILL) with its directory
//! removed when the [`RedisServer`] is dropped, also when a test panics.

#![allow(dead_code)]

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use health::{Client, ClientOptions, RedisTarget, Snapshot};

/// Set to `1` to make a missing redis-server a failure instead of a skip.
pub const REQUIRE_ENV: &str = "REDHA_REQUIRE_REDIS";

/// Returns `true` if `redis-server` can be run. Otherwise prints
/// `skipped: <test>: redis-server not installed` to stderr and returns
/// `false`, or panics when `REDHA_REQUIRE_REDIS=1`.
pub fn require_redis(test: &str) -> bool {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return true;
    }
    if std::env::var_os(REQUIRE_ENV).is_some_and(|v| v == "1") {
        panic!("{REQUIRE_ENV}=1 but redis-server is not installed ({test})");
    }
    let _ = writeln!(io::stderr(), "skipped: {test}: redis-server not installed");
    false
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// One redis-server process.
pub struct RedisServer {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    extra: Vec<String>,
    dir: PathBuf,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

impl RedisServer {
    /// Starts `redis-server --port N --bind 127.0.0.1 --save '' --appendonly
    /// no --dir <tempdir> <extra_args>` on a free port and waits until it
    /// answers PING (an error reply such as NOAUTH counts as an answer).
    pub fn start(extra_args: &[&str]) -> RedisServer {
        let extra: Vec<String> = extra_args.iter().map(|s| s.to_string()).collect();
        let mut last_log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let dir = std::env::temp_dir().join(format!(
                "redha-health-{}-{}-{port}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).expect("create temp dir");
            let mut server = RedisServer {
                port,
                extra: extra.clone(),
                dir,
                child: None,
            };
            match server.spawn() {
                Ok(()) => return server,
                Err(log) => last_log = log,
            }
        }
        panic!("redis-server did not start; last log:\n{last_log}");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = self.dir.join("redis.log");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .arg("--logfile")
            .arg(&log)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().ok().flatten() {
                self.child = None;
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("exited with {status}:\n{text}"));
            }
            if answers_ping(self.port) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.kill();
        Err(std::fs::read_to_string(&log).unwrap_or_default())
    }

    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A target without credentials.
    pub fn target(&self) -> RedisTarget {
        RedisTarget::new(self.address())
    }

    /// A client with short timeouts.
    pub fn client(&self) -> Client {
        Client::new(self.target(), options())
    }

    /// The process id, while running.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server not running").id()
    }

    /// SIGKILL and reap (no-op if not running).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts a new one on the same port with the same
    /// arguments and directory (nothing persisted: it comes back empty).
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(log) if Instant::now() > deadline => panic!("restart failed:\n{log}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Stops the process with SIGSTOP: its sockets stay open but nothing
    /// answers. SIGCONT comes when the guard drops.
    pub fn pause(&self) -> Paused {
        signal(self.pid(), "STOP");
        Paused { pid: self.pid() }
    }

    /// The tail of the server's log (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// SIGCONTs a paused server on drop.
pub struct Paused {
    pid: u32,
}

impl Drop for Paused {
    fn drop(&mut self) {
        signal(self.pid, "CONT");
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

fn answers_ping(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).is_ok()
        && (line.starts_with('+') || line.starts_with('-'))
}

/// Short timeouts for test clients.
pub fn options() -> ClientOptions {
    ClientOptions {
        connect_timeout: Duration::from_millis(1000),
        response_timeout: Duration::from_millis(1000),
    }
}

/// Polls `client.info()` until `pred` holds, or panics after `timeout`.
pub async fn wait_info(
    client: &mut Client,
    timeout: Duration,
    what: &str,
    pred: impl Fn(&Snapshot) -> bool,
) -> Snapshot {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    while Instant::now() < deadline {
        match client.info().await {
            Ok(s) if pred(&s) => return s,
            Ok(s) => last = Some(format!("{s:?}")),
            Err(e) => last = Some(e.to_string()),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}; last: {last:?}");
}

/// A temporary directory, removed on drop.
pub struct TempDir {
    /// Its path.
    pub path: PathBuf,
}

impl TempDir {
    /// A new, empty directory under the system's temporary directory.
    pub fn new(label: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "redha-health-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    /// The names of the files in it, sorted.
    pub fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.path)
            .expect("read temp dir")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
