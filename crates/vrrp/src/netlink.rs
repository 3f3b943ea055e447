//! The interface and its virtual addresses, through rtnetlink (never by shelling out
//! to `ip`).
//!
//! Virtual addresses are added with a kernel lifetime (valid_lft = preferred_lft =
//! the lease) and refreshed while master, so that an agent killed without cleaning up
//! leaves no address behind once the lease runs out.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::TryStreamExt;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::address::{AddressAttribute, AddressHeaderFlags, CacheInfo};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags};
use rtnetlink::{Handle, MulticastGroup};
use tokio::sync::{Notify, OnceCell};

/// A virtual address and its prefix length, as configured (`192.0.2.100/24`,
/// `2001:db8::100/64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VirtualAddress {
    /// The address.
    pub address: IpAddr,
    /// Its prefix length, 0..=32 (IPv4) or 0..=128 (IPv6).
    pub prefix_len: u8,
}

/// An address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of `address`.
    pub fn of(address: &IpAddr) -> Family {
        match address {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

impl std::fmt::Display for VirtualAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// Errors of netlink operations.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The netlink socket could not be opened.
    #[error("cannot open a netlink socket: {0}")]
    Connect(#[source] std::io::Error),
    /// No interface of that name.
    #[error("interface {0:?} not found")]
    NoInterface(String),
    /// The interface has no address of the family to send adverts from (IPv6: a
    /// link-local address, not tentative).
    #[error(
        "interface {0:?} has no {1} address of its own to send adverts from (IPv6: a link-local address)"
    )]
    NoPrimaryAddress(String, Family),
    /// The interface has no Ethernet address.
    #[error("interface {0:?} has no 6-byte hardware address")]
    NoHardwareAddress(String),
    /// The kernel refused a request.
    #[error("{what}: {source}")]
    Request {
        /// What was asked.
        what: String,
        /// The kernel's answer.
        #[source]
        source: rtnetlink::Error,
    },
}

/// What the agent needs to know about its interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    /// Its name.
    pub name: String,
    /// Its index.
    pub index: u32,
    /// Its Ethernet address.
    pub mac: [u8; 6],
    /// Whether it is usable: administratively up and with carrier (IFF_UP and
    /// IFF_RUNNING).
    pub up: bool,
    /// Its IPv4 and IPv6 addresses with prefix lengths, primary first (IPv6:
    /// without tentative ones, which cannot be sent from yet).
    pub addresses: Vec<VirtualAddress>,
}

impl Interface {
    /// The source of our adverts and our tie-breaker: for IPv4, the first address of
    /// the interface that is not one of `virtuals`; for IPv6, its link-local address
    /// (RFC 5798 section 5.1.2.1).
    pub fn primary_address(&self, virtuals: &[VirtualAddress], family: Family) -> Option<IpAddr> {
        self.addresses
            .iter()
            .map(|a| a.address)
            .filter(|a| Family::of(a) == family)
            .filter(|a| match a {
                IpAddr::V6(v6) => v6.is_unicast_link_local(),
                IpAddr::V4(_) => true,
            })
            .find(|a| !virtuals.iter().any(|v| v.address == *a))
    }
}

/// A netlink connection, driven by a task of its own.
#[derive(Clone, Debug)]
pub struct Netlink {
    handle: Handle,
}

impl Netlink {
    /// A handle on this thread's netlink socket, opened (its connection task
    /// spawned on the current runtime) by the first instance that asks, or again
    /// when its connection has ended. The instances of an agent share it: requests
    /// are multiplexed, and one socket's buffers serve them all.
    pub fn connect() -> Result<Self, NetlinkError> {
        SHARED.with(|slot| {
            let mut slot = slot.borrow_mut();
            if let Some((handle, task)) = slot.as_ref()
                && !task.is_finished()
            {
                return Ok(Netlink {
                    handle: handle.clone(),
                });
            }
            let (connection, handle, _) =
                rtnetlink::new_connection().map_err(NetlinkError::Connect)?;
            let task = tokio::spawn(connection);
            *slot = Some((handle.clone(), task));
            Ok(Netlink { handle })
        })
    }

