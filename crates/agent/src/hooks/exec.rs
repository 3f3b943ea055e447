//! Running one hook: its own process group, every line of its output logged, its exit
//! status, and SIGKILL to the whole group past `notify_timeout`.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt};
use tracing::{debug, error, info, warn};

use super::check::{HookError, check_program};
use super::config::HookState;
use super::runner::{HookEvent, Reporter};

/// Longest output line logged as one line; longer ones are split.
const MAX_LINE: usize = 4096;

/// Output lines logged per stream and run; the rest is read and discarded.
const MAX_LINES: usize = 1000;

/// After a hook exits, how long to wait for the end of its output before going on
/// (a process it started in the background may hold the pipe open; its output is
/// still logged as it comes).
const OUTPUT_GRACE: Duration = Duration::from_millis(250);

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

/// Runs one hook to its end (or its timeout) and reports it.
pub(super) async fn run_hook(
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
    use tokio::sync::mpsc;

    use super::*;
    use crate::hooks::HookConfig;
    use crate::hooks::runner::HookRunner;
    use crate::hooks::test_support::{TempDir, chmod, config, finished, outcomes, q, root};

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
}
