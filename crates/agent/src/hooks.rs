//! Notify hooks, compatible with keepalived's `notify_master`, `notify_backup`,
//! `notify_fault`, `notify_stop` and `notify`.
//!
//! Configuration keys (in `[vrrp]`):
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `notify_master` | none | command run on entering MASTER, without extra arguments |
//! | `notify_backup` | none | command run on entering BACKUP |
//! | `notify_fault` | none | command run on entering FAULT |
//! | `notify_stop` | none | command run when the instance stops |
//! | `notify` | none | command run on every change, after the specific one, with four more arguments: `INSTANCE`, the instance name, the state (`MASTER`, `BACKUP`, `FAULT`, `STOP`) and the priority |
//! | `notify_timeout` | `"10s"` | a hook still running after this is killed (SIGKILL, its whole process group) |
//!
//! A command is split like keepalived splits it: words separated by white space, the
//! first one the program's absolute path, the rest its arguments; double quotes
//! (`"two words"`, with `\"` and `\\` inside) and single quotes (`'literal'`) group,
//! and a backslash outside quotes escapes the next character. No shell is involved.
//!
//! Like keepalived's `enable_script_security`, a program that a non-root user could
//! change is refused: it and every directory above it must be owned by root and not
//! writable by group or others (a root-owned directory with the sticky bit, like
//! `/tmp`, is accepted, as keepalived does); the path must be absolute and name an
//! executable regular file. Symbolic links are followed and both the path as written
//! and the resolved one are checked. [`HookConfig::check`] does this at load time;
//! the runner checks again before every run, in case the file changed since.
//!
//! Hooks never block the state machine: [`HookRunner::notify`] queues the change and
//! returns; one task per instance runs the hooks in order, one at a time, each with
//! `notify_timeout`, logging every line of their output and their exit status.

use std::collections::VecDeque;
use std::ffi::CString;
use std::fmt;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

/// Pending notifications kept per instance; when full, the oldest pending one is
/// dropped (and logged).
pub const QUEUE_CAPACITY: usize = 32;

/// Longest output line logged as one line; longer ones are split.
const MAX_LINE: usize = 4096;

/// Output lines logged per stream and run; the rest is read and discarded.
const MAX_LINES: usize = 1000;

/// After a hook exits, how long to wait for the end of its output before going on
/// (a process it started in the background may hold the pipe open; its output is
/// still logged as it comes).
const OUTPUT_GRACE: Duration = Duration::from_millis(250);

fn default_notify_timeout() -> Duration {
    Duration::from_secs(10)
}

/// The notify hooks of an instance. Deserialized from `[vrrp]` (flattened): no
/// `deny_unknown_fields` here, the enclosing table decides.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct HookConfig {
    /// Run on entering MASTER.
    #[serde(default)]
    pub notify_master: Option<String>,
    /// Run on entering BACKUP.
    #[serde(default)]
    pub notify_backup: Option<String>,
    /// Run on entering FAULT.
    #[serde(default)]
    pub notify_fault: Option<String>,
    /// Run when the instance stops.
    #[serde(default)]
    pub notify_stop: Option<String>,
    /// Run on every change, after the specific hook, with `INSTANCE <name> <state>
    /// <priority>` appended to its arguments.
    #[serde(default)]
    pub notify: Option<String>,
    /// A hook still running after this is killed; default 10s.
    #[serde(default = "default_notify_timeout", with = "humantime_serde")]
    pub notify_timeout: Duration,
}

impl Default for HookConfig {
    fn default() -> Self {
        HookConfig {
            notify_master: None,
            notify_backup: None,
            notify_fault: None,
            notify_stop: None,
            notify: None,
            notify_timeout: default_notify_timeout(),
        }
    }
}

impl HookConfig {
    /// The configured hooks, as (key, command).
    pub fn commands(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("notify_master", &self.notify_master),
            ("notify_backup", &self.notify_backup),
            ("notify_fault", &self.notify_fault),
            ("notify_stop", &self.notify_stop),
            ("notify", &self.notify),
        ]
        .into_iter()
        .filter_map(|(key, command)| command.as_deref().map(|c| (key, c)))
    }

    /// True when no hook is configured.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.commands().next().is_none()
    }

    /// Checks every configured hook: the command splits, and its program is an
    /// absolute path to an executable regular file that no non-root user could
    /// change. The first problem is returned, naming the key.
    pub fn check(&self) -> Result<(), HookError> {
        if self.notify_timeout.is_zero() {
            return Err(HookError {
                key: "notify_timeout",
                command: String::new(),
                refusal: Refusal::ZeroTimeout,
            });
        }
        for (key, command) in self.commands() {
            check_command(key, command)?;
        }
        Ok(())
    }

    /// The hooks to run for `state`, in order: the specific one, then `notify`.
    fn hooks_for(&self, state: HookState) -> Vec<(&'static str, &str)> {
        let specific = match state {
            HookState::Master => &self.notify_master,
            HookState::Backup => &self.notify_backup,
            HookState::Fault => &self.notify_fault,
            HookState::Stop => &self.notify_stop,
        };
        let mut hooks = Vec::with_capacity(2);
        if let Some(command) = specific {
            hooks.push((state.key(), command.as_str()));
        }
        if let Some(command) = &self.notify {
            hooks.push(("notify", command.as_str()));
        }
        hooks
    }
}

/// The state a hook is told about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HookState {
    /// Entered MASTER.
    Master,
    /// Entered BACKUP.
    Backup,
    /// Entered FAULT.
    Fault,
    /// The instance stopped.
    Stop,
}

impl HookState {
    /// The name keepalived passes to `notify`.
    pub fn name(self) -> &'static str {
        match self {
            HookState::Master => "MASTER",
            HookState::Backup => "BACKUP",
            HookState::Fault => "FAULT",
            HookState::Stop => "STOP",
        }
    }

    /// The key of the state's own hook.
    pub fn key(self) -> &'static str {
        match self {
            HookState::Master => "notify_master",
            HookState::Backup => "notify_backup",
            HookState::Fault => "notify_fault",
            HookState::Stop => "notify_stop",
        }
    }

    /// The hook state for a VRRP state; none for Initialize (keepalived runs no hook
    /// for it either).
    pub fn from_vrrp(state: vrrp::State) -> Option<HookState> {
        match state {
            vrrp::State::Initialize => None,
            vrrp::State::Backup => Some(HookState::Backup),
            vrrp::State::Master => Some(HookState::Master),
            vrrp::State::Fault => Some(HookState::Fault),
        }
    }
}

