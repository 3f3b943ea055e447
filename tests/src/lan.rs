//! A deterministic simulated LAN of VRRP routers.
//!
//! Each router is a [`vrrp::Router`] wrapped in a simulated process (started, shut
//! down, killed) with a link to a segment and an interface that may carry the virtual
//! address. The LAN carries out the routers' actions the way `vrrp::driver` does:
//!
//! * `SendAdvert` encodes a real [`Advert`], wraps it in an IPv4 datagram with
//!   [`ipv4_datagram`] and puts it on the sender's segment; after the link delay every
//!   other running router on that segment runs it through the agent's own receive
//!   path ([`vrrp::receive::Demux::route`]: decode, the VRID; then
//!   [`vrrp::receive::Filter::check`]: ignore our own, check) and
//!   feeds what passes to [`Router::receive`];
//! * `AddAddresses` / `RenewAddresses` give the address a lease of
//!   [`InstanceConfig::address_lease`] (the kernel lifetime), `RemoveAddresses` removes
//!   it; a killed router's address stays until its lease runs out (invariant 7);
//! * while [`Lan::fail_address_adds`] is set, adds fail and the router is told
//!   (`Router::addresses_failed`), and `ProbeAddresses` reports the outcome back;
//!   [`Lan::link_down`] / [`Lan::link_up`] unplug a router and tell it, as the
//!   driver's link watch does.
//!
//! Time is virtual: [`Lan::step`] jumps to the earliest wake-up of all routers, frames
//! in flight and address leases. Everything is deterministic: at one instant, due
//! timers fire first (routers in id order), then due frames are delivered (in the order
//! they were sent), until nothing is due.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use vrrp::packet::{MULTICAST_GROUP, TTL, ipv4_datagram};
use vrrp::receive::{Datagram, Demux, Filter, Inbound, Routed};
use vrrp::{
    Action, Advert, Auth, GarpConfig, InstanceConfig, Router, RouterConfig, State, Version,
    VirtualAddress,
};

use crate::timeline::{self, Happening, HolderChange, Record};

/// The virtual address every simulated router serves.
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
/// The virtual router id of [`router_config`].
pub const VRID: u8 = 51;
/// The link delay of [`Lan::new`].
pub const DEFAULT_LINK_DELAY: Duration = Duration::from_millis(1);

/// A router's index in its [`Lan`], in the order of [`Lan::add_router`].
pub type NodeId = usize;
/// A broadcast domain. Every router starts on segment 0.
pub type Segment = u32;

/// `192.0.2.<host>`: a router's primary address.
pub fn host_address(host: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, host)
}

/// A configuration with VRID [`VRID`], a 1 s interval, preemption without delay, and
/// the primary address `192.0.2.<host>`.
pub fn router_config(host: u8, priority: u8) -> RouterConfig {
    RouterConfig {
        vrid: VRID,
        priority,
        version: Version::V2,
        advert_int: Duration::from_secs(1),
        preempt: true,
        preempt_delay: Duration::ZERO,
        primary_address: host_address(host).into(),
    }
}

/// The life of a router's process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Process {
    /// Not started yet, or shut down gracefully.
    Stopped,
    /// Running: it receives, fires timers and acts.
    Running,
    /// Killed (SIGKILL): it does nothing, and what it left on its interface stays.
    Killed,
    /// Stopped (SIGSTOP): it neither fires timers nor handles frames, which wait in
    /// its socket until it resumes; what it left on its interface stays until the
    /// lease runs out.
    Paused,
}

/// What a router resumed from SIGSTOP handles first: its overdue timer, or the
/// frames waiting in its socket (the real driver's `select!` picks either).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResumeOrder {
    /// The overdue timer first, then the waiting frames.
    TimersFirst,
    /// The waiting frames first, then the timer.
    FramesFirst,
}

