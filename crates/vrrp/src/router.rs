//! The VRRP state machine of RFC 3768 section 6.4 and RFC 5798 section 6.4 (VRRPv3:
//! the same states, with the master's advertisement interval learned by backups), as
//! a sans-IO core.
//!
//! A [`Router`] owns no socket, spawns no task and reads no clock: the caller feeds it
//! events with the current time ([`Router::startup`], [`Router::receive`],
//! [`Router::handle_timeout`], ...), sleeps until [`Router::poll_timeout`] and carries
//! out what [`Router::poll_action`] returns. Received adverts must already have passed
//! the checks of [`crate::packet`].

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::packet::Version;

/// The parameters of one virtual router that the state machine needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterConfig {
    /// Virtual router id, 1..=255.
    pub vrid: u8,
    /// Our priority, 1..=255; 255 means we own the virtual addresses.
    pub priority: u8,
    /// The VRRP version: it decides how Skew_Time is computed and whether backups
    /// learn the master's interval.
    pub version: Version,
    /// Advertisement interval.
    pub advert_int: Duration,
    /// Whether a higher-priority backup takes over from a lower-priority master.
    pub preempt: bool,
    /// With `preempt`, how long after start-up we refrain from preempting.
    pub preempt_delay: Duration,
    /// Our primary address on the interface (IPv6: the link-local one): the source
    /// of our adverts and the tie-breaker between equal priorities (the higher
    /// address wins).
    pub primary_address: IpAddr,
}

impl RouterConfig {
    /// Skew_Time for our own interval: see [`RouterConfig::skew_time_for`].
    pub fn skew_time(&self) -> Duration {
        self.skew_time_for(self.advert_int)
    }

    /// Master_Down_Interval for our own interval: see
    /// [`RouterConfig::master_down_interval_for`].
    pub fn master_down_interval(&self) -> Duration {
        self.master_down_interval_for(self.advert_int)
    }

    /// Skew_Time with the master advertising every `master_adver_int`: with VRRPv2,
    /// (256 - Priority) / 256 seconds (RFC 3768 section 6.1: not scaled by the
    /// interval, and keepalived does the same); with VRRPv3, ((256 - Priority) x
    /// Master_Adver_Interval) / 256 (RFC 5798 section 6.1).
    pub fn skew_time_for(&self, master_adver_int: Duration) -> Duration {
        let unit = match self.version {
            Version::V2 => Duration::from_secs(1),
            Version::V3 => master_adver_int,
        };
        unit * (256 - u32::from(self.priority)) / 256
    }

    /// Master_Down_Interval = 3 x Master_Adver_Interval + Skew_Time (with VRRPv2 the
    /// master's interval is ours: an advert with another is dropped).
    pub fn master_down_interval_for(&self, master_adver_int: Duration) -> Duration {
        master_adver_int * 3 + self.skew_time_for(master_adver_int)
    }
}

/// The states of section 6.4, plus Fault: we must not hold the addresses (the local
/// service is down, the addresses cannot be added, or the interface is unusable).
/// See [`FaultCause`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started, or shut down.
    Initialize,
    /// Watching the master; ready to take over.
    Backup,
    /// Holding the virtual addresses and advertising.
    Master,
    /// Out of the election until told otherwise.
    Fault,
}

impl State {
    /// The state's name in capitals, as keepalived prints it.
    pub fn name(self) -> &'static str {
        match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a router is in Fault. Several causes may hold at once; the router leaves Fault
/// (for Backup, or Master as address owner) when the last one clears.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultCause {
    /// The outside said so ([`Router::enter_fault`]): the local service is down.
    Service,
    /// Adding the virtual addresses failed ([`Router::addresses_failed`]); retried
    /// with [`Action::ProbeAddresses`] every advertisement interval.
    Addresses,
    /// The interface is down, gone, or has no address to send from
    /// ([`Router::link_down`]).
    Link,
    /// Another instance of the same sync group is in Fault
    /// ([`Router::group_fault`]).
    Group,
}

impl FaultCause {
    /// A short snake_case name, for logs.
    pub fn name(self) -> &'static str {
        match self {
            FaultCause::Service => "service",
            FaultCause::Addresses => "addresses",
            FaultCause::Link => "link",
            FaultCause::Group => "sync_group",
        }
    }
}

impl fmt::Display for FaultCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a transition happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Start-up as a non-owner: wait for a master.
    Startup,
    /// Start-up (or end of a fault) with priority 255: we own the addresses.
    AddressOwner,
    /// No advert seen for the whole Master_Down_Interval (or Skew_Time after a
    /// priority-0 advert).
    MasterDown {
        /// How long the timer ran.
        waited: Duration,
        /// Whether the last master said goodbye with priority 0.
        after_priority_zero: bool,
    },
    /// An advert with a higher priority than ours arrived while we were master.
    HigherPriority {
        /// Its source.
        source: IpAddr,
        /// Its priority.
        priority: u8,
    },
    /// An advert with our priority from a higher address arrived while we were master.
    HigherAddress {
        /// Its source.
        source: IpAddr,
        /// Its (and our) priority.
        priority: u8,
    },
    /// We were told to shut down.
    Shutdown,
    /// We were told to enter Fault, with the teller's reason.
    Fault(String),
    /// As master we could not add (or renew) the virtual addresses: a master that
    /// cannot hold them must not advertise its priority.
    AddressesFailed(String),
    /// The interface went down, away, or lost the address we send from.
    LinkDown(String),
    /// We were told to leave Fault, with the teller's reason.
    FaultCleared(String),
    /// As master we did not run for a while (the process was stopped, its machine
    /// paused, or it starved): no advert went out for Master_Down_Interval or
    /// longer, so the backups have taken over by now.
    Stalled {
        /// How long since our last advert.
        away: Duration,
    },
}

impl Reason {
    /// A short snake_case name of the kind of reason, for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::Startup => "startup",
            Reason::AddressOwner => "address_owner",
            Reason::MasterDown {
                after_priority_zero: false,
                ..
            } => "master_down",
            Reason::MasterDown {
                after_priority_zero: true,
                ..
            } => "priority_zero",
            Reason::HigherPriority { .. } => "higher_priority",
            Reason::HigherAddress { .. } => "higher_address",
            Reason::Shutdown => "shutdown",
            Reason::Fault(_) => "fault",
            Reason::AddressesFailed(_) => "addresses_failed",
            Reason::LinkDown(_) => "link_down",
            Reason::FaultCleared(_) => "fault_cleared",
            Reason::Stalled { .. } => "stalled",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Startup => f.write_str("start-up: waiting for a master"),
            Reason::AddressOwner => f.write_str("priority 255: we own the virtual addresses"),
            Reason::MasterDown {
                waited,
                after_priority_zero: false,
            } => write!(
                f,
                "no advert from a master for {waited:?} (Master_Down_Interval)"
            ),
            Reason::MasterDown {
                waited,
                after_priority_zero: true,
            } => write!(
                f,
                "master sent priority 0 (stepping down); took over after {waited:?} (Skew_Time)"
            ),
            Reason::HigherPriority { source, priority } => {
                write!(f, "advert from {source} with higher priority {priority}")
            }
            Reason::HigherAddress { source, priority } => {
                write!(
                    f,
                    "advert from {source} with equal priority {priority} and a higher address"
                )
            }
            Reason::Shutdown => f.write_str("shutdown requested"),
            Reason::Fault(why) => write!(f, "fault: {why}"),
            Reason::AddressesFailed(why) => {
                write!(f, "cannot hold the virtual addresses: {why}")
            }
            Reason::LinkDown(why) => write!(f, "interface unusable: {why}"),
            Reason::FaultCleared(why) => write!(f, "fault cleared: {why}"),
            Reason::Stalled { away } => write!(
                f,
                "stalled: no advert sent for {away:?}, longer than Master_Down_Interval; a backup may have taken over meanwhile, listening before claiming again"
            ),
        }
    }
}

