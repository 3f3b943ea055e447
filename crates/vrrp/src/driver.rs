//! The async loop around one [`Router`]: receives adverts and hands them to the
//! receive checks ([`crate::receive`]) and the router, fires timers, and carries out
//! the router's actions (adverts, addresses, gratuitous ARP). Commands come in on a
//! channel; the state goes out on a watch channel, and every transition, in order, on
//! a channel of its own ([`TransitionEvent`]).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, error, info, warn};

use crate::garp::GarpSender;
use crate::instance::InstanceConfig;
use crate::netlink::{LinkMonitor, Netlink, NetlinkError};
use crate::receive::{Filter, Inbound};
use crate::router::{Action, FaultCause, Router, State};
use crate::shared_socket::{Delivery, SocketShare};
use crate::socket::{Destination, VrrpSocket};
use crate::stats::{DropReason, Stats};

/// Errors that stop an instance.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A netlink operation failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// The raw VRRP socket or the ARP socket could not be opened or used.
    #[error("{what}: {source}")]
    Socket {
        /// What was being done.
        what: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// What the outside tells a running instance.
#[derive(Debug)]
pub enum Command {
    /// Enter Fault (the local service is down), with a reason for the log.
    EnterFault(String),
    /// Leave Fault, with a reason for the log.
    LeaveFault(String),
    /// Step down (priority 0 if master), remove the addresses, and stop; the sender is
    /// told when that is done.
    Shutdown(oneshot::Sender<()>),
    /// Apply a changed configuration of the same instance (same interface and VRID)
    /// without a transition: priority, timers, preempt, authentication, peers,
    /// gratuitous ARP settings and the address list (a master adds the new addresses
    /// and removes the dropped ones at once).
    Reconfigure(Box<InstanceConfig>),
    /// Hold preemption back (`true`) or let a configured `preempt` act again.
    HoldPreempt(bool),
    /// Another instance of the sync group is in Fault: enter Fault too, with a
    /// reason for the log.
    EnterGroupFault(String),
    /// No other instance of the sync group is in Fault any more.
    LeaveGroupFault(String),
}

/// What an instance shows the outside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Current state.
    pub state: State,
    /// When it was entered.
    pub since: SystemTime,
    /// Why, in words.
    pub reason: String,
    /// The kind of reason ([`crate::Reason::kind`]), for metrics.
    pub reason_kind: &'static str,
    /// Transitions so far.
    pub transitions: u64,
    /// Times another master claimed the addresses while we held them (a healed
    /// split): each one is a moment to compare notes with the peer at once.
    pub conflicts: u64,
    /// The priority we advertise now (0 outside Backup and Master).
    pub effective_priority: u8,
    /// The master we believe in (source address and priority).
    pub master: Option<(IpAddr, u8)>,
    /// Our own address on the interface.
    pub primary_address: Option<IpAddr>,
    /// In Fault for a cause of its own (its service, its link, its addresses), not
    /// only because another instance of its sync group is.
    pub own_fault: bool,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            state: State::Initialize,
            since: SystemTime::now(),
            reason: "not started".into(),
            reason_kind: "none",
            transitions: 0,
            conflicts: 0,
            effective_priority: 0,
            master: None,
            primary_address: None,
            own_fault: false,
        }
    }
}

/// One transition, as it happened: [`Status`] is a watch and keeps only the latest
/// state, so a quick BACKUP -> MASTER -> BACKUP seen through it can look like no
/// change at all; these come one per transition, in order, none lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransitionEvent {
    /// The state left.
    pub from: State,
    /// The state entered.
    pub to: State,
    /// Why, in words.
    pub reason: String,
    /// The kind of reason ([`crate::Reason::kind`]), for metrics.
    pub reason_kind: &'static str,
    /// The priority advertised from then on (0 outside Backup and Master).
    pub priority: u8,
    /// The configured priority at the time (keepalived's hooks are told this one in
    /// FAULT).
    pub configured_priority: u8,
    /// When it happened.
    pub at: SystemTime,
}