    /// Looks an interface up by name.
    pub async fn interface(&self, name: &str) -> Result<Interface, NetlinkError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        let link = match links.try_next().await {
            Ok(Some(link)) => link,
            Ok(None) | Err(_) => return Err(NetlinkError::NoInterface(name.to_string())),
        };
        let mac = link
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::Address(bytes) => <[u8; 6]>::try_from(bytes.as_slice()).ok(),
                _ => None,
            })
            .ok_or_else(|| NetlinkError::NoHardwareAddress(name.to_string()))?;
        let index = link.header.index;
        let up = link.header.flags.contains(LinkFlags::Up)
            && link.header.flags.contains(LinkFlags::Running);
        let mut addresses = Vec::new();
        let mut stream = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let mut secondary = Vec::new();
        while let Some(message) =
            stream
                .try_next()
                .await
                .map_err(|source| NetlinkError::Request {
                    what: format!("listing the addresses of {name}"),
                    source,
                })?
        {
            let is_secondary = message.header.flags.contains(AddressHeaderFlags::Secondary);
            if message.header.flags.contains(AddressHeaderFlags::Tentative) {
                // IPv6 duplicate address detection under way: not usable yet.
                continue;
            }
            for attribute in &message.attributes {
                if let AddressAttribute::Address(address) = attribute {
                    let entry = VirtualAddress {
                        address: *address,
                        prefix_len: message.header.prefix_len,
                    };
                    if is_secondary {
                        secondary.push(entry);
                    } else {
                        addresses.push(entry);
                    }
                }
            }
        }
        addresses.extend(secondary);
        Ok(Interface {
            name: name.to_string(),
            index,
            mac,
            up,
            addresses,
        })
    }

    /// Looks an interface up as [`Netlink::interface`] does, or shares a look-up of
    /// it by another instance of this thread: one that started at most `max_age` ago
    /// with no notification since that could change its answer (see
    /// [`Netlink::monitor`]; the additions and renewals of the agent's VIPs do not
    /// count), or one still under way. Without a notifications hub on this thread
    /// every call looks afresh. A failed look-up is not shared.
    ///
    /// The instances of an agent poll their interface every couple of seconds in
    /// case a notification was lost; with 150 instances that was 75 address dumps a
    /// second, each of every address of the interface.
    pub async fn interface_shared(
        &self,
        name: &str,
        max_age: Duration,
    ) -> Result<Interface, NetlinkError> {
        let Some(generation) = HUB.with(|hub| {
            hub.borrow()
                .upgrade()
                .map(|hub| hub.generation.load(Ordering::Acquire))
        }) else {
            return self.interface(name).await;
        };
        let cell = LOOKUPS.with(|lookups| {
            let mut lookups = lookups.borrow_mut();
            let fresh = lookups.get(name).filter(|entry| {
                entry.generation == generation && entry.started.elapsed() <= max_age
            });
            match fresh {
                Some(entry) => entry.cell.clone(),
                None => {
                    let entry = Lookup {
                        started: Instant::now(),
                        generation,
                        cell: Arc::default(),
                    };
                    let cell = entry.cell.clone();
                    lookups.insert(name.to_string(), entry);
                    cell
                }
            }
        });
        cell.get_or_try_init(|| self.interface(name)).await.cloned()
    }

    /// Subscribes to the kernel's link and address notifications (as `ip monitor
    /// link address` does), for an instance whose virtual addresses are `vips`.
    /// The instances of a thread share one netlink socket, whose notifications are
    /// read and parsed once. A notification about a virtual address of any instance
    /// wakes none but, for a removal, the instances it belongs to (each master
    /// renews its own every couple of seconds, which is nobody's business); any
    /// other wakes every instance.
    pub fn monitor(vips: &[IpAddr]) -> Result<LinkMonitor, NetlinkError> {
        let hub = HUB.with(|slot| {
            let mut slot = slot.borrow_mut();
            match slot.upgrade().filter(|hub| !hub.task.is_finished()) {
                Some(hub) => Ok(hub),
                None => {
                    let hub = Arc::new(Hub::start()?);
                    *slot = Arc::downgrade(&hub);
                    Ok(hub)
                }
            }
        })?;
        let subscriber = Arc::new(Subscriber::default());
        let mut monitor = LinkMonitor {
            hub,
            subscriber,
            vips: Vec::new(),
        };
        lock(&monitor.hub.state)
            .subscribers
            .push(Arc::downgrade(&monitor.subscriber));
        monitor.set_vips(vips);
        Ok(monitor)
    }

    /// Adds (or refreshes) a virtual address with a kernel lifetime of `lease`; an
    /// IPv6 one without duplicate address detection (`nodad`: it is ours by VRRP, and
    /// a tentative address could not be used for a second or so).
    pub async fn add_address(
        &self,
        index: u32,
        vip: VirtualAddress,
        lease: Duration,
    ) -> Result<(), NetlinkError> {
        let secs = u32::try_from(lease.as_secs().max(1)).unwrap_or(u32::MAX);
        let mut request = self
            .handle
            .address()
            .add(index, vip.address, vip.prefix_len)
            .replace();
        if vip.address.is_ipv6() {
            request.message_mut().header.flags |= AddressHeaderFlags::Nodad;
        }
        let mut cache_info = CacheInfo::default();
        cache_info.ifa_valid = secs;
        cache_info.ifa_preferred = secs;
        request
            .message_mut()
            .attributes
            .push(AddressAttribute::CacheInfo(cache_info));
        request
            .execute()
            .await
            .map_err(|source| NetlinkError::Request {
                what: format!("adding {vip}"),
                source,
            })
    }

    /// Removes a virtual address; an address that is not there is no error. Returns
    /// whether it was there.
    pub async fn remove_address(
        &self,
        index: u32,
        vip: VirtualAddress,
    ) -> Result<bool, NetlinkError> {
        let mut stream = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(vip.address)
            .execute();
        let mut removed = false;
        while let Some(message) =
            stream
                .try_next()
                .await
                .map_err(|source| NetlinkError::Request {
                    what: format!("looking up {vip}"),
                    source,
                })?
        {
            match self.handle.address().del(message).execute().await {
                Ok(()) => removed = true,
                // Gone meanwhile (its lifetime ran out): what we wanted.
                Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EADDRNOTAVAIL => {}
                Err(source) => {
                    return Err(NetlinkError::Request {
                        what: format!("removing {vip}"),
                        source,
                    });
                }
            }
        }
        Ok(removed)
    }
}