impl fmt::Display for HookState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A hook refused at load time (or before a run).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct HookError {
    /// The configuration key: `notify_master`, ..., `notify_timeout`.
    pub key: &'static str,
    /// The command as configured.
    pub command: String,
    /// Why it is refused.
    pub refusal: Refusal,
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.command.is_empty() {
            write!(f, "{}: {}", self.key, self.refusal)
        } else {
            write!(
                f,
                "{} = {:?}: refused: {}",
                self.key, self.command, self.refusal
            )
        }
    }
}

/// Why a hook is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `notify_timeout = "0s"`.
    ZeroTimeout,
    /// The command has no word.
    Empty,
    /// A quote is not closed, or the command ends with a lone backslash.
    Unterminated,
    /// The program is not an absolute path.
    Relative(PathBuf),
    /// The program (or a directory above it) does not exist.
    Missing(PathBuf),
    /// It could not be examined.
    Unreadable {
        /// The path.
        path: PathBuf,
        /// The error.
        error: String,
    },
    /// The program is not a regular file.
    NotAFile(PathBuf),
    /// The program has no execute bit, or this user may not execute it.
    NotExecutable {
        /// The program.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The program or a directory above it is owned by a non-root user.
    NotOwnedByRoot {
        /// The file or directory.
        path: PathBuf,
        /// Its owner.
        uid: u32,
        /// A directory, not the program.
        dir: bool,
    },
    /// The program or a directory above it is writable by group or others.
    Writable {
        /// The file or directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// "group", "others" or "group and others".
        by: &'static str,
        /// A directory, not the program.
        dir: bool,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const WHY: &str = "so a non-root user could change the script";
        let what = |dir: bool| if dir { "directory " } else { "" };
        match self {
            Refusal::ZeroTimeout => f.write_str("must be more than 0s"),
            Refusal::Empty => f.write_str("the command is empty"),
            Refusal::Unterminated => {
                f.write_str("a quote is not closed (or the command ends with a backslash)")
            }
            Refusal::Relative(p) => write!(
                f,
                "the program {} is not an absolute path; give its full path",
                p.display()
            ),
            Refusal::Missing(p) => write!(f, "{} does not exist", p.display()),
            Refusal::Unreadable { path, error } => {
                write!(f, "cannot examine {}: {error}", path.display())
            }
            Refusal::NotAFile(p) => write!(f, "{} is not a regular file", p.display()),
            Refusal::NotExecutable { path, mode } => write!(
                f,
                "{} is not executable by this user (uid {}, mode {:04o})",
                path.display(),
                geteuid(),
                mode & 0o7777
            ),
            Refusal::NotOwnedByRoot { path, uid, dir } => write!(
                f,
                "{}{} is owned by uid {uid}, not root, {WHY}",
                what(*dir),
                path.display()
            ),
            Refusal::Writable {
                path,
                mode,
                by,
                dir,
            } => write!(
                f,
                "{}{} is writable by {by} (mode {:04o}), {WHY}",
                what(*dir),
                path.display(),
                mode & 0o7777
            ),
        }
    }
}

/// Splits a command like keepalived: white space separates words; `"..."` groups
/// (inside, `\"` and `\\` are escapes, other backslashes stay); `'...'` groups
/// literally; outside quotes a backslash takes the next character as it is.
pub fn split_command(command: &str) -> Result<Vec<String>, Refusal> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return Err(Refusal::Unterminated),
                        Some('"') => break,
                        Some('\\') => match chars.peek() {
                            Some(&e @ ('"' | '\\')) => {
                                word.push(e);
                                chars.next();
                            }
                            _ => word.push('\\'),
                        },
                        Some(c) => word.push(c),
                    }
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        None => return Err(Refusal::Unterminated),
                        Some('\'') => break,
                        Some(c) => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err(Refusal::Unterminated),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() || words[0].is_empty() {
        return Err(Refusal::Empty);
    }
    Ok(words)
}

/// Splits `command` and checks its program; returns the words.
pub fn check_command(key: &'static str, command: &str) -> Result<Vec<String>, HookError> {
    let fail = |refusal| HookError {
        key,
        command: command.to_string(),
        refusal,
    };
    let argv = split_command(command).map_err(fail)?;
    check_program(Path::new(&argv[0])).map_err(fail)?;
    Ok(argv)
}

/// The security check of one program: see the module documentation.
pub fn check_program(program: &Path) -> Result<(), Refusal> {
    if !program.is_absolute() {
        return Err(Refusal::Relative(program.to_path_buf()));
    }
    let examine = |path: &Path| {
        std::fs::metadata(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Refusal::Missing(path.to_path_buf()),
            _ => Refusal::Unreadable {
                path: path.to_path_buf(),
                error: e.to_string(),
            },
        })
    };
    // The directories above the path as written (a directory holding a symbolic link
    // decides what the link may be replaced with), from the root down ...
    let mut dirs: Vec<&Path> = program.ancestors().skip(1).collect();
    dirs.reverse();
    for dir in dirs {
        secure(dir, &examine(dir)?)?;
    }
    // ... then the resolved path, from the root down to the program itself.
    let real = std::fs::canonicalize(program).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Refusal::Missing(program.to_path_buf()),
        _ => Refusal::Unreadable {
            path: program.to_path_buf(),
            error: e.to_string(),
        },
    })?;
    let mut chain: Vec<&Path> = real.ancestors().collect();
    chain.reverse();
    for path in chain {
        secure(path, &examine(path)?)?;
    }
    let meta = examine(&real)?;
    if !meta.is_file() {
        return Err(Refusal::NotAFile(program.to_path_buf()));
    }
    if meta.mode() & 0o111 == 0 || !executable(&real) {
        return Err(Refusal::NotExecutable {
            path: program.to_path_buf(),
            mode: meta.mode(),
        });
    }
    Ok(())
}

