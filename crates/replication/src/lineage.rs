//! The replication histories this agent has seen continue one another, beyond the
//! one step that Redis itself remembers.
//!
//! A Redis keeps two history ids: its own (`master_replid`) and the one it
//! continued (`master_replid2`, up to `second_repl_offset`). After two promotions
//! the first history is forgotten: a master killed and restarted from a
//! `dump.rdb` written two promotions ago holds a prefix of its peer's data, yet
//! its id is unknown to the peer, and the two datasets look unrelated (see
//! [`health::relation`]). An unrelated pair where both hold keys is never
//! resynced, so the pair would wait for an operator.
//!
//! The agent sees every step as it happens: each snapshot of either Redis with a
//! previous history says "`child` continued `parent` up to offset `fork`". A
//! [`Lineage`] keeps the last [`Lineage::CAPACITY`] such links (in memory, kept
//! across reloads; after the agent restarts, the history in the state file gives
//! one more step) and tells whether one dataset's history leads, through them, into
//! the other's.

use health::Snapshot;

use crate::claim::Vouched;

/// One step: history `child` continued history `parent`, which it holds up to
/// offset `fork`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// The earlier history.
    pub parent: String,
    /// The history that continued it.
    pub child: String,
    /// The last offset of `parent` that `child` holds.
    pub fork: u64,
}

/// The links seen, newest last.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lineage {
    links: Vec<Link>,
}

impl Lineage {
    /// How many links are kept: a pair promotes a few times a day at most, and a
    /// snapshot older than this many promotions is a matter for an operator.
    pub const CAPACITY: usize = 32;

    /// Notes the step a snapshot shows, if it continued another history.
    pub fn observe(&mut self, redis: &Snapshot) {
        if redis.has_history()
            && redis.second_repl_offset > 0
            && let Some(fork) = redis.history_end(&redis.master_replid2)
        {
            self.add(Link {
                parent: redis.master_replid2.clone(),
                child: redis.master_replid.clone(),
                fork,
            });
        }
    }

    /// Notes the step of a recorded history (the state file), if it has one.
    pub fn observe_recorded(&mut self, history: &Vouched) {
        if history.second_repl_offset > 0 && history.replid2.bytes().any(|b| b != b'0') {
            self.add(Link {
                parent: history.replid2.clone(),
                child: history.replid.clone(),
                fork: (history.second_repl_offset - 1) as u64,
            });
        }
    }

    fn add(&mut self, link: Link) {
        if link.parent == link.child || self.links.contains(&link) {
            return;
        }
        if self.links.len() == Self::CAPACITY {
            self.links.remove(0);
        }
        self.links.push(link);
    }

    /// The links, oldest first.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// Does the history of `earlier` (its id, up to its offset) lead through the
    /// links into a history that `later` holds, far enough to contain all of it?
    /// Returns the offset up to which `later` holds the history it leads into
    /// (where `later` left it, or `later`'s offset).
    ///
    /// Each step must contain the data: `earlier`'s offset may not pass the fork
    /// of a link it follows (past it, the two went different ways: a split, which
    /// this does not resolve). A Redis that holds nothing past where it left its
    /// previous history (one restarted from a snapshot: a new id, the snapshot's
    /// history as replid2, the snapshot's offset) is followed from that previous
    /// history too.
    pub fn contained(&self, earlier: &Snapshot, later: &Snapshot) -> Option<u64> {
        let offset = earlier.offset();
        let previous = (earlier.has_history()
            && earlier.history_end(&earlier.master_replid2) >= Some(offset))
        .then_some(earlier.master_replid2.as_str());
        std::iter::once(earlier.master_replid.as_str())
            .chain(previous)
            .find_map(|start| self.follow(start, offset, later))
    }

