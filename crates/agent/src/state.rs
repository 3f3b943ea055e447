//! What the agent knows, shared between the coordinator (which writes it) and the
//! control socket and metrics page (which read it): the Redis side, the replication
//! decision, counters, and the last events.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use health::Snapshot;

use crate::statelog::StateLog;

/// How many events `redha status` shows.
pub const EVENTS_KEPT: usize = 20;

/// One event, as the state log has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// When.
    pub time: SystemTime,
    /// What kind (`transition`, `health`, `decision`, `command`, `after`, `reload`).
    pub event: String,
    /// Its fields, in order.
    pub fields: Vec<(String, String)>,
}

/// What a Redis looked like at the last look.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisView {
    /// `host:port`.
    pub address: String,
    /// Whether it answered INFO sanely at the last look.
    pub reachable: bool,
    /// `master` or `replica`.
    pub role: Option<String>,
    /// Replication id.
    pub replid: Option<String>,
    /// Replication offset.
    pub offset: Option<u64>,
    /// A replica's link to its master (`up` / `down`).
    pub link: Option<String>,
    /// A replica's master (`host:port`).
    pub master: Option<String>,
    /// Keys held.
    pub keys: Option<u64>,
}

impl RedisView {
    /// The view of `address` given what INFO said (or nothing).
    pub fn from_snapshot(address: &str, snapshot: Option<&Snapshot>) -> Self {
        let Some(s) = snapshot else {
            return RedisView {
                address: address.to_string(),
                ..RedisView::default()
            };
        };
        RedisView {
            address: address.to_string(),
            reachable: true,
            role: Some(if s.is_master() { "master" } else { "replica" }.to_string()),
            replid: Some(s.master_replid.clone()),
            offset: Some(s.offset()),
            link: s.master.as_ref().map(|m| m.link_status.to_string()),
            master: s.master.as_ref().map(|m| format!("{}:{}", m.host, m.port)),
            keys: Some(s.keys),
        }
    }
}

/// The local Redis's health.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthView {
    /// `unknown`, `up` or `down`.
    pub health: String,
    /// Round trip of the last PING.
    pub latency: Option<Duration>,
    /// The last failure.
    pub last_error: Option<String>,
    /// Checks so far.
    pub checks: u64,
    /// Failed checks so far.
    pub failures: u64,
}

/// Everything shared.
#[derive(Debug, Default)]
pub struct AgentState {
    /// The local Redis's health (with `[redis]`).
    pub health: Option<HealthView>,
    /// The local Redis (with `[redis]`).
    pub local: Option<RedisView>,
    /// The peer's Redis (with `[replication]`).
    pub peer: Option<RedisView>,
    /// The last replication rule, in words.
    pub rule: Option<String>,
    /// Whether the planner lets this node hold the VIP.
    pub eligible: Option<bool>,
    /// Redis commands sent, by command and result (`ok` / `error`).
    pub redis_commands: BTreeMap<(String, String), u64>,
    /// Transitions by target state and reason kind.
    pub transitions: BTreeMap<(String, String), u64>,
    /// Configuration reloads by result (`applied` / `refused`).
    pub reloads: BTreeMap<String, u64>,
    /// The last events, oldest first.
    pub events: VecDeque<Event>,
    /// The steps between replication histories seen so far: kept here, not in the
    /// coordinator, so that a coordinator restarted by a reload still knows them.
    pub lineage: replication::Lineage,
}

impl AgentState {
    /// Replication lag in bytes: how far the replica's offset is behind its
    /// master's, when one of the two Redis follows the other.
    pub fn replication_lag(&self) -> Option<u64> {
        let (local, peer) = (self.local.as_ref()?, self.peer.as_ref()?);
        if local.replid != peer.replid {
            return None;
        }
        let (l, p) = (local.offset?, peer.offset?);
        match (local.role.as_deref(), peer.role.as_deref()) {
            (Some("master"), Some("replica")) => Some(l.saturating_sub(p)),
            (Some("replica"), Some("master")) => Some(p.saturating_sub(l)),
            _ => None,
        }
    }
}

/// The shared state plus the state log: every event goes to both.
#[derive(Clone, Debug)]
pub struct Shared {
    state: Arc<Mutex<AgentState>>,
    statelog: Arc<StateLog>,
}

impl Shared {
    /// Empty state writing events to `statelog`.
    pub fn new(statelog: StateLog) -> Self {
        Shared {
            state: Arc::new(Mutex::new(AgentState::default())),
            statelog: Arc::new(statelog),
        }
    }

    /// Locks the state (a poisoned lock is recovered: the state is plain data).
    pub fn lock(&self) -> MutexGuard<'_, AgentState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an event: in the state log (queued for its writer thread; never
    /// blocks) and in the last events.
    pub fn event(&self, event: &str, fields: &[(&str, String)]) {
        self.statelog.record(event, fields);
        let mut state = self.lock();
        if state.events.len() == EVENTS_KEPT {
            state.events.pop_front();
        }
        state.events.push_back(Event {
            time: SystemTime::now(),
            event: event.to_string(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        });
    }
}

impl Shared {
    /// State-log lines dropped because its writer could not keep up.
    pub fn statelog_dropped(&self) -> u64 {
        self.statelog.dropped()
    }

    /// Waits, at most `timeout`, until the state log has written every line queued so
    /// far; false if it could not. Blocks the calling thread: call it on the way out.
    pub fn flush_statelog(&self, timeout: Duration) -> bool {
        self.statelog.flush(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_events() {
        let shared = Shared::new(StateLog::default());
        for i in 0..EVENTS_KEPT + 5 {
            shared.event("test", &[("n", i.to_string())]);
        }
        let state = shared.lock();
        assert_eq!(state.events.len(), EVENTS_KEPT);
        assert_eq!(state.events[0].fields[0].1, "5");
    }

    #[test]
    fn lag_is_measured_within_one_history() {
        let view = |role: &str, replid: &str, offset| RedisView {
            role: Some(role.into()),
            replid: Some(replid.into()),
            offset: Some(offset),
            reachable: true,
            ..RedisView::default()
        };
        let mut state = AgentState {
            local: Some(view("master", "a", 100)),
            peer: Some(view("replica", "a", 60)),
            ..AgentState::default()
        };
        assert_eq!(state.replication_lag(), Some(40));
        state.peer = Some(view("master", "b", 60));
        assert_eq!(state.replication_lag(), None);
    }
}
