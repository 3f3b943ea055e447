//! What the hooks' tests share: a root-owned temporary directory with scripts in it,
//! the root check that skips a test without root, and readers of the runner's events.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;

use super::check::geteuid;
use super::{HookConfig, HookEvent, HookOutcome, HookState};

/// A directory of its own under the temporary directory, owned by root, mode
/// 0755, removed on drop.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new() -> TempDir {
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

    pub(super) fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes an executable `#!/bin/sh` script (mode 0755).
    pub(super) fn script(&self, name: &str, body: &str) -> PathBuf {
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

pub(super) fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Hook scripts must be owned by root: the tests that run them need root.
pub(super) fn root(test: &str) -> bool {
    if geteuid() == 0 {
        return true;
    }
    println!("skipped: hooks::tests::{test}: needs root (hook scripts must be owned by root)");
    false
}

pub(super) fn config() -> HookConfig {
    HookConfig::default()
}

pub(super) fn q(path: &Path) -> String {
    path.display().to_string()
}

/// Collects events until `n` Finished events have arrived (or 20 s pass).
pub(super) async fn finished(
    rx: &mut mpsc::UnboundedReceiver<HookEvent>,
    n: usize,
) -> Vec<HookEvent> {
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

pub(super) fn outcomes(events: &[HookEvent]) -> Vec<(&'static str, HookState, HookOutcome)> {
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