/// A state change, reported as an action so that the caller logs and publishes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// Why.
    pub reason: Reason,
}

/// What the caller must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send one advert with this priority (ours, or 0 when stepping down).
    SendAdvert {
        /// The priority to put in the advert.
        priority: u8,
    },
    /// Add the virtual addresses to the interface (we became master).
    AddAddresses,
    /// The virtual addresses' lifetimes may be refreshed now (with every periodic
    /// advert while master); the driver renews when its lease needs it, which the
    /// router does not know.
    RenewAddresses,
    /// Remove the virtual addresses (we left master).
    RemoveAddresses,
    /// In Fault because adding the addresses failed: try adding them again and, as
    /// we are not master, remove them at once; report the outcome with
    /// [`Router::addresses_ok`] or [`Router::addresses_failed`].
    ProbeAddresses,
    /// Announce the virtual addresses with gratuitous ARP. `conflict` is true when it
    /// answers another router's claim rather than our own transition.
    SendGratuitousArp {
        /// True when another master claimed the addresses and we keep them.
        conflict: bool,
    },
    /// We did not run for `away` (see [`Router::receive`]): for the log. A master
    /// also leaves for Backup ([`Reason::Stalled`]); a backup listens for a whole
    /// Master_Down_Interval before it takes over.
    Stalled {
        /// How long the router was not fed: since our last advert (master), or past
        /// the due Master_Down_Timer (backup).
        away: Duration,
    },
    /// The state changed.
    Transition(Transition),
}

/// The state machine of one virtual router.
#[derive(Debug)]
pub struct Router {
    config: RouterConfig,
    state: State,
    /// Adver_Timer in Master, Master_Down_Timer in Backup.
    deadline: Option<Instant>,
    /// When the current Master_Down_Timer was armed, and whether by a priority-0 advert.
    armed: Option<(Instant, bool)>,
    /// Master_Adver_Interval: the interval of the master we listen to, learned from
    /// its adverts with VRRPv3 (ours until one is heard, and always with v2).
    master_adver_int: Duration,
    started_at: Option<Instant>,
    since: Option<Instant>,
    master: Option<(IpAddr, u8)>,
    /// Why we are in Fault, by cause (empty outside Fault).
    faults: BTreeMap<FaultCause, String>,
    /// When we last answered another router's advert while master.
    last_answer: Option<Instant>,
    /// When we last sent an advert with our priority as master.
    last_advert: Option<Instant>,
    answers_suppressed: u64,
    /// Preemption held back from outside (the service behind us is not ready to
    /// serve, e.g. it only copies the master's data), whatever `preempt` says.
    preempt_held: bool,
    actions: VecDeque<Action>,
}

impl Router {
    /// A router in Initialize, waiting for [`Router::startup`].
    pub fn new(config: RouterConfig) -> Self {
        Router {
            state: State::Initialize,
            deadline: None,
            armed: None,
            master_adver_int: config.advert_int,
            started_at: None,
            since: None,
            master: None,
            faults: BTreeMap::new(),
            last_answer: None,
            last_advert: None,
            answers_suppressed: 0,
            preempt_held: false,
            actions: VecDeque::new(),
            config,
        }
    }

    /// Holds preemption back (or lets it act again), without a transition and
    /// whatever the configuration says; kept across [`Router::reconfigure`].
    pub fn hold_preempt(&mut self, hold: bool) {
        self.preempt_held = hold;
    }