/// The receiving end of an instance's transitions.
///
/// Unbounded, and that is safe here: transitions are bounded by the protocol's
/// timers and by the rate of the events that cause them (a Master_Down_Interval or
/// a Skew_Time to become master, one advert to step down, a fault command or a link
/// change to enter and leave FAULT), so at most a handful per second even on a
/// flapping link; and the consumer only queues hooks and records events, which never
/// block, so it drains as fast as they come. A bounded channel would have to either
/// block the protocol loop (never) or drop transitions, which is what this channel
/// exists to avoid. They stay queued while nobody reads them (the agent replacing an
/// instance reads the new one's only after the old one has stopped).
pub type Transitions = mpsc::UnboundedReceiver<TransitionEvent>;

/// What [`spawn`] returns.
#[derive(Debug)]
pub struct Spawned {
    /// The handle (commands, status, counters).
    pub handle: InstanceHandle,
    /// Every transition, in order; the channel closes when the loop has returned.
    pub transitions: Transitions,
    /// The loop.
    pub task: tokio::task::JoinHandle<Result<(), DriverError>>,
}

/// A handle on a running instance.
#[derive(Debug, Clone)]
pub struct InstanceHandle {
    commands: mpsc::Sender<Command>,
    status: watch::Receiver<Status>,
    stats: Arc<Stats>,
}

impl InstanceHandle {
    /// Sends a command; false when the instance has stopped.
    pub async fn command(&self, command: Command) -> bool {
        self.commands.send(command).await.is_ok()
    }

    /// Shuts the instance down and waits until its addresses are gone.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.command(Command::Shutdown(tx)).await {
            let _ = rx.await;
        }
    }

    /// The status, updated at every transition (a watch: it keeps only the latest;
    /// [`Spawned::transitions`] has every one).
    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }
}

/// Sets an instance up (interface, stale addresses, sockets) and spawns its loop.
/// With `start_in_fault` the router starts in Fault, out of the election, until told
/// otherwise (the local service has not been seen healthy yet).
///
/// The instance's addresses found on the interface are removed as left behind by an
/// earlier run, except those in `held`: addresses that another instance, still
/// running, holds (the agent starts a replacing instance before it stops the old
/// one, and must not take the VIP from under it).
pub async fn spawn(
    config: InstanceConfig,
    start_in_fault: Option<String>,
    held: &[IpAddr],
) -> Result<Spawned, DriverError> {
    let netlink = Netlink::connect()?;
    // Subscribe before the first look-up, so that no change slips in between.
    let monitor = match Netlink::monitor(&config.addresses()) {
        Ok(monitor) => Some(monitor),
        Err(e) => {
            warn!(instance = %config.name, error = %e, "cannot subscribe to link notifications; polling the interface every {LINK_POLL:?} only");
            None
        }
    };
    let interface = netlink.interface(&config.interface).await?;
    let primary = match config.unicast_src_ip {
        Some(ip) => ip,
        None => interface
            .primary_address(&config.virtual_addresses, config.family())
            .ok_or_else(|| {
                NetlinkError::NoPrimaryAddress(config.interface.clone(), config.family())
            })?,
    };
    // Addresses of this instance left behind by an earlier run go first: we start in
    // Backup and must not answer for them.
    for vip in config
        .virtual_addresses
        .iter()
        .filter(|v| !held.contains(&v.address))
    {
        if netlink.remove_address(interface.index, *vip).await? {
            warn!(instance = %config.name, address = %vip, "removed a virtual address left on {} by an earlier run", config.interface);
        }
    }
    let destination = destination(&config);
    let socket = SocketShare::join(
        &config.interface,
        interface.index,
        config.family(),
        config.vrid,
        destination == Destination::Multicast,
    )
    .map_err(|source| DriverError::Socket {
        what: "opening the raw VRRP socket (needs CAP_NET_RAW)",
        source,
    })?;
    let garp =
        GarpSender::open(interface.index, interface.mac).map_err(|source| DriverError::Socket {
            what: "opening the AF_PACKET socket for gratuitous ARP (needs CAP_NET_RAW)",
            source,
        })?;
    let router = Router::new(config.router_config(primary));
    let (commands_tx, commands_rx) = mpsc::channel(16);
    let (status_tx, status_rx) = watch::channel(Status {
        primary_address: Some(primary),
        ..Status::default()
    });
    let (transitions_tx, transitions) = mpsc::unbounded_channel();
    let stats = Arc::new(Stats::default());
    info!(
        instance = %config.name, interface = %config.interface, vrid = config.vrid,
        priority = config.priority, advert_int = ?config.advert_int, preempt = config.preempt,
        source = %primary, peers = ?config.unicast_peers, allowed_sources = ?config.allowed_sources,
        master_down_interval = ?router.config().master_down_interval(),
        address_lease = ?config.address_lease(router.config().master_down_interval()),
        "VRRP instance starting"
    );
    let driver = Driver {
        lease: config.address_lease(router.config().master_down_interval()),
        expected_addresses: config.addresses(),
        filter: Filter::new(&config),
        config,
        router,
        netlink,
        monitor,
        next_link_poll: now() + LINK_POLL,
        index: interface.index,
        mac: interface.mac,
        reopen: false,
        socket,
        destination,
        garp,
        garp_due: VecDeque::new(),
        next_refresh: None,
        stats: stats.clone(),
        status: status_tx,
        transitions: transitions_tx,
        last_drop_log: Default::default(),
        last_probe_log: None,
        renewed_at: None,
    };
    let task = tokio::spawn(driver.run(commands_rx, start_in_fault));
    Ok(Spawned {
        handle: InstanceHandle {
            commands: commands_tx,
            status: status_rx,
            stats,
        },
        transitions,
        task,
    })
}

