//! The runner: one task per instance works a bounded queue of state changes, running
//! each change's hooks in order, one at a time, off the state machine's path.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tracing::{error, warn};

use super::check::{HookError, split_command};
use super::config::{HookConfig, HookState};
use super::exec::{HookOutcome, Stream, run_hook};

/// Pending notifications kept per instance; when full, the oldest pending one is
/// dropped (and logged).
pub const QUEUE_CAPACITY: usize = 32;

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
pub(super) struct Reporter {
    pub(super) instance: Arc<str>,
    pub(super) events: Option<mpsc::UnboundedSender<HookEvent>>,
}

impl Reporter {
    pub(super) fn send(&self, event: HookEvent) {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::mpsc;

    use super::*;
    use crate::hooks::test_support::{TempDir, config, finished, outcomes, q, root};

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