struct Node {
    config: RouterConfig,
    /// What the real driver would run with: interval on the wire, lease, auth.
    instance: InstanceConfig,
    /// The receive checks of `instance`, as the driver runs them.
    filter: Filter,
    /// Its host's receive socket's map from VRID to instance, as the shared socket
    /// runs it (one instance here).
    demux: Demux<()>,
    router: Router,
    process: Process,
    /// Whether the local service is up: a router started while it is down starts in
    /// Fault, as `driver::spawn(.., start_in_fault)` does.
    healthy: bool,
    segment: Option<Segment>,
    /// When the address on the interface expires; `None` when it is not there.
    address: Option<Instant>,
    /// How many of its next adverts to lose.
    lose_next: u32,
    /// While set, adding or renewing the address fails with this error.
    adds_fail: Option<String>,
    /// The segment to go back to when the interface comes up again.
    down_from: Option<Option<Segment>>,
    adverts_sent: u64,
    adverts_received: u64,
    /// Frames that arrived while it was [`Process::Paused`].
    backlog: Vec<Vec<u8>>,
}

impl Node {
    fn holds(&self, now: Instant) -> bool {
        self.address.is_some_and(|expires| now < expires)
    }
}

/// A datagram on a segment.
struct Frame {
    sender: Option<NodeId>,
    segment: Segment,
    datagram: Vec<u8>,
}

/// The simulated LAN. See the [module documentation](self).
pub struct Lan {
    base: Instant,
    now: Instant,
    link_delay: Duration,
    nodes: Vec<Node>,
    /// Frames in flight by delivery time and send order.
    frames: BTreeMap<(Instant, u64), Frame>,
    next_seq: u64,
    timeline: Vec<Record>,
    history: Vec<HolderChange>,
}

impl Default for Lan {
    fn default() -> Self {
        Lan::new()
    }
}

impl Lan {
    /// An empty LAN at virtual time zero, with [`DEFAULT_LINK_DELAY`].
    pub fn new() -> Self {
        Lan::with_link_delay(DEFAULT_LINK_DELAY)
    }

    /// An empty LAN whose frames take `link_delay` to arrive.
    pub fn with_link_delay(link_delay: Duration) -> Self {
        let base = Instant::now();
        Lan {
            base,
            now: base,
            link_delay,
            nodes: Vec::new(),
            frames: BTreeMap::new(),
            next_seq: 0,
            timeline: Vec::new(),
            history: vec![HolderChange {
                at: base,
                holders: Vec::new(),
                live: Vec::new(),
            }],
        }
    }

    /// A LAN with one stopped router per configuration, in order.
    pub fn with_routers(configs: impl IntoIterator<Item = RouterConfig>) -> Self {
        let mut lan = Lan::new();
        for config in configs {
            lan.add_router(config);
        }
        lan
    }

    /// Adds a router, not started, with a healthy service, linked to segment 0.
    pub fn add_router(&mut self, config: RouterConfig) -> NodeId {
        let instance = InstanceConfig {
            name: format!("vrid-{}-{}", config.vrid, config.primary_address),
            interface: "lan0".into(),
            vrid: config.vrid,
            priority: config.priority,
            version: config.version,
            advert_int: config.advert_int,
            v3_checksum_as_v2: false,
            preempt: config.preempt,
            preempt_delay: config.preempt_delay,
            virtual_addresses: vec![VirtualAddress {
                address: VIP.into(),
                prefix_len: 24,
            }],
            auth: Auth::None,
            unicast_peers: Vec::new(),
            unicast_src_ip: Some(config.primary_address),
            allowed_sources: Vec::new(),
            garp: GarpConfig::default(),
        };
        let mut demux = Demux::new();
        let _ = demux.insert(instance.vrid, ());
        self.nodes.push(Node {
            demux,
            filter: Filter::new(&instance),
            router: Router::new(config.clone()),
            config,
            instance,
            process: Process::Stopped,
            healthy: true,
            segment: Some(0),
            address: None,
            lose_next: 0,
            adds_fail: None,
            down_from: None,
            adverts_sent: 0,
            adverts_received: 0,
            backlog: Vec::new(),
        });
        self.nodes.len() - 1
    }