/// Steps down for an instance whose loop is gone (it panicked, or its task was
/// cancelled), with a fresh netlink connection and socket: removes its virtual
/// addresses and, if it was master, sends one priority-0 advert, so that a backup
/// takes over after Skew_Time instead of Master_Down_Interval. Best effort: every
/// step is tried; the first failure is returned.
pub async fn release(config: &InstanceConfig, was_master: bool) -> Result<(), DriverError> {
    let netlink = Netlink::connect()?;
    let interface = netlink.interface(&config.interface).await?;
    let mut first_error = None;
    for vip in &config.virtual_addresses {
        match netlink.remove_address(interface.index, *vip).await {
            Ok(true) => {
                info!(instance = %config.name, address = %vip, "virtual address removed (stepping down for a stopped instance)")
            }
            Ok(false) => {}
            Err(e) => {
                error!(instance = %config.name, address = %vip, error = %e, "removing a virtual address failed");
                first_error.get_or_insert(DriverError::Netlink(e));
            }
        }
    }
    if was_master {
        let source = config
            .unicast_src_ip
            .or_else(|| interface.primary_address(&config.virtual_addresses, config.family()))
            .ok_or_else(|| {
                NetlinkError::NoPrimaryAddress(config.interface.clone(), config.family())
            })?;
        // A socket of its own, joined to no group: it only sends.
        let socket = VrrpSocket::open(&config.interface, interface.index, config.family())
            .map_err(|source| DriverError::Socket {
                what: "opening the raw VRRP socket to step down",
                source,
            })?;
        let addresses = config.addresses();
        let encode = |from, to| config.encode_advert(0, &addresses, from, to);
        match socket.send(source, &destination(config), encode).await {
            Ok(()) => {
                info!(instance = %config.name, source = %source, "priority-0 advert sent (stepping down for a stopped instance)")
            }
            Err(source) => {
                first_error.get_or_insert(DriverError::Socket {
                    what: "sending the priority-0 advert",
                    source,
                });
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

struct Driver {
    config: InstanceConfig,
    router: Router,
    netlink: Netlink,
    /// Link and address notifications; `None` if the subscription failed.
    monitor: Option<LinkMonitor>,
    /// When to look the interface up even without a notification (a lost one).
    next_link_poll: Instant,
    /// The interface index and MAC the sockets are open for.
    index: u32,
    mac: [u8; 6],
    /// The interface went away: reopen the sockets when it is back, whatever its
    /// index (multicast memberships died with it).
    reopen: bool,
    /// This instance's share of the interface's VRRP socket.
    socket: SocketShare,
    /// Where our adverts go.
    destination: Destination,
    garp: GarpSender,
    /// When the pending gratuitous ARPs of the current bursts are due.
    garp_due: VecDeque<Instant>,
    next_refresh: Option<Instant>,
    lease: Duration,
    /// When the addresses were last added or renewed, while master.
    renewed_at: Option<Instant>,
    /// The addresses as adverts and gratuitous ARPs carry them.
    expected_addresses: Vec<IpAddr>,
    /// The receive checks of the current configuration.
    filter: Filter,
    stats: Arc<Stats>,
    status: watch::Sender<Status>,
    /// Every transition, in order (dropped with the driver when its loop returns,
    /// which closes the channel).
    transitions: mpsc::UnboundedSender<TransitionEvent>,
    last_drop_log: std::collections::HashMap<DropReason, Instant>,
    /// When a failure to add the addresses was last logged above DEBUG.
    last_probe_log: Option<Instant>,
}

/// How often the interface is looked up without a notification.
const LINK_POLL: Duration = Duration::from_secs(2);

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Driver {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        start_in_fault: Option<String>,
    ) -> Result<(), DriverError> {
        // A link that is down at start keeps the router in Fault from the outset.
        self.check_link().await;
        match start_in_fault {
            Some(why) => self.router.enter_fault(now(), why),
            None => self.router.startup(now()),
        }
        self.execute().await?;
        loop {
            let wake = [
                self.router.poll_timeout(),
                self.garp_due.front().copied(),
                self.next_refresh,
                Some(self.next_link_poll),
            ]
            .into_iter()
            .flatten()
            .min();
            let sleep = async {
                match wake {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            let link_changed = async {
                match &self.monitor {
                    Some(monitor) => monitor.changed().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                delivery = self.socket.recv() => self.on_delivery(delivery),
                () = link_changed => {
                    self.check_link().await;
                    self.restore_addresses().await;
                }
                () = sleep => {
                    let now = now();
                    self.router.handle_timeout(now);
                    self.send_due_garps(now);
                    if now >= self.next_link_poll {
                        self.check_link().await;
                    }
                }
                command = commands.recv() => match command {
                    Some(Command::EnterFault(why)) => self.router.enter_fault(now(), why),
                    Some(Command::LeaveFault(why)) => {
                        if self.router.state() == State::Fault {
                            self.router.leave_fault(now(), why);
                        } else if self.router.state() == State::Initialize {
                            self.router.startup(now());
                        }
                    }
                    Some(Command::Reconfigure(new)) => self.reconfigure(*new).await,
                    Some(Command::HoldPreempt(hold)) => self.router.hold_preempt(hold),
                    Some(Command::EnterGroupFault(why)) => self.router.group_fault(now(), why),
                    Some(Command::LeaveGroupFault(why)) => {
                        self.router.group_fault_cleared(now(), why)
                    }
                    Some(Command::Shutdown(done)) => {
                        self.router.shutdown(now());
                        let result = self.execute().await;
                        let _ = done.send(());
                        return result;
                    }
                    None => {
                        self.router.shutdown(now());
                        return self.execute().await;
                    }
                },
            }
            self.execute().await?;
        }
    }

    /// Looks the interface up by name and follows it: Fault while it is down, gone or
    /// without the address we send from; Backup again once it is usable. An
    /// interface deleted and created again (a fresh index and MAC) gets fresh sockets.
    async fn check_link(&mut self) {
        self.next_link_poll = now() + LINK_POLL;
        let name = self.config.interface.clone();
        let interface = match self.netlink.interface_shared(&name, LINK_POLL / 2).await {
            Ok(interface) => interface,
            Err(NetlinkError::NoInterface(_)) => {
                self.reopen = true;
                return self.link_down(format!(
                    "interface {name} is gone (deleted, or moved to another namespace)"
                ));
            }
            Err(e) => {
                // A netlink hiccup says nothing about the link: keep the state.
                debug!(instance = %self.config.name, error = %e, "looking the interface up failed");
                return;
            }
        };
        if !interface.up {
            return self.link_down(format!(
                "interface {name} is down (administratively, or without carrier)"
            ));
        }
        let source = match self.config.unicast_src_ip {
            Some(ip) => interface
                .addresses
                .iter()
                .any(|a| a.address == ip)
                .then_some(ip),
            None => interface.primary_address(&self.config.virtual_addresses, self.config.family()),
        };
        let Some(source) = source else {
            let wanted = self.config.unicast_src_ip.map_or_else(
                || match self.config.family() {
                    crate::netlink::Family::V4 => "IPv4 address".to_string(),
                    crate::netlink::Family::V6 => "link-local IPv6 address".to_string(),
                },
                |ip| ip.to_string(),
            );
            return self.link_down(format!(
                "interface {name} has no {wanted} to send adverts from"
            ));
        };
        if self.reopen || interface.index != self.index || interface.mac != self.mac {
            if let Err(why) = self.reopen_sockets(interface.index, interface.mac) {
                return self.link_down(why);
            }
            info!(
                instance = %self.config.name, interface = %name,
                index = format!("{} -> {}", self.index, interface.index),
                mac = format!("{} -> {}", mac_text(self.mac), mac_text(interface.mac)),
                "the interface is back: sockets reopened"
            );
            self.index = interface.index;
            self.mac = interface.mac;
            self.reopen = false;
        }
        if source != self.router.config().primary_address {
            info!(instance = %self.config.name, source = format!("{} -> {source}", self.router.config().primary_address), "the interface's primary address changed: adverts now leave from it");
            let mut config = self.router.config().clone();
            config.primary_address = source;
            self.router.reconfigure(config);
            self.status
                .send_modify(|s| s.primary_address = Some(source));
        }
        if self.router.fault_causes().contains_key(&FaultCause::Link) {
            self.router.link_up(
                now(),
                format!(
                    "interface {name} is up (index {}, source {source})",
                    self.index
                ),
            );
            self.log_fault_causes();
        }
    }

    fn link_down(&mut self, why: String) {
        if self.router.fault_causes().get(&FaultCause::Link) == Some(&why) {
            return;
        }
        let was_fault = self.router.state() == State::Fault;
        self.router.link_down(now(), why);
        if was_fault {
            // No transition to log it: say so here.
            self.log_fault_causes();
        }
    }

    /// Logs the fault causes when a change of them made no transition.
    fn log_fault_causes(&self) {
        if self.router.state() != State::Fault {
            return;
        }
        let causes: Vec<String> = self
            .router
            .fault_causes()
            .iter()
            .map(|(cause, why)| format!("{cause}: {why}"))
            .collect();
        info!(instance = %self.config.name, causes = ?causes, "still FAULT");
    }

    fn reopen_sockets(&mut self, index: u32, mac: [u8; 6]) -> Result<(), String> {
        let name = &self.config.interface;
        self.socket = self
            .socket
            .reopen(name, index)
            .map_err(|e| format!("reopening the VRRP socket on {name}: {e}"))?;
        self.garp = GarpSender::open(index, mac)
            .map_err(|e| format!("reopening the ARP socket on {name}: {e}"))?;
        Ok(())
    }

    fn on_delivery(&mut self, delivery: Delivery) {
        let inbound = match delivery {
            Delivery::Advert(received) => self.filter.check(&received, self.router.config()),
            Delivery::Dropped(reason, source) => Inbound::Dropped(reason, source),
        };
        match inbound {
            Inbound::Advert {
                source,
                priority,
                interval,
            } => {
                self.stats.received(priority);
                debug!(instance = %self.config.name, %source, priority, ?interval, "advert");
                self.router.receive(now(), source, priority, interval);
                self.stats
                    .set_answers_suppressed(self.router.answers_suppressed());
            }
            // Our own advert, looped back.
            Inbound::Own => {}
            Inbound::Dropped(reason, source) => self.drop_packet(reason, source),
        }
    }

    /// Counts a dropped packet; logs the first of each reason and then at most one
    /// line per reason every ten seconds, so that a flood cannot fill the disk.
    fn drop_packet(&mut self, reason: DropReason, source: Option<IpAddr>) {
        let count = self.stats.dropped(reason);
        let now = now();
        let quiet = self
            .last_drop_log
            .get(&reason)
            .is_some_and(|last| now.duration_since(*last) < Duration::from_secs(10));
        if !quiet {
            self.last_drop_log.insert(reason, now);
            let source = source.map_or_else(|| "unknown".to_string(), |s| s.to_string());
            warn!(instance = %self.config.name, %reason, %source, count, "dropped a VRRP packet");
        }
    }

    async fn execute(&mut self) -> Result<(), DriverError> {
        while let Some(action) = self.router.poll_action() {
            match action {
                Action::SendAdvert { priority } => {
                    let (config, addresses) = (&self.config, &self.expected_addresses);
                    let encode = |from, to| config.encode_advert(priority, addresses, from, to);
                    let source = self.router.config().primary_address;
                    match self.socket.send(source, &self.destination, encode).await {
                        Ok(()) => self.stats.sent(priority),
                        Err(e) => {
                            warn!(instance = %self.config.name, error = %e, priority, "sending an advert failed")
                        }
                    }
                }
                Action::AddAddresses => {
                    // Removals seen before now are of an earlier mastership.
                    if let Some(monitor) = &self.monitor {
                        monitor.take_removed();
                    }
                    self.hold_addresses(false).await;
                }
                Action::RenewAddresses => {
                    if self.renewal_due(now()) {
                        self.hold_addresses(true).await;
                    }
                }
                Action::ProbeAddresses => self.probe_addresses().await,
                Action::RemoveAddresses => {
                    self.garp_due.clear();
                    self.next_refresh = None;
                    self.renewed_at = None;
                    for &vip in &self.config.virtual_addresses {
                        match self.netlink.remove_address(self.index, vip).await {
                            Ok(true) => {
                                info!(instance = %self.config.name, address = %vip, "virtual address removed")
                            }
                            Ok(false) => {
                                debug!(instance = %self.config.name, address = %vip, "virtual address already gone")
                            }
                            Err(e) => {
                                error!(instance = %self.config.name, address = %vip, error = %e, "removing a virtual address failed")
                            }
                        }
                    }
                }
                Action::SendGratuitousArp { conflict } => {
                    if conflict {
                        self.status.send_modify(|s| s.conflicts += 1);
                    }
                    self.schedule_garps(conflict);
                }
                Action::Stalled { away } => {
                    warn!(
                        instance = %self.config.name, away = ?away, state = %self.router.state(),
                        "this agent did not run for {away:?} (stopped, its machine paused, or starved): listening for a whole Master_Down_Interval before claiming the addresses"
                    );
                }
                Action::Transition(t) => {
                    if t.to == State::Master {
                        self.stats.became_master();
                    }
                    info!(
                        instance = %self.config.name, from = %t.from, to = %t.to, reason = %t.reason,
                        priority = self.router.effective_priority(), "VRRP transition"
                    );
                    let (transitions, conflicts) = {
                        let old = self.status.borrow();
                        (old.transitions + 1, old.conflicts)
                    };
                    let (at, reason) = (SystemTime::now(), t.reason.to_string());
                    let priority = self.router.effective_priority();
                    // Nobody listening any more (the agent is going away) is no error.
                    let _ = self.transitions.send(TransitionEvent {
                        from: t.from,
                        to: t.to,
                        reason: reason.clone(),
                        reason_kind: t.reason.kind(),
                        priority,
                        configured_priority: self.router.config().priority,
                        at,
                    });
                    let status = Status {
                        state: t.to,
                        since: at,
                        reason,
                        reason_kind: t.reason.kind(),
                        transitions,
                        conflicts,
                        effective_priority: priority,
                        master: self.router.master(),
                        primary_address: Some(self.router.config().primary_address),
                        own_fault: self.router.own_fault(),
                    };
                    self.status.send_replace(status);
                }
            }
        }
        // Keep the believed master and the fault's own causes current for status
        // readers (a cause can come or go without a transition).
        let (master, own_fault) = (self.router.master(), self.router.own_fault());
        self.status.send_if_modified(|s| {
            let changed = s.master != master || s.own_fault != own_fault;
            s.master = master;
            s.own_fault = own_fault;
            changed
        });
        Ok(())
    }

    /// Adds the virtual addresses (`renew`: again, to refresh their lifetime) with
    /// a lifetime of the lease.
    async fn hold_addresses(&mut self, renew: bool) {
        let mut failed = None;
        for &vip in &self.config.virtual_addresses {
            match self.netlink.add_address(self.index, vip, self.lease).await {
                Ok(()) if !renew => {
                    info!(instance = %self.config.name, address = %vip, lease = ?self.lease, "virtual address added")
                }
                Ok(()) => {}
                Err(e) => {
                    error!(instance = %self.config.name, address = %vip, error = %e, "adding a virtual address failed");
                    failed.get_or_insert_with(|| e.to_string());
                }
            }
        }
        match failed {
            None => self.renewed_at = Some(now()),
            // A master that cannot hold its addresses is no master: Fault
            // (priority 0, so that a backup takes over), retried by probes.
            Some(why) => {
                self.last_probe_log = Some(now());
                self.router.addresses_failed(now(), why);
            }
        }
    }

    /// Whether the addresses' lifetime is due for renewal: about half the lease has
    /// gone since they were added or last renewed (at the advert nearest to that).
    /// The router asks with every advert; renewing that often cost a netlink
    /// request per address and advert, and a notification to the agent, for
    /// nothing. The lease is at least Master_Down_Interval (three advert
    /// intervals), so half of it leaves the lifetime more than an advert interval
    /// to spare; an address removed meanwhile is added again at once
    /// ([`Driver::restore_addresses`]).
    fn renewal_due(&self, now: Instant) -> bool {
        let half_interval = self.router.config().advert_int / 2;
        self.renewed_at
            .is_none_or(|at| now.saturating_duration_since(at) + half_interval >= self.lease / 2)
    }

    /// A master whose own virtual address was removed (by hand, or its lifetime ran
    /// out while the agent was starved) adds it again at once, not at the next
    /// renewal.
    async fn restore_addresses(&mut self) {
        let removed = self.router.state() == State::Master
            && self.monitor.as_ref().is_some_and(LinkMonitor::take_removed);
        if removed {
            warn!(instance = %self.config.name, "a virtual address was removed while master: adding it again");
            self.hold_addresses(true).await;
        }
    }

    /// In Fault because the addresses could not be added: tries again, and removes
    /// at once what it added (we are not master; a backup may hold them by now, so
    /// they stay for one netlink round trip and are never announced).
    async fn probe_addresses(&mut self) {
        let lease = Duration::from_secs(1);
        let mut added = Vec::new();
        let mut failed = None;
        for &vip in &self.config.virtual_addresses {
            match self.netlink.add_address(self.index, vip, lease).await {
                Ok(()) => added.push(vip),
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            }
        }
        for vip in added {
            if let Err(e) = self.netlink.remove_address(self.index, vip).await {
                error!(instance = %self.config.name, address = %vip, error = %e, "removing a probed virtual address failed");
            }
        }
        let now = now();
        match failed {
            Some(why) => {
                // The first failure was logged at ERROR; repeat it once a minute.
                let quiet = self
                    .last_probe_log
                    .is_some_and(|at| now.duration_since(at) < Duration::from_secs(60));
                if quiet {
                    debug!(instance = %self.config.name, error = %why, "the virtual addresses still cannot be added");
                } else {
                    self.last_probe_log = Some(now);
                    warn!(instance = %self.config.name, error = %why, "the virtual addresses still cannot be added; staying in FAULT and retrying every advert interval");
                }
                self.router.addresses_failed(now, why);
            }
            None => {
                info!(instance = %self.config.name, "the virtual addresses can be added again");
                self.last_probe_log = None;
                self.router.addresses_ok(now);
            }
        }
    }

    async fn reconfigure(&mut self, new: InstanceConfig) {
        let old = &self.config;
        if new.interface != old.interface || new.vrid != old.vrid {
            warn!(instance = %old.name, "reconfigure: interface or VRID changed; ignored (the instance must be restarted)");
            return;
        }
        let primary = new
            .unicast_src_ip
            .unwrap_or(self.router.config().primary_address);
        let router = new.router_config(primary);
        self.destination = destination(&new);
        if let Err(e) = self
            .socket
            .set_multicast(self.destination == Destination::Multicast)
        {
            warn!(instance = %new.name, error = %e, "reconfigure: joining or leaving the VRRP multicast group failed");
        }
        let added: Vec<_> = new
            .virtual_addresses
            .iter()
            .filter(|v| !old.virtual_addresses.contains(v))
            .copied()
            .collect();
        let removed: Vec<_> = old
            .virtual_addresses
            .iter()
            .filter(|v| !new.virtual_addresses.contains(v))
            .copied()
            .collect();
        info!(
            instance = %new.name,
            priority = format!("{} -> {}", old.priority, new.priority),
            version = format!("{} -> {}", old.version, new.version),
            advert_int = format!("{:?} -> {:?}", old.advert_int, new.advert_int),
            preempt = format!("{} -> {}", old.preempt, new.preempt),
            added = ?added, removed = ?removed,
            "configuration reloaded; no transition"
        );
        self.router.reconfigure(router);
        self.lease = new.address_lease(self.router.config().master_down_interval());
        self.expected_addresses = new.addresses();
        self.filter = Filter::new(&new);
        if let Some(monitor) = &mut self.monitor {
            monitor.set_vips(&new.addresses());
        }
        self.config = new;
        if self.router.state() == State::Master {
            for vip in added {
                if let Err(e) = self.netlink.add_address(self.index, vip, self.lease).await {
                    error!(instance = %self.config.name, address = %vip, error = %e, "adding a virtual address failed");
                }
            }
            for vip in removed {
                if let Err(e) = self.netlink.remove_address(self.index, vip).await {
                    error!(instance = %self.config.name, address = %vip, error = %e, "removing a virtual address failed");
                }
            }
        }
        let priority = self.router.effective_priority();
        self.status.send_modify(|s| s.effective_priority = priority);
    }

    fn schedule_garps(&mut self, conflict: bool) {
        let now = now();
        let garp = &self.config.garp;
        let burst =
            |start: Instant, repeat: u32| (0..repeat).map(move |i| start + garp.interval * i);
        let mut due: Vec<Instant> = self.garp_due.drain(..).collect();
        due.extend(burst(now, garp.master_repeat));
        if !conflict && !garp.master_delay.is_zero() {
            due.extend(burst(now + garp.master_delay, garp.master_repeat));
        }
        due.sort_unstable();
        self.garp_due = due.into();
        if !garp.master_refresh.is_zero() && self.next_refresh.is_none() {
            self.next_refresh = Some(now + garp.master_refresh);
        }
        self.send_due_garps(now);
    }

    fn send_due_garps(&mut self, now: Instant) {
        if self.router.state() != State::Master {
            self.garp_due.clear();
            self.next_refresh = None;
            return;
        }
        if let Some(at) = self.next_refresh.filter(|at| *at <= now) {
            let garp = &self.config.garp;
            self.garp_due
                .extend((0..garp.master_refresh_repeat).map(|i| now + garp.interval * i));
            self.next_refresh = Some(at + garp.master_refresh);
        }
        while self.garp_due.front().is_some_and(|at| *at <= now) {
            self.garp_due.pop_front();
            if let Err(e) = self.garp.send(&self.expected_addresses) {
                warn!(instance = %self.config.name, error = %e, "sending gratuitous ARP failed");
            }
        }
    }
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Where an instance's adverts go: the group, or its unicast peers.
fn destination(config: &InstanceConfig) -> Destination {
    if config.unicast_peers.is_empty() {
        Destination::Multicast
    } else {
        Destination::Unicast(config.unicast_peers.clone())
    }
}
