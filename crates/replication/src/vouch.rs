//! Vouching: a Redis restarted from an append-only file comes back with its data but
//! without its replication history (a new id, no second id, offset 0; checked with
//! Redis 7.0.15), so histories alone cannot say how it stands against its peer. The
//! agent records the history of its Redis in a state file; when its Redis comes back
//! like that, the agent vouches for the recorded history instead, and says so in its
//! claim so that the peer's agent compares against the same.

use health::Snapshot;

use crate::claim::Vouched;

/// The offset a vouched master stands at in its recorded history: all of it. A
/// master's files hold every write it acknowledged (with `appendfsync always`), and
/// nobody can hold more of the history it was the source of; the offset recorded is
/// only a lower bound, written at most once a second.
pub const VOUCHED_MASTER_OFFSET: u64 = u64::MAX / 2;

/// What to record of a Redis: the history its data belongs to.
pub fn record(snapshot: &Snapshot) -> Vouched {
    Vouched {
        was_master: snapshot.is_master(),
        replid: snapshot.master_replid.clone(),
        offset: snapshot.offset(),
        replid2: snapshot.master_replid2.clone(),
        second_repl_offset: snapshot.second_repl_offset,
    }
}

/// Should the agent vouch for `recorded` instead of what `live` shows? Only for a
/// Redis that came back holding keys with fresh ids (no second id, offset 0) whose
/// history does not know the recorded one, i.e. a restart from an append-only file:
/// a master, or one already told to follow whose full sync has not replaced its
/// data yet (its link not up; it keeps the data it loaded until the sync arrives,
/// and a master it serves a `SYNC` to in the meantime may give itself a new id).
///
/// Only with the AOF on: a Redis restarted from an RDB snapshot keeps the
/// snapshot's history (as its second id), so one without history under RDB alone
/// loaded nothing, and its keys are writes it took since it started empty (a
/// client that reached it before this agent looked), never a restored dataset.
pub fn needs_vouching(live: &Snapshot, recorded: &Vouched) -> bool {
    live.aof_enabled
        && (live.is_master() || live.is_replica() && !live.link_up())
        && !live.loading
        && live.keys > 0
        && !live.has_history()
        && live.offset() == 0
        && live.master_replid != recorded.replid
        && live.history_end(&recorded.replid).is_none()
}

/// Did our Redis restart without its data and take writes before the agent looked?
/// Under RDB alone (with the AOF on it may be a restart from the AOF: see
/// [`needs_vouching`]) a master that came back with no history (fresh id, no
/// second id, offset 0) loaded nothing, so any keys it holds were written since it
/// started; `recorded_run` is the Redis process the state was recorded from
/// (another one: it restarted), and `peer` holds the recorded history, so the
/// peer has what our Redis lost.
pub fn restarted_without_data(
    live: &Snapshot,
    recorded_run: &str,
    recorded: &Vouched,
    peer: &Snapshot,
) -> bool {
    !live.aof_enabled
        && live.is_master()
        && !live.loading
        && live.keys > 0
        && !live.has_history()
        && live.offset() == 0
        && live.run_id != recorded_run
        && peer.history_end(&recorded.replid).is_some()
}

/// `live` with the vouched history in place of its own.
pub fn vouched(live: &Snapshot, recorded: &Vouched) -> Snapshot {
    Snapshot {
        master_replid: recorded.replid.clone(),
        master_replid2: recorded.replid2.clone(),
        second_repl_offset: recorded.second_repl_offset,
        master_repl_offset: match recorded.was_master {
            true => VOUCHED_MASTER_OFFSET,
            false => recorded.offset,
        },
        ..live.clone()
    }
}