    // ---------------------------------------------------------------- time

    /// Virtual time zero.
    pub fn base(&self) -> Instant {
        self.base
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time elapsed since [`Lan::base`].
    pub fn elapsed(&self) -> Duration {
        self.now - self.base
    }

    /// The instant `offset` after [`Lan::base`].
    pub fn at(&self, offset: Duration) -> Instant {
        self.base + offset
    }

    /// How long a frame takes from sender to receivers.
    pub fn link_delay(&self) -> Duration {
        self.link_delay
    }

    /// Changes the delay of frames sent from now on.
    pub fn set_link_delay(&mut self, delay: Duration) {
        self.link_delay = delay;
    }

    // ---------------------------------------------------------------- routers

    /// How many routers there are.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when there is no router.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every router id.
    pub fn ids(&self) -> std::ops::Range<NodeId> {
        0..self.nodes.len()
    }

    /// A router's configuration.
    pub fn config(&self, id: NodeId) -> &RouterConfig {
        &self.nodes[id].config
    }

    /// A router's state machine (the last one, for a stopped or killed process).
    pub fn router(&self, id: NodeId) -> &Router {
        &self.nodes[id].router
    }

    /// A router's state.
    pub fn state(&self, id: NodeId) -> State {
        self.nodes[id].router.state()
    }

    /// A router's process.
    pub fn process(&self, id: NodeId) -> Process {
        self.nodes[id].process
    }

    /// True when a router's process is running.
    pub fn is_running(&self, id: NodeId) -> bool {
        self.nodes[id].process == Process::Running
    }

    /// True when a router's local service is up (it is not told to be in Fault).
    pub fn is_healthy(&self, id: NodeId) -> bool {
        self.nodes[id].healthy
    }

    /// The segment a router is linked to (`None`: unplugged).
    pub fn segment(&self, id: NodeId) -> Option<Segment> {
        self.nodes[id].segment
    }

    /// Master_Down_Interval of a router.
    pub fn master_down_interval(&self, id: NodeId) -> Duration {
        self.nodes[id].config.master_down_interval()
    }

    /// Skew_Time of a router.
    pub fn skew_time(&self, id: NodeId) -> Duration {
        self.nodes[id].config.skew_time()
    }

    /// The lifetime a router gives the address, as the real driver computes it.
    pub fn lease(&self, id: NodeId) -> Duration {
        let node = &self.nodes[id];
        node.instance
            .address_lease(node.config.master_down_interval())
    }

    /// The largest Master_Down_Interval of all routers.
    pub fn max_master_down_interval(&self) -> Duration {
        self.nodes
            .iter()
            .map(|n| n.config.master_down_interval())
            .max()
            .unwrap_or_default()
    }

    /// How many adverts a router has put on the wire (lost ones not counted).
    pub fn adverts_sent(&self, id: NodeId) -> u64 {
        self.nodes[id].adverts_sent
    }

    /// How many adverts a router has accepted (passed every check).
    pub fn adverts_received(&self, id: NodeId) -> u64 {
        self.nodes[id].adverts_received
    }

    // ---------------------------------------------------------------- processes

    /// Starts a router's process, as the real agent does: a fresh [`Router`], any
    /// address left by an earlier run removed, then `startup`, or `enter_fault` when
    /// the local service is down. Does nothing to a running process.
    pub fn start(&mut self, id: NodeId) {
        if self.is_running(id) {
            return;
        }
        let now = self.now;
        let node = &mut self.nodes[id];
        node.router = Router::new(node.config.clone());
        node.process = Process::Running;
        node.backlog.clear();
        self.record(id, Happening::Started);
        if self.nodes[id].address.take().is_some() {
            self.record(id, Happening::AddressRemoved);
        }
        self.note_holders();
        let node = &mut self.nodes[id];
        if node.down_from.is_some() {
            node.router.link_down(now, "lan0 is down at start");
        }
        if node.healthy {
            node.router.startup(now);
        } else {
            node.router.enter_fault(now, "service down at start");
        }
        self.drain(id);
    }

    /// Starts every router that is not running, in id order, at the same instant.
    pub fn start_all(&mut self) {
        for id in self.ids() {
            self.start(id);
        }
    }

    /// Stops a running router gracefully (SIGTERM): `Router::shutdown`, whose actions
    /// are carried out, then the process ends.
    pub fn shutdown(&mut self, id: NodeId) {
        if !self.is_running(id) {
            return;
        }
        self.record(id, Happening::ShutDown);
        self.nodes[id].router.shutdown(self.now);
        self.drain(id);
        self.nodes[id].process = Process::Stopped;
        self.note_holders();
    }

    /// Kills a running router (SIGKILL): from now on it neither receives, nor fires
    /// timers, nor sends; its address stays until its lease runs out.
    pub fn kill(&mut self, id: NodeId) {
        if !matches!(self.nodes[id].process, Process::Running | Process::Paused) {
            return;
        }
        self.nodes[id].process = Process::Killed;
        self.nodes[id].backlog.clear();
        self.record(id, Happening::Killed);
        self.note_holders();
    }

    /// Stops a running router (SIGSTOP): until [`Lan::resume`] it fires no timer
    /// and handles no frame; frames for it wait in its socket.
    pub fn pause(&mut self, id: NodeId) {
        if !self.is_running(id) {
            return;
        }
        self.nodes[id].process = Process::Paused;
        self.record(id, Happening::Paused);
    }

    /// Resumes a stopped router (SIGCONT): it handles its overdue timer and the
    /// frames that waited, in `order`, as the real driver's first loop turns do.
    pub fn resume(&mut self, id: NodeId, order: ResumeOrder) {
        if self.nodes[id].process != Process::Paused {
            return;
        }
        self.nodes[id].process = Process::Running;
        let waiting = std::mem::take(&mut self.nodes[id].backlog);
        self.record(
            id,
            Happening::Resumed {
                waiting: waiting.len(),
            },
        );
        let fire = |lan: &mut Lan| {
            let now = lan.now;
            let router = &mut lan.nodes[id].router;
            if router.poll_timeout().is_some_and(|t| t <= now) {
                router.handle_timeout(now);
                lan.drain(id);
            }
        };
        if order == ResumeOrder::TimersFirst {
            fire(self);
        }
        for datagram in &waiting {
            self.receive(id, datagram);
        }
        if order == ResumeOrder::FramesFirst {
            fire(self);
        }
    }

    /// The local service goes down: a running router enters Fault (a stopped one will
    /// start in Fault).
    pub fn enter_fault(&mut self, id: NodeId, why: &str) {
        self.nodes[id].healthy = false;
        self.record(id, Happening::ServiceDown(why.into()));
        if self.is_running(id) {
            self.nodes[id].router.enter_fault(self.now, why);
            self.drain(id);
        }
    }

    /// The local service comes back: a running router leaves Fault, as the driver's
    /// `Command::LeaveFault` does.
    pub fn leave_fault(&mut self, id: NodeId, why: &str) {
        self.nodes[id].healthy = true;
        self.record(id, Happening::ServiceUp(why.into()));
        if self.is_running(id) {
            let now = self.now;
            let router = &mut self.nodes[id].router;
            match router.state() {
                State::Fault => router.leave_fault(now, why),
                State::Initialize => router.startup(now),
                State::Backup | State::Master => {}
            }
            self.drain(id);
        }
    }

    // ---------------------------------------------------------------- links

    /// Unplugs a router: it sends to nobody and hears nothing.
    pub fn disconnect(&mut self, id: NodeId) {
        self.link(id, None);
    }

    /// Moves a router's link to `segment`.
    pub fn connect(&mut self, id: NodeId, segment: Segment) {
        self.link(id, Some(segment));
    }

    /// Splits the LAN: the routers of `groups[i]` go to segment `i + 1`; the others
    /// stay where they are.
    pub fn partition(&mut self, groups: &[&[NodeId]]) {
        for (i, group) in groups.iter().enumerate() {
            let segment = Segment::try_from(i + 1).expect("few groups");
            for &id in *group {
                self.connect(id, segment);
            }
        }
    }

    /// Puts every router back on segment 0.
    pub fn heal(&mut self) {
        for id in self.ids() {
            self.connect(id, 0);
        }
    }

    fn link(&mut self, id: NodeId, segment: Option<Segment>) {
        if self.nodes[id].segment != segment {
            self.nodes[id].segment = segment;
            self.record(id, Happening::Link(segment));
        }
    }

    /// From now on adding or renewing the address fails with `why` (the interface
    /// refuses it: EPERM, a conflict), until called with `None`. The router is told,
    /// as the driver tells it: `Router::addresses_failed`.
    pub fn fail_address_adds(&mut self, id: NodeId, why: Option<&str>) {
        self.nodes[id].adds_fail = why.map(str::to_owned);
    }

    /// The router's interface goes down: it is unplugged and its router told
    /// (`Router::link_down`), as the driver's link watch does.
    pub fn link_down(&mut self, id: NodeId) {
        if self.nodes[id].down_from.is_some() {
            return;
        }
        self.nodes[id].down_from = Some(self.nodes[id].segment);
        self.record(id, Happening::InterfaceDown);
        self.link(id, None);
        if self.is_running(id) {
            self.nodes[id].router.link_down(self.now, "lan0 is down");
            self.drain(id);
        }
    }

    /// The router's interface comes back up on the segment it left, and its router is
    /// told (`Router::link_up`).
    pub fn link_up(&mut self, id: NodeId) {
        let Some(segment) = self.nodes[id].down_from.take() else {
            return;
        };
        self.record(id, Happening::InterfaceUp);
        self.link(id, segment);
        if self.is_running(id) {
            self.nodes[id].router.link_up(self.now, "lan0 is up");
            self.drain(id);
        }
    }

    /// Loses the next `count` adverts the router sends (nobody receives them).
    pub fn lose_next_adverts(&mut self, id: NodeId, count: u32) {
        self.nodes[id].lose_next += count;
    }

    /// Puts on `segment` an advert for our VRID and VIP from a host that is not one
    /// of the routers (an intruder, a misconfigured peer, a stale sender).
    pub fn inject_advert(
        &mut self,
        segment: Segment,
        source: Ipv4Addr,
        priority: u8,
        advert_int_secs: u8,
    ) {
        let advert = Advert::new(VRID, priority, advert_int_secs, &Auth::None, &[VIP]);
        self.inject_datagram(
            segment,
            ipv4_datagram(source, MULTICAST_GROUP, TTL, &advert.encode()),
        );
    }

    /// Puts an arbitrary IPv4 datagram on `segment`, from no router.
    pub fn inject_datagram(&mut self, segment: Segment, datagram: Vec<u8>) {
        self.send_frame(None, segment, datagram);
    }

    // ---------------------------------------------------------------- the VIP

    /// Every router whose interface carries the VIP now, killed ones included, in id
    /// order: "who holds the VIP now".
    pub fn holders(&self) -> Vec<NodeId> {
        self.ids().filter(|&id| self.holds(id)).collect()
    }

    /// The holders whose process is running.
    pub fn live_holders(&self) -> Vec<NodeId> {
        self.ids()
            .filter(|&id| self.holds(id) && self.is_running(id))
            .collect()
    }

    /// The only holder, if exactly one router holds the VIP.
    pub fn sole_holder(&self) -> Option<NodeId> {
        match self.holders()[..] {
            [one] => Some(one),
            _ => None,
        }
    }

    /// True when a router's interface carries the VIP now.
    pub fn holds(&self, id: NodeId) -> bool {
        self.nodes[id].holds(self.now)
    }

    /// The running routers in Master state.
    pub fn masters(&self) -> Vec<NodeId> {
        self.ids()
            .filter(|&id| self.is_running(id) && self.state(id) == State::Master)
            .collect()
    }

    // ---------------------------------------------------------------- records

    /// Every record so far, in order.
    pub fn timeline(&self) -> &[Record] {
        &self.timeline
    }

    /// Every change of the holder set so far, starting with the empty set at
    /// [`Lan::base`]. Several changes may share an instant.
    pub fn history(&self) -> &[HolderChange] {
        &self.history
    }

    /// The first transition into `to` at or after `after`, by any router.
    pub fn first_transition_to(&self, to: State, after: Instant) -> Option<(Instant, NodeId)> {
        self.timeline
            .iter()
            .find(|r| r.at >= after && r.is_transition_to(to))
            .map(|r| (r.at, r.node))
    }

    /// Every transition into `to` at or after `after`: `(when, who)`.
    pub fn transitions_to(&self, to: State, after: Instant) -> Vec<(Instant, NodeId)> {
        self.timeline
            .iter()
            .filter(|r| r.at >= after && r.is_transition_to(to))
            .map(|r| (r.at, r.node))
            .collect()
    }

    /// The first instant at or after `after` from which `id` was the only holder (and
    /// stayed so at least until the end of the recorded history or the next change).
    pub fn sole_holder_since(&self, id: NodeId, after: Instant) -> Option<Instant> {
        let start = self
            .history
            .iter()
            .rev()
            .find(|c| c.at <= after)
            .filter(|c| c.holders == [id])
            .map(|_| after);
        start.or_else(|| {
            self.history
                .iter()
                .find(|c| c.at >= after && c.holders == [id])
                .map(|c| c.at)
        })
    }

    /// How long, within `[from, to)`, two or more routers held the VIP at once.
    pub fn time_with_several_holders(&self, from: Instant, to: Instant) -> Duration {
        timeline::time_with_several_holders(&self.history, from, to)
    }

    /// How long, within `[from, to)`, two or more running routers held the VIP at once.
    pub fn time_with_several_live_holders(&self, from: Instant, to: Instant) -> Duration {
        timeline::time_with_several_live_holders(&self.history, from, to)
    }

    /// The largest number of live holders at any instant of `[from, to]`.
    pub fn max_live_holders(&self, from: Instant, to: Instant) -> usize {
        timeline::max_live_holders(&self.history, from, to)
    }

    /// The timeline and holder history as text, with times relative to
    /// [`Lan::base`], for assertion messages.
    pub fn dump(&self) -> String {
        let mut out = String::from("routers:\n");
        for (id, node) in self.nodes.iter().enumerate() {
            let c = &node.config;
            let _ = writeln!(
                out,
                "  #{id} {} priority {} advert_int {:?} preempt {} delay {:?} (MDI {:?}, lease {:?}): {:?} {} on {:?}{}",
                c.primary_address,
                c.priority,
                c.advert_int,
                c.preempt,
                c.preempt_delay,
                c.master_down_interval(),
                self.lease(id),
                node.process,
                node.router.state(),
                node.segment,
                if node.holds(self.now) {
                    ", holds the VIP"
                } else {
                    ""
                },
            );
        }
        out.push_str("timeline:\n");
        for r in &self.timeline {
            if matches!(r.what, Happening::GratuitousArp { .. }) {
                continue;
            }
            let _ = writeln!(out, "  {:>12.6}s #{} {}", self.secs(r.at), r.node, r.what);
        }
        out.push_str("holders:\n");
        for c in &self.history {
            let _ = writeln!(
                out,
                "  {:>12.6}s {:?} (live {:?})",
                self.secs(c.at),
                c.holders,
                c.live
            );
        }
        let _ = writeln!(out, "now: {:.6}s", self.secs(self.now));
        out
    }

    /// Seconds from [`Lan::base`] to `at`.
    pub fn secs(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.base).as_secs_f64()
    }

