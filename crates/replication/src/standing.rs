//! Who holds data the other lacks: the one comparison every rule uses.
//!
//! Offsets count replication pings and expiries as well as writes, so they say
//! *whether* a side holds bytes the other lacks, never *how much it matters*. When
//! both sides hold bytes of their own (a split where both took writes), the winner
//! is not the larger count but the side an operator can predict: the Redis that was
//! promoted during the split (its history continues the other's). The failover is
//! final, as with Sentinel; what the other side wrote after the fork is saved to a
//! snapshot before it is resynced.

use health::{Relation, Snapshot, relation};

use crate::command::Target;
use crate::lineage::Lineage;

/// How the two datasets stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Neither holds anything the other lacks.
    Equal,
    /// Only ours holds data the peer lacks: the peer may follow us.
    LocalAhead,
    /// Only the peer's holds data we lack: we may follow it.
    PeerAhead,
    /// Both hold bytes of their own past a common point (a split where both sides
    /// went on). `winner` is the side that was promoted during the split, or `None`
    /// when neither history continues the other (both left a third one).
    Split {
        /// The side whose data is kept.
        winner: Option<Target>,
        /// Our bytes past the fork.
        ours: u64,
        /// The peer's bytes past the fork.
        theirs: u64,
    },
    /// Two unrelated datasets that both hold keys: no resync either way.
    Unrelated,
}

impl Standing {
    /// May `side` be resynced from the other without losing anything of its own?
    pub fn loses_nothing(self, side: Target) -> bool {
        matches!(
            (self, side),
            (Standing::Equal, _)
                | (Standing::PeerAhead, Target::Local)
                | (Standing::LocalAhead, Target::Peer)
        )
    }

    /// Does `side` hold data that the other lacks and must keep (ahead, or the
    /// winner of a split)?
    pub fn must_keep(self, side: Target) -> bool {
        match (self, side) {
            (Standing::LocalAhead, Target::Local) | (Standing::PeerAhead, Target::Peer) => true,
            (Standing::Split { winner, .. }, side) => winner == Some(side),
            _ => false,
        }
    }
}

/// Compares our dataset with the peer's: the relation of their histories, and how
/// they stand.
pub fn compare(local: &Snapshot, peer: &Snapshot) -> (Relation, Standing) {
    let relation = relation(local, peer);
    let standing = match relation {
        Relation::Same {
            local_offset,
            peer_offset,
        } => match local_offset.cmp(&peer_offset) {
            std::cmp::Ordering::Equal => Standing::Equal,
            std::cmp::Ordering::Greater => Standing::LocalAhead,
            std::cmp::Ordering::Less => Standing::PeerAhead,
        },
        Relation::PeerContinuesLocal {
            peer_offset,
            fork_offset,
            ..
        } => match peer_offset > fork_offset {
            true => Standing::PeerAhead,
            false => Standing::Equal,
        },
        Relation::LocalContinuesPeer {
            local_offset,
            fork_offset,
            ..
        } => match local_offset > fork_offset {
            true => Standing::LocalAhead,
            false => Standing::Equal,
        },
        Relation::Diverged {
            local_offset,
            peer_offset,
            common_offset,
        } => {
            let ours = local_offset.saturating_sub(common_offset);
            let theirs = peer_offset.saturating_sub(common_offset);
            match (ours, theirs) {
                (0, 0) => Standing::Equal,
                (0, _) => Standing::PeerAhead,
                (_, 0) => Standing::LocalAhead,
                _ => Standing::Split {
                    winner: promoted_side(local, peer),
                    ours,
                    theirs,
                },
            }
        }
        // No history in common: only keys can tell (an empty Redis, with or
        // without an id of its own, has nothing to lose).
        Relation::Unrelated => match (local.keys, peer.keys) {
            (0, 0) => Standing::Equal,
            (0, _) => Standing::PeerAhead,
            (_, 0) => Standing::LocalAhead,
            _ => Standing::Unrelated,
        },
    };
    (relation, standing)
}

/// [`compare`], with the steps the agent has seen ([`Lineage`]) for histories that
/// Redis alone cannot relate: a dataset whose history leads through them into the
/// other's, no further than where the other holds it, is contained in it (its Redis
/// came back from a snapshot older than the last promotions). Anything else
/// unrelated stays [`Standing::Unrelated`].
pub fn compare_known(local: &Snapshot, peer: &Snapshot, lineage: &Lineage) -> (Relation, Standing) {
    let (relation, standing) = compare(local, peer);
    if standing != Standing::Unrelated {
        return (relation, standing);
    }
    let (local_offset, peer_offset) = (local.offset(), peer.offset());
    // The fork reported is where the contained side's data ends: the histories in
    // between are the lineage's, not either Redis's.
    if lineage.contained(local, peer).is_some() {
        let standing = match peer_offset > local_offset {
            true => Standing::PeerAhead,
            false => Standing::Equal,
        };
        let relation = Relation::PeerContinuesLocal {
            local_offset,
            peer_offset,
            fork_offset: local_offset,
        };
        return (relation, standing);
    }
    if lineage.contained(peer, local).is_some() {
        let standing = match local_offset > peer_offset {
            true => Standing::LocalAhead,
            false => Standing::Equal,
        };
        let relation = Relation::LocalContinuesPeer {
            local_offset,
            peer_offset,
            fork_offset: peer_offset,
        };
        return (relation, standing);
    }
    (relation, standing)
}

/// The side whose history continues the other's (it was promoted from it), if one
/// does.
fn promoted_side(local: &Snapshot, peer: &Snapshot) -> Option<Target> {
    if peer.history_end(&local.master_replid).is_some() {
        Some(Target::Peer)
    } else if local.history_end(&peer.master_replid).is_some() {
        Some(Target::Local)
    } else {
        None
    }
}
