//! The rule that decided a plan, with what it compared. Its `Display` is the log line.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use health::Relation;

use crate::command::Target;

/// The rule that decided a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Our Redis is down or answers strangely: nothing to do with it.
    LocalDown,
    /// Our Redis is empty with no history while the peer holds data: we must not
    /// hold the VIP; the node with the data must.
    LocalEmptyPeerHasData {
        /// Keys the peer holds.
        peer_keys: u64,
    },
    /// Our Redis restarted without its data (under RDB alone, no history: it
    /// loaded nothing) and took writes since, while the peer's holds the history
    /// it had: out of the election; its keys are saved, then it follows the peer.
    LocalRestartedWithoutData {
        /// Keys written to it since it restarted.
        local_keys: u64,
        /// Keys the peer holds.
        peer_keys: u64,
    },
    /// Master, our Redis is master, the peer's is our replica with its link up.
    Steady {
        /// Our offset.
        local_offset: u64,
        /// The replica's offset.
        peer_offset: u64,
    },
    /// Master, our Redis is master and the peer's is unreachable.
    MasterAlone,
    /// Master, the peer's Redis follows us but its link is not up yet.
    ReplicaLinking,
    /// Two VRRP masters (one-way multicast loss) while both Redis servers reach
    /// each other: the peer's agent wins VRRP's tie-break, so this node leaves the
    /// election and its Redis stays (or becomes) the replica.
    YieldToPeer {
        /// The peer's priority.
        peer_priority: u8,
        /// The peer's primary address.
        peer_address: IpAddr,
    },
    /// Master and our Redis is a replica, but its source is gone or useless
    /// (unreachable, empty, not a master): promote at once.
    PromoteNow {
        /// Why there is nothing to wait for.
        why: &'static str,
    },
    /// Master, our Redis promoted over a peer whose Redis did not answer: its
    /// writes are held until the peer is read (alive behind a slow link, it holds
    /// writes ours lacks) or the hold ends.
    HoldingWrites {
        /// Time left before the hold ends.
        left: Duration,
    },
    /// Master and our Redis follows the peer's, which is still a master (its agent
    /// died, or it hands over): pause its writes before the last catch-up.
    FencePeer {
        /// Our offset.
        local_offset: u64,
        /// The peer's offset.
        peer_offset: u64,
    },
    /// The pause of the peer's writes was refused or not answered: no promotion
    /// may assume it. Tried again later.
    FenceFailed {
        /// What Redis answered.
        error: String,
    },
    /// Waiting for our offset to reach the fenced peer's.
    CatchingUp {
        /// Our offset.
        local_offset: u64,
        /// The peer's current offset.
        peer_offset: u64,
        /// Time left before giving up.
        left: Duration,
    },
    /// Caught up: promote, then make the peer our replica.
    Promote {
        /// Our offset.
        local_offset: u64,
        /// The peer's offset.
        peer_offset: u64,
    },
    /// The catch-up did not finish in time while the peer's Redis, reachable, holds
    /// writes ours lacks: the data decides, so the peer's Redis stays master, its
    /// fence is lifted, and this node leaves the election until its Redis has caught
    /// up.
    CatchUpTimedOut {
        /// Our offset.
        local_offset: u64,
        /// The peer's offset.
        peer_offset: u64,
    },
    /// Master, the peer's data is a prefix of ours (or it has none): make it our
    /// replica.
    AttachPeer {
        /// How the histories relate.
        relation: Relation,
    },
    /// The peer's Redis holds writes ours lacks (a stale copy restarted from disk,
    /// or a start-up): out of the election; our Redis follows it.
    FollowNewer {
        /// How the histories relate.
        relation: Relation,
    },
    /// A split healed after both sides took writes: the side promoted during the
    /// split is kept; the other side's dataset is saved to a snapshot, then resynced.
    SplitResolved {
        /// How the histories relate.
        relation: Relation,
        /// Which side is kept.
        kept: Target,
        /// Bytes past the fork on the side that is resynced.
        discarded: u64,
    },
    /// A split healed and our side is kept; the peer's agent saves and resyncs its
    /// own Redis.
    SplitPeerResyncs {
        /// How the histories relate.
        relation: Relation,
    },
    /// Two unrelated datasets, both holding keys: no resync either way (one side's
    /// data would be wiped); an operator decides.
    SplitBrain {
        /// How the histories relate.
        relation: Relation,
    },
    /// Backup: the peer holds the VIP and its data contains ours: follow it.
    Follow {
        /// How the histories relate.
        relation: Relation,
    },
    /// Backup and our Redis follows the peer's with its link up.
    Following {
        /// Our offset.
        local_offset: u64,
    },
    /// Backup and our Redis's link to the peer's dropped while the peer is
    /// unreachable, restarted or holds another history: detach at once, so that a
    /// full sync cannot flush our data.
    Detach {
        /// What the peer looks like.
        why: &'static str,
    },
    /// Backup and our Redis's link is down (a sync under way, or a blip), but the peer
    /// holds everything we hold (or won the split): the sync loses nothing unsaved.
    LinkDownSameHistory,
    /// Backup and our data is ahead of the master's: it will pull from us.
    LocalAhead {
        /// How the histories relate.
        relation: Relation,
    },
    /// Nothing to do yet (no VRRP master, or the peer's Redis is not a master).
    Wait {
        /// For what.
        why: &'static str,
    },
    /// Stopping: our writes are paused; waiting for the replica to catch up.
    HandoverCatchingUp {
        /// Our offset.
        local_offset: u64,
        /// The replica's offset.
        peer_offset: u64,
    },
    /// Stopping: ready to hand the VIP over.
    HandoverReady {
        /// Why it is ready.
        why: &'static str,
    },
}