    /// The configuration.
    pub fn config(&self) -> &RouterConfig {
        &self.config
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// When the current state was entered.
    pub fn since(&self) -> Option<Instant> {
        self.since
    }

    /// Master_Adver_Interval: the interval of the master we listen to (learned from
    /// its adverts with VRRPv3; ours until one is heard, and always with VRRPv2).
    pub fn master_adver_int(&self) -> Duration {
        self.master_adver_int
    }

    /// Master_Down_Interval as a backup computes it now, from
    /// [`Router::master_adver_int`].
    pub fn master_down_interval(&self) -> Duration {
        self.config.master_down_interval_for(self.master_adver_int)
    }

    /// The master we last heard from while in Backup (source, priority).
    pub fn master(&self) -> Option<(IpAddr, u8)> {
        match self.state {
            State::Master => Some((self.config.primary_address, self.config.priority)),
            State::Backup => self.master,
            _ => None,
        }
    }

    /// The priority we advertise now: ours, or 0 outside Backup and Master.
    pub fn effective_priority(&self) -> u8 {
        match self.state {
            State::Backup | State::Master => self.config.priority,
            _ => 0,
        }
    }

    /// Replaces the configuration of a running router (same VRID): a new priority,
    /// interval or preempt setting applies from the next event on, without a
    /// transition.
    ///
    /// A master whose interval shrinks sends its next advert at the new interval
    /// from its last one, not at the old: the backups now expect adverts that often,
    /// and a master waiting out the old interval would look stalled to itself
    /// ([`Router::notice_stall`]) and to them.
    pub fn reconfigure(&mut self, config: RouterConfig) {
        if self.state == State::Master
            && let (Some(sent), Some(deadline)) = (self.last_advert, self.deadline)
        {
            self.deadline = Some(deadline.min(sent + config.advert_int));
        }
        if config.version == Version::V2 || self.master.is_none() {
            self.master_adver_int = config.advert_int;
        }
        self.config = config;
    }

    /// The Startup event.
    pub fn startup(&mut self, now: Instant) {
        if self.state != State::Initialize {
            return;
        }
        self.started_at = Some(now);
        self.start(now, None);
    }

    fn start(&mut self, now: Instant, cleared: Option<String>) {
        if self.config.priority == 255 {
            let reason = cleared.map_or(Reason::AddressOwner, Reason::FaultCleared);
            self.become_master(now, reason);
        } else {
            let reason = cleared.map_or(Reason::Startup, Reason::FaultCleared);
            self.master_adver_int = self.config.advert_int;
            self.arm_master_down(now, self.config.master_down_interval(), false);
            self.master = None;
            self.transition(now, State::Backup, reason);
        }
    }

    /// The Shutdown event: a master says goodbye with priority 0 and removes the
    /// addresses; every state ends in Initialize.
    pub fn shutdown(&mut self, now: Instant) {
        self.faults.clear();
        self.leave(now, State::Initialize, Reason::Shutdown);
    }

    /// Why we are in Fault now, by cause (empty outside Fault).
    pub fn fault_causes(&self) -> &BTreeMap<FaultCause, String> {
        &self.faults
    }

    /// Enters Fault: a master sends one priority-0 advert (so that a backup takes over
    /// after Skew_Time instead of Master_Down_Interval) and releases the addresses; the
    /// router then stays out of the election until [`Router::leave_fault`] (and until
    /// every other [`FaultCause`] has cleared too).
    pub fn enter_fault(&mut self, now: Instant, why: impl Into<String>) {
        let why = why.into();
        self.add_fault(now, FaultCause::Service, why.clone(), Reason::Fault(why));
    }

    /// Leaves Fault for Backup (or Master, for an address owner), unless another
    /// [`FaultCause`] still holds.
    pub fn leave_fault(&mut self, now: Instant, why: impl Into<String>) {
        self.clear_fault(now, FaultCause::Service, why.into());
    }

    /// Another instance of our sync group is in Fault: so are we (priority 0, the
    /// addresses released, as for [`Router::enter_fault`]), until
    /// [`Router::group_fault_cleared`] and every other cause has cleared.
    pub fn group_fault(&mut self, now: Instant, why: impl Into<String>) {
        let why = why.into();
        self.add_fault(now, FaultCause::Group, why.clone(), Reason::Fault(why));
    }

    /// No other instance of our sync group is in Fault any more: clears
    /// [`FaultCause::Group`], leaving Fault if nothing else holds.
    pub fn group_fault_cleared(&mut self, now: Instant, why: impl Into<String>) {
        self.clear_fault(now, FaultCause::Group, why.into());
    }

    /// Whether we are in Fault for a cause of our own, not only for our sync group.
    pub fn own_fault(&self) -> bool {
        self.faults.keys().any(|c| *c != FaultCause::Group)
    }

    /// Adding or renewing the virtual addresses failed. A master enters Fault (it
    /// must not advertise its priority for addresses it does not hold: the backups
    /// would never take over) and probes every advertisement interval with
    /// [`Action::ProbeAddresses`]; in Fault, a failed probe just waits for the next.
    /// Outside Master and Fault (a late report) it changes nothing.
    pub fn addresses_failed(&mut self, now: Instant, why: impl Into<String>) {
        let why = why.into();
        match self.state {
            State::Master => {
                self.add_fault(
                    now,
                    FaultCause::Addresses,
                    why.clone(),
                    Reason::AddressesFailed(why),
                );
            }
            State::Fault if self.faults.contains_key(&FaultCause::Addresses) => {
                self.faults.insert(FaultCause::Addresses, why);
            }
            _ => return,
        }
        self.arm_probe(now + self.config.advert_int);
    }

    /// The virtual addresses could be added again (a probe succeeded): clears
    /// [`FaultCause::Addresses`], leaving Fault if nothing else holds.
    pub fn addresses_ok(&mut self, now: Instant) {
        self.clear_fault(
            now,
            FaultCause::Addresses,
            "the virtual addresses can be added again".into(),
        );
    }

    /// The interface is down, gone, or has no address to send from: enter Fault (a
    /// master steps down as for [`Router::enter_fault`]), until
    /// [`Router::link_up`]. Address probes wait meanwhile.
    pub fn link_down(&mut self, now: Instant, why: impl Into<String>) {
        let why = why.into();
        self.add_fault(now, FaultCause::Link, why.clone(), Reason::LinkDown(why));
        self.deadline = None;
    }

    /// The interface is usable again: clears [`FaultCause::Link`], leaving Fault if
    /// nothing else holds; a pending address fault is probed at once.
    pub fn link_up(&mut self, now: Instant, why: impl Into<String>) {
        self.clear_fault(now, FaultCause::Link, why.into());
        if self.state == State::Fault && self.faults.contains_key(&FaultCause::Addresses) {
            self.arm_probe(now);
        }
    }

    fn add_fault(&mut self, now: Instant, cause: FaultCause, why: String, reason: Reason) {
        self.faults.insert(cause, why);
        if self.state != State::Fault {
            self.leave(now, State::Fault, reason);
        }
    }

    fn clear_fault(&mut self, now: Instant, cause: FaultCause, why: String) {
        if self.faults.remove(&cause).is_none()
            || self.state != State::Fault
            || !self.faults.is_empty()
        {
            return;
        }
        // Like keepalived, preempt_delay counts again from here: a service that just
        // came back does not grab the addresses at once.
        self.started_at = Some(now);
        self.start(now, Some(why));
    }

    fn arm_probe(&mut self, at: Instant) {
        if !self.faults.contains_key(&FaultCause::Link) {
            self.deadline = Some(at);
        }
    }

    fn leave(&mut self, now: Instant, to: State, reason: Reason) {
        if self.state == to {
            return;
        }
        if self.state == State::Master {
            // Addresses first: a backup with a short Skew_Time must not add them
            // while we still answer for them.
            self.actions.push_back(Action::RemoveAddresses);
            self.actions.push_back(Action::SendAdvert { priority: 0 });
        }
        self.deadline = None;
        self.armed = None;
        self.master = None;
        self.transition(now, to, reason);
    }

    /// A valid advert (it passed every receive check) from `source`, announcing
    /// `interval` (with VRRPv2, ours).
    ///
    /// Like [`Router::handle_timeout`], it first looks whether the router was fed
    /// at all for a while (see [`Router::notice_stall`]): after a stop, every timer
    /// is overdue and the socket holds adverts from the whole pause, and whichever
    /// comes first must not act on a world that has moved on.
    pub fn receive(&mut self, now: Instant, source: IpAddr, priority: u8, interval: Duration) {
        self.notice_stall(now);
        match self.state {
            State::Backup => self.receive_as_backup(now, source, priority, interval),
            State::Master => self.receive_as_master(now, source, priority, interval),
            State::Initialize | State::Fault => {}
        }
    }

    fn receive_as_backup(
        &mut self,
        now: Instant,
        source: IpAddr,
        priority: u8,
        interval: Duration,
    ) {
        if priority == 0 {
            self.master = None;
            let skew = self.config.skew_time_for(self.master_adver_int);
            self.arm_master_down(now, skew, true);
            return;
        }
        if !self.may_preempt(now) || priority >= self.config.priority {
            self.master = Some((source, priority));
            self.learn_interval(interval);
            self.arm_master_down(now, self.master_down_interval(), false);
        }
        // Else: preempting a lower-priority master: let the timer run out.
    }

    /// VRRPv3 (RFC 5798 section 6.4.2 and 6.4.3): the master's interval becomes
    /// Master_Adver_Interval. With v2 it is ours anyway.
    fn learn_interval(&mut self, interval: Duration) {
        if self.config.version == Version::V3 && !interval.is_zero() {
            self.master_adver_int = interval;
        }
    }

    fn receive_as_master(
        &mut self,
        now: Instant,
        source: IpAddr,
        priority: u8,
        interval: Duration,
    ) {
        let ours = self.config.priority;
        if priority == 0 {
            // Another master stepped down (it yielded to us after a split, or shut
            // down): confirm at once that a master is here, and point the LAN's
            // neighbour tables back at us, since they may name the other router.
            self.answer(now);
        } else if priority > ours {
            self.learn_interval(interval);
            self.step_down(
                now,
                Reason::HigherPriority { source, priority },
                source,
                priority,
            );
        } else if priority == ours && source > self.config.primary_address {
            self.learn_interval(interval);
            self.step_down(
                now,
                Reason::HigherAddress { source, priority },
                source,
                priority,
            );
        } else {
            // Another master claims our addresses (a healed split): it will yield to
            // our advert; tell it now, and tell the LAN again where the addresses are.
            self.answer(now);
        }
    }

    /// Answers another router's advert while master: our own advert, a renewal of
    /// the addresses (answering restarts the advert timer, so a stream of such
    /// adverts must not starve the renewal) and a burst of gratuitous ARP.
    ///
    /// At most one answer per advertisement interval: every answer costs the LAN an
    /// advert and a broadcast burst, and a flood of adverts (spoofed, or a looping
    /// peer) must not become a broadcast storm. A suppressed answer loses nothing: our
    /// periodic advert goes out within the interval anyway, and the gratuitous ARP of
    /// the last answer is less than an interval old.
    fn answer(&mut self, now: Instant) {
        if self
            .last_answer
            .is_some_and(|at| now < at + self.config.advert_int)
        {
            self.answers_suppressed += 1;
            return;
        }
        self.last_answer = Some(now);
        self.advertise(now);
        self.actions.push_back(Action::RenewAddresses);
        self.actions
            .push_back(Action::SendGratuitousArp { conflict: true });
    }

    /// How many adverts received as master went unanswered because an answer had
    /// already gone out within the advertisement interval.
    pub fn answers_suppressed(&self) -> u64 {
        self.answers_suppressed
    }

    /// Master to Backup on a better advert (a healed split, or a preempting peer). The
    /// winner may never have heard our adverts, so nothing tells it that the LAN's
    /// neighbour tables point at us: one last advert with our own priority does (a
    /// master answers a lower advert with its own and gratuitous ARP, keepalived
    /// too). Not priority 0: that would make every other backup arm its short
    /// Skew_Time timer, and one lost packet would then elect a third router.
    fn step_down(&mut self, now: Instant, reason: Reason, source: IpAddr, priority: u8) {
        self.actions.push_back(Action::RemoveAddresses);
        self.actions.push_back(Action::SendAdvert {
            priority: self.config.priority,
        });
        self.arm_master_down(now, self.master_down_interval(), false);
        self.master = Some((source, priority));
        self.transition(now, State::Backup, reason);
    }

    fn may_preempt(&self, now: Instant) -> bool {
        let delay_over = self
            .started_at
            .is_none_or(|started| now >= started + self.config.preempt_delay);
        self.config.preempt && !self.preempt_held && delay_over
    }

    /// The earliest time at which [`Router::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// Notices that the router was not fed for a while (the process was stopped,
    /// its machine paused, or the runtime starved; time is monotonic, so a jump of
    /// the wall clock is no such thing):
    /// - a master that sent no advert for Master_Down_Interval or longer has been
    ///   taken over by now (the backups' timers ran out, and its addresses' lease
    ///   in the kernel with them). Renewing the addresses and advertising would
    ///   make two holders and pull the LAN's neighbour tables back to a router
    ///   whose service may have been taken over meanwhile: it goes to Backup
    ///   instead ([`Reason::Stalled`]), removes what is left of its addresses and
    ///   listens for a whole Master_Down_Interval, hearing the new master's adverts
    ///   and settling by the ordinary rules (preempt or not);
    /// - a backup whose Master_Down_Timer is due by more than an advertisement
    ///   interval has not been listening: the adverts of its pause may be waiting
    ///   in the socket, so it listens for a whole Master_Down_Interval again
    ///   before it takes over.
    fn notice_stall(&mut self, now: Instant) {
        let away = match self.state {
            State::Master => {
                let Some(sent) = self.last_advert else { return };
                let away = now.saturating_duration_since(sent);
                if away < self.config.master_down_interval() {
                    return;
                }
                away
            }
            State::Backup => {
                let Some(deadline) = self.deadline else {
                    return;
                };
                let late = now.saturating_duration_since(deadline);
                if late < self.config.advert_int {
                    return;
                }
                late
            }
            State::Initialize | State::Fault => return,
        };
        self.actions.push_back(Action::Stalled { away });
        if self.state == State::Master {
            self.actions.push_back(Action::RemoveAddresses);
            self.master = None;
            self.transition(now, State::Backup, Reason::Stalled { away });
        }
        self.arm_master_down(now, self.config.master_down_interval(), false);
    }

    /// Fires the timer that is due at `now`, if any (after looking for a stall, as
    /// [`Router::receive`] does).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.notice_stall(now);
        let Some(deadline) = self.deadline else {
            return;
        };
        if now < deadline {
            return;
        }
        match self.state {
            State::Master => {
                self.advertise(now);
                // The period runs from the deadline, not from when we got to it: a
                // late wake-up (a busy runtime) does not push every later advert
                // back. After a wake-up more than an interval late, from now.
                let next = deadline + self.config.advert_int;
                if next > now {
                    self.deadline = Some(next);
                }
                self.actions.push_back(Action::RenewAddresses);
            }
            State::Backup => {
                let (armed_at, after_priority_zero) = self.armed.unwrap_or((now, false));
                let reason = Reason::MasterDown {
                    waited: now.saturating_duration_since(armed_at),
                    after_priority_zero,
                };
                self.become_master(now, reason);
            }
            State::Fault if self.faults.contains_key(&FaultCause::Addresses) => {
                self.actions.push_back(Action::ProbeAddresses);
                self.deadline = None;
                // Re-armed by the probe's outcome (addresses_failed), not here: a
                // probe that is never reported must not pile up more probes.
            }
            State::Initialize | State::Fault => self.deadline = None,
        }
    }