/// Owned by root and not writable by group or others, unless it is a directory with
/// the sticky bit (only a file's owner may remove or rename it there).
fn secure(path: &Path, meta: &std::fs::Metadata) -> Result<(), Refusal> {
    let dir = meta.is_dir();
    if meta.uid() != 0 {
        return Err(Refusal::NotOwnedByRoot {
            path: path.to_path_buf(),
            uid: meta.uid(),
            dir,
        });
    }
    let mode = meta.mode();
    let sticky_dir = dir && mode & 0o1000 != 0;
    let by = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        _ if sticky_dir => None,
        (true, true) => Some("group and others"),
        (true, false) => Some("group"),
        (false, true) => Some("others"),
        (false, false) => None,
    };
    match by {
        Some(by) => Err(Refusal::Writable {
            path: path.to_path_buf(),
            mode,
            by,
            dir,
        }),
        None => Ok(()),
    }
}

fn geteuid() -> u32 {
    // SAFETY: geteuid(2) cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// May this process execute `path` (access(2) with X_OK)?
fn executable(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    unsafe { libc::access(c.as_ptr(), libc::X_OK) == 0 }
}

/// Sends SIGKILL to a process group.
fn kill_group(pgid: u32) {
    if let Ok(pgid) = i32::try_from(pgid)
        && pgid > 0
    {
        // SAFETY: kill(2) on a process group we started.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
    }
}

/// Which output stream a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// How a hook run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookOutcome {
    /// It exited with this status.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
    /// It ran longer than `notify_timeout` and was killed with SIGKILL.
    TimedOut,
    /// The security check refused it (the file changed since load).
    Refused(String),
    /// It could not be started.
    SpawnFailed(String),
}

/// What the runner did, for tests and for a status page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookEvent {
    /// A hook started.
    Started {
        /// `notify_master`, ..., `notify`.
        key: &'static str,
        /// The state it is told about.
        state: HookState,
        /// Program and arguments.
        argv: Vec<String>,
    },
    /// A line of its output.
    Output {
        /// The hook.
        key: &'static str,
        /// The stream.
        stream: Stream,
        /// The line, without its newline (invalid UTF-8 replaced).
        line: String,
    },
    /// A hook ended.
    Finished {
        /// The hook.
        key: &'static str,
        /// The state it was told about.
        state: HookState,
        /// How it ended.
        outcome: HookOutcome,
        /// How long it ran.
        elapsed: Duration,
    },
    /// The queue was full: this pending notification was dropped, its hooks not run.
    Dropped {
        /// Its state.
        state: HookState,
        /// Its priority.
        priority: u8,
    },
}

/// Sends events and logs; cloned into the output readers.
#[derive(Clone)]
struct Reporter {
    instance: Arc<str>,
    events: Option<mpsc::UnboundedSender<HookEvent>>,
}

impl Reporter {
    fn send(&self, event: HookEvent) {
        if let Some(events) = &self.events {
            let _ = events.send(event);
        }
    }
}

struct Job {
    state: HookState,
    priority: u8,
    queued: Instant,
}

struct Queue {
    config: HookConfig,
    pending: VecDeque<Job>,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Notify,
}

/// Runs one instance's hooks, in order, one at a time, off the state machine's path.
pub struct HookRunner {
    shared: Arc<Shared>,
    reporter: Reporter,
    task: JoinHandle<()>,
}

impl HookRunner {
    /// Starts the runner's task for instance `name` (needs a tokio runtime).
    pub fn spawn(name: String, config: HookConfig) -> HookRunner {
        Self::start(name, config, None)
    }

    /// Like [`HookRunner::spawn`], and reports every start, output line, end and
    /// dropped notification on `events`.
    #[cfg(test)]
    pub fn spawn_with_events(
        name: String,
        config: HookConfig,
        events: mpsc::UnboundedSender<HookEvent>,
    ) -> HookRunner {
        Self::start(name, config, Some(events))
    }

    fn start(
        name: String,
        config: HookConfig,
        events: Option<mpsc::UnboundedSender<HookEvent>>,
    ) -> HookRunner {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                config,
                pending: VecDeque::new(),
                closed: false,
            }),
            wake: Notify::new(),
        });
        let reporter = Reporter {
            instance: name.into(),
            events,
        };
        let task = tokio::spawn(work(shared.clone(), reporter.clone()));
        HookRunner {
            shared,
            reporter,
            task,
        }
    }

    /// Queues the hooks for `state` and returns at once. Without a hook for the
    /// state, nothing is queued. A full queue drops its oldest pending notification.
    pub fn notify(&self, state: HookState, priority: u8) {
        let dropped = {
            let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            if queue.closed || queue.config.hooks_for(state).is_empty() {
                return;
            }
            queue.pending.push_back(Job {
                state,
                priority,
                queued: Instant::now(),
            });
            if queue.pending.len() > QUEUE_CAPACITY {
                queue.pending.pop_front()
            } else {
                None
            }
        };
        self.shared.wake.notify_one();
        if let Some(job) = dropped {
            warn!(
                instance = %self.reporter.instance,
                state = %job.state,
                priority = job.priority,
                queued_for = ?job.queued.elapsed(),
                "hook queue full ({QUEUE_CAPACITY} pending): dropped the oldest pending notification, its hooks will not run"
            );
            self.reporter.send(HookEvent::Dropped {
                state: job.state,
                priority: job.priority,
            });
        }
    }

    /// Replaces the hooks (on reload); notifications already queued run with the new
    /// ones, a hook already running finishes.
    pub fn reconfigure(&self, config: HookConfig) {
        let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.config = config;
    }

    /// Notifications waiting (not counting the one running).
    #[cfg(test)]
    pub fn pending(&self) -> usize {
        let queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.pending.len()
    }

    /// Runs what is queued (such as the STOP hooks), then ends the task. Each hook is
    /// bounded by `notify_timeout`; wrap this in a timeout for a tighter bound (a
    /// hook still running is then killed when the runtime ends).
    pub async fn shutdown(self) {
        {
            let mut queue = self.shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            queue.closed = true;
        }
        self.shared.wake.notify_one();
        let _ = self.task.await;
    }
}

