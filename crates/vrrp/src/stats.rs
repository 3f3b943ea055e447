//! Counters of an instance: adverts sent and received, and every dropped packet by
//! the reason it was dropped for.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a received packet was dropped. Every variant has its own counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than its headers or its declared address list.
    Truncated,
    /// Not a well-formed IPv4 header carrying protocol 112.
    IpHeader,
    /// IP TTL other than 255: the packet crossed a router.
    Ttl,
    /// VRRP version other than 2.
    Version,
    /// VRRP type other than ADVERTISEMENT.
    Type,
    /// VRRP checksum mismatch.
    Checksum,
    /// A virtual router id other than ours.
    Vrid,
    /// We own the addresses (priority 255) and accept no advert.
    OwnerReceived,
    /// Authentication type differs from ours.
    AuthType,
    /// Authentication data (password) differs from ours.
    Authentication,
    /// The address list differs from ours and the sender is not the owner.
    AddressList,
    /// Advertisement interval differs from ours.
    Interval,
    /// Unicast mode: the source is not one of the configured peers.
    UnknownSource,
    /// `allowed_sources` is set and the source is not in it (multicast or unicast).
    SourceNotAllowed,
}

impl DropReason {
    /// Every reason, in a stable order.
    pub const ALL: [DropReason; 14] = [
        DropReason::Truncated,
        DropReason::IpHeader,
        DropReason::Ttl,
        DropReason::Version,
        DropReason::Type,
        DropReason::Checksum,
        DropReason::Vrid,
        DropReason::OwnerReceived,
        DropReason::AuthType,
        DropReason::Authentication,
        DropReason::AddressList,
        DropReason::Interval,
        DropReason::UnknownSource,
        DropReason::SourceNotAllowed,
    ];

    /// A short snake_case name, used in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::IpHeader => "ip_header",
            DropReason::Ttl => "ttl",
            DropReason::Version => "version",
            DropReason::Type => "type",
            DropReason::Checksum => "checksum",
            DropReason::Vrid => "vrid",
            DropReason::OwnerReceived => "owner_received",
            DropReason::AuthType => "auth_type",
            DropReason::Authentication => "authentication",
            DropReason::AddressList => "address_list",
            DropReason::Interval => "interval",
            DropReason::UnknownSource => "unknown_source",
            DropReason::SourceNotAllowed => "source_not_allowed",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Counters shared between the receive loop and whoever reports them.
#[derive(Debug, Default)]
pub struct Stats {
    adverts_sent: AtomicU64,
    adverts_received: AtomicU64,
    priority_zero_sent: AtomicU64,
    priority_zero_received: AtomicU64,
    became_master: AtomicU64,
    answers_suppressed: AtomicU64,
    dropped: [AtomicU64; DropReason::ALL.len()],
}

/// A copy of the counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Adverts sent, priority 0 included.
    pub adverts_sent: u64,
    /// Valid adverts received for this instance.
    pub adverts_received: u64,
    /// Priority-0 adverts sent (shutdown, fault).
    pub priority_zero_sent: u64,
    /// Priority-0 adverts received.
    pub priority_zero_received: u64,
    /// Transitions to Master.
    pub became_master: u64,
    /// Adverts received as master that went unanswered (rate limit: one answer per
    /// advertisement interval).
    pub answers_suppressed: u64,
    /// Dropped packets by reason, in the order of [`DropReason::ALL`].
    pub dropped: Vec<(DropReason, u64)>,
}

impl StatsSnapshot {
    /// The drop counter for one reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped
            .iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| *n)
    }

    /// All dropped packets together.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(|(_, n)| n).sum()
    }
}

impl fmt::Display for StatsSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "adverts_sent={} adverts_received={} priority_zero_sent={} priority_zero_received={} became_master={} answers_suppressed={}",
            self.adverts_sent,
            self.adverts_received,
            self.priority_zero_sent,
            self.priority_zero_received,
            self.became_master,
            self.answers_suppressed
        )?;
        for (reason, n) in &self.dropped {
            write!(f, " dropped_{reason}={n}")?;
        }
        Ok(())
    }
}

impl Stats {
    /// Counts a sent advert.
    pub fn sent(&self, priority: u8) {
        self.adverts_sent.fetch_add(1, Ordering::Relaxed);
        if priority == 0 {
            self.priority_zero_sent.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a valid received advert.
    pub fn received(&self, priority: u8) {
        self.adverts_received.fetch_add(1, Ordering::Relaxed);
        if priority == 0 {
            self.priority_zero_received.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Valid adverts received so far, without copying every counter.
    pub fn adverts_received(&self) -> u64 {
        self.adverts_received.load(Ordering::Relaxed)
    }

    /// Counts a transition to Master.
    pub fn became_master(&self) {
        self.became_master.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets the number of unanswered adverts (the router keeps the count).
    pub fn set_answers_suppressed(&self, count: u64) {
        self.answers_suppressed.store(count, Ordering::Relaxed);
    }

    /// Counts a dropped packet and returns the new count for its reason.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()].fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            adverts_sent: self.adverts_sent.load(Ordering::Relaxed),
            adverts_received: self.adverts_received.load(Ordering::Relaxed),
            priority_zero_sent: self.priority_zero_sent.load(Ordering::Relaxed),
            priority_zero_received: self.priority_zero_received.load(Ordering::Relaxed),
            became_master: self.became_master.load(Ordering::Relaxed),
            answers_suppressed: self.answers_suppressed.load(Ordering::Relaxed),
            dropped: DropReason::ALL
                .iter()
                .map(|r| (*r, self.dropped[r.index()].load(Ordering::Relaxed)))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_lists_every_reason_at_its_index() {
        for (i, reason) in DropReason::ALL.iter().enumerate() {
            assert_eq!(reason.index(), i);
        }
    }

    #[test]
    fn counts_by_reason() {
        let stats = Stats::default();
        assert_eq!(stats.dropped(DropReason::Ttl), 1);
        assert_eq!(stats.dropped(DropReason::Ttl), 2);
        stats.dropped(DropReason::Checksum);
        stats.sent(0);
        stats.received(100);
        let s = stats.snapshot();
        assert_eq!(s.dropped(DropReason::Ttl), 2);
        assert_eq!(s.dropped(DropReason::Checksum), 1);
        assert_eq!(s.dropped(DropReason::Vrid), 0);
        assert_eq!(s.dropped_total(), 3);
        assert_eq!(
            (s.adverts_sent, s.priority_zero_sent, s.adverts_received),
            (1, 1, 1)
        );
        assert!(s.to_string().contains("dropped_ttl=2"));
    }
}