    /// From history `start` (held up to `offset`) along the links into `later`:
    /// every branch is tried (a history can have been continued more than once, by
    /// each side of a split, or by a Redis restarted from a snapshot of it), and a
    /// link is followed both ways (a Redis promoted twice without a write, e.g.
    /// promoted, then made a replica, then detached before its sync, holds its
    /// grandparent history's data under an id two steps away from it).
    fn follow(&self, start: &str, offset: u64, later: &Snapshot) -> Option<u64> {
        let mut seen = vec![start];
        let mut next = 0;
        while let Some(&id) = seen.get(next) {
            next += 1;
            if let Some(end) = later.history_end(id) {
                if offset <= end {
                    return Some(end);
                }
                continue;
            }
            // Forward into a history that continued this one, or back into the one
            // this continued: either way, only while the data ends at or before the
            // fork (then it is all in the history on the other side of the link).
            for link in self.links.iter().filter(|l| offset <= l.fork) {
                let other = if link.parent == id {
                    link.child.as_str()
                } else if link.child == id {
                    link.parent.as_str()
                } else {
                    continue;
                };
                if !seen.contains(&other) {
                    seen.push(other);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(c: char) -> String {
        c.to_string().repeat(40)
    }

    fn snapshot(replid: char, offset: u64, prev: Option<(char, i64)>) -> Snapshot {
        let mut s = Snapshot {
            redis_version: "7.0.15".into(),
            run_id: "run".into(),
            uptime_in_seconds: 100,
            role: health::Role::Master,
            master: None,
            connected_slaves: 0,
            replicas: Vec::new(),
            master_replid: id(replid),
            master_replid2: "0".repeat(40),
            master_repl_offset: offset,
            second_repl_offset: -1,
            repl_backlog_active: true,
            repl_backlog_size: 1 << 20,
            repl_backlog_first_byte_offset: 1,
            repl_backlog_histlen: offset,
            loading: false,
            aof_enabled: false,
            rdb_changes_since_last_save: 0,
            keys: 10,
        };
        if let Some((replid2, second)) = prev {
            s.master_replid2 = id(replid2);
            s.second_repl_offset = second;
        }
        s
    }

    /// The soak's finding: a master restarted from a snapshot two promotions old.
    /// History a, continued by b at 363532, continued by c at 559557; the Redis
    /// restarted from a's snapshot at 348495 comes back as x, continuing a there.
    #[test]
    fn a_dataset_two_promotions_back_is_contained() {
        for old in [
            snapshot('a', 348_495, None),
            snapshot('x', 348_495, Some(('a', 348_496))),
        ] {
            let peer = snapshot('c', 600_000, Some(('b', 559_558)));
            let mut lineage = Lineage::default();
            assert_eq!(
                lineage.contained(&old, &peer),
                None,
                "Redis alone cannot tell"
            );
            // Seen earlier, while b was current.
            lineage.observe(&snapshot('b', 400_000, Some(('a', 363_533))));
            assert_eq!(lineage.contained(&old, &peer), Some(559_557));
            // Not the other way round.
            assert_eq!(lineage.contained(&peer, &old), None);
        }
        // A branch that leads nowhere (the restarted Redis's own step from a) does
        // not hide the one that does.
        let mut lineage = Lineage::default();
        lineage.observe(&snapshot('b', 400_000, Some(('a', 363_533))));
        lineage.observe(&snapshot('x', 348_495, Some(('a', 348_496))));
        let peer = snapshot('c', 600_000, Some(('b', 559_558)));
        let restarted = snapshot('x', 348_495, Some(('a', 348_496)));
        assert_eq!(lineage.contained(&restarted, &peer), Some(559_557));
        // Holding writes of its own past that point, it is not.
        let mut lineage = Lineage::default();
        lineage.observe(&snapshot('b', 400_000, Some(('a', 363_533))));
        let peer = snapshot('c', 600_000, Some(('b', 559_558)));
        let wrote = snapshot('x', 348_600, Some(('a', 348_496)));
        assert_eq!(lineage.contained(&wrote, &peer), None);
    }

    /// The slow-link soak's finding: a replica promoted without a write (history a
    /// continued as b at 390227), told to follow a again, and detached before its
    /// sync came (b continued as c at 390227) holds a prefix of a under an id two
    /// steps from it; the master, still on a, holds all of it.
    #[test]
    fn a_dataset_promoted_twice_without_writes_is_contained_in_its_grandparent() {
        let mut lineage = Lineage::default();
        lineage.observe(&snapshot('b', 390_227, Some(('a', 390_228))));
        let twice = snapshot('c', 390_227, Some(('b', 390_228)));
        lineage.observe(&twice);
        let master = snapshot('a', 420_789, None);
        assert_eq!(lineage.contained(&twice, &master), Some(420_789));
        assert_eq!(lineage.contained(&master, &twice), None);
        // With a write of its own after either step, it is not.
        let wrote = snapshot('c', 390_300, Some(('b', 390_228)));
        assert_eq!(lineage.contained(&wrote, &master), None);
        let mut lineage = Lineage::default();
        lineage.observe(&snapshot('b', 390_300, Some(('a', 390_228))));
        let after_write = snapshot('c', 390_300, Some(('b', 390_301)));
        lineage.observe(&after_write);
        assert_eq!(lineage.contained(&after_write, &master), None);
    }

    /// Past a fork the data went its own way: not contained.
    #[test]
    fn past_the_fork_is_not_contained() {
        let mut lineage = Lineage::default();
        lineage.observe(&snapshot('b', 400_000, Some(('a', 363_533))));
        let peer = snapshot('c', 600_000, Some(('b', 559_558)));
        let diverged = snapshot('a', 363_600, None);
        assert_eq!(lineage.contained(&diverged, &peer), None);
        // And a chain that reaches the other's history past where it left it.
        let behind = snapshot('b', 300_000, None);
        let ahead_of_fork = snapshot('b', 559_600, None);
        assert_eq!(lineage.contained(&behind, &peer), Some(559_557));
        assert_eq!(lineage.contained(&ahead_of_fork, &peer), None);
    }

    #[test]
    fn links_are_kept_once_and_bounded() {
        let mut lineage = Lineage::default();
        let s = snapshot('b', 400_000, Some(('a', 363_533)));
        lineage.observe(&s);
        lineage.observe(&s);
        assert_eq!(lineage.links().len(), 1);
        lineage.observe_recorded(&Vouched {
            was_master: true,
            replid: id('c'),
            offset: 600_000,
            replid2: id('b'),
            second_repl_offset: 559_558,
        });
        assert_eq!(lineage.links().len(), 2);
        for i in 0..100u64 {
            lineage.add(Link {
                parent: format!("p{i}"),
                child: format!("c{i}"),
                fork: i,
            });
        }
        assert_eq!(lineage.links().len(), Lineage::CAPACITY);
        assert_eq!(lineage.links().last().unwrap().parent, "p99");
        // A loop of links ends.
        let mut looped = Lineage::default();
        looped.add(Link {
            parent: id('a'),
            child: id('b'),
            fork: 10,
        });
        looped.add(Link {
            parent: id('b'),
            child: id('a'),
            fork: 10,
        });
        assert_eq!(
            looped.contained(&snapshot('a', 5, None), &snapshot('d', 9, None)),
            None
        );
    }
}