/// An address notification's kind (added or refreshed: `true`) and addresses;
/// `None` for a link notification.
fn address_notification(
    message: &NetlinkMessage<RouteNetlinkMessage>,
) -> Option<(bool, Vec<IpAddr>)> {
    let (address, added) = match &message.payload {
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) => (a, true),
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(a)) => (a, false),
        _ => return None,
    };
    let addresses = address
        .attributes
        .iter()
        .filter_map(|a| match a {
            AddressAttribute::Address(ip) | AddressAttribute::Local(ip) => Some(*ip),
            _ => None,
        })
        .collect();
    Some((added, addresses))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    /// This thread's netlink request socket: its handle and connection task.
    static SHARED: RefCell<Option<(Handle, tokio::task::JoinHandle<()>)>> = const { RefCell::new(None) };
    /// The notifications hub of this thread's instances, while any is alive.
    static HUB: RefCell<Weak<Hub>> = const { RefCell::new(Weak::new()) };
    /// The latest look-up of each interface ([`Netlink::interface_shared`]).
    static LOOKUPS: RefCell<HashMap<String, Lookup>> = RefCell::new(HashMap::new());
}

/// One look-up of an interface, shared by the instances that ask while it is fresh.
#[derive(Debug)]
struct Lookup {
    started: Instant,
    /// The hub's [`Hub::generation`] when it started.
    generation: u64,
    /// Its answer, once there is one.
    cell: Arc<OnceCell<Interface>>,
}

