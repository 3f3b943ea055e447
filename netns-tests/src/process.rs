//! Processes spawned inside a lab namespace.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

/// Shared between a [`Proc`] and the [`Lab`](crate::Lab) that spawned it, so
/// whichever is dropped first kills and reaps the child.
pub(crate) struct ProcInner {
    pub(crate) name: String,
    pub(crate) pid: u32,
    pub(crate) log_path: PathBuf,
    /// Length of the log file before this process started writing to it.
    pub(crate) log_offset: u64,
    pub(crate) child: Mutex<Child>,
}

impl ProcInner {
    fn child(&self) -> MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// SIGKILLs (if still running) and reaps the child.
    pub(crate) fn kill_and_reap(&self) -> io::Result<ExitStatus> {
        let mut child = self.child();
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        child.kill()?;
        child.wait()
    }
}

/// A process started with [`Lab::spawn`](crate::Lab::spawn) inside a host
/// namespace, its stdout and stderr going to a log file in the lab directory.
///
/// Dropping a `Proc` SIGKILLs the process (if still running) and reaps it; so
/// does dropping the lab that spawned it. All methods take `&self`.
pub struct Proc {
    pub(crate) inner: Arc<ProcInner>,
}

impl Proc {
    /// The process id (that of the program itself: `ip netns exec` execs it).
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// The name given at spawn time (the log file is `<name>.log`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Path of the log file holding stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.inner.log_path
    }

    /// What the process has written to stdout and stderr so far (only this
    /// process's output, even if an earlier process used the same name).
    pub fn log(&self) -> String {
        let read = || -> io::Result<String> {
            let mut f = fs::File::open(&self.inner.log_path)?;
            f.seek(SeekFrom::Start(self.inner.log_offset))?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)?;
            Ok(String::from_utf8_lossy(&buf).into_owned())
        };
        read().unwrap_or_else(|e| panic!("reading log {}: {e}", self.inner.log_path.display()))
    }

    /// Sends signal `sig` (e.g. `libc::SIGTERM`) to the process. Returns
    /// `false`, sending nothing, if it has already exited.
    pub fn signal(&self, sig: i32) -> bool {
        let mut child = self.inner.child();
        // Checking and signalling under the lock means the pid cannot have
        // been reaped (and reused) in between.
        if !matches!(child.try_wait(), Ok(None)) {
            return false;
        }
        // SAFETY: kill(2) on our own unreaped child.
        let r = unsafe { libc::kill(self.inner.pid as libc::pid_t, sig) };
        if r != 0 {
            panic!(
                "kill({}, {sig}) for {}: {}",
                self.inner.pid,
                self.inner.name,
                io::Error::last_os_error()
            );
        }
        true
    }

    /// SIGKILLs the process (if still running) and waits for it.
    pub fn kill(&self) -> ExitStatus {
        self.inner
            .kill_and_reap()
            .unwrap_or_else(|e| panic!("killing {} (pid {}): {e}", self.inner.name, self.inner.pid))
    }

    /// Waits up to `timeout` for the process to exit; `None` if it is still
    /// running then.
    pub fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self
                .inner
                .child()
                .try_wait()
                .unwrap_or_else(|e| panic!("waiting for {}: {e}", self.inner.name));
            if status.is_some() {
                return status;
            }
            let now = Instant::now();
            if now >= deadline {
                return None;
            }
            thread::sleep((deadline - now).min(Duration::from_millis(10)));
        }
    }

    /// Is the process still running (not yet exited)?
    pub fn is_running(&self) -> bool {
        matches!(self.inner.child().try_wait(), Ok(None))
    }
}

impl std::fmt::Debug for Proc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proc")
            .field("name", &self.inner.name)
            .field("pid", &self.inner.pid)
            .field("log", &self.inner.log_path)
            .finish()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.inner.kill_and_reap();
    }
}

/// `(state, ppid)` of a process, from `/proc/<pid>/stat`.
pub(crate) fn stat(pid: u32) -> Option<(char, u32)> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut words = rest.split_whitespace();
    let state = words.next()?.chars().next()?;
    let ppid = words.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Pids of all processes (the numeric entries of `/proc`).
pub(crate) fn all_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Is `pid` a live process (one that exists and is not a zombie)?
pub fn is_alive(pid: u32) -> bool {
    matches!(stat(pid), Some((s, _)) if s != 'Z' && s != 'X')
}