    // ---------------------------------------------------------------- driving

    /// The earliest instant at which something is due: a running router's timer, a
    /// frame's delivery, or an address lease's end.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let timers = self
            .nodes
            .iter()
            .filter(|n| n.process == Process::Running)
            .filter_map(|n| n.router.poll_timeout());
        let frames = self.frames.keys().next().map(|(at, _)| *at);
        let leases = self.nodes.iter().filter_map(|n| n.address);
        timers.chain(frames).chain(leases).min()
    }

    /// Jumps to the next wake-up if it is no later than `limit`, and handles everything
    /// due then. Returns the new time, or `None` (time unchanged) when nothing is due
    /// up to `limit`.
    pub fn step(&mut self, limit: Instant) -> Option<Instant> {
        let at = self.next_wakeup().filter(|at| *at <= limit)?;
        self.now = self.now.max(at);
        let mut rounds = 0u32;
        loop {
            rounds += 1;
            assert!(
                rounds < 10_000,
                "no progress at one instant (a zero-time loop)\n{}",
                self.dump()
            );
            self.expire_leases();
            let mut busy = false;
            for id in self.ids() {
                let node = &mut self.nodes[id];
                if node.process == Process::Running
                    && node.router.poll_timeout().is_some_and(|t| t <= self.now)
                {
                    node.router.handle_timeout(self.now);
                    self.drain(id);
                    busy = true;
                }
            }
            while let Some(entry) = self.frames.first_entry() {
                if entry.key().0 > self.now {
                    break;
                }
                let frame = entry.remove();
                self.deliver(&frame);
                busy = true;
            }
            if !busy {
                break;
            }
        }
        Some(self.now)
    }

    /// Runs until `until`, then sets the clock to it.
    pub fn run_until(&mut self, until: Instant) {
        self.run_until_with(until, |_| {});
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(self.now + duration);
    }

    /// Runs until `until`, calling `check` after every step (and once at the end).
    pub fn run_until_with(&mut self, until: Instant, mut check: impl FnMut(&Lan)) {
        while self.step(until).is_some() {
            check(self);
        }
        self.now = self.now.max(until);
        self.expire_leases();
        check(self);
    }

    /// Runs for `duration`, calling `check` after every step (and once at the end).
    pub fn run_for_with(&mut self, duration: Duration, check: impl FnMut(&Lan)) {
        self.run_until_with(self.now + duration, check);
    }

    /// Runs until `done` holds (checked now and after every step) or `until` passes;
    /// returns the instant at which it held.
    pub fn run_until_true(
        &mut self,
        until: Instant,
        mut done: impl FnMut(&Lan) -> bool,
    ) -> Option<Instant> {
        if done(self) {
            return Some(self.now);
        }
        while self.step(until).is_some() {
            if done(self) {
                return Some(self.now);
            }
        }
        self.now = self.now.max(until);
        self.expire_leases();
        done(self).then_some(self.now)
    }

    // ---------------------------------------------------------------- internals

    fn record(&mut self, node: NodeId, what: Happening) {
        self.timeline.push(Record {
            at: self.now,
            node,
            what,
        });
    }

    fn note_holders(&mut self) {
        let holders = self.holders();
        let live = self.live_holders();
        let last = self.history.last().expect("history starts non-empty");
        if last.holders != holders || last.live != live {
            self.history.push(HolderChange {
                at: self.now,
                holders,
                live,
            });
        }
    }

    fn expire_leases(&mut self) {
        for id in self.ids() {
            if self.nodes[id]
                .address
                .is_some_and(|expires| expires <= self.now)
            {
                self.nodes[id].address = None;
                self.record(id, Happening::AddressExpired);
            }
        }
        self.note_holders();
    }

    /// Carries out a router's pending actions as the real driver does.
    fn drain(&mut self, id: NodeId) {
        while let Some(action) = self.nodes[id].router.poll_action() {
            match action {
                Action::SendAdvert { priority } => self.send_advert(id, priority),
                Action::AddAddresses | Action::RenewAddresses
                    if self.nodes[id].adds_fail.is_some() =>
                {
                    let why = self.nodes[id].adds_fail.clone().unwrap_or_default();
                    self.record(id, Happening::AddressAddFailed(why.clone()));
                    self.nodes[id].router.addresses_failed(self.now, why);
                }
                Action::ProbeAddresses => {
                    let now = self.now;
                    let failure = self.nodes[id].adds_fail.clone();
                    self.record(
                        id,
                        Happening::AddressProbe {
                            ok: failure.is_none(),
                        },
                    );
                    let router = &mut self.nodes[id].router;
                    match failure {
                        Some(why) => router.addresses_failed(now, why),
                        None => router.addresses_ok(now),
                    }
                }
                Action::AddAddresses | Action::RenewAddresses => {
                    let lease = self.lease(id);
                    let fresh = !self.nodes[id].holds(self.now);
                    self.nodes[id].address = Some(self.now + lease);
                    if fresh {
                        self.record(id, Happening::AddressAdded);
                    }
                    self.note_holders();
                }
                Action::RemoveAddresses => {
                    if self.nodes[id].address.take().is_some() {
                        self.record(id, Happening::AddressRemoved);
                    }
                    self.note_holders();
                }
                Action::SendGratuitousArp { conflict } => {
                    self.record(id, Happening::GratuitousArp { conflict });
                }
                Action::Stalled { away } => self.record(id, Happening::Stalled { away }),
                Action::Transition(t) => self.record(id, Happening::Transition(t)),
            }
        }
    }

    fn send_advert(&mut self, id: NodeId, priority: u8) {
        let node = &mut self.nodes[id];
        if node.lose_next > 0 {
            node.lose_next -= 1;
            self.record(id, Happening::AdvertLost { priority });
            return;
        }
        let Some(segment) = node.segment else {
            return;
        };
        node.adverts_sent += 1;
        let IpAddr::V4(source) = node.config.primary_address else {
            unreachable!("the simulated LAN is IPv4");
        };
        let advert = node.instance.encode_advert(
            priority,
            &node.instance.addresses(),
            source.into(),
            MULTICAST_GROUP.into(),
        );
        let datagram = ipv4_datagram(source, MULTICAST_GROUP, TTL, &advert);
        self.send_frame(Some(id), segment, datagram);
    }

    fn send_frame(&mut self, sender: Option<NodeId>, segment: Segment, datagram: Vec<u8>) {
        let key = (self.now + self.link_delay, self.next_seq);
        self.next_seq += 1;
        self.frames.insert(
            key,
            Frame {
                sender,
                segment,
                datagram,
            },
        );
    }

    /// Hands a frame to every running router on its segment but the sender, through
    /// the same receive checks as `vrrp::driver`.
    fn deliver(&mut self, frame: &Frame) {
        for id in self.ids() {
            let node = &mut self.nodes[id];
            if Some(id) == frame.sender || node.segment != Some(frame.segment) {
                continue;
            }
            match node.process {
                Process::Running => self.receive(id, &frame.datagram),
                Process::Paused => node.backlog.push(frame.datagram.clone()),
                Process::Stopped | Process::Killed => {}
            }
        }
    }

    /// A running router handles one datagram, through the receive path the agent
    /// runs: the shared socket's [`Demux::route`], then the instance's
    /// [`Filter::check`].
    fn receive(&mut self, id: NodeId, datagram: &[u8]) {
        let node = &mut self.nodes[id];
        let inbound = match node.demux.route(Datagram::Ipv4(datagram)) {
            Routed::To((), received) => node.filter.check(&received, node.router.config()),
            Routed::Dropped(reason, source) => Inbound::Dropped(reason, source),
        };
        match inbound {
            Inbound::Advert {
                source,
                priority,
                interval,
            } => {
                node.adverts_received += 1;
                node.router.receive(self.now, source, priority, interval);
                self.drain(id);
            }
            Inbound::Own => {}
            Inbound::Dropped(reason, _) => self.record(id, Happening::Dropped(reason)),
        }
    }
}