/// One netlink socket subscribed to link and address notifications, read by a task
/// that hands each notification to the [`Subscriber`]s it concerns.
#[derive(Debug)]
struct Hub {
    state: Arc<Mutex<HubState>>,
    /// Counts the notifications that may change what an interface look-up says:
    /// all but the additions and renewals of the agent's virtual addresses.
    generation: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

/// The hub's subscribers, and the virtual addresses each one holds.
#[derive(Debug, Default)]
struct HubState {
    subscribers: Vec<Weak<Subscriber>>,
    /// Each virtual address of the agent, and the instances it belongs to (two
    /// while the agent replaces an instance).
    owners: HashMap<IpAddr, Vec<Weak<Subscriber>>>,
}

impl HubState {
    /// Hands one notification to the subscribers it concerns; whether it may change
    /// what an interface look-up says.
    fn deliver(&mut self, notification: Option<(bool, Vec<IpAddr>)>) -> bool {
        let owners: Vec<Arc<Subscriber>> = match &notification {
            Some((_, addresses)) => addresses
                .iter()
                .filter_map(|ip| self.owners.get(ip))
                .flatten()
                .filter_map(Weak::upgrade)
                .collect(),
            None => Vec::new(),
        };
        match notification {
            // A virtual address added or renewed: nobody's business.
            Some((true, _)) if !owners.is_empty() => false,
            // A virtual address removed: its instances look.
            Some((false, _)) if !owners.is_empty() => {
                for owner in owners {
                    owner.removed.store(true, Ordering::Release);
                    owner.notify.notify_one();
                }
                true
            }
            // A link, or another address: everybody looks.
            _ => {
                self.subscribers.retain(|s| s.strong_count() > 0);
                for subscriber in self.subscribers.iter().filter_map(Weak::upgrade) {
                    subscriber.notify.notify_one();
                }
                true
            }
        }
    }
}

impl Hub {
    fn start() -> Result<Hub, NetlinkError> {
        let (connection, handle, mut messages) = rtnetlink::new_multicast_connection(&[
            MulticastGroup::Link,
            MulticastGroup::Ipv4Ifaddr,
            MulticastGroup::Ipv6Ifaddr,
        ])
        .map_err(NetlinkError::Connect)?;
        tokio::spawn(connection);
        let state: Arc<Mutex<HubState>> = Arc::default();
        let generation: Arc<AtomicU64> = Arc::default();
        let (shared, count) = (state.clone(), generation.clone());
        let task = tokio::spawn(async move {
            // Holding the handle keeps the connection's request side open.
            let _handle = handle;
            while let Some((message, _)) = messages.next().await {
                if lock(&shared).deliver(address_notification(&message)) {
                    count.fetch_add(1, Ordering::AcqRel);
                }
            }
        });
        Ok(Hub {
            state,
            generation,
            task,
        })
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One instance's share of the [`Hub`].
#[derive(Debug, Default)]
struct Subscriber {
    notify: Notify,
    /// One of its own virtual addresses was removed since it last asked.
    removed: AtomicBool,
}

/// Link and address notifications of the kernel (any interface), coalesced: the
/// caller looks its interface up afresh on each wake-up, so one covers any number of
/// messages.
#[derive(Debug)]
pub struct LinkMonitor {
    hub: Arc<Hub>,
    subscriber: Arc<Subscriber>,
    /// The instance's virtual addresses, as the hub knows them.
    vips: Vec<IpAddr>,
}

impl LinkMonitor {
    /// Waits until a notification has arrived since the last call. When the
    /// monitor's connection has ended this waits forever (the caller polls too).
    pub async fn changed(&self) {
        self.subscriber.notify.notified().await;
    }

    /// Whether one of the instance's own virtual addresses was removed since the
    /// last call: deleted by hand, or its lifetime ran out.
    pub fn take_removed(&self) -> bool {
        self.subscriber.removed.swap(false, Ordering::AcqRel)
    }

    /// Replaces the instance's virtual addresses (a reload changed them).
    pub fn set_vips(&mut self, vips: &[IpAddr]) {
        let mut state = lock(&self.hub.state);
        self.forget(&mut state);
        for ip in vips {
            state
                .owners
                .entry(*ip)
                .or_default()
                .push(Arc::downgrade(&self.subscriber));
        }
        self.vips = vips.to_vec();
    }

    /// Takes this instance off the owners of its virtual addresses.
    fn forget(&self, state: &mut HubState) {
        for ip in &self.vips {
            if let Some(owners) = state.owners.get_mut(ip) {
                owners.retain(|o| !std::ptr::eq(o.as_ptr(), Arc::as_ptr(&self.subscriber)));
                if owners.is_empty() {
                    state.owners.remove(ip);
                }
            }
        }
    }
}

impl Drop for LinkMonitor {
    fn drop(&mut self) {
        self.forget(&mut lock(&self.hub.state));
    }
}
