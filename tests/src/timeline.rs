//! What a [`crate::Lan`] records: every transition and outside event per router, and
//! every change of the set of routers holding the virtual address.

use std::fmt;
use std::time::{Duration, Instant};

use vrrp::{DropReason, State, Transition};

use crate::lan::{NodeId, Segment};

/// Something that happened to one router at one instant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// When.
    pub at: Instant,
    /// To which router.
    pub node: NodeId,
    /// What.
    pub what: Happening,
}

/// The kinds of [`Record`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Happening {
    /// The state machine changed state (reported by `Action::Transition`).
    Transition(Transition),
    /// The process was started (a fresh `Router`).
    Started,
    /// The process was stopped gracefully (SIGTERM: `Router::shutdown`).
    ShutDown,
    /// The process was killed (SIGKILL): it does nothing from now on.
    Killed,
    /// The process was stopped (SIGSTOP): nothing until it resumes.
    Paused,
    /// The router noticed it had not run for `away` (`Action::Stalled`).
    Stalled {
        /// How long.
        away: Duration,
    },
    /// The stopped process resumed (SIGCONT), with so many frames waiting.
    Resumed {
        /// Frames that arrived while it was stopped.
        waiting: usize,
    },
    /// The local service went down: the router was told to enter Fault.
    ServiceDown(String),
    /// The local service came back: the router was told to leave Fault.
    ServiceUp(String),
    /// The router's link moved to this segment (`None`: unplugged).
    Link(Option<Segment>),
    /// The virtual address was added (`AddAddresses`).
    AddressAdded,
    /// The virtual address was removed (`RemoveAddresses`, or stale at start-up).
    AddressRemoved,
    /// The address's kernel lifetime ran out without a renewal.
    AddressExpired,
    /// Adding (or renewing) the address failed (see `Lan::fail_address_adds`).
    AddressAddFailed(String),
    /// The router probed whether the address can be added again
    /// (`Action::ProbeAddresses`).
    AddressProbe {
        /// Whether the add succeeded (the probe removes the address at once).
        ok: bool,
    },
    /// The interface went down (`Lan::link_down`): unplugged, and the router told.
    InterfaceDown,
    /// The interface came back up (`Lan::link_up`).
    InterfaceUp,
    /// An advert this router sent was lost on purpose.
    AdvertLost {
        /// The priority it carried.
        priority: u8,
    },
    /// A received packet failed the receive checks.
    Dropped(DropReason),
    /// The router asked for gratuitous ARP.
    GratuitousArp {
        /// As in `Action::SendGratuitousArp`.
        conflict: bool,
    },
}

impl fmt::Display for Happening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Happening::Transition(t) => write!(f, "{} -> {}: {}", t.from, t.to, t.reason),
            Happening::Started => f.write_str("process started"),
            Happening::ShutDown => f.write_str("process shut down (SIGTERM)"),
            Happening::Killed => f.write_str("process killed (SIGKILL)"),
            Happening::Paused => f.write_str("process stopped (SIGSTOP)"),
            Happening::Stalled { away } => write!(f, "noticed it had not run for {away:?}"),
            Happening::Resumed { waiting } => {
                write!(f, "process resumed (SIGCONT), {waiting} frames waiting")
            }
            Happening::ServiceDown(why) => write!(f, "service down: {why}"),
            Happening::ServiceUp(why) => write!(f, "service up: {why}"),
            Happening::Link(Some(s)) => write!(f, "link on segment {s}"),
            Happening::Link(None) => f.write_str("link unplugged"),
            Happening::AddressAdded => f.write_str("VIP added"),
            Happening::AddressRemoved => f.write_str("VIP removed"),
            Happening::AddressExpired => f.write_str("VIP lease expired"),
            Happening::AddressAddFailed(why) => write!(f, "adding the VIP failed: {why}"),
            Happening::AddressProbe { ok } => write!(f, "VIP probe (can add: {ok})"),
            Happening::InterfaceDown => f.write_str("interface down"),
            Happening::InterfaceUp => f.write_str("interface up"),
            Happening::AdvertLost { priority } => write!(f, "advert (priority {priority}) lost"),
            Happening::Dropped(reason) => write!(f, "dropped a packet: {reason:?}"),
            Happening::GratuitousArp { conflict } => {
                write!(f, "gratuitous ARP (conflict: {conflict})")
            }
        }
    }
}

impl Record {
    /// The transition, if this record is one.
    pub fn transition(&self) -> Option<&Transition> {
        match &self.what {
            Happening::Transition(t) => Some(t),
            _ => None,
        }
    }

    /// True when this record is a transition into `state`.
    pub fn is_transition_to(&self, state: State) -> bool {
        self.transition().is_some_and(|t| t.to == state)
    }
}

/// The set of routers holding the virtual address changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HolderChange {
    /// When.
    pub at: Instant,
    /// Every router whose interface carries the address from now on (killed ones
    /// included, until their lease runs out), in id order.
    pub holders: Vec<NodeId>,
    /// The holders whose process is running.
    pub live: Vec<NodeId>,
}

/// The stretches of constant holders in `history` that overlap `[from, to)`, clipped to
/// it: `(start, end, change)`.
pub fn stretches(
    history: &[HolderChange],
    from: Instant,
    to: Instant,
) -> Vec<(Instant, Instant, &HolderChange)> {
    let mut out = Vec::new();
    for (i, change) in history.iter().enumerate() {
        let end = history.get(i + 1).map_or(to, |next| next.at.min(to));
        let start = change.at.max(from);
        if start < end {
            out.push((start, end, change));
        }
    }
    out
}

/// How long, within `[from, to)`, two or more routers held the address at once.
pub fn time_with_several_holders(history: &[HolderChange], from: Instant, to: Instant) -> Duration {
    stretches(history, from, to)
        .into_iter()
        .filter(|(_, _, c)| c.holders.len() > 1)
        .map(|(start, end, _)| end - start)
        .sum()
}

/// How long, within `[from, to)`, two or more running routers held the address at
/// once.
pub fn time_with_several_live_holders(
    history: &[HolderChange],
    from: Instant,
    to: Instant,
) -> Duration {
    stretches(history, from, to)
        .into_iter()
        .filter(|(_, _, c)| c.live.len() > 1)
        .map(|(start, end, _)| end - start)
        .sum()
}

/// The largest number of live holders at any instant in `[from, to]`, counting even the
/// zero-length states inside one instant.
pub fn max_live_holders(history: &[HolderChange], from: Instant, to: Instant) -> usize {
    let before = history
        .iter()
        .rev()
        .find(|c| c.at < from)
        .map_or(0, |c| c.live.len());
    history
        .iter()
        .filter(|c| c.at >= from && c.at <= to)
        .map(|c| c.live.len())
        .fold(before, usize::max)
}