async fn work(shared: Arc<Shared>, reporter: Reporter) {
    loop {
        let next = {
            let mut queue = shared.queue.lock().unwrap_or_else(|e| e.into_inner());
            match queue.pending.pop_front() {
                Some(job) => Some((job, queue.config.clone())),
                None if queue.closed => return,
                None => None,
            }
        };
        let Some((job, config)) = next else {
            // A notify_one() between the unlock and here leaves a permit: no wake-up
            // is lost.
            shared.wake.notified().await;
            continue;
        };
        for (key, command) in config.hooks_for(job.state) {
            let mut argv = match split_command(command) {
                Ok(argv) => argv,
                Err(refusal) => {
                    let error = HookError {
                        key,
                        command: command.to_string(),
                        refusal,
                    };
                    error!(instance = %reporter.instance, hook = key, state = %job.state, "hook not run: {error}");
                    reporter.send(HookEvent::Finished {
                        key,
                        state: job.state,
                        outcome: HookOutcome::Refused(error.to_string()),
                        elapsed: Duration::ZERO,
                    });
                    continue;
                }
            };
            if key == "notify" {
                argv.extend([
                    "INSTANCE".to_string(),
                    reporter.instance.to_string(),
                    job.state.name().to_string(),
                    job.priority.to_string(),
                ]);
            }
            run_hook(
                &reporter,
                key,
                command,
                job.state,
                argv,
                config.notify_timeout,
            )
            .await;
        }
    }
}

/// Runs one hook to its end (or its timeout) and reports it.
async fn run_hook(
    reporter: &Reporter,
    key: &'static str,
    command: &str,
    state: HookState,
    argv: Vec<String>,
    timeout: Duration,
) -> HookOutcome {
    let instance = &reporter.instance;
    let started = Instant::now();
    let finish = |outcome: HookOutcome| {
        reporter.send(HookEvent::Finished {
            key,
            state,
            outcome: outcome.clone(),
            elapsed: started.elapsed(),
        });
        outcome
    };
    // The file may have changed since the configuration was loaded.
    if let Err(refusal) = check_program(Path::new(&argv[0])) {
        let error = HookError {
            key,
            command: command.to_string(),
            refusal,
        };
        error!(instance = %instance, hook = key, state = %state, "hook not run: {error}");
        return finish(HookOutcome::Refused(error.to_string()));
    }
    info!(instance = %instance, hook = key, state = %state, argv = ?argv, "running hook");
    reporter.send(HookEvent::Started {
        key,
        state,
        argv: argv.clone(),
    });
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .current_dir("/")
        // Its own process group, so that a timeout kills what it started too.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match spawn(&mut cmd).await {
        Ok(child) => child,
        Err(e) => {
            error!(instance = %instance, hook = key, state = %state, error = %e, "hook could not be started");
            return finish(HookOutcome::SpawnFailed(e.to_string()));
        }
    };
    let pid = child.id();
    let readers = [
        child
            .stdout
            .take()
            .map(|s| tokio::spawn(log_lines(s, Stream::Stdout, reporter.clone(), key))),
        child
            .stderr
            .take()
            .map(|s| tokio::spawn(log_lines(s, Stream::Stderr, reporter.clone(), key))),
    ];
    let outcome = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => match (status.code(), status.signal()) {
            (Some(code), _) => HookOutcome::Exited(code),
            (None, Some(signal)) => HookOutcome::Signaled(signal),
            (None, None) => HookOutcome::SpawnFailed(format!("unknown exit status {status}")),
        },
        Ok(Err(e)) => HookOutcome::SpawnFailed(format!("waiting for it: {e}")),
        Err(_) => {
            // Not reaped yet, so the group id is still ours.
            if let Some(pid) = pid {
                kill_group(pid);
            }
            let _ = child.start_kill();
            let _ = child.wait().await;
            HookOutcome::TimedOut
        }
    };
    let drained = async {
        for reader in readers.into_iter().flatten() {
            let _ = reader.await;
        }
    };
    if tokio::time::timeout(OUTPUT_GRACE, drained).await.is_err() {
        debug!(instance = %instance, hook = key, "hook output still open (a process it started in the background?); logging it as it comes");
    }
    let elapsed = started.elapsed();
    match &outcome {
        HookOutcome::Exited(0) => {
            info!(instance = %instance, hook = key, state = %state, elapsed = ?elapsed, "hook exited with status 0")
        }
        HookOutcome::Exited(code) => {
            warn!(instance = %instance, hook = key, state = %state, elapsed = ?elapsed, "hook exited with status {code}")
        }
        HookOutcome::Signaled(signal) => {
            warn!(instance = %instance, hook = key, state = %state, elapsed = ?elapsed, "hook killed by signal {signal}")
        }
        HookOutcome::TimedOut => {
            error!(instance = %instance, hook = key, state = %state, timeout = ?timeout, "hook timed out: killed it and its process group with SIGKILL")
        }
        HookOutcome::Refused(_) | HookOutcome::SpawnFailed(_) => {
            error!(instance = %instance, hook = key, state = %state, outcome = ?outcome, "hook failed")
        }
    }
    finish(outcome)
}

/// Spawns, retrying briefly on ETXTBSY (the script was being written at that moment,
/// or another thread's fork still held it open for writing).
async fn spawn(cmd: &mut tokio::process::Command) -> io::Result<tokio::process::Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.kind() == io::ErrorKind::ExecutableFileBusy && tries < 5 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            result => return result,
        }
    }
}

