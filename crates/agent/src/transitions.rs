//! Every transition of the VRRP instance, in order: the notify hooks, the state-log
//! event and the counters by state and reason.
//!
//! The instance's status is a watch, which keeps only the latest state: a quick
//! BACKUP -> MASTER -> BACKUP, or any burst while the coordinator is busy in a slow
//! Redis step, would look like no change through it. So the driver sends each
//! transition on a channel of its own ([`vrrp::Transitions`]), and [`relay`], a task
//! of its own owned by `run::Running`, takes them one by one. It outlives a restart
//! of the coordinator (an in-place reload), and it ends when the channel closes,
//! that is when the instance's loop has returned, after the last transition (the
//! step down to INIT) has been relayed: the caller awaits it before `notify_stop`.

use std::sync::Arc;

use vrrp::{TransitionEvent, Transitions};

use crate::hooks::{HookRunner, HookState};
use crate::state::Shared;

/// Relays every transition until the instance's loop has returned.
pub async fn relay(mut transitions: Transitions, hooks: Arc<HookRunner>, shared: Shared) {
    while let Some(transition) = transitions.recv().await {
        note(&transition, &hooks, &shared);
    }
}

/// One transition: its hooks (queued, never waited for), its event, its counter.
pub fn note(t: &TransitionEvent, hooks: &HookRunner, shared: &Shared) {
    if let Some(state) = HookState::from_vrrp(t.to) {
        // keepalived passes the configured priority, also in FAULT.
        let priority = match t.priority {
            0 => t.configured_priority,
            p => p,
        };
        hooks.notify(state, priority);
    }
    shared.event(
        "transition",
        &[
            ("from", t.from.to_string()),
            ("to", t.to.to_string()),
            ("reason", t.reason.clone()),
            ("priority", t.priority.to_string()),
        ],
    );
    *shared
        .lock()
        .transitions
        .entry((t.to.to_string(), t.reason_kind.to_string()))
        .or_default() += 1;
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, SystemTime};

    use tokio::sync::mpsc;
    use vrrp::State;

    use super::*;
    use crate::hooks::HookConfig;
    use crate::statelog::StateLog;

    /// A directory of its own, mode 0755 (hook scripts must be owned by root and
    /// not writable by others), removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(test: &str) -> TempDir {
            let path = std::env::temp_dir().join(format!("redha-{test}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir(&path).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            TempDir(path)
        }

        /// An executable `#!/bin/sh` script that appends its arguments as one line
        /// to `record`.
        fn recorder(&self, name: &str, record: &Path) -> String {
            let path = self.0.join(name);
            std::fs::write(
                &path,
                format!("#!/bin/sh\necho \"$@\" >> {}\n", record.display()),
            )
            .unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            path.display().to_string()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn event(from: State, to: State, kind: &'static str, priority: u8) -> TransitionEvent {
        TransitionEvent {
            from,
            to,
            reason: format!("{kind} (test)"),
            reason_kind: kind,
            priority,
            configured_priority: 100,
            at: SystemTime::now(),
        }
    }

    /// A burst queued before the relay runs (as while the coordinator was busy, or
    /// faster than a watch can show): every transition runs its hooks, in order,
    /// and is recorded and counted, the repeated BACKUP too.
    #[tokio::test]
    async fn a_burst_reaches_the_hooks_and_the_counters_in_order() {
        // SAFETY: geteuid(2) cannot fail and touches no memory of ours.
        if unsafe { libc::geteuid() } != 0 {
            // CI runs as root and requires every root test to run.
            assert!(
                std::env::var_os("REDHA_REQUIRE_NETNS").is_none_or(|v| v != "1"),
                "REDHA_REQUIRE_NETNS=1 but not root: the hook scripts must be owned by root"
            );
            println!("skipped: needs root (hook scripts must be owned by root)");
            return;
        }
        let dir = TempDir::new("transitions-burst");
        let record = dir.0.join("calls");
        let hooks = HookConfig {
            notify: Some(dir.recorder("notify.sh", &record)),
            notify_master: Some(format!(
                "{} master-hook",
                dir.recorder("master.sh", &record)
            )),
            ..HookConfig::default()
        };
        hooks.check().unwrap();
        let hooks = Arc::new(HookRunner::spawn("burst".into(), hooks));
        let shared = Shared::new(StateLog::default());
        let (tx, rx) = mpsc::unbounded_channel();
        for t in [
            event(State::Initialize, State::Backup, "startup", 100),
            event(State::Backup, State::Master, "master_down", 100),
            event(State::Master, State::Backup, "higher_priority", 100),
            event(State::Backup, State::Fault, "fault", 0),
            event(State::Fault, State::Backup, "fault_cleared", 100),
            event(State::Backup, State::Initialize, "shutdown", 0),
        ] {
            tx.send(t).unwrap();
        }
        drop(tx);
        tokio::time::timeout(
            Duration::from_secs(5),
            relay(rx, hooks.clone(), shared.clone()),
        )
        .await
        .expect("the relay ends once the channel is closed and drained");
        let hooks = Arc::try_unwrap(hooks)
            .ok()
            .expect("the relay let its hooks go");
        tokio::time::timeout(Duration::from_secs(20), hooks.shutdown())
            .await
            .expect("the hooks ran");

        let calls = std::fs::read_to_string(&record).unwrap_or_default();
        assert_eq!(
            calls.lines().collect::<Vec<_>>(),
            [
                "INSTANCE burst BACKUP 100",
                "master-hook",
                "INSTANCE burst MASTER 100",
                "INSTANCE burst BACKUP 100",
                "INSTANCE burst FAULT 100", // the configured priority, as keepalived
                "INSTANCE burst BACKUP 100",
            ],
            "{calls}"
        );
        let state = shared.lock();
        let count = |to: &str, kind: &str| {
            state
                .transitions
                .get(&(to.to_string(), kind.to_string()))
                .copied()
        };
        assert_eq!(count("BACKUP", "startup"), Some(1));
        assert_eq!(count("MASTER", "master_down"), Some(1));
        assert_eq!(count("BACKUP", "higher_priority"), Some(1));
        assert_eq!(count("FAULT", "fault"), Some(1));
        assert_eq!(count("BACKUP", "fault_cleared"), Some(1));
        assert_eq!(
            count("INIT", "shutdown"),
            Some(1),
            "{:?}",
            state.transitions
        );
        assert_eq!(state.transitions.values().sum::<u64>(), 6);
        let moves: Vec<(String, String, String)> = state
            .events
            .iter()
            .filter(|e| e.event == "transition")
            .map(|e| {
                let field = |k: &str| {
                    e.fields
                        .iter()
                        .find(|(key, _)| key == k)
                        .map(|(_, v)| v.clone())
                        .unwrap()
                };
                (field("from"), field("to"), field("priority"))
            })
            .collect();
        let m = |from: &str, to: &str, p: &str| (from.to_string(), to.to_string(), p.to_string());
        assert_eq!(
            moves,
            [
                m("INIT", "BACKUP", "100"),
                m("BACKUP", "MASTER", "100"),
                m("MASTER", "BACKUP", "100"),
                m("BACKUP", "FAULT", "0"),
                m("FAULT", "BACKUP", "100"),
                m("BACKUP", "INIT", "0"),
            ]
        );
    }
}