impl Rule {
    /// Is this a rule an operator must hear about (WARN)?
    pub fn is_loud(&self) -> bool {
        matches!(
            self,
            Rule::SplitBrain { .. }
                | Rule::SplitResolved { .. }
                | Rule::CatchUpTimedOut { .. }
                | Rule::FenceFailed { .. }
                | Rule::YieldToPeer { .. }
                | Rule::LocalRestartedWithoutData { .. }
        )
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::LocalDown => f.write_str("local Redis is down or unreadable"),
            Rule::LocalEmptyPeerHasData { peer_keys } => write!(
                f,
                "local Redis is empty with no history while the peer holds {peer_keys} keys: not eligible for the VIP"
            ),
            Rule::LocalRestartedWithoutData {
                local_keys,
                peer_keys,
            } => write!(
                f,
                "local Redis restarted without its data ({local_keys} keys written to it since) while the peer holds its history ({peer_keys} keys): not eligible for the VIP; its keys are saved, then it follows the peer"
            ),
            Rule::Steady {
                local_offset,
                peer_offset,
            } => write!(
                f,
                "steady: peer is our replica (offsets {local_offset} / {peer_offset})"
            ),
            Rule::MasterAlone => f.write_str("master; peer Redis unreachable"),
            Rule::ReplicaLinking => f.write_str("peer Redis follows us; link not up yet"),
            Rule::YieldToPeer {
                peer_priority,
                peer_address,
            } => write!(
                f,
                "TWO VRRP MASTERS while both Redis reach each other: the peer ({peer_address}, priority {peer_priority}) wins the tie-break; leaving the election, our Redis stays its replica"
            ),
            Rule::PromoteNow { why } => write!(f, "promote at once: {why}"),
            Rule::HoldingWrites { left } => write!(
                f,
                "promoted over a peer whose Redis does not answer: our writes are held until it is read (alive behind a slow link, it holds writes ours lacks) or {left:.1?} pass"
            ),
            Rule::FencePeer {
                local_offset,
                peer_offset,
            } => write!(
                f,
                "old master reachable: pausing its writes before the last catch-up (offsets {local_offset} / {peer_offset})"
            ),
            Rule::FenceFailed { error } => write!(
                f,
                "the old master's writes could not be paused ({error}): no promotion while it may still take writes"
            ),
            Rule::CatchingUp {
                local_offset,
                peer_offset,
                left,
            } => write!(
                f,
                "catching up: local offset {local_offset} of {peer_offset} ({} bytes, {left:?} left)",
                peer_offset.saturating_sub(*local_offset)
            ),
            Rule::Promote {
                local_offset,
                peer_offset,
            } => write!(
                f,
                "caught up (local offset {local_offset} >= peer {peer_offset}): promote, peer becomes our replica"
            ),
            Rule::CatchUpTimedOut {
                local_offset,
                peer_offset,
            } => write!(
                f,
                "catch-up timed out at offset {local_offset} of {peer_offset}: the peer's Redis keeps the writes ours lacks and stays master; fence lifted, leaving the election until ours has caught up"
            ),
            Rule::AttachPeer { relation } => write!(
                f,
                "peer's data is contained in ours ({}): it becomes our replica",
                describe(relation)
            ),
            Rule::FollowNewer { relation } => write!(
                f,
                "the peer's Redis holds writes ours lacks ({}): out of the election, following it",
                describe(relation)
            ),
            Rule::SplitResolved {
                relation,
                kept,
                discarded,
            } => write!(
                f,
                "SPLIT healed ({}): keeping the {kept} side, promoted during the split; the other side's dataset ({discarded} bytes past the fork) is saved to a snapshot, then resynced",
                describe(relation)
            ),
            Rule::SplitPeerResyncs { relation } => write!(
                f,
                "SPLIT healed ({}): our side was promoted during the split and is kept; the peer's agent saves its dataset and resyncs it",
                describe(relation)
            ),
            Rule::SplitBrain { relation } => write!(
                f,
                "SPLIT BRAIN: two unrelated datasets ({}); refusing to resync either way, operator action needed",
                describe(relation)
            ),
            Rule::Follow { relation } => write!(
                f,
                "peer holds the VIP and our history ({}): follow it",
                describe(relation)
            ),
            Rule::Following { local_offset } => {
                write!(f, "following the peer, link up (offset {local_offset})")
            }
            Rule::Detach { why } => write!(
                f,
                "link to the peer's Redis dropped and {why}: detaching to keep our data"
            ),
            Rule::LinkDownSameHistory => f.write_str(
                "link to the peer's Redis is down (syncing?); it holds all we hold, waiting",
            ),
            Rule::LocalAhead { relation } => write!(
                f,
                "our data is ahead of the master's ({}): waiting for it to pull from us",
                describe(relation)
            ),
            Rule::Wait { why } => write!(f, "waiting: {why}"),
            Rule::HandoverCatchingUp {
                local_offset,
                peer_offset,
            } => write!(
                f,
                "handing over: writes paused, replica at {peer_offset} of {local_offset}"
            ),
            Rule::HandoverReady { why } => write!(f, "ready to hand over: {why}"),
        }
    }
}

/// A relation in words, with its offsets.
pub fn describe(relation: &Relation) -> String {
    match relation {
        Relation::Same {
            local_offset,
            peer_offset,
        } => format!("same history, offsets local {local_offset} / peer {peer_offset}"),
        Relation::PeerContinuesLocal {
            local_offset,
            peer_offset,
            fork_offset,
        } => format!(
            "peer continues our history from offset {fork_offset}, local {local_offset} / peer {peer_offset}"
        ),
        Relation::LocalContinuesPeer {
            local_offset,
            peer_offset,
            fork_offset,
        } => format!(
            "we continue the peer's history from offset {fork_offset}, local {local_offset} / peer {peer_offset}"
        ),
        Relation::Diverged {
            local_offset,
            peer_offset,
            common_offset,
        } => format!(
            "diverged after offset {common_offset}, local {local_offset} / peer {peer_offset}"
        ),
        Relation::Unrelated => "unrelated histories".to_string(),
    }
}
