//! The hooks' configuration: the keys of `[vrrp]` (flattened into it), their load-time
//! check, and which hooks run, in which order, for a state.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use super::check::{HookError, Refusal, check_command};

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
    pub(super) fn hooks_for(&self, state: HookState) -> Vec<(&'static str, &str)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::test_support::config;

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
}