/// Logs a stream line by line (and reports each line), until it closes.
async fn log_lines(
    mut stream: impl AsyncRead + Unpin,
    which: Stream,
    reporter: Reporter,
    key: &'static str,
) {
    let mut lines = 0usize;
    let mut emit = |bytes: &[u8]| {
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        lines += 1;
        if lines > MAX_LINES {
            if lines == MAX_LINES + 1 {
                warn!(instance = %reporter.instance, hook = key, stream = which.name(), "more than {MAX_LINES} lines: the rest of this hook's {} is not logged", which.name());
            }
            return;
        }
        let line = String::from_utf8_lossy(bytes).into_owned();
        info!(instance = %reporter.instance, hook = key, stream = which.name(), "{line}");
        reporter.send(HookEvent::Output {
            key,
            stream: which,
            line,
        });
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&chunk[..n]);
        let mut start = 0;
        while let Some(at) = pending[start..].iter().position(|&b| b == b'\n') {
            emit(&pending[start..start + at]);
            start += at + 1;
        }
        while pending.len() - start >= MAX_LINE {
            emit(&pending[start..start + MAX_LINE]);
            start += MAX_LINE;
        }
        pending.drain(..start);
    }
    if !pending.is_empty() {
        emit(&pending);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A directory of its own under the temporary directory, owned by root, mode
    /// 0755, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let path = std::env::temp_dir().join(format!(
                "redha-hooks-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir(&path).unwrap();
            chmod(&path, 0o755);
            TempDir(path)
        }

        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }

        /// Writes an executable `#!/bin/sh` script (mode 0755).
        fn script(&self, name: &str, body: &str) -> PathBuf {
            let path = self.path(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            chmod(&path, 0o755);
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn chmod(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// Hook scripts must be owned by root: the tests that run them need root.
    fn root(test: &str) -> bool {
        if geteuid() == 0 {
            return true;
        }
        println!("skipped: hooks::tests::{test}: needs root (hook scripts must be owned by root)");
        false
    }

    fn config() -> HookConfig {
        HookConfig::default()
    }

    fn q(path: &Path) -> String {
        path.display().to_string()
    }

    /// Collects events until `n` Finished events have arrived (or 20 s pass).
    async fn finished(rx: &mut mpsc::UnboundedReceiver<HookEvent>, n: usize) -> Vec<HookEvent> {
        let mut events = Vec::new();
        let mut done = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while done < n {
            let event = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .unwrap_or_else(|_| panic!("only {done} of {n} hooks finished: {events:#?}"))
                .expect("the runner is gone");
            if matches!(event, HookEvent::Finished { .. }) {
                done += 1;
            }
            events.push(event);
        }
        events
    }

    fn outcomes(events: &[HookEvent]) -> Vec<(&'static str, HookState, HookOutcome)> {
        events
            .iter()
            .filter_map(|e| match e {
                HookEvent::Finished {
                    key,
                    state,
                    outcome,
                    ..
                } => Some((*key, *state, outcome.clone())),
                _ => None,
            })
            .collect()
    }

    // ---- splitting ----

    #[test]
    fn splits_like_keepalived() {
        let s = |c: &str| split_command(c).unwrap();
        assert_eq!(s("/bin/x"), ["/bin/x"]);
        assert_eq!(s("  /bin/x  a   b "), ["/bin/x", "a", "b"]);
        assert_eq!(
            s(r#"/bin/x "two words" 'single "q"' plain"#),
            ["/bin/x", "two words", "single \"q\"", "plain"]
        );
        assert_eq!(
            s(r#"/bin/x "a \"quoted\" \\ b""#),
            ["/bin/x", r#"a "quoted" \ b"#]
        );
        assert_eq!(
            s(r#"/bin/x a\ b pre"fix"post """#),
            ["/bin/x", "a b", "prefixpost", ""]
        );
        assert_eq!(s(r#""/opt/my dir/hook" x"#), ["/opt/my dir/hook", "x"]);
        assert_eq!(split_command(""), Err(Refusal::Empty));
        assert_eq!(split_command("   "), Err(Refusal::Empty));
        assert_eq!(split_command(r#"/bin/x "open"#), Err(Refusal::Unterminated));
        assert_eq!(split_command("/bin/x 'open"), Err(Refusal::Unterminated));
        assert_eq!(split_command("/bin/x \\"), Err(Refusal::Unterminated));
    }

    #[test]
    fn config_keys_and_defaults() {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Vrrp {
            #[allow(dead_code)]
            interface: String,
            #[serde(flatten)]
            hooks: HookConfig,
        }
        let v: Vrrp = toml::from_str(
            r#"
                interface = "eth0"
                notify_master = "/etc/redha/master.sh arg"
                notify = "/etc/redha/notify.sh"
                notify_timeout = "2500ms"
            "#,
        )
        .unwrap();
        assert_eq!(
            v.hooks.notify_master.as_deref(),
            Some("/etc/redha/master.sh arg")
        );
        assert_eq!(v.hooks.notify.as_deref(), Some("/etc/redha/notify.sh"));
        assert_eq!(v.hooks.notify_backup, None);
        assert_eq!(v.hooks.notify_timeout, Duration::from_millis(2500));
        let v: Vrrp = toml::from_str("interface = \"eth0\"").unwrap();
        assert_eq!(v.hooks, HookConfig::default());
        assert_eq!(v.hooks.notify_timeout, Duration::from_secs(10));
        assert!(v.hooks.is_empty());
        assert!(v.hooks.check().is_ok());
        // The enclosing table still refuses an unknown key.
        assert!(toml::from_str::<Vrrp>("interface = \"eth0\"\nnotify_mastr = \"/x\"").is_err());
        let zero = HookConfig {
            notify_timeout: Duration::ZERO,
            ..config()
        };
        assert_eq!(
            zero.check().unwrap_err().to_string(),
            "notify_timeout: must be more than 0s"
        );
    }

    #[test]
    fn hook_order_per_state() {
        let c = HookConfig {
            notify_master: Some("/m".into()),
            notify_stop: Some("/s".into()),
            notify: Some("/n".into()),
            ..config()
        };
        assert_eq!(
            c.hooks_for(HookState::Master),
            [("notify_master", "/m"), ("notify", "/n")]
        );
        assert_eq!(c.hooks_for(HookState::Backup), [("notify", "/n")]);
        assert_eq!(
            c.hooks_for(HookState::Stop),
            [("notify_stop", "/s"), ("notify", "/n")]
        );
        assert_eq!(
            HookState::from_vrrp(vrrp::State::Master),
            Some(HookState::Master)
        );
        assert_eq!(HookState::from_vrrp(vrrp::State::Initialize), None);
    }

    // ---- security ----

    /// The refusal of `command` as `notify_backup`.
    fn refusal(command: &str) -> Refusal {
        let c = HookConfig {
            notify_backup: Some(command.to_string()),
            ..config()
        };
        let e = c.check().expect_err(command);
        assert_eq!(e.key, "notify_backup");
        assert!(e.to_string().starts_with("notify_backup = "), "{e}");
        e.refusal
    }

    #[test]
    fn security_accepts_a_root_script_in_a_root_directory() {
        if !root("security_accepts_a_root_script_in_a_root_directory") {
            return;
        }
        let dir = TempDir::new();
        let script = dir.script("ok.sh", "exit 0");
        let c = HookConfig {
            notify_master: Some(format!("{} \"with args\"", q(&script))),
            notify: Some(q(&script)),
            ..config()
        };
        c.check().unwrap();
        // A root-owned sticky directory writable by all is accepted, as keepalived does.
        let sticky = dir.path("sticky");
        std::fs::create_dir(&sticky).unwrap();
        chmod(&sticky, 0o1777);
        let inner = sticky.join("hook.sh");
        std::fs::write(&inner, "#!/bin/sh\n").unwrap();
        chmod(&inner, 0o755);
        check_program(&inner).unwrap();
        // /bin/true through the /bin symbolic link (on merged-/usr systems).
        check_program(Path::new("/bin/true")).unwrap();
    }

    #[test]
    fn security_refuses_a_world_writable_directory() {
        if !root("security_refuses_a_world_writable_directory") {
            return;
        }
        let dir = TempDir::new();
        let script = dir.script("hook.sh", "exit 0");
        chmod(&dir.0, 0o777);
        let r = refusal(&q(&script));
        assert_eq!(
            r,
            Refusal::Writable {
                path: dir.0.clone(),
                mode: 0o40777,
                by: "group and others",
                dir: true
            }
        );
        let c = HookConfig {
            notify_backup: Some(q(&script)),
            ..config()
        };
        let message = c.check().unwrap_err().to_string();
        assert!(
            message.contains(&format!(
                "directory {} is writable by group and others (mode 0777), so a non-root user could change the script",
                dir.0.display()
            )),
            "{message}"
        );
    }

    #[test]
    fn security_refuses_a_group_writable_script() {
        if !root("security_refuses_a_group_writable_script") {
            return;
        }
        let dir = TempDir::new();
        let script = dir.script("hook.sh", "exit 0");
        chmod(&script, 0o775);
        assert!(matches!(
            refusal(&q(&script)),
            Refusal::Writable {
                by: "group",
                dir: false,
                ..
            }
        ));
        chmod(&script, 0o757);
        assert!(matches!(
            refusal(&q(&script)),
            Refusal::Writable {
                by: "others",
                dir: false,
                ..
            }
        ));
    }

    #[test]
    fn security_refuses_a_script_owned_by_a_non_root_user() {
        if !root("security_refuses_a_script_owned_by_a_non_root_user") {
            return;
        }
        let dir = TempDir::new();
        let script = dir.script("hook.sh", "exit 0");
        std::os::unix::fs::chown(&script, Some(65534), Some(65534)).unwrap();
        assert_eq!(
            refusal(&q(&script)),
            Refusal::NotOwnedByRoot {
                path: script.clone(),
                uid: 65534,
                dir: false
            }
        );
        // A directory owned by a non-root user.
        let sub = dir.path("sub");
        std::fs::create_dir(&sub).unwrap();
        chmod(&sub, 0o755);
        let inner = sub.join("hook.sh");
        std::fs::write(&inner, "#!/bin/sh\n").unwrap();
        chmod(&inner, 0o755);
        std::os::unix::fs::chown(&sub, Some(65534), None).unwrap();
        let message = HookConfig {
            notify_backup: Some(q(&inner)),
            ..config()
        }
        .check()
        .unwrap_err()
        .to_string();
        assert!(
            message.contains(&format!(
                "directory {} is owned by uid 65534, not root",
                sub.display()
            )),
            "{message}"
        );
    }

    #[test]
    fn security_refuses_a_relative_path() {
        assert_eq!(refusal("hook.sh arg"), Refusal::Relative("hook.sh".into()));
        assert_eq!(refusal("./hook.sh"), Refusal::Relative("./hook.sh".into()));
        let message = HookConfig {
            notify_backup: Some("bin/hook.sh".into()),
            ..config()
        }
        .check()
        .unwrap_err()
        .to_string();
        assert_eq!(
            message,
            "notify_backup = \"bin/hook.sh\": refused: the program bin/hook.sh is not an absolute path; give its full path"
        );
    }

    #[test]
    fn security_refuses_a_missing_or_non_executable_file() {
        let dir = TempDir::new();
        let missing = dir.path("missing.sh");
        assert_eq!(refusal(&q(&missing)), Refusal::Missing(missing.clone()));
        assert_eq!(
            refusal("/nonexistent-dir/hook.sh"),
            Refusal::Missing("/nonexistent-dir".into())
        );
        if !root("security_refuses_a_missing_or_non_executable_file") {
            return;
        }
        let plain = dir.path("plain.sh");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        chmod(&plain, 0o644);
        assert!(matches!(refusal(&q(&plain)), Refusal::NotExecutable { .. }));
        assert_eq!(refusal(&q(&dir.0)), Refusal::NotAFile(dir.0.clone()));
        assert_eq!(refusal("\"\" x"), Refusal::Empty);
    }

    #[test]
    fn security_follows_symbolic_links() {
        if !root("security_follows_symbolic_links") {
            return;
        }
        let dir = TempDir::new();
        let open = dir.path("open");
        std::fs::create_dir(&open).unwrap();
        chmod(&open, 0o777);
        let target = open.join("hook.sh");
        std::fs::write(&target, "#!/bin/sh\n").unwrap();
        chmod(&target, 0o755);
        let link = dir.path("link.sh");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(matches!(
            refusal(&q(&link)),
            Refusal::Writable { dir: true, path, .. } if path == open
        ));
    }

    // ---- running ----

    #[tokio::test]
    async fn hooks_get_keepalived_arguments() {
        if !root("hooks_get_keepalived_arguments") {
            return;
        }
        let dir = TempDir::new();
        let out = dir.path("args");
        // One line per argument, then a separator.
        let script = dir.script(
            "args.sh",
            &format!(
                "for a in \"$@\"; do printf '%s\\n' \"$a\" >> {o}; done; echo --- >> {o}",
                o = q(&out)
            ),
        );
        let c = HookConfig {
            notify_master: Some(format!("{} \"two words\" 'x y' plain", q(&script))),
            notify_backup: Some(q(&script)),
            notify: Some(format!("{} first", q(&script))),
            ..config()
        };
        c.check().unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let runner = HookRunner::spawn_with_events("redis-vip".into(), c, tx);
        runner.notify(HookState::Master, 150);
        runner.notify(HookState::Backup, 100);
        runner.notify(HookState::Fault, 0); // no notify_fault: only `notify`
        runner.notify(HookState::Stop, 100);
        let events = finished(&mut rx, 6).await;
        runner.shutdown().await;
        for (_, _, outcome) in outcomes(&events) {
            assert_eq!(outcome, HookOutcome::Exited(0), "{events:#?}");
        }
        let text = std::fs::read_to_string(&out).unwrap();
        let mut runs: Vec<Vec<&str>> = vec![Vec::new()];
        for line in text.lines() {
            if line == "---" {
                runs.push(Vec::new());
            } else {
                runs.last_mut().unwrap().push(line);
            }
        }
        runs.pop();
        let notify = |state: &'static str, priority: &'static str| {
            vec!["first", "INSTANCE", "redis-vip", state, priority]
        };
        assert_eq!(
            runs,
            [
                vec!["two words", "x y", "plain"],
                notify("MASTER", "150"),
                vec![], // notify_backup: no argument at all
                notify("BACKUP", "100"),
                notify("FAULT", "0"),
                notify("STOP", "100"),
            ],
            "{text}"
        );
        let keys: Vec<_> = outcomes(&events)
            .into_iter()
            .map(|(k, s, _)| (k, s))
            .collect();
        assert_eq!(
            keys,
            [
                ("notify_master", HookState::Master),
                ("notify", HookState::Master),
                ("notify_backup", HookState::Backup),
                ("notify", HookState::Backup),
                ("notify", HookState::Fault),
                ("notify", HookState::Stop),
            ]
        );
        let started: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                HookEvent::Started { key, argv, .. } => Some((*key, argv.len())),
                _ => None,
            })
            .collect();
        assert_eq!(started[2], ("notify_backup", 1));
    }

    #[tokio::test]
    async fn hooks_run_in_order_one_at_a_time() {
        if !root("hooks_run_in_order_one_at_a_time") {
            return;
        }
        let dir = TempDir::new();
        let log = dir.path("log");
        let script = |name: &str| {
            dir.script(
                name,
                &format!(
                    "echo \"start {name} $(date +%s%N)\" >> {l}; sleep 0.2; echo \"end {name} $(date +%s%N)\" >> {l}",
                    l = q(&log)
                ),
            )
        };
        let c = HookConfig {
            notify_master: Some(q(&script("master"))),
            notify_backup: Some(q(&script("backup"))),
            notify_fault: Some(q(&script("fault"))),
            notify: Some(q(&script("notify"))),
            ..config()
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let runner = HookRunner::spawn_with_events("vi".into(), c, tx);
        runner.notify(HookState::Master, 100);
        runner.notify(HookState::Backup, 100);
        runner.notify(HookState::Fault, 100);
        finished(&mut rx, 6).await;
        runner.shutdown().await;
        let text = std::fs::read_to_string(&log).unwrap();
        let entries: Vec<(String, String, u128)> = text
            .lines()
            .map(|l| {
                let w: Vec<&str> = l.split(' ').collect();
                (w[0].to_string(), w[1].to_string(), w[2].parse().unwrap())
            })
            .collect();
        let names: Vec<String> = entries
            .iter()
            .map(|(what, name, _)| format!("{what} {name}"))
            .collect();
        assert_eq!(
            names,
            [
                "start master",
                "end master",
                "start notify",
                "end notify",
                "start backup",
                "end backup",
                "start notify",
                "end notify",
                "start fault",
                "end fault",
                "start notify",
                "end notify"
            ],
            "{text}"
        );
        // Never overlapping: each start comes after the previous end.
        for pair in entries.windows(2) {
            assert!(pair[1].2 >= pair[0].2, "{text}");
        }
    }

    #[tokio::test]
    async fn a_hook_past_its_timeout_is_killed_and_the_next_runs() {
        if !root("a_hook_past_its_timeout_is_killed_and_the_next_runs") {
            return;
        }
        let dir = TempDir::new();
        let pid_file = dir.path("sleep.pid");
        let done = dir.path("done");
        // The sleep runs in the background, holding the output pipe: the whole process
        // group must die.
        let slow = dir.script(
            "slow.sh",
            &format!(
                "echo going to sleep\nsleep 30 &\necho $! > {}\nwait",
                q(&pid_file)
            ),
        );
        let next = dir.script("next.sh", &format!("touch {}", q(&done)));
        let c = HookConfig {
            notify_master: Some(q(&slow)),
            notify_backup: Some(q(&next)),
            notify_timeout: Duration::from_millis(500),
            ..config()
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let runner = HookRunner::spawn_with_events("vi".into(), c, tx);
        let t0 = Instant::now();
        runner.notify(HookState::Master, 100);
        runner.notify(HookState::Backup, 100);
        let events = finished(&mut rx, 2).await;
        let took = t0.elapsed();
        runner.shutdown().await;
        let o = outcomes(&events);
        assert_eq!(
            o[0],
            ("notify_master", HookState::Master, HookOutcome::TimedOut)
        );
        assert_eq!(
            o[1],
            ("notify_backup", HookState::Backup, HookOutcome::Exited(0))
        );
        assert!(done.exists());
        assert!(took < Duration::from_secs(5), "took {took:?}");
        let elapsed = events.iter().find_map(|e| match e {
            HookEvent::Finished {
                key: "notify_master",
                elapsed,
                ..
            } => Some(*elapsed),
            _ => None,
        });
        let elapsed = elapsed.unwrap();
        assert!(
            elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(3),
            "{elapsed:?}"
        );
        assert!(events.contains(&HookEvent::Output {
            key: "notify_master",
            stream: Stream::Stdout,
            line: "going to sleep".into()
        }));
        // The background sleep died with its group (gone, or a zombie nobody reaped).
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let stat = format!("/proc/{}/stat", pid.trim());
        let mut alive = true;
        for _ in 0..50 {
            alive = match std::fs::read_to_string(&stat) {
                Ok(s) => !s
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z'),
                Err(_) => false,
            };
            if !alive {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive, "the hook's background sleep {pid} survived");
    }

    #[tokio::test]
    async fn notify_returns_at_once_while_a_hook_runs() {
        if !root("notify_returns_at_once_while_a_hook_runs") {
            return;
        }
        let dir = TempDir::new();
        let slow = dir.script("slow.sh", "sleep 0.5");
        let fast = dir.script("fast.sh", "exit 0");
        let c = HookConfig {
            notify_master: Some(q(&slow)),
            notify_backup: Some(q(&fast)),
            ..config()
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let runner = HookRunner::spawn_with_events("vi".into(), c, tx);
        runner.notify(HookState::Master, 100);
        // Let the slow hook start.
        loop {
            if let Some(HookEvent::Started { .. }) = rx.recv().await {
                break;
            }
        }
        let t0 = Instant::now();
        for _ in 0..40 {
            runner.notify(HookState::Backup, 100);
        }
        let took = t0.elapsed();
        assert!(
            took < Duration::from_millis(50),
            "40 notify() took {took:?}"
        );
        assert_eq!(runner.pending(), QUEUE_CAPACITY);
        // The oldest 8 pending were dropped; the slow hook and 32 fast ones ran.
        let events = finished(&mut rx, 1 + QUEUE_CAPACITY).await;
        let dropped = events
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    HookEvent::Dropped {
                        state: HookState::Backup,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(dropped, 40 - QUEUE_CAPACITY);
        let o = outcomes(&events);
        assert_eq!(
            o[0],
            ("notify_master", HookState::Master, HookOutcome::Exited(0))
        );
        assert!(
            o[1..]
                .iter()
                .all(|(k, _, out)| *k == "notify_backup" && *out == HookOutcome::Exited(0))
        );
        runner.shutdown().await;
    }

    #[tokio::test]
    async fn output_and_exit_status_are_reported() {
        if !root("output_and_exit_status_are_reported") {
            return;
        }
        let dir = TempDir::new();
        let chatty = dir.script(
            "chatty.sh",
            "echo line one\necho 'to stderr' >&2\nprintf 'no newline at the end'\nexit 3",
        );
        let c = HookConfig {
            notify_fault: Some(q(&chatty)),
            ..config()
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let runner = HookRunner::spawn_with_events("vi".into(), c, tx);
        runner.notify(HookState::Master, 100); // no hook: nothing queued
        runner.notify(HookState::Fault, 0);
        let events = finished(&mut rx, 1).await;
        runner.shutdown().await;
        let lines: Vec<(Stream, &str)> = events
            .iter()
            .filter_map(|e| match e {
                HookEvent::Output {
                    key: "notify_fault",
                    stream,
                    line,
                } => Some((*stream, line.as_str())),
                _ => None,
            })
            .collect();
        let stdout: Vec<&str> = lines
            .iter()
            .filter(|(s, _)| *s == Stream::Stdout)
            .map(|(_, l)| *l)
            .collect();
        assert_eq!(stdout, ["line one", "no newline at the end"]);
        assert!(lines.contains(&(Stream::Stderr, "to stderr")), "{lines:?}");
        assert_eq!(
            outcomes(&events),
            [("notify_fault", HookState::Fault, HookOutcome::Exited(3))]
        );
    }

    #[tokio::test]
    async fn a_script_made_insecure_after_load_is_not_run() {
        if !root("a_script_made_insecure_after_load_is_not_run") {
            return;
        }
        let dir = TempDir::new();
        let ran = dir.path("ran");
        let script = dir.script("hook.sh", &format!("touch {}", q(&ran)));
        let c = HookConfig {
            notify_master: Some(q(&script)),
            ..config()
        };
        c.check().unwrap();
        chmod(&script, 0o777);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let runner = HookRunner::spawn_with_events("vi".into(), c, tx);
        runner.notify(HookState::Master, 100);
        let events = finished(&mut rx, 1).await;
        runner.shutdown().await;
        assert!(matches!(
            &outcomes(&events)[0],
            (_, _, HookOutcome::Refused(why)) if why.contains("writable by group and others")
        ));
        assert!(!ran.exists());
    }

    #[tokio::test]
    async fn shutdown_runs_the_queued_stop_hooks() {
        if !root("shutdown_runs_the_queued_stop_hooks") {
            return;
        }
        let dir = TempDir::new();
        let stopped = dir.path("stopped");
        let stop = dir.script("stop.sh", &format!("sleep 0.2; touch {}", q(&stopped)));
        let c = HookConfig {
            notify_stop: Some(q(&stop)),
            ..config()
        };
        let runner = HookRunner::spawn("vi".into(), c);
        runner.notify(HookState::Stop, 100);
        runner.shutdown().await;
        assert!(stopped.exists());
    }

    #[tokio::test]
    async fn reconfigure_applies_to_queued_notifications() {
        if !root("reconfigure_applies_to_queued_notifications") {
            return;
        }
        let dir = TempDir::new();
        let slow = dir.script("slow.sh", "sleep 0.3");
        let old = dir.script("old.sh", "exit 1");
        let new = dir.script("new.sh", "exit 0");
        let c = HookConfig {
            notify_master: Some(q(&slow)),
            notify_backup: Some(q(&old)),
            ..config()
        };
        let (tx, mut rx) = mpsc::unbounded_channel();
        let runner = HookRunner::spawn_with_events("vi".into(), c.clone(), tx);
        runner.notify(HookState::Master, 100);
        runner.notify(HookState::Backup, 100);
        runner.reconfigure(HookConfig {
            notify_backup: Some(q(&new)),
            ..c
        });
        let events = finished(&mut rx, 2).await;
        runner.shutdown().await;
        let started: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                HookEvent::Started { argv, .. } => Some(argv[0].clone()),
                _ => None,
            })
            .collect();
        assert_eq!(started, [q(&slow), q(&new)]);
    }
}