    /// The next action to carry out, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn become_master(&mut self, now: Instant, reason: Reason) {
        self.armed = None;
        self.master = None;
        self.advertise(now);
        self.actions.push_back(Action::AddAddresses);
        self.actions
            .push_back(Action::SendGratuitousArp { conflict: false });
        self.transition(now, State::Master, reason);
    }

    fn advertise(&mut self, now: Instant) {
        self.actions.push_back(Action::SendAdvert {
            priority: self.config.priority,
        });
        self.last_advert = Some(now);
        self.deadline = Some(now + self.config.advert_int);
    }

    fn arm_master_down(&mut self, now: Instant, after: Duration, priority_zero: bool) {
        self.deadline = Some(now + after);
        self.armed = Some((now, priority_zero));
    }

    fn transition(&mut self, now: Instant, to: State, reason: Reason) {
        let from = self.state;
        self.state = to;
        self.since = Some(now);
        self.actions
            .push_back(Action::Transition(Transition { from, to, reason }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::Ipv4Addr;

    const ME: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 11));
    const LOWER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 5));
    const HIGHER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 20));

    fn config(priority: u8, preempt: bool) -> RouterConfig {
        RouterConfig {
            vrid: 51,
            priority,
            version: Version::V2,
            advert_int: Duration::from_secs(1),
            preempt,
            preempt_delay: Duration::ZERO,
            primary_address: ME,
        }
    }

    /// An advert at our own interval.
    fn hear(r: &mut Router, now: Instant, source: IpAddr, priority: u8) {
        let interval = r.config().advert_int;
        r.receive(now, source, priority, interval);
    }

    fn drain(router: &mut Router) -> Vec<Action> {
        std::iter::from_fn(|| router.poll_action()).collect()
    }

    fn transitions(actions: &[Action]) -> Vec<(State, State)> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Transition(t) => Some((t.from, t.to)),
                _ => None,
            })
            .collect()
    }

    fn master_at(now: Instant, priority: u8) -> Router {
        let mut r = Router::new(config(priority, true));
        r.startup(now);
        r.handle_timeout(now + r.config().master_down_interval());
        assert_eq!(r.state(), State::Master);
        drain(&mut r);
        r
    }

    fn v3(priority: u8, advert_int: Duration) -> RouterConfig {
        RouterConfig {
            version: Version::V3,
            advert_int,
            ..config(priority, false)
        }
    }

    /// RFC 5798 section 6.1: Skew_Time = ((256 - Priority) x Master_Adver_Interval)
    /// / 256, Master_Down_Interval = 3 x Master_Adver_Interval + Skew_Time.
    #[test]
    fn v3_timers_scale_with_the_interval() {
        let ms = Duration::from_millis;
        let c = v3(100, ms(100));
        assert_eq!(c.skew_time(), ms(100) * 156 / 256);
        assert_eq!(c.master_down_interval(), ms(300) + ms(100) * 156 / 256);
        assert_eq!(c.skew_time_for(ms(1000)), ms(1000) * 156 / 256);
        let c = v3(254, ms(10));
        assert_eq!(c.master_down_interval(), ms(30) + ms(10) * 2 / 256);
    }

    /// A v3 backup learns Master_Adver_Interval from the master's adverts (section
    /// 6.4.2) and computes its timers from it, whatever its own interval; priority 0
    /// arms Skew_Time of the learned interval. A v2 backup keeps its own (an advert
    /// with another is dropped before it gets here).
    #[test]
    fn a_v3_backup_learns_the_masters_interval() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        let mut r = Router::new(v3(100, ms(1000)));
        r.startup(t0);
        assert_eq!(r.master_adver_int(), ms(1000));
        assert_eq!(
            r.poll_timeout(),
            Some(t0 + r.config().master_down_interval())
        );
        r.receive(t0, HIGHER, 150, ms(100));
        assert_eq!(r.master_adver_int(), ms(100));
        let mdi = ms(300) + ms(100) * 156 / 256;
        assert_eq!(r.master_down_interval(), mdi);
        assert_eq!(r.poll_timeout(), Some(t0 + mdi));
        r.receive(t0 + ms(50), HIGHER, 0, ms(100));
        assert_eq!(r.poll_timeout(), Some(t0 + ms(50) + ms(100) * 156 / 256));
        r.handle_timeout(t0 + ms(50) + ms(100) * 156 / 256);
        assert_eq!(r.state(), State::Master);
        // A master that yields to a better advert listens at that one's interval.
        let mut r = Router::new(v3(100, ms(1000)));
        r.startup(t0);
        r.handle_timeout(t0 + r.config().master_down_interval());
        assert_eq!(r.state(), State::Master);
        let t1 = t0 + Duration::from_secs(5);
        r.receive(t1, HIGHER, 200, ms(250));
        assert_eq!(r.state(), State::Backup);
        assert_eq!(r.poll_timeout(), Some(t1 + ms(750) + ms(250) * 156 / 256));
        // v2 ignores what the advert says (it said ours).
        let mut r = Router::new(config(100, false));
        r.startup(t0);
        r.receive(t0, HIGHER, 150, ms(100));
        assert_eq!(r.master_adver_int(), Duration::from_secs(1));
    }

    /// At 10 ms and 100 ms a master advertises on its period, with nothing drifting:
    /// every deadline is the previous one plus the interval, however late the
    /// driver got to the last one.
    #[test]
    fn sub_second_adverts_keep_their_period() {
        for int in [Duration::from_millis(10), Duration::from_millis(100)] {
            let t0 = Instant::now();
            let mut r = Router::new(v3(100, int));
            r.startup(t0);
            let mut now = t0 + r.config().master_down_interval();
            r.handle_timeout(now);
            drain(&mut r);
            let mut due = now;
            for i in 0..1000u32 {
                assert_eq!(r.poll_timeout(), Some(due + int));
                due += int;
                // Woken up to 3 ms late, at random: the schedule does not slip.
                now = due + Duration::from_micros(u64::from(i * 7919 % 3000));
                r.handle_timeout(now);
                let sent = drain(&mut r)
                    .into_iter()
                    .filter(|a| matches!(a, Action::SendAdvert { priority: 100 }))
                    .count();
                assert_eq!(sent, 1);
            }
        }
    }

    #[test]
    fn timers_follow_the_rfc() {
        let c = config(100, true);
        assert_eq!(c.skew_time(), Duration::from_secs(1) * 156 / 256);
        assert_eq!(
            c.master_down_interval(),
            Duration::from_secs(3) + Duration::from_secs(1) * 156 / 256
        );
        let c = RouterConfig {
            advert_int: Duration::from_secs(5),
            ..config(254, true)
        };
        assert_eq!(c.skew_time(), Duration::from_secs(2) / 256);
        assert_eq!(
            c.master_down_interval(),
            Duration::from_secs(15) + Duration::from_secs(2) / 256
        );
    }

    #[test]
    fn starts_in_backup_and_takes_over_after_master_down_interval() {
        let t0 = Instant::now();
        let mut r = Router::new(config(100, true));
        r.startup(t0);
        assert_eq!(r.state(), State::Backup);
        assert_eq!(
            transitions(&drain(&mut r)),
            [(State::Initialize, State::Backup)]
        );
        let mdi = r.config().master_down_interval();
        assert_eq!(r.poll_timeout(), Some(t0 + mdi));
        r.handle_timeout(t0 + mdi - Duration::from_millis(1));
        assert_eq!(r.state(), State::Backup);
        r.handle_timeout(t0 + mdi);
        assert_eq!(r.state(), State::Master);
        let actions = drain(&mut r);
        assert_eq!(actions[0], Action::SendAdvert { priority: 100 });
        assert!(actions.contains(&Action::AddAddresses));
        assert!(actions.contains(&Action::SendGratuitousArp { conflict: false }));
        assert_eq!(r.poll_timeout(), Some(t0 + mdi + Duration::from_secs(1)));
    }

    #[test]
    fn an_owner_becomes_master_at_once() {
        let t0 = Instant::now();
        let mut r = Router::new(config(255, true));
        r.startup(t0);
        assert_eq!(r.state(), State::Master);
        assert_eq!(
            transitions(&drain(&mut r)),
            [(State::Initialize, State::Master)]
        );
    }

    #[test]
    fn a_master_advertises_and_renews_every_interval() {
        let t0 = Instant::now();
        let mut r = master_at(t0, 100);
        let next = r.poll_timeout().unwrap();
        r.handle_timeout(next);
        assert_eq!(
            drain(&mut r),
            [Action::SendAdvert { priority: 100 }, Action::RenewAddresses]
        );
        assert_eq!(r.poll_timeout(), Some(next + Duration::from_secs(1)));
    }

    #[test]
    fn adverts_keep_a_backup_down() {
        let t0 = Instant::now();
        let mut r = Router::new(config(100, false));
        r.startup(t0);
        for s in 1..100 {
            let now = t0 + Duration::from_secs(s);
            hear(&mut r, now, HIGHER, 50);
            r.handle_timeout(now);
        }
        assert_eq!(r.state(), State::Backup);
        assert_eq!(r.master(), Some((HIGHER, 50)));
    }

    #[test]
    fn preempt_lets_a_higher_backup_take_over_a_lower_master() {
        let t0 = Instant::now();
        let mut r = Router::new(config(100, true));
        r.startup(t0);
        let mut now = t0;
        while r.state() == State::Backup {
            now += Duration::from_secs(1);
            hear(&mut r, now, HIGHER, 50);
            r.handle_timeout(now);
            assert!(now < t0 + Duration::from_secs(10));
        }
        assert_eq!(r.state(), State::Master);
    }

    #[test]
    fn a_held_preempt_lets_a_lower_master_stay_until_released() {
        let t0 = Instant::now();
        let mut r = Router::new(config(100, true));
        r.startup(t0);
        r.hold_preempt(true);
        r.reconfigure(config(100, true));
        let mut now = t0;
        for _ in 0..10 {
            now += Duration::from_secs(1);
            hear(&mut r, now, HIGHER, 50);
            r.handle_timeout(now);
            assert_eq!(r.state(), State::Backup, "preempted while held");
        }
        r.hold_preempt(false);
        while r.state() == State::Backup {
            now += Duration::from_secs(1);
            hear(&mut r, now, HIGHER, 50);
            r.handle_timeout(now);
            assert!(now < t0 + Duration::from_secs(20));
        }
        assert_eq!(r.state(), State::Master);
    }

    #[test]
    fn preempt_delay_holds_preemption_back() {
        let t0 = Instant::now();
        let mut r = Router::new(RouterConfig {
            preempt_delay: Duration::from_secs(30),
            ..config(100, true)
        });
        r.startup(t0);
        let mut now = t0;
        while r.state() == State::Backup {
            now += Duration::from_secs(1);
            hear(&mut r, now, HIGHER, 50);
            r.handle_timeout(now);
            assert!(now < t0 + Duration::from_secs(60));
        }
        assert!(
            now >= t0 + Duration::from_secs(30),
            "preempted at {:?}",
            now - t0
        );
        assert!(
            now <= t0 + Duration::from_secs(34),
            "preempted at {:?}",
            now - t0
        );
    }

    #[test]
    fn priority_zero_makes_a_backup_take_over_after_skew_time() {
        let t0 = Instant::now();
        let mut r = Router::new(config(100, false));
        r.startup(t0);
        hear(&mut r, t0, HIGHER, 200);
        drain(&mut r);
        let t1 = t0 + Duration::from_millis(500);
        hear(&mut r, t1, HIGHER, 0);
        assert_eq!(r.poll_timeout(), Some(t1 + r.config().skew_time()));
        r.handle_timeout(t1 + r.config().skew_time());
        assert_eq!(r.state(), State::Master);
        let Some(Action::Transition(t)) = drain(&mut r)
            .into_iter()
            .find(|a| matches!(a, Action::Transition(_)))
        else {
            panic!("no transition");
        };
        assert!(matches!(
            t.reason,
            Reason::MasterDown {
                after_priority_zero: true,
                ..
            }
        ));
    }

    #[test]
    fn a_master_yields_to_a_higher_priority() {
        let t0 = Instant::now();
        let mut r = master_at(t0, 100);
        hear(&mut r, t0 + Duration::from_secs(4), LOWER, 101);
        assert_eq!(r.state(), State::Backup);
        let actions = drain(&mut r);
        assert_eq!(actions[0], Action::RemoveAddresses);
        assert_eq!(actions[1], Action::SendAdvert { priority: 100 });
        assert_eq!(transitions(&actions), [(State::Master, State::Backup)]);
    }

    #[test]
    fn equal_priority_is_broken_by_the_higher_address() {
        let t0 = Instant::now();
        let mut r = master_at(t0, 100);
        hear(&mut r, t0 + Duration::from_secs(4), LOWER, 100);
        assert_eq!(r.state(), State::Master);
        hear(&mut r, t0 + Duration::from_secs(4), HIGHER, 100);
        assert_eq!(r.state(), State::Backup);
    }

    #[test]
    fn a_master_answers_a_conflicting_master_with_advert_and_garp() {
        let t0 = Instant::now();
        let mut r = master_at(t0, 100);
        let now = t0 + Duration::from_secs(4);
        hear(&mut r, now, HIGHER, 50);
        assert_eq!(r.state(), State::Master);
        assert_eq!(
            drain(&mut r),
            [
                Action::SendAdvert { priority: 100 },
                Action::RenewAddresses,
                Action::SendGratuitousArp { conflict: true }
            ]
        );
        assert_eq!(r.poll_timeout(), Some(now + Duration::from_secs(1)));
    }

    #[test]
    fn a_master_answers_at_most_once_per_advert_interval() {
        let t0 = Instant::now();
        let mut r = master_at(t0, 100);
        let start = t0 + Duration::from_secs(4);
        let mut adverts = 0;
        let mut bursts = 0;
        for i in 0..1000u32 {
            let now = start + Duration::from_millis(u64::from(i));
            // Lower adverts and priority 0 alike.
            hear(&mut r, now, HIGHER, if i % 2 == 0 { 50 } else { 0 });
            r.handle_timeout(now);
            for action in drain(&mut r) {
                match action {
                    Action::SendAdvert { .. } => adverts += 1,
                    Action::SendGratuitousArp { conflict: true } => bursts += 1,
                    _ => {}
                }
            }
        }
        assert_eq!(r.state(), State::Master);
        assert_eq!(bursts, 1, "one answer in the first second");
        assert!(adverts <= 2, "{adverts} adverts");
        assert_eq!(r.answers_suppressed(), 999);
        // The next interval gets its answer again.
        hear(&mut r, start + Duration::from_secs(1), HIGHER, 50);
        assert!(drain(&mut r).contains(&Action::SendGratuitousArp { conflict: true }));
    }

    #[test]
    fn a_master_answers_priority_zero_with_advert_and_garp() {
        let t0 = Instant::now();
        let mut r = master_at(t0, 100);
        hear(&mut r, t0 + Duration::from_secs(4), HIGHER, 0);
        assert_eq!(r.state(), State::Master);
        assert_eq!(
            drain(&mut r),
            [
                Action::SendAdvert { priority: 100 },
                Action::RenewAddresses,
                Action::SendGratuitousArp { conflict: true }
            ]
        );
    }

    #[test]
    fn shutdown_of_a_master_sends_priority_zero_and_removes_addresses() {
        let t0 = Instant::now();
        let mut r = master_at(t0, 100);
        r.shutdown(t0 + Duration::from_secs(10));
        assert_eq!(r.state(), State::Initialize);
        let actions = drain(&mut r);
        assert_eq!(actions[0], Action::RemoveAddresses);
        assert_eq!(actions[1], Action::SendAdvert { priority: 0 });
        assert_eq!(r.poll_timeout(), None);
    }

    #[test]
    fn shutdown_of_a_backup_sends_nothing() {
        let t0 = Instant::now();
        let mut r = Router::new(config(100, true));
        r.startup(t0);
        drain(&mut r);
        r.shutdown(t0);
        assert_eq!(
            transitions(&drain(&mut r)),
            [(State::Backup, State::Initialize)]
        );
    }

    #[test]
    fn fault_releases_and_stays_out_until_cleared() {
        let t0 = Instant::now();
        let mut r = master_at(t0, 100);
        r.enter_fault(t0, "redis down");
        assert_eq!(r.state(), State::Fault);
        assert_eq!(r.effective_priority(), 0);
        let actions = drain(&mut r);
        assert_eq!(actions[0], Action::RemoveAddresses);
        assert_eq!(actions[1], Action::SendAdvert { priority: 0 });
        assert_eq!(r.poll_timeout(), None);
        // Nothing brings it back but leave_fault.
        for s in 1..100 {
            let now = t0 + Duration::from_secs(s);
            hear(&mut r, now, HIGHER, 0);
            r.handle_timeout(now);
        }
        assert_eq!(r.state(), State::Fault);
        assert!(drain(&mut r).is_empty());
        let t1 = t0 + Duration::from_secs(200);
        r.leave_fault(t1, "redis up");
        assert_eq!(r.state(), State::Backup);
        assert_eq!(
            r.poll_timeout(),
            Some(t1 + r.config().master_down_interval())
        );
    }

    #[test]
    fn a_master_that_cannot_add_its_addresses_goes_to_fault_and_probes() {
        let t0 = Instant::now();
        let mut r = master_at(t0, 100);
        r.addresses_failed(t0, "EPERM");
        assert_eq!(r.state(), State::Fault);
        assert_eq!(r.effective_priority(), 0);
        let actions = drain(&mut r);
        assert_eq!(actions[0], Action::RemoveAddresses);
        assert_eq!(actions[1], Action::SendAdvert { priority: 0 });
        let Some(Action::Transition(t)) = actions.last() else {
            panic!("{actions:?}");
        };
        assert_eq!(t.reason, Reason::AddressesFailed("EPERM".into()));
        assert_eq!(t.reason.kind(), "addresses_failed");
        // A probe every interval while it keeps failing; no transition.
        let mut now = t0;
        for _ in 0..3 {
            now += Duration::from_secs(1);
            assert_eq!(r.poll_timeout(), Some(now));
            r.handle_timeout(now);
            assert_eq!(drain(&mut r), [Action::ProbeAddresses]);
            r.addresses_failed(now, "EPERM");
            assert_eq!(r.state(), State::Fault);
        }
        now += Duration::from_secs(1);
        r.handle_timeout(now);
        assert_eq!(drain(&mut r), [Action::ProbeAddresses]);
        r.addresses_ok(now);
        assert_eq!(r.state(), State::Backup);
        assert!(r.fault_causes().is_empty());
        assert_eq!(
            r.poll_timeout(),
            Some(now + r.config().master_down_interval())
        );
    }

    #[test]
    fn fault_causes_clear_one_by_one() {
        let t0 = Instant::now();
        let mut r = master_at(t0, 100);
        r.addresses_failed(t0, "ENODEV");
        r.link_down(t0, "eth0 is gone");
        r.enter_fault(t0, "redis down");
        assert_eq!(r.fault_causes().len(), 3);
        // No probe while the link is down.
        assert_eq!(r.poll_timeout(), None);
        r.leave_fault(t0, "redis up");
        assert_eq!(r.state(), State::Fault);
        r.link_up(t0, "eth0 is back");
        assert_eq!(r.state(), State::Fault);
        // The address fault is probed at once when the link is back.
        assert_eq!(r.poll_timeout(), Some(t0));
        r.handle_timeout(t0);
        assert!(drain(&mut r).contains(&Action::ProbeAddresses));
        r.addresses_ok(t0);
        assert_eq!(r.state(), State::Backup);
    }

    #[test]
    fn link_down_takes_a_master_to_fault_and_link_up_to_backup() {
        let t0 = Instant::now();
        let mut r = master_at(t0, 100);
        r.link_down(t0, "eth0 is down");
        assert_eq!(r.state(), State::Fault);
        let actions = drain(&mut r);
        assert_eq!(actions[0], Action::RemoveAddresses);
        assert!(matches!(
            actions.last(),
            Some(Action::Transition(Transition {
                from: State::Master,
                to: State::Fault,
                reason: Reason::LinkDown(_)
            }))
        ));
        // A late address failure report changes nothing.
        r.addresses_failed(t0, "ENODEV");
        assert_eq!(r.fault_causes().len(), 1);
        let t1 = t0 + Duration::from_secs(5);
        r.link_up(t1, "eth0 is up");
        assert_eq!(r.state(), State::Backup);
        assert_eq!(transitions(&drain(&mut r)), [(State::Fault, State::Backup)]);
    }

    #[test]
    fn a_sync_group_fault_holds_until_cleared_and_is_no_fault_of_our_own() {
        let t0 = Instant::now();
        let mut r = master_at(t0, 100);
        r.group_fault(t0, "sync group cache: cache is in FAULT");
        assert_eq!(r.state(), State::Fault);
        assert!(!r.own_fault());
        let actions = drain(&mut r);
        assert_eq!(actions[0], Action::RemoveAddresses);
        assert_eq!(actions[1], Action::SendAdvert { priority: 0 });
        // Our own cause on top: own; clearing the group's leaves us in Fault.
        r.enter_fault(t0, "redis down");
        assert!(r.own_fault());
        r.group_fault_cleared(t0, "sync group cache: no member in FAULT");
        assert_eq!(r.state(), State::Fault);
        // Once ours clears too, Backup.
        r.leave_fault(t0 + Duration::from_secs(1), "redis up");
        assert_eq!(r.state(), State::Backup);
        assert!(!r.own_fault());
        // Clearing a group fault that is not there changes nothing.
        drain(&mut r);
        r.group_fault_cleared(t0 + Duration::from_secs(2), "again");
        assert_eq!(r.state(), State::Backup);
        assert!(drain(&mut r).is_empty());
    }

    #[test]
    fn an_address_failure_outside_master_changes_nothing() {
        let t0 = Instant::now();
        let mut r = Router::new(config(100, true));
        r.startup(t0);
        drain(&mut r);
        r.addresses_failed(t0, "late report");
        assert_eq!(r.state(), State::Backup);
        assert!(drain(&mut r).is_empty());
    }

    #[test]
    fn fault_before_startup_and_from_backup() {
        let t0 = Instant::now();
        let mut r = Router::new(config(100, true));
        r.enter_fault(t0, "redis down at start");
        assert_eq!(r.state(), State::Fault);
        assert!(!drain(&mut r).contains(&Action::SendAdvert { priority: 0 }));
        r.leave_fault(t0, "redis up");
        assert_eq!(r.state(), State::Backup);
        r.enter_fault(t0, "again");
        let actions = drain(&mut r);
        assert!(!actions.contains(&Action::RemoveAddresses));
        assert_eq!(r.state(), State::Fault);
    }

    /// A master resumed after a stop longer than Master_Down_Interval steps down to
    /// Backup at its first event, whichever it is: no advert, no renewal, no
    /// gratuitous ARP for addresses a backup has taken over meanwhile.
    #[test]
    fn a_master_that_stalled_steps_down_at_its_first_event() {
        let t0 = Instant::now();
        for timer_first in [true, false] {
            let mut r = master_at(t0, 150);
            let since_advert = |r: &Router| r.poll_timeout().unwrap() - r.config().advert_int;
            let away = r.config().master_down_interval() + Duration::from_secs(2);
            let resumed = since_advert(&r) + away;
            if timer_first {
                r.handle_timeout(resumed);
            } else {
                hear(&mut r, resumed, LOWER, 100);
            }
            let actions = drain(&mut r);
            assert_eq!(actions[0], Action::Stalled { away }, "{actions:?}");
            assert!(actions.contains(&Action::RemoveAddresses), "{actions:?}");
            assert!(
                !actions.iter().any(|a| matches!(
                    a,
                    Action::SendAdvert { .. }
                        | Action::RenewAddresses
                        | Action::AddAddresses
                        | Action::SendGratuitousArp { .. }
                )),
                "{actions:?}"
            );
            let Some(Action::Transition(t)) = actions.last() else {
                panic!("no transition: {actions:?}");
            };
            assert_eq!((t.from, t.to), (State::Master, State::Backup));
            assert_eq!(t.reason, Reason::Stalled { away });
            assert_eq!(t.reason.kind(), "stalled");
            assert_eq!(
                r.poll_timeout(),
                Some(resumed + r.config().master_down_interval())
            );
        }
    }

    /// After the stall it is an ordinary backup: without preempt it follows the
    /// lower-priority master that took over; with preempt it takes over again only
    /// after a whole Master_Down_Interval of listening.
    #[test]
    fn after_a_stall_the_protocol_settles_it() {
        let t0 = Instant::now();
        for preempt in [false, true] {
            let mut r = Router::new(config(150, preempt));
            r.startup(t0);
            let mdi = r.config().master_down_interval();
            r.handle_timeout(t0 + mdi);
            assert_eq!(r.state(), State::Master);
            drain(&mut r);
            let resumed = t0 + mdi * 3;
            for i in 0..3 {
                hear(&mut r, resumed + Duration::from_millis(i), LOWER, 100);
            }
            assert_eq!(r.state(), State::Backup);
            drain(&mut r);
            let mut now = resumed;
            for _ in 0..5 {
                now += r.config().advert_int;
                hear(&mut r, now, LOWER, 100);
                r.handle_timeout(now);
            }
            let actions = drain(&mut r);
            if preempt {
                assert_eq!(r.state(), State::Master, "{actions:?}");
                assert_eq!(transitions(&actions), [(State::Backup, State::Master)]);
            } else {
                assert_eq!(r.state(), State::Backup, "{actions:?}");
                assert_eq!(r.master(), Some((LOWER, 100)));
                assert!(transitions(&actions).is_empty());
            }
        }
    }

    /// A master whose advert timer is merely late (load) keeps its state.
    #[test]
    fn a_late_advert_timer_is_no_stall() {
        let t0 = Instant::now();
        let mut r = master_at(t0, 150);
        let late = r.poll_timeout().unwrap() + r.config().advert_int;
        r.handle_timeout(late);
        let actions = drain(&mut r);
        assert_eq!(r.state(), State::Master);
        assert!(actions.contains(&Action::SendAdvert { priority: 150 }));
        assert!(!actions.iter().any(|a| matches!(a, Action::Stalled { .. })));
    }

    /// A backup whose Master_Down_Timer is overdue by more than an advertisement
    /// interval has not been listening: it listens a whole interval again first.
    #[test]
    fn a_backup_that_stalled_listens_before_taking_over() {
        let t0 = Instant::now();
        let mut r = Router::new(config(100, true));
        r.startup(t0);
        hear(&mut r, t0, HIGHER, 150);
        drain(&mut r);
        let due = r.poll_timeout().unwrap();
        let resumed = due + Duration::from_secs(5);
        r.handle_timeout(resumed);
        let actions = drain(&mut r);
        assert_eq!(r.state(), State::Backup, "{actions:?}");
        assert_eq!(
            actions,
            [Action::Stalled {
                away: Duration::from_secs(5)
            }]
        );
        let mdi = r.config().master_down_interval();
        assert_eq!(r.poll_timeout(), Some(resumed + mdi));
        // The adverts that waited in the socket keep it a backup.
        hear(&mut r, resumed, HIGHER, 150);
        assert_eq!(r.state(), State::Backup);
        // Late by less than an interval: an ordinary takeover.
        let mut r = Router::new(config(100, true));
        r.startup(t0);
        let due = r.poll_timeout().unwrap();
        r.handle_timeout(due + Duration::from_millis(300));
        assert_eq!(r.state(), State::Master);
    }

    /// A master reloaded to a much shorter interval is no stalled master: its next
    /// advert is due at the new interval from its last one.
    #[test]
    fn a_shorter_interval_by_reload_is_no_stall() {
        let t0 = Instant::now();
        let mut r = Router::new(RouterConfig {
            advert_int: Duration::from_secs(5),
            ..config(150, true)
        });
        r.startup(t0);
        r.handle_timeout(r.poll_timeout().unwrap());
        assert_eq!(r.state(), State::Master);
        drain(&mut r);
        let sent = r.poll_timeout().unwrap() - Duration::from_secs(5);
        r.reconfigure(config(150, true));
        assert_eq!(r.poll_timeout(), Some(sent + Duration::from_secs(1)));
        r.handle_timeout(sent + Duration::from_secs(1));
        let actions = drain(&mut r);
        assert_eq!(r.state(), State::Master, "{actions:?}");
        assert!(actions.contains(&Action::SendAdvert { priority: 150 }));
        // Longer again: the advert already due stays due.
        let due = r.poll_timeout().unwrap();
        r.reconfigure(RouterConfig {
            advert_int: Duration::from_secs(5),
            ..config(150, true)
        });
        assert_eq!(r.poll_timeout(), Some(due));
    }
}
